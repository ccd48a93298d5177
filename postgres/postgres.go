// Package postgres is the shared panther.Store: one PostgreSQL database (pgx v5, a bounded pool)
// holding sources, documents, chunks with a weighted tsvector each, crawl frontiers, passage
// vectors and agent sessions, so that several panther processes on several hosts can share one
// knowledge base.
//
// It behaves as the embedded store (package sqlite) does; both run the conformance suite in
// storetest. Where PostgreSQL differs:
//
//   - Lexical search ranks with ts_rank over one tsvector per chunk (title weight A, heading path B,
//     keywords C, body D; see rankWeights for how they were chosen), which has no inverse document
//     frequency: on the PostgreSQL manual's qrels it comes within 0.02 MRR@10 of the embedded
//     store's BM25. The text search configuration is english without its stop-word list, so that a
//     query made only of stop words still finds what it says, as it does in the embedded store.
//   - Vectors are searched with a pgvector HNSW index per model (cosine) where the server has the
//     extension (Migrate installs it where it may); elsewhere, and for a model whose index is not
//     built yet, exactly, in process, against a cache reloaded when PutVectors changes its vectors.
//   - PostgreSQL text holds neither NUL nor invalid UTF-8: content fields have them replaced by
//     U+FFFD; keys (URLs, hashes) that contain them are ErrInvalid.
//
// Writes run in READ COMMITTED transactions that lock the rows they replace (a document's row
// before its chunks), so concurrent writers of one page queue behind each other and a reader's
// single statement sees one version of a page or the next, never a mix; serialization failures and
// deadlocks are retried.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"panther"
)

var (
	_ panther.Store       = (*DB)(nil)
	_ panther.VectorIndex = (*DB)(nil)
)

// Defaults of Options.
const (
	DefaultStatementTimeout = 30 * time.Second
	DefaultConnectTimeout   = 10 * time.Second
	// defaultIdleInTx ends a session that sits in an open transaction, so a stuck client cannot
	// hold row locks (and block every writer of a page) forever.
	defaultIdleInTx = time.Minute
)

// Options tune a DB. The zero value is the default configuration.
type Options struct {
	// MaxConns bounds the pool; 0 keeps pgxpool's default (max(4, CPUs)) or pool_max_conns from the DSN.
	MaxConns int32
	// StatementTimeout bounds every statement on the server; 0 means DefaultStatementTimeout, unless
	// the DSN sets statement_timeout. Migrations are not bounded by it.
	StatementTimeout time.Duration
	// ConnectTimeout bounds each connection attempt; 0 means DefaultConnectTimeout, unless the DSN
	// sets connect_timeout.
	ConnectTimeout time.Duration
	// NoMigrate makes Open check the schema instead of bringing it up to date: a database whose schema
	// is older than this binary's is refused (ErrUnavailable) until Migrate runs.
	NoMigrate bool
	// Logger receives the few things worth saying once (how vectors are searched); nil means
	// slog.Default().
	Logger *slog.Logger
}

// DB is the shared store. It is safe for concurrent use, by many processes at once.
type DB struct {
	pool    *pgxpool.Pool
	where   string // host:port/database, for messages; never the password
	log     *slog.Logger
	vectors vectorRanker
	hnsw    *hnswRanker // nil without pgvector
	// vectorSearch names the ranker, for status.
	vectorSearch string
}

// Open connects to the database at dsn (a postgres:// URL or key=value string) with default
// options, and brings its schema up to date.
func Open(ctx context.Context, dsn string) (*DB, error) {
	return OpenWith(ctx, dsn, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, dsn string, o Options) (*DB, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, panther.Invalidf("postgres: connection string is empty")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, parseError(dsn, err)
	}
	if o.MaxConns < 0 || o.StatementTimeout < 0 || o.ConnectTimeout < 0 {
		return nil, panther.Invalidf("postgres: negative pool size or timeout in options %+v", o)
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	cc := cfg.ConnConfig
	if o.ConnectTimeout > 0 || cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = orDefault(o.ConnectTimeout, DefaultConnectTimeout)
	}
	setDefault := func(param, value string, force bool) {
		if _, ok := cc.RuntimeParams[param]; !ok || force {
			cc.RuntimeParams[param] = value
		}
	}
	setDefault("statement_timeout", strconv.FormatInt(orDefault(o.StatementTimeout, DefaultStatementTimeout).Milliseconds(), 10), o.StatementTimeout > 0)
	setDefault("idle_in_transaction_session_timeout", strconv.FormatInt(defaultIdleInTx.Milliseconds(), 10), false)
	setDefault("application_name", "panther", false)

	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	db := &DB{where: fmt.Sprintf("%s:%d/%s", cc.Host, cc.Port, cc.Database), log: log}
	if db.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("open postgres database %s: %w", db.where, unavailable(err))
	}
	if o.NoMigrate {
		err = db.checkSchema(ctx)
	} else {
		err = db.Migrate(ctx)
	}
	if err != nil {
		db.pool.Close()
		return nil, fmt.Errorf("open postgres database %s: %w", db.where, err)
	}
	if err := db.chooseVectorRanker(ctx); err != nil {
		db.pool.Close()
		return nil, fmt.Errorf("open postgres database %s: %w", db.where, err)
	}
	return db, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// chooseVectorRanker searches vectors with pgvector's HNSW indexes when the extension is installed,
// exactly in process otherwise, and says which once.
func (db *DB) chooseVectorRanker(ctx context.Context) error {
	exact := newExactRanker(db.pool)
	db.vectors, db.vectorSearch = exact, "exact, in process"
	schema, version, err := pgvectorSchema(ctx, db.pool)
	if err != nil {
		return fmt.Errorf("detect pgvector: %w", unavailable(err))
	}
	if schema != "" {
		db.hnsw = newHNSWRanker(db.pool, schema, exact, db.log)
		db.vectors, db.vectorSearch = db.hnsw, "pgvector "+version+" HNSW (cosine)"
		db.log.Info("postgres: vector search uses pgvector HNSW indexes, built per model in the background; exact, in process, until a model's index is ready",
			"database", db.where, "pgvector", version)
		return nil
	}
	var available bool
	if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')`).Scan(&available); err != nil {
		return fmt.Errorf("detect pgvector: %w", unavailable(err))
	}
	if available {
		db.log.Info("postgres: pgvector is available but not installed in this database (panther migrate installs it where it may); vector search is exact, in process", "database", db.where)
	} else {
		db.log.Info("postgres: pgvector is not available; vector search is exact, in process", "database", db.where)
	}
	return nil
}

// VectorSearch says how vectors are searched: with pgvector's HNSW indexes, or exactly in process.
func (db *DB) VectorSearch() string { return db.vectorSearch }

// Close stops index builds, then closes the pool, waiting for connections in use to be returned.
func (db *DB) Close() error {
	if db.hnsw != nil {
		db.hnsw.stop()
	}
	db.pool.Close()
	return nil
}

// Where names the database as host:port/database, without credentials.
func (db *DB) Where() string { return db.where }

// Stats returns counts and the size of panther's tables with their indexes.
func (db *DB) Stats(ctx context.Context) (panther.Stats, error) {
	var s panther.Stats
	err := db.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM sources),
		(SELECT count(*) FROM documents WHERE status = 'current'),
		(SELECT count(*) FROM documents WHERE status = 'gone'),
		(SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE d.status = 'current'),
		(SELECT coalesce(sum(pg_total_relation_size(t::regclass)), 0)::bigint
			FROM unnest($1::text[]) t)`, tables).
		Scan(&s.Sources, &s.Documents, &s.Gone, &s.Chunks, &s.SizeBytes)
	if err != nil {
		return s, fmt.Errorf("stats: %w", unavailable(err))
	}
	return s, nil
}

// tables are panther's tables, for Stats.
var tables = []string{"sources", "documents", "chunks", "frontier", "embedders", "vectors", "sessions", "session_messages"}

// maxAttempts bounds how often a transaction that lost a serialization conflict or a deadlock is run.
const maxAttempts = 10

// tx runs fn in one READ COMMITTED transaction, again from the start when PostgreSQL aborted it for
// a serialization failure or a deadlock. fn must not keep state across attempts.
func (db *DB) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return retry(ctx, func() error { return pgx.BeginFunc(ctx, db.pool, fn) })
}

func retry(ctx context.Context, fn func() error) error {
	wait := 2 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == maxAttempts || !retryable(err) {
			return unavailable(err)
		}
		// Jitter keeps the writers that collided from colliding again in step.
		d := wait/2 + time.Duration(rand.Int64N(int64(wait)))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(d):
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
}

// SQLSTATEs this package acts on.
const (
	codeSerialization = "40001"
	codeDeadlock      = "40P01"
	codeForeignKey    = "23503"
)

func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == codeSerialization || pe.Code == codeDeadlock)
}

// isForeignKey reports whether err is a violation of the named foreign key constraint.
func isForeignKey(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == codeForeignKey && pe.ConstraintName == constraint
}

// unavailable marks failures to reach the server as panther.ErrUnavailable, so that callers tell
// "the database is down" from "the request was wrong".
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

var passwordField = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// parseError reports a connection string that does not parse without quoting it: pgx redacts
// passwords only as far as it can tell where they are.
func parseError(dsn string, err error) error {
	shown := "(key=value string, password hidden)"
	if u, uerr := url.Parse(dsn); uerr == nil && u.Scheme != "" {
		shown = u.Redacted()
	} else if !strings.Contains(dsn, "://") {
		shown = passwordField.ReplaceAllString(dsn, "${1}xxxxx")
	} else {
		shown = "(a URL that does not parse)"
	}
	reason := ""
	var ue *url.Error
	if inner := errors.Unwrap(err); inner != nil && !errors.As(inner, &ue) {
		reason = ": " + inner.Error()
	}
	return panther.Invalidf("postgres: connection string %s does not parse%s", shown, reason)
}

// text makes s storable: PostgreSQL text holds neither NUL nor invalid UTF-8, which pages and tool
// output can carry and SQLite keeps. Both become U+FFFD.
func text(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// checkKey returns ErrInvalid for a key (URL, hash) PostgreSQL cannot hold, so that it is named as
// bad input rather than failing as an encoding error deep in the driver.
func checkKey(what, s string) error {
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return panther.Invalidf("%s %q: not valid UTF-8 text (NUL or invalid bytes)", what, s)
	}
	return nil
}

// timeArg stores the zero time as NULL; timestamptz keeps microseconds, as the embedded store does.
func timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

// timeVal is a scanned nullable timestamptz, in UTC.
func timeVal(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
