package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"panther"
	"panther/internal/pgtest"
	"panther/storetest"
)

// The tests run against the PostgreSQL server whose DSN is in PANTHER_TEST_POSTGRES (scripts/test.sh
// starts a throwaway cluster with scripts/pg-cluster.sh and sets it). Each test gets a schema of its
// own, created from scratch and dropped afterwards, so tests never see each other's rows.

func TestMain(m *testing.M) {
	code := m.Run()
	stopPGlite()
	os.Exit(code)
}

// freshDSN is a schema of the test's own on the test server, dropped when the test ends: as good as
// a database for isolation (the store creates every object in the first schema of the search path)
// and ten times quicker to make.
func freshDSN(t testing.TB) string { return pgtest.FreshDSN(t) }

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func openFresh(t testing.TB) *DB {
	t.Helper()
	db, err := OpenWith(t.Context(), freshDSN(t), Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	pgtest.ServerDSN(t)
	storetest.Run(t, func(t *testing.T) panther.Store { return openFresh(t) })
}

// TestConcurrentOpen starts several stores on one empty schema at once: the migrations must run
// exactly once, and every Open must succeed.
func TestConcurrentOpen(t *testing.T) {
	dsn := freshDSN(t)
	const n = 4
	var wg sync.WaitGroup
	dbs := make([]*DB, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { dbs[i], errs[i] = OpenWith(t.Context(), dsn, Options{Logger: quiet()}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		defer dbs[i].Close()
	}
	if t.Failed() {
		return
	}
	var count, top int
	if err := dbs[0].pool.QueryRow(t.Context(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&count, &top); err != nil {
		t.Fatal(err)
	}
	if count != SchemaVersion || top != SchemaVersion {
		t.Errorf("schema_migrations holds %d rows up to version %d, want %d each", count, top, SchemaVersion)
	}
	// Every store works on the one schema.
	for i, db := range dbs {
		if _, err := db.AddSource(t.Context(), fmt.Sprintf("https://%d.example/", i)); err != nil {
			t.Errorf("store %d: %v", i, err)
		}
	}
}

func TestMigrations(t *testing.T) {
	dsn := freshDSN(t)
	ctx := t.Context()
	quietly := Options{Logger: quiet(), NoMigrate: true}

	_, err := OpenWith(ctx, dsn, quietly)
	if !errors.Is(err, panther.ErrUnavailable) || !strings.Contains(err.Error(), "migrate") {
		t.Fatalf("NoMigrate on an empty database: %v, want ErrUnavailable asking for a migration", err)
	}
	db, err := OpenWith(ctx, dsn, Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.AddSource(ctx, "https://kept.example/"); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Errorf("Migrate on an up-to-date schema: %v", err)
	}
	if v, err := db.SchemaVersionOf(ctx); err != nil || v != SchemaVersion {
		t.Errorf("SchemaVersionOf = %d, %v; want %d", v, err, SchemaVersion)
	}
	checked, err := OpenWith(ctx, dsn, quietly)
	if err != nil {
		t.Fatalf("NoMigrate on an up-to-date schema: %v", err)
	}
	srcs, err := checked.Sources(ctx)
	checked.Close()
	if err != nil || len(srcs) != 1 {
		t.Errorf("after reopening: sources %v, %v; want the one added", srcs, err)
	}

	if _, err := db.pool.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, 'from the future')`, SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	for _, o := range []Options{{Logger: quiet()}, quietly} {
		newer, err := OpenWith(ctx, dsn, o)
		if err == nil {
			newer.Close()
			t.Fatalf("Open (NoMigrate %v) of a schema from a newer binary succeeded", o.NoMigrate)
		}
		if !strings.Contains(err.Error(), "newer") {
			t.Errorf("Open (NoMigrate %v) of a newer schema: %v, want it to say so", o.NoMigrate, err)
		}
	}
}

// TestOpenErrors needs no server: nothing listens on port 1.
func TestOpenErrors(t *testing.T) {
	const secret = "s3cr3t-pw"
	tests := []struct {
		name, dsn string
		kind      error
	}{
		{"empty", "  ", panther.ErrInvalid},
		{"bad url", "postgres://u:" + secret + "@127.0.0.1:notaport/db", panther.ErrInvalid},
		{"bad option", "postgres://u:" + secret + "@127.0.0.1/db?pool_max_conns=many", panther.ErrInvalid},
		{"bad key=value", "host=127.0.0.1 password=" + secret + " port=x", panther.ErrInvalid},
		{"nothing listening", "postgres://u:" + secret + "@127.0.0.1:1/db?connect_timeout=5", panther.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := OpenWith(t.Context(), tt.dsn, Options{Logger: quiet()})
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("Open: %v, want %v", err, tt.kind)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	dsn := freshDSN(t)
	tests := []struct {
		name string
		dsn  string
		o    Options
		want string
	}{
		{"default", dsn, Options{}, "30s"},
		{"option", dsn, Options{StatementTimeout: 1500 * time.Millisecond}, "1500ms"},
		{"dsn", dsn + "&statement_timeout=1234", Options{}, "1234ms"},
	}
	if !strings.Contains(dsn, "?") {
		t.Fatalf("test DSN %q has no query part to add to", dsn)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Logger = quiet()
			db, err := OpenWith(t.Context(), tt.dsn, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var got string
			if err := db.pool.QueryRow(t.Context(), `SHOW statement_timeout`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("statement_timeout = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestVectorLog: Open says once how vectors are searched.
func TestVectorLog(t *testing.T) {
	var buf bytes.Buffer
	db, err := OpenWith(t.Context(), freshDSN(t), Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.SearchVectors(t.Context(), "m", []float32{1, 0}, 3, panther.Filter{}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "vector search is exact"); n != 1 {
		t.Errorf("log said %d times that vector search is exact, want once:\n%s", n, buf.String())
	}
	if db.hnsw == nil && !strings.Contains(buf.String(), "pgvector is not available") && !strings.Contains(buf.String(), "not installed") {
		t.Errorf("log does not say pgvector is missing:\n%s", buf.String())
	}
}

// TestVectorCacheAcrossStores: a store that cached a model's vectors sees vectors another process
// stored afterwards.
func TestVectorCacheAcrossStores(t *testing.T) {
	dsn := freshDSN(t)
	ctx := t.Context()
	a, err := OpenWith(ctx, dsn, Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenWith(ctx, dsn, Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := a.PutDocument(ctx, panther.Document{URL: "https://v.example/1"}, []panther.Chunk{{Text: "one"}, {Text: "two"}}); err != nil {
		t.Fatal(err)
	}
	cs, err := a.ChunksToEmbed(ctx, "m", 10)
	if err != nil || len(cs) != 2 {
		t.Fatalf("ChunksToEmbed: %v, %v", cs, err)
	}
	if err := a.PutVectors(ctx, "m", []panther.ChunkVector{{ChunkID: cs[0].ID, Vector: []float32{1, 0}}}); err != nil {
		t.Fatal(err)
	}
	if hits, err := a.SearchVectors(ctx, "m", []float32{0, 1}, 5, panther.Filter{}); err != nil || len(hits) != 1 {
		t.Fatalf("first search: %d hits, %v; want 1", len(hits), err)
	}
	if err := b.PutVectors(ctx, "m", []panther.ChunkVector{{ChunkID: cs[1].ID, Vector: []float32{0, 1}}}); err != nil {
		t.Fatal(err)
	}
	hits, err := a.SearchVectors(ctx, "m", []float32{0, 1}, 5, panther.Filter{})
	if err != nil || len(hits) != 2 || hits[0].ChunkID != cs[1].ID {
		t.Errorf("after another store added a vector: %+v, %v; want chunk %d first of 2", hits, err, cs[1].ID)
	}
}

// TestUnstorableText: PostgreSQL text holds no NUL and no invalid UTF-8. Content carrying them is
// stored with U+FFFD in their place; a key carrying them is bad input.
func TestUnstorableText(t *testing.T) {
	db := openFresh(t)
	ctx := t.Context()
	d := panther.Document{URL: "https://u.example/", Title: "nul\x00title", Markdown: "bad \xff byte", Links: []string{"https://u.example/\x00"}}
	id, err := db.PutDocument(ctx, d, []panther.Chunk{{Heading: []string{"h\x00"}, Text: "zebu\x00grazes \xfe"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.Document(ctx, d.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != "nul\uFFFDtitle" || got.Markdown != "bad \uFFFD byte" || len(got.Links) != 1 || got.Links[0] != "https://u.example/\uFFFD" {
		t.Errorf("stored %+v", got)
	}
	cs, err := db.Chunks(ctx, id)
	if err != nil || len(cs) != 1 || cs[0].Text != "zebu\uFFFDgrazes \uFFFD" || cs[0].Heading[0] != "h\uFFFD" {
		t.Errorf("chunks %+v, %v", cs, err)
	}
	if hits, err := db.SearchLexical(ctx, panther.Query{Text: "zebu"}); err != nil || len(hits) != 1 {
		t.Errorf("search: %+v, %v", hits, err)
	}
	for name, call := range map[string]func() error{
		"put": func() error {
			_, err := db.PutDocument(ctx, panther.Document{URL: "https://u.example/\x00"}, nil)
			return err
		},
		"document": func() error { _, err := db.Document(ctx, "https://u.example/\xff"); return err },
		"source":   func() error { _, err := db.AddSource(ctx, "https://\x00"); return err },
		"prefix": func() error {
			_, err := db.SearchLexical(ctx, panther.Query{Text: "x", Filter: panther.Filter{URLPrefix: "\xff"}})
			return err
		},
	} {
		if err := call(); !errors.Is(err, panther.ErrInvalid) {
			t.Errorf("%s with an unstorable key: %v, want ErrInvalid", name, err)
		}
	}
}

// TestSearchUsesIndex: with sequential scans priced out, the search statements must use the GIN
// index; if the query stops matching the partial index's predicate, this fails.
func TestSearchUsesIndex(t *testing.T) {
	db := openFresh(t)
	ctx := t.Context()
	for _, op := range []string{"and", "or"} {
		err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `EXPLAIN `+searchSQL(op, ""), []string{"vacuum", "tables"}, 10)
			if err != nil {
				return err
			}
			plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			if p := strings.Join(plan, "\n"); !strings.Contains(p, "chunks_tsv") {
				t.Errorf("%s search does not use chunks_tsv:\n%s", op, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: codeSerialization}, true},
		{&pgconn.PgError{Code: codeDeadlock}, true},
		{fmt.Errorf("put: %w", &pgconn.PgError{Code: codeDeadlock}), true},
		{&pgconn.PgError{Code: "23505"}, false},
		{&pgconn.PgError{Code: codeForeignKey}, false},
		{errors.New("40001"), false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := retryable(tt.err); got != tt.want {
			t.Errorf("retryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestPutVectorsRacesDelete: a page replacement that deletes a chunk after PutVectors's statement
// took its snapshot makes the vector's foreign key check fail; PutVectors must run again and skip
// the chunk, not fail the batch. The interleaving is forced with a transaction held open.
func TestPutVectorsRacesDelete(t *testing.T) {
	db := openFresh(t)
	ctx := t.Context()
	id, err := db.PutDocument(ctx, panther.Document{URL: "https://r.example/"}, []panther.Chunk{{Text: "kept"}, {Text: "deleted"}})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := db.Chunks(ctx, id)
	if err != nil || len(cs) != 2 {
		t.Fatalf("chunks %v, %v", cs, err)
	}
	deleter, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer deleter.Rollback(context.Background())
	if _, err := deleter.Exec(ctx, `DELETE FROM chunks WHERE id = $1`, cs[1].ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- db.PutVectors(ctx, "m", []panther.ChunkVector{{ChunkID: cs[0].ID, Vector: []float32{1, 0}}, {ChunkID: cs[1].ID, Vector: []float32{0, 1}}})
	}()
	// Commit the delete only once PutVectors waits for the deleted row's lock.
	for {
		var waiting bool
		if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO vectors%')`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("PutVectors ended (%v) before meeting the uncommitted delete", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := deleter.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("PutVectors: %v", err)
	}
	if with, all, err := db.VectorCoverage(ctx, "m"); err != nil || with != 1 || all != 1 {
		t.Errorf("coverage %d of %d, %v; want the kept chunk's vector only", with, all, err)
	}
}
