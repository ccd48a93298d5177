// Command lsa measures corpus-trained latent semantic analysis (TF-IDF, rank-k randomised SVD)
// as the vector side of panther's search, alone and fused with BM25 the way kb/hybrid.go fuses,
// on a panther database and a qrels file. It reads a copy of the database, never the original.
//
//	go run ./bench/lsa -db DB -qrels FILE -base URL [-k 64,128,256] [-w 0.1,0.2,0.3,0.5]
//
// See bench/lsa/README.md for the results on the PostgreSQL manual.
package main

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite"

	"panther"
	"panther/kb"
	psqlite "panther/sqlite"
)

type chunk struct {
	id     int64
	url    string
	anchor string
	text   string // title, heading path and body, for LSA
}

func main() {
	dbPath := flag.String("db", "", "panther SQLite database (copied before reading)")
	qrelsPath := flag.String("qrels", "", "qrels JSON lines")
	base := flag.String("base", "", "base URL for relative qrels entries")
	ks := flag.String("k", "128", "ranks to fit, comma-separated")
	ws := flag.String("w", "0.1,0.2,0.3,0.5", "hybrid vector weights, comma-separated")
	pool := flag.Int("pool", 40, "candidates per side for hybrid fusion")
	headingRepeat := flag.Int("hw", 1, "times the heading path is counted in a chunk's LSA text")
	flag.Parse()
	if *dbPath == "" || *qrelsPath == "" {
		flag.Usage()
		os.Exit(2)
	}
	log.SetFlags(0)

	copyPath, cleanup, err := copyDB(*dbPath)
	if err != nil {
		log.Fatal(err)
	}
	defer cleanup()
	db, err := sql.Open("sqlite", "file:"+copyPath+"?mode=ro")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	qrels := readQrels(*qrelsPath, *base)
	t0 := time.Now()
	chunks, err := loadChunks(db, *headingRepeat)
	if err != nil {
		log.Fatal(err)
	}
	tLoad := time.Since(t0)
	t0 = time.Now()
	m := buildTFIDF(chunks)
	tTFIDF := time.Since(t0)
	log.Printf("%d chunks, %d terms, %d non-zeros; load %v, tf-idf %v", m.a.rows, m.a.cols, len(m.a.val),
		tLoad.Round(time.Millisecond), tTFIDF.Round(time.Millisecond))

	t0 = time.Now()
	lex := map[string][]scored{}
	for _, q := range qrels {
		if _, ok := lex[q.Query]; ok {
			continue
		}
		hits, err := bm25(db, q.Query, *pool)
		if err != nil {
			log.Fatal(err)
		}
		lex[q.Query] = hits
	}
	log.Printf("BM25 top-%d for %d queries: %v", *pool, len(lex), time.Since(t0).Round(time.Millisecond))

	ctx := context.Background()
	report := func(name string, s kb.Searcher) {
		rep, err := kb.Evaluate(ctx, s, qrels, 10)
		if err != nil {
			log.Fatal(err)
		}
		sec := kb.Metrics{}
		if rep.Section != nil {
			sec = *rep.Section
		}
		fmt.Printf("| %s | %.3f | %.3f | %.3f | %.3f |\n", name, rep.Page.Recall, rep.Page.MRR, sec.Recall, sec.MRR)
	}
	fmt.Printf("\n%s: %d queries, %d chunks, %d terms\n\n", filepath.Base(*qrelsPath), len(qrels), m.a.rows, m.a.cols)
	fmt.Println("| mode | page R@10 | page MRR@10 | section R@10 | section MRR@10 |")
	fmt.Println("|---|---:|---:|---:|---:|")
	report("BM25 (this tool, no rerank)", &searcher{chunks: chunks, lex: lex, w: 0})

	for _, kstr := range strings.Split(*ks, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(kstr))
		if err != nil || k <= 0 {
			log.Fatalf("bad -k %q", kstr)
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		t0 = time.Now()
		model := fit(m, k)
		fitTime := time.Since(t0)
		runtime.ReadMemStats(&after)
		runtime.GC()
		var kept runtime.MemStats
		runtime.ReadMemStats(&kept)
		log.Printf("k=%d: fit %v, allocated %.0f MB during fit, heap after fit %.0f MB, peak RSS %s; σ1=%.3f σk=%.3f",
			k, fitTime.Round(time.Millisecond), float64(after.TotalAlloc-before.TotalAlloc)/1e6,
			float64(kept.HeapAlloc)/1e6, peakRSS(), model.sigma[0], model.sigma[len(model.sigma)-1])
		vec := map[string][]scored{}
		t0 = time.Now()
		for _, q := range qrels {
			if _, ok := vec[q.Query]; !ok {
				vec[q.Query] = model.rank(q.Query)
			}
		}
		log.Printf("k=%d: %d query rankings in %v", k, len(vec), time.Since(t0).Round(time.Millisecond))
		report(fmt.Sprintf("LSA k=%d vector", k), &searcher{chunks: chunks, vec: vec, w: 1})
		for _, wstr := range strings.Split(*ws, ",") {
			w, err := strconv.ParseFloat(strings.TrimSpace(wstr), 64)
			if err != nil {
				log.Fatalf("bad -w %q", wstr)
			}
			report(fmt.Sprintf("hybrid LSA k=%d w=%g", k, w), &searcher{chunks: chunks, lex: lex, vec: vec, w: w, pool: *pool})
		}
	}
}

// copyDB copies path (and its -wal file, if any) into a temporary directory.
func copyDB(path string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "lsa")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	dst := filepath.Join(dir, "copy.db")
	for _, suffix := range []string{"", "-wal"} {
		in, err := os.Open(path + suffix)
		if err != nil {
			if suffix != "" && os.IsNotExist(err) {
				continue
			}
			cleanup()
			return "", nil, err
		}
		out, err := os.Create(dst + suffix)
		if err == nil {
			_, err = io.Copy(out, in)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
		}
		in.Close()
		if err != nil {
			cleanup()
			return "", nil, err
		}
	}
	return dst, cleanup, nil
}

func readQrels(path, base string) []kb.Qrel {
	f, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	var bu *url.URL
	if base != "" {
		if bu, err = url.Parse(base); err != nil {
			log.Fatal(err)
		}
	}
	qrels, err := kb.ReadQrels(f, bu)
	if err != nil {
		log.Fatal(err)
	}
	return qrels
}

func loadChunks(db *sql.DB, headingRepeat int) ([]chunk, error) {
	rows, err := db.Query(`SELECT c.id, d.url, c.anchor, d.title, c.heading, c.text
		FROM chunks c JOIN documents d ON d.id = c.doc_id
		WHERE d.status = 'current' AND c.navigation = 0 ORDER BY c.id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []chunk
	for rows.Next() {
		var c chunk
		var title, heading string
		if err := rows.Scan(&c.id, &c.url, &c.anchor, &title, &heading, &c.text); err != nil {
			return nil, err
		}
		var hp []string
		if err := json.Unmarshal([]byte(heading), &hp); err != nil {
			return nil, fmt.Errorf("chunk %d heading: %w", c.id, err)
		}
		h := strings.Join(hp, " ")
		c.text = title + "\n" + strings.Repeat(h+"\n", headingRepeat) + c.text
		out = append(out, c)
	}
	return out, rows.Err()
}

// tfidf is the chunk-term matrix with its vocabulary.
type tfidf struct {
	a     *csr
	vocab map[string]int32
	idf   []float64
}

// buildTFIDF weighs (1+ln tf)·ln(N/df) over terms in at least two chunks, rows L2-normalised.
func buildTFIDF(chunks []chunk) tfidf {
	docs := make([]map[string]int, len(chunks))
	df := map[string]int{}
	for i, c := range chunks {
		tf := map[string]int{}
		for _, t := range tokens(c.text) {
			tf[t]++
		}
		docs[i] = tf
		for t := range tf {
			df[t]++
		}
	}
	var terms []string
	for t, n := range df {
		if n >= 2 {
			terms = append(terms, t)
		}
	}
	slices.Sort(terms)
	m := tfidf{vocab: make(map[string]int32, len(terms)), idf: make([]float64, len(terms))}
	n := float64(len(chunks))
	for i, t := range terms {
		m.vocab[t] = int32(i)
		m.idf[i] = math.Log(n / float64(df[t]))
	}
	a := &csr{rows: len(chunks), cols: len(terms), ptr: make([]int, 1, len(chunks)+1)}
	for _, tf := range docs {
		start := len(a.idx)
		for t, c := range tf {
			if j, ok := m.vocab[t]; ok {
				a.idx = append(a.idx, j)
				a.val = append(a.val, (1+math.Log(float64(c)))*m.idf[j])
			}
		}
		row := a.val[start:]
		normalize(row)
		a.ptr = append(a.ptr, len(a.idx))
	}
	m.a = a
	return m
}

func normalize(x []float64) {
	s := math.Sqrt(dot(x, x))
	if s > 0 {
		for i := range x {
			x[i] /= s
		}
	}
}

// lsaModel holds the fitted projection and the chunks' unit vectors.
type lsaModel struct {
	m      tfidf
	k      int
	sigma  []float64
	v      dense // terms × k
	chunks dense // chunks × k, rows of U_k Σ_k normalised
}

func fit(m tfidf, k int) *lsaModel {
	r := randomizedSVD(m.a, k, 10, 2, 1)
	cv := newDense(m.a.rows, r.k)
	for i := range m.a.rows {
		row := cv.row(i)
		for j := range r.k {
			row[j] = r.u.data[i*r.k+j] * r.sigma[j]
		}
		normalize(row)
	}
	return &lsaModel{m: m, k: r.k, sigma: r.sigma, v: r.v, chunks: cv}
}

type scored struct {
	idx   int // chunk index for vector hits; -1 when only id is known
	id    int64
	score float64
}

// rank returns every chunk by cosine with the query's projection, best first; nil when the query
// has no term of the vocabulary.
func (l *lsaModel) rank(text string) []scored {
	tf := map[int32]int{}
	for _, t := range tokens(text) {
		if j, ok := l.m.vocab[t]; ok {
			tf[j]++
		}
	}
	if len(tf) == 0 {
		return nil
	}
	q := make([]float64, l.k)
	for j, c := range tf {
		axpy((1+math.Log(float64(c)))*l.m.idf[j], l.v.row(int(j)), q)
	}
	normalize(q)
	out := make([]scored, l.chunks.rows)
	for i := range out {
		out[i] = scored{idx: i, score: dot(q, l.chunks.row(i))}
	}
	slices.SortStableFunc(out, func(a, b scored) int { return cmp.Compare(b.score, a.score) })
	// Deep enough for ten distinct pages and the fusion pool; the rest would only cost memory.
	return slices.Clone(out[:min(len(out), keepRanked)])
}

// keepRanked is how many chunks of a vector ranking are kept.
const keepRanked = 2000

// bm25 runs panther's lexical query (its words quoted, joined by OR, stop words dropped) with its
// column weights, without the heading rerank.
func bm25(db *sql.DB, text string, limit int) ([]scored, error) {
	match := psqlite.BuildQuery(text)
	if match == "" {
		return nil, nil
	}
	rows, err := db.Query(`SELECT rowid, rank FROM chunks_fts
		WHERE chunks_fts MATCH ? AND rank MATCH 'bm25(5, 3, 1, 3)' ORDER BY rank LIMIT ?`, match, limit)
	if err != nil {
		return nil, fmt.Errorf("bm25 %q: %w", text, err)
	}
	defer rows.Close()
	var out []scored
	for rows.Next() {
		var s scored
		if err := rows.Scan(&s.id, &s.score); err != nil {
			return nil, err
		}
		s.idx = -1
		s.score = -s.score
		out = append(out, s)
	}
	return out, rows.Err()
}

// searcher answers kb.Evaluate from precomputed rankings: w = 0 lexical only, w = 1 vector only,
// otherwise fused as kb/hybrid.go fuses; then one hit per page.
type searcher struct {
	chunks []chunk
	byID   map[int64]int
	lex    map[string][]scored
	vec    map[string][]scored
	w      float64
	pool   int
}

func (s *searcher) Search(_ context.Context, q panther.Query) ([]panther.Hit, error) {
	if s.byID == nil {
		s.byID = make(map[int64]int, len(s.chunks))
		for i, c := range s.chunks {
			s.byID[c.id] = i
		}
	}
	var ranked []int // chunk indexes, best first
	switch s.w {
	case 0:
		for _, h := range s.lex[q.Text] {
			ranked = append(ranked, s.byID[h.id])
		}
	case 1:
		for _, h := range s.vec[q.Text] {
			ranked = append(ranked, h.idx)
		}
	default:
		ranked = s.fuse(s.lex[q.Text], s.vec[q.Text])
	}
	var out []panther.Hit
	seen := map[string]bool{}
	for _, i := range ranked {
		c := s.chunks[i]
		if seen[c.url] {
			continue
		}
		seen[c.url] = true
		h := panther.Hit{ChunkID: c.id}
		h.URL, h.Anchor = c.url, c.anchor
		out = append(out, h)
		if len(out) == q.K {
			break
		}
	}
	return out, nil
}

// fuse is kb/hybrid.go's fuse: min-max each side over its pool, (1-w)·lex + w·vec, a side that did
// not find a chunk counting 0, stable sort with lexical hits first.
func (s *searcher) fuse(lex, vec []scored) []int {
	type entry struct {
		idx      int
		lex, vec float64
	}
	var order []*entry
	by := map[int]*entry{}
	add := func(hits []scored, side int) {
		if len(hits) == 0 {
			return
		}
		lo, hi := hits[0].score, hits[0].score
		for _, h := range hits {
			lo, hi = min(lo, h.score), max(hi, h.score)
		}
		for _, h := range hits {
			norm := 1.0
			if hi > lo {
				norm = (h.score - lo) / (hi - lo)
			}
			i := h.idx
			if i < 0 {
				i = s.byID[h.id]
			}
			e := by[i]
			if e == nil {
				e = &entry{idx: i}
				by[i] = e
				order = append(order, e)
			}
			if side == 1 {
				e.lex = norm
			} else {
				e.vec = norm
			}
		}
	}
	add(lex, 1)
	add(vec[:min(len(vec), s.pool)], 2)
	score := func(e *entry) float64 { return (1-s.w)*e.lex + s.w*e.vec }
	slices.SortStableFunc(order, func(a, b *entry) int { return cmp.Compare(score(b), score(a)) })
	out := make([]int, len(order))
	for i, e := range order {
		out[i] = e.idx
	}
	return out
}

// peakRSS is the process's high-water resident set (Linux), or "?".
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(rest)
		}
	}
	return "?"
}
