package sqlite_test

import (
	"context"
	"fmt"
	"html"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"panther"
	"panther/internal/cputime"
	"panther/sqlite"
)

// The PostgreSQL manual is the corpus panther's targets are stated for; without it the benchmarks
// fall back to a synthetic corpus of the same size.
const pgDocs = "/usr/share/doc/postgresql-doc-15/html"

var benchDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	sqlite.RemoveManualStore()
	os.Exit(code)
}

type benchDoc struct {
	doc    panther.Document
	chunks []panther.Chunk
}

var (
	corpusOnce sync.Once
	corpus     []benchDoc
	corpusName string
)

func loadCorpus(tb testing.TB) []benchDoc {
	corpusOnce.Do(func() {
		if docs, err := pgCorpus(); err == nil && len(docs) > 0 {
			corpus, corpusName = docs, "postgresql-manual"
			return
		}
		corpus, corpusName = syntheticCorpus(15000), "synthetic"
	})
	return corpus
}

var (
	reTitle   = regexp.MustCompile(`(?is)<title>(.*?)</title>`)
	reHeading = regexp.MustCompile(`(?is)<h([1-4])[^>]*>(.*?)</h[1-4]>`)
	reID      = regexp.MustCompile(`(?is)\bid="([^"]+)"`)
	reTag     = regexp.MustCompile(`(?s)<[^>]*>`)
	reSpace   = regexp.MustCompile(`\s+`)
)

func stripTags(s string) string {
	return strings.TrimSpace(reSpace.ReplaceAllString(html.UnescapeString(reTag.ReplaceAllString(s, " ")), " "))
}

// pgCorpus cuts each manual page at its h1-h4 headings and each section into chunks of at most
// 90 words: close to what kb's chunker produces, about 15k chunks for the whole manual.
func pgCorpus() ([]benchDoc, error) {
	files, err := filepath.Glob(filepath.Join(pgDocs, "*.html"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no manual at %s", pgDocs)
	}
	var docs []benchDoc
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		page := string(b)
		d := panther.Document{URL: "https://www.postgresql.org/docs/15/" + filepath.Base(f), FetchedAt: time.Now(),
			Validators: panther.Validators{ContentHash: filepath.Base(f)}}
		if m := reTitle.FindStringSubmatch(page); m != nil {
			d.Title = stripTags(m[1])
		}
		var chunks []panther.Chunk
		locs := reHeading.FindAllStringSubmatchIndex(page, -1)
		var path []string
		for i, loc := range locs {
			level := int(page[loc[2]] - '0')
			heading := stripTags(page[loc[4]:loc[5]])
			path = append(path[:min(len(path), level-1)], heading)
			end := len(page)
			if i+1 < len(locs) {
				end = locs[i+1][0]
			}
			anchor := ""
			if m := reID.FindStringSubmatch(page[max(0, loc[0]-200):loc[1]]); m != nil {
				anchor = m[1]
			}
			words := strings.Fields(stripTags(page[loc[1]:end]))
			for start := 0; start < len(words); start += 90 {
				text := strings.Join(words[start:min(start+90, len(words))], " ")
				chunks = append(chunks, panther.Chunk{Ordinal: len(chunks), Heading: slices.Clone(path), Anchor: anchor,
					Text: text, Tokens: len(text) / 4})
			}
		}
		var md strings.Builder
		for _, c := range chunks {
			md.WriteString(c.Text)
			md.WriteString("\n\n")
		}
		d.Markdown = md.String()
		docs = append(docs, benchDoc{d, chunks})
	}
	return docs, nil
}

func syntheticCorpus(nChunks int) []benchDoc {
	r := rand.New(rand.NewPCG(1, 2))
	vocab := make([]string, 20000)
	for i := range vocab {
		var sb strings.Builder
		for j := 0; j < 3+r.IntN(7); j++ {
			sb.WriteByte(byte('a' + r.IntN(26)))
		}
		vocab[i] = sb.String()
	}
	zipf := rand.NewZipf(r, 1.1, 1, uint64(len(vocab)-1))
	text := func(n int) string {
		w := make([]string, n)
		for i := range w {
			w[i] = vocab[zipf.Uint64()]
		}
		return strings.Join(w, " ")
	}
	var docs []benchDoc
	for len(docs)*12 < nChunks {
		d := panther.Document{URL: fmt.Sprintf("https://synthetic.example/%05d", len(docs)), Title: text(4), FetchedAt: time.Now()}
		var cs []panther.Chunk
		for i := 0; i < 12; i++ {
			cs = append(cs, panther.Chunk{Ordinal: i, Heading: []string{d.Title, text(3)}, Text: text(120)})
		}
		docs = append(docs, benchDoc{d, cs})
	}
	return docs
}

var (
	searchDBOnce sync.Once
	searchDB     *sqlite.DB
	searchDBErr  error
)

// corpusDB is loaded once per test binary: filling it takes seconds and every search benchmark
// wants the same corpus.
func corpusDB(tb testing.TB) *sqlite.DB {
	docs := loadCorpus(tb)
	searchDBOnce.Do(func() {
		// PANTHER_SQLITE_BENCH_DB names a corpus database to reuse across runs (filled if empty).
		path := os.Getenv("PANTHER_SQLITE_BENCH_DB")
		if path == "" {
			benchDir, searchDBErr = os.MkdirTemp("", "panther-sqlite-bench-")
			if searchDBErr != nil {
				return
			}
			path = filepath.Join(benchDir, "corpus.db")
		}
		searchDB, searchDBErr = sqlite.Open(context.Background(), path)
		if searchDBErr != nil {
			return
		}
		if st, err := searchDB.Stats(context.Background()); err != nil || st.Documents > 0 {
			searchDBErr = err
			return
		}
		n := 0
		for _, d := range docs {
			if _, searchDBErr = searchDB.PutDocument(context.Background(), d.doc, d.chunks); searchDBErr != nil {
				return
			}
			n += len(d.chunks)
		}
		// A finished crawl optimizes the index (merging its segments); search is measured there.
		if searchDBErr = searchDB.Optimize(context.Background()); searchDBErr != nil {
			return
		}
		tb.Logf("corpus %s: %d documents, %d chunks", corpusName, len(docs), n)
	})
	if searchDBErr != nil {
		tb.Fatal(searchDBErr)
	}
	return searchDB
}

var benchQueries = []string{
	"create partial index", "vacuum full", "work_mem", "pg_dump custom format", "foreign key on delete cascade",
	"json operators", "window functions", "transaction isolation levels", "logical replication slot",
	"autovacuum tuning", "explain analyze", "COPY from csv file", "point in time recovery", "GIN index",
	"sequence nextval", "ALTER TABLE ADD COLUMN", "string functions", "timestamp with time zone",
	"row level security policy", "pg_hba.conf authentication", "How do I make a backup of my database?",
	"shared_buffers", "the", "table", "9.6", "what is a tablespace", "listen notify", "regexp_replace",
	"generated columns", "upsert on conflict do update",
}

func BenchmarkSearchLexical(b *testing.B) {
	db := corpusDB(b)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	cpu := cputime.Used()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if _, err := db.SearchLexical(ctx, panther.Query{Text: benchQueries[i%len(benchQueries)], K: 10}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.ReportMetric(float64(cputime.Used()-cpu)/float64(b.N), "cpu-ns/op")
	reportPercentiles(b, lat)
}

// BenchmarkSearchLexicalParallel measures searches from several goroutines (the read pool).
func BenchmarkSearchLexicalParallel(b *testing.B) {
	db := corpusDB(b)
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := db.SearchLexical(ctx, panther.Query{Text: benchQueries[i%len(benchQueries)], K: 10}); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(p(0.50), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
}

// BenchmarkPutDocument stores 10-chunk documents of about 120 words a chunk: new URLs, and
// replacements of an existing URL (the re-crawl of a changed page).
func BenchmarkPutDocument(b *testing.B) {
	docs := loadCorpus(b)
	var tenChunk []benchDoc
	for _, d := range docs {
		if len(d.chunks) >= 10 {
			d.doc.Markdown = d.doc.Markdown[:min(len(d.doc.Markdown), 10*700)]
			tenChunk = append(tenChunk, benchDoc{d.doc, d.chunks[:10]})
		}
	}
	if len(tenChunk) == 0 {
		b.Skip("no document with 10 chunks in the corpus")
	}
	for _, mode := range []string{"new", "replace"} {
		b.Run(mode, func(b *testing.B) {
			db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "put.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			// A few hundred documents already stored, so the indexes are not trivially small.
			for i, d := range tenChunk[:min(300, len(tenChunk))] {
				d.doc.URL = fmt.Sprintf("%s?pre=%d", d.doc.URL, i)
				if _, err := db.PutDocument(ctx, d.doc, d.chunks); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			cpu := cputime.Used()
			for i := 0; b.Loop(); i++ {
				d := tenChunk[i%len(tenChunk)]
				if mode == "new" {
					d.doc.URL = fmt.Sprintf("%s?i=%d", d.doc.URL, i)
				} else {
					d.doc.URL = "https://bench.example/replaced"
				}
				if _, err := db.PutDocument(ctx, d.doc, d.chunks); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cputime.Used()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// TestSearchLatency checks the stated targets (p50 < 5 ms, p99 < 25 ms over the manual) when run
// on purpose: -run SearchLatency with PANTHER_SQLITE_LATENCY=1, since shared CI machines make
// timing assertions flaky.
func TestSearchLatency(t *testing.T) {
	if os.Getenv("PANTHER_SQLITE_LATENCY") == "" {
		t.Skip("set PANTHER_SQLITE_LATENCY=1 to check search latency targets")
	}
	db := corpusDB(t)
	ctx := context.Background()
	var lat []time.Duration
	slowest := map[string]time.Duration{}
	for round := 0; round < 10; round++ {
		for _, q := range benchQueries {
			start := time.Now()
			if _, err := db.SearchLexical(ctx, panther.Query{Text: q, K: 10}); err != nil {
				t.Fatal(err)
			}
			d := time.Since(start)
			lat = append(lat, d)
			slowest[q] = max(slowest[q], d)
		}
	}
	for q, d := range slowest {
		if d > 5*time.Millisecond {
			t.Logf("slowest %q: %v", q, d)
		}
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	t.Logf("%s corpus: p50 %v, p99 %v, max %v over %d searches", corpusName, p50, p99, lat[len(lat)-1], len(lat))
	if p50 > 5*time.Millisecond || p99 > 25*time.Millisecond {
		t.Errorf("p50 %v (target 5ms), p99 %v (target 25ms)", p50, p99)
	}
}
