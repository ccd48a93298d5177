package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite", as package sqlite uses it

	"panther"
)

// StartFunc starts a crawl of a source with a request's options and returns the crawl's id for the
// record. serve passes crawl.Manager.Start.
type StartFunc func(ctx context.Context, sourceID int64, r CrawlRequest) (string, error)

// Scheduler runs the schedules of the embedded store inside one process (panther serve on SQLite):
// the schedules live in a table of the SQLite file, and each due time starts one crawl through a
// StartFunc. A due time claims its schedule with a compare-and-set on the next run time, so two
// processes on one file still start it once, and the next time is recorded before the crawl starts,
// so a restart never runs it twice. A due time that passed while no process ran is caught up once.
type Scheduler struct {
	db    *sql.DB
	start StartFunc
	log   *slog.Logger
	wake  chan struct{}
	// now is time.Now; tests move it.
	now func() time.Time
}

// schedulerPoll bounds how long the Scheduler sleeps between looks at its table, so that schedules
// another process set are noticed.
const schedulerPoll = time.Minute

// OpenScheduler opens the schedules table of the SQLite database at path (the embedded store's
// file, opened by package sqlite first), creating it if needed. start may be nil for a Scheduler
// that only edits schedules; Run needs it.
func OpenScheduler(ctx context.Context, path string, start StartFunc, log *slog.Logger) (*Scheduler, error) {
	if strings.TrimSpace(path) == "" {
		return nil, panther.Invalidf("scheduler: empty database path")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	// A file: URI, so that any character in the path reaches SQLite intact.
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("scheduler: open %s: %w", path, err)
	}
	// One connection: schedule edits are rare and the store's writer has the file most of the time.
	db.SetMaxOpenConns(1)
	s := &Scheduler{db: db, start: start, log: log, wake: make(chan struct{}, 1), now: time.Now}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS crawl_schedules (
		source_id   INTEGER PRIMARY KEY REFERENCES sources(id) ON DELETE CASCADE,
		spec        TEXT NOT NULL,
		request     TEXT NOT NULL DEFAULT '{}',
		next_run_at INTEGER NOT NULL, -- unix milliseconds
		last_run_at INTEGER,
		last_run    TEXT NOT NULL DEFAULT '',
		last_error  TEXT NOT NULL DEFAULT '',
		created_at  INTEGER NOT NULL,
		updated_at  INTEGER NOT NULL)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("scheduler: create table in %s: %w", path, err)
	}
	return s, nil
}

// Close closes the Scheduler's connection; stop Run first.
func (s *Scheduler) Close() error { return s.db.Close() }

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// SetSchedule makes the source crawl by spec with r's options, replacing any schedule it had.
// ErrNotFound for an unknown source.
func (s *Scheduler) SetSchedule(ctx context.Context, sourceID int64, spec string, r CrawlRequest) (Schedule, error) {
	spec = strings.TrimSpace(spec)
	now := s.now()
	next, err := nextRun(spec, now)
	if err != nil {
		return Schedule{}, err
	}
	if err := r.check(); err != nil {
		return Schedule{}, err
	}
	req, err := json.Marshal(r)
	if err != nil {
		return Schedule{}, err
	}
	var exists bool
	if err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sources WHERE id = ?)`, sourceID).Scan(&exists); err != nil {
		return Schedule{}, fmt.Errorf("schedule source %d: %w", sourceID, err)
	}
	if !exists {
		return Schedule{}, panther.NotFoundf("source %d", sourceID)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO crawl_schedules (source_id, spec, request, next_run_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (source_id) DO UPDATE SET spec = excluded.spec, request = excluded.request,
			next_run_at = excluded.next_run_at, last_error = '', updated_at = excluded.updated_at`,
		sourceID, spec, string(req), ms(next), ms(now), ms(now))
	if err != nil {
		return Schedule{}, fmt.Errorf("schedule source %d: %w", sourceID, err)
	}
	s.poke()
	return s.schedule(ctx, sourceID)
}

// RemoveSchedule stops a source's recurring crawl. ErrNotFound if it has none.
func (s *Scheduler) RemoveSchedule(ctx context.Context, sourceID int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM crawl_schedules WHERE source_id = ?`, sourceID)
	if err != nil {
		return fmt.Errorf("remove schedule of source %d: %w", sourceID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return panther.NotFoundf("schedule of source %d", sourceID)
	}
	s.poke()
	return nil
}

const sqliteScheduleColumns = `source_id, spec, request, next_run_at, last_run_at, last_run, last_error, created_at, updated_at`

func scanSQLiteSchedule(row interface{ Scan(...any) error }) (Schedule, error) {
	var sc Schedule
	var req string
	var next, created, updated int64
	var last sql.NullInt64
	if err := row.Scan(&sc.SourceID, &sc.Spec, &req, &next, &last, &sc.LastRunID, &sc.LastError, &created, &updated); err != nil {
		return sc, err
	}
	sc.NextRun, sc.Created, sc.Updated = fromMS(next), fromMS(created), fromMS(updated)
	if last.Valid {
		sc.LastRun = fromMS(last.Int64)
	}
	if err := json.Unmarshal([]byte(req), &sc.Request); err != nil {
		return sc, fmt.Errorf("schedule of source %d: request: %w", sc.SourceID, err)
	}
	return sc, nil
}

func (s *Scheduler) schedule(ctx context.Context, sourceID int64) (Schedule, error) {
	sc, err := scanSQLiteSchedule(s.db.QueryRowContext(ctx, `SELECT `+sqliteScheduleColumns+` FROM crawl_schedules WHERE source_id = ?`, sourceID))
	if errors.Is(err, sql.ErrNoRows) {
		return sc, panther.NotFoundf("schedule of source %d", sourceID)
	}
	return sc, err
}

// Schedules lists the schedules by source.
func (s *Scheduler) Schedules(ctx context.Context) ([]Schedule, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sqliteScheduleColumns+` FROM crawl_schedules ORDER BY source_id`)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	defer rows.Close()
	var out []Schedule
	for rows.Next() {
		sc, err := scanSQLiteSchedule(rows)
		if err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		out = append(out, sc)
	}
	return out, rows.Err()
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run starts the due crawls until ctx ends, sleeping until the next due time (or a minute, or a
// change made through this Scheduler). It returns ctx's error.
func (s *Scheduler) Run(ctx context.Context) error {
	if s.start == nil {
		return panther.Invalidf("scheduler: no start function")
	}
	for {
		wait := schedulerPoll
		if next, err := s.RunDue(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.log.Warn("scheduled crawls", "err", err)
		} else if !next.IsZero() {
			wait = min(wait, max(next.Sub(s.now()), 0))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-s.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// RunDue starts a crawl for each schedule whose time has come, and returns the earliest next due
// time (zero when there are no schedules).
func (s *Scheduler) RunDue(ctx context.Context) (time.Time, error) {
	all, err := s.Schedules(ctx)
	if err != nil {
		return time.Time{}, err
	}
	now := s.now()
	var earliest time.Time
	for _, sc := range all {
		if !sc.NextRun.After(now) {
			next, err := nextRun(sc.Spec, now)
			if err != nil {
				next = now.Add(24 * time.Hour)
			}
			// Claim the due time: only the process whose update matched starts the crawl.
			res, err := s.db.ExecContext(ctx, `UPDATE crawl_schedules SET next_run_at = ?, last_run_at = ?, updated_at = ?
				WHERE source_id = ? AND next_run_at = ?`, ms(next), ms(now), ms(now), sc.SourceID, ms(sc.NextRun))
			if err != nil {
				return earliest, fmt.Errorf("claim schedule of source %d: %w", sc.SourceID, err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				s.startOne(ctx, sc)
			}
			sc.NextRun = next
		}
		if earliest.IsZero() || sc.NextRun.Before(earliest) {
			earliest = sc.NextRun
		}
	}
	return earliest, nil
}

func (s *Scheduler) startOne(ctx context.Context, sc Schedule) {
	id, err := s.start(ctx, sc.SourceID, sc.Request)
	lastRun, lastErr := sc.LastRunID, ""
	if err != nil {
		lastErr = err.Error()
		s.log.Warn("scheduled crawl not started", "source", sc.SourceID, "err", err)
	} else {
		lastRun = id
		s.log.Info("scheduled crawl started", "source", sc.SourceID, "job", id)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE crawl_schedules SET last_run = ?, last_error = ? WHERE source_id = ?`,
		lastRun, lastErr, sc.SourceID); err != nil {
		s.log.Warn("record scheduled crawl", "source", sc.SourceID, "err", err)
	}
}
