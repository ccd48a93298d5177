package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"unicode"

	"panther"
)

// maxQueryTerms bounds the FTS5 expression a query can produce; a pasted paragraph keeps its first
// distinct words, which is what BM25 would mostly rank on anyway.
const maxQueryTerms = 32

// maxTermBytes bounds one term; nothing longer is a word anyone searches for.
const maxTermBytes = 128

// filterSQL applies a panther.Filter to documents d; filterArgs gives its arguments. Written with
// every condition always present so that one prepared statement serves every filter.
const filterSQL = `
		AND (? = 0 OR d.source_id = ?)
		AND (? = '' OR substr(d.url, 1, length(?)) = ?)
		AND (? = 0 OR d.fetched_at > ?)`

func filterArgs(f panther.Filter) []any {
	var after int64
	if !f.FetchedAfter.IsZero() {
		after = f.FetchedAfter.UnixMicro()
	}
	return []any{f.SourceID, f.SourceID, f.URLPrefix, f.URLPrefix, f.URLPrefix, after, after}
}

const searchSQL = `SELECT chunks_fts.rowid, chunks_fts.rank,
		c.doc_id, c.heading, c.anchor, c.text, d.url, d.title, d.fetched_at, d.content_hash
	FROM chunks_fts
	JOIN chunks c ON c.id = chunks_fts.rowid
	JOIN documents d ON d.id = c.doc_id
	WHERE chunks_fts MATCH ? AND chunks_fts.rank MATCH ? AND d.status = 'current'` + filterSQL + `
	ORDER BY chunks_fts.rank
	LIMIT ?`

// SearchLexical ranks the chunks of current documents with BM25 over title, heading path and body.
// The query text is split into words by BuildQuery; no part of it is ever FTS5 syntax. A query
// with no searchable words (only punctuation, say) returns no hits and no error.
func (db *DB) SearchLexical(ctx context.Context, q panther.Query) ([]panther.Hit, error) {
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
		// Conjunctive first: ranking is the cost (every matching row gets bm25), and the chunks
		// holding all the words are far fewer than those holding any. A row's bm25 is the same
		// under AND as under OR (same phrases, same IDFs), so when at least limit rows hold every
		// word, those are returned in exact bm25 order; otherwise fall back to the full OR ranking.
		if hits, err = db.rankQuery(ctx, joinTerms(terms, " AND "), rc.rankExpr, limit, q.Filter); err != nil {
			return nil, fmt.Errorf("search %q: %w", q.Text, err)
		}
	}
	if len(hits) < limit {
		if hits, err = db.rankQuery(ctx, joinTerms(terms, " OR "), rc.rankExpr, limit, q.Filter); err != nil {
			return nil, fmt.Errorf("search %q: %w", q.Text, err)
		}
	}
	return hits, nil
}

func (db *DB) rankQuery(ctx context.Context, match, rankExpr string, limit int, f panther.Filter) ([]panther.Hit, error) {
	st, err := db.readStmt(ctx, searchSQL)
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
		// FTS5's bm25() is negative, more negative for better matches.
		h.Score = -rank
		hits = append(hits, h)
	}
	return hits, rows.Err()
}

// BuildQuery turns plain user text into an FTS5 MATCH expression: its words (see Terms), each a
// double-quoted FTS5 string, joined with OR. Returns "" when the text has no words. Because every
// word is quoted, operators (AND, NEAR, -x, col:x, ^, *, parentheses) are searched as words.
func BuildQuery(text string) string { return joinTerms(Terms(text), " OR ") }

// joinTerms quotes each term as an FTS5 string (doubling inner quotes) and joins them with op.
func joinTerms(terms []string, op string) string {
	if len(terms) == 0 {
		return ""
	}
	var sb strings.Builder
	for i, t := range terms {
		if i > 0 {
			sb.WriteString(op)
		}
		sb.WriteByte('"')
		sb.WriteString(strings.ReplaceAll(t, `"`, `""`))
		sb.WriteByte('"')
	}
	return sb.String()
}

// Terms returns the distinct lower-cased words of text in order, without English stop words unless
// nothing else is left. A word is a run of letters, digits, combining marks and underscores; a '.',
// '-' or apostrophe between two word characters stays inside it, so pg_dump, work_mem, 9.6,
// pg_catalog.pg_class and utf-8 are single terms. FTS5 splits such a term into its parts again
// and matches them as a phrase (adjacent, in order), which is what the user meant.
func Terms(text string) []string {
	words := words(text)
	if len(words) == 0 {
		return nil
	}
	var kept []string
	for _, w := range words {
		if !stopWords[w] {
			kept = append(kept, w)
		}
	}
	if len(kept) == 0 {
		kept = words
	}
	seen := make(map[string]bool, len(kept))
	out := kept[:0:0]
	for _, w := range kept {
		if seen[w] {
			continue
		}
		seen[w] = true
		out = append(out, w)
		if len(out) == maxQueryTerms {
			break
		}
	}
	return out
}

func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsNumber(r) || unicode.Is(unicode.Mn, r)
}

func isJoiner(r rune) bool { return r == '.' || r == '-' || r == '\'' || r == '’' }

// words splits text into lower-cased words, keeping joiners between word characters.
func words(text string) []string {
	rs := []rune(text)
	var out []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			w := strings.ToLower(string(cur))
			if len(w) > maxTermBytes {
				// A cut inside a rune leaves an invalid tail, which ToValidUTF8 drops.
				w = strings.ToValidUTF8(w[:maxTermBytes], "")
			}
			out = append(out, w)
			cur = cur[:0]
		}
	}
	for i, r := range rs {
		switch {
		case isWordRune(r):
			cur = append(cur, r)
		case isJoiner(r) && len(cur) > 0 && i+1 < len(rs) && isWordRune(rs[i+1]):
			if r == '’' {
				r = '\'' // so that "don’t" meets the stop word list
			}
			cur = append(cur, r)
		default:
			flush()
		}
	}
	flush()
	return out
}

// stopWords are common English function words; they match nearly every chunk, so they only add
// cost and noise to an OR query.
var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a about above after again against all am an and any are aren't as at
		be because been before being below between both but by can can't cannot could couldn't did didn't
		do does doesn't doing don't down during each few for from further had hadn't has hasn't have
		haven't having he he'd he'll he's her here here's hers herself him himself his how how's i i'd
		i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't my myself no nor
		not of off on once only or other ought our ours ourselves out over own same shan't she she'd
		she'll she's should shouldn't so some such than that that's the their theirs them themselves
		then there there's these they they'd they'll they're they've this those through to too under
		until up very was wasn't we we'd we'll we're we've were weren't what what's when when's where
		where's which while who who's whom why why's with won't would wouldn't you you'd you'll you're
		you've your yours yourself yourselves`) {
		m[w] = true
	}
	return m
}()
