package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"panther"
	"panther/crawl"
)

// fetchArgs is one URL of one crawl. Only the run and the URL make it unique.
type fetchArgs struct {
	RunID int64  `json:"run_id" river:"unique"`
	URL   string `json:"url" river:"unique"`
	Depth int    `json:"depth"`
}

func (fetchArgs) Kind() string { return "panther_crawl_fetch" }
func (fetchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueCrawl, MaxAttempts: fetchMaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// seedArgs starts a crawl: sitemap discovery, or a sitemap seed's URLs.
type seedArgs struct {
	RunID int64 `json:"run_id"`
}

func (seedArgs) Kind() string { return "panther_crawl_seed" }
func (seedArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueCrawl, MaxAttempts: fetchMaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// embedArgs backfills vectors after a crawl.
type embedArgs struct {
	RunID int64 `json:"run_id"`
}

func (embedArgs) Kind() string { return "panther_embed" }
func (embedArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueMaint, MaxAttempts: fetchMaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// scheduleArgs is the periodic look for due schedules.
type scheduleArgs struct{}

func (scheduleArgs) Kind() string { return "panther_schedules" }
func (scheduleArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueMaint, MaxAttempts: 1}
}

// run is what a job reads of its crawl.
type runRow struct {
	id        int64
	sourceID  int64
	plan      crawl.Plan
	maxPages  int
	state     RunState
	urlState  panther.FrontierState
	reserved  bool
	urlExists bool
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// loadRun reads a run and, when url is given, that URL's row (locked with lock, in a transaction).
// pgx.ErrNoRows: no such run (or, with lock, no such URL).
func loadRun(ctx context.Context, q querier, id int64, url string, lock bool) (runRow, error) {
	r := runRow{id: id}
	var planJSON []byte
	var urlState *string
	var reserved *bool
	join := "LEFT JOIN"
	if lock {
		// The row to lock must be there (the nullable side of an outer join cannot be locked).
		join = "JOIN"
	}
	sql := `SELECT r.source_id, r.plan, r.max_pages, r.state, u.state, u.reserved
		FROM crawl_runs r ` + join + ` crawl_urls u ON u.run_id = r.id AND u.url = $2 WHERE r.id = $1`
	if lock {
		sql += ` FOR UPDATE OF u`
	}
	err := q.QueryRow(ctx, sql, id, url).Scan(&r.sourceID, &planJSON, &r.maxPages, &r.state, &urlState, &reserved)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(planJSON, &r.plan); err != nil {
		return r, fmt.Errorf("crawl run %d: plan: %w", id, err)
	}
	if urlState != nil {
		r.urlExists, r.urlState, r.reserved = true, panther.FrontierState(*urlState), *reserved
	}
	return r, nil
}

type fetchWorker struct {
	river.WorkerDefaults[fetchArgs]
	c *Cluster
}

func (w *fetchWorker) Timeout(*river.Job[fetchArgs]) time.Duration { return w.c.opts.FetchTimeout }

// Work fetches one URL of a crawl. It does nothing when the crawl ended or the URL was finished
// already (by an earlier attempt whose River completion was lost, as when its worker died).
func (w *fetchWorker) Work(ctx context.Context, job *river.Job[fetchArgs]) error {
	c := w.c
	a := job.Args
	err := c.fetch(ctx, a)
	if err != nil && ctx.Err() == nil {
		c.log.Warn("crawl fetch job failed", "run", a.RunID, "url", a.URL, "attempt", job.Attempt, "err", err)
	}
	if err != nil && ctx.Err() == nil && job.Attempt >= job.MaxAttempts {
		// The last try: record the URL as failed so that the crawl can end.
		c.log.Warn("crawl fetch failed for good", "run", a.RunID, "url", a.URL, "err", err)
		res := &crawl.PageResult{Finished: []panther.FrontierEntry{{URL: a.URL, Depth: a.Depth, State: panther.FrontierFailed, Reason: "worker-error"}}}
		if cerr := c.commitPage(ctx, a, res, false); cerr != nil {
			return errors.Join(err, cerr)
		}
		return nil
	}
	return err
}

func (c *Cluster) fetch(ctx context.Context, a fetchArgs) error {
	r, err := loadRun(ctx, c.pool, a.RunID, a.URL, false)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // the run was removed with its source
	}
	if err != nil {
		return fmt.Errorf("crawl run %d: %s: %w", a.RunID, a.URL, unavailable(err))
	}
	if r.state != RunRunning || !r.urlExists || r.urlState != panther.FrontierQueued {
		return nil
	}
	budgetGone := false
	if r.maxPages > 0 && !r.reserved {
		// Reserve a page of the budget; the URL remembers it, so a retried job does not take two.
		err = c.tx(ctx, func(tx pgx.Tx) error {
			budgetGone = false
			if r, err = loadRun(ctx, tx, a.RunID, a.URL, true); err != nil {
				return err
			}
			if r.state != RunRunning || !r.urlExists || r.urlState != panther.FrontierQueued || r.reserved {
				return nil
			}
			tag, err := tx.Exec(ctx, `UPDATE crawl_runs SET reserved = reserved + 1 WHERE id = $1 AND reserved < max_pages`, a.RunID)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				budgetGone = true
				return nil
			}
			r.reserved = true
			_, err = tx.Exec(ctx, `UPDATE crawl_urls SET reserved = true WHERE run_id = $1 AND url = $2`, a.RunID, a.URL)
			return err
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("crawl run %d: %s: reserve a page: %w", a.RunID, a.URL, err)
		}
		if r.state != RunRunning || !r.urlExists || r.urlState != panther.FrontierQueued {
			return nil
		}
	}
	if budgetGone {
		res := &crawl.PageResult{Finished: []panther.FrontierEntry{{URL: a.URL, Depth: a.Depth, State: panther.FrontierSkipped, Reason: "max-pages"}}}
		return c.commitPage(ctx, a, res, false)
	}
	res, err := c.fetcher.Fetch(ctx, crawl.PageTask{
		Plan: r.plan, SourceID: r.sourceID, URL: a.URL, Depth: a.Depth,
		Claim: func(ctx context.Context, target string, depth int) (bool, error) {
			return c.claim(ctx, a.RunID, a.URL, target, depth)
		},
	})
	if err != nil {
		return err
	}
	return c.commitPage(ctx, a, res, r.reserved)
}

// claim takes a redirect target for the URL via: it is inserted with via, or was by an earlier try
// of the same URL and is still queued.
func (c *Cluster) claim(ctx context.Context, runID int64, via, target string, depth int) (bool, error) {
	var ok bool
	err := c.pool.QueryRow(ctx, `INSERT INTO crawl_urls AS u (run_id, url, depth, state, via) VALUES ($1, $2, $3, 'queued', $4)
		ON CONFLICT (run_id, url) DO UPDATE SET updated_at = now()
			WHERE u.via = EXCLUDED.via AND u.state = 'queued'
		RETURNING true`, runID, target, depth, via).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return ok, unavailable(err)
}

// commitPage records a page's result in one transaction: its new links with their jobs, the final
// states, the run's counters, and the run's end when this was its last job. A URL that is no longer
// queued was committed by an earlier try: nothing is done again.
func (c *Cluster) commitPage(ctx context.Context, a fetchArgs, res *crawl.PageResult, reserved bool) error {
	// Bookkeeping outlives a cancelled job briefly, so that a page fetched and ingested is recorded
	// rather than fetched again.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var ended *endedRun
	err := c.tx(ctx, func(tx pgx.Tx) error {
		ended = nil
		var state string
		err := tx.QueryRow(ctx, `SELECT state FROM crawl_urls WHERE run_id = $1 AND url = $2 FOR UPDATE`, a.RunID, a.URL).Scan(&state)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if state != string(panther.FrontierQueued) {
			return nil
		}
		if len(res.Widen) > 0 {
			if err := widen(ctx, tx, a.RunID, res.Widen); err != nil {
				return err
			}
		}
		added, err := c.addLinks(ctx, tx, a.RunID, res.Links)
		if err != nil {
			return err
		}
		urls := make([]string, len(res.Finished))
		states := make([]string, len(res.Finished))
		reasons := make([]string, len(res.Finished))
		for i, f := range res.Finished {
			urls[i], states[i], reasons[i] = f.URL, string(f.State), f.Reason
		}
		if _, err := tx.Exec(ctx, `UPDATE crawl_urls u SET state = f.state, reason = f.reason, updated_at = now()
			FROM unnest($2::text[], $3::text[], $4::text[]) AS f(url, state, reason)
			WHERE u.run_id = $1 AND u.url = f.url AND u.state = 'queued'`, a.RunID, urls, states, reasons); err != nil {
			return fmt.Errorf("finish urls: %w", err)
		}
		fetched, release, truncated := 0, 0, false
		if res.Fetched {
			fetched = 1
			if _, err := tx.Exec(ctx, `UPDATE crawl_urls SET fetched = true WHERE run_id = $1 AND url = $2`, a.RunID, a.URL); err != nil {
				return err
			}
		} else if reserved {
			release = 1
		}
		for _, f := range res.Finished {
			if f.Reason == "max-pages" {
				truncated = true
			}
		}
		var pending int
		var runState string
		if err := tx.QueryRow(ctx, `UPDATE crawl_runs SET pending = pending + $2 - 1, fetched = fetched + $3,
				reserved = reserved - $4, truncated = truncated OR $5
			WHERE id = $1 RETURNING pending, state`, a.RunID, added, fetched, release, truncated).Scan(&pending, &runState); err != nil {
			return err
		}
		if pending == 0 && runState == string(RunRunning) {
			ended, err = c.endRun(ctx, tx, a.RunID)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("crawl run %d: record %s: %w", a.RunID, a.URL, err)
	}
	c.afterEnd(ctx, ended)
	return nil
}

// addLinks inserts the URLs the run has not met and queues a fetch job for each, in tx. It returns
// how many it added.
func (c *Cluster) addLinks(ctx context.Context, tx pgx.Tx, runID int64, links []panther.FrontierEntry) (int, error) {
	if len(links) == 0 {
		return 0, nil
	}
	seen := make(map[string]bool, len(links))
	urls := make([]string, 0, len(links))
	depths := make([]int32, 0, len(links))
	for _, l := range links {
		if seen[l.URL] {
			continue
		}
		seen[l.URL] = true
		urls = append(urls, l.URL)
		depths = append(depths, int32(l.Depth))
	}
	// Sorted, so that transactions adding overlapping links lock them in one order.
	idx := make([]int, len(urls))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		if urls[a] < urls[b] {
			return -1
		}
		if urls[a] > urls[b] {
			return 1
		}
		return 0
	})
	su := make([]string, len(urls))
	sd := make([]int32, len(urls))
	for i, j := range idx {
		su[i], sd[i] = urls[j], depths[j]
	}
	rows, err := tx.Query(ctx, `INSERT INTO crawl_urls (run_id, url, depth, state)
		SELECT $1, u, d, 'queued' FROM unnest($2::text[], $3::int[]) AS t(u, d)
		ON CONFLICT (run_id, url) DO NOTHING
		RETURNING url, depth`, runID, su, sd)
	if err != nil {
		return 0, fmt.Errorf("add links: %w", err)
	}
	var params []river.InsertManyParams
	var u string
	var d int
	if _, err := pgx.ForEachRow(rows, []any{&u, &d}, func() error {
		params = append(params, river.InsertManyParams{Args: fetchArgs{RunID: runID, URL: u, Depth: d}})
		return nil
	}); err != nil {
		return 0, fmt.Errorf("add links: %w", err)
	}
	if len(params) == 0 {
		return 0, nil
	}
	if _, err := c.river.InsertManyTx(ctx, tx, params); err != nil {
		return 0, fmt.Errorf("enqueue %d fetch jobs: %w", len(params), err)
	}
	return len(params), nil
}

// widen adds scope prefixes to a run's plan.
func widen(ctx context.Context, tx pgx.Tx, runID int64, prefixes []string) error {
	_, err := tx.Exec(ctx, `UPDATE crawl_runs SET plan = jsonb_set(plan, '{scope}',
			(SELECT jsonb_agg(DISTINCT s) FROM (
				SELECT jsonb_array_elements_text(plan->'scope') AS s UNION SELECT unnest($2::text[])) x))
		WHERE id = $1`, runID, prefixes)
	if err != nil {
		return fmt.Errorf("widen scope: %w", err)
	}
	return nil
}

// endedRun is a run that ended in a transaction, for what follows its commit.
type endedRun struct {
	id, sourceID int64
}

// endRun marks a run whose last job finished as done, in tx: URLs still queued then (claimed by a
// redirect that went elsewhere on a retry) are skipped, and an embed job is queued.
func (c *Cluster) endRun(ctx context.Context, tx pgx.Tx, runID int64) (*endedRun, error) {
	e := &endedRun{id: runID}
	err := tx.QueryRow(ctx, `UPDATE crawl_runs SET state = 'done', ended_at = now() WHERE id = $1 AND state = 'running' RETURNING source_id`, runID).Scan(&e.sourceID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `UPDATE crawl_urls SET state = 'skipped', reason = 'abandoned', updated_at = now() WHERE run_id = $1 AND state = 'queued'`, runID); err != nil {
		return nil, err
	}
	if _, err := c.river.InsertTx(ctx, tx, embedArgs{RunID: runID}, nil); err != nil {
		return nil, fmt.Errorf("enqueue embedding: %w", err)
	}
	return e, nil
}

// afterEnd records a finished run's source as crawled.
func (c *Cluster) afterEnd(ctx context.Context, e *endedRun) {
	if e == nil {
		return
	}
	if err := c.opts.Store.MarkCrawled(ctx, e.sourceID, time.Now()); err != nil {
		c.log.Warn("mark source crawled", "source", e.sourceID, "err", err)
	}
	c.log.Info("crawl done", "run", e.id, "source", e.sourceID)
}

type seedWorker struct {
	river.WorkerDefaults[seedArgs]
	c *Cluster
}

func (w *seedWorker) Timeout(*river.Job[seedArgs]) time.Duration { return w.c.opts.SeedTimeout }

// emitError marks a failure to record discovered URLs (retried), as against a seed that cannot be
// read (the run fails).
type emitError struct{ err error }

func (e *emitError) Error() string { return e.err.Error() }
func (e *emitError) Unwrap() error { return e.err }

// Work discovers a crawl's starting URLs (sitemaps) and queues them, then counts itself finished.
func (w *seedWorker) Work(ctx context.Context, job *river.Job[seedArgs]) error {
	c := w.c
	id := job.Args.RunID
	r, err := loadRun(ctx, c.pool, id, "", false)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("crawl run %d: %w", id, err)
	}
	if r.state != RunRunning {
		return nil
	}
	err = c.fetcher.Discover(ctx, r.plan, func(links []panther.FrontierEntry, prefixes []string) error {
		err := c.tx(ctx, func(tx pgx.Tx) error {
			if len(prefixes) > 0 {
				if err := widen(ctx, tx, id, prefixes); err != nil {
					return err
				}
			}
			added, err := c.addLinks(ctx, tx, id, links)
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `UPDATE crawl_runs SET pending = pending + $2 WHERE id = $1`, id, added)
			return err
		})
		if err != nil {
			return &emitError{err}
		}
		return nil
	})
	var ee *emitError
	switch {
	case err == nil:
	case ctx.Err() != nil, errors.As(err, &ee):
		c.log.Warn("crawl seed job failed", "run", id, "attempt", job.Attempt, "err", err)
		return fmt.Errorf("crawl run %d: discover: %w", id, err)
	default:
		// The seed cannot be read (a sitemap seed that is not there): the run fails.
		_, ferr := c.pool.Exec(ctx, `UPDATE crawl_runs SET state = 'failed', error = $2, ended_at = now() WHERE id = $1 AND state = 'running'`, id, err.Error())
		c.log.Warn("crawl failed", "run", id, "err", err)
		return unavailable(ferr)
	}
	var ended *endedRun
	err = c.tx(ctx, func(tx pgx.Tx) error {
		ended = nil
		var pending int
		var state string
		err := tx.QueryRow(ctx, `UPDATE crawl_runs SET seeded = true, pending = pending - 1
			WHERE id = $1 AND NOT seeded RETURNING pending, state`, id).Scan(&pending, &state)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err == nil && pending == 0 && state == string(RunRunning) {
			ended, err = c.endRun(ctx, tx, id)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("crawl run %d: finish seeding: %w", id, err)
	}
	c.afterEnd(ctx, ended)
	return nil
}

type embedWorker struct {
	river.WorkerDefaults[embedArgs]
	c *Cluster
}

// Timeout is the lease: a backfill cut short is retried and resumes where it stopped, while a
// longer one would be rescued and run twice at once.
func (w *embedWorker) Timeout(*river.Job[embedArgs]) time.Duration { return w.c.opts.RescueAfter }

// Work embeds the passages that have no vector yet; it resumes where it stopped when retried.
func (w *embedWorker) Work(ctx context.Context, job *river.Job[embedArgs]) error {
	n, err := w.c.opts.KB.Backfill(ctx, nil)
	if n > 0 {
		w.c.log.Info("embedded passages", "run", job.Args.RunID, "passages", n)
	}
	if err != nil {
		return fmt.Errorf("embed after crawl run %d: %w", job.Args.RunID, err)
	}
	return nil
}

// EnqueueEmbed queues a backfill of missing vectors, for a worker to run.
func (c *Cluster) EnqueueEmbed(ctx context.Context) error {
	if _, err := c.river.Insert(ctx, embedArgs{}, nil); err != nil {
		return fmt.Errorf("enqueue embedding: %w", unavailable(err))
	}
	return nil
}
