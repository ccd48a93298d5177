package kb

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"panther"
	"panther/internal/cputime"
	"panther/sqlite"
)

// The benchmarks and agreement tests of this file search the PostgreSQL manual with its book-index
// queries, the corpus and query mix of panther's serve figures. They skip when PANTHER_TEST_PGDOCS
// does not name the manual's HTML folder. The pages are converted by the crude walk of
// corpus_test.go (kb's tests do not depend on package extract); PANTHER_BENCH_DB names a database
// to reuse instead, filled if empty (one made by `panther crawl` gives the crawler's exact chunks).

var (
	manualOnce sync.Once
	manualSvc  *Service
	manualDB   *sqlite.DB
	manualDir  string // made here, removed by TestMain
	manualErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if manualDB != nil {
		manualDB.Close()
	}
	if manualDir != "" {
		os.RemoveAll(manualDir)
	}
	os.Exit(code)
}

func manualService(tb testing.TB) (*Service, *sqlite.DB) {
	tb.Helper()
	dir := os.Getenv("PANTHER_TEST_PGDOCS")
	if dir == "" {
		tb.Skip("PANTHER_TEST_PGDOCS is unset (the PostgreSQL manual's HTML folder)")
	}
	manualOnce.Do(func() {
		path := os.Getenv("PANTHER_BENCH_DB")
		if path == "" {
			if manualDir, manualErr = os.MkdirTemp("", "panther-kb-manual-"); manualErr != nil {
				return
			}
			path = filepath.Join(manualDir, "manual.db")
		}
		ctx := context.Background()
		if manualDB, manualErr = sqlite.Open(ctx, path); manualErr != nil {
			return
		}
		if manualSvc, manualErr = New(manualDB, Options{}); manualErr != nil {
			return
		}
		st, err := manualDB.Stats(ctx)
		if err != nil || st.Documents > 0 {
			manualErr = err
			return
		}
		files, err := filepath.Glob(filepath.Join(dir, "*.html"))
		if err != nil || len(files) == 0 {
			manualErr = err
			if err == nil {
				manualErr = os.ErrNotExist
			}
			return
		}
		for _, f := range files {
			md := htmlMarkdown(tb, f)
			sum := sha256.Sum256([]byte(md))
			doc := panther.Document{URL: "http://manual.invalid/" + filepath.Base(f), Title: filepath.Base(f),
				Markdown: md, Validators: panther.Validators{ContentHash: hex.EncodeToString(sum[:])},
				FetchedAt: time.Now(), Status: panther.DocCurrent}
			if _, manualErr = manualSvc.Ingest(ctx, doc, markdownSections(md)); manualErr != nil {
				return
			}
		}
		manualErr = manualDB.Optimize(ctx)
	})
	if manualErr != nil {
		tb.Fatal(manualErr)
	}
	return manualSvc, manualDB
}

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

// manualPools are the store's candidate pools for every book-index query (k = 10, so 40
// candidates), before rerank, and the snippets' inputs: each returned hit's text and its query.
type manualPool struct {
	query string
	hits  []panther.Hit
}

var (
	poolsOnce sync.Once
	pools     []manualPool
	snipIn    [][2]string
)

func manualPools(tb testing.TB) ([]manualPool, [][2]string) {
	tb.Helper()
	svc, db := manualService(tb)
	poolsOnce.Do(func() {
		ctx := context.Background()
		for _, q := range bookIndexQueries(tb) {
			hits, err := db.SearchLexical(ctx, panther.Query{Text: q, K: 40})
			if err != nil {
				tb.Fatal(err)
			}
			pools = append(pools, manualPool{q, hits})
			out, err := svc.Search(ctx, panther.Query{Text: q, K: 10})
			if err != nil {
				tb.Fatal(err)
			}
			for _, h := range out {
				snipIn = append(snipIn, [2]string{h.Text, q})
			}
		}
	})
	return pools, snipIn
}

// perOp reports CPU time and allocations per unit (a search, a snippet) for a loop that handles
// units of them per op.
func perOp(b *testing.B, units int, unit string, loop func()) {
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu := cputime.Used()
	for b.Loop() {
		loop()
	}
	runtime.ReadMemStats(&ms1)
	n := float64(b.N * units)
	b.ReportMetric(float64(cputime.Used()-cpu)/n, "cpu-ns/"+unit)
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/n, "allocs/"+unit)
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/n, "B/"+unit)
}

// BenchmarkSearchManual is Service.Search (k = 10, lexical) over the whole book-index mix per op.
func BenchmarkSearchManual(b *testing.B) {
	svc, _ := manualService(b)
	queries := bookIndexQueries(b)
	ctx := context.Background()
	lat := make([]time.Duration, 0, len(queries))
	perOp(b, len(queries), "search", func() {
		lat = lat[:0]
		for _, q := range queries {
			start := time.Now()
			if _, err := svc.Search(ctx, panther.Query{Text: q, K: 10}); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
	})
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkSnippetManual makes the snippets of every hit the book-index searches return.
func BenchmarkSnippetManual(b *testing.B) {
	_, in := manualPools(b)
	for _, side := range []struct {
		name string
		fn   func(text, query string) string
	}{{"before", snippetBefore}, {"after", snippet}} {
		b.Run(side.name, func(b *testing.B) {
			perOp(b, len(in), "snippet", func() {
				for _, p := range in {
					side.fn(p[0], p[1])
				}
			})
		})
	}
}

// BenchmarkRerankManual reranks every book-index query's pool of 40 candidates.
func BenchmarkRerankManual(b *testing.B) {
	ps, _ := manualPools(b)
	buf := make([]panther.Hit, 0, 1000)
	for _, side := range []struct {
		name string
		fn   func([]panther.Hit, string)
	}{{"before", rerankBefore}, {"after", rerank}} {
		b.Run(side.name, func(b *testing.B) {
			perOp(b, len(ps), "pool", func() {
				for _, p := range ps {
					buf = append(buf[:0], p.hits...)
					side.fn(buf, p.query)
				}
			})
		})
	}
}

// TestSnippetRerankManualAgree holds the rewritten snippet and rerank to the code they replaced,
// on every hit and pool of the book-index searches.
func TestSnippetRerankManualAgree(t *testing.T) {
	ps, in := manualPools(t)
	bad := 0
	for _, p := range in {
		if got, want := snippet(p[0], p[1]), snippetBefore(p[0], p[1]); got != want {
			if bad++; bad <= 5 {
				t.Errorf("snippet for %q:\n got %q\nwant %q", p[1], got, want)
			}
		}
	}
	for _, p := range ps {
		got, want := slices.Clone(p.hits), slices.Clone(p.hits)
		rerank(got, p.query)
		rerankBefore(want, p.query)
		for i := range got {
			if got[i].ChunkID != want[i].ChunkID || got[i].Score != want[i].Score {
				if bad++; bad <= 5 {
					t.Errorf("rerank %q: hit %d is chunk %d (%v), want %d (%v)", p.query, i, got[i].ChunkID, got[i].Score, want[i].ChunkID, want[i].Score)
				}
				break
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d disagreements over %d snippets and %d pools", bad, len(in), len(ps))
	}
}
