package crawl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"panther"
)

// Reasons recorded on frontier entries and counted in Summary.
const (
	reasonRobots             = "robots"
	reasonRobotsUnavailable  = "robots-unavailable"
	reasonRedirect           = "redirect"
	reasonRedirectDuplicate  = "redirect-duplicate"
	reasonRedirectOutOfScope = "redirect-out-of-scope"
	reasonRedirectRobots     = "redirect-robots"
	reasonTooManyRedirects   = "too-many-redirects"
	reasonExcluded           = "excluded"
	reasonContentType        = "content-type"
	reasonTooLarge           = "too-large"
	reasonCanonical          = "canonical"
	reasonNoIndex            = "noindex"
	reasonMaxPages           = "max-pages"
	reasonSitemap            = "sitemap"
	reasonGone               = "gone"
	reasonTimeout            = "timeout"
	reasonNetwork            = "network"
	reasonNotFound           = "not-found"
	reasonExtract            = "extract"
	reasonRedirectLoop       = "redirect-loop"
	reasonTLS                = "tls"
	reasonBadEncoding        = "bad-encoding"
	reasonContentEncoding    = "content-encoding"
	// Links refused at admission (see frontier.admit): counted in Summary.Skipped, not stored.
	reasonMaxDepth      = "max-depth"
	reasonURLTooLong    = "url-too-long"
	reasonQueryVariants = "query-variants"
)

// enqueueBatch bounds one Enqueue call, so that a 50,000-URL sitemap is not one giant transaction.
const enqueueBatch = 1000

// commitTimeout bounds the bookkeeping of a page whose work is done when the run is cancelled: the
// page is recorded as finished rather than fetched again on resume.
const commitTimeout = 10 * time.Second

type seedKind uint8

const (
	seedSite seedKind = iota
	seedSitemap
	seedFolder
)

// link is a URL a page leads to, normalised and in scope, with the depth it would be crawled at.
type link struct {
	url   string
	depth int
	// page: found in a page (not a seed, sitemap or redirect), so subject to the frontier's
	// admission limits (MaxDepth, MaxURLLength, MaxQueryVariants).
	page bool
}

// finish is a final state to record for an entry.
type finish struct {
	e      *entry
	state  panther.FrontierState
	reason string
}

// pageResult is what processing one dispatched entry produced.
type pageResult struct {
	fins    []finish
	links   []link
	fresh   []*entry // redirect targets the store does not have yet
	fetched bool     // the entry cost a page fetch
}

// run is the state of one Run call.
type run struct {
	c     *Crawler
	log   *slog.Logger
	src   panther.Source
	kind  seedKind
	seed  string // normalised seed URL, as stored in the source
	root  string // seedFolder: the folder's real path
	only  bool   // seedFolder: the seed is one file, not a folder
	scope scope
	f     *frontier
	hosts hostSet
	filt  filters

	failMu sync.Mutex
	fatal  error
	cancel context.CancelFunc
}

// Run crawls from seed: a site URL (http or https; the scope is its host and the path up to its last
// '/'), a sitemap URL (its URLs are the seeds; the scope is their hosts), or a local folder or file
// (a path or a file:// URL; the scope is the folder). A run whose source has queued frontier entries
// resumes it; otherwise it starts afresh.
//
// Run returns when the frontier is drained, MaxPages is reached, ctx is cancelled (with the summary so
// far and ctx.Err(); the frontier is left to resume), or the store or index fails (with that error).
// A run that was neither cancelled nor failed is recorded with MarkCrawled, MaxPages-bounded ones
// included: they did all they were asked. URLs still queued when MaxPages stops a run are finished as
// skipped "max-pages", so that the next run starts afresh instead of resuming with no budget left.
func (c *Crawler) Run(ctx context.Context, seed string) (Summary, error) {
	start := time.Now()
	r, err := c.newRun(seed)
	if err != nil {
		return Summary{}, err
	}
	src, err := c.store.AddSource(ctx, r.seed)
	if err != nil {
		return Summary{}, fmt.Errorf("crawl %s: add source: %w", r.seed, err)
	}
	r.src = src
	entries, err := c.store.Frontier(ctx, src.ID)
	if err != nil {
		return Summary{}, fmt.Errorf("crawl %s: load frontier: %w", r.seed, err)
	}
	resume := false
	for _, e := range entries {
		if e.State == panther.FrontierQueued {
			resume = true
			break
		}
	}
	if resume {
		r.restoreScope(entries)
		r.f.load(entries)
		r.f.sum.Resumed = true
		r.log.Info("resuming crawl", "seed", r.seed, "entries", len(entries), "budget_used", r.f.used)
	} else if len(entries) > 0 {
		if err := c.store.ResetFrontier(ctx, src.ID); err != nil {
			return Summary{}, fmt.Errorf("crawl %s: reset frontier: %w", r.seed, err)
		}
	}
	r.f.sum.SourceID = src.ID
	r.log.Info("crawl starting", "seed", r.seed, "scope", r.scope.String(), "resume", resume)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.cancel = cancel
	stopFrontier := context.AfterFunc(runCtx, r.f.stop)
	defer stopFrontier()
	// Seeding and sitemap discovery get their own context so that a spent page budget can end them
	// without cancelling the pages still in flight.
	setupCtx, setupCancel := context.WithCancel(runCtx)
	defer setupCancel()
	r.f.onBudget = setupCancel

	var setup sync.WaitGroup
	if !resume {
		r.f.setupStart()
		setup.Go(func() {
			defer r.f.setupDone()
			if err := r.seedFrontier(setupCtx); err != nil && setupCtx.Err() == nil {
				r.fail(err)
			}
		})
	}
	var workers sync.WaitGroup
	for range c.opts.Concurrency {
		workers.Go(func() { r.worker(runCtx) })
	}
	progressDone := make(chan struct{})
	var progress sync.WaitGroup
	if c.opts.Progress != nil {
		progress.Go(func() { r.reportProgress(start, progressDone) })
	}
	workers.Wait()
	setupCancel()
	setup.Wait()

	sum := r.f.summary()
	err = r.err()
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err == nil && r.f.end == endMaxPages {
		n, ferr := r.finishLeftovers(ctx)
		if ferr != nil {
			err = ferr
		} else if n > 0 {
			sum.Skipped[reasonMaxPages] += n
		}
	}
	if err == nil {
		if merr := c.store.MarkCrawled(ctx, src.ID, time.Now()); merr != nil {
			err = fmt.Errorf("crawl %s: mark crawled: %w", r.seed, merr)
		}
	}
	sum.Duration = time.Since(start)
	close(progressDone)
	progress.Wait()
	if c.opts.Progress != nil {
		done, queued, failed, skipped, _ := r.f.progress()
		rate := 0.0
		if sum.Duration > 0 {
			rate = float64(sum.Fetched) / sum.Duration.Seconds()
		}
		c.opts.Progress(Progress{Done: done, Queued: queued, Failed: failed, Skipped: skipped,
			Elapsed: sum.Duration, PagesPerSec: rate})
	}
	r.log.Info("crawl ended", "seed", r.seed, "summary", sum.String(), "err", err)
	return sum, err
}

func (c *Crawler) newRun(seed string) (*run, error) {
	r := &run{
		c:     c,
		log:   c.log,
		f:     newFrontier(c.opts.MaxPages, c.opts.HostConcurrency),
		hosts: hostSet{m: map[string]*host{}, rate: c.opts.HostRate},
		filt:  filters{include: c.opts.Include, exclude: c.opts.Exclude},
	}
	r.f.limits = linkLimits{maxDepth: c.opts.MaxDepth, maxURL: c.opts.MaxURLLength, maxVariants: c.opts.MaxQueryVariants}
	seed = strings.TrimSpace(seed)
	if seed == "" {
		return nil, panther.Invalidf("crawl: empty seed")
	}
	lower := strings.ToLower(seed)
	if strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") {
		u, err := url.Parse(seed)
		if err != nil {
			return nil, panther.Invalidf("crawl: seed %q: %v", seed, err)
		}
		n, err := normalizeURL(u)
		if err != nil {
			return nil, err
		}
		r.seed = n.String()
		if looksLikeSitemap(n) {
			r.kind = seedSitemap
			r.scope.add(hostPrefix(n))
		} else {
			r.kind = seedSite
			r.scope.add(dirPrefix(n))
		}
		return r, nil
	}
	p := seed
	if strings.HasPrefix(lower, "file:") {
		u, err := url.Parse(seed)
		if err != nil {
			return nil, panther.Invalidf("crawl: seed %q: %v", seed, err)
		}
		n, err := normalizeURL(u)
		if err != nil {
			return nil, err
		}
		p = n.Path
	} else if strings.Contains(seed, "://") {
		return nil, panther.Invalidf("crawl: seed %q: only http, https and file URLs can be crawled", seed)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, panther.Invalidf("crawl: seed %q: %v", seed, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if errors.Is(err, os.ErrNotExist) && !strings.HasPrefix(lower, "file:") && looksLikeHost(seed) {
		return nil, panther.Invalidf("crawl: seed %q: no such file or folder (for a site, give its URL: https://%s)", seed, seed)
	}
	if err != nil {
		return nil, panther.Invalidf("crawl: seed %q: %v", seed, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, panther.Invalidf("crawl: seed %q: %v", seed, err)
	}
	r.kind = seedFolder
	if fi.IsDir() {
		r.root = real
		r.seed = fileURL(real + string(filepath.Separator))
	} else {
		r.root = filepath.Dir(real)
		r.only = true
		r.seed = fileURL(real)
	}
	r.scope.add(fileURL(strings.TrimSuffix(r.root, string(filepath.Separator)) + string(filepath.Separator)))
	return r, nil
}

// looksLikeHost says whether a seed that is no local path might be a site given without its scheme.
func looksLikeHost(seed string) bool {
	first, _, _ := strings.Cut(seed, "/")
	return strings.Contains(first, ".") && !strings.HasPrefix(first, ".")
}

func fileURL(p string) string {
	u := &url.URL{Scheme: "file", Path: filepath.ToSlash(p)}
	if n, err := normalizeURL(u); err == nil {
		return n.String()
	}
	return u.String()
}

// restoreScope widens a resumed run's scope as the interrupted run had widened it: a site seed that
// redirected elsewhere or turned out to be a sitemap, or a sitemap's URLs on several hosts. Those
// widenings left depth-0 entries behind, which is what is read back here.
func (r *run) restoreScope(entries []panther.FrontierEntry) {
	if r.kind == seedFolder {
		return
	}
	seedIsSitemap := r.kind == seedSitemap
	for _, e := range entries {
		if e.URL == r.seed && e.Reason == reasonSitemap {
			seedIsSitemap = true
		}
	}
	hosts := 0
	for _, e := range entries {
		if e.Depth != 0 {
			continue
		}
		u, err := url.Parse(e.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			continue
		}
		if seedIsSitemap {
			if !r.scope.contains(hostPrefix(u)) && hosts < sitemapMaxHosts {
				hosts++
				r.scope.add(hostPrefix(u))
			}
		} else {
			r.scope.add(dirPrefix(u))
		}
	}
}

// seedFrontier fills a fresh frontier: the seed and the sitemaps next to it, the URLs of a sitemap
// seed, or the files of a folder.
func (r *run) seedFrontier(ctx context.Context) error {
	switch r.kind {
	case seedFolder:
		if r.only {
			return r.emit(ctx, []link{{url: r.seed}})
		}
		return r.walk(ctx)
	case seedSitemap:
		return r.readSitemaps(ctx, []sitemapSource{{url: r.seed}}, true, func(urls []string) error {
			return r.emitSitemapURLs(ctx, urls, 0, true)
		})
	}
	if err := r.emit(ctx, []link{{url: r.seed}}); err != nil {
		return err
	}
	if r.c.opts.MaxDepth == 0 {
		return nil
	}
	// Sitemaps list pages that no link reaches; robots.txt names them, and /sitemap.xml is where
	// most sites put one without saying so.
	h := r.hosts.get(hostKey(r.seed))
	var roots []sitemapSource
	if rules, err := r.robots(ctx, h); err != nil {
		return err
	} else {
		for _, s := range rules.sitemaps {
			roots = append(roots, sitemapSource{url: s})
		}
	}
	roots = append(roots, sitemapSource{url: h.key + "/sitemap.xml", checkRobots: true})
	return r.readSitemaps(ctx, roots, false, func(urls []string) error {
		return r.emitSitemapURLs(ctx, urls, 1, false)
	})
}

// emitSitemapURLs queues a sitemap's page URLs. For a sitemap seed (widen), their hosts join the scope.
func (r *run) emitSitemapURLs(ctx context.Context, urls []string, depth int, widen bool) error {
	if max := r.c.opts.MaxDepth; max >= 0 && depth > max {
		return nil
	}
	links := make([]link, 0, len(urls))
	hosts := 0
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			continue
		}
		n, err := normalizeURL(u)
		if err != nil || (n.Scheme != "http" && n.Scheme != "https") {
			continue
		}
		s := n.String()
		if widen && !r.scope.contains(s) && hosts < sitemapMaxHosts {
			hosts++
			r.scope.add(hostPrefix(n))
		}
		if r.scope.contains(s) && r.filt.allow(s) {
			links = append(links, link{url: s, depth: depth})
		}
	}
	return r.emit(ctx, links)
}

// emit admits links, persists the new ones and queues them.
func (r *run) emit(ctx context.Context, links []link) error {
	for len(links) > 0 {
		n := min(len(links), enqueueBatch)
		admitted := r.f.admit(links[:n])
		links = links[n:]
		if err := r.enqueue(ctx, admitted); err != nil {
			return err
		}
		r.f.push(admitted)
	}
	return nil
}

func (r *run) enqueue(ctx context.Context, es []*entry) error {
	for len(es) > 0 {
		n := min(len(es), enqueueBatch)
		batch := make([]panther.FrontierEntry, n)
		for i, e := range es[:n] {
			batch[i] = panther.FrontierEntry{URL: e.url, Depth: e.depth, State: panther.FrontierQueued}
		}
		if _, err := r.c.store.Enqueue(ctx, r.src.ID, batch); err != nil {
			return fmt.Errorf("crawl %s: enqueue: %w", r.seed, err)
		}
		es = es[n:]
	}
	return nil
}

// walk queues every readable file under the folder: hidden files and folders are skipped, and
// symbolic links only count when they resolve inside the folder.
func (r *run) walk(ctx context.Context) error {
	var batch []link
	err := filepath.WalkDir(r.root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			r.log.Warn("walk", "path", p, "err", err)
			if d != nil && d.IsDir() && p != r.root {
				return filepath.SkipDir
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if p != r.root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || typeByExt(p) == "" {
			return nil
		}
		if d.Type()&os.ModeSymlink != 0 {
			real, err := filepath.EvalSymlinks(p)
			if err != nil || !within(real, r.root) {
				return nil
			}
			if fi, err := os.Stat(real); err != nil || !fi.Mode().IsRegular() {
				return nil
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		u := fileURL(p)
		if !r.filt.allow(u) {
			return nil
		}
		batch = append(batch, link{url: u})
		if len(batch) >= enqueueBatch {
			err := r.emit(ctx, batch)
			batch = batch[:0]
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("crawl %s: walk: %w", r.root, err)
	}
	return r.emit(ctx, batch)
}

func within(p, root string) bool {
	return p == root || strings.HasPrefix(p, strings.TrimSuffix(root, string(filepath.Separator))+string(filepath.Separator))
}

func (r *run) worker(ctx context.Context) {
	for {
		e, hq, end := r.f.next()
		if end != endNone {
			return
		}
		res, err := r.process(ctx, e)
		if err == nil {
			err = r.commit(ctx, res)
		}
		if err != nil {
			if ctx.Err() == nil {
				r.fail(err)
			}
			r.f.abandon(hq)
			continue
		}
		r.f.finished(hq, res.fins, res.fetched)
	}
}

// commit persists a processed page: its new links first, then its final state, so that a crash in
// between costs at most a refetch of this page, never a lost link.
func (r *run) commit(ctx context.Context, res *pageResult) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	admitted := r.f.admit(res.links)
	if err := r.enqueue(ctx, append(res.fresh, admitted...)); err != nil {
		return err
	}
	r.f.push(admitted)
	for _, fn := range res.fins {
		fe := panther.FrontierEntry{URL: fn.e.url, Depth: fn.e.depth, State: fn.state, Reason: fn.reason}
		if err := r.c.store.Finish(ctx, r.src.ID, fe); err != nil {
			return fmt.Errorf("crawl %s: finish %s: %w", r.seed, fn.e.url, err)
		}
	}
	return nil
}

// finishLeftovers records the URLs a spent budget left queued.
func (r *run) finishLeftovers(ctx context.Context) (int, error) {
	left := r.f.leftovers()
	for _, e := range left {
		fe := panther.FrontierEntry{URL: e.url, Depth: e.depth, State: panther.FrontierSkipped, Reason: reasonMaxPages}
		if err := r.c.store.Finish(ctx, r.src.ID, fe); err != nil {
			return 0, fmt.Errorf("crawl %s: finish %s: %w", r.seed, e.url, err)
		}
	}
	return len(left), nil
}

func (r *run) fail(err error) {
	r.failMu.Lock()
	if r.fatal == nil {
		r.fatal = err
		r.log.Error("crawl failed", "seed", r.seed, "err", err)
	}
	r.failMu.Unlock()
	r.cancel()
}

func (r *run) err() error {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	return r.fatal
}

// reportProgress calls Progress every 100ms; the rate is measured over the last second or so.
func (r *run) reportProgress(start time.Time, done <-chan struct{}) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	type sample struct {
		at      time.Time
		fetched int
	}
	var window []sample
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			d, q, fl, sk, fetched := r.f.progress()
			window = append(window, sample{now, fetched})
			if len(window) > 11 {
				window = window[1:]
			}
			rate := 0.0
			if first := window[0]; now.Sub(first.at) > 0 {
				rate = float64(fetched-first.fetched) / now.Sub(first.at).Seconds()
			}
			r.c.opts.Progress(Progress{Done: d, Queued: q, Failed: fl, Skipped: sk, Elapsed: now.Sub(start), PagesPerSec: rate})
		}
	}
}
