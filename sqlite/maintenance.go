package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
)

// SchemaVersionOf returns the version of the open database's schema: SchemaVersion, since Open
// brings it up to date.
func (db *DB) SchemaVersionOf(ctx context.Context) (int, error) {
	var v int
	if err := db.read.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("schema version of %s: %w", db.path, err)
	}
	return v, nil
}

// SchemaVersionAt reads the schema version of the database file at path without creating,
// migrating or otherwise changing it: 0 when the file does not exist or panther never migrated it,
// SchemaVersion when it is up to date. It is how a caller that must not migrate (panther
// --no-migrate, panther migrate --check) learns whether Open would.
func SchemaVersionAt(ctx context.Context, path string) (int, error) {
	if path == "" {
		return 0, fmt.Errorf("sqlite: database path is empty")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return 0, fmt.Errorf("schema version of %s: %w", path, err)
	}
	if _, err := os.Stat(abs); errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("schema version of %s: %w", path, err)
	}
	// Only the busy timeout and query_only: no journal-mode switch, nothing that writes.
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(DefaultBusyTimeout.Milliseconds(), 10))
	q.Set("_query_only", "on")
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	conn, err := sql.Open("sqlite", u.String())
	if err != nil {
		return 0, fmt.Errorf("schema version of %s: %w", path, err)
	}
	defer conn.Close()
	var v int
	if err := conn.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("schema version of %s: %w", path, err)
	}
	return v, nil
}
