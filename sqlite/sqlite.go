// Package sqlite is the embedded panther.Store: one SQLite file (modernc.org/sqlite, pure Go) holding
// sources, documents, chunks, an FTS5 index over the chunks, and crawl frontiers.
//
// Writes go through a single connection so that concurrent writers (crawler workers) queue in Go
// instead of failing with SQLITE_BUSY; reads use a pool of query-only connections that run beside the
// writer thanks to WAL. Every write is one BEGIN IMMEDIATE transaction, so readers see a document
// either before or after a replacement, never a mix.
//
// A file this process may not write (a read-only file, folder or mount) still opens, for reading:
// every write then fails with an error that names the file, as does a write that meets a full disk.
// Either kind of failure rolls its transaction back and leaves what was stored before intact.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite" // also registers the "sqlite" driver

	"panther"
)

var (
	_ panther.Store       = (*DB)(nil)
	_ panther.VectorIndex = (*DB)(nil)
)

// Weights are the BM25 column weights of the lexical index: how much a match in a document's title,
// a chunk's heading path, its body or its keywords (the words it emphasises) counts. A keyword is also
// body text, so its weight adds to the body's.
type Weights struct {
	Title    float64
	Heading  float64
	Body     float64
	Keywords float64
}

// DefaultWeights were chosen with `panther eval` on the PostgreSQL manual's book index (see
// BENCHMARKS.md): title and headings above emphasised words above body text.
var DefaultWeights = Weights{Title: 5, Heading: 3, Body: 1, Keywords: 3}

// DefaultBusyTimeout bounds how long a connection waits for another process's lock before failing.
const DefaultBusyTimeout = 10 * time.Second

// Options tune a DB. The zero value is the default configuration.
type Options struct {
	// Weights are the BM25 column weights; the zero value means DefaultWeights.
	Weights Weights
	// ExhaustiveOR ranks every chunk holding any query word, always. By default a query of several
	// words first ranks only the chunks holding all of them and falls back to that full ranking when
	// fewer than K do: the same scores, a fraction of the work, but a chunk with some of the words
	// can no longer outrank K chunks with all of them. For comparing the two in evaluation.
	ExhaustiveOR bool
	// ReadConns is the size of the read pool; 0 means max(4, GOMAXPROCS).
	ReadConns int
	// BusyTimeout is how long to wait for a lock held by another process; 0 means DefaultBusyTimeout.
	BusyTimeout time.Duration
}

// DB is the embedded store. It is safe for concurrent use.
type DB struct {
	path  string
	write *sql.DB // exactly one connection: writers queue here
	read  *sql.DB // query-only pool
	rank  atomic.Pointer[rankConfig]
	put   *putStmts
	// readStmts caches prepared read statements by their SQL: preparing costs more than running
	// the point lookups a crawl makes for every page.
	readStmts sync.Map
	// vectors caches each model's vectors for exact search; see vectors.go.
	vectors vectorCache

	exhaustiveOR bool
	// readOnly, when not nil, says why the database was opened for reading only; write is nil then
	// and every write fails with this error.
	readOnly error
}

// readStmt returns the read pool's prepared statement for query, preparing it once.
func (db *DB) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := db.readStmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := db.read.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := db.readStmts.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// rankConfig is swapped as a whole so that a search never sees half of a weight update.
type rankConfig struct {
	weights      Weights
	rankExpr     string // the FTS5 rank function call, e.g. bm25(5, 3, 1)
	exhaustiveOR bool
}

// Open opens the store at path with default options, creating the file (not its directory) and
// bringing its schema up to date.
func Open(ctx context.Context, path string) (*DB, error) {
	return OpenWith(ctx, path, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, o Options) (*DB, error) {
	if path == "" {
		return nil, panther.Invalidf("sqlite: database path is empty")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	// Checked up front because SQLite reports a missing directory as the opaque "unable to open
	// database file".
	if fi, err := os.Stat(filepath.Dir(abs)); err != nil {
		return nil, fmt.Errorf("open sqlite database %s: directory: %w", path, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("open sqlite database %s: %s is not a directory", path, filepath.Dir(abs))
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = DefaultBusyTimeout
	}
	if o.ReadConns <= 0 {
		o.ReadConns = max(4, runtime.GOMAXPROCS(0))
	}
	db := &DB{path: abs}
	db.exhaustiveOR = o.ExhaustiveOR
	if err := db.SetWeights(o.Weights); err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}

	// Switching a new file to WAL and migrating it can meet another process doing the same; SQLite
	// then answers SQLITE_BUSY at once for some of these steps instead of waiting out busy_timeout,
	// so the whole step is retried until the timeout.
	err = retryBusy(ctx, o.BusyTimeout, func() error {
		w, err := sql.Open("sqlite", dsn(abs, o.BusyTimeout, false))
		if err != nil {
			return err
		}
		w.SetMaxOpenConns(1)
		w.SetMaxIdleConns(1)
		w.SetConnMaxLifetime(0)
		w.SetConnMaxIdleTime(0)
		if err := migrate(ctx, w); err != nil {
			w.Close()
			return err
		}
		// Prepared in the same retried step: FTS5's constructor reads its own tables, and when another
		// process has just changed the schema it answers SQLITE_SCHEMA instead of re-reading it.
		put, err := preparePut(ctx, w)
		if err != nil {
			w.Close()
			return err
		}
		db.write, db.put = w, put
		return nil
	})
	if err != nil {
		readOnly, explained := db.openFailure(err)
		if !readOnly {
			return nil, fmt.Errorf("open sqlite database %s: %w", path, explained)
		}
		// A knowledge base on a read-only file, folder or mount can still be searched; writes then
		// fail with an error naming the file instead of the whole open failing.
		if err := db.openReadOnly(ctx, o, err); err != nil {
			return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
		}
		return db, nil
	}

	// Opened after migrate so that query_only connections never meet a database still in rollback
	// journal mode (they could not switch it to WAL).
	db.read, err = sql.Open("sqlite", dsn(abs, o.BusyTimeout, true))
	if err != nil {
		db.write.Close()
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	db.read.SetMaxOpenConns(o.ReadConns)
	db.read.SetMaxIdleConns(o.ReadConns)
	if err := db.read.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	return db, nil
}

// dsn builds a file: URI so that any character in the path ('?', '#', '%') reaches SQLite intact.
func dsn(path string, busy time.Duration, readOnly bool) string {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(busy.Milliseconds(), 10))
	q.Set("_foreign_keys", "on")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Add("_pragma", "temp_store(MEMORY)")
	// 8 MiB per connection: measured against 32 MiB on the manual's search load, the same CPU per
	// search and 100 MiB less resident (BENCHMARKS.md); the OS page cache holds the file anyway.
	q.Add("_pragma", "cache_size(-8192)")
	if readOnly {
		q.Set("_query_only", "on")
	} else {
		// IMMEDIATE takes the write lock at BEGIN, so a transaction never has to be retried after
		// reading: another process's writer makes us wait (busy_timeout), not fail mid-way.
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	return u.String()
}

// SetWeights changes the BM25 column weights for later searches, so that
// evaluation can tune them without reopening the store. Zero weights mean DefaultWeights.
func (db *DB) SetWeights(w Weights) error {
	if w == (Weights{}) {
		w = DefaultWeights
	}
	for name, v := range map[string]float64{"title": w.Title, "heading": w.Heading, "body": w.Body, "keywords": w.Keywords} {
		if v < 0 || v != v || v > 1e6 {
			return panther.Invalidf("bm25 %s weight %v out of range [0, 1e6]", name, v)
		}
	}
	db.rank.Store(&rankConfig{
		weights: w,
		rankExpr: "bm25(" + strconv.FormatFloat(w.Title, 'g', -1, 64) + ", " +
			strconv.FormatFloat(w.Heading, 'g', -1, 64) + ", " +
			strconv.FormatFloat(w.Body, 'g', -1, 64) + ", " +
			strconv.FormatFloat(w.Keywords, 'g', -1, 64) + ")",
		exhaustiveOR: db.exhaustiveOR,
	})
	return nil
}

// Weights returns the BM25 column weights in force.
func (db *DB) Weights() Weights { return db.rank.Load().weights }

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// Close closes both connection pools. It first asks SQLite to refresh its planner statistics, which
// is cheap and keeps query plans good as the corpus grows.
func (db *DB) Close() error {
	var errs []error
	if db.write != nil {
		if _, err := db.write.Exec("PRAGMA optimize"); err != nil {
			errs = append(errs, fmt.Errorf("optimize: %w", err))
		}
	}
	if db.put != nil {
		db.put.close()
	}
	db.readStmts.Range(func(k, v any) bool {
		v.(*sql.Stmt).Close()
		db.readStmts.Delete(k)
		return true
	})
	if db.read != nil {
		errs = append(errs, db.read.Close())
	}
	if db.write != nil {
		errs = append(errs, db.write.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close sqlite database %s: %w", db.path, err)
	}
	return nil
}

// Stats returns counts and the size on disk (database file plus its write-ahead log).
func (db *DB) Stats(ctx context.Context) (panther.Stats, error) {
	var s panther.Stats
	err := db.read.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM sources),
		(SELECT count(*) FROM documents WHERE status = 'current'),
		(SELECT count(*) FROM documents WHERE status = 'gone'),
		(SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE d.status = 'current')`).
		Scan(&s.Sources, &s.Documents, &s.Gone, &s.Chunks)
	if err != nil {
		return s, fmt.Errorf("stats: %w", err)
	}
	for _, p := range []string{db.path, db.path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			s.SizeBytes += fi.Size()
		}
	}
	return s, nil
}

// tx runs fn in one write transaction (BEGIN IMMEDIATE through the single write connection). A
// read-only file or a full disk fails it with a storageError that says so.
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	if db.write == nil {
		return db.readOnly
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return db.storageErr(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return db.storageErr(err)
	}
	return db.storageErr(tx.Commit())
}

// Times are stored as Unix microseconds: integers compare and index cheaply, and microseconds are
// what PostgreSQL keeps, so both stores round-trip the same values. The zero time is stored as NULL.
func timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func timeVal(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMicro(n.Int64).UTC()
}

// Optimize merges the full-text index into one segment and refreshes the query planner's
// statistics. FTS5 otherwise leaves an index built by many small transactions (one per page
// crawled) in many segments, which made searches of common words several times slower on the
// PostgreSQL manual. It holds the writer for a moment (about 0.2 s for 15k chunks), so call it
// when a crawl or a bulk ingest ends, not after every write.
func (db *DB) Optimize(ctx context.Context) error {
	if db.write == nil {
		return nil // nothing can have been written through this handle
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize')`)
		return err
	})
	if err == nil {
		_, err = db.write.ExecContext(ctx, `PRAGMA optimize`)
	}
	if err != nil {
		return fmt.Errorf("optimize %s: %w", db.path, err)
	}
	return nil
}

// Check verifies the database file (PRAGMA quick_check) and that the full-text index matches the
// chunks of current documents exactly. It reads every page, so it is for tests and `panther doctor`,
// not for every start-up.
func (db *DB) Check(ctx context.Context) error {
	var res string
	if db.write == nil {
		// Read-only: the full-text check below writes (it runs as an FTS5 command), so only the
		// file is checked.
		if err := db.read.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&res); err != nil {
			return fmt.Errorf("check %s: %w", db.path, err)
		}
		if res != "ok" {
			return fmt.Errorf("check %s: quick_check: %s", db.path, res)
		}
		return nil
	}
	// On the write connection: run on a pool connection that had served searches while another
	// connection wrote, SQLite 3.54's FTS5 integrity hook reported blobs the index no longer
	// references as corrupt, although searches on those same connections were correct.
	if err := db.write.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&res); err != nil {
		return fmt.Errorf("check %s: %w", db.path, err)
	}
	if res != "ok" {
		return fmt.Errorf("check %s: quick_check: %s", db.path, res)
	}
	// rank = 1 makes FTS5 compare the index with its content view too, not only with itself.
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("check %s: full-text index: %w", db.path, err)
	}
	return nil
}

// sqliteBusy is SQLite's primary result code for a lock held by another connection.
const sqliteBusy = 5

// sqliteSchema is SQLite's result code for a statement prepared against a schema another connection
// has since changed.
const sqliteSchema = 17

func retryableOpen(code int) bool { return code == sqliteBusy || code == sqliteSchema }

// retryBusy runs fn until it does not fail with SQLITE_BUSY or SQLITE_SCHEMA, for at most timeout.
func retryBusy(ctx context.Context, timeout time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	wait := 5 * time.Millisecond
	for {
		err := fn()
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || !retryableOpen(se.Code()&0xff) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}
