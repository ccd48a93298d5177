package sqlite

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSchemaVersionAt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kb.db")
	if v, err := SchemaVersionAt(t.Context(), path); err != nil || v != 0 {
		t.Fatalf("a file that does not exist: %d, %v; want 0", v, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("SchemaVersionAt created the file (%v)", err)
	}
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := SchemaVersionAt(t.Context(), path); err != nil || v != SchemaVersion {
		t.Errorf("after Open: %d, %v; want %d", v, err, SchemaVersion)
	}
	if v, err := db.SchemaVersionOf(t.Context()); err != nil || v != SchemaVersion {
		t.Errorf("SchemaVersionOf: %d, %v; want %d", v, err, SchemaVersion)
	}
	notDB := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(notDB, []byte("not a database, just text that is long enough to have a header"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := SchemaVersionAt(t.Context(), notDB); err == nil {
		t.Error("a text file has a schema version")
	}
}
