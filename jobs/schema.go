package jobs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"panther"
)

// migrations bring this package's tables from version i to i+1. Append only.
var migrations = []string{`
CREATE TABLE crawl_runs (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	source_id  bigint NOT NULL CONSTRAINT crawl_runs_source_fk REFERENCES sources(id) ON DELETE CASCADE,
	plan       jsonb NOT NULL,           -- crawl.Plan: seed, scope (widened as the crawl goes), filters, rate
	max_pages  integer NOT NULL DEFAULT 0 CHECK (max_pages >= 0),
	state      text NOT NULL CHECK (state IN ('running', 'done', 'failed', 'cancelled')),
	pending    integer NOT NULL,         -- jobs not finished: the seed job and one per URL with a job
	seeded     boolean NOT NULL DEFAULT false,
	reserved   integer NOT NULL DEFAULT 0, -- pages reserved against max_pages
	fetched    integer NOT NULL DEFAULT 0,
	truncated  boolean NOT NULL DEFAULT false,
	scheduled  boolean NOT NULL DEFAULT false,
	error      text NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL DEFAULT now(),
	ended_at   timestamptz
);
-- One running crawl per source, cluster-wide.
CREATE UNIQUE INDEX crawl_runs_running ON crawl_runs (source_id) WHERE state = 'running';
CREATE INDEX crawl_runs_created ON crawl_runs (created_at);

CREATE TABLE crawl_urls (
	run_id     bigint NOT NULL REFERENCES crawl_runs(id) ON DELETE CASCADE,
	url        text COLLATE "C" NOT NULL,
	depth      integer NOT NULL CHECK (depth >= 0),
	state      text NOT NULL CHECK (state IN ('queued', 'done', 'skipped', 'failed')),
	reason     text NOT NULL DEFAULT '',
	via        text COLLATE "C",        -- the URL whose redirect claimed this one; NULL: it has its own job
	reserved   boolean NOT NULL DEFAULT false,
	fetched    boolean NOT NULL DEFAULT false,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (run_id, url)
);
CREATE INDEX crawl_urls_state ON crawl_urls (run_id, state);

-- The next request slot of each host, shared by every worker.
CREATE TABLE crawl_hosts (
	host    text COLLATE "C" PRIMARY KEY,
	next_at timestamptz NOT NULL
);

CREATE TABLE crawl_schedules (
	source_id   bigint PRIMARY KEY CONSTRAINT crawl_schedules_source_fk REFERENCES sources(id) ON DELETE CASCADE,
	spec        text NOT NULL,
	request     jsonb NOT NULL DEFAULT '{}',
	next_run_at timestamptz NOT NULL,
	last_run_at timestamptz,
	last_run    text NOT NULL DEFAULT '',
	last_error  text NOT NULL DEFAULT '',
	created_at  timestamptz NOT NULL DEFAULT now(),
	updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX crawl_schedules_next ON crawl_schedules (next_run_at);
`}

// migrationLock is the first key of the advisory lock migrations hold ("pjob"); the second is the
// schema's hash, as package postgres does it, so stores in different schemas migrate independently.
const migrationLock = 0x706a6f62

// migrate brings River's tables and this package's up to date while holding an advisory lock, so
// that workers starting together migrate once. River's migrations run each in a transaction of its
// own (one adds an enum value that the next uses, which one transaction cannot do); this package's
// run in one.
func (c *Cluster) migrate(ctx context.Context) error {
	if err := c.migrateLocked(ctx); err != nil {
		return fmt.Errorf("jobs: migrate: %w", unavailable(err))
	}
	return nil
}

func (c *Cluster) migrateLocked(ctx context.Context) error {
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var sources bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('sources') IS NOT NULL`).Scan(&sources); err != nil {
		return err
	}
	if !sources {
		return fmt.Errorf("the database has no panther store yet (open it with the postgres store first): %w", panther.ErrUnavailable)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext(current_schema()))`, migrationLock); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	defer func() {
		// A lock left behind would go with the connection anyway; unlocking keeps the pool's connection clean.
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, hashtext(current_schema()))`, migrationLock)
	}()
	m, err := rivermigrate.New(riverpgxv5.New(c.pool), &rivermigrate.Config{Logger: c.riverLogger()})
	if err != nil {
		return err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river tables: %w", err)
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS jobs_migrations (
			version    integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var v int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM jobs_migrations`).Scan(&v); err != nil {
			return err
		}
		if v > len(migrations) {
			return fmt.Errorf("jobs schema version %d is newer than this binary knows (%d): upgrade panther", v, len(migrations))
		}
		for ; v < len(migrations); v++ {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("to version %d: %w", v+1, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO jobs_migrations (version) VALUES ($1)`, v+1); err != nil {
				return err
			}
		}
		return nil
	})
}

// tx runs fn in a READ COMMITTED transaction, again from the start after a deadlock or a
// serialization failure. fn must keep no state across attempts.
func (c *Cluster) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	wait := 2 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, c.pool, fn)
		if err == nil || attempt == 10 || !retryable(err) {
			return unavailable(err)
		}
		d := wait/2 + time.Duration(rand.Int64N(int64(wait)))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(d):
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

func isUniqueViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == constraint
}

func isForeignKey(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// unavailable marks failures to reach the server as panther.ErrUnavailable.
func unavailable(err error) error {
	if err == nil || errors.Is(err, panther.ErrUnavailable) {
		return err
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return fmt.Errorf("%w: %w", panther.ErrUnavailable, err)
	}
	return err
}
