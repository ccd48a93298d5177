package crawl

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/temoto/robotstxt"
	"golang.org/x/time/rate"
)

// robotsRetry is how long a host whose robots.txt could not be had stays disallowed before it is
// asked again (Crawler.robotsRetry; tests shorten it).
const robotsRetry = 10 * time.Minute

// robotsMaxBytes is how much of a robots.txt is read: RFC 9309 asks crawlers to parse at least
// 500 KiB, and lets them ignore the rest.
const robotsMaxBytes = 512 << 10

// host is the politeness state of one scheme://host: its rate limiter, a pause a server asked for with
// Retry-After, and its robots.txt rules, fetched once.
type host struct {
	key     string
	limiter *rate.Limiter
	// pauseUntil (unix nanoseconds) holds back every request to the host after a 429 or 503 that
	// named a Retry-After, not only the retried one: the server asked the whole crawler to wait.
	pauseUntil atomic.Int64

	robotsMu sync.Mutex
	rules    *robotsRules
}

type robotsRules struct {
	group *robotstxt.Group // nil: everything allowed
	// unavailable: robots.txt answered 5xx or could not be fetched, which RFC 9309 treats as
	// "disallow everything" for now; cause is the reason to record for the host's pages instead of
	// "robots-unavailable", when the failure says more (a certificate not trusted fails every page).
	unavailable bool
	cause       string
	// expires, when set, is when the rules are stale and robots.txt is asked again.
	expires  time.Time
	sitemaps []string
}

// allowed says whether the rules let us fetch u, and if not, the reason to record.
func (r *robotsRules) allowed(u *url.URL) (bool, string) {
	if r.unavailable {
		if r.cause != "" {
			return false, r.cause
		}
		return false, reasonRobotsUnavailable
	}
	if r.group == nil {
		return true, ""
	}
	p := u.EscapedPath()
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	if !r.group.Test(p) {
		return false, reasonRobots
	}
	return true, ""
}

// hostSet hands out one host per key for the whole run, so that every request to a host, from any
// worker and any redirect hop, shares its limiter.
type hostSet struct {
	mu   sync.Mutex
	m    map[string]*host
	rate float64
}

func (s *hostSet) get(key string) *host {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.m[key]
	if h == nil {
		lim := rate.Inf
		if s.rate > 0 {
			lim = rate.Limit(s.rate)
		}
		h = &host{key: key, limiter: rate.NewLimiter(lim, 1)}
		s.m[key] = h
	}
	return h
}

// wait blocks until the host may be sent another request.
func (h *host) wait(ctx context.Context) error {
	if until := h.pauseUntil.Load(); until > 0 {
		if d := time.Until(time.Unix(0, until)); d > 0 {
			if err := sleep(ctx, d); err != nil {
				return err
			}
		}
	}
	return h.limiter.Wait(ctx)
}

// pause holds back the host's requests for d.
func (h *host) pause(d time.Duration) {
	until := time.Now().Add(d).UnixNano()
	for {
		old := h.pauseUntil.Load()
		if old >= until || h.pauseUntil.CompareAndSwap(old, until) {
			return
		}
	}
}

// slowDown lowers the host's rate to one request per interval, if that is slower than it is.
func (h *host) slowDown(interval time.Duration) {
	if interval <= 0 {
		return
	}
	if l := rate.Every(interval); l < h.limiter.Limit() {
		h.limiter.SetLimit(l)
	}
}

// robots returns the host's rules, fetching robots.txt on first use. Concurrent callers for the same
// host wait for that one fetch.
func (r *run) robots(ctx context.Context, h *host) (*robotsRules, error) {
	h.robotsMu.Lock()
	defer h.robotsMu.Unlock()
	if h.rules != nil && (h.rules.expires.IsZero() || time.Now().Before(h.rules.expires)) {
		return h.rules, nil
	}
	rules, err := r.fetchRobots(ctx, h)
	if err != nil {
		return nil, err
	}
	if rules.unavailable {
		// RFC 9309 asks for "disallow all" while robots.txt cannot be had, not for the rest of a
		// crawl that may run for hours: a host that was down is asked again after a while.
		rules.expires = time.Now().Add(r.c.robotsRetry)
	}
	if rules.group != nil && rules.group.CrawlDelay != 0 && !r.c.opts.IgnoreRobots {
		d := rules.group.CrawlDelay
		if d < 0 {
			// The parser refuses negative delays, so a negative one is a huge value that overflowed
			// time.Duration: the site asked for the longest wait we grant.
			d = r.c.opts.MaxRetryWait
		}
		h.slowDown(min(d, r.c.opts.MaxRetryWait))
	}
	h.rules = rules
	return rules, nil
}

// fetchRobots reads and parses a host's robots.txt. Only a cancelled run is an error: every other
// failure is a decision about the host (RFC 9309: 4xx allows all, 5xx and unreachable disallow all).
func (r *run) fetchRobots(ctx context.Context, h *host) (*robotsRules, error) {
	target := h.key + "/robots.txt"
	for hop := 0; ; hop++ {
		resp, err := r.get(ctx, r.hosts.get(hostKey(target)), request{
			url: target, maxBytes: robotsMaxBytes, truncate: true,
		})
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			r.log.Warn("robots.txt unreachable, host disallowed", "host", h.key, "err", err)
			rules := &robotsRules{unavailable: true}
			var fe *fetchError
			if errors.As(err, &fe) && fe.reason == reasonTLS {
				rules.cause = reasonTLS
			}
			return rules, nil
		}
		switch s := resp.status; {
		case s >= 200 && s < 300:
			rules, err := parseRobots(resp.body, r.c.opts.UserAgent, r.c.opts.IgnoreRobots)
			if err != nil {
				r.log.Warn("robots.txt unparsable, treated as allowing all", "host", h.key, "err", err)
			}
			return rules, nil
		case isRedirect(s) && hop < 5:
			next, err := resolveLocation(target, resp.header.Get("Location"))
			if err != nil {
				return &robotsRules{}, nil
			}
			target = next
		case s == 429 || s >= 500:
			r.log.Warn("robots.txt unavailable, host disallowed", "host", h.key, "status", s)
			return &robotsRules{unavailable: true}, nil
		default:
			return &robotsRules{}, nil
		}
	}
}

// parseRobots reads a robots.txt body into the rules for agent. A file the parser refuses even
// once sanitised allows everything (with the error, for the log), as RFC 9309 treats a file it
// cannot read; its Sitemap lines are lost with it.
func parseRobots(body []byte, agent string, ignore bool) (*robotsRules, error) {
	body = tidyRobots(body)
	data, err := robotstxt.FromBytes(body)
	if err != nil {
		// The parser refuses a whole file for one odd line; RFC 9309 wants the rest obeyed.
		data, err = robotstxt.FromBytes(sanitizeRobots(body))
	}
	if err != nil {
		return &robotsRules{}, err
	}
	rules := &robotsRules{sitemaps: data.Sitemaps}
	if !ignore {
		rules.group = data.FindGroup(agent)
	}
	return rules, nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// tidyRobots fixes what RFC 9309 allows and the parser misreads, losing the group it starts: a byte
// order mark (editors on Windows write one) and white space between a key and its colon
// ("User-agent : *").
func tidyRobots(body []byte) []byte {
	body = bytes.TrimPrefix(body, []byte("\ufeff"))
	if !bytes.Contains(body, []byte(" :")) && !bytes.Contains(body, []byte("\t:")) {
		return body
	}
	out := make([]byte, 0, len(body))
	for line := range bytes.Lines(body) {
		if i := bytes.IndexByte(line, ':'); i > 0 {
			key := bytes.TrimSpace(line[:i])
			if len(key) > 0 && len(key) < i && bytes.IndexAny(key, " \t#") < 0 {
				out = append(out, key...)
				out = append(out, line[i:]...)
				continue
			}
		}
		out = append(out, line...)
	}
	return out
}

// sanitizeRobots drops the lines robotstxt rejects outright: rules before any User-agent line and
// Crawl-delay values that are not numbers.
func sanitizeRobots(body []byte) []byte {
	var out bytes.Buffer
	seenAgent := false
	for line := range bytes.Lines(body) {
		text := string(line)
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		key, val, ok := strings.Cut(text, ":")
		key = strings.ToLower(strings.TrimSpace(key))
		val = strings.TrimSpace(val)
		if ok {
			switch key {
			case "user-agent", "useragent":
				seenAgent = true
			case "disallow", "allow":
				if !seenAgent {
					continue
				}
			case "crawl-delay", "crawldelay":
				f, err := strconv.ParseFloat(val, 64)
				if !seenAgent || err != nil || f < 0 || f > 1e9 {
					continue
				}
			}
		}
		// Lines keep their own ends, so that sanitising a sanitised file changes nothing.
		out.Write(line)
	}
	return out.Bytes()
}
