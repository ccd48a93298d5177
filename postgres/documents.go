package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"panther"
)

// PutDocument stores doc and its chunks, replacing any earlier version of the URL in one
// transaction. The document keeps its id across replacements; chunk ids are new each time.
// doc.ID, doc.Status and doc.Chunks are ignored, as are the chunks' ID and DocID.
//
// The upsert locks the document's row first, so a concurrent writer of the same URL waits for this
// transaction and then deletes exactly the chunks it committed: no version is ever left with
// another's chunks.
func (db *DB) PutDocument(ctx context.Context, doc panther.Document, chunks []panther.Chunk) (int64, error) {
	if strings.TrimSpace(doc.URL) == "" {
		return 0, panther.Invalidf("put document: url is empty")
	}
	if err := checkKey("put document: url", doc.URL); err != nil {
		return 0, err
	}
	links := make([]string, 0, len(doc.Links))
	for _, l := range doc.Links {
		if l != "" {
			links = append(links, text(l))
		}
	}
	title := text(doc.Title)
	var id int64
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if doc.SourceID != 0 {
			if err := sourceExists(ctx, tx, doc.SourceID); err != nil {
				return err
			}
		}
		err := tx.QueryRow(ctx, `INSERT INTO documents
			(source_id, url, title, markdown, etag, last_modified, content_hash, fetched_at, status, links)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'current', $9)
			ON CONFLICT (url) DO UPDATE SET source_id = excluded.source_id, title = excluded.title,
				markdown = excluded.markdown, etag = excluded.etag, last_modified = excluded.last_modified,
				content_hash = excluded.content_hash, fetched_at = excluded.fetched_at, status = 'current',
				gone_at = NULL, links = excluded.links
			RETURNING id`,
			sourceArg(doc.SourceID), doc.URL, title, text(doc.Markdown), text(doc.ETag), text(doc.LastModified),
			text(doc.ContentHash), timeArg(doc.FetchedAt), links).Scan(&id)
		if err != nil {
			if isForeignKey(err, "documents_source_fk") {
				return panther.NotFoundf("source %d", doc.SourceID)
			}
			return fmt.Errorf("upsert: %w", err)
		}
		// One round trip for the old chunks' removal and every new chunk.
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM chunks WHERE doc_id = $1`, id)
		for _, c := range chunks {
			heading := make([]string, len(c.Heading))
			for i, h := range c.Heading {
				heading[i] = text(h)
			}
			// Navigation chunks are never searched: no need to build their tsvector.
			b.Queue(`INSERT INTO chunks (doc_id, ordinal, heading, anchor, text, tokens, navigation, keywords, tsv)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
					CASE WHEN $7 THEN ''::tsvector ELSE panther_chunk_tsv($9, $3, $8, $5) END)`,
				id, c.Ordinal, heading, text(c.Anchor), text(c.Text), c.Tokens, c.Navigation, text(c.Keywords), title)
		}
		br := tx.SendBatch(ctx, b)
		for i := range b.Len() {
			if _, err := br.Exec(); err != nil {
				br.Close()
				if i == 0 {
					return fmt.Errorf("delete old chunks: %w", err)
				}
				return fmt.Errorf("insert chunk %d: %w", i-1, err)
			}
		}
		return br.Close()
	})
	if err != nil {
		return 0, fmt.Errorf("put document %s: %w", doc.URL, err)
	}
	return id, nil
}

func sourceArg(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

func sourceExists(ctx context.Context, tx pgx.Tx, id int64) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM sources WHERE id = $1`, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return panther.NotFoundf("source %d", id)
	}
	return err
}

// execOne runs a single-row write outside an explicit transaction (it is one statement) and turns
// "no row" into notFound.
func (db *DB) execOne(ctx context.Context, notFound error, sql string, args ...any) error {
	return retry(ctx, func() error {
		tag, err := db.pool.Exec(ctx, sql, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return notFound
		}
		return nil
	})
}

// Touch records an unchanged re-fetch, and brings a gone document back into search.
func (db *DB) Touch(ctx context.Context, url string, v panther.Validators, fetchedAt time.Time) error {
	if url == "" {
		return panther.Invalidf("touch: url is empty")
	}
	if err := checkKey("touch: url", url); err != nil {
		return err
	}
	err := db.execOne(ctx, panther.NotFoundf("document %s", url), `UPDATE documents SET etag = $2, last_modified = $3,
		content_hash = $4, fetched_at = $5, status = 'current', gone_at = NULL WHERE url = $1`,
		url, text(v.ETag), text(v.LastModified), text(v.ContentHash), timeArg(fetchedAt))
	if err != nil {
		return fmt.Errorf("touch %s: %w", url, err)
	}
	return nil
}

// MarkGone takes a document out of search but keeps it and its chunks for the record. Marking a
// gone document again keeps the first gone time.
func (db *DB) MarkGone(ctx context.Context, url string, at time.Time) error {
	if url == "" {
		return panther.Invalidf("mark gone: url is empty")
	}
	if err := checkKey("mark gone: url", url); err != nil {
		return err
	}
	err := db.execOne(ctx, panther.NotFoundf("document %s", url), `UPDATE documents SET status = 'gone',
		gone_at = CASE WHEN status = 'gone' THEN gone_at ELSE $2 END WHERE url = $1`, url, timeArg(at))
	if err != nil {
		return fmt.Errorf("mark gone %s: %w", url, err)
	}
	return nil
}

// DeleteDocument removes a document with its chunks and their vectors (ON DELETE CASCADE).
func (db *DB) DeleteDocument(ctx context.Context, url string) error {
	if url == "" {
		return panther.Invalidf("delete document: url is empty")
	}
	if err := checkKey("delete document: url", url); err != nil {
		return err
	}
	if err := db.execOne(ctx, panther.NotFoundf("document %s", url), `DELETE FROM documents WHERE url = $1`, url); err != nil {
		return fmt.Errorf("delete document %s: %w", url, err)
	}
	return nil
}

const docColumns = `d.id, d.source_id, d.url, d.title, d.etag, d.last_modified, d.content_hash, d.fetched_at,
	d.status, (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id)`

// docRow holds a scanned row of docColumns, with the nullable columns apart.
type docRow struct {
	d       panther.Document
	source  *int64
	fetched *time.Time
}

func (r *docRow) dest() []any {
	return []any{&r.d.ID, &r.source, &r.d.URL, &r.d.Title, &r.d.ETag, &r.d.LastModified, &r.d.ContentHash,
		&r.fetched, &r.d.Status, &r.d.Chunks}
}

func (r *docRow) doc() panther.Document {
	d := r.d
	if r.source != nil {
		d.SourceID = *r.source
	}
	d.FetchedAt = timeVal(r.fetched)
	return d
}

// Document returns one document with its markdown and links.
func (db *DB) Document(ctx context.Context, url string) (panther.Document, error) {
	return db.documentWhere(ctx, "document "+url, true, `d.url = $1`, url)
}

// DocumentMeta returns one document without its markdown (links included: a re-crawl of an
// unchanged page follows them).
func (db *DB) DocumentMeta(ctx context.Context, url string) (panther.Document, error) {
	return db.documentWhere(ctx, "document "+url, false, `d.url = $1`, url)
}

// DocumentByHash returns the first-stored current document with the content hash.
func (db *DB) DocumentByHash(ctx context.Context, hash string) (panther.Document, error) {
	if hash == "" {
		return panther.Document{}, panther.Invalidf("document by hash: hash is empty")
	}
	return db.documentWhere(ctx, "document with content hash "+hash, false,
		`d.content_hash = $1 AND d.status = 'current' ORDER BY d.id LIMIT 1`, hash)
}

func (db *DB) documentWhere(ctx context.Context, what string, markdown bool, where string, arg string) (panther.Document, error) {
	if arg == "" {
		return panther.Document{}, panther.Invalidf("%s: empty key", strings.TrimSpace(what))
	}
	if err := checkKey(what, arg); err != nil {
		return panther.Document{}, err
	}
	md := `''`
	if markdown {
		md = `d.markdown`
	}
	var r docRow
	var links []string
	err := db.pool.QueryRow(ctx, `SELECT `+docColumns+`, `+md+`, d.links FROM documents d WHERE `+where, arg).
		Scan(append(r.dest(), &r.d.Markdown, &links)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return panther.Document{}, panther.NotFoundf("%s", what)
	}
	if err != nil {
		return panther.Document{}, fmt.Errorf("%s: %w", what, unavailable(err))
	}
	d := r.doc()
	if len(links) > 0 {
		d.Links = links
	}
	return d, nil
}

// Documents lists documents ordered by URL, without markdown or links.
func (db *DB) Documents(ctx context.Context, f panther.DocFilter) ([]panther.Document, error) {
	if f.Limit < 0 || f.Offset < 0 {
		return nil, panther.Invalidf("documents: limit and offset must not be negative (got %d, %d)", f.Limit, f.Offset)
	}
	if err := checkKey("documents: url prefix", f.URLPrefix); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.SourceID != 0 {
		where = append(where, `d.source_id = `+arg(f.SourceID))
	}
	if f.URLPrefix != "" {
		// starts_with uses the btree index on url, which is COLLATE "C"; LIKE would need escaping.
		where = append(where, `starts_with(d.url, `+arg(f.URLPrefix)+`)`)
	}
	if !f.IncludeGone {
		where = append(where, `d.status = 'current'`)
	}
	q := `SELECT ` + docColumns + ` FROM documents d`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	var limit any // NULL: no limit
	if f.Limit > 0 {
		limit = f.Limit
	}
	q += ` ORDER BY d.url LIMIT ` + arg(limit) + ` OFFSET ` + arg(f.Offset)
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("documents: %w", unavailable(err))
	}
	defer rows.Close()
	docs := []panther.Document{}
	for rows.Next() {
		var r docRow
		if err := rows.Scan(r.dest()...); err != nil {
			return nil, fmt.Errorf("documents: %w", err)
		}
		docs = append(docs, r.doc())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("documents: %w", unavailable(err))
	}
	return docs, nil
}

// Chunks returns a document's chunks in order; none (and no error) for an unknown document.
func (db *DB) Chunks(ctx context.Context, docID int64) ([]panther.Chunk, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, doc_id, ordinal, heading, anchor, text, tokens, navigation
		FROM chunks WHERE doc_id = $1 ORDER BY ordinal, id`, docID)
	if err != nil {
		return nil, fmt.Errorf("chunks of document %d: %w", docID, unavailable(err))
	}
	defer rows.Close()
	out := []panther.Chunk{}
	for rows.Next() {
		var c panther.Chunk
		if err := rows.Scan(&c.ID, &c.DocID, &c.Ordinal, &c.Heading, &c.Anchor, &c.Text, &c.Tokens, &c.Navigation); err != nil {
			return nil, fmt.Errorf("chunks of document %d: %w", docID, err)
		}
		if len(c.Heading) == 0 {
			c.Heading = nil
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chunks of document %d: %w", docID, unavailable(err))
	}
	return out, nil
}

// AddSource returns the source for url, creating it if it is new.
func (db *DB) AddSource(ctx context.Context, url string) (panther.Source, error) {
	if strings.TrimSpace(url) == "" {
		return panther.Source{}, panther.Invalidf("add source: url is empty")
	}
	if err := checkKey("add source: url", url); err != nil {
		return panther.Source{}, err
	}
	var s panther.Source
	err := db.tx(ctx, func(tx pgx.Tx) error {
		// Two statements: after ON CONFLICT waited for a concurrent insert of the same URL, only a
		// new statement's snapshot sees that row.
		if _, err := tx.Exec(ctx, `INSERT INTO sources (url, created_at) VALUES ($1, $2) ON CONFLICT (url) DO NOTHING`,
			url, time.Now().UTC()); err != nil {
			return err
		}
		var crawled *time.Time
		err := tx.QueryRow(ctx, `SELECT id, url, created_at, last_crawl_at FROM sources WHERE url = $1`, url).
			Scan(&s.ID, &s.URL, &s.CreatedAt, &crawled)
		s.CreatedAt, s.LastCrawlAt = s.CreatedAt.UTC(), timeVal(crawled)
		return err
	})
	if err != nil {
		return panther.Source{}, fmt.Errorf("add source %s: %w", url, err)
	}
	return s, nil
}

// Sources lists all sources by id.
func (db *DB) Sources(ctx context.Context) ([]panther.Source, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, url, created_at, last_crawl_at FROM sources ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sources: %w", unavailable(err))
	}
	defer rows.Close()
	out := []panther.Source{}
	for rows.Next() {
		var s panther.Source
		var crawled *time.Time
		if err := rows.Scan(&s.ID, &s.URL, &s.CreatedAt, &crawled); err != nil {
			return nil, fmt.Errorf("sources: %w", err)
		}
		s.CreatedAt, s.LastCrawlAt = s.CreatedAt.UTC(), timeVal(crawled)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sources: %w", unavailable(err))
	}
	return out, nil
}

// MarkCrawled records the end of a crawl of the source.
func (db *DB) MarkCrawled(ctx context.Context, sourceID int64, at time.Time) error {
	err := db.execOne(ctx, panther.NotFoundf("source %d", sourceID),
		`UPDATE sources SET last_crawl_at = $2 WHERE id = $1`, sourceID, timeArg(at))
	if err != nil {
		return fmt.Errorf("mark source %d crawled: %w", sourceID, err)
	}
	return nil
}

// Enqueue adds the entries not yet in the source's frontier, as queued, in one statement, and
// returns how many were new. A URL repeated within entries counts once, at its first depth.
func (db *DB) Enqueue(ctx context.Context, sourceID int64, entries []panther.FrontierEntry) (int, error) {
	urls := make([]string, 0, len(entries))
	depths := make([]int32, 0, len(entries))
	seen := make(map[string]bool, len(entries))
	for i, e := range entries {
		if e.URL == "" {
			return 0, panther.Invalidf("enqueue: entry %d: url is empty", i)
		}
		if err := checkKey("enqueue: url", e.URL); err != nil {
			return 0, err
		}
		if e.Depth < 0 || e.Depth > 1<<30 {
			return 0, panther.Invalidf("enqueue %s: depth %d out of range", e.URL, e.Depth)
		}
		if !seen[e.URL] {
			seen[e.URL] = true
			urls = append(urls, e.URL)
			depths = append(depths, int32(e.Depth))
		}
	}
	added := 0
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if err := sourceExists(ctx, tx, sourceID); err != nil {
			return err
		}
		if len(urls) == 0 {
			added = 0
			return nil
		}
		// ORDER BY n: the identity column records the order entries were given in.
		tag, err := tx.Exec(ctx, `INSERT INTO frontier (source_id, url, depth, state)
			SELECT $1, x.url, x.depth, 'queued' FROM unnest($2::text[], $3::integer[]) WITH ORDINALITY AS x(url, depth, n)
			ORDER BY x.n
			ON CONFLICT (source_id, url) DO NOTHING`, sourceID, urls, depths)
		if err != nil {
			return err
		}
		added = int(tag.RowsAffected())
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("enqueue for source %d: %w", sourceID, err)
	}
	return added, nil
}

// Frontier returns the source's entries, shallowest first and in the order they were enqueued.
func (db *DB) Frontier(ctx context.Context, sourceID int64) ([]panther.FrontierEntry, error) {
	rows, err := db.pool.Query(ctx, `SELECT url, depth, state, reason FROM frontier
		WHERE source_id = $1 ORDER BY depth, seq`, sourceID)
	if err != nil {
		return nil, fmt.Errorf("frontier of source %d: %w", sourceID, unavailable(err))
	}
	defer rows.Close()
	out := []panther.FrontierEntry{}
	for rows.Next() {
		var e panther.FrontierEntry
		if err := rows.Scan(&e.URL, &e.Depth, &e.State, &e.Reason); err != nil {
			return nil, fmt.Errorf("frontier of source %d: %w", sourceID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("frontier of source %d: %w", sourceID, unavailable(err))
	}
	return out, nil
}

// Finish records an entry's final state and reason. An entry that was never enqueued (a seed the
// crawler fetched directly) is added with its depth, so that the record of the run is complete.
func (db *DB) Finish(ctx context.Context, sourceID int64, e panther.FrontierEntry) error {
	if e.URL == "" {
		return panther.Invalidf("finish: url is empty")
	}
	if err := checkKey("finish: url", e.URL); err != nil {
		return err
	}
	switch e.State {
	case panther.FrontierQueued, panther.FrontierDone, panther.FrontierSkipped, panther.FrontierFailed:
	default:
		return panther.Invalidf("finish %s: unknown state %q", e.URL, e.State)
	}
	err := retry(ctx, func() error {
		_, err := db.pool.Exec(ctx, `INSERT INTO frontier (source_id, url, depth, state, reason) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (source_id, url) DO UPDATE SET state = excluded.state, reason = excluded.reason`,
			sourceID, e.URL, min(max(e.Depth, 0), 1<<30), string(e.State), text(e.Reason))
		if isForeignKey(err, "frontier_source_fk") {
			return panther.NotFoundf("source %d", sourceID)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("finish %s for source %d: %w", e.URL, sourceID, err)
	}
	return nil
}

// ResetFrontier forgets the source's run.
func (db *DB) ResetFrontier(ctx context.Context, sourceID int64) error {
	err := retry(ctx, func() error {
		_, err := db.pool.Exec(ctx, `DELETE FROM frontier WHERE source_id = $1`, sourceID)
		return err
	})
	if err != nil {
		return fmt.Errorf("reset frontier of source %d: %w", sourceID, err)
	}
	return nil
}
