package postgres

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestOptimizeAndSchemaVersionAt(t *testing.T) {
	dsn := freshDSN(t)
	if v, err := SchemaVersionAt(t.Context(), dsn); err != nil || v != 0 {
		t.Fatalf("schema version of an empty schema: %d, %v", v, err)
	}
	db, err := OpenWith(t.Context(), dsn, Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := SchemaVersionAt(t.Context(), dsn); err != nil || v != SchemaVersion {
		t.Fatalf("schema version after Open: %d, %v; want %d", v, err, SchemaVersion)
	}
	if err := db.Optimize(t.Context()); err != nil {
		t.Fatalf("optimize: %v", err)
	}
	// Another session holding the lock ANALYZE needs (its own ANALYZE, a VACUUM) does not make
	// Optimize fail or wait for it.
	tx, err := db.pool.BeginTx(t.Context(), pgx.TxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(t.Context())
	if _, err := tx.Exec(t.Context(), `LOCK TABLE chunks IN SHARE UPDATE EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	if err := db.Optimize(t.Context()); err != nil {
		t.Fatalf("optimize while another session analyses: %v", err)
	}
	if _, err := SchemaVersionAt(t.Context(), "postgres://u:pw-hidden@h:port/db"); err == nil || strings.Contains(err.Error(), "pw-hidden") {
		t.Errorf("a DSN that does not parse: %v", err)
	}
}
