package main

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"

	"panther"
	"panther/sqlite"
)

// pageBM25 is the baseline the issue names: plain BM25 over whole pages (title and text, no chunks,
// no weights, no keywords, no navigation filter), built from the same stored markdown so that only
// the ranking differs.
type pageBM25 struct {
	db *sql.DB
}

func newPageBM25(ctx context.Context, store *sqlite.DB, dir string) (*pageBM25, error) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "pages.db"))
	if err != nil {
		return nil, err
	}
	if _, err := db.ExecContext(ctx, `CREATE VIRTUAL TABLE pages USING fts5(url UNINDEXED, title, body, tokenize = 'porter unicode61 remove_diacritics 2')`); err != nil {
		return nil, err
	}
	docs, err := store.Documents(ctx, panther.DocFilter{})
	if err != nil {
		return nil, err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	for _, d := range docs {
		full, err := store.Document(ctx, d.URL)
		if err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO pages(url, title, body) VALUES (?, ?, ?)`, full.URL, full.Title, full.Markdown); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return &pageBM25{db: db}, nil
}

func (p *pageBM25) Search(ctx context.Context, q panther.Query) ([]panther.Hit, error) {
	match := sqlite.BuildQuery(q.Text)
	if match == "" {
		return nil, nil
	}
	rows, err := p.db.QueryContext(ctx, `SELECT url, bm25(pages) FROM pages WHERE pages MATCH ? ORDER BY bm25(pages) LIMIT ?`, match, q.K)
	if err != nil {
		return nil, fmt.Errorf("page baseline %q: %w", q.Text, err)
	}
	defer rows.Close()
	var hits []panther.Hit
	for rows.Next() {
		var h panther.Hit
		if err := rows.Scan(&h.URL, &h.Score); err != nil {
			return nil, err
		}
		h.Score = -h.Score
		hits = append(hits, h)
	}
	return hits, rows.Err()
}
