package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// codeLockNotAvailable is the SQLSTATE of a lock_timeout that ran out.
const codeLockNotAvailable = "55P03"

// Optimize refreshes the planner's statistics of the tables a crawl fills (ANALYZE), which
// autovacuum would do too, later. Unlike the embedded store there is no full-text index to merge:
// a GIN index takes its pending entries in by itself. Another session analysing the same tables
// holds a lock ANALYZE needs; waiting for it would stall the crawl that called Optimize for
// nothing, so Optimize then returns at once and leaves the statistics to that session.
func (db *DB) Optimize(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '1s'`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `ANALYZE sources, documents, chunks, vectors`)
		return err
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == codeLockNotAvailable {
		return nil
	}
	if err != nil {
		return fmt.Errorf("optimize %s: %w", db.where, unavailable(err))
	}
	return nil
}

// SchemaVersionAt connects to the database at dsn and reads its schema version without migrating
// or changing anything: 0 when panther never migrated it, SchemaVersion when it is up to date. It is
// how a caller that must not migrate (panther migrate --check) learns whether Open would.
func SchemaVersionAt(ctx context.Context, dsn string) (int, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return 0, parseError(dsn, err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("schema version of %s: %w", where, unavailable(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	v, err := schemaVersion(ctx, conn)
	if err != nil {
		return 0, fmt.Errorf("schema version of %s: %w", where, unavailable(err))
	}
	return v, nil
}
