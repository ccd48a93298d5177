package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"panther"
)

// What `panther export` and `panther import` read and write beyond the ordinary store methods.

var (
	_ panther.Exporter = (*DB)(nil)
	_ panther.Importer = (*DB)(nil)
)

// maxExportBatch bounds one export call: its ids travel as one JSON parameter.
const maxExportBatch = 10000

// idList encodes ids as the JSON array json_each reads: one parameter, however many ids.
func idList(what string, ids []int64) (string, error) {
	if len(ids) > maxExportBatch {
		return "", panther.Invalidf("%s: %d ids, at most %d at a time", what, len(ids), maxExportBatch)
	}
	b, err := json.Marshal(ids)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// ExportDocuments returns up to limit documents with id > afterID, by id, gone ones included, each
// with its markdown, links and gone time.
func (db *DB) ExportDocuments(ctx context.Context, afterID int64, limit int) ([]panther.ExportedDocument, error) {
	if limit <= 0 || limit > maxExportBatch {
		return nil, panther.Invalidf("export documents: limit must be between 1 and %d, got %d", maxExportBatch, limit)
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+docColumns+`, d.markdown, d.links, d.gone_at
		FROM documents d WHERE d.id > ? ORDER BY d.id LIMIT ?`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("export documents after %d: %w", afterID, err)
	}
	defer rows.Close()
	out := []panther.ExportedDocument{}
	for rows.Next() {
		var d panther.ExportedDocument
		var src, fetched, gone sql.NullInt64
		var links string
		dest := append(docDest(&d.Document), &d.Markdown, &links, &gone)
		dest[1], dest[7] = &src, &fetched
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("export documents after %d: %w", afterID, err)
		}
		d.SourceID, d.FetchedAt, d.Links, d.GoneAt = src.Int64, timeVal(fetched), splitLinks(links), timeVal(gone)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("export documents after %d: %w", afterID, err)
	}
	return out, nil
}

// ExportChunks returns the chunks of the documents with every field, by document id, then ordinal.
func (db *DB) ExportChunks(ctx context.Context, docIDs []int64) ([]panther.Chunk, error) {
	ids, err := idList("export chunks", docIDs)
	if err != nil {
		return nil, err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT id, doc_id, ordinal, heading, anchor, text, tokens, navigation, keywords
		FROM chunks WHERE doc_id IN (SELECT value FROM json_each(?)) ORDER BY doc_id, ordinal, id`, ids)
	if err != nil {
		return nil, fmt.Errorf("export chunks: %w", err)
	}
	defer rows.Close()
	out := []panther.Chunk{}
	for rows.Next() {
		var c panther.Chunk
		var heading string
		if err := rows.Scan(&c.ID, &c.DocID, &c.Ordinal, &heading, &c.Anchor, &c.Text, &c.Tokens, &c.Navigation, &c.Keywords); err != nil {
			return nil, fmt.Errorf("export chunks: %w", err)
		}
		if c.Heading, err = decodeHeading(heading); err != nil {
			return nil, fmt.Errorf("export chunks: chunk %d: %w", c.ID, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("export chunks: %w", err)
	}
	return out, nil
}

// VectorSets lists every model and length vectors were stored for, in the order they were first
// stored, with how many vectors each has.
func (db *DB) VectorSets(ctx context.Context) ([]panther.VectorSet, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT e.model, e.dims,
		(SELECT count(*) FROM vectors v WHERE v.embedder_id = e.id) FROM embedders e ORDER BY e.id`)
	if err != nil {
		return nil, fmt.Errorf("vector sets: %w", err)
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
		return nil, fmt.Errorf("vector sets: %w", err)
	}
	return out, nil
}

// ExportVectors returns the set's vectors of the chunks that have one, by chunk id; none for a set
// that is not stored.
func (db *DB) ExportVectors(ctx context.Context, set panther.VectorSet, chunkIDs []int64) ([]panther.ChunkVector, error) {
	ids, err := idList("export vectors", chunkIDs)
	if err != nil {
		return nil, err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT v.chunk_id, v.vec FROM vectors v
		JOIN embedders e ON e.id = v.embedder_id AND e.model = ? AND e.dims = ?
		WHERE v.chunk_id IN (SELECT value FROM json_each(?)) ORDER BY v.chunk_id`, set.Model, set.Dims, ids)
	if err != nil {
		return nil, fmt.Errorf("export vectors of %s/%d: %w", set.Model, set.Dims, err)
	}
	defer rows.Close()
	out := []panther.ChunkVector{}
	for rows.Next() {
		var cv panther.ChunkVector
		var blob []byte
		if err := rows.Scan(&cv.ChunkID, &blob); err != nil {
			return nil, fmt.Errorf("export vectors of %s/%d: %w", set.Model, set.Dims, err)
		}
		if len(blob) != 4*set.Dims {
			return nil, fmt.Errorf("export vectors of %s/%d: chunk %d: vector of %d bytes, want %d", set.Model, set.Dims, cv.ChunkID, len(blob), 4*set.Dims)
		}
		cv.Vector = make([]float32, set.Dims)
		for i := range cv.Vector {
			cv.Vector[i] = math.Float32frombits(binary.LittleEndian.Uint32(blob[4*i:]))
		}
		out = append(out, cv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("export vectors of %s/%d: %w", set.Model, set.Dims, err)
	}
	return out, nil
}

// ImportSource stores src with its times under its URL and returns it with its id here. A zero
// CreatedAt becomes now.
func (db *DB) ImportSource(ctx context.Context, src panther.Source) (panther.Source, error) {
	if strings.TrimSpace(src.URL) == "" {
		return panther.Source{}, panther.Invalidf("import source: url is empty")
	}
	created := src.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	var s panther.Source
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var c, crawled sql.NullInt64
		err := tx.QueryRowContext(ctx, `INSERT INTO sources (url, created_at, last_crawl_at) VALUES (?, ?, ?)
			ON CONFLICT (url) DO UPDATE SET created_at = excluded.created_at, last_crawl_at = excluded.last_crawl_at
			RETURNING id, url, created_at, last_crawl_at`, src.URL, timeArg(created), timeArg(src.LastCrawlAt)).
			Scan(&s.ID, &s.URL, &c, &crawled)
		s.CreatedAt, s.LastCrawlAt = timeVal(c), timeVal(crawled)
		return err
	})
	if err != nil {
		return panther.Source{}, fmt.Errorf("import source %s: %w", src.URL, err)
	}
	return s, nil
}

// AddVectorSet records model at dims when it is not stored yet.
func (db *DB) AddVectorSet(ctx context.Context, model string, dims int) error {
	if strings.TrimSpace(model) == "" {
		return panther.Invalidf("add vector set: model is empty")
	}
	if dims <= 0 || dims > maxVectorDims {
		return panther.Invalidf("add vector set %s: %d dimensions, want 1 to %d", model, dims, maxVectorDims)
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := embedderID(ctx, tx, model, dims, true)
		if err != nil {
			return err
		}
		// A new set may now be the model's newest: searches must reload, as after any vector change.
		_, err = tx.ExecContext(ctx, `UPDATE meta SET value = value + 1 WHERE key = 'vectors_epoch'`)
		return err
	})
	if err != nil {
		return fmt.Errorf("add vector set %s/%d: %w", model, dims, err)
	}
	return nil
}
