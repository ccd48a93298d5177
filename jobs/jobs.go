// Package jobs runs crawls, indexing and embedding as River jobs on the shared PostgreSQL store, so
// that any number of `panther worker` processes on any hosts share the work, and runs scheduled
// re-crawls once cluster-wide. For the embedded SQLite store it offers an in-process Scheduler
// instead (see below).
//
// # A distributed crawl
//
// A crawl is a row of crawl_runs (its plan: seed, scope, filters, rate; its counters) and one row of
// crawl_urls per URL it met, keyed by (run, normalised URL). A URL gets a row, and a River
// "panther_crawl_fetch" job, only when its row is inserted (INSERT ... ON CONFLICT DO NOTHING
// RETURNING), in the same transaction that records the page that linked to it; the job also carries
// River unique options on (run, URL). So a URL is enqueued once per crawl, and a link is never lost:
// either the linking page's result and its new jobs commit together, or neither does.
//
// A fetch job takes its URL's row and checks that it is still queued (a job retried after its
// result committed does nothing), reserves a page of the run's MaxPages budget if there is one,
// then fetches and processes the page with a crawl.PageFetcher: robots.txt, conditional GET from the
// stored validators, redirects, extraction, and kb ingest (idempotent by URL and content hash, so a
// page processed twice is stored once). Its result commits in one transaction: new links and their
// jobs, the URL's final state, the run's counters. A redirect target is claimed by inserting its
// row with the claiming URL in "via", so a chain retried by another worker claims it again and no
// other page does.
//
// Per-host politeness holds across workers: before every request (robots.txt, sitemaps, redirect
// hops and retries included) a worker reserves the host's next slot in crawl_hosts with one
// statement, next_at = greatest(next_at, now()) + interval, and sleeps until the slot it got. The
// interval is the run's host rate, or the host's robots.txt Crawl-delay when longer; a Retry-After
// pauses the host for everyone. robots.txt is cached per worker (crawl.RobotsTTL), with the same
// rules everywhere.
//
// A run ends when its "pending" counter, the jobs not yet finished (the seed job and one per URL),
// reaches zero, in the transaction that finished the last one: the run is marked done, its source
// crawled, and a "panther_embed" job queued that backfills vectors. A worker killed mid-job leaves
// the job running in River until RescueStuckJobsAfter (the lease) has passed; River's rescuer, on the
// elected leader, then makes it available again and another worker runs it. Job timeouts (River's
// JobTimeout) bound a hung fetch.
//
// # Schedules
//
// crawl_schedules holds a cron expression per source (robfig/cron syntax, evaluated in UTC unless it
// starts with CRON_TZ=Zone) and the next run's time. A River periodic job, enqueued only by the
// elected leader, selects the due schedules FOR UPDATE SKIP LOCKED and in one transaction starts a
// crawl of each and moves its next run on, so a schedule runs once cluster-wide and a restart never
// runs it twice. A source that is still being crawled when its time comes is skipped until the next.
//
// # The embedded store
//
// River's SQLite driver wants the database's single writer to itself (its maintenance polls write
// every second), and the sqlite store keeps exactly one writer connection that it does not share, so
// River is not used there: a Scheduler keeps the same schedules in a table of the SQLite file and
// starts crawls through a function serve gives it (crawl.Manager.Start), once per due time.
//
// The tables live in the first schema of the connection's search_path, next to package postgres's
// (crawl_runs and crawl_schedules reference its sources), and River's with them.
package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"panther"
	"panther/crawl"
)

// Store is what a Cluster needs of the shared store: the sources it crawls.
type Store interface {
	Sources(ctx context.Context) ([]panther.Source, error)
	AddSource(ctx context.Context, url string) (panther.Source, error)
	MarkCrawled(ctx context.Context, sourceID int64, at time.Time) error
}

// KB is where pages go and what embeds them; kb.Service satisfies it.
type KB interface {
	crawl.Index
	// Backfill embeds the passages that have no vector yet; it does nothing without an embedder.
	Backfill(ctx context.Context, progress func(done, total int)) (int, error)
}

// Options configure a Cluster. Zero values take the defaults named on each field.
type Options struct {
	Store Store
	KB    KB
	// Crawl holds the request options every fetch of this worker uses (UserAgent, Timeout,
	// MaxBodyBytes, MaxRedirects, Retries, backoff, Transport, Logger). Of the crawl's shape, which
	// travels with each crawl so that every worker applies the enqueuer's, HostRate and IgnoreRobots
	// are the defaults of a CrawlRequest that leaves them out, and Include and Exclude are added to
	// every crawl this Cluster enqueues.
	Crawl crawl.Options
	// Workers is how many fetch jobs this process runs at once. 0 makes a client that enqueues,
	// reports and schedules but works no job (Start is refused).
	Workers int
	// ID names this worker in River (its leader election and job records); default a random one.
	ID string
	// ScheduleEvery is how often the leader looks for due schedules (DefaultScheduleEvery).
	ScheduleEvery time.Duration
	// FetchTimeout bounds one fetch job (DefaultFetchTimeout); SeedTimeout the seed job, which reads
	// sitemaps (DefaultSeedTimeout). Neither defaults to more than RescueAfter.
	FetchTimeout, SeedTimeout time.Duration
	// RescueAfter is the lease: how long a job may stay running before River gives it to another
	// worker, as a killed worker's jobs are (DefaultRescueAfter). At least every job's timeout.
	RescueAfter time.Duration
	// PollInterval is how often an idle worker looks for jobs besides being notified
	// (DefaultPollInterval); tests lower it.
	PollInterval time.Duration
	// FollowInterval is how often Follow reads a run's status (DefaultFollowInterval).
	FollowInterval time.Duration
	// MaxConns bounds this process's connections (default Workers + 6).
	MaxConns int32
	// Logger receives job trouble at warn and River's own warnings; nil discards.
	Logger *slog.Logger

	// poolConfig, when set, adjusts the connection pool (tests cut a worker's connections with it).
	poolConfig func(*pgxpool.Config)
}

// Defaults of Options.
const (
	DefaultScheduleEvery  = time.Minute
	DefaultFetchTimeout   = 5 * time.Minute
	DefaultSeedTimeout    = 15 * time.Minute
	DefaultRescueAfter    = 20 * time.Minute
	DefaultPollInterval   = time.Second
	DefaultFollowInterval = 500 * time.Millisecond
	// fetchMaxAttempts bounds the tries of a fetch job that errs (the database or the index
	// failing, a worker killed); page-level trouble is a result, not an error.
	fetchMaxAttempts = 5
)

// River queues and job kinds.
const (
	queueCrawl = "panther_crawl"
	queueMaint = "panther_maint"
)

// Cluster is this process's part in the shared crawl work: it enqueues crawls, reports on them,
// keeps schedules and, when started, works jobs. It is safe for concurrent use.
type Cluster struct {
	opts    Options
	log     *slog.Logger
	pool    *pgxpool.Pool
	river   *river.Client[pgx.Tx]
	fetcher *crawl.PageFetcher
	gate    *pgGate
}

// NewCluster connects to the PostgreSQL database at dsn (the shared store's, whose schema must be
// migrated already: open it with postgres.Open first), brings River's and this package's tables up
// to date, and returns a Cluster. Close it when done.
func NewCluster(ctx context.Context, dsn string, o Options) (*Cluster, error) {
	if o.Store == nil || o.KB == nil {
		return nil, panther.Invalidf("jobs: a store and a knowledge base are required")
	}
	if o.Workers < 0 || o.MaxConns < 0 {
		return nil, panther.Invalidf("jobs: workers and connections must not be negative")
	}
	for _, d := range []time.Duration{o.ScheduleEvery, o.FetchTimeout, o.SeedTimeout, o.RescueAfter, o.PollInterval, o.FollowInterval} {
		if d < 0 {
			return nil, panther.Invalidf("jobs: durations must not be negative")
		}
	}
	o.ScheduleEvery = orDefault(o.ScheduleEvery, DefaultScheduleEvery)
	// A short lease given alone shortens the default timeouts with it.
	o.RescueAfter = orDefault(o.RescueAfter, DefaultRescueAfter)
	o.FetchTimeout = orDefault(o.FetchTimeout, min(DefaultFetchTimeout, o.RescueAfter))
	o.SeedTimeout = orDefault(o.SeedTimeout, min(DefaultSeedTimeout, o.RescueAfter))
	o.PollInterval = orDefault(o.PollInterval, DefaultPollInterval)
	o.FollowInterval = orDefault(o.FollowInterval, DefaultFollowInterval)
	if o.ScheduleEvery < time.Second {
		return nil, panther.Invalidf("jobs: schedules are checked at most every second, got %s", o.ScheduleEvery)
	}
	if o.RescueAfter < max(o.FetchTimeout, o.SeedTimeout) {
		return nil, panther.Invalidf("jobs: the rescue lease %s must be at least the job timeouts (%s, %s)", o.RescueAfter, o.FetchTimeout, o.SeedTimeout)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Crawl.Logger == nil {
		o.Crawl.Logger = log
	}
	if o.Crawl.HostRate < 0 {
		return nil, panther.Invalidf("jobs: host rate must not be negative")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, panther.Invalidf("jobs: the connection string does not parse")
	}
	cfg.MaxConns = o.MaxConns
	if cfg.MaxConns == 0 {
		cfg.MaxConns = int32(o.Workers) + 6
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "panther-jobs"
	}
	if o.poolConfig != nil {
		o.poolConfig(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("jobs: connect: %w", unavailable(err))
	}
	c := &Cluster{opts: o, log: log, pool: pool}
	if err := c.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	c.gate = &pgGate{pool: pool}
	if c.fetcher, err = crawl.NewPageFetcher(o.KB, c.gate, o.Crawl); err != nil {
		pool.Close()
		return nil, err
	}
	if c.river, err = c.newRiver(); err != nil {
		pool.Close()
		return nil, fmt.Errorf("jobs: river client: %w", err)
	}
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (c *Cluster) newRiver() (*river.Client[pgx.Tx], error) {
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &fetchWorker{c: c}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &seedWorker{c: c}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &embedWorker{c: c}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &scheduleWorker{c: c}); err != nil {
		return nil, err
	}
	cfg := &river.Config{
		ID:                   c.opts.ID,
		Workers:              workers,
		Logger:               c.riverLogger(),
		JobTimeout:           c.opts.FetchTimeout,
		RescueStuckJobsAfter: c.opts.RescueAfter,
		FetchPollInterval:    c.opts.PollInterval,
		// Fetching often keeps the slots busy: a page takes milliseconds on a fast site, and River's
		// default (100ms between fetches) would cap a worker near 10 fetches of jobs a second.
		FetchCooldown: min(10*time.Millisecond, c.opts.PollInterval),
		MaxAttempts:   fetchMaxAttempts,
		// A soft stop lets the jobs in hand finish for this long, then cancels them; they are
		// retried elsewhere.
		SoftStopTimeout: 10 * time.Second,
	}
	if c.opts.Workers > 0 {
		cfg.Queues = map[string]river.QueueConfig{
			queueCrawl: {MaxWorkers: c.opts.Workers},
			queueMaint: {MaxWorkers: 1},
		}
		cfg.PeriodicJobs = []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(c.opts.ScheduleEvery),
				func() (river.JobArgs, *river.InsertOpts) { return scheduleArgs{}, nil },
				&river.PeriodicJobOpts{ID: "panther_schedules", RunOnStart: true}),
		}
	}
	return river.NewClient(riverpgxv5.New(c.pool), cfg)
}

// Start begins working jobs in the background until Stop or ctx's end (which stops abruptly:
// running jobs are cancelled and retried elsewhere after the lease).
func (c *Cluster) Start(ctx context.Context) error {
	if c.opts.Workers == 0 {
		return panther.Invalidf("jobs: this cluster client has no workers (Options.Workers is 0)")
	}
	if err := c.river.Start(ctx); err != nil {
		return fmt.Errorf("jobs: start worker: %w", err)
	}
	return nil
}

// Stop stops taking jobs and waits for those in hand, up to ten seconds before cancelling them, or
// until ctx ends.
func (c *Cluster) Stop(ctx context.Context) error {
	if c.opts.Workers == 0 {
		return nil
	}
	if err := c.river.Stop(ctx); err != nil {
		return fmt.Errorf("jobs: stop worker: %w", err)
	}
	return nil
}

// Close releases the connections; Stop a started Cluster first.
func (c *Cluster) Close() error {
	c.pool.Close()
	return nil
}

func (c *Cluster) riverLogger() *slog.Logger { return slog.New(warnOnly{c.log.Handler()}) }

// warnOnly passes River's warnings and errors on and drops its chatter.
type warnOnly struct{ slog.Handler }

func (w warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && w.Handler.Enabled(ctx, l)
}
func (w warnOnly) WithAttrs(a []slog.Attr) slog.Handler { return warnOnly{w.Handler.WithAttrs(a)} }
func (w warnOnly) WithGroup(n string) slog.Handler      { return warnOnly{w.Handler.WithGroup(n)} }
