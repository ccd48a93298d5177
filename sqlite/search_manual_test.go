package sqlite

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"panther"
	"panther/extract"
	"panther/internal/cputime"
	"panther/kb"
)

// The benchmarks and the agreement test of this file run on the PostgreSQL manual indexed as a
// crawl would (extract, then kb's chunking), and search it with the manual's book-index queries: the
// corpus and the query mix panther's serve figures are stated for. They skip when
// PANTHER_TEST_PGDOCS does not name the manual's folder; PANTHER_BENCH_DB names a database to reuse
// across runs (filled if empty), e.g. one made by `panther crawl`.

var (
	manualOnce sync.Once
	manualDB   *DB
	manualErr  error
	manualDir  string
)

// RemoveManualStore closes the manual's store and removes it unless PANTHER_BENCH_DB named it;
// TestMain calls it once every test and benchmark has run.
func RemoveManualStore() {
	if manualDB != nil {
		manualDB.Close()
	}
	if manualDir != "" {
		os.RemoveAll(manualDir)
	}
}

func manualStore(tb testing.TB) *DB {
	tb.Helper()
	docs := os.Getenv("PANTHER_TEST_PGDOCS")
	if docs == "" {
		tb.Skip("PANTHER_TEST_PGDOCS is unset (the PostgreSQL manual's HTML folder)")
	}
	manualOnce.Do(func() { manualDB, manualErr = openManual(docs) })
	if manualErr != nil {
		tb.Fatal(manualErr)
	}
	return manualDB
}

func openManual(docs string) (*DB, error) {
	ctx := context.Background()
	path := os.Getenv("PANTHER_BENCH_DB")
	if path == "" {
		var err error
		if manualDir, err = os.MkdirTemp("", "panther-manual-"); err != nil {
			return nil, err
		}
		path = filepath.Join(manualDir, "manual.db")
	}
	db, err := Open(ctx, path)
	if err != nil {
		return nil, err
	}
	if st, err := db.Stats(ctx); err != nil || st.Documents > 0 {
		return db, err
	}
	svc, err := kb.New(db, kb.Options{})
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(docs, "*.html"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		u := &url.URL{Scheme: "http", Host: "manual.invalid", Path: "/" + filepath.Base(f)}
		res, err := extract.Extract(u, "text/html", body)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		doc := panther.Document{URL: u.String(), Title: res.Title, Markdown: res.Markdown, Links: res.Links,
			Validators: panther.Validators{ContentHash: hex.EncodeToString(sum[:])}, FetchedAt: time.Now(),
			Status: panther.DocCurrent}
		if _, err := svc.Ingest(ctx, doc, res.Sections); err != nil {
			return nil, err
		}
	}
	return db, db.Optimize(ctx)
}

// bookIndexQueries are the queries of the manual's book index, in file order.
func bookIndexQueries(tb testing.TB) []string {
	tb.Helper()
	f, err := os.Open("../bench/testdata/pg15-bookindex.qrels.jsonl")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var qs []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l struct{ Query string }
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			tb.Fatal(err)
		}
		qs = append(qs, l.Query)
	}
	if err := sc.Err(); err != nil || len(qs) == 0 {
		tb.Fatalf("book-index queries: %d read, %v", len(qs), err)
	}
	return qs
}

// manualPool is the number of passages kb.Search asks the store for when k is 10 (4 × 10, to keep
// ten after one passage per page).
const manualPool = 40

// BenchmarkSearchManual runs the whole book-index query mix once per op and reports CPU time and
// allocations per search: before (the unbounded OR fallback, FTS5's rank-everything-then-sort),
// after/sql (bounded OR in SQL, no kept shares: a search whose words are all new), after/cold (kept
// shares dropped at the start of each pass, so each word is read once a pass) and after (shares
// kept across passes: the steady state of a server whose index holds still).
func BenchmarkSearchManual(b *testing.B) {
	db := manualStore(b)
	queries := bookIndexQueries(b)
	ctx := context.Background()
	for _, side := range []struct {
		name   string
		search func(q panther.Query) error
		pass   func()
	}{
		{name: "before", search: func(q panther.Query) error { _, err := db.searchLexicalBefore(ctx, q); return err }},
		{name: "after/sql", search: func(q panther.Query) error { db.searchSQL(b, q); return nil }},
		{name: "after/cold", search: func(q panther.Query) error { _, err := db.SearchLexical(ctx, q); return err },
			pass: func() { db.termCache().lookup("", Weights{}, nil) }},
		{name: "after", search: func(q panther.Query) error { _, err := db.SearchLexical(ctx, q); return err }},
	} {
		b.Run(side.name, func(b *testing.B) {
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			cpu := cputime.Used()
			lat := make([]time.Duration, 0, len(queries))
			for b.Loop() {
				if side.pass != nil {
					side.pass()
				}
				lat = lat[:0]
				for _, q := range queries {
					start := time.Now()
					if err := side.search(panther.Query{Text: q, K: manualPool}); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(start))
				}
			}
			runtime.ReadMemStats(&ms1)
			n := float64(b.N * len(queries))
			b.ReportMetric(float64(cputime.Used()-cpu)/n, "cpu-ns/search")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/n, "allocs/search")
			b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/n, "B/search")
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// TestSearchManualAgrees holds the bounded OR ranking in SQL to the unbounded one on every
// book-index query: the same chunks in the same order with the same scores, up to the rounding of
// sums that FTS5 adds in another order (chunks whose scores tie within it may swap); and the
// ranking from kept shares to the very same scores. Filters are checked on every fifth query.
func TestSearchManualAgrees(t *testing.T) {
	db := manualStore(t)
	ctx := context.Background()
	var mid int64
	if err := db.read.QueryRowContext(ctx, `SELECT fetched_at FROM documents ORDER BY fetched_at
		LIMIT 1 OFFSET (SELECT count(*) / 2 FROM documents)`).Scan(&mid); err != nil {
		t.Fatal(err)
	}
	var prefix string
	if err := db.read.QueryRowContext(ctx, `SELECT url FROM documents ORDER BY id LIMIT 1`).Scan(&prefix); err != nil {
		t.Fatal(err)
	}
	prefix = prefix[:strings.LastIndexByte(prefix, '/')+1] + "sql-"
	queries := bookIndexQueries(t)
	for _, tc := range []struct {
		name  string
		k     int
		f     panther.Filter
		every int
	}{
		{"k=10", 10, panther.Filter{}, 1},
		{"k=40", manualPool, panther.Filter{}, 1},
		{"k=160", 160, panther.Filter{}, 1},
		{"url prefix", manualPool, panther.Filter{URLPrefix: prefix}, 5},
		{"fetched after", manualPool, panther.Filter{FetchedAfter: time.UnixMicro(mid)}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			differ, empty := 0, 0
			for i := 0; i < len(queries); i += tc.every {
				q := panther.Query{Text: queries[i], K: tc.k, Filter: tc.f}
				want, err := db.searchLexicalBefore(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if len(want) == 0 {
					empty++
				}
				got := db.searchSQL(t, q)
				msg := sameRanking(got, want, 1e-9)
				if msg == "" {
					if got, err = db.SearchLexical(ctx, q); err != nil {
						t.Fatal(err)
					}
					msg = sameRanking(got, want, 1e-9)
				}
				if msg == "" && q.Filter == (panther.Filter{}) {
					msg = sameRanking(db.searchCached(t, q), want, 0)
				}
				if msg != "" {
					differ++
					if differ <= 10 {
						t.Errorf("%q: %s", q.Text, msg)
					}
				}
			}
			if differ > 0 {
				t.Errorf("%d queries ranked differently", differ)
			}
			// A filter that excluded everything would prove nothing.
			if n := (len(queries) + tc.every - 1) / tc.every; empty > n/2 {
				t.Errorf("%d of %d queries found nothing", empty, n)
			}
		})
	}
}
