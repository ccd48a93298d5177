package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"panther"
	"panther/sqlite"
)

// rankWeights is ts_rank's weight array, {D, C, B, A}: body, keywords, heading path, title. Chosen
// with the book-index qrels of the PostgreSQL manual (bench/testdata), copied from an embedded store
// of the manual: 0.3, 0.8, 0.8, 1 reached page MRR@10 0.809 and section MRR@10 0.746 where BM25 in
// the embedded store reaches 0.814 and 0.765. The embedded store's BM25 weights scaled to ts_rank's
// range (0.2, 0.6, 0.6, 1) reached 0.798 and 0.721; PostgreSQL's default (0.1, 0.2, 0.4, 1) 0.702
// and 0.561. Keywords and headings count nearly as much as the title; body text well below.
const rankWeights = `'{0.3,0.8,0.8,1}'::real[]`

// rankNormalization 0: no discount for a chunk's length. The manual's qrels scored best without one
// (page MRR@10 0.798 against 0.748 for 1 + log(length) and 0.563 for length, at the weights of the
// embedded store); chunks are already bounded in length by the chunker.
const rankNormalization = 0

// tsquery builds, from the words in $1 (a text[]), their tsqueries combined with AND or OR. Each
// word goes through phraseto_tsquery, which takes no syntax from its input and matches a word the
// parser splits (pg_dump, utf-8) as a phrase, as FTS5 does in the embedded store.
func tsquery(op string) string {
	return `(SELECT panther_tsquery_` + op + `(phraseto_tsquery('panther_english', w)) FROM unnest($1::text[]) w)`
}

// searchSQL matches chunks with the tsquery of op and ranks them by the OR query always, so that a
// chunk scores the same whichever query found it.
func searchSQL(op, filter string) string {
	return `SELECT c.id, ts_rank(` + rankWeights + `, c.tsv, ` + tsquery("or") + `, ` + strconv.Itoa(rankNormalization) + `) AS score,
		c.doc_id, c.heading, c.anchor, c.text, d.url, d.title, d.fetched_at, d.content_hash
	FROM chunks c JOIN documents d ON d.id = c.doc_id
	WHERE c.tsv @@ ` + tsquery(op) + ` AND NOT c.navigation AND d.status = 'current'` + filter + `
	ORDER BY score DESC, c.id
	LIMIT $2`
}

// filterSQL renders a panther.Filter on documents d, numbering its arguments after the first n.
// Only the conditions in force are written, so each combination gets a plan of its own.
func filterSQL(f panther.Filter, n int) (string, []any) {
	var sb strings.Builder
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(n+len(args))
	}
	if f.SourceID != 0 {
		sb.WriteString(` AND d.source_id = ` + arg(f.SourceID))
	}
	if f.URLPrefix != "" {
		sb.WriteString(` AND starts_with(d.url, ` + arg(f.URLPrefix) + `)`)
	}
	if !f.FetchedAfter.IsZero() {
		sb.WriteString(` AND d.fetched_at > ` + arg(f.FetchedAfter.UTC()))
	}
	return sb.String(), args
}

// SearchLexical ranks the chunks of current documents with ts_rank over title, heading path,
// keywords and body. The query text is split into words by sqlite.Terms, so both stores search the
// same words; no part of it is ever tsquery syntax. A query with no searchable words returns no
// hits and no error.
func (db *DB) SearchLexical(ctx context.Context, q panther.Query) ([]panther.Hit, error) {
	if err := q.Validate(); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	if err := checkKey("search: url prefix", q.URLPrefix); err != nil {
		return nil, err
	}
	terms := sqlite.Terms(q.Text)
	if len(terms) == 0 {
		return []panther.Hit{}, nil
	}
	var hits []panther.Hit
	var err error
	if len(terms) > 1 {
		// Conjunctive first, as in the embedded store: the chunks holding every word are far fewer
		// than those holding any, and ranking is the cost. When at least K hold them all, those are
		// returned in the order the OR ranking gives them (the same scores); a chunk with only some
		// of the words cannot outrank them then. Otherwise the full OR ranking.
		if hits, err = db.rankQuery(ctx, "and", terms, q.K, q.Filter); err != nil {
			return nil, fmt.Errorf("search %q: %w", q.Text, err)
		}
	}
	if len(hits) < q.K {
		if hits, err = db.rankQuery(ctx, "or", terms, q.K, q.Filter); err != nil {
			return nil, fmt.Errorf("search %q: %w", q.Text, err)
		}
	}
	return hits, nil
}

func (db *DB) rankQuery(ctx context.Context, op string, terms []string, k int, f panther.Filter) ([]panther.Hit, error) {
	filter, fargs := filterSQL(f, 2)
	rows, err := db.pool.Query(ctx, searchSQL(op, filter), append([]any{terms, k}, fargs...)...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	hits := make([]panther.Hit, 0, k)
	for rows.Next() {
		var h panther.Hit
		var heading []string
		var fetched *time.Time
		var score float32
		if err := rows.Scan(&h.ChunkID, &score, &h.DocID, &heading, &h.Anchor, &h.Text,
			&h.URL, &h.Title, &fetched, &h.ContentHash); err != nil {
			return nil, err
		}
		h.Heading = panther.HeadingPath(heading)
		h.FetchedAt = timeVal(fetched)
		h.Score = float64(score)
		hits = append(hits, h)
	}
	return hits, unavailable(rows.Err())
}
