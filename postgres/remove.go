package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"panther"
)

var (
	_ panther.DocumentRemover = (*DB)(nil)
	_ panther.SourceRemover   = (*DB)(nil)
)

// RemoveSource removes a source and its frontier, and with withDocuments its documents, in one
// transaction. The foreign keys do the rest: chunks and vectors go with their documents, the
// frontier with its source, and documents kept lose their source (ON DELETE SET NULL).
func (db *DB) RemoveSource(ctx context.Context, id int64, withDocuments bool) error {
	if id <= 0 {
		return panther.Invalidf("remove source: id must be positive, got %d", id)
	}
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if withDocuments {
			if _, err := tx.Exec(ctx, `DELETE FROM documents WHERE source_id = $1`, id); err != nil {
				return fmt.Errorf("delete documents: %w", err)
			}
		}
		tag, err := tx.Exec(ctx, `DELETE FROM sources WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return panther.NotFoundf("source %d", id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove source %d: %w", id, err)
	}
	return nil
}
