package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"panther"
)

// Vectors live in SQLite, so they are as durable as the chunks they belong to, and are searched
// exactly in memory: sqlite-vec's own exact KNN measured 83 ms at 100,000 × 384 against 7 ms for a
// scan of one float32 slab in Go (bench/vecsearch, BENCHMARKS.md). The slab is loaded on the first
// search of a model and reloaded when the vectors epoch (bumped by triggers on every change, by any
// process) moves.

// maxVectorDims bounds a vector's length: the largest embedding models in use have a few thousand.
const maxVectorDims = 16384

// vectorSlab is one model's vectors, unit length, in chunk-id order, ready to scan.
type vectorSlab struct {
	epoch int64
	dims  int
	ids   []int64
	data  []float32 // len(ids)*dims
}

type vectorCache struct {
	mu     sync.Mutex
	models map[string]*vectorSlab
}

// PutVectors stores vectors made by model for existing chunks, replacing earlier ones.
func (db *DB) PutVectors(ctx context.Context, model string, vectors []panther.ChunkVector) error {
	if strings.TrimSpace(model) == "" {
		return panther.Invalidf("put vectors: model is empty")
	}
	if len(vectors) == 0 {
		return nil
	}
	dims := len(vectors[0].Vector)
	if dims == 0 || dims > maxVectorDims {
		return panther.Invalidf("put vectors of %s: %d dimensions, want 1 to %d", model, dims, maxVectorDims)
	}
	blobs := make([][]byte, len(vectors))
	for i, v := range vectors {
		if len(v.Vector) != dims {
			return panther.Invalidf("put vectors of %s: vector %d has %d dimensions, the first has %d", model, i, len(v.Vector), dims)
		}
		b, err := encodeVector(v.Vector)
		if err != nil {
			return panther.Invalidf("put vectors of %s: chunk %d: %v", model, v.ChunkID, err)
		}
		blobs[i] = b
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		id, err := embedderID(ctx, tx, model, dims, true)
		if err != nil {
			return err
		}
		st, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO vectors (embedder_id, chunk_id, vec)
			SELECT ?, id, ? FROM chunks WHERE id = ?`)
		if err != nil {
			return err
		}
		defer st.Close()
		for i, v := range vectors {
			if _, err := st.ExecContext(ctx, id, blobs[i], v.ChunkID); err != nil {
				return fmt.Errorf("chunk %d: %w", v.ChunkID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put vectors of %s: %w", model, err)
	}
	return nil
}

// embedderID finds model's row (the newest, should its dimensions have changed) and, when create
// is set, adds it for dims if there is none with those dimensions.
func embedderID(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, model string, dims int, create bool) (int64, error) {
	var id int64
	var err error
	if create {
		err = q.QueryRowContext(ctx, `SELECT id FROM embedders WHERE model = ? AND dims = ?`, model, dims).Scan(&id)
	} else {
		err = q.QueryRowContext(ctx, `SELECT id FROM embedders WHERE model = ? ORDER BY id DESC LIMIT 1`, model).Scan(&id)
	}
	if err == nil || !errors.Is(err, sql.ErrNoRows) || !create {
		return id, err
	}
	res, err := q.ExecContext(ctx, `INSERT INTO embedders (model, dims, created_at) VALUES (?, ?, ?)`, model, dims, time.Now().UnixMicro())
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// ChunksToEmbed returns searchable chunks of current documents without a vector from model.
func (db *DB) ChunksToEmbed(ctx context.Context, model string, limit int) ([]panther.Chunk, error) {
	if limit <= 0 {
		return nil, panther.Invalidf("chunks to embed: limit must be positive, got %d", limit)
	}
	id, err := embedderID(ctx, db.read, model, 0, false)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("chunks to embed with %s: %w", model, err)
	}
	rows, err := db.read.QueryContext(ctx, `SELECT c.id, c.doc_id, c.ordinal, c.heading, c.anchor, c.text, c.tokens
		FROM chunks c JOIN documents d ON d.id = c.doc_id
		WHERE d.status = 'current' AND c.navigation = 0
			AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.embedder_id = ? AND v.chunk_id = c.id)
		ORDER BY c.id LIMIT ?`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("chunks to embed with %s: %w", model, err)
	}
	defer rows.Close()
	var out []panther.Chunk
	for rows.Next() {
		var c panther.Chunk
		var heading string
		if err := rows.Scan(&c.ID, &c.DocID, &c.Ordinal, &heading, &c.Anchor, &c.Text, &c.Tokens); err != nil {
			return nil, fmt.Errorf("chunks to embed with %s: %w", model, err)
		}
		if c.Heading, err = decodeHeading(heading); err != nil {
			return nil, fmt.Errorf("chunks to embed with %s: chunk %d: %w", model, c.ID, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// VectorCoverage counts searchable chunks of current documents, and those with a vector from model.
func (db *DB) VectorCoverage(ctx context.Context, model string) (withVector, searchable int, err error) {
	id, err := embedderID(ctx, db.read, model, 0, false)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, 0, fmt.Errorf("vector coverage of %s: %w", model, err)
	}
	err = db.read.QueryRowContext(ctx, `SELECT count(v.chunk_id), count(*)
		FROM chunks c JOIN documents d ON d.id = c.doc_id
		LEFT JOIN vectors v ON v.embedder_id = ? AND v.chunk_id = c.id
		WHERE d.status = 'current' AND c.navigation = 0`, id).Scan(&withVector, &searchable)
	if err != nil {
		return 0, 0, fmt.Errorf("vector coverage of %s: %w", model, err)
	}
	return withVector, searchable, nil
}

// SearchVectors ranks the chunks with a vector from model by cosine similarity to q.
func (db *DB) SearchVectors(ctx context.Context, model string, q []float32, k int, f panther.Filter) ([]panther.Hit, error) {
	if k <= 0 || k > panther.MaxK {
		return nil, panther.Invalidf("vector search: k must be between 1 and %d, got %d", panther.MaxK, k)
	}
	slab, err := db.vectorSlab(ctx, model)
	if err != nil {
		return nil, fmt.Errorf("vector search with %s: %w", model, err)
	}
	if slab == nil || len(slab.ids) == 0 {
		return []panther.Hit{}, nil
	}
	if len(q) != slab.dims {
		return nil, panther.Invalidf("vector search with %s: query has %d dimensions, the stored vectors %d", model, len(q), slab.dims)
	}
	unit, ok := normalized(q)
	if !ok {
		// A query with no meaning the model can place (all zeros) is near nothing.
		return []panther.Hit{}, nil
	}
	// Chunks of pages gone since the vectors were loaded, or outside the filter, drop out below:
	// widen the scan until k remain or every vector has been considered.
	want := k
	for {
		top := slab.top(unit, min(want, len(slab.ids)))
		hits, err := db.hitsFor(ctx, top, f)
		if err != nil {
			return nil, fmt.Errorf("vector search with %s: %w", model, err)
		}
		if len(hits) >= k || want >= len(slab.ids) {
			if len(hits) > k {
				hits = hits[:k]
			}
			return hits, nil
		}
		want *= 4
	}
}

// scored is a chunk and its similarity.
type scored struct {
	id    int64
	score float32
}

// top returns the n best chunks for the unit query q, best first, scanning on every core.
func (s *vectorSlab) top(q []float32, n int) []scored {
	workers := min(runtime.GOMAXPROCS(0), max(1, len(s.ids)/4096))
	parts := make([][]scored, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(s.ids)/workers, (w+1)*len(s.ids)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			best := make([]scored, 0, n+1)
			for i := lo; i < hi; i++ {
				sc := dot(s.data[i*s.dims:(i+1)*s.dims], q)
				if len(best) == n && sc <= best[n-1].score {
					continue
				}
				at, _ := slices.BinarySearchFunc(best, sc, func(e scored, t float32) int {
					if e.score > t {
						return -1
					}
					return 1
				})
				best = slices.Insert(best, at, scored{s.ids[i], sc})
				if len(best) > n {
					best = best[:n]
				}
			}
			parts[w] = best
		}()
	}
	wg.Wait()
	all := slices.Concat(parts...)
	slices.SortFunc(all, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return int(a.id - b.id)
	})
	if len(all) > n {
		all = all[:n]
	}
	return all
}

// dot is unrolled four ways: independent sums let the CPU overlap the multiplications.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

// hitsFor turns ranked chunk ids into hits with their citations, keeping the order and dropping
// chunks that are gone, unsearchable or of pages no longer current.
func (db *DB) hitsFor(ctx context.Context, top []scored, f panther.Filter) ([]panther.Hit, error) {
	if len(top) == 0 {
		return []panther.Hit{}, nil
	}
	args := make([]any, len(top))
	for i, t := range top {
		args[i] = t.id
	}
	rows, err := db.read.QueryContext(ctx, `SELECT c.id, c.doc_id, c.heading, c.anchor, c.text, d.url, d.title, d.fetched_at, d.content_hash
		FROM chunks c JOIN documents d ON d.id = c.doc_id
		WHERE c.id IN (`+strings.TrimSuffix(strings.Repeat("?,", len(top)), ",")+`) AND d.status = 'current' AND c.navigation = 0`+filterSQL,
		append(args, filterArgs(f)...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byID := make(map[int64]panther.Hit, len(top))
	for rows.Next() {
		var h panther.Hit
		var heading string
		var fetched sql.NullInt64
		if err := rows.Scan(&h.ChunkID, &h.DocID, &heading, &h.Anchor, &h.Text, &h.URL, &h.Title, &fetched, &h.ContentHash); err != nil {
			return nil, err
		}
		hp, err := decodeHeading(heading)
		if err != nil {
			return nil, fmt.Errorf("chunk %d: %w", h.ChunkID, err)
		}
		h.Heading = panther.HeadingPath(hp)
		h.FetchedAt = timeVal(fetched)
		byID[h.ChunkID] = h
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	hits := make([]panther.Hit, 0, len(byID))
	for _, t := range top {
		if h, ok := byID[t.id]; ok {
			h.Score = float64(t.score)
			hits = append(hits, h)
		}
	}
	return hits, nil
}

// vectorSlab returns model's vectors, loading them when the epoch has moved since the last load.
func (db *DB) vectorSlab(ctx context.Context, model string) (*vectorSlab, error) {
	db.vectors.mu.Lock()
	defer db.vectors.mu.Unlock()
	var epoch int64
	if err := db.read.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'vectors_epoch'`).Scan(&epoch); err != nil {
		return nil, err
	}
	if s := db.vectors.models[model]; s != nil && s.epoch == epoch {
		return s, nil
	}
	id, err := embedderID(ctx, db.read, model, 0, false)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var dims int
	if err := db.read.QueryRowContext(ctx, `SELECT dims FROM embedders WHERE id = ?`, id).Scan(&dims); err != nil {
		return nil, err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT chunk_id, vec FROM vectors WHERE embedder_id = ? ORDER BY chunk_id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	s := &vectorSlab{epoch: epoch, dims: dims}
	for rows.Next() {
		var cid int64
		var blob []byte
		if err := rows.Scan(&cid, &blob); err != nil {
			return nil, err
		}
		if len(blob) != 4*dims {
			return nil, fmt.Errorf("chunk %d: vector of %d bytes, want %d", cid, len(blob), 4*dims)
		}
		start := len(s.data)
		for i := 0; i < dims; i++ {
			s.data = append(s.data, math.Float32frombits(binary.LittleEndian.Uint32(blob[4*i:])))
		}
		if u, ok := normalized(s.data[start:]); ok {
			copy(s.data[start:], u)
		}
		s.ids = append(s.ids, cid)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if db.vectors.models == nil {
		db.vectors.models = map[string]*vectorSlab{}
	}
	db.vectors.models[model] = s
	return s, nil
}

// normalized returns v scaled to unit length, false for a zero or non-finite vector.
func normalized(v []float32) ([]float32, bool) {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if sum == 0 || math.IsNaN(sum) || math.IsInf(sum, 0) {
		return v, false
	}
	inv := float32(1 / math.Sqrt(sum))
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = x * inv
	}
	return out, true
}

func encodeVector(v []float32) ([]byte, error) {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, fmt.Errorf("component %d is %v", i, x)
		}
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b, nil
}
