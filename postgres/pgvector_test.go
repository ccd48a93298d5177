package postgres

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"panther"
	"panther/storetest"
)

// The pgvector path runs against PGlite (PostgreSQL compiled to WebAssembly, with pgvector) over the
// wire protocol, through @electric-sql/pglite-socket: Debian's PostgreSQL 15 has no pgvector package.
// scripts/setup-npm.sh installs the pinned packages; PANTHER_TEST_PGLITE names the folder holding
// their node_modules. PGlite serves one connection at a time, so every store here has a pool of one
// and the tests run one after another.

const (
	envPGlite        = "PANTHER_TEST_PGLITE"
	envRequirePGlite = "PANTHER_TEST_REQUIRE_PGLITE"
)

var pglite struct {
	once sync.Once
	cmd  *exec.Cmd
	dsn  string
	err  error
}

// pgliteDSN starts the PGlite server once per test binary (TestMain stops it) and returns its DSN.
func pgliteDSN(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(envPGlite)
	if dir == "" {
		if os.Getenv(envRequirePGlite) == "1" {
			t.Fatalf("%s=1 but %s is not set: the pgvector tests must not be skipped", envRequirePGlite, envPGlite)
		}
		t.Skipf("%s is not set; skipping the pgvector tests (scripts/setup-npm.sh installs PGlite into .cache/npm-tools)", envPGlite)
	}
	pglite.once.Do(func() { pglite.dsn, pglite.cmd, pglite.err = startPGlite(dir) })
	if pglite.err != nil {
		t.Fatalf("start PGlite: %v", pglite.err)
	}
	return pglite.dsn
}

func startPGlite(dir string) (string, *exec.Cmd, error) {
	server := filepath.Join(dir, "node_modules/@electric-sql/pglite-socket/dist/scripts/server.js")
	if _, err := os.Stat(server); err != nil {
		return "", nil, fmt.Errorf("%w (run scripts/setup-npm.sh)", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("node", server, "--host=127.0.0.1", fmt.Sprintf("--port=%d", port),
		"--extensions=@electric-sql/pglite-pgvector:vector")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		said := false
		for sc.Scan() {
			if !said && strings.Contains(sc.Text(), "listening") {
				said = true
				ready <- true
			}
		}
		if !said {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			cmd.Wait()
			return "", nil, fmt.Errorf("PGlite exited before listening: %s", stderr.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return "", nil, fmt.Errorf("PGlite did not listen within 60 s: %s", stderr.String())
	}
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&default_query_exec_mode=exec&pool_max_conns=1", port)
	return dsn, cmd, nil
}

func stopPGlite() {
	if pglite.cmd != nil {
		pglite.cmd.Process.Kill()
		pglite.cmd.Wait()
	}
}

// pgliteExec runs one statement on a connection of its own. PGlite turns a second connection away
// while one is open, and notices a closed one a moment later, so connecting is retried briefly.
func pgliteExec(dsn, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			_, err = conn.Exec(ctx, sql)
			conn.Close(ctx)
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", sql, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// openPGlite opens a store on an emptied PGlite database. PGlite ignores the parameters of the
// startup message (search_path among them), so a test cannot have a schema of its own as on the
// real server: each one starts from a fresh public schema instead, where Migrate installs pgvector.
func openPGlite(t testing.TB, log *slog.Logger) *DB {
	t.Helper()
	dsn := pgliteDSN(t)
	if err := pgliteExec(dsn, `DROP SCHEMA public CASCADE; CREATE SCHEMA public`); err != nil {
		t.Fatal(err)
	}
	if log == nil {
		log = quiet()
	}
	var db *DB
	var err error
	// The connection of the test before may still be closing.
	for start := time.Now(); ; {
		db, err = OpenWith(t.Context(), dsn, Options{Logger: log})
		if err == nil || time.Since(start) > 30*time.Second {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestPGliteConformance runs the store's conformance suite on PostgreSQL 18 with pgvector, one
// connection: nothing may need a second connection while it holds one.
func TestPGliteConformance(t *testing.T) {
	pgliteDSN(t)
	storetest.Run(t, func(t *testing.T) panther.Store {
		db := openPGlite(t, nil)
		if db.hnsw == nil {
			t.Fatalf("vector search is %s, want pgvector", db.VectorSearch())
		}
		return db
	})
}

// waitIndexed searches model until its HNSW index is valid and in use.
func waitIndexed(t *testing.T, db *DB, model string, dims int) int64 {
	t.Helper()
	q := make([]float32, dims)
	q[0] = 1
	for start := time.Now(); time.Since(start) < 2*time.Minute; time.Sleep(100 * time.Millisecond) {
		if _, err := db.SearchVectors(t.Context(), model, q, 1, panther.Filter{}); err != nil {
			t.Fatal(err)
		}
		m, err := db.hnsw.model(t.Context(), model)
		if err != nil {
			t.Fatal(err)
		}
		if m.indexed {
			return m.embedder
		}
	}
	t.Fatalf("the HNSW index of %s was not ready within 2 minutes", model)
	return 0
}

// TestPGliteHNSW: a model's vectors get an HNSW index built in the background; once it is ready,
// searches go through it, find what an exact search finds, and never return deleted chunks.
func TestPGliteHNSW(t *testing.T) {
	var logBuf syncBuffer
	db := openPGlite(t, slog.New(slog.NewTextHandler(&logBuf, nil)))
	ctx := t.Context()
	if !strings.Contains(db.VectorSearch(), "HNSW") || !strings.Contains(logBuf.String(), "installed the pgvector extension") {
		t.Fatalf("vector search is %q; log:\n%s", db.VectorSearch(), logBuf.String())
	}
	const model, dims, pages, perPage = "test:hnsw-32", 32, 300, 10
	r := rand.New(rand.NewPCG(3, 5))
	want := map[int64][]float32{}
	docOf := map[int64]int64{}
	var docIDs []int64
	for p := range pages {
		chunks := make([]panther.Chunk, perPage)
		for i := range chunks {
			chunks[i] = panther.Chunk{Heading: []string{"Part"}, Text: fmt.Sprintf("page %d passage %d", p, i)}
		}
		id, err := db.PutDocument(ctx, panther.Document{URL: fmt.Sprintf("https://hnsw.example/%d", p), Title: "P"}, chunks)
		if err != nil {
			t.Fatal(err)
		}
		docIDs = append(docIDs, id)
	}
	todo, err := db.ChunksToEmbed(ctx, model, pages*perPage)
	if err != nil || len(todo) != pages*perPage {
		t.Fatalf("ChunksToEmbed: %d, %v", len(todo), err)
	}
	var batch []panther.ChunkVector
	for _, c := range todo {
		v := gaussian(r, dims)
		want[c.ID] = v
		docOf[c.ID] = c.DocID
		batch = append(batch, panther.ChunkVector{ChunkID: c.ID, Vector: v})
	}
	if err := db.PutVectors(ctx, model, batch); err != nil {
		t.Fatal(err)
	}
	embedder := waitIndexed(t, db, model, dims)
	if !strings.Contains(logBuf.String(), "HNSW index ready") {
		t.Errorf("log does not say the index is ready:\n%s", logBuf.String())
	}

	// The statement the ranker sends must be answered by the index.
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('enable_seqscan', 'off', true)`)
	b.Queue(`EXPLAIN `+db.hnsw.searchSQL(embedder, dims, 10), make([]float32, dims))
	br := db.pool.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		t.Fatal(err)
	}
	rows, _ := br.Query()
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	br.Close()
	if err != nil {
		t.Fatal(err)
	}
	if p := strings.Join(plan, "\n"); !strings.Contains(p, "Index Scan using "+indexName(embedder)) {
		t.Fatalf("the search does not use %s:\n%s", indexName(embedder), p)
	}

	// Approximate, so judged by recall against brute force; the scores of what it returns are exact.
	recall := func() float64 {
		found, total := 0, 0
		for range 20 {
			q := gaussian(r, dims)
			hits, err := db.SearchVectors(ctx, model, q, 10, panther.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			best := nearest(want, q, 10)
			for _, h := range hits {
				if math.Abs(h.Score-cosineOf(want[h.ChunkID], q)) > 1e-4 {
					t.Fatalf("chunk %d score %.5f, exact %.5f", h.ChunkID, h.Score, cosineOf(want[h.ChunkID], q))
				}
				if best[h.ChunkID] {
					found++
				}
			}
			total += 10
		}
		return float64(found) / float64(total)
	}
	got := recall()
	t.Logf("recall@10 through the index: %.3f", got)
	if got < 0.9 {
		t.Errorf("recall@10 through the index = %.3f, want at least 0.9", got)
	}

	// Deleted pages leave the index's answers at once.
	deleted := map[int64]bool{}
	for p := range pages / 2 {
		if err := db.DeleteDocument(ctx, fmt.Sprintf("https://hnsw.example/%d", p)); err != nil {
			t.Fatal(err)
		}
		deleted[docIDs[p]] = true
	}
	alive := map[int64]bool{}
	for id, doc := range docOf {
		alive[id] = !deleted[doc]
	}
	for range 10 {
		q := gaussian(r, dims)
		hits, err := db.SearchVectors(ctx, model, q, 10, panther.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) != 10 {
			t.Fatalf("%d hits after deleting half the pages, want 10", len(hits))
		}
		for _, h := range hits {
			if !alive[h.ChunkID] {
				t.Fatalf("hit %d of a deleted page", h.ChunkID)
			}
		}
	}
}

// TestPGliteLongVectors: vectors longer than HNSW indexes take are searched exactly, and no index
// build is attempted for them.
func TestPGliteLongVectors(t *testing.T) {
	db := openPGlite(t, nil)
	ctx := t.Context()
	const model, dims = "test:long", hnswMaxDims + 48
	if _, err := db.PutDocument(ctx, panther.Document{URL: "https://long.example/", Title: "L"},
		[]panther.Chunk{{Text: "one"}, {Text: "two"}}); err != nil {
		t.Fatal(err)
	}
	todo, err := db.ChunksToEmbed(ctx, model, 10)
	if err != nil || len(todo) != 2 {
		t.Fatalf("ChunksToEmbed: %d, %v", len(todo), err)
	}
	vecs := make([]panther.ChunkVector, 2)
	for i, c := range todo {
		v := make([]float32, dims)
		v[i] = 1
		vecs[i] = panther.ChunkVector{ChunkID: c.ID, Vector: v}
	}
	if err := db.PutVectors(ctx, model, vecs); err != nil {
		t.Fatal(err)
	}
	q := make([]float32, dims)
	q[1] = 1
	hits, err := db.SearchVectors(ctx, model, q, 2, panther.Filter{})
	if err != nil || len(hits) != 2 || hits[0].ChunkID != todo[1].ID || math.Abs(hits[0].Score-1) > 1e-6 {
		t.Fatalf("hits %+v, %v; want chunk %d first with score 1", hits, err, todo[1].ID)
	}
	db.hnsw.wg.Wait()
	m, err := db.hnsw.model(ctx, model)
	if err != nil || m.indexed {
		t.Fatalf("model %+v, %v: want no index", m, err)
	}
	var indexes int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'vectors_hnsw_%' AND schemaname = current_schema()`).Scan(&indexes); err != nil || indexes != 0 {
		t.Fatalf("%d HNSW indexes, %v; want none", indexes, err)
	}
}

func gaussian(r *rand.Rand, dims int) []float32 {
	v := make([]float32, dims)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// nearest is the brute-force answer: the n vectors most similar to q.
func nearest(vecs map[int64][]float32, q []float32, n int) map[int64]bool {
	ids := slices.Collect(maps.Keys(vecs))
	slices.SortFunc(ids, func(a, b int64) int { return cmp.Compare(cosineOf(vecs[b], q), cosineOf(vecs[a], q)) })
	best := map[int64]bool{}
	for _, id := range ids[:min(n, len(ids))] {
		best[id] = true
	}
	return best
}

func cosineOf(a, b []float32) float64 {
	var d, na, nb float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return d / math.Sqrt(na*nb)
}

// syncBuffer is a log sink safe for the index builder's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPGliteInvalidIndexRebuilt: an index left invalid (a build killed half way) is not used, and is
// dropped and built again.
func TestPGliteInvalidIndexRebuilt(t *testing.T) {
	db := openPGlite(t, nil)
	ctx := t.Context()
	const model, dims = "test:rebuild", 8
	if _, err := db.PutDocument(ctx, panther.Document{URL: "https://rebuild.example/", Title: "R"},
		[]panther.Chunk{{Text: "one"}, {Text: "two"}, {Text: "three"}}); err != nil {
		t.Fatal(err)
	}
	todo, err := db.ChunksToEmbed(ctx, model, 10)
	if err != nil || len(todo) != 3 {
		t.Fatalf("ChunksToEmbed: %d, %v", len(todo), err)
	}
	var vecs []panther.ChunkVector
	for i, c := range todo {
		v := make([]float32, dims)
		v[i] = 1
		vecs = append(vecs, panther.ChunkVector{ChunkID: c.ID, Vector: v})
	}
	if err := db.PutVectors(ctx, model, vecs); err != nil {
		t.Fatal(err)
	}
	embedder := waitIndexed(t, db, model, dims)
	// What a killed CREATE INDEX CONCURRENTLY leaves: the index in the catalog, marked invalid.
	if _, err := db.pool.Exec(ctx, `UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass($1)`, indexName(embedder)); err != nil {
		t.Fatal(err)
	}
	db.hnsw.mu.Lock()
	db.hnsw.models[model].indexed = false
	db.hnsw.models[model].checked = time.Time{}
	db.hnsw.mu.Unlock()
	q := make([]float32, dims)
	q[2] = 1
	hits, err := db.SearchVectors(ctx, model, q, 1, panther.Filter{})
	if err != nil || len(hits) != 1 || hits[0].ChunkID != todo[2].ID {
		t.Fatalf("search beside an invalid index: %+v, %v", hits, err)
	}
	db.hnsw.wg.Wait()
	if valid, err := db.hnsw.indexState(ctx, embedder); err != nil || !valid {
		t.Fatalf("index valid = %v, %v after the rebuild", valid, err)
	}
}
