package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"panther"
	"panther/crawl"
)

// CrawlRequest is what a caller chooses about one crawl; the rest comes from Options.Crawl.
type CrawlRequest struct {
	// MaxPages, MaxDepth (nil: unlimited), Include and Exclude are as the crawl manager takes them.
	crawl.JobRequest
	// HostRate is the most requests per second to one host over all workers; nil takes
	// Options.Crawl.HostRate, 0 means no limit.
	HostRate *float64 `json:"host_rate,omitempty"`
	// IgnoreRobots skips robots.txt rules and Crawl-delay.
	IgnoreRobots bool `json:"ignore_robots,omitempty"`
}

// Bounds of a CrawlRequest, as the crawl manager has them.
const (
	maxPatterns     = 20
	maxPatternBytes = 1000
)

// check says what is wrong with a request.
func (r CrawlRequest) check() error {
	if r.MaxPages < 0 {
		return panther.Invalidf("max_pages must be 0 (unlimited) or more, got %d", r.MaxPages)
	}
	if r.MaxDepth != nil && *r.MaxDepth < 0 {
		return panther.Invalidf("max_depth must be 0 or more, got %d (leave it out for unlimited)", *r.MaxDepth)
	}
	if r.HostRate != nil && (*r.HostRate < 0 || math.IsNaN(*r.HostRate) || math.IsInf(*r.HostRate, 0)) {
		return panther.Invalidf("host_rate must be a finite number >= 0, got %v", *r.HostRate)
	}
	if len(r.Include)+len(r.Exclude) > maxPatterns {
		return panther.Invalidf("at most %d include and exclude patterns, got %d", maxPatterns, len(r.Include)+len(r.Exclude))
	}
	for _, e := range slices.Concat(r.Include, r.Exclude) {
		if len(e) > maxPatternBytes {
			return panther.Invalidf("pattern is longer than %d bytes", maxPatternBytes)
		}
		if _, err := regexp.Compile(e); err != nil {
			return panther.Invalidf("%q is not a valid regular expression: %v", e, err)
		}
	}
	return nil
}

// plan makes the crawl plan of a request for a seed.
func (c *Cluster) plan(seed string, r CrawlRequest) (crawl.Plan, error) {
	p, err := crawl.NewPlan(seed)
	if err != nil {
		return p, err
	}
	p.MaxDepth = -1
	if r.MaxDepth != nil {
		p.MaxDepth = *r.MaxDepth
	}
	for _, re := range c.opts.Crawl.Include {
		p.Include = append(p.Include, re.String())
	}
	for _, re := range c.opts.Crawl.Exclude {
		p.Exclude = append(p.Exclude, re.String())
	}
	p.Include = append(p.Include, r.Include...)
	p.Exclude = append(p.Exclude, r.Exclude...)
	p.HostRate = c.opts.Crawl.HostRate
	if r.HostRate != nil {
		p.HostRate = *r.HostRate
	}
	p.IgnoreRobots = r.IgnoreRobots || c.opts.Crawl.IgnoreRobots
	return p, p.Check()
}

// RunState says where a distributed crawl stands.
type RunState string

const (
	RunRunning   RunState = "running"
	RunDone      RunState = "done"
	RunFailed    RunState = "failed"
	RunCancelled RunState = "cancelled"
)

// Status is a distributed crawl's progress: its URLs by state, and what the finished ones became.
type Status struct {
	ID       int64    `json:"id"`
	SourceID int64    `json:"source_id"`
	Seed     string   `json:"seed"`
	State    RunState `json:"state"`
	// Scheduled says that a schedule started the crawl.
	Scheduled bool `json:"scheduled,omitempty"`
	// Queued, Done, Skipped and Failed count the crawl's URLs by state.
	Queued  int `json:"queued"`
	Done    int `json:"done"`
	Skipped int `json:"skipped"`
	Failed  int `json:"failed"`
	// Fetched counts page fetches (what MaxPages bounds); New ... Gone split the done pages by what
	// the knowledge base did with them.
	Fetched   int `json:"fetched"`
	New       int `json:"new"`
	Changed   int `json:"changed"`
	Unchanged int `json:"unchanged"`
	Duplicate int `json:"duplicate"`
	Gone      int `json:"gone"`
	// SkippedBy and FailedBy count skipped and failed URLs by reason.
	SkippedBy map[string]int `json:"skipped_by"`
	FailedBy  map[string]int `json:"failed_by"`
	Truncated bool           `json:"truncated,omitempty"`
	Error     string         `json:"error,omitempty"`
	Created   time.Time      `json:"created_at"`
	Ended     time.Time      `json:"ended_at,omitzero"`
}

// Finished reports whether the crawl will change no more.
func (s Status) Finished() bool { return s.State != RunRunning }

// Total counts the crawl's URLs.
func (s Status) Total() int { return s.Queued + s.Done + s.Skipped + s.Failed }

// EnqueueSeed adds seed (an http or https URL) as a source if it is new and enqueues a crawl of it.
func (c *Cluster) EnqueueSeed(ctx context.Context, seed string, r CrawlRequest) (Status, error) {
	p, err := crawl.NewPlan(seed)
	if err != nil {
		return Status{}, err
	}
	src, err := c.opts.Store.AddSource(ctx, p.Seed)
	if err != nil {
		return Status{}, fmt.Errorf("enqueue crawl of %s: add source: %w", p.Seed, err)
	}
	return c.EnqueueCrawl(ctx, src.ID, r)
}

// EnqueueCrawl starts a distributed crawl of a source and returns its status. Workers pick it up;
// nothing here waits for it. A source with a crawl still running is ErrConflict; an unknown one
// ErrNotFound.
func (c *Cluster) EnqueueCrawl(ctx context.Context, sourceID int64, r CrawlRequest) (Status, error) {
	if err := r.check(); err != nil {
		return Status{}, err
	}
	var id int64
	err := c.tx(ctx, func(tx pgx.Tx) error {
		var err error
		id, err = c.createRun(ctx, tx, sourceID, r, false)
		return err
	})
	if err != nil {
		return Status{}, err
	}
	c.log.Info("crawl enqueued", "run", id, "source", sourceID)
	return c.CrawlStatus(ctx, id)
}

// createRun inserts a run of source with its first jobs: the seed job (sitemaps) and, for a site
// seed, the seed page's fetch, so that fetching starts while sitemaps are read.
func (c *Cluster) createRun(ctx context.Context, tx pgx.Tx, sourceID int64, r CrawlRequest, scheduled bool) (int64, error) {
	var seed string
	err := tx.QueryRow(ctx, `SELECT url FROM sources WHERE id = $1`, sourceID).Scan(&seed)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, panther.NotFoundf("source %d", sourceID)
	}
	if err != nil {
		return 0, fmt.Errorf("crawl source %d: %w", sourceID, err)
	}
	p, err := c.plan(seed, r)
	if err != nil {
		return 0, err
	}
	planJSON, err := json.Marshal(p)
	if err != nil {
		return 0, err
	}
	pending := 1
	if !p.Sitemap {
		pending = 2
	}
	var id int64
	// A savepoint, so that a conflict leaves the caller's transaction usable (the scheduler's is
	// working through several sources).
	err = pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
		return sp.QueryRow(ctx, `INSERT INTO crawl_runs (source_id, plan, max_pages, state, pending, scheduled)
			VALUES ($1, $2, $3, 'running', $4, $5) RETURNING id`,
			sourceID, planJSON, r.MaxPages, pending, scheduled).Scan(&id)
	})
	if isUniqueViolation(err, "crawl_runs_running") {
		var running int64
		_ = tx.QueryRow(ctx, `SELECT id FROM crawl_runs WHERE source_id = $1 AND state = 'running'`, sourceID).Scan(&running)
		return 0, fmt.Errorf("source %d is already being crawled (run %d): %w", sourceID, running, panther.ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("crawl source %d: %w", sourceID, err)
	}
	params := []river.InsertManyParams{{Args: seedArgs{RunID: id}}}
	if !p.Sitemap {
		if _, err := tx.Exec(ctx, `INSERT INTO crawl_urls (run_id, url, depth, state) VALUES ($1, $2, 0, 'queued')`, id, p.Seed); err != nil {
			return 0, fmt.Errorf("crawl source %d: queue the seed: %w", sourceID, err)
		}
		params = append(params, river.InsertManyParams{Args: fetchArgs{RunID: id, URL: p.Seed}})
	}
	if _, err := c.river.InsertManyTx(ctx, tx, params); err != nil {
		return 0, fmt.Errorf("crawl source %d: enqueue jobs: %w", sourceID, err)
	}
	return id, nil
}

// CrawlStatus returns a crawl's progress. ErrNotFound for an unknown id.
func (c *Cluster) CrawlStatus(ctx context.Context, id int64) (Status, error) {
	s := Status{ID: id, SkippedBy: map[string]int{}, FailedBy: map[string]int{}}
	var planJSON []byte
	var ended *time.Time
	err := c.pool.QueryRow(ctx, `SELECT source_id, plan, state, scheduled, fetched, truncated, error, created_at, ended_at
		FROM crawl_runs WHERE id = $1`, id).
		Scan(&s.SourceID, &planJSON, &s.State, &s.Scheduled, &s.Fetched, &s.Truncated, &s.Error, &s.Created, &ended)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, panther.NotFoundf("crawl run %d", id)
	}
	if err != nil {
		return s, fmt.Errorf("crawl run %d: %w", id, unavailable(err))
	}
	var p crawl.Plan
	if err := json.Unmarshal(planJSON, &p); err == nil {
		s.Seed = p.Seed
	}
	if ended != nil {
		s.Ended = *ended
	}
	rows, err := c.pool.Query(ctx, `SELECT state, reason, count(*) FROM crawl_urls WHERE run_id = $1 GROUP BY state, reason`, id)
	if err != nil {
		return s, fmt.Errorf("crawl run %d: count urls: %w", id, unavailable(err))
	}
	var state, reason string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&state, &reason, &n}, func() error {
		switch panther.FrontierState(state) {
		case panther.FrontierQueued:
			s.Queued += n
		case panther.FrontierDone:
			s.Done += n
			switch reason {
			case string(panther.IngestNew):
				s.New += n
			case string(panther.IngestChanged):
				s.Changed += n
			case string(panther.IngestUnchanged):
				s.Unchanged += n
			case string(panther.IngestDuplicate):
				s.Duplicate += n
			case "gone":
				s.Gone += n
			}
		case panther.FrontierSkipped:
			s.Skipped += n
			s.SkippedBy[reason] += n
		case panther.FrontierFailed:
			s.Failed += n
			s.FailedBy[reason] += n
		}
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("crawl run %d: count urls: %w", id, unavailable(err))
	}
	return s, nil
}

// Runs lists the latest crawls, newest first (limit 0: 100).
func (c *Cluster) Runs(ctx context.Context, limit int) ([]Status, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := c.pool.Query(ctx, `SELECT id FROM crawl_runs ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list crawl runs: %w", unavailable(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("list crawl runs: %w", unavailable(err))
	}
	out := make([]Status, 0, len(ids))
	for _, id := range ids {
		s, err := c.CrawlStatus(ctx, id)
		if errors.Is(err, panther.ErrNotFound) {
			continue // removed with its source meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Follow calls fn with the crawl's status whenever it changed, every FollowInterval, until the
// crawl finishes (returning its final status) or ctx ends.
func (c *Cluster) Follow(ctx context.Context, id int64, fn func(Status)) (Status, error) {
	t := time.NewTicker(c.opts.FollowInterval)
	defer t.Stop()
	var last Status
	first := true
	for {
		s, err := c.CrawlStatus(ctx, id)
		if err != nil {
			return s, err
		}
		if first || changed(last, s) {
			if fn != nil {
				fn(s)
			}
			first = false
			last = s
		}
		if s.Finished() {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-t.C:
		}
	}
}

func changed(a, b Status) bool {
	return a.State != b.State || a.Queued != b.Queued || a.Done != b.Done || a.Skipped != b.Skipped ||
		a.Failed != b.Failed || a.Fetched != b.Fetched
}

// CancelCrawl stops a running crawl: its queued jobs finish without fetching. ErrNotFound for an
// unknown id; a crawl that already ended is left as it is.
func (c *Cluster) CancelCrawl(ctx context.Context, id int64) (Status, error) {
	tag, err := c.pool.Exec(ctx, `UPDATE crawl_runs SET state = 'cancelled', ended_at = now() WHERE id = $1 AND state = 'running'`, id)
	if err != nil {
		return Status{}, fmt.Errorf("cancel crawl run %d: %w", id, unavailable(err))
	}
	if tag.RowsAffected() == 1 {
		c.log.Info("crawl cancelled", "run", id)
	}
	return c.CrawlStatus(ctx, id)
}

// runIDString renders a run id for schedules' records.
func runIDString(id int64) string { return strconv.FormatInt(id, 10) }
