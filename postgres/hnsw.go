package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"panther"
)

// Where the server has pgvector, each model's vectors get an HNSW index of their own: a partial
// expression index over the real[] column cast to vector(dims), so the one vectors table keeps
// serving every model and export, and a model without an index (not built yet, or too long for
// HNSW) is still answered exactly in process. Indexes are built after the vectors are loaded (faster
// and better connected than growing one vector at a time), in the background and CONCURRENTLY so
// that crawls and embedding keep writing; from then on PostgreSQL maintains them on every insert.

// hnswMaxDims is pgvector's limit for an HNSW index on the vector type.
const hnswMaxDims = 2000

// hnswMaxEfSearch is pgvector's upper bound for hnsw.ef_search. An HNSW scan returns at most
// ef_search rows, so a ranking asked for more is done exactly instead.
const hnswMaxEfSearch = 1000

// hnswMinEfSearch is pgvector's default candidate list; a smaller one only loses recall.
const hnswMinEfSearch = 40

// hnswRecheck is how long a model found without a usable index goes before the catalog is asked again.
const hnswRecheck = 10 * time.Second

// pgvectorSchema finds the schema the vector extension is installed in; "" when it is not installed.
func pgvectorSchema(ctx context.Context, pool *pgxpool.Pool) (schema, version string, err error) {
	err = pool.QueryRow(ctx, `SELECT n.nspname, e.extversion FROM pg_extension e
		JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'`).Scan(&schema, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", nil
	}
	return schema, version, err
}

// hnswRanker ranks with a model's HNSW index once it is valid, and with the exact ranker until then.
type hnswRanker struct {
	pool   *pgxpool.Pool
	exact  *exactRanker
	log    *slog.Logger
	schema string // quoted, for qualifying pgvector's type, operator and operator class

	// building is cancelled by close, so that no index build outlives the store.
	building context.Context
	close    context.CancelFunc
	wg       sync.WaitGroup

	mu     sync.Mutex
	models map[string]*hnswModel
	active map[int64]bool // embedder ids whose index this process is building
}

// hnswModel is what the ranker last learned about a model's newest embedder row.
type hnswModel struct {
	embedder, epoch int64
	dims            int
	total           int // vectors stored at epoch
	indexed         bool
	checked         time.Time
}

func newHNSWRanker(pool *pgxpool.Pool, schema string, exact *exactRanker, log *slog.Logger) *hnswRanker {
	ctx, cancel := context.WithCancel(context.Background())
	return &hnswRanker{
		pool: pool, exact: exact, log: log, schema: pgx.Identifier{schema}.Sanitize(),
		building: ctx, close: cancel,
		models: map[string]*hnswModel{}, active: map[int64]bool{},
	}
}

// stop cancels index builds in progress and waits for them; PostgreSQL drops what a cancelled
// CREATE INDEX CONCURRENTLY left behind only when asked, which the next build does.
func (r *hnswRanker) stop() {
	r.close()
	r.wg.Wait()
}

func (r *hnswRanker) rank(ctx context.Context, model string, q []float32, n int) ([]scored, int, error) {
	m, err := r.model(ctx, model)
	if err != nil || m == nil || m.total == 0 {
		return nil, 0, err
	}
	if len(q) != m.dims {
		return nil, 0, panther.Invalidf("query has %d dimensions, the stored vectors %d", len(q), m.dims)
	}
	if n <= 0 {
		return nil, m.total, nil
	}
	if !m.indexed || n > hnswMaxEfSearch {
		return r.exact.rank(ctx, model, q, n)
	}
	top, err := r.search(ctx, m, q, min(n, m.total))
	if err != nil {
		return nil, 0, unavailable(err)
	}
	return top, m.total, nil
}

// search asks the index for the n nearest vectors. The settings are local to the batch's implicit
// transaction, so they never leak into the pooled connection.
func (r *hnswRanker) search(ctx context.Context, m *hnswModel, q []float32, n int) ([]scored, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('hnsw.ef_search', $1, true)`, strconv.Itoa(max(n, hnswMinEfSearch)))
	// The index is the point of this path; the planner, guessing at an expression index's
	// selectivity, sometimes prefers a full scan and sort that costs a read of every vector.
	b.Queue(`SELECT set_config('enable_seqscan', 'off', true)`)
	b.Queue(r.searchSQL(m.embedder, m.dims, n), q)
	br := r.pool.SendBatch(ctx, b)
	defer br.Close()
	for range 2 {
		if _, err := br.Exec(); err != nil {
			return nil, err
		}
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	top := make([]scored, 0, n)
	for rows.Next() {
		var s scored
		var distance float64
		if err := rows.Scan(&s.id, &distance); err != nil {
			return nil, err
		}
		if math.IsNaN(distance) { // a zero vector has no direction to compare
			continue
		}
		s.score = float32(1 - distance)
		top = append(top, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return top, br.Close()
}

// searchSQL orders by the indexed expression, written exactly as the index has it, with the embedder
// id as a literal: a parameter could not prove the index's WHERE clause, and the planner would not
// use it.
func (r *hnswRanker) searchSQL(embedder int64, dims, n int) string {
	vec := fmt.Sprintf("%s.vector(%d)", r.schema, dims)
	distance := fmt.Sprintf("vec::%s OPERATOR(%s.<=>) $1::real[]::%s", vec, r.schema, vec)
	return fmt.Sprintf(`SELECT chunk_id, %s FROM vectors WHERE embedder_id = %d ORDER BY %s LIMIT %d`,
		distance, embedder, distance, n)
}

// indexName is the HNSW index of one embedder row.
func indexName(embedder int64) string { return fmt.Sprintf("vectors_hnsw_%d", embedder) }

// model returns what is known of model's newest embedder row, refreshed when its epoch moved, and
// starts building its index when there is none.
func (r *hnswRanker) model(ctx context.Context, model string) (*hnswModel, error) {
	id, dims, epoch, err := newestEmbedder(ctx, r.pool, model)
	if err != nil {
		return nil, unavailable(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if id == 0 {
		delete(r.models, model)
		return nil, nil
	}
	m := r.models[model]
	if m == nil || m.embedder != id {
		m = &hnswModel{embedder: id, dims: dims, epoch: -1}
		r.models[model] = m
	}
	if m.epoch != epoch {
		// Counted under the lock so that concurrent searches of a model count once per epoch.
		if err := r.pool.QueryRow(ctx, `SELECT count(*) FROM vectors WHERE embedder_id = $1`, id).Scan(&m.total); err != nil {
			return nil, unavailable(err)
		}
		m.epoch = epoch
	}
	if !m.indexed && dims <= hnswMaxDims && time.Since(m.checked) >= hnswRecheck {
		m.checked = time.Now()
		valid, err := r.indexState(ctx, id)
		if err != nil {
			return nil, unavailable(err)
		}
		m.indexed = valid
		if !valid && !r.active[id] && m.total > 0 {
			r.active[id] = true
			r.wg.Add(1)
			go r.build(id, dims)
		}
	}
	out := *m
	return &out, nil
}

// indexState says whether the embedder's index exists and is valid.
func (r *hnswRanker) indexState(ctx context.Context, embedder int64) (valid bool, err error) {
	err = r.pool.QueryRow(ctx, `SELECT coalesce((SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)), false)`,
		indexName(embedder)).Scan(&valid)
	return valid, err
}

// build creates the embedder's index. An invalid one left by a build that failed or was cancelled
// is dropped first, unless a build is still in progress on some process, which is left to finish.
func (r *hnswRanker) build(embedder int64, dims int) {
	defer r.wg.Done()
	defer func() {
		r.mu.Lock()
		delete(r.active, embedder)
		r.mu.Unlock()
	}()
	ctx := r.building
	name := indexName(embedder)
	start := time.Now()
	err := func() error {
		conn, err := r.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		// Asked again here: another process may have finished or started the build since.
		var exists, valid, inProgress bool
		if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL,
			coalesce((SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)), false),
			EXISTS (SELECT 1 FROM pg_stat_progress_create_index WHERE index_relid = to_regclass($1))`, name).
			Scan(&exists, &valid, &inProgress); err != nil {
			return err
		}
		if valid || inProgress {
			return nil
		}
		// Session settings: CREATE INDEX CONCURRENTLY cannot run in a transaction. A build takes as
		// long as the vectors take to link, beyond any statement timeout, and is bounded by close.
		if _, err := conn.Exec(ctx, `SET statement_timeout = 0`); err != nil {
			return err
		}
		defer func() {
			if _, err := conn.Exec(context.Background(), `RESET statement_timeout`); err != nil {
				conn.Conn().Close(context.Background())
			}
		}()
		if exists {
			if _, err := conn.Exec(ctx, `DROP INDEX CONCURRENTLY IF EXISTS `+name); err != nil {
				return err
			}
		}
		_, err = conn.Exec(ctx, fmt.Sprintf(`CREATE INDEX CONCURRENTLY IF NOT EXISTS %s ON vectors
			USING hnsw ((vec::%s.vector(%d)) %s.vector_cosine_ops) WHERE embedder_id = %d`,
			name, r.schema, dims, r.schema, embedder))
		return err
	}()
	switch {
	case err == nil:
		r.mu.Lock()
		for model, m := range r.models {
			if m.embedder == embedder {
				m.checked = time.Time{} // the next search finds the index
				r.exact.forget(model)
			}
		}
		r.mu.Unlock()
		r.log.Info("postgres: HNSW index ready", "index", name, "dimensions", dims, "took", time.Since(start).Round(time.Millisecond))
	case ctx.Err() != nil:
		r.log.Info("postgres: HNSW index build stopped with the store", "index", name)
	default:
		r.log.Warn("postgres: HNSW index build failed; vector search stays exact for this model", "index", name, "err", err)
	}
}

// VectorIndexReady says whether model's vectors are searched through a valid HNSW index; false
// without pgvector, for a model too long for one, and while its index is being built.
func (db *DB) VectorIndexReady(ctx context.Context, model string) (bool, error) {
	if db.hnsw == nil {
		return false, nil
	}
	m, err := db.hnsw.model(ctx, model)
	return m != nil && m.indexed, err
}
