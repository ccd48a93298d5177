package crawl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/temoto/robotstxt"

	"panther"
	"panther/extract"
)

// This file serves crawls whose frontier is not in this process: package jobs keeps it in
// PostgreSQL and hands single pages to any number of workers. A PageFetcher fetches and processes
// one page as Run would (robots, conditional GET, redirects, extraction, canonical and noindex,
// ingest) and returns the page's fate and its links instead of queueing them. Every request it makes
// — robots.txt, sitemaps, redirect hops and retries included — first takes a slot from a Gate, so
// that a host's rate holds across every worker together.
//
// It repeats the request loop of run.get and the decisions of run.process on purpose: those wait on
// the run's in-process limiter, and a Gate could only replace it by changing them.

// Gate spaces the requests to one host across every process that crawls it.
type Gate interface {
	// Wait returns when a request may be sent to host (scheme://host): at least interval after the
	// previous one any process was allowed, and after any pause. It returns ctx's error if ctx ends first.
	Wait(ctx context.Context, host string, interval time.Duration) error
	// Pause holds back every process's requests to host for d, as a Retry-After asked.
	Pause(ctx context.Context, host string, d time.Duration) error
}

// Plan is what a crawl keeps beyond one page: its seed, scope and the caller's choices. Distributed
// crawls persist it (JSON) and give it with every page.
type Plan struct {
	// Seed is the normalised seed URL.
	Seed string `json:"seed"`
	// Sitemap says that the seed is a sitemap: its URLs are the seeds, their hosts the scope.
	Sitemap bool `json:"sitemap,omitempty"`
	// Scope holds the URL prefixes the crawl may enter; it widens as Run's does (PageResult.Widen).
	Scope []string `json:"scope"`
	// MaxDepth is as in Options (negative: unlimited).
	MaxDepth int `json:"max_depth"`
	// Include and Exclude are regular expressions, as in Options.
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
	// HostRate is the most requests per second to one host, over all workers (0: no limit). A
	// robots.txt Crawl-delay lowers it further.
	HostRate     float64 `json:"host_rate,omitempty"`
	IgnoreRobots bool    `json:"ignore_robots,omitempty"`
}

// NewPlan normalises an http(s) seed and opens its scope as Run does: a site URL's host and path up
// to its last '/', a sitemap URL's host. Local folders are refused: the workers of a distributed crawl
// run on other machines, which do not have them.
func NewPlan(seed string) (Plan, error) {
	seed = strings.TrimSpace(seed)
	lower := strings.ToLower(seed)
	if !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://") {
		return Plan{}, panther.Invalidf("crawl: seed %q: distributed crawls take http and https URLs only (crawl local folders with a local crawl)", seed)
	}
	u, err := url.Parse(seed)
	if err != nil {
		return Plan{}, panther.Invalidf("crawl: seed %q: %v", seed, err)
	}
	n, err := normalizeURL(u)
	if err != nil {
		return Plan{}, err
	}
	p := Plan{Seed: n.String(), MaxDepth: -1}
	if looksLikeSitemap(n) {
		p.Sitemap = true
		p.Scope = []string{hostPrefix(n)}
	} else {
		p.Scope = []string{dirPrefix(n)}
	}
	return p, nil
}

// Check says what is wrong with a plan.
func (p Plan) Check() error {
	if p.Seed == "" || len(p.Scope) == 0 {
		return panther.Invalidf("crawl plan: no seed or no scope")
	}
	if p.HostRate < 0 || math.IsNaN(p.HostRate) || math.IsInf(p.HostRate, 0) {
		return panther.Invalidf("crawl plan: host rate must be a finite number >= 0, got %v", p.HostRate)
	}
	for _, e := range append(append([]string(nil), p.Include...), p.Exclude...) {
		if _, err := regexp.Compile(e); err != nil {
			return panther.Invalidf("crawl plan: pattern %q: %v", e, err)
		}
	}
	return nil
}

// PageTask is one page of a distributed crawl.
type PageTask struct {
	Plan     Plan
	SourceID int64
	// URL is normalised (as Normalize returns it); Depth is its distance from a seed.
	URL   string
	Depth int
	// Claim takes a URL that a redirect of this page leads to: true when this page may fetch and
	// record it in its place (no other page of the crawl has it), false when it belongs to another
	// page. A retried task must get true again for the targets it claimed before.
	Claim func(ctx context.Context, url string, depth int) (bool, error)
}

// PageResult is what processing one page decided.
type PageResult struct {
	// Finished holds the final state of the task's URL and of the URLs its redirects claimed.
	Finished []panther.FrontierEntry
	// Links are the URLs to crawl next: normalised, in scope, allowed by the filters, not deeper
	// than MaxDepth, not deduplicated.
	Links []panther.FrontierEntry
	// Fetched says that the page cost a page fetch (what MaxPages counts).
	Fetched bool
	// Widen holds prefixes the crawl's scope gained: a seed that redirected elsewhere, or a seed
	// that turned out to be a sitemap.
	Widen []string
}

// PageFetcher fetches single pages for crawls whose frontier lives elsewhere. It is safe for
// concurrent use. robots.txt files are cached per process for RobotsTTL.
type PageFetcher struct {
	c    *Crawler
	gate Gate

	mu     sync.Mutex
	robots map[string]*robotsCache
	res    map[string]*regexp.Regexp
	// delays holds each host's robots.txt Crawl-delay for this fetcher's User-Agent, kept apart from
	// the robots cache so that reading it never waits for a robots.txt fetch in progress.
	delays map[string]time.Duration
}

// RobotsTTL is how long a PageFetcher keeps a host's robots.txt (RFC 9309 allows up to a day).
const RobotsTTL = time.Hour

// robotsCacheMax bounds the hosts whose robots.txt one PageFetcher keeps.
const robotsCacheMax = 10_000

type robotsCache struct {
	mu          sync.Mutex
	at          time.Time
	data        *robotstxt.RobotsData // nil: no rules
	unavailable bool
}

// noStore stands in for the Store a PageFetcher's Crawler never uses: the frontier is the caller's.
type noStore struct{}

func (noStore) AddSource(context.Context, string) (panther.Source, error) {
	return panther.Source{}, errors.ErrUnsupported
}
func (noStore) MarkCrawled(context.Context, int64, time.Time) error { return errors.ErrUnsupported }
func (noStore) Enqueue(context.Context, int64, []panther.FrontierEntry) (int, error) {
	return 0, errors.ErrUnsupported
}
func (noStore) Frontier(context.Context, int64) ([]panther.FrontierEntry, error) {
	return nil, errors.ErrUnsupported
}
func (noStore) Finish(context.Context, int64, panther.FrontierEntry) error {
	return errors.ErrUnsupported
}
func (noStore) ResetFrontier(context.Context, int64) error { return errors.ErrUnsupported }

// NewPageFetcher returns a PageFetcher that stores pages in index and spaces requests with gate.
// Of opts, the request options count (UserAgent, Timeout, MaxBodyBytes, MaxRedirects, Retries,
// RetryBackoff, MaxRetryWait, Transport, Logger); the crawl's shape comes with each task's Plan.
func NewPageFetcher(index Index, gate Gate, opts Options) (*PageFetcher, error) {
	if gate == nil {
		return nil, panther.Invalidf("crawl: a page fetcher needs a gate")
	}
	opts.HostRate, opts.Include, opts.Exclude = 0, nil, nil
	c, err := New(noStore{}, index, opts)
	if err != nil {
		return nil, err
	}
	return &PageFetcher{c: c, gate: gate, robots: map[string]*robotsCache{}, res: map[string]*regexp.Regexp{},
		delays: map[string]time.Duration{}}, nil
}

// pagePlan is a Plan ready to use.
type pagePlan struct {
	Plan
	scope *scope
	filt  filters
	// hostsAdded counts the hosts sitemap URLs added to the scope (at most sitemapMaxHosts).
	hostsAdded int
}

func (p *PageFetcher) prepare(pl Plan) (*pagePlan, error) {
	if pl.Seed == "" || len(pl.Scope) == 0 {
		return nil, panther.Invalidf("crawl plan: no seed or no scope")
	}
	pp := &pagePlan{Plan: pl, scope: &scope{}}
	for _, s := range pl.Scope {
		pp.scope.add(s)
	}
	var err error
	if pp.filt.include, err = p.compile(pl.Include); err != nil {
		return nil, err
	}
	if pp.filt.exclude, err = p.compile(pl.Exclude); err != nil {
		return nil, err
	}
	return pp, nil
}

func (p *PageFetcher) compile(exprs []string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for _, e := range exprs {
		p.mu.Lock()
		re := p.res[e]
		p.mu.Unlock()
		if re == nil {
			var err error
			if re, err = regexp.Compile(e); err != nil {
				return nil, panther.Invalidf("crawl plan: pattern %q: %v", e, err)
			}
			p.mu.Lock()
			if len(p.res) > 1000 {
				clear(p.res)
			}
			p.res[e] = re
			p.mu.Unlock()
		}
		out = append(out, re)
	}
	return out, nil
}

// Fetch processes one page. An error means the task should be tried again later (cancelled, the
// index or a Claim failed); page-level trouble (404, robots, a timeout after retries) is a result.
func (p *PageFetcher) Fetch(ctx context.Context, t PageTask) (*PageResult, error) {
	pl, err := p.prepare(t.Plan)
	if err != nil {
		return nil, err
	}
	u0, err := url.Parse(t.URL)
	if err != nil || (u0.Scheme != "http" && u0.Scheme != "https") {
		return &PageResult{Finished: []panther.FrontierEntry{{URL: t.URL, Depth: t.Depth, State: panther.FrontierFailed, Reason: "bad-url"}}}, nil
	}
	opts := &p.c.opts
	r := &run{c: p.c, log: p.c.log}
	res := &PageResult{}
	cur := panther.FrontierEntry{URL: t.URL, Depth: t.Depth}
	var hops []panther.FrontierEntry
	final := func(state panther.FrontierState, reason string) {
		for _, h := range hops {
			h.State, h.Reason = panther.FrontierSkipped, reasonRedirect
			res.Finished = append(res.Finished, h)
		}
		cur.State, cur.Reason = state, reason
		res.Finished = append(res.Finished, cur)
	}
	fromSeed := t.URL == pl.Seed && !pl.Sitemap
	for hop := 0; ; hop++ {
		u, err := url.Parse(cur.URL)
		if err != nil {
			final(panther.FrontierFailed, "bad-url")
			return res, nil
		}
		if !pl.IgnoreRobots {
			rules, err := p.rules(ctx, pl, hostKey(cur.URL))
			if err != nil {
				return nil, err
			}
			if ok, reason := rules.allowed(u); !ok {
				if hop == 0 {
					final(panther.FrontierSkipped, reason)
				} else {
					final(panther.FrontierSkipped, reasonRedirectRobots)
				}
				return res, nil
			}
		}
		res.Fetched = true
		meta, known, err := r.meta(ctx, cur.URL)
		if err != nil {
			return nil, err
		}
		req := request{url: cur.URL, maxBytes: opts.MaxBodyBytes, pages: true}
		if known {
			v := meta.Validators
			req.cond = &v
		}
		resp, err := p.get(ctx, r, pl, req)
		if err != nil {
			var se *skipError
			var fe *fetchError
			switch {
			case errors.As(err, &se):
				final(panther.FrontierSkipped, se.reason)
			case errors.As(err, &fe):
				p.c.log.Warn("fetch failed", "url", cur.URL, "err", err)
				final(panther.FrontierFailed, fe.reason)
			default:
				return nil, err
			}
			return res, nil
		}
		switch s := resp.status; {
		case isRedirect(s):
			if hop >= opts.MaxRedirects {
				final(panther.FrontierFailed, reasonTooManyRedirects)
				return res, nil
			}
			next, err := resolveLocation(cur.URL, resp.header.Get("Location"))
			if err != nil {
				final(panther.FrontierFailed, "bad-redirect")
				return res, nil
			}
			if !pl.scope.contains(next) {
				if !fromSeed {
					final(panther.FrontierSkipped, reasonRedirectOutOfScope)
					return res, nil
				}
				// A site seed that moved takes its scope along, as in Run.
				nu, _ := url.Parse(next)
				pl.scope.add(dirPrefix(nu))
				res.Widen = append(res.Widen, dirPrefix(nu))
			} else if !fromSeed && !pl.filt.allow(next) {
				final(panther.FrontierSkipped, reasonExcluded)
				return res, nil
			}
			if next == cur.URL {
				final(panther.FrontierSkipped, reasonRedirectDuplicate)
				return res, nil
			}
			ok, err := t.Claim(ctx, next, cur.Depth)
			if err != nil {
				return nil, fmt.Errorf("crawl %s: claim redirect target %s: %w", cur.URL, next, err)
			}
			if !ok {
				final(panther.FrontierSkipped, reasonRedirectDuplicate)
				return res, nil
			}
			hops = append(hops, cur)
			cur = panther.FrontierEntry{URL: next, Depth: cur.Depth}
			continue
		case s == http.StatusNotModified:
			if !known {
				final(panther.FrontierFailed, "http 304")
				return res, nil
			}
			v := meta.Validators
			if et := resp.header.Get("ETag"); et != "" {
				v.ETag = et
			}
			if lm := resp.header.Get("Last-Modified"); lm != "" {
				v.LastModified = lm
			}
			state, reason, err := p.unchanged(ctx, pl, res, cur, meta, v)
			if err != nil {
				return nil, err
			}
			final(state, reason)
		case s == http.StatusNotFound || s == http.StatusGone:
			ce := &entry{url: cur.URL, depth: cur.Depth}
			state, reason, err := r.gone(ctx, ce, known, s)
			if err != nil {
				return nil, err
			}
			final(state, reason)
		case s == http.StatusOK || s == http.StatusNonAuthoritativeInfo:
			v := panther.Validators{ETag: resp.header.Get("ETag"), LastModified: resp.header.Get("Last-Modified")}
			state, reason, err := p.body(ctx, r, pl, t.SourceID, res, cur, u, meta, known, resp.ctype, resp.body, v)
			if err != nil {
				return nil, err
			}
			final(state, reason)
		default:
			final(panther.FrontierFailed, "http "+strconv.Itoa(s))
		}
		return res, nil
	}
}

// unchanged is run.unchanged for a distributed page.
func (p *PageFetcher) unchanged(ctx context.Context, pl *pagePlan, res *PageResult, cur panther.FrontierEntry, meta panther.Document, v panther.Validators) (panther.FrontierState, string, error) {
	if err := p.c.index.Touch(ctx, cur.URL, v, time.Now()); errors.Is(err, panther.ErrNotFound) {
		return panther.FrontierFailed, "index", nil
	} else if err != nil {
		return "", "", fmt.Errorf("crawl %s: touch: %w", cur.URL, err)
	}
	res.Links = append(res.Links, pl.links(meta.Links, cur.Depth+1)...)
	return panther.FrontierDone, string(panther.IngestUnchanged), nil
}

// body is run.body for a distributed page.
func (p *PageFetcher) body(ctx context.Context, r *run, pl *pagePlan, sourceID int64, res *PageResult, cur panther.FrontierEntry,
	u *url.URL, meta panther.Document, known bool, ctype string, body []byte, v panther.Validators) (panther.FrontierState, string, error) {
	sum := sha256.Sum256(body)
	v.ContentHash = hex.EncodeToString(sum[:])
	if known && meta.ContentHash == v.ContentHash {
		return p.unchanged(ctx, pl, res, cur, meta, v)
	}
	if cur.URL == pl.Seed && !pl.Sitemap && isXML(ctype) {
		if sm, err := parseSitemap(body); err == nil {
			// The seed is a sitemap after all: its URLs are seeds, their hosts the scope, and it
			// is no page.
			res.Fetched = false
			pl.Sitemap = true
			if err := p.emitSitemap(ctx, pl, sm, 0, true, func(links []panther.FrontierEntry, widen []string) error {
				res.Links = append(res.Links, links...)
				res.Widen = append(res.Widen, widen...)
				return nil
			}); err != nil {
				return "", "", err
			}
			return panther.FrontierSkipped, reasonSitemap, nil
		}
	}
	result, err := extract.Extract(u, ctype, body)
	if errors.Is(err, extract.ErrUnsupported) {
		return panther.FrontierSkipped, reasonContentType, nil
	}
	if err != nil {
		p.c.log.Warn("extraction failed", "url", cur.URL, "err", err)
		return panther.FrontierFailed, reasonExtract, nil
	}
	var links []string
	if !result.NoFollow {
		links = result.Links
		res.Links = append(res.Links, pl.links(links, cur.Depth+1)...)
	}
	if result.NoIndex {
		return panther.FrontierSkipped, reasonNoIndex, nil
	}
	if result.Canonical != "" {
		if cn, err := Normalize(result.Canonical); err == nil && cn != cur.URL && pl.scope.contains(cn) && pl.filt.allow(cn) {
			res.Links = append(res.Links, panther.FrontierEntry{URL: cn, Depth: cur.Depth, State: panther.FrontierQueued})
			return panther.FrontierSkipped, reasonCanonical, nil
		}
	}
	doc := panther.Document{
		SourceID:   sourceID,
		URL:        cur.URL,
		Title:      result.Title,
		Markdown:   result.Markdown,
		Validators: v,
		FetchedAt:  time.Now(),
		Status:     panther.DocCurrent,
		Links:      links,
	}
	outcome, err := p.c.index.Ingest(ctx, doc, result.Sections)
	if errors.Is(err, panther.ErrInvalid) {
		p.c.log.Warn("index refused page", "url", cur.URL, "err", err)
		return panther.FrontierFailed, "index", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("crawl %s: ingest: %w", cur.URL, err)
	}
	return panther.FrontierDone, string(outcome), nil
}

// links is run.links for a plan.
func (pl *pagePlan) links(raw []string, depth int) []panther.FrontierEntry {
	if pl.MaxDepth >= 0 && depth > pl.MaxDepth {
		return nil
	}
	out := make([]panther.FrontierEntry, 0, len(raw))
	for _, s := range raw {
		u, err := url.Parse(s)
		if err != nil {
			continue
		}
		n, err := normalizeURL(u)
		if err != nil || (n.Scheme != "http" && n.Scheme != "https") {
			continue
		}
		ns := n.String()
		if !pl.scope.contains(ns) || !pl.filt.allow(ns) {
			continue
		}
		out = append(out, panther.FrontierEntry{URL: ns, Depth: depth, State: panther.FrontierQueued})
	}
	return out
}

// Discover finds the pages a crawl starts from besides a site seed itself: the sitemaps its
// robots.txt names and /sitemap.xml (their URLs at depth 1), or every URL of a sitemap seed
// (depth 0, their hosts joining the scope). It hands them to emit in batches, with the scope
// prefixes each batch added. A sitemap seed that cannot be read is an error; a missing /sitemap.xml
// is not.
func (p *PageFetcher) Discover(ctx context.Context, plan Plan, emit func(links []panther.FrontierEntry, widen []string) error) error {
	pl, err := p.prepare(plan)
	if err != nil {
		return err
	}
	if pl.Sitemap {
		return p.readSitemaps(ctx, pl, []sitemapSource{{url: pl.Seed}}, true, 0, true, emit)
	}
	if pl.MaxDepth == 0 {
		return nil
	}
	h := hostKey(pl.Seed)
	var roots []sitemapSource
	if data, _, err := p.robotsData(ctx, pl, h); err != nil {
		return err
	} else if data != nil {
		for _, s := range data.Sitemaps {
			roots = append(roots, sitemapSource{url: s})
		}
	}
	roots = append(roots, sitemapSource{url: h + "/sitemap.xml", checkRobots: true})
	return p.readSitemaps(ctx, pl, roots, false, 1, false, emit)
}

// readSitemaps is run.readSitemaps with gated requests.
func (p *PageFetcher) readSitemaps(ctx context.Context, pl *pagePlan, roots []sitemapSource, required bool, depth int, widen bool,
	emit func([]panther.FrontierEntry, []string) error) error {
	type item struct {
		sitemapSource
		level int
	}
	var queue []item
	seen := map[string]bool{}
	for _, s := range roots {
		if n, err := Normalize(s.url); err == nil && !seen[n] {
			seen[n] = true
			queue = append(queue, item{sitemapSource{n, s.checkRobots}, 0})
		}
	}
	for files := 0; len(queue) > 0 && files < sitemapMaxFiles; files++ {
		it := queue[0]
		queue = queue[1:]
		sm, err := p.fetchSitemap(ctx, pl, it.url, it.checkRobots)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if required && files == 0 {
				return fmt.Errorf("sitemap %s: %w", it.url, err)
			}
			p.c.log.Debug("sitemap not read", "url", it.url, "err", err)
			if sm == nil {
				continue
			}
		}
		if err := p.emitSitemap(ctx, pl, &sitemap{urls: sm.urls}, depth, widen, emit); err != nil {
			return err
		}
		if it.level+1 > sitemapMaxDepth {
			continue
		}
		for _, c := range sm.children {
			if n, err := Normalize(c); err == nil && !seen[n] {
				seen[n] = true
				queue = append(queue, item{sitemapSource{n, it.checkRobots}, it.level + 1})
			}
		}
	}
	return nil
}

// emitSitemap hands a sitemap's page URLs to emit; with widen, their hosts join the scope (up to
// sitemapMaxHosts). Children of a sitemap index are read too.
func (p *PageFetcher) emitSitemap(ctx context.Context, pl *pagePlan, sm *sitemap, depth int, widen bool,
	emit func([]panther.FrontierEntry, []string) error) error {
	if pl.MaxDepth >= 0 && depth > pl.MaxDepth {
		return nil
	}
	var links []panther.FrontierEntry
	var added []string
	for _, raw := range sm.urls {
		u, err := url.Parse(raw)
		if err != nil {
			continue
		}
		n, err := normalizeURL(u)
		if err != nil || (n.Scheme != "http" && n.Scheme != "https") {
			continue
		}
		s := n.String()
		if widen && !pl.scope.contains(s) && pl.hostsAdded < sitemapMaxHosts {
			pl.hostsAdded++
			pl.scope.add(hostPrefix(n))
			added = append(added, hostPrefix(n))
		}
		if pl.scope.contains(s) && pl.filt.allow(s) {
			links = append(links, panther.FrontierEntry{URL: s, Depth: depth, State: panther.FrontierQueued})
		}
		if len(links) >= enqueueBatch {
			if err := emit(links, added); err != nil {
				return err
			}
			links, added = nil, nil
		}
	}
	if len(links) > 0 || len(added) > 0 {
		if err := emit(links, added); err != nil {
			return err
		}
	}
	if len(sm.children) > 0 {
		var roots []sitemapSource
		for _, c := range sm.children {
			roots = append(roots, sitemapSource{url: c})
		}
		return p.readSitemaps(ctx, pl, roots, false, depth, widen, emit)
	}
	return nil
}

// fetchSitemap is run.fetchSitemap with gated requests.
func (p *PageFetcher) fetchSitemap(ctx context.Context, pl *pagePlan, u string, checkRobots bool) (*sitemap, error) {
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") {
		return nil, fmt.Errorf("sitemap %q: not an http(s) URL", u)
	}
	if checkRobots && !pl.IgnoreRobots {
		rules, err := p.rules(ctx, pl, hostKey(u))
		if err != nil {
			return nil, err
		}
		if ok, reason := rules.allowed(pu); !ok {
			return nil, fmt.Errorf("sitemap %s: %s", u, reason)
		}
	}
	r := &run{c: p.c, log: p.c.log}
	target := u
	for hop := 0; ; hop++ {
		resp, err := p.get(ctx, r, pl, request{url: target, maxBytes: sitemapMaxBytes})
		if err != nil {
			return nil, err
		}
		if isRedirect(resp.status) && hop < p.c.opts.MaxRedirects {
			if target, err = resolveLocation(target, resp.header.Get("Location")); err != nil {
				return nil, err
			}
			continue
		}
		if resp.status != http.StatusOK {
			return nil, fmt.Errorf("http %d", resp.status)
		}
		return parseSitemap(resp.body)
	}
}

// interval is the least time between two requests to host under pl: its rate, or the host's
// Crawl-delay when that is longer.
func (p *PageFetcher) interval(pl *pagePlan, host string) time.Duration {
	var d time.Duration
	if pl.HostRate > 0 {
		d = time.Duration(float64(time.Second) / pl.HostRate)
	}
	if pl.IgnoreRobots {
		return d
	}
	p.mu.Lock()
	delay := p.delays[host]
	p.mu.Unlock()
	return max(d, min(delay, p.c.opts.MaxRetryWait))
}

// get is run.get with every attempt gated: the host's slot is taken before each request, and a
// Retry-After on 429/503 pauses the host for every worker. A host with no rate and no Crawl-delay
// is not gated at all (no round trip to the gate per request); a Retry-After then holds back only
// the retry of the request that got it.
func (p *PageFetcher) get(ctx context.Context, r *run, pl *pagePlan, req request) (*response, error) {
	opts := &p.c.opts
	host := hostKey(req.url)
	for attempt := 0; ; attempt++ {
		if d := p.interval(pl, host); d > 0 {
			if err := p.gate.Wait(ctx, host, d); err != nil {
				return nil, err
			}
		}
		resp, err := r.getOnce(ctx, req)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var retryable bool
		var wait time.Duration
		switch {
		case err != nil:
			var fe *fetchError
			retryable = errors.As(err, &fe)
		case resp.status == http.StatusTooManyRequests || resp.status == http.StatusServiceUnavailable ||
			resp.status == http.StatusInternalServerError || resp.status == http.StatusBadGateway ||
			resp.status == http.StatusGatewayTimeout || resp.status == http.StatusRequestTimeout:
			retryable = true
			if d, ok := retryAfter(resp.header, time.Now()); ok {
				wait = min(d, opts.MaxRetryWait)
				if resp.status == http.StatusTooManyRequests || resp.status == http.StatusServiceUnavailable {
					if err := p.gate.Pause(ctx, host, wait); err != nil {
						return nil, err
					}
				}
			}
		}
		if !retryable || attempt >= opts.Retries {
			return resp, err
		}
		if wait == 0 {
			wait = backoff(opts.RetryBackoff, attempt, opts.MaxRetryWait)
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// rules returns host's robots rules for this fetcher's User-Agent.
func (p *PageFetcher) rules(ctx context.Context, pl *pagePlan, host string) (*robotsRules, error) {
	data, unavailable, err := p.robotsData(ctx, pl, host)
	if err != nil {
		return nil, err
	}
	rules := &robotsRules{unavailable: unavailable}
	if data != nil {
		rules.group = data.FindGroup(p.c.opts.UserAgent)
		rules.sitemaps = data.Sitemaps
	}
	return rules, nil
}

// robotsData returns host's parsed robots.txt, fetching it when this process has none younger than
// RobotsTTL. Concurrent callers for one host wait for one fetch.
func (p *PageFetcher) robotsData(ctx context.Context, pl *pagePlan, host string) (*robotstxt.RobotsData, bool, error) {
	p.mu.Lock()
	rc := p.robots[host]
	if rc == nil {
		if len(p.robots) >= robotsCacheMax {
			clear(p.robots)
		}
		rc = &robotsCache{}
		p.robots[host] = rc
	}
	p.mu.Unlock()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !rc.at.IsZero() && time.Since(rc.at) < RobotsTTL {
		return rc.data, rc.unavailable, nil
	}
	data, unavailable, err := p.fetchRobots(ctx, pl, host)
	if err != nil {
		return nil, false, err
	}
	rc.data, rc.unavailable, rc.at = data, unavailable, time.Now()
	var delay time.Duration
	if data != nil {
		if g := data.FindGroup(p.c.opts.UserAgent); g != nil {
			delay = g.CrawlDelay
		}
	}
	p.mu.Lock()
	if len(p.delays) >= robotsCacheMax {
		clear(p.delays)
	}
	p.delays[host] = delay
	p.mu.Unlock()
	return data, unavailable, nil
}

// fetchRobots is run.fetchRobots with gated requests; it returns the parsed file (nil: no rules)
// or unavailable (RFC 9309: 5xx and unreachable disallow all).
func (p *PageFetcher) fetchRobots(ctx context.Context, pl *pagePlan, host string) (*robotstxt.RobotsData, bool, error) {
	r := &run{c: p.c, log: p.c.log}
	target := host + "/robots.txt"
	for hop := 0; ; hop++ {
		resp, err := p.get(ctx, r, pl, request{url: target, maxBytes: robotsMaxBytes, truncate: true})
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		if err != nil {
			p.c.log.Warn("robots.txt unreachable, host disallowed", "host", host, "err", err)
			return nil, true, nil
		}
		switch s := resp.status; {
		case s >= 200 && s < 300:
			data, err := robotstxt.FromBytes(resp.body)
			if err != nil {
				data, err = robotstxt.FromBytes(sanitizeRobots(resp.body))
			}
			if err != nil {
				p.c.log.Warn("robots.txt unparsable, treated as allowing all", "host", host, "err", err)
				return nil, false, nil
			}
			return data, false, nil
		case isRedirect(s) && hop < 5:
			next, err := resolveLocation(target, resp.header.Get("Location"))
			if err != nil {
				return nil, false, nil
			}
			target = next
		case s == http.StatusTooManyRequests || s >= 500:
			p.c.log.Warn("robots.txt unavailable, host disallowed", "host", host, "status", s)
			return nil, true, nil
		default:
			return nil, false, nil
		}
	}
}
