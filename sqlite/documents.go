package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"panther"
)

// FTS maintenance. The index is external-content, so removing rows needs the exact values that were
// indexed; both statements read them from chunks_fts_content, the same view the index is defined
// over, and must run while the document is still current and unchanged.
const (
	ftsDeleteDoc = `INSERT INTO chunks_fts(chunks_fts, rowid, title, heading, body, keywords)
		SELECT 'delete', id, title, heading, body, keywords FROM chunks_fts_content
		WHERE id IN (SELECT id FROM chunks WHERE doc_id = ?)`
	ftsInsertDoc = `INSERT INTO chunks_fts(rowid, title, heading, body, keywords)
		SELECT id, title, heading, body, keywords FROM chunks_fts_content
		WHERE id IN (SELECT id FROM chunks WHERE doc_id = ?)`
)

// PutDocument stores doc and its chunks, replacing any earlier version of the URL in one
// transaction. The document keeps its id across replacements; chunk ids are new each time.
// doc.ID, doc.Status and doc.Chunks are ignored, as are the chunks' ID and DocID.
func (db *DB) PutDocument(ctx context.Context, doc panther.Document, chunks []panther.Chunk) (int64, error) {
	if strings.TrimSpace(doc.URL) == "" {
		return 0, panther.Invalidf("put document: url is empty")
	}
	headings := make([]string, len(chunks))
	for i, c := range chunks {
		h, err := encodeHeading(c.Heading)
		if err != nil {
			return 0, fmt.Errorf("put document %s: chunk %d heading: %w", doc.URL, i, err)
		}
		headings[i] = h
	}
	var id int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if doc.SourceID != 0 {
			if err := sourceExists(ctx, tx, doc.SourceID); err != nil {
				return err
			}
		}
		st := db.put.in(ctx, tx)
		var status string
		err := st.lookup.QueryRowContext(ctx, doc.URL).Scan(&id, &status)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			err = st.insertDoc.QueryRowContext(ctx, sourceArg(doc.SourceID), doc.URL, doc.Title, doc.Markdown,
				doc.ETag, doc.LastModified, doc.ContentHash, timeArg(doc.FetchedAt), joinLinks(doc.Links)).Scan(&id)
			if err != nil {
				return fmt.Errorf("insert: %w", err)
			}
		case err != nil:
			return fmt.Errorf("look up: %w", err)
		default:
			if status == string(panther.DocCurrent) {
				if _, err := st.ftsDelete.ExecContext(ctx, id); err != nil {
					return fmt.Errorf("unindex old chunks: %w", err)
				}
			}
			if _, err := st.deleteChunks.ExecContext(ctx, id); err != nil {
				return fmt.Errorf("delete old chunks: %w", err)
			}
			_, err = st.updateDoc.ExecContext(ctx, sourceArg(doc.SourceID), doc.Title, doc.Markdown, doc.ETag,
				doc.LastModified, doc.ContentHash, timeArg(doc.FetchedAt), joinLinks(doc.Links), id)
			if err != nil {
				return fmt.Errorf("update: %w", err)
			}
		}
		for i, c := range chunks {
			if _, err := st.insertChunk.ExecContext(ctx, id, c.Ordinal, headings[i], c.Anchor, c.Text, c.Tokens, c.Navigation, c.Keywords); err != nil {
				return fmt.Errorf("insert chunk %d: %w", i, err)
			}
		}
		if len(chunks) > 0 {
			if _, err := st.ftsInsert.ExecContext(ctx, id); err != nil {
				return fmt.Errorf("index chunks: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("put document %s: %w", doc.URL, err)
	}
	return id, nil
}

// putStmts are PutDocument's statements, prepared once on the write connection: parsing them on
// every call was a measurable part of the writer's time.
type putStmts struct {
	lookup, insertDoc, updateDoc, deleteChunks, insertChunk, ftsDelete, ftsInsert *sql.Stmt
}

func preparePut(ctx context.Context, w *sql.DB) (*putStmts, error) {
	var p putStmts
	for _, s := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&p.lookup, `SELECT id, status FROM documents WHERE url = ?`},
		{&p.insertDoc, `INSERT INTO documents
			(source_id, url, title, markdown, etag, last_modified, content_hash, fetched_at, status, links)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'current', ?) RETURNING id`},
		{&p.updateDoc, `UPDATE documents SET source_id = ?, title = ?, markdown = ?, etag = ?,
			last_modified = ?, content_hash = ?, fetched_at = ?, status = 'current', gone_at = NULL, links = ?
			WHERE id = ?`},
		{&p.deleteChunks, `DELETE FROM chunks WHERE doc_id = ?`},
		{&p.insertChunk, `INSERT INTO chunks (doc_id, ordinal, heading, anchor, text, tokens, navigation, keywords) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`},
		{&p.ftsDelete, ftsDeleteDoc},
		{&p.ftsInsert, ftsInsertDoc},
	} {
		st, err := w.PrepareContext(ctx, s.sql)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("prepare %.40q: %w", s.sql, err)
		}
		*s.dst = st
	}
	return &p, nil
}

// in binds the statements to tx; on the single write connection this reuses the prepared ones.
func (p *putStmts) in(ctx context.Context, tx *sql.Tx) *putStmts {
	return &putStmts{
		lookup: tx.StmtContext(ctx, p.lookup), insertDoc: tx.StmtContext(ctx, p.insertDoc),
		updateDoc: tx.StmtContext(ctx, p.updateDoc), deleteChunks: tx.StmtContext(ctx, p.deleteChunks),
		insertChunk: tx.StmtContext(ctx, p.insertChunk), ftsDelete: tx.StmtContext(ctx, p.ftsDelete),
		ftsInsert: tx.StmtContext(ctx, p.ftsInsert),
	}
}

func (p *putStmts) close() {
	for _, s := range []*sql.Stmt{p.lookup, p.insertDoc, p.updateDoc, p.deleteChunks, p.insertChunk, p.ftsDelete, p.ftsInsert} {
		if s != nil {
			s.Close()
		}
	}
}

// Touch records an unchanged re-fetch, and brings a gone document back into search.
func (db *DB) Touch(ctx context.Context, url string, v panther.Validators, fetchedAt time.Time) error {
	if url == "" {
		return panther.Invalidf("touch: url is empty")
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		id, status, err := docStatus(ctx, tx, url)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE documents SET etag = ?, last_modified = ?, content_hash = ?,
			fetched_at = ?, status = 'current', gone_at = NULL WHERE id = ?`,
			v.ETag, v.LastModified, v.ContentHash, timeArg(fetchedAt), id)
		if err != nil {
			return err
		}
		if status != panther.DocCurrent {
			if _, err := tx.ExecContext(ctx, ftsInsertDoc, id); err != nil {
				return fmt.Errorf("index chunks: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("touch %s: %w", url, err)
	}
	return nil
}

// MarkGone takes a document out of search but keeps it and its chunks for the record. Marking a
// gone document again is a no-op that keeps the first gone time.
func (db *DB) MarkGone(ctx context.Context, url string, at time.Time) error {
	if url == "" {
		return panther.Invalidf("mark gone: url is empty")
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		id, status, err := docStatus(ctx, tx, url)
		if err != nil || status == panther.DocGone {
			return err
		}
		if _, err := tx.ExecContext(ctx, ftsDeleteDoc, id); err != nil {
			return fmt.Errorf("unindex chunks: %w", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE documents SET status = 'gone', gone_at = ? WHERE id = ?`, timeArg(at), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("mark gone %s: %w", url, err)
	}
	return nil
}

// DeleteDocument removes a document and its chunks.
func (db *DB) DeleteDocument(ctx context.Context, url string) error {
	if url == "" {
		return panther.Invalidf("delete document: url is empty")
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		id, status, err := docStatus(ctx, tx, url)
		if err != nil {
			return err
		}
		if status == panther.DocCurrent {
			if _, err := tx.ExecContext(ctx, ftsDeleteDoc, id); err != nil {
				return fmt.Errorf("unindex chunks: %w", err)
			}
		}
		// Chunks go with the document (ON DELETE CASCADE).
		_, err = tx.ExecContext(ctx, `DELETE FROM documents WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete document %s: %w", url, err)
	}
	return nil
}

func docStatus(ctx context.Context, tx *sql.Tx, url string) (int64, panther.DocStatus, error) {
	var id int64
	var status string
	err := tx.QueryRowContext(ctx, `SELECT id, status FROM documents WHERE url = ?`, url).Scan(&id, &status)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", panther.NotFoundf("document %s", url)
	}
	return id, panther.DocStatus(status), err
}

const docColumns = `d.id, d.source_id, d.url, d.title, d.etag, d.last_modified, d.content_hash, d.fetched_at,
	d.status, (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id)`

// Document returns one document with its markdown and links.
func (db *DB) Document(ctx context.Context, url string) (panther.Document, error) {
	return db.documentWhere(ctx, "document "+url, true, `d.url = ?`, url)
}

// DocumentMeta returns one document without its markdown (links included: a re-crawl of an
// unchanged page follows them).
func (db *DB) DocumentMeta(ctx context.Context, url string) (panther.Document, error) {
	return db.documentWhere(ctx, "document "+url, false, `d.url = ?`, url)
}

// DocumentByHash returns the first-stored current document with the content hash.
func (db *DB) DocumentByHash(ctx context.Context, hash string) (panther.Document, error) {
	if hash == "" {
		return panther.Document{}, panther.Invalidf("document by hash: hash is empty")
	}
	return db.documentWhere(ctx, "document with content hash "+hash, false,
		`d.content_hash = ? AND d.status = 'current' ORDER BY d.id LIMIT 1`, hash)
}

func (db *DB) documentWhere(ctx context.Context, what string, markdown bool, where string, arg string) (panther.Document, error) {
	if arg == "" {
		return panther.Document{}, panther.Invalidf("%s: empty key", strings.TrimSpace(what))
	}
	md := `''`
	if markdown {
		md = `d.markdown`
	}
	st, err := db.readStmt(ctx, `SELECT `+docColumns+`, `+md+`, d.links FROM documents d WHERE `+where)
	if err != nil {
		return panther.Document{}, fmt.Errorf("%s: %w", what, err)
	}
	row := st.QueryRowContext(ctx, arg)
	var d panther.Document
	var links string
	dest := append(docDest(&d), &d.Markdown, &links)
	var src sql.NullInt64
	var fetched sql.NullInt64
	dest[1], dest[7] = &src, &fetched
	if err := row.Scan(dest...); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return d, panther.NotFoundf("%s", what)
		}
		return d, fmt.Errorf("%s: %w", what, err)
	}
	d.SourceID, d.FetchedAt, d.Links = src.Int64, timeVal(fetched), splitLinks(links)
	return d, nil
}

// docDest lists scan targets in docColumns order; callers replace the nullable ones (1, 7).
func docDest(d *panther.Document) []any {
	return []any{&d.ID, nil, &d.URL, &d.Title, &d.ETag, &d.LastModified, &d.ContentHash, nil, &d.Status, &d.Chunks}
}

// Documents lists documents ordered by URL, without markdown or links.
func (db *DB) Documents(ctx context.Context, f panther.DocFilter) ([]panther.Document, error) {
	if f.Limit < 0 || f.Offset < 0 {
		return nil, panther.Invalidf("documents: limit and offset must not be negative (got %d, %d)", f.Limit, f.Offset)
	}
	var where []string
	var args []any
	if f.SourceID != 0 {
		where = append(where, `d.source_id = ?`)
		args = append(args, f.SourceID)
	}
	if f.URLPrefix != "" {
		// A range on the unique index instead of LIKE, which would need escaping and a full scan.
		where = append(where, `d.url >= ?`)
		args = append(args, f.URLPrefix)
		if hi, ok := prefixUpperBound(f.URLPrefix); ok {
			where = append(where, `d.url < ?`)
			args = append(args, hi)
		}
	}
	if !f.IncludeGone {
		where = append(where, `d.status = 'current'`)
	}
	q := `SELECT ` + docColumns + ` FROM documents d`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY d.url LIMIT ? OFFSET ?`
	limit := int64(f.Limit)
	if limit == 0 {
		limit = -1
	}
	args = append(args, limit, f.Offset)
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("documents: %w", err)
	}
	defer rows.Close()
	docs := []panther.Document{}
	for rows.Next() {
		var d panther.Document
		var src, fetched sql.NullInt64
		dest := docDest(&d)
		dest[1], dest[7] = &src, &fetched
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("documents: %w", err)
		}
		d.SourceID, d.FetchedAt = src.Int64, timeVal(fetched)
		docs = append(docs, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("documents: %w", err)
	}
	return docs, nil
}

// prefixUpperBound returns the smallest string greater than every string with the prefix, in
// SQLite's BINARY (bytewise) order. ok is false when there is none (all bytes 0xFF).
func prefixUpperBound(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xFF {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// Chunks returns a document's chunks in order; none (and no error) for an unknown document.
func (db *DB) Chunks(ctx context.Context, docID int64) ([]panther.Chunk, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, doc_id, ordinal, heading, anchor, text, tokens, navigation
		FROM chunks WHERE doc_id = ? ORDER BY ordinal, id`, docID)
	if err != nil {
		return nil, fmt.Errorf("chunks of document %d: %w", docID, err)
	}
	defer rows.Close()
	out := []panther.Chunk{}
	for rows.Next() {
		var c panther.Chunk
		var heading string
		if err := rows.Scan(&c.ID, &c.DocID, &c.Ordinal, &heading, &c.Anchor, &c.Text, &c.Tokens, &c.Navigation); err != nil {
			return nil, fmt.Errorf("chunks of document %d: %w", docID, err)
		}
		if c.Heading, err = decodeHeading(heading); err != nil {
			return nil, fmt.Errorf("chunks of document %d: chunk %d: %w", docID, c.ID, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chunks of document %d: %w", docID, err)
	}
	return out, nil
}

// encodeHeading writes the heading path as a JSON array without HTML escaping, so that '<' or '&'
// in a heading reach the FTS tokenizer as themselves rather than as \u003c.
func encodeHeading(h []string) (string, error) {
	if len(h) == 0 {
		return "[]", nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(h); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

func decodeHeading(s string) ([]string, error) {
	if s == "" || s == "[]" {
		return nil, nil
	}
	var h []string
	if err := json.Unmarshal([]byte(s), &h); err != nil {
		return nil, fmt.Errorf("decode heading %q: %w", s, err)
	}
	return h, nil
}

func joinLinks(links []string) string {
	var sb strings.Builder
	for _, l := range links {
		// A raw newline cannot be part of a URL; dropping such a link beats corrupting the list.
		if l == "" || strings.ContainsAny(l, "\r\n") {
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString(l)
	}
	return sb.String()
}

func splitLinks(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func sourceArg(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}
