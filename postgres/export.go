package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"panther"
)

// What `panther export` and `panther import` read and write beyond the ordinary store methods.

var (
	_ panther.Exporter = (*DB)(nil)
	_ panther.Importer = (*DB)(nil)
)

// maxExportBatch bounds one export call, as the embedded store does.
const maxExportBatch = 10000

func checkBatch(what string, n int) error {
	if n > maxExportBatch {
		return panther.Invalidf("%s: %d ids, at most %d at a time", what, n, maxExportBatch)
	}
	return nil
}

// ExportDocuments returns up to limit documents with id > afterID, by id, gone ones included, each
// with its markdown, links and gone time.
func (db *DB) ExportDocuments(ctx context.Context, afterID int64, limit int) ([]panther.ExportedDocument, error) {
	if limit <= 0 || limit > maxExportBatch {
		return nil, panther.Invalidf("export documents: limit must be between 1 and %d, got %d", maxExportBatch, limit)
	}
	rows, err := db.pool.Query(ctx, `SELECT `+docColumns+`, d.markdown, d.links, d.gone_at
		FROM documents d WHERE d.id > $1 ORDER BY d.id LIMIT $2`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("export documents after %d: %w", afterID, unavailable(err))
	}
	defer rows.Close()
	out := []panther.ExportedDocument{}
	for rows.Next() {
		var r docRow
		var markdown string
		var links []string
		var gone *time.Time
		if err := rows.Scan(append(r.dest(), &markdown, &links, &gone)...); err != nil {
			return nil, fmt.Errorf("export documents after %d: %w", afterID, err)
		}
		d := panther.ExportedDocument{Document: r.doc(), GoneAt: timeVal(gone)}
		d.Markdown = markdown
		if len(links) > 0 {
			d.Links = links
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("export documents after %d: %w", afterID, unavailable(err))
	}
	return out, nil
}

// ExportChunks returns the chunks of the documents with every field, by document id, then ordinal.
func (db *DB) ExportChunks(ctx context.Context, docIDs []int64) ([]panther.Chunk, error) {
	if err := checkBatch("export chunks", len(docIDs)); err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, `SELECT id, doc_id, ordinal, heading, anchor, text, tokens, navigation, keywords
		FROM chunks WHERE doc_id = ANY($1::bigint[]) ORDER BY doc_id, ordinal, id`, docIDs)
	if err != nil {
		return nil, fmt.Errorf("export chunks: %w", unavailable(err))
	}
	defer rows.Close()
	out := []panther.Chunk{}
	for rows.Next() {
		var c panther.Chunk
		if err := rows.Scan(&c.ID, &c.DocID, &c.Ordinal, &c.Heading, &c.Anchor, &c.Text, &c.Tokens, &c.Navigation, &c.Keywords); err != nil {
			return nil, fmt.Errorf("export chunks: %w", err)
		}
		if len(c.Heading) == 0 {
			c.Heading = nil
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("export chunks: %w", unavailable(err))
	}
	return out, nil
}

// VectorSets lists every model and length vectors were stored for, in the order they were first
// stored, with how many vectors each has.
func (db *DB) VectorSets(ctx context.Context) ([]panther.VectorSet, error) {
	rows, err := db.pool.Query(ctx, `SELECT e.model, e.dims,
		(SELECT count(*) FROM vectors v WHERE v.embedder_id = e.id) FROM embedders e ORDER BY e.id`)
	if err != nil {
		return nil, fmt.Errorf("vector sets: %w", unavailable(err))
	}
	defer rows.Close()
	out := []panther.VectorSet{}
	for rows.Next() {
		var s panther.VectorSet
		if err := rows.Scan(&s.Model, &s.Dims, &s.Vectors); err != nil {
			return nil, fmt.Errorf("vector sets: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("vector sets: %w", unavailable(err))
	}
	return out, nil
}

// ExportVectors returns the set's vectors of the chunks that have one, by chunk id; none for a set
// that is not stored.
func (db *DB) ExportVectors(ctx context.Context, set panther.VectorSet, chunkIDs []int64) ([]panther.ChunkVector, error) {
	if err := checkBatch("export vectors", len(chunkIDs)); err != nil {
		return nil, err
	}
	if err := checkKey("export vectors: model", set.Model); err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, `SELECT v.chunk_id, v.vec FROM vectors v
		JOIN embedders e ON e.id = v.embedder_id AND e.model = $1 AND e.dims = $2
		WHERE v.chunk_id = ANY($3::bigint[]) ORDER BY v.chunk_id`, set.Model, set.Dims, chunkIDs)
	if err != nil {
		return nil, fmt.Errorf("export vectors of %s/%d: %w", set.Model, set.Dims, unavailable(err))
	}
	defer rows.Close()
	out := []panther.ChunkVector{}
	for rows.Next() {
		var cv panther.ChunkVector
		if err := rows.Scan(&cv.ChunkID, &cv.Vector); err != nil {
			return nil, fmt.Errorf("export vectors of %s/%d: %w", set.Model, set.Dims, err)
		}
		if len(cv.Vector) != set.Dims {
			return nil, fmt.Errorf("export vectors of %s/%d: chunk %d: vector of %d dimensions", set.Model, set.Dims, cv.ChunkID, len(cv.Vector))
		}
		out = append(out, cv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("export vectors of %s/%d: %w", set.Model, set.Dims, unavailable(err))
	}
	return out, nil
}

// ImportSource stores src with its times under its URL and returns it with its id here. A zero
// CreatedAt becomes now.
func (db *DB) ImportSource(ctx context.Context, src panther.Source) (panther.Source, error) {
	if strings.TrimSpace(src.URL) == "" {
		return panther.Source{}, panther.Invalidf("import source: url is empty")
	}
	if err := checkKey("import source: url", src.URL); err != nil {
		return panther.Source{}, err
	}
	created := src.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	var s panther.Source
	var crawled *time.Time
	err := retry(ctx, func() error {
		return db.pool.QueryRow(ctx, `INSERT INTO sources (url, created_at, last_crawl_at) VALUES ($1, $2, $3)
			ON CONFLICT (url) DO UPDATE SET created_at = excluded.created_at, last_crawl_at = excluded.last_crawl_at
			RETURNING id, url, created_at, last_crawl_at`, src.URL, timeArg(created), timeArg(src.LastCrawlAt)).
			Scan(&s.ID, &s.URL, &s.CreatedAt, &crawled)
	})
	if err != nil {
		return panther.Source{}, fmt.Errorf("import source %s: %w", src.URL, err)
	}
	s.CreatedAt, s.LastCrawlAt = s.CreatedAt.UTC(), timeVal(crawled)
	return s, nil
}

// AddVectorSet records model at dims when it is not stored yet.
func (db *DB) AddVectorSet(ctx context.Context, model string, dims int) error {
	if strings.TrimSpace(model) == "" {
		return panther.Invalidf("add vector set: model is empty")
	}
	if err := checkKey("add vector set: model", model); err != nil {
		return err
	}
	if dims <= 0 || dims > maxVectorDims {
		return panther.Invalidf("add vector set %s: %d dimensions, want 1 to %d", model, dims, maxVectorDims)
	}
	err := retry(ctx, func() error {
		_, err := db.pool.Exec(ctx, `INSERT INTO embedders (model, dims) VALUES ($1, $2) ON CONFLICT (model, dims) DO NOTHING`, model, dims)
		return err
	})
	if err != nil {
		return fmt.Errorf("add vector set %s/%d: %w", model, dims, err)
	}
	return nil
}
