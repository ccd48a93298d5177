package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"panther"
)

// searchLexicalBefore is SearchLexical as it was before the OR fallback was bounded (BENCHMARKS.md,
// "Search cost"): AND first, then every chunk holding any word ranked, joined and sorted. It is kept
// as the oracle that the bounded search must agree with, and as the "before" side of the benchmark.
func (db *DB) searchLexicalBefore(ctx context.Context, q panther.Query) ([]panther.Hit, error) {
	if err := q.Validate(); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	terms := Terms(q.Text)
	if len(terms) == 0 {
		return []panther.Hit{}, nil
	}
	rc := db.rank.Load()
	limit := q.K
	var hits []panther.Hit
	var err error
	if len(terms) > 1 && !rc.exhaustiveOR {
		if hits, err = db.rankQueryBefore(ctx, joinTerms(terms, " AND "), rc.rankExpr, limit, q.Filter); err != nil {
			return nil, fmt.Errorf("search %q: %w", q.Text, err)
		}
	}
	if len(hits) < limit {
		if hits, err = db.rankQueryBefore(ctx, joinTerms(terms, " OR "), rc.rankExpr, limit, q.Filter); err != nil {
			return nil, fmt.Errorf("search %q: %w", q.Text, err)
		}
	}
	return hits, nil
}

const searchSQLBefore = `SELECT chunks_fts.rowid, chunks_fts.rank,
		c.doc_id, c.heading, c.anchor, c.text, d.url, d.title, d.fetched_at, d.content_hash
	FROM chunks_fts
	JOIN chunks c ON c.id = chunks_fts.rowid
	JOIN documents d ON d.id = c.doc_id
	WHERE chunks_fts MATCH ? AND chunks_fts.rank MATCH ? AND d.status = 'current'` + filterSQL + `
	ORDER BY chunks_fts.rank
	LIMIT ?`

func (db *DB) rankQueryBefore(ctx context.Context, match, rankExpr string, limit int, f panther.Filter) ([]panther.Hit, error) {
	st, err := db.readStmt(ctx, searchSQLBefore)
	if err != nil {
		return nil, err
	}
	args := append([]any{match, rankExpr}, filterArgs(f)...)
	rows, err := st.QueryContext(ctx, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	hits := make([]panther.Hit, 0, limit)
	for rows.Next() {
		var h panther.Hit
		var rank float64
		var heading string
		var fetched sql.NullInt64
		if err := rows.Scan(&h.ChunkID, &rank, &h.DocID, &heading, &h.Anchor, &h.Text,
			&h.URL, &h.Title, &fetched, &h.ContentHash); err != nil {
			return nil, err
		}
		hp, err := decodeHeading(heading)
		if err != nil {
			return nil, fmt.Errorf("chunk %d: %w", h.ChunkID, err)
		}
		h.Heading = panther.HeadingPath(hp)
		h.FetchedAt = timeVal(fetched)
		h.Score = -rank
		hits = append(hits, h)
	}
	return hits, rows.Err()
}
