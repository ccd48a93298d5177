package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"panther"
)

// AddSource returns the source for url, creating it if it is new.
func (db *DB) AddSource(ctx context.Context, url string) (panther.Source, error) {
	if strings.TrimSpace(url) == "" {
		return panther.Source{}, panther.Invalidf("add source: url is empty")
	}
	var s panther.Source
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sources (url, created_at) VALUES (?, ?) ON CONFLICT (url) DO NOTHING`,
			url, timeArg(time.Now()))
		if err != nil {
			return err
		}
		var created, crawled sql.NullInt64
		err = tx.QueryRowContext(ctx, `SELECT id, url, created_at, last_crawl_at FROM sources WHERE url = ?`, url).
			Scan(&s.ID, &s.URL, &created, &crawled)
		s.CreatedAt, s.LastCrawlAt = timeVal(created), timeVal(crawled)
		return err
	})
	if err != nil {
		return panther.Source{}, fmt.Errorf("add source %s: %w", url, err)
	}
	return s, nil
}

// Sources lists all sources by id.
func (db *DB) Sources(ctx context.Context) ([]panther.Source, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, url, created_at, last_crawl_at FROM sources ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sources: %w", err)
	}
	defer rows.Close()
	out := []panther.Source{}
	for rows.Next() {
		var s panther.Source
		var created, crawled sql.NullInt64
		if err := rows.Scan(&s.ID, &s.URL, &created, &crawled); err != nil {
			return nil, fmt.Errorf("sources: %w", err)
		}
		s.CreatedAt, s.LastCrawlAt = timeVal(created), timeVal(crawled)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sources: %w", err)
	}
	return out, nil
}

// MarkCrawled records the end of a crawl of the source.
func (db *DB) MarkCrawled(ctx context.Context, sourceID int64, at time.Time) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE sources SET last_crawl_at = ? WHERE id = ?`, timeArg(at), sourceID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return panther.NotFoundf("source %d", sourceID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark source %d crawled: %w", sourceID, err)
	}
	return nil
}

func sourceExists(ctx context.Context, tx *sql.Tx, id int64) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM sources WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return panther.NotFoundf("source %d", id)
	}
	return err
}

// Enqueue adds the entries not yet in the source's frontier, as queued, in one transaction, and
// returns how many were new. A URL repeated within entries counts once.
func (db *DB) Enqueue(ctx context.Context, sourceID int64, entries []panther.FrontierEntry) (int, error) {
	for i, e := range entries {
		if e.URL == "" {
			return 0, panther.Invalidf("enqueue: entry %d: url is empty", i)
		}
		if e.Depth < 0 {
			return 0, panther.Invalidf("enqueue %s: depth %d is negative", e.URL, e.Depth)
		}
	}
	added := 0
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := sourceExists(ctx, tx, sourceID); err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO frontier (source_id, url, depth, state, reason)
			VALUES (?, ?, ?, 'queued', '') ON CONFLICT (source_id, url) DO NOTHING`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, e := range entries {
			res, err := stmt.ExecContext(ctx, sourceID, e.URL, e.Depth)
			if err != nil {
				return fmt.Errorf("%s: %w", e.URL, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			added += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("enqueue for source %d: %w", sourceID, err)
	}
	return added, nil
}

// Frontier returns the source's entries, shallowest first and in the order they were enqueued.
func (db *DB) Frontier(ctx context.Context, sourceID int64) ([]panther.FrontierEntry, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT url, depth, state, reason FROM frontier
		WHERE source_id = ? ORDER BY depth, rowid`, sourceID)
	if err != nil {
		return nil, fmt.Errorf("frontier of source %d: %w", sourceID, err)
	}
	defer rows.Close()
	out := []panther.FrontierEntry{}
	for rows.Next() {
		var e panther.FrontierEntry
		if err := rows.Scan(&e.URL, &e.Depth, &e.State, &e.Reason); err != nil {
			return nil, fmt.Errorf("frontier of source %d: %w", sourceID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("frontier of source %d: %w", sourceID, err)
	}
	return out, nil
}

// Finish records an entry's final state and reason. An entry that was never enqueued (a seed the
// crawler fetched directly) is added with its depth, so that the record of the run is complete.
func (db *DB) Finish(ctx context.Context, sourceID int64, e panther.FrontierEntry) error {
	if e.URL == "" {
		return panther.Invalidf("finish: url is empty")
	}
	switch e.State {
	case panther.FrontierQueued, panther.FrontierDone, panther.FrontierSkipped, panther.FrontierFailed:
	default:
		return panther.Invalidf("finish %s: unknown state %q", e.URL, e.State)
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := sourceExists(ctx, tx, sourceID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO frontier (source_id, url, depth, state, reason) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (source_id, url) DO UPDATE SET state = excluded.state, reason = excluded.reason`,
			sourceID, e.URL, max(e.Depth, 0), string(e.State), e.Reason)
		return err
	})
	if err != nil {
		return fmt.Errorf("finish %s for source %d: %w", e.URL, sourceID, err)
	}
	return nil
}

// ResetFrontier forgets the source's run.
func (db *DB) ResetFrontier(ctx context.Context, sourceID int64) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM frontier WHERE source_id = ?`, sourceID)
		return err
	})
	if err != nil {
		return fmt.Errorf("reset frontier of source %d: %w", sourceID, err)
	}
	return nil
}
