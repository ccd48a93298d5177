package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// pgGate is the crawl.Gate every worker shares: one row per host holds the time of the host's next
// free request slot. Taking a slot is one statement, so slots are handed out in order across
// processes without a lock held while anyone sleeps.
type pgGate struct {
	pool *pgxpool.Pool
}

// maxGateWait bounds the wait one slot may ask for, so that a runaway queue of reservations (a
// rate of one request an hour, say) shows up as a failed page rather than a job that never ends.
const maxGateWait = time.Hour

// Wait reserves the host's next slot, at least interval after the previous one and not before now,
// and sleeps until it. The wait is measured on the database's clock (from when the row was
// updated, not when the statement began waiting for it), so workers' clocks need not agree.
func (g *pgGate) Wait(ctx context.Context, host string, interval time.Duration) error {
	var wait float64
	err := g.pool.QueryRow(ctx, `
		INSERT INTO crawl_hosts AS h (host, next_at) VALUES ($1, now() + make_interval(secs => $2))
		ON CONFLICT (host) DO UPDATE SET next_at = greatest(h.next_at, now()) + make_interval(secs => $2)
		RETURNING extract(epoch FROM (h.next_at - make_interval(secs => $2) - clock_timestamp()))::float8`,
		host, interval.Seconds()).Scan(&wait)
	if err != nil {
		return fmt.Errorf("politeness slot for %s: %w", host, unavailable(err))
	}
	d := time.Duration(wait * float64(time.Second))
	if d > maxGateWait {
		return fmt.Errorf("politeness slot for %s is %s away", host, d.Round(time.Second))
	}
	return sleep(ctx, d)
}

// Pause moves the host's next slot to at least d from now.
func (g *pgGate) Pause(ctx context.Context, host string, d time.Duration) error {
	_, err := g.pool.Exec(ctx, `
		INSERT INTO crawl_hosts AS h (host, next_at) VALUES ($1, now() + make_interval(secs => $2))
		ON CONFLICT (host) DO UPDATE SET next_at = greatest(h.next_at, now() + make_interval(secs => $2))`,
		host, d.Seconds())
	if err != nil {
		return fmt.Errorf("pause %s: %w", host, unavailable(err))
	}
	return nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
