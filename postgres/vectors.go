package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"panther"
)

// Vectors live in PostgreSQL as real[] beside their chunks (they go when the chunk goes). Search is
// behind vectorRanker: a pgvector HNSW index where the server has the extension (hnsw.go), and an
// exact scan of the model's vectors held in process, as the embedded store does, everywhere else.

// maxVectorDims bounds a vector's length: the largest embedding models in use have a few thousand.
const maxVectorDims = 16384

// putVectorsBatch bounds the vectors one INSERT carries (a few MB of parameters at 1,536 dimensions).
const putVectorsBatch = 500

// vectorRanker finds the chunks whose vectors from model are nearest to a query.
type vectorRanker interface {
	// rank returns up to n chunk ids by cosine similarity to the unit vector q, best first, and how
	// many vectors the model has, so the caller knows when asking for more can find nothing new.
	// Some ids may belong to chunks deleted since: the caller checks them. A query of the wrong
	// length is ErrInvalid; a model without vectors returns none.
	rank(ctx context.Context, model string, q []float32, n int) (top []scored, total int, err error)
}

// scored is a chunk and its similarity.
type scored struct {
	id    int64
	score float32
}

// PutVectors stores vectors made by model for existing chunks, replacing earlier ones, and moves the
// model's epoch so that every process reloads its cached vectors.
func (db *DB) PutVectors(ctx context.Context, model string, vectors []panther.ChunkVector) error {
	if strings.TrimSpace(model) == "" {
		return panther.Invalidf("put vectors: model is empty")
	}
	if err := checkKey("put vectors: model", model); err != nil {
		return err
	}
	if len(vectors) == 0 {
		return nil
	}
	dims := len(vectors[0].Vector)
	if dims == 0 || dims > maxVectorDims {
		return panther.Invalidf("put vectors of %s: %d dimensions, want 1 to %d", model, dims, maxVectorDims)
	}
	// The last vector given for a chunk wins, as it would with one INSERT each; one INSERT may not
	// touch a row twice.
	last := make(map[int64]int, len(vectors))
	for i, v := range vectors {
		if len(v.Vector) != dims {
			return panther.Invalidf("put vectors of %s: vector %d has %d dimensions, the first has %d", model, i, len(v.Vector), dims)
		}
		for j, x := range v.Vector {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return panther.Invalidf("put vectors of %s: chunk %d: component %d is %v", model, v.ChunkID, j, x)
			}
		}
		last[v.ChunkID] = i
	}
	ids := make([]int64, 0, len(last))
	flat := make([]float32, 0, len(last)*dims)
	for i, v := range vectors {
		if last[v.ChunkID] == i {
			ids = append(ids, v.ChunkID)
			flat = append(flat, v.Vector...)
		}
	}
	put := func(tx pgx.Tx) error {
		// The upsert both creates the model's row and moves its epoch, and its row lock orders
		// concurrent writers of the model.
		var eid int64
		if err := tx.QueryRow(ctx, `INSERT INTO embedders (model, dims) VALUES ($1, $2)
			ON CONFLICT (model, dims) DO UPDATE SET epoch = embedders.epoch + 1 RETURNING id`, model, dims).Scan(&eid); err != nil {
			return err
		}
		for lo := 0; lo < len(ids); lo += putVectorsBatch {
			hi := min(lo+putVectorsBatch, len(ids))
			// The join skips chunks that no longer exist; each vector is a slice of the flat array.
			_, err := tx.Exec(ctx, `INSERT INTO vectors (embedder_id, chunk_id, vec)
				SELECT $1, c.id, ($3::real[])[(x.n - 1) * $4 + 1 : x.n * $4]
				FROM unnest($2::bigint[]) WITH ORDINALITY AS x(chunk_id, n) JOIN chunks c ON c.id = x.chunk_id
				ON CONFLICT (embedder_id, chunk_id) DO UPDATE SET vec = excluded.vec`,
				eid, ids[lo:hi], flat[lo*dims:hi*dims], dims)
			if err != nil {
				return err
			}
		}
		return nil
	}
	err := db.tx(ctx, put)
	// A chunk deleted by a page replacement that committed after this statement's snapshot fails the
	// foreign key check; the next attempt no longer sees it, and skips it.
	for attempt := 1; isForeignKey(err, "vectors_chunk_fk") && attempt < maxAttempts; attempt++ {
		err = db.tx(ctx, put)
	}
	if err != nil {
		return fmt.Errorf("put vectors of %s: %w", model, err)
	}
	return nil
}

// newestEmbedder finds the model's newest row (its dimensions may have changed); 0 when it has none.
func newestEmbedder(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, model string) (id int64, dims int, epoch int64, err error) {
	err = q.QueryRow(ctx, `SELECT id, dims, epoch FROM embedders WHERE model = $1 ORDER BY id DESC LIMIT 1`, model).
		Scan(&id, &dims, &epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, 0, nil
	}
	return id, dims, epoch, err
}

// ChunksToEmbed returns searchable chunks of current documents without a vector from model, oldest first.
func (db *DB) ChunksToEmbed(ctx context.Context, model string, limit int) ([]panther.Chunk, error) {
	if limit <= 0 {
		return nil, panther.Invalidf("chunks to embed: limit must be positive, got %d", limit)
	}
	if err := checkKey("chunks to embed: model", model); err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, `SELECT c.id, c.doc_id, c.ordinal, c.heading, c.anchor, c.text, c.tokens
		FROM chunks c JOIN documents d ON d.id = c.doc_id
		WHERE d.status = 'current' AND NOT c.navigation
			AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.chunk_id = c.id AND v.embedder_id =
				(SELECT id FROM embedders WHERE model = $1 ORDER BY id DESC LIMIT 1))
		ORDER BY c.id LIMIT $2`, model, limit)
	if err != nil {
		return nil, fmt.Errorf("chunks to embed with %s: %w", model, unavailable(err))
	}
	defer rows.Close()
	var out []panther.Chunk
	for rows.Next() {
		var c panther.Chunk
		if err := rows.Scan(&c.ID, &c.DocID, &c.Ordinal, &c.Heading, &c.Anchor, &c.Text, &c.Tokens); err != nil {
			return nil, fmt.Errorf("chunks to embed with %s: %w", model, err)
		}
		if len(c.Heading) == 0 {
			c.Heading = nil
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chunks to embed with %s: %w", model, unavailable(err))
	}
	return out, nil
}

// VectorCoverage counts searchable chunks of current documents, and those with a vector from model.
func (db *DB) VectorCoverage(ctx context.Context, model string) (withVector, searchable int, err error) {
	if err := checkKey("vector coverage: model", model); err != nil {
		return 0, 0, err
	}
	err = db.pool.QueryRow(ctx, `SELECT count(v.chunk_id), count(*)
		FROM chunks c JOIN documents d ON d.id = c.doc_id
		LEFT JOIN vectors v ON v.chunk_id = c.id AND v.embedder_id =
			(SELECT id FROM embedders WHERE model = $1 ORDER BY id DESC LIMIT 1)
		WHERE d.status = 'current' AND NOT c.navigation`, model).Scan(&withVector, &searchable)
	if err != nil {
		return 0, 0, fmt.Errorf("vector coverage of %s: %w", model, unavailable(err))
	}
	return withVector, searchable, nil
}

// SearchVectors ranks the chunks with a vector from model by cosine similarity to q.
func (db *DB) SearchVectors(ctx context.Context, model string, q []float32, k int, f panther.Filter) ([]panther.Hit, error) {
	if k <= 0 || k > panther.MaxK {
		return nil, panther.Invalidf("vector search: k must be between 1 and %d, got %d", panther.MaxK, k)
	}
	if err := checkKey("vector search: model", model); err != nil {
		return nil, err
	}
	if err := checkKey("vector search: url prefix", f.URLPrefix); err != nil {
		return nil, err
	}
	unit, ok := normalized(q)
	if !ok {
		// A query with no direction the model can place (all zeros) is near nothing; ranking none
		// still checks its length.
		if _, _, err := db.vectors.rank(ctx, model, q, 0); err != nil {
			return nil, fmt.Errorf("vector search with %s: %w", model, err)
		}
		return []panther.Hit{}, nil
	}
	// Chunks of pages gone or replaced since the vectors were loaded, or outside the filter, drop
	// out below: widen the ranking until k remain or every vector has been considered.
	for want := k; ; want *= 4 {
		top, total, err := db.vectors.rank(ctx, model, unit, want)
		if err != nil {
			return nil, fmt.Errorf("vector search with %s: %w", model, err)
		}
		if total == 0 {
			return []panther.Hit{}, nil
		}
		hits, err := db.hitsFor(ctx, top, f)
		if err != nil {
			return nil, fmt.Errorf("vector search with %s: %w", model, err)
		}
		if len(hits) >= k || want >= total {
			return hits[:min(k, len(hits))], nil
		}
	}
}

// hitsFor turns ranked chunk ids into hits with their citations, keeping the order and dropping
// chunks that are gone, unsearchable, of pages no longer current, or outside the filter.
func (db *DB) hitsFor(ctx context.Context, top []scored, f panther.Filter) ([]panther.Hit, error) {
	if len(top) == 0 {
		return []panther.Hit{}, nil
	}
	ids := make([]int64, len(top))
	for i, t := range top {
		ids[i] = t.id
	}
	filter, fargs := filterSQL(f, 1)
	rows, err := db.pool.Query(ctx, `SELECT c.id, c.doc_id, c.heading, c.anchor, c.text, d.url, d.title, d.fetched_at, d.content_hash
		FROM chunks c JOIN documents d ON d.id = c.doc_id
		WHERE c.id = ANY($1) AND d.status = 'current' AND NOT c.navigation`+filter,
		append([]any{ids}, fargs...)...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	byID := make(map[int64]panther.Hit, len(top))
	for rows.Next() {
		var h panther.Hit
		var heading []string
		var fetched *time.Time
		if err := rows.Scan(&h.ChunkID, &h.DocID, &heading, &h.Anchor, &h.Text, &h.URL, &h.Title, &fetched, &h.ContentHash); err != nil {
			return nil, err
		}
		h.Heading = panther.HeadingPath(heading)
		h.FetchedAt = timeVal(fetched)
		byID[h.ChunkID] = h
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
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

// exactRanker scans every vector of the model, held in process as one unit-length slab per model
// and reloaded when the model's epoch has moved. Vectors deleted with their chunks stay in the slab
// until the next reload; chunk ids are never reused, so they only cost the caller a filtered-out id.
type exactRanker struct {
	pool   *pgxpool.Pool
	mu     sync.Mutex
	models map[string]*vectorSlab
}

func newExactRanker(pool *pgxpool.Pool) *exactRanker {
	return &exactRanker{pool: pool, models: map[string]*vectorSlab{}}
}

// vectorSlab is one model's vectors, unit length, in chunk-id order, ready to scan.
type vectorSlab struct {
	embedder, epoch int64
	dims            int
	ids             []int64
	data            []float32 // len(ids)*dims
}

func (r *exactRanker) rank(ctx context.Context, model string, q []float32, n int) ([]scored, int, error) {
	slab, err := r.slab(ctx, model)
	if err != nil || slab == nil || len(slab.ids) == 0 {
		return nil, 0, err
	}
	if len(q) != slab.dims {
		return nil, 0, panther.Invalidf("query has %d dimensions, the stored vectors %d", len(q), slab.dims)
	}
	if n <= 0 {
		return nil, len(slab.ids), nil
	}
	return slab.top(q, min(n, len(slab.ids))), len(slab.ids), nil
}

// forget drops model's vectors from memory, once another ranker answers for it.
func (r *exactRanker) forget(model string) {
	r.mu.Lock()
	delete(r.models, model)
	r.mu.Unlock()
}

// slab returns model's vectors, loading them when the model's row or epoch has changed since the
// last load. The check is one indexed lookup per search.
func (r *exactRanker) slab(ctx context.Context, model string) (*vectorSlab, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, _, epoch, err := newestEmbedder(ctx, r.pool, model)
	if err != nil {
		return nil, unavailable(err)
	}
	if id == 0 {
		delete(r.models, model)
		return nil, nil
	}
	if s := r.models[model]; s != nil && s.embedder == id && s.epoch == epoch {
		return s, nil
	}
	var s *vectorSlab
	// One snapshot for the epoch and the vectors, so the slab is exactly the vectors of its epoch.
	err = pgx.BeginTxFunc(ctx, r.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		id, dims, epoch, err := newestEmbedder(ctx, tx, model)
		if err != nil || id == 0 {
			return err
		}
		s = &vectorSlab{embedder: id, epoch: epoch, dims: dims}
		rows, err := tx.Query(ctx, `SELECT chunk_id, vec FROM vectors WHERE embedder_id = $1 ORDER BY chunk_id`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		var vec []float32
		for rows.Next() {
			var cid int64
			if err := rows.Scan(&cid, &vec); err != nil {
				return err
			}
			if len(vec) != dims {
				return fmt.Errorf("chunk %d: vector of %d dimensions, want %d", cid, len(vec), dims)
			}
			if u, ok := normalized(vec); ok {
				vec = u
			}
			s.data = append(s.data, vec...)
			s.ids = append(s.ids, cid)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, unavailable(err)
	}
	if s == nil {
		delete(r.models, model)
		return nil, nil
	}
	r.models[model] = s
	return s, nil
}

// top returns the n best chunks for the unit query q, best first, scanning on every core.
func (s *vectorSlab) top(q []float32, n int) []scored {
	workers := min(runtime.GOMAXPROCS(0), max(1, len(s.ids)/4096))
	parts := make([][]scored, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(s.ids)/workers, (w+1)*len(s.ids)/workers
		wg.Go(func() {
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
		})
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
	return all[:min(n, len(all))]
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
