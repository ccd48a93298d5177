package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"panther"
)

var (
	_ panther.DocumentRemover = (*DB)(nil)
	_ panther.SourceRemover   = (*DB)(nil)
)

// ftsDeleteSource unindexes the searchable chunks of every current document of a source; like
// ftsDeleteDoc it reads the indexed values from the view the index is defined over, so it must run
// before the documents change.
const ftsDeleteSource = `INSERT INTO chunks_fts(chunks_fts, rowid, title, heading, body, keywords)
	SELECT 'delete', id, title, heading, body, keywords FROM chunks_fts_content
	WHERE id IN (SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE d.source_id = ?)`

// RemoveSource removes a source and its frontier, and with withDocuments its documents. Chunks and
// vectors go with their documents (ON DELETE CASCADE); documents kept lose their source
// (ON DELETE SET NULL).
func (db *DB) RemoveSource(ctx context.Context, id int64, withDocuments bool) error {
	if id <= 0 {
		return panther.Invalidf("remove source: id must be positive, got %d", id)
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := sourceExists(ctx, tx, id); err != nil {
			return err
		}
		if withDocuments {
			if _, err := tx.ExecContext(ctx, ftsDeleteSource, id); err != nil {
				return fmt.Errorf("unindex chunks: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM documents WHERE source_id = ?`, id); err != nil {
				return fmt.Errorf("delete documents: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM frontier WHERE source_id = ?`, id); err != nil {
			return fmt.Errorf("delete frontier: %w", err)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM sources WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove source %d: %w", id, err)
	}
	return nil
}
