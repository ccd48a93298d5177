// Package crawl is panther's crawler: polite (robots.txt, crawl-delay, per-host rate and concurrency
// limits, backoff that honours Retry-After), bounded (depth, page count, body size, redirects, time),
// incremental (conditional GET and content hashes, so an unchanged site costs one cheap request a page)
// and resumable (the frontier is persisted as the crawl goes, so a killed crawl continues where it
// stopped without refetching finished pages).
//
// A crawl starts from one seed: a site URL, a sitemap URL, or a local folder or file. Pages go through
// package extract and end up in an Index (the knowledge base); the run's frontier lives in a Store.
package crawl

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"panther"
)

// Version goes into the default User-Agent; the build may set it with -ldflags -X.
var Version = "dev"

// DefaultUserAgent names the crawler and where to read about it, so that site operators can tell who
// is fetching and write robots.txt rules for "panther".
func DefaultUserAgent() string {
	return "panther/" + Version + " (+https://github.com/panther/panther; documentation crawler)"
}

// Store persists a crawl run: the source and its frontier. The sqlite and postgres stores satisfy it.
// It must be safe for concurrent use.
type Store interface {
	AddSource(ctx context.Context, url string) (panther.Source, error)
	MarkCrawled(ctx context.Context, sourceID int64, at time.Time) error
	panther.FrontierStore
}

// Index is where fetched pages go; kb.Service satisfies it. It must be safe for concurrent use.
type Index interface {
	// DocumentMeta returns what is stored for url (validators and links, no markdown), or an error
	// matching panther.ErrNotFound for a page never stored.
	DocumentMeta(ctx context.Context, url string) (panther.Document, error)
	// Ingest stores a new or changed page and says which it was, or that it duplicates a current page
	// stored under another URL.
	Ingest(ctx context.Context, doc panther.Document, sections []panther.Section) (panther.IngestOutcome, error)
	// Touch records that a stored page was re-fetched unchanged.
	Touch(ctx context.Context, url string, v panther.Validators, fetchedAt time.Time) error
	// MarkGone records that a stored page's origin no longer serves it.
	MarkGone(ctx context.Context, url string, at time.Time) error
}

// Defaults of the admission limits on links found in pages (Options.MaxURLLength,
// Options.MaxQueryVariants).
const (
	DefaultMaxURLLength     = 2048
	DefaultMaxQueryVariants = 500
)

// Options bound and shape a crawl. Zero values get the defaults named on each field.
type Options struct {
	// Include, when not empty, keeps only the discovered URLs that match one of its patterns; Exclude
	// drops the discovered URLs that match any of its patterns. Both are matched against the normalised
	// URL (see Normalize). The seed itself is always crawled, so that a seed at a site's root can lead
	// to the included part of the site.
	Include, Exclude []*regexp.Regexp
	// MaxDepth is how many links away from a seed the crawl goes: 0 crawls the seeds only (note: that is
	// the zero value; callers wanting a whole site pass a negative number, which means unlimited).
	// URLs from sitemaps found next to a site seed are at depth 1; every URL of a sitemap seed and every
	// file of a folder seed is a seed (depth 0).
	MaxDepth int
	// MaxURLLength is the longest URL followed from a page's links; longer ones are counted as
	// skipped "url-too-long". It ends traps whose paths or queries grow on every page. Default
	// 2048 (the sitemap protocol's limit); negative means no limit.
	MaxURLLength int
	// MaxQueryVariants caps how many distinct query strings of one path (scheme://host/path) are
	// followed from page links, so that a page linking to itself with an ever-new query (calendars,
	// session ids, faceted search) cannot fill a crawl; the others are counted as skipped
	// "query-variants". Default 500; negative means no limit.
	MaxQueryVariants int
	// MaxPages caps the page fetches of a run, counting the pages a resumed run fetched before it was
	// interrupted. 0 means unlimited. robots.txt and sitemap requests do not count; a redirect chain
	// counts once. It is exact: workers reserve a page before fetching it.
	MaxPages int
	// Concurrency is the number of pages fetched and processed at once. Default 8.
	Concurrency int
	// HostConcurrency caps the requests in flight to one host. Default 4.
	HostConcurrency int
	// HostRate is the most requests per second sent to one host; 0 means no limit. A robots.txt
	// Crawl-delay lowers it further for its host. Local files are never rate limited.
	HostRate float64
	// IgnoreRobots skips robots.txt rules and Crawl-delay (robots.txt is still read for its Sitemap
	// lines). Callers should warn their users.
	IgnoreRobots bool
	// UserAgent is sent with every request and matched against robots.txt groups. Default
	// DefaultUserAgent().
	UserAgent string
	// Timeout bounds one request, body included. Default 30s.
	Timeout time.Duration
	// MaxBodyBytes is the largest page body read; larger pages are skipped with reason "too-large",
	// never truncated. Default 10 MiB.
	MaxBodyBytes int64
	// MaxRedirects is how many redirects one page may take. Default 5; negative follows none.
	MaxRedirects int
	// Retries is how many times a request failing with 429, 5xx or a network error is retried.
	// Default 3; negative retries never.
	Retries int
	// RetryBackoff is the first retry's delay; each later one doubles it, with jitter. Default 500ms.
	RetryBackoff time.Duration
	// MaxRetryWait caps one wait between retries, including a server's Retry-After and a robots.txt
	// Crawl-delay, so that no server can stall a crawl for hours. Default 60s.
	MaxRetryWait time.Duration
	// Transport carries the HTTP requests; nil means a transport tuned for crawling (connections kept
	// and reused, enough idle ones per host for Concurrency). Tests put httptest transports here.
	Transport http.RoundTripper
	// Progress, when set, is called from one goroutine about every 100ms while the crawl runs and once
	// at its end.
	Progress func(Progress)
	// Logger receives per-page decisions at debug level and trouble at warn; nil discards.
	Logger *slog.Logger
}

// Progress is a crawl's state as it goes.
type Progress struct {
	// Done counts the entries finished as done in this run (stored, unchanged or gone); Failed and
	// Skipped count the others by their final state; Queued is what is left to fetch.
	Done, Queued, Failed, Skipped int
	Elapsed                       time.Duration
	// PagesPerSec is the recent fetch rate; in the final call, the run's average.
	PagesPerSec float64
}

// Summary is what a run did.
type Summary struct {
	SourceID int64
	// Resumed says that the run continued an interrupted one.
	Resumed bool
	// Truncated says that MaxPages stopped the run with URLs still queued.
	Truncated bool
	// Fetched counts page fetches (what MaxPages bounds). New, Changed, Unchanged, Duplicate and Gone
	// split the pages that reached the index by what happened there.
	Fetched, New, Changed, Unchanged, Duplicate, Gone int
	// Skipped and Failed count URLs by reason: "robots", "content-type", "too-large", "canonical",
	// "noindex", "redirect", "redirect-out-of-scope", "max-pages", ... and "http 404", "timeout",
	// "network", "tls", "redirect-loop", ... Links found in pages and refused by MaxDepth,
	// MaxURLLength or MaxQueryVariants are counted as skipped "max-depth", "url-too-long" and
	// "query-variants" without being recorded in the frontier.
	Skipped, Failed map[string]int
	Duration        time.Duration
}

// String renders the summary on one line for people.
func (s Summary) String() string {
	var b strings.Builder
	rate := 0.0
	if s.Duration > 0 {
		rate = float64(s.Fetched) / s.Duration.Seconds()
	}
	fmt.Fprintf(&b, "fetched %d pages in %s (%.0f/s): %d new, %d changed, %d unchanged, %d duplicate, %d gone",
		s.Fetched, s.Duration.Round(time.Millisecond), rate, s.New, s.Changed, s.Unchanged, s.Duplicate, s.Gone)
	writeCounts := func(label string, m map[string]int) {
		n := 0
		for _, v := range m {
			n += v
		}
		fmt.Fprintf(&b, "; %s %d", label, n)
		if n == 0 {
			return
		}
		b.WriteString(" (")
		for i, k := range slices.Sorted(maps.Keys(m)) {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %d", k, m[k])
		}
		b.WriteString(")")
	}
	writeCounts("skipped", s.Skipped)
	writeCounts("failed", s.Failed)
	if s.Resumed {
		b.WriteString("; resumed")
	}
	if s.Truncated {
		b.WriteString("; stopped at max pages")
	}
	return b.String()
}

// Crawler runs crawls with one set of options. It holds no per-run state, so one Crawler may run
// several seeds at once.
type Crawler struct {
	store  Store
	index  Index
	opts   Options
	client *http.Client
	log    *slog.Logger
	// robotsRetry is how long an unavailable robots.txt disallows its host (robotsRetry).
	robotsRetry time.Duration
}

// New checks opts, fills in defaults and returns a Crawler.
func New(store Store, index Index, opts Options) (*Crawler, error) {
	if store == nil || index == nil {
		return nil, panther.Invalidf("crawl: store and index are required")
	}
	for _, re := range slices.Concat(opts.Include, opts.Exclude) {
		if re == nil {
			return nil, panther.Invalidf("crawl: nil include/exclude pattern")
		}
	}
	if opts.MaxPages < 0 {
		return nil, panther.Invalidf("crawl: max pages must be 0 (unlimited) or more, got %d", opts.MaxPages)
	}
	if opts.Concurrency < 0 || opts.HostConcurrency < 0 {
		return nil, panther.Invalidf("crawl: concurrency must not be negative")
	}
	if opts.HostRate < 0 || math.IsNaN(opts.HostRate) || math.IsInf(opts.HostRate, 0) {
		return nil, panther.Invalidf("crawl: host rate must be a finite number >= 0, got %v", opts.HostRate)
	}
	if opts.Timeout < 0 || opts.RetryBackoff < 0 || opts.MaxRetryWait < 0 {
		return nil, panther.Invalidf("crawl: durations must not be negative")
	}
	if opts.MaxBodyBytes < 0 {
		return nil, panther.Invalidf("crawl: max body bytes must not be negative")
	}
	if strings.ContainsAny(opts.UserAgent, "\r\n") {
		return nil, panther.Invalidf("crawl: user agent must be one line")
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = 8
	}
	if opts.HostConcurrency == 0 {
		opts.HostConcurrency = 4
	}
	if opts.UserAgent == "" {
		opts.UserAgent = DefaultUserAgent()
	}
	switch {
	case opts.MaxURLLength == 0:
		opts.MaxURLLength = DefaultMaxURLLength
	case opts.MaxURLLength < 0:
		opts.MaxURLLength = 0
	}
	switch {
	case opts.MaxQueryVariants == 0:
		opts.MaxQueryVariants = DefaultMaxQueryVariants
	case opts.MaxQueryVariants < 0:
		opts.MaxQueryVariants = 0
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = 10 << 20
	}
	switch {
	case opts.MaxRedirects == 0:
		opts.MaxRedirects = 5
	case opts.MaxRedirects < 0:
		opts.MaxRedirects = 0
	}
	switch {
	case opts.Retries == 0:
		opts.Retries = 3
	case opts.Retries < 0:
		opts.Retries = 0
	}
	if opts.RetryBackoff == 0 {
		opts.RetryBackoff = 500 * time.Millisecond
	}
	if opts.MaxRetryWait == 0 {
		opts.MaxRetryWait = 60 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := opts.Transport
	if tr == nil {
		tr = newTransport(opts)
	}
	client := &http.Client{
		Transport: tr,
		// Redirects are followed by hand, one hop at a time, so that each hop is scope-checked,
		// robots-checked, deduplicated and rate limited like any other request.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Crawler{store: store, index: index, opts: opts, client: client, log: log, robotsRetry: robotsRetry}, nil
}

func newTransport(opts Options) *http.Transport {
	idle := max(opts.Concurrency, opts.HostConcurrency) * 2
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   min(opts.Timeout, 30*time.Second),
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          max(100, idle),
		MaxIdleConnsPerHost:   idle,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: opts.Timeout,
		// net/http's default allows 10 MB of headers; no page needs more than a fraction of this.
		MaxResponseHeaderBytes: 1 << 20,
	}
}
