package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"panther"
	"panther/crawl"
	"panther/jobs"
)

// distributedSeed says whether a crawl of seed runs as jobs of the PostgreSQL store's cluster:
// http(s) seeds on PostgreSQL do; local folders are read by this process only.
func (a *app) distributedSeed(seed string) (bool, error) {
	t, err := a.dbTarget()
	if err != nil {
		return false, err
	}
	return t.kind == kindPostgres && (strings.HasPrefix(seed, "http://") || strings.HasPrefix(seed, "https://")), nil
}

// runClusterCrawl enqueues a crawl for the cluster, works on it here unless --enqueue-only, and
// follows it to the end.
func (a *app) runClusterCrawl(cmd *cobra.Command, seed string, f crawlFlags, rateSet bool) error {
	ctx := cmd.Context()
	if f.maxPages < 0 || f.rate < 0 || f.concurrency < 1 {
		return panther.Invalidf("--max-pages and --rate must be 0 or more, --concurrency at least 1")
	}
	t, err := a.postgresTarget("a distributed crawl")
	if err != nil {
		return err
	}
	log, err := a.logger("warn")
	if err != nil {
		return err
	}
	workers := f.concurrency
	if f.enqueueOnly {
		workers = 0
	}
	db, c, err := a.cluster(ctx, t, workers, 0, log)
	if err != nil {
		return err
	}
	defer db.Close()
	defer c.Close()
	rate := f.rate
	if !rateSet && isLocalSeed(seed) {
		rate = 0
	}
	req := jobs.CrawlRequest{JobRequest: crawl.JobRequest{MaxPages: f.maxPages, Include: f.include, Exclude: f.exclude}, HostRate: &rate, IgnoreRobots: f.ignoreRobots}
	if f.maxDepth >= 0 {
		d := f.maxDepth
		req.MaxDepth = &d
	}
	st, err := c.EnqueueSeed(ctx, seed, req)
	if err != nil {
		return err
	}
	if f.enqueueOnly {
		if f.jsonOut {
			return a.printJSON(st)
		}
		_, err := fmt.Fprintf(a.stdout, "crawl %d of %s enqueued; 'panther worker' processes on the same database crawl it\n", st.ID, seed)
		return err
	}
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("start working: %w", err)
	}
	showProgress := !f.quiet && !f.jsonOut && isTerminal(a.stderr)
	last := time.Time{}
	final, err := c.Follow(ctx, st.ID, func(s jobs.Status) {
		if showProgress && time.Since(last) > 500*time.Millisecond {
			last = time.Now()
			fmt.Fprintf(a.stderr, "\rcrawling: %d done, %d queued, %d failed, %d skipped   ", s.Done, s.Queued, s.Failed, s.Skipped)
		}
	})
	if showProgress {
		fmt.Fprintln(a.stderr)
	}
	stopErr := c.Stop(ctx)
	if err != nil {
		return fmt.Errorf("crawl %d: %w (it goes on with the workers; run the same command to follow it)", st.ID, err)
	}
	if stopErr != nil {
		fmt.Fprintf(a.stderr, "panther: warning: stopping this host's workers: %s\n", oneLine(stopErr.Error()))
	}
	out := crawlSummaryJSON{
		Seed: seed, Fetched: final.Fetched, New: final.New, Changed: final.Changed, Unchanged: final.Unchanged,
		Duplicate: final.Duplicate, Gone: final.Gone, Skipped: final.SkippedBy, Failed: final.FailedBy,
	}
	if out.Skipped == nil {
		out.Skipped = map[string]int{}
	}
	if out.Failed == nil {
		out.Failed = map[string]int{}
	}
	if !final.Ended.IsZero() {
		out.Seconds = final.Ended.Sub(final.Created).Seconds()
		if out.Seconds > 0 {
			out.PagesPerSec = float64(out.Fetched) / out.Seconds
		}
	}
	if f.jsonOut {
		if err := a.printJSON(out); err != nil {
			return err
		}
	} else {
		printSummary(a.stdout, out)
	}
	if final.Error != "" {
		return fmt.Errorf("crawl %d: %s", st.ID, final.Error)
	}
	if final.Fetched == 0 && final.Skipped+final.Failed > 0 {
		return fmt.Errorf("crawl %d: the seed %s gave no page (see the reasons above)", st.ID, seed)
	}
	return nil
}
