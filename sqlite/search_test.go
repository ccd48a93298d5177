package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"panther"
)

// snap runs fn in a search's read transaction.
func (db *DB) snap(t testing.TB, fn func(snapshot) error) {
	t.Helper()
	s, err := db.snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.tx.Rollback()
	if err := fn(s); err != nil {
		t.Fatal(err)
	}
}

// searchSQL is SearchLexical without the kept word shares: the bounded OR ranking in SQL.
func (db *DB) searchSQL(t testing.TB, q panther.Query) (hits []panther.Hit) {
	t.Helper()
	ctx := context.Background()
	rc := db.rank.Load()
	db.snap(t, func(s snapshot) error {
		top, err := ranker{snap: s, w: rc.weights, f: q.Filter, k: q.K}.search(ctx, Terms(q.Text), rc.exhaustiveOR)
		if err != nil {
			return err
		}
		hits, err = s.hits(ctx, top)
		return err
	})
	return hits
}

// searchCached is SearchLexical ranked from kept shares, whatever the cache held before.
func (db *DB) searchCached(t testing.TB, q panther.Query) (hits []panther.Hit) {
	t.Helper()
	ctx := context.Background()
	rc := db.rank.Load()
	for range 2 { // the first search of a version only makes the cache take it
		db.snap(t, func(s snapshot) error {
			top, err := s.cachedTop(ctx, Terms(q.Text), rc.weights, q.K, rc.exhaustiveOR)
			if errors.Is(err, errUnsettled) {
				return nil
			}
			if err != nil {
				return err
			}
			hits, err = s.hits(ctx, top)
			return err
		})
		if hits != nil {
			return hits
		}
	}
	t.Fatalf("%q: not ranked from kept shares", q.Text)
	return nil
}

// zipfCorpus fills db with pages whose words follow Zipf's law, as a manual's do: a few words in
// most chunks, most words in a few. Half the pages belong to a source and their URLs have one of
// two prefixes; fetch times spread over an hour.
func zipfCorpus(t *testing.T, db *DB, seed uint64, pages int) (src panther.Source, mid time.Time) {
	t.Helper()
	ctx := context.Background()
	src, err := db.AddSource(ctx, "https://a.example/")
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	zipf := rand.NewZipf(r, 1.2, 2, 399)
	words := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "w%03d", zipf.Uint64())
		}
		return b.String()
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for p := range pages {
		doc := panther.Document{URL: fmt.Sprintf("https://b.example/x/%d", p), Title: words(3),
			FetchedAt:  start.Add(time.Duration(p) * time.Hour / time.Duration(pages)),
			Validators: panther.Validators{ContentHash: fmt.Sprintf("h%d-%d", seed, p)}}
		if p%2 == 0 {
			doc.SourceID = src.ID
			doc.URL = fmt.Sprintf("https://a.example/%s/%d", []string{"ref", "guide"}[p/2%2], p)
		}
		var chunks []panther.Chunk
		for c := range 1 + r.IntN(8) {
			chunks = append(chunks, panther.Chunk{Ordinal: c, Heading: []string{words(2), words(1 + r.IntN(3))},
				Text: words(20 + r.IntN(120)), Keywords: words(r.IntN(3))})
		}
		if _, err := db.PutDocument(ctx, doc, chunks); err != nil {
			t.Fatal(err)
		}
	}
	return src, start.Add(30 * time.Minute)
}

// zipfQueries are one to five words, common and rare ones mixed, some unknown to the corpus, some
// repeated (so that kept shares are used).
func zipfQueries(seed uint64, n int) []string {
	r := rand.New(rand.NewPCG(seed, 11))
	var qs []string
	for range n {
		var ws []string
		for range 1 + r.IntN(5) {
			switch x := r.IntN(10); {
			case x < 4:
				ws = append(ws, fmt.Sprintf("w%03d", r.IntN(8))) // in most chunks
			case x < 9:
				ws = append(ws, fmt.Sprintf("w%03d", r.IntN(400)))
			default:
				ws = append(ws, "absent")
			}
		}
		qs = append(qs, strings.Join(ws, " "))
	}
	return append(qs, qs[:n/4]...)
}

// TestSearchAgrees holds the bounded OR ranking (MaxScore in SQL) and the ranking from kept word
// shares to the unbounded ranking they replace, on a corpus with Zipf-distributed words: every k,
// every filter, AND-first and exhaustive OR, and after each kind of write, from this handle and
// from another one on the same file.
func TestSearchAgrees(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "zipf.db")
	for _, exhaustive := range []bool{false, true} {
		t.Run(fmt.Sprintf("exhaustiveOR=%v", exhaustive), func(t *testing.T) {
			db, err := OpenWith(ctx, path, Options{ExhaustiveOR: exhaustive})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			other, err := Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			var src panther.Source
			var mid time.Time
			if !exhaustive {
				src, mid = zipfCorpus(t, db, 1, 150)
			} else {
				srcs, err := db.Sources(ctx)
				if err != nil || len(srcs) != 1 {
					t.Fatal(srcs, err)
				}
				src, mid = srcs[0], time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC)
			}
			n := 60
			if testing.Short() {
				n = 12
			}
			queries := zipfQueries(2, n)
			filters := []panther.Filter{{}, {SourceID: src.ID}, {URLPrefix: "https://a.example/ref/"}, {FetchedAfter: mid}}
			check := func(stage string) {
				t.Helper()
				bad := 0
				for _, k := range []int{1, 5, 40} {
					for i, f := range filters {
						if k != 5 && i > 0 {
							continue
						}
						for _, text := range queries {
							q := panther.Query{Text: text, K: k, Filter: f}
							want, err := db.searchLexicalBefore(ctx, q)
							if err != nil {
								t.Fatal(err)
							}
							got := db.searchSQL(t, q)
							msg := sameRanking(got, want, 1e-9)
							if msg == "" {
								if got, err = db.SearchLexical(ctx, q); err != nil {
									t.Fatal(err)
								}
								msg = sameRanking(got, want, 1e-9)
							}
							if msg == "" && f == (panther.Filter{}) {
								got = db.searchCached(t, q)
								// Kept shares add up as FTS5 does: the very same scores.
								msg = sameRanking(got, want, 0)
							}
							if msg != "" {
								if bad++; bad <= 5 {
									t.Errorf("%s: %q k=%d %+v: %s", stage, text, k, f, msg)
								}
							}
						}
					}
				}
			}
			// The bound is computed from FTS5's own row count, read from its averages record.
			var want int64
			if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM chunks_fts_content`).Scan(&want); err != nil {
				t.Fatal(err)
			}
			db.snap(t, func(s snapshot) error {
				if got, err := s.ftsRows(ctx); err != nil || got != want || want == 0 {
					t.Fatalf("ftsRows = %d, %v; the index holds %d chunks", got, err, want)
				}
				return nil
			})
			check("fresh")
			// Each write changes scores everywhere (row count, lengths): kept shares must go.
			if _, err := db.PutDocument(ctx, panther.Document{URL: "https://b.example/x/1", Title: "w000 w001",
				FetchedAt: mid, Validators: panther.Validators{ContentHash: "replaced"}},
				[]panther.Chunk{{Text: "w002 w003 w004 w000 w000"}}); err != nil {
				t.Fatal(err)
			}
			check("after a page was replaced")
			if err := db.MarkGone(ctx, "https://b.example/x/3", mid); err != nil {
				t.Fatal(err)
			}
			check("after a page went")
			if _, err := other.PutDocument(ctx, panther.Document{URL: fmt.Sprintf("https://b.example/new/%v", exhaustive),
				Title: "w005", FetchedAt: mid, Validators: panther.Validators{ContentHash: fmt.Sprintf("new%v", exhaustive)}},
				[]panther.Chunk{{Text: "w001 w005 w006"}, {Text: "w007 w001"}}); err != nil {
				t.Fatal(err)
			}
			check("after another handle wrote")
			if err := other.Optimize(ctx); err != nil {
				t.Fatal(err)
			}
			check("after optimize")
			if err := db.SetWeights(Weights{Title: 1.7, Heading: 0.3, Body: 1, Keywords: 2.2}); err != nil {
				t.Fatal(err)
			}
			check("after new weights")
		})
	}
}

// sameRanking compares two searches: the same chunks in the same order with scores equal within
// tol (relative). Chunks whose scores tie within tol may swap.
func sameRanking(got, want []panther.Hit, tol float64) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d hits, want %d", len(got), len(want))
	}
	close := func(a, b float64) bool { return math.Abs(a-b) <= tol*math.Max(math.Abs(a), math.Abs(b)) }
	for i := range got {
		if !close(got[i].Score, want[i].Score) {
			return fmt.Sprintf("hit %d: chunk %d score %v, want chunk %d %v", i, got[i].ChunkID, got[i].Score, want[i].ChunkID, want[i].Score)
		}
		if got[i].ChunkID == want[i].ChunkID {
			g, w := got[i], want[i]
			g.Score, w.Score = 0, 0
			if g != w {
				return fmt.Sprintf("hit %d: chunk %d read back as %+v, want %+v", i, g.ChunkID, g, w)
			}
			continue
		}
		// Only a tie may reorder: the chunk must be among want's chunks of the same score.
		ok := false
		for j := range want {
			if want[j].ChunkID == got[i].ChunkID && close(want[j].Score, got[i].Score) {
				ok = true
			}
		}
		if !ok {
			return fmt.Sprintf("hit %d: chunk %d (%v), want chunk %d (%v)", i, got[i].ChunkID, got[i].Score, want[i].ChunkID, want[i].Score)
		}
	}
	return ""
}

func TestHeadingPath(t *testing.T) {
	for _, h := range [][]string{nil, {""}, {"Chapter 11. Indexes", "11.8. Partial Indexes"}, {`say "hi"`}, {`a\b`},
		{"tab\there"}, {"<&>"}, {"line\u2028sep"}, {"bad \xff utf-8"}, {"é", "日本語"}, {"", "", ""}} {
		enc, err := encodeHeading(h)
		if err != nil {
			t.Fatal(err)
		}
		checkHeadingPath(t, enc)
	}
	for _, s := range []string{"", "[", "]", "[]", `[""]`, `["a",]`, `["a" ,"b"]`, `[ "a"]`, `["a"x"b"]`, `["a`, `"a"`, `["\u0041"]`} {
		checkHeadingPath(t, s)
	}
}

func FuzzHeadingPath(f *testing.F) {
	f.Add(`["Chapter 11. Indexes","11.8. Partial Indexes"]`, "x")
	f.Add(`["a\"b"]`, "\x00")
	f.Fuzz(func(t *testing.T, raw, part string) {
		checkHeadingPath(t, raw)
		enc, err := encodeHeading([]string{part, raw})
		if err != nil {
			t.Fatal(err)
		}
		checkHeadingPath(t, enc)
	})
}

// checkHeadingPath holds headingPath to the JSON decoder wherever it answers.
func checkHeadingPath(t *testing.T, s string) {
	t.Helper()
	got, ok := headingPath(s)
	if !ok {
		return
	}
	h, err := decodeHeading(s)
	if err != nil {
		t.Fatalf("headingPath(%q) = %q, but it is not a JSON array of strings: %v", s, got, err)
	}
	if want := panther.HeadingPath(h); got != want {
		t.Fatalf("headingPath(%q) = %q, want %q", s, got, want)
	}
}

func TestSqliteVarint(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want int64
		ok   bool
	}{
		{[]byte{0x00}, 0, true},
		{[]byte{0x7f, 0xff}, 127, true},
		{[]byte{0x81, 0x00}, 128, true},
		{[]byte{0xc9, 0x1f, 0x05}, 9375, true},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, -1, true},
		{[]byte{0x81}, 0, false},
		{nil, 0, false},
	} {
		if got, ok := sqliteVarint(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("sqliteVarint(%x) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
