package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"panther"
	"panther/crawl"
)

// defaultRemoteRate is the per-host request rate for hosts other than this machine: polite enough for
// a documentation site, fast enough to crawl a thousand pages in a few minutes.
const defaultRemoteRate = 4

type crawlFlags struct {
	include, exclude []string
	maxDepth         int
	maxPages         int
	concurrency      int
	hostConcurrency  int
	rate             float64
	ignoreRobots     bool
	userAgent        string
	timeout          time.Duration
	maxBody          int64
	retries          int
	jsonOut          bool
	quiet            bool
	enqueueOnly      bool
}

func (a *app) crawlCommand() *cobra.Command {
	var f crawlFlags
	cmd := &cobra.Command{
		Use:   "crawl SEED",
		Short: "Crawl a site, a sitemap or a local folder into the knowledge base",
		Long: `Crawl a documentation site (http/https URL), a sitemap, or a local folder or file of HTML or
markdown (a path or file:// URL) into the knowledge base.

Scope: the seed's host and path prefix (https://docs.example.org/manual/ stays under /manual/),
narrowed by --include/--exclude regular expressions matched against each normalised URL.
Politeness: robots.txt is obeyed (with Crawl-delay) unless --ignore-robots; each host gets at most
--host-concurrency requests at once and --rate requests per second; 429 and 5xx answers are retried
with backoff, honouring Retry-After.

Re-running a crawl is incremental: pages are requested with If-None-Match/If-Modified-Since, and
unchanged pages are not re-extracted or re-indexed; pages that answer 404/410 are marked gone and
leave search. An interrupted crawl (Ctrl-C, kill, crash) resumes where it stopped when run again.

On a PostgreSQL knowledge base (--db postgres://...) an http(s) crawl is a job for all the hosts
that share it: this command enqueues it, works on it too, and follows its progress to the end, while
any 'panther worker' takes pages of it as well (each page is fetched once, and --rate holds across
all of them). --enqueue-only leaves the work to the workers and prints the crawl's id.`,
		Example: `  panther crawl https://www.postgresql.org/docs/current/
  panther crawl /usr/share/doc/postgresql-doc-15/html --max-pages 100
  panther crawl https://go.dev/doc/ --include '/doc/' --exclude '/play/' --rate 2`,
		Args: exactArgs(1, "one SEED (a URL, sitemap URL or local path)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if distributed, err := a.distributedSeed(args[0]); err != nil {
				return err
			} else if distributed {
				return a.runClusterCrawl(cmd, args[0], f, cmd.Flags().Changed("rate"))
			}
			if f.enqueueOnly {
				return panther.Invalidf("--enqueue-only needs a PostgreSQL knowledge base and an http(s) seed: crawls of a SQLite file or a local folder run here")
			}
			return a.runCrawl(cmd, args[0], f, cmd.Flags().Changed("rate"))
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.include, "include", nil, "only crawl URLs matching this regular expression (repeatable)")
	fl.StringArrayVar(&f.exclude, "exclude", nil, "never crawl URLs matching this regular expression (repeatable)")
	fl.IntVar(&f.maxDepth, "max-depth", -1, "follow links at most this many hops from the seed (-1: unlimited, 0: the seed only)")
	fl.IntVar(&f.maxPages, "max-pages", 0, "fetch at most this many pages in this crawl, resumed work included (0: unlimited)")
	fl.IntVar(&f.concurrency, "concurrency", 8, "requests in flight at once, over all hosts")
	fl.IntVar(&f.hostConcurrency, "host-concurrency", 4, "requests in flight at once to one host")
	fl.Float64Var(&f.rate, "rate", defaultRemoteRate, "requests per second to one host (0: unlimited; unlimited by default for loopback hosts and local files)")
	fl.BoolVar(&f.ignoreRobots, "ignore-robots", false, "do not obey robots.txt (a warning is printed)")
	fl.StringVar(&f.userAgent, "user-agent", "", "the User-Agent header (default: panther/VERSION with a project URL)")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "time limit for one request")
	fl.Int64Var(&f.maxBody, "max-body", 10<<20, "skip pages whose body is larger than this many bytes")
	fl.IntVar(&f.retries, "retries", 3, "retries of a request that failed with 429, 5xx or a network error")
	fl.BoolVar(&f.jsonOut, "json", false, "print the summary as one JSON document")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress bar")
	fl.BoolVar(&f.enqueueOnly, "enqueue-only", false, "on PostgreSQL: enqueue the crawl for the workers and return at once")
	return cmd
}

// crawlSummaryJSON is the --json summary; its field names are part of the command-line contract.
type crawlSummaryJSON struct {
	Seed        string         `json:"seed"`
	Fetched     int            `json:"fetched"`
	New         int            `json:"new"`
	Changed     int            `json:"changed"`
	Unchanged   int            `json:"unchanged"`
	Duplicate   int            `json:"duplicate"`
	Gone        int            `json:"gone"`
	Skipped     map[string]int `json:"skipped"`
	Failed      map[string]int `json:"failed"`
	Seconds     float64        `json:"seconds"`
	PagesPerSec float64        `json:"pages_per_sec"`
	// Embedded counts the passages given vectors after the crawl.
	Embedded    int  `json:"embedded"`
	Interrupted bool `json:"interrupted,omitempty"`
}

func (a *app) runCrawl(cmd *cobra.Command, seed string, f crawlFlags, rateSet bool) error {
	ctx := cmd.Context()
	opts := crawl.Options{
		MaxDepth:        f.maxDepth,
		MaxPages:        f.maxPages,
		Concurrency:     f.concurrency,
		HostConcurrency: f.hostConcurrency,
		HostRate:        f.rate,
		IgnoreRobots:    f.ignoreRobots,
		UserAgent:       f.userAgent,
		Timeout:         f.timeout,
		MaxBodyBytes:    f.maxBody,
		Retries:         f.retries,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if f.maxPages < 0 {
		return panther.Invalidf("--max-pages must be 0 (unlimited) or more, got %d", f.maxPages)
	}
	if f.concurrency < 1 || f.hostConcurrency < 1 {
		return panther.Invalidf("--concurrency and --host-concurrency must be at least 1")
	}
	if f.rate < 0 {
		return panther.Invalidf("--rate must be 0 (unlimited) or more, got %g", f.rate)
	}
	if f.maxBody <= 0 || f.timeout <= 0 {
		return panther.Invalidf("--max-body and --timeout must be more than 0")
	}
	if f.retries < 0 {
		return panther.Invalidf("--retries must be 0 or more, got %d", f.retries)
	}
	if f.retries == 0 {
		opts.Retries = -1 // crawl.Options reads 0 as "the default"; the flag's 0 means none
	}
	if !rateSet && isLocalSeed(seed) {
		opts.HostRate = 0
	}
	var err error
	if opts.Include, err = compileAll("--include", f.include); err != nil {
		return err
	}
	if opts.Exclude, err = compileAll("--exclude", f.exclude); err != nil {
		return err
	}
	if f.ignoreRobots {
		fmt.Fprintln(a.stderr, "panther: warning: --ignore-robots: robots.txt will not be obeyed")
	}

	var bar *progressbar.ProgressBar
	if !f.quiet && isTerminal(a.stderr) {
		bar = progressbar.NewOptions(-1,
			progressbar.OptionSetWriter(a.stderr),
			progressbar.OptionSetDescription("crawling"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetItsString("pages"),
			progressbar.OptionShowIts(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		opts.Progress = func(p crawl.Progress) {
			bar.ChangeMax(p.Done + p.Queued)
			bar.Describe(fmt.Sprintf("crawling (%d queued, %d failed, %d skipped)", p.Queued, p.Failed, p.Skipped))
			_ = bar.Set(p.Done)
		}
	}

	db, svc, err := a.openKB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	c, err := crawl.New(db, svc, opts)
	if err != nil {
		return err
	}
	sum, runErr := c.Run(ctx, seed)
	a.reportCrawl(sum, runErr)
	if bar != nil {
		_ = bar.Finish()
	}
	interrupted := runErr != nil && errors.Is(runErr, context.Canceled)
	if runErr == nil && sum.New+sum.Changed+sum.Gone > 0 {
		// Pages indexed one at a time leave the search index in many small segments, which makes
		// searches for common words several times slower until they are merged.
		if err := db.Optimize(ctx); err != nil {
			return err
		}
	}
	if runErr != nil && !interrupted && sum.Duration == 0 {
		return runErr
	}
	out := summaryJSON(seed, sum, interrupted)
	if !interrupted && runErr == nil && svc.Embedder() != nil {
		n, err := a.backfill(cmd, svc, f.quiet)
		out.Embedded = n
		if err != nil {
			// The pages are stored and searchable by words; only their vectors are missing.
			fmt.Fprintf(a.stderr, "panther: warning: embedding passages: %s (run 'panther embed' to finish)\n", oneLine(err.Error()))
		}
	}
	if f.jsonOut {
		if err := a.printJSON(out); err != nil {
			return err
		}
	} else {
		printSummary(a.stdout, out)
	}
	if interrupted {
		return errors.New("crawl interrupted; its progress is saved: run the same command again to resume")
	}
	if runErr == nil && sum.Fetched == 0 && len(sum.Failed)+len(sum.Skipped) > 0 {
		// A seed that could not be fetched at all is a failed crawl, whatever the per-page counts say.
		return fmt.Errorf("nothing could be fetched from %s (skipped: %s; failed: %s)", seed, orNone(byReason(sum.Skipped)), orNone(byReason(sum.Failed)))
	}
	return runErr
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func summaryJSON(seed string, s crawl.Summary, interrupted bool) crawlSummaryJSON {
	out := crawlSummaryJSON{
		Seed: seed, Fetched: s.Fetched, New: s.New, Changed: s.Changed, Unchanged: s.Unchanged,
		Duplicate: s.Duplicate, Gone: s.Gone, Skipped: s.Skipped, Failed: s.Failed,
		Seconds: s.Duration.Seconds(), Interrupted: interrupted,
	}
	if out.Skipped == nil {
		out.Skipped = map[string]int{}
	}
	if out.Failed == nil {
		out.Failed = map[string]int{}
	}
	if out.Seconds > 0 {
		out.PagesPerSec = float64(out.Fetched) / out.Seconds
	}
	return out
}

func printSummary(w io.Writer, s crawlSummaryJSON) {
	fmt.Fprintf(w, "crawled %s in %.1fs (%.0f pages/s)\n", s.Seed, s.Seconds, s.PagesPerSec)
	fmt.Fprintf(w, "  fetched %d: %d new, %d changed, %d unchanged, %d duplicate, %d gone\n",
		s.Fetched, s.New, s.Changed, s.Unchanged, s.Duplicate, s.Gone)
	if len(s.Skipped) > 0 {
		fmt.Fprintf(w, "  skipped: %s\n", byReason(s.Skipped))
	}
	if len(s.Failed) > 0 {
		fmt.Fprintf(w, "  failed: %s\n", byReason(s.Failed))
	}
	if s.Embedded > 0 {
		fmt.Fprintf(w, "  embedded %d passages\n", s.Embedded)
	}
}

// byReason renders reason counts biggest first, so the reason that matters most reads first.
func byReason(m map[string]int) string {
	reasons := make([]string, 0, len(m))
	for r := range m {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool {
		if m[reasons[i]] != m[reasons[j]] {
			return m[reasons[i]] > m[reasons[j]]
		}
		return reasons[i] < reasons[j]
	})
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = fmt.Sprintf("%d %s", m[r], r)
	}
	return strings.Join(parts, ", ")
}

func compileAll(flag string, exprs []string) ([]*regexp.Regexp, error) {
	out := make([]*regexp.Regexp, 0, len(exprs))
	for _, e := range exprs {
		re, err := regexp.Compile(e)
		if err != nil {
			return nil, panther.Invalidf("%s %q is not a valid regular expression: %v", flag, e, err)
		}
		out = append(out, re)
	}
	return out, nil
}

// isLocalSeed reports whether the seed is on this machine (a path, file:// or a loopback host), where
// a request rate limit protects nobody and only slows the crawl.
func isLocalSeed(seed string) bool {
	u, err := url.Parse(seed)
	if err != nil || u.Scheme == "" || u.Scheme == "file" {
		return true
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
