package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"

	"panther/agent"
	"panther/crawl"
	"panther/kb"
)

// siteCrawler runs the crawls agents ask for, through the guarded transport so that an agent cannot
// reach addresses the [web] policy refuses, and with the same politeness as `panther crawl`.
type siteCrawler struct {
	db        kbStore
	svc       *kb.Service
	transport http.RoundTripper
	// One crawl at a time: parallel sub-agents asking for crawls share one store writer and one
	// site's politeness budget.
	mu sync.Mutex
	// merge runs after a crawl that changed pages; nil merges the search index at once. serve
	// passes its debounced merge instead, since a merge rewrites the whole index (RELIABILITY.md).
	merge func(context.Context) error
}

var _ agent.SiteCrawler = (*siteCrawler)(nil)

func (s *siteCrawler) CrawlSite(ctx context.Context, seed string, maxPages int) (agent.CrawlReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	opts := crawl.Options{
		// The zero MaxDepth would crawl the seed page only; the page limit bounds the crawl instead.
		MaxDepth:  -1,
		MaxPages:  maxPages,
		HostRate:  defaultRemoteRate,
		Transport: s.transport,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if isLocalSeed(seed) {
		opts.HostRate = 0
	}
	c, err := crawl.New(s.db, s.svc, opts)
	if err != nil {
		return agent.CrawlReport{}, err
	}
	sum, err := c.Run(ctx, seed)
	if err != nil {
		return agent.CrawlReport{}, err
	}
	if sum.New+sum.Changed+sum.Gone > 0 {
		merge := s.merge
		if merge == nil {
			merge = s.db.Optimize
		}
		if err := merge(ctx); err != nil {
			return agent.CrawlReport{}, err
		}
	}
	if s.svc.Embedder() != nil {
		if _, err := s.svc.Backfill(ctx, nil); err != nil {
			return agent.CrawlReport{}, err
		}
	}
	rep := agent.CrawlReport{Fetched: sum.Fetched, New: sum.New, Changed: sum.Changed, Unchanged: sum.Unchanged, Truncated: sum.Truncated}
	for _, n := range sum.Failed {
		rep.Failed += n
	}
	for _, n := range sum.Skipped {
		rep.Skipped += n
	}
	return rep, nil
}
