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
	"time"

	"modernc.org/sqlite"

	"panther"
)

// SQLite's primary result codes for the failures a user must fix outside panther.
const (
	sqliteReadOnly = 8
	sqliteFull     = 13
	sqliteCantOpen = 14
)

// sqliteCode returns err's SQLite primary result code, or 0 when it is not an SQLite error.
func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff
	}
	return 0
}

// storageError is a write SQLite refused for a reason outside panther: the file, its folder or its
// mount is read-only, the disk (or the database's page limit) is full, or another process held the
// write lock for longer than the busy timeout. SQLite's own words
// ("attempt to write a readonly database (1544)") name neither the file nor the remedy; this does.
// It is panther.ErrUnavailable, so the HTTP API answers 503 and the command line exits 1.
type storageError struct {
	msg string
	err error
}

func (e *storageError) Error() string   { return e.msg }
func (e *storageError) Unwrap() []error { return []error{e.err, panther.ErrUnavailable} }

// storageErr turns SQLite's read-only and full errors into storageErrors naming the file; any other
// error is returned as it is.
func (db *DB) storageErr(err error) error {
	var se *storageError
	if err == nil || errors.As(err, &se) {
		return err
	}
	switch sqliteCode(err) {
	case sqliteReadOnly:
		return &storageError{err: err, msg: fmt.Sprintf("database %s is read-only: writing needs write access to the file and its folder (%v)", db.path, err)}
	case sqliteFull:
		return &storageError{err: err, msg: fmt.Sprintf("database or disk is full: %s cannot grow (%v); this write was rolled back and what was stored before is intact: free some space and run again", db.path, err)}
	case sqliteBusy:
		// Only after the busy timeout: SQLite waits that long for the lock before giving up.
		return &storageError{err: err, msg: fmt.Sprintf("database %s is busy: another process held its write lock longer than this one waits for it (the busy timeout); this write was rolled back: try again", db.path)}
	}
	return err
}

// openFailure explains an open that failed before the schema could be read. It reports readOnly
// when the file exists but this process may not write it, its folder (where SQLite keeps the -wal
// and -shm files) or its mount: such a database can still be opened for reading.
func (db *DB) openFailure(err error) (readOnly bool, explained error) {
	code := sqliteCode(err)
	if code != sqliteReadOnly && code != sqliteCantOpen {
		return false, db.storageErr(err)
	}
	fi, statErr := os.Stat(db.path)
	switch {
	case errors.Is(statErr, fs.ErrNotExist):
		// SQLite says "unable to open database file" and nothing more.
		return false, fmt.Errorf("cannot create the file (is its folder writable?): %w", err)
	case statErr != nil:
		return false, fmt.Errorf("%w (%v)", err, statErr)
	case !fi.Mode().IsRegular():
		return false, fmt.Errorf("not a regular file: %w", err)
	}
	return true, err
}

// openReadOnly sets db up for reading only: no write connection, every write failing with db.readOnly.
// It refuses a schema older than this binary's, which would need a migration it cannot write.
func (db *DB) openReadOnly(ctx context.Context, o Options, cause error) error {
	busy := o.BusyTimeout
	db.readOnly = &storageError{err: fs.ErrPermission, msg: fmt.Sprintf("database %s is read-only: writing needs write access to the file and its folder", db.path)}
	open := func(immutable bool) (*sql.DB, int, error) {
		conn, err := sql.Open("sqlite", readOnlyDSN(db.path, busy, immutable))
		if err != nil {
			return nil, 0, err
		}
		var v int
		if err := conn.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
			conn.Close()
			return nil, 0, err
		}
		return conn, v, nil
	}
	conn, v, err := open(false)
	if err != nil && (sqliteCode(err) == sqliteReadOnly || sqliteCode(err) == sqliteCantOpen) {
		// A database in WAL mode needs its -shm file, which SQLite cannot create in a read-only
		// folder. With no -wal file beside it, no process has it open for writing, and the file can
		// be read as immutable (SQLite then takes no locks and needs no -shm).
		if _, statErr := os.Stat(db.path + "-wal"); errors.Is(statErr, fs.ErrNotExist) {
			conn, v, err = open(true)
		}
	}
	if err != nil {
		return fmt.Errorf("cannot open it for writing (%v) nor for reading: %w", cause, err)
	}
	switch {
	case v < len(migrations):
		conn.Close()
		return fmt.Errorf("it is read-only and its schema (version %d) needs upgrading to version %d, which needs write access: %w", v, len(migrations), panther.ErrUnavailable)
	case v > len(migrations):
		conn.Close()
		return fmt.Errorf("schema version %d is newer than this binary knows (%d): upgrade panther", v, len(migrations))
	}
	conn.SetMaxOpenConns(o.ReadConns)
	conn.SetMaxIdleConns(o.ReadConns)
	db.read = conn
	return nil
}

// readOnlyDSN is dsn for a database opened for reading only: mode=ro, no journal-mode switch (it
// would write), and immutable when no one can be writing it.
func readOnlyDSN(path string, busy time.Duration, immutable bool) string {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(busy.Milliseconds(), 10))
	q.Set("_query_only", "on")
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Add("_pragma", "cache_size(-32768)")
	q.Set("mode", "ro")
	if immutable {
		q.Set("immutable", "1")
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	return u.String()
}
