package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

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

// The search runs in two steps: rank chunk ids by BM25 inside the full-text index alone, then read
// the few winners' rows. Ranking with bm25() and ORDER BY ... LIMIT lets SQLite keep only the best
// limit rows while it scans; FTS5's own "ORDER BY rank" sorts every matching row, and prepares two
// statements per query to do it. Ties are broken by chunk id so that every path below orders them
// alike.
const (
	topSQL = `SELECT rowid, bm25(chunks_fts, ?, ?, ?, ?) AS score FROM chunks_fts
	WHERE chunks_fts MATCH ? ORDER BY score, rowid LIMIT ?`
	// topFilteredSQL applies a filter before the limit; filterArgs follow the MATCH argument.
	topFilteredSQL = `SELECT chunks_fts.rowid, bm25(chunks_fts, ?, ?, ?, ?) AS score FROM chunks_fts
	JOIN chunks c ON c.id = chunks_fts.rowid
	JOIN documents d ON d.id = c.doc_id
	WHERE chunks_fts MATCH ? AND d.status = 'current'` + filterSQL + `
	ORDER BY score, chunks_fts.rowid LIMIT ?`
	// The winners' rows are read in two statements, chunks and then their documents, so that a
	// document is read once however many of its chunks made the list: reading a document's
	// fetched_at and content_hash walks the overflow pages of its markdown, stored before them.
	chunksSQL = `SELECT id, doc_id, heading, anchor, text FROM chunks
	WHERE id IN (SELECT value FROM json_each(?))`
	docsSQL = `SELECT id, url, title, fetched_at, content_hash FROM documents
	WHERE id IN (SELECT value FROM json_each(?)) AND status = 'current'`
	countSQL = `SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?`
	// FTS5 keeps the row count and per-column token totals in this record of its data table.
	averagesSQL = `SELECT block FROM chunks_fts_data WHERE id = 1`
)

// bm25K1 is FTS5's k1 (fts5_aux.c). A term adds idf·f·(k1+1)/(f + k1·(1−b+b·len/avglen)) to a
// row's score, which is below idf·(k1+1) whatever the row: the bound the OR ranking prunes with.
const bm25K1 = 1.2

// ranked is one chunk id with its BM25 score (positive, higher is better).
type ranked struct {
	id    int64
	score float64
}

// SearchLexical ranks the chunks of current documents with BM25 over title, heading path and body.
// The query text is split into words by BuildQuery; no part of it is ever FTS5 syntax. A query
// with no searchable words (only punctuation, say) returns no hits and no error.
//
// A query of several words first ranks only the chunks holding all of them; when fewer than K do,
// it ranks every chunk holding any of them (with Options.ExhaustiveOR, always). Both are exact
// bm25. Words whose scores earlier searches kept are ranked in Go (termcache.go); otherwise the OR
// ranking is bounded in SQL (topOR) rather than scoring every chunk that holds one of the words.
func (db *DB) SearchLexical(ctx context.Context, q panther.Query) ([]panther.Hit, error) {
	if err := q.Validate(); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	terms := Terms(q.Text)
	if len(terms) == 0 {
		return []panther.Hit{}, nil
	}
	hits, err := db.searchLexical(ctx, terms, q)
	if err != nil {
		return nil, fmt.Errorf("search %q: %w", q.Text, err)
	}
	return hits, nil
}

func (db *DB) searchLexical(ctx context.Context, terms []string, q panther.Query) ([]panther.Hit, error) {
	snap, err := db.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	// Only read, so ending it either way is the same.
	defer snap.tx.Rollback()
	rc := db.rank.Load()
	var top []ranked
	err = errUnsettled
	if q.Filter == (panther.Filter{}) {
		top, err = snap.cachedTop(ctx, terms, rc.weights, q.K, rc.exhaustiveOR)
	}
	if errors.Is(err, errUnsettled) {
		top, err = ranker{snap: snap, w: rc.weights, f: q.Filter, k: q.K}.search(ctx, terms, rc.exhaustiveOR)
	}
	if err != nil {
		return nil, err
	}
	return snap.hits(ctx, top)
}

// snapshot runs the statements of one search in one read transaction, so that all of them see the
// same state of the database: a page replaced meanwhile is found whole, before or after, never
// with some of its chunks missing.
type snapshot struct {
	db *DB
	tx *sql.Tx
}

// snapshot begins a search's read transaction, its statements prepared for the pool first.
func (db *DB) snapshot(ctx context.Context) (snapshot, error) {
	for _, query := range searchStmts {
		if _, err := db.readStmt(ctx, query); err != nil {
			return snapshot{}, err
		}
	}
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return snapshot{}, err
	}
	return snapshot{db: db, tx: tx}, nil
}

func (s snapshot) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (s snapshot) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := s.stmt(ctx, query)
	if err != nil {
		// A Row carries its error to Scan; this one fails the same way.
		return s.tx.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// stmt returns the pool's prepared statement for query, on this transaction's connection.
func (s snapshot) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.db.readStmts.Load(query); ok {
		return s.tx.StmtContext(ctx, st.(*sql.Stmt)), nil
	}
	// Preparing it for the pool would wait for a free connection, and every search in progress
	// may be holding one: prepared on this connection, for this search alone.
	return s.tx.PrepareContext(ctx, query)
}

// searchStmts are the statements a search may run, prepared for the pool before it starts.
var searchStmts = []string{versionSQL, sharesSQL, topSQL, topFilteredSQL, countSQL, averagesSQL, chunksSQL, docsSQL}

// ranker ranks chunk ids for one search.
type ranker struct {
	snap snapshot
	w    Weights
	f    panther.Filter
	k    int
}

func (s ranker) search(ctx context.Context, terms []string, exhaustiveOR bool) ([]ranked, error) {
	switch len(terms) {
	case 0:
		return nil, nil
	case 1:
		return s.top(ctx, joinTerms(terms, ""))
	}
	hits, err := s.counts(ctx, terms)
	if err != nil {
		return nil, err
	}
	// A term no chunk holds adds nothing to any score: the OR ranking is the same without it, and
	// the AND ranking is empty.
	kept, keptHits := terms[:0:0], hits[:0:0]
	for i, t := range terms {
		if hits[i] > 0 {
			kept, keptHits = append(kept, t), append(keptHits, hits[i])
		}
	}
	if !exhaustiveOR && len(kept) == len(terms) && slices.Min(hits) >= int64(s.k) {
		// Conjunctive first: the chunks holding all the words are far fewer than those holding
		// any. A row's bm25 is the same under AND as under OR (same phrases, same IDFs), so when
		// at least k rows hold every word, those are returned in exact bm25 order. When fewer
		// than k chunks hold the rarest word, fewer hold all of them, and this query is skipped.
		and, err := s.top(ctx, joinTerms(terms, " AND "))
		if err != nil || len(and) >= s.k {
			return and, err
		}
	}
	switch len(kept) {
	case 0:
		return nil, nil
	case 1:
		return s.top(ctx, joinTerms(kept, ""))
	}
	return s.topOR(ctx, kept, keptHits)
}

// topOR returns the k best chunks holding any of terms, by their bm25 over all of them, without
// scoring every such chunk (MaxScore, Turtle and Flood 1995). Terms are taken rarest first; a
// chunk holding none of the first e of them scores at most rest, the sum of the others' bounds
// idf·(k1+1). So once the k best chunks holding one of the first e score above rest, they are the
// k best of all. Those chunks are scored in two disjoint queries, "E AND C" (they hold some of the
// rest too) and "E NOT C" (they do not), each with every term's phrase exactly once, so each score
// is the chunk's full bm25. Common words are what make the OR ranking costly ("configuration",
// "parameter", "table" are in thousands of the manual's chunks), and they are the ones left out.
func (s ranker) topOR(ctx context.Context, terms []string, hits []int64) ([]ranked, error) {
	rows, err := s.snap.ftsRows(ctx)
	if err != nil {
		return nil, err
	}
	bound := make([]float64, len(terms))
	order := make([]int, len(terms))
	for i := range terms {
		bound[i] = idf(rows, hits[i]) * (bm25K1 + 1)
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(bound[b], bound[a]) })
	// The first e terms must be in at least k chunks for their k best to exist at all.
	e, n := 1, hits[order[0]]
	for e < len(terms) && n < int64(s.k) {
		n += hits[order[e]]
		e++
	}
	for ; e < len(terms); e++ {
		var rest float64
		for _, i := range order[e:] {
			rest += bound[i]
		}
		ess, non := pick(terms, order[:e]), pick(terms, order[e:])
		both, err := s.top(ctx, "("+joinTerms(ess, " OR ")+") AND ("+joinTerms(non, " OR ")+")")
		if err != nil {
			return nil, err
		}
		only, err := s.top(ctx, "("+joinTerms(ess, " OR ")+") NOT ("+joinTerms(non, " OR ")+")")
		if err != nil {
			return nil, err
		}
		best := mergeRanked(both, only, s.k)
		// The margin covers floating-point rounding of the sums, which FTS5 adds in another order.
		if len(best) == s.k && best[s.k-1].score > rest*(1+1e-9)+1e-12 {
			return best, nil
		}
	}
	return s.top(ctx, joinTerms(terms, " OR "))
}

// idf is FTS5's bm25 inverse document frequency of a phrase that hits of rows chunks hold.
func idf(rows, hits int64) float64 {
	v := math.Log((0.5 + float64(rows) - float64(hits)) / (0.5 + float64(hits)))
	if v <= 0 {
		v = 1e-6
	}
	return v
}

func pick(terms []string, idx []int) []string {
	out := make([]string, len(idx))
	for j, i := range idx {
		out[j] = terms[i]
	}
	return out
}

// mergeRanked merges two rankings of disjoint chunks into the best k.
func mergeRanked(a, b []ranked, k int) []ranked {
	out := append(a, b...)
	slices.SortFunc(out, func(x, y ranked) int {
		if c := cmp.Compare(y.score, x.score); c != 0 {
			return c
		}
		return cmp.Compare(x.id, y.id)
	})
	return out[:min(k, len(out))]
}

// top ranks the chunks that match an FTS5 expression, best k first.
func (s ranker) top(ctx context.Context, match string) ([]ranked, error) {
	query, args := topSQL, []any{s.w.Title, s.w.Heading, s.w.Body, s.w.Keywords, match}
	if s.f != (panther.Filter{}) {
		query = topFilteredSQL
		args = append(args, filterArgs(s.f)...)
	}
	rows, err := s.snap.query(ctx, query, append(args, s.k)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]ranked, 0, s.k)
	for rows.Next() {
		var r ranked
		if err := rows.Scan(&r.id, &r.score); err != nil {
			return nil, err
		}
		// FTS5's bm25() is negative, more negative for better matches.
		r.score = -r.score
		out = append(out, r)
	}
	return out, rows.Err()
}

// counts returns how many chunks hold each term.
func (s ranker) counts(ctx context.Context, terms []string) ([]int64, error) {
	out := make([]int64, len(terms))
	for i, t := range terms {
		if err := s.snap.queryRow(ctx, countSQL, joinTerms([]string{t}, "")).Scan(&out[i]); err != nil {
			return nil, fmt.Errorf("count %q: %w", t, err)
		}
	}
	return out, nil
}

// ftsRows is the number of rows in the full-text index as bm25 sees it: the first varint of
// FTS5's averages record.
func (s snapshot) ftsRows(ctx context.Context) (int64, error) {
	var b []byte
	if err := s.queryRow(ctx, averagesSQL).Scan(&b); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, nil
		}
		return 0, fmt.Errorf("full-text index totals: %w", err)
	}
	n, ok := sqliteVarint(b)
	if !ok {
		return 0, fmt.Errorf("full-text index totals: bad record %x", b)
	}
	return n, nil
}

// sqliteVarint decodes SQLite's variable-length integer: big-endian groups of 7 bits, the high bit
// set on all but the last byte, and a ninth byte that gives all its 8 bits.
func sqliteVarint(b []byte) (int64, bool) {
	var v uint64
	for i := 0; i < len(b) && i < 9; i++ {
		if i == 8 {
			return int64(v<<8 | uint64(b[i])), true
		}
		v = v<<7 | uint64(b[i]&0x7f)
		if b[i]&0x80 == 0 {
			return int64(v), true
		}
	}
	return 0, false
}

// hits reads the ranked chunks' rows and citations, in rank order.
func (s snapshot) hits(ctx context.Context, top []ranked) ([]panther.Hit, error) {
	if len(top) == 0 {
		return []panther.Hit{}, nil
	}
	pos := make(map[int64]int, len(top))
	ids := make([]int64, len(top))
	for i, r := range top {
		pos[r.id] = i
		ids[i] = r.id
	}
	hits := make([]panther.Hit, len(top))
	docOf := make(map[int64][]int, len(top)) // document id → indexes into hits
	err := s.readRows(ctx, chunksSQL, ids, func(rows *sql.Rows) error {
		var h panther.Hit
		var heading string
		if err := rows.Scan(&h.ChunkID, &h.DocID, &heading, &h.Anchor, &h.Text); err != nil {
			return err
		}
		i, ok := pos[h.ChunkID]
		if !ok {
			return nil
		}
		if h.Heading, ok = headingPath(heading); !ok {
			hp, err := decodeHeading(heading)
			if err != nil {
				return fmt.Errorf("chunk %d: %w", h.ChunkID, err)
			}
			h.Heading = panther.HeadingPath(hp)
		}
		h.Score = top[i].score
		hits[i] = h
		docOf[h.DocID] = append(docOf[h.DocID], i)
		return nil
	})
	if err != nil {
		return nil, err
	}
	docs := make([]int64, 0, len(docOf))
	for id := range docOf {
		docs = append(docs, id)
	}
	found := make([]bool, len(top))
	err = s.readRows(ctx, docsSQL, docs, func(rows *sql.Rows) error {
		var id int64
		var url, title, hash string
		var fetched sql.NullInt64
		if err := rows.Scan(&id, &url, &title, &fetched, &hash); err != nil {
			return err
		}
		for _, i := range docOf[id] {
			h := &hits[i]
			h.URL, h.Title, h.FetchedAt, h.ContentHash = url, title, timeVal(fetched), hash
			found[i] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Within one snapshot every chunk has its document; this only guards against a broken file.
	out := hits[:0]
	for i := range hits {
		if found[i] {
			out = append(out, hits[i])
		}
	}
	return out, nil
}

// headingPath renders a stored heading path (a JSON array of strings) for display, as
// panther.HeadingPath(decodeHeading(s)) does, for the paths that need no JSON decoder: strings
// without escapes. ok is false for any other input, which the decoder then handles.
func headingPath(s string) (path string, ok bool) {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' || strings.IndexByte(s, '\\') >= 0 {
		return "", false
	}
	body := s[1 : len(s)-1]
	if body == "" {
		return "", true
	}
	var b strings.Builder
	b.Grow(len(body))
	for n := 0; ; n++ {
		if len(body) < 2 || body[0] != '"' {
			return "", false
		}
		end := strings.IndexByte(body[1:], '"') + 1
		if end == 0 {
			return "", false
		}
		part := body[1:end]
		for i := 0; i < len(part); i++ {
			// JSON strings hold no raw control characters, and invalid UTF-8 would be replaced.
			if part[i] < 0x20 {
				return "", false
			}
		}
		if !utf8.ValidString(part) {
			return "", false
		}
		if n > 0 {
			b.WriteString(panther.HeadingSep)
		}
		b.WriteString(part)
		body = body[end+1:]
		if body == "" {
			return b.String(), true
		}
		if body[0] != ',' {
			return "", false
		}
		body = body[1:]
	}
}

// readRows runs a read statement whose one parameter is a list of ids, and calls fn on each row.
func (s snapshot) readRows(ctx context.Context, query string, ids []int64, fn func(*sql.Rows) error) error {
	list := make([]byte, 0, 8*len(ids)+2)
	list = append(list, '[')
	for i, id := range ids {
		if i > 0 {
			list = append(list, ',')
		}
		list = strconv.AppendInt(list, id, 10)
	}
	list = append(list, ']')
	rows, err := s.query(ctx, query, string(list))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
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
