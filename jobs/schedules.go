package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/robfig/cron/v3"

	"panther"
)

// Schedule is a source's recurring crawl.
type Schedule struct {
	SourceID int64 `json:"source_id"`
	// Spec is a cron expression: five fields (minute hour day-of-month month day-of-week) or a
	// descriptor (@daily, @every 6h), evaluated in UTC unless it starts with CRON_TZ=Zone.
	Spec    string       `json:"spec"`
	Request CrawlRequest `json:"request"`
	NextRun time.Time    `json:"next_run"`
	LastRun time.Time    `json:"last_run,omitzero"`
	// LastRunID is the crawl the last due time started: a run id on PostgreSQL, a crawl manager job
	// id on SQLite. LastError says why the last due time started none (a crawl still running, say).
	LastRunID string    `json:"last_run_id,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	Created   time.Time `json:"created_at"`
	Updated   time.Time `json:"updated_at"`
}

// MinScheduleInterval is the shortest time allowed between two runs of a schedule: a crawl takes
// minutes, and a site is not re-crawled every few seconds.
const MinScheduleInterval = time.Minute

// maxSpecBytes bounds a cron expression.
const maxSpecBytes = 200

var specParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSpec checks a cron expression and returns its schedule.
func ParseSpec(spec string) (cron.Schedule, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, panther.Invalidf("schedule: empty cron expression")
	}
	if len(spec) > maxSpecBytes {
		return nil, panther.Invalidf("schedule: cron expression longer than %d bytes", maxSpecBytes)
	}
	s, err := specParser.Parse(spec)
	if err != nil {
		return nil, panther.Invalidf("schedule %q: %v (want five fields: minute hour day-of-month month day-of-week, as \"0 3 * * *\", or @daily, @every 6h)", spec, err)
	}
	// Two runs from a fixed point tell the interval well enough for the specs people write.
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	first := s.Next(base)
	if first.IsZero() {
		return nil, panther.Invalidf("schedule %q never runs", spec)
	}
	if second := s.Next(first); !second.IsZero() && second.Sub(first) < MinScheduleInterval {
		return nil, panther.Invalidf("schedule %q runs more often than every %s", spec, MinScheduleInterval)
	}
	return s, nil
}

// nextRun is the first time after now that spec names, in UTC unless it names a zone.
func nextRun(spec string, now time.Time) (time.Time, error) {
	s, err := ParseSpec(spec)
	if err != nil {
		return time.Time{}, err
	}
	next := s.Next(now.UTC())
	if next.IsZero() {
		return next, panther.Invalidf("schedule %q never runs again", spec)
	}
	return next.UTC(), nil
}

// SetSchedule makes the source crawl by spec, with r's options, from now on, replacing any
// schedule it had. ErrNotFound for an unknown source.
func (c *Cluster) SetSchedule(ctx context.Context, sourceID int64, spec string, r CrawlRequest) (Schedule, error) {
	spec = strings.TrimSpace(spec)
	next, err := nextRun(spec, time.Now())
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
	_, err = c.pool.Exec(ctx, `INSERT INTO crawl_schedules (source_id, spec, request, next_run_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (source_id) DO UPDATE SET spec = EXCLUDED.spec, request = EXCLUDED.request,
			next_run_at = EXCLUDED.next_run_at, last_error = '', updated_at = now()`, sourceID, spec, req, next)
	if isForeignKey(err) {
		return Schedule{}, panther.NotFoundf("source %d", sourceID)
	}
	if err != nil {
		return Schedule{}, fmt.Errorf("schedule source %d: %w", sourceID, unavailable(err))
	}
	c.log.Info("crawl scheduled", "source", sourceID, "spec", spec, "next", next)
	return c.schedule(ctx, sourceID)
}

// RemoveSchedule stops a source's recurring crawl. ErrNotFound if it has none.
func (c *Cluster) RemoveSchedule(ctx context.Context, sourceID int64) error {
	tag, err := c.pool.Exec(ctx, `DELETE FROM crawl_schedules WHERE source_id = $1`, sourceID)
	if err != nil {
		return fmt.Errorf("remove schedule of source %d: %w", sourceID, unavailable(err))
	}
	if tag.RowsAffected() == 0 {
		return panther.NotFoundf("schedule of source %d", sourceID)
	}
	return nil
}

const scheduleColumns = `source_id, spec, request, next_run_at, last_run_at, last_run, last_error, created_at, updated_at`

func scanSchedule(row pgx.Row) (Schedule, error) {
	var s Schedule
	var req []byte
	var last *time.Time
	if err := row.Scan(&s.SourceID, &s.Spec, &req, &s.NextRun, &last, &s.LastRunID, &s.LastError, &s.Created, &s.Updated); err != nil {
		return s, err
	}
	if last != nil {
		s.LastRun = last.UTC()
	}
	s.NextRun, s.Created, s.Updated = s.NextRun.UTC(), s.Created.UTC(), s.Updated.UTC()
	if err := json.Unmarshal(req, &s.Request); err != nil {
		return s, fmt.Errorf("schedule of source %d: request: %w", s.SourceID, err)
	}
	return s, nil
}

func (c *Cluster) schedule(ctx context.Context, sourceID int64) (Schedule, error) {
	s, err := scanSchedule(c.pool.QueryRow(ctx, `SELECT `+scheduleColumns+` FROM crawl_schedules WHERE source_id = $1`, sourceID))
	if errors.Is(err, pgx.ErrNoRows) {
		return s, panther.NotFoundf("schedule of source %d", sourceID)
	}
	return s, unavailable(err)
}

// Schedules lists the schedules by source.
func (c *Cluster) Schedules(ctx context.Context) ([]Schedule, error) {
	rows, err := c.pool.Query(ctx, `SELECT `+scheduleColumns+` FROM crawl_schedules ORDER BY source_id`)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", unavailable(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Schedule, error) { return scanSchedule(r) })
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", unavailable(err))
	}
	return out, nil
}

// RunDueSchedules starts a crawl for every schedule whose time has come and moves it to its next
// time, each in the transaction that locks it, so that it runs once however many workers look. The
// leader's periodic job calls it; it returns how many crawls it started.
func (c *Cluster) RunDueSchedules(ctx context.Context) (int, error) {
	started := 0
	err := c.tx(ctx, func(tx pgx.Tx) error {
		started = 0
		rows, err := tx.Query(ctx, `SELECT `+scheduleColumns+` FROM crawl_schedules WHERE next_run_at <= now()
			ORDER BY next_run_at LIMIT 100 FOR UPDATE SKIP LOCKED`)
		if err != nil {
			return err
		}
		due, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Schedule, error) { return scanSchedule(r) })
		if err != nil {
			return err
		}
		now := time.Now()
		for _, s := range due {
			next, err := nextRun(s.Spec, now)
			if err != nil {
				// A spec this binary cannot read (written by another version): leave it a day.
				next = now.Add(24 * time.Hour)
			}
			lastRun, lastErr := s.LastRunID, ""
			id, err := c.createRun(ctx, tx, s.SourceID, s.Request, true)
			switch {
			case err == nil:
				started++
				lastRun = runIDString(id)
				c.log.Info("scheduled crawl started", "source", s.SourceID, "run", id, "next", next)
			case errors.Is(err, panther.ErrConflict), errors.Is(err, panther.ErrInvalid), errors.Is(err, panther.ErrNotFound):
				lastErr = err.Error()
				c.log.Warn("scheduled crawl not started", "source", s.SourceID, "err", err)
			default:
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE crawl_schedules SET next_run_at = $2, last_run_at = now(), last_run = $3,
				last_error = $4, updated_at = now() WHERE source_id = $1`, s.SourceID, next, lastRun, lastErr); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("run due schedules: %w", err)
	}
	return started, nil
}

type scheduleWorker struct {
	river.WorkerDefaults[scheduleArgs]
	c *Cluster
}

func (w *scheduleWorker) Timeout(*river.Job[scheduleArgs]) time.Duration {
	return min(time.Minute, w.c.opts.RescueAfter)
}

func (w *scheduleWorker) Work(ctx context.Context, _ *river.Job[scheduleArgs]) error {
	_, err := w.c.RunDueSchedules(ctx)
	return err
}
