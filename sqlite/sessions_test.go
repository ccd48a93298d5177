package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"panther"
)

// TestMigrateSessionsKeepsData upgrades a database written by a binary that knew only migrations 1
// and 2: its pages must stay searchable and sessions must work afterwards.
func TestMigrateSessionsKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v2.db")
	raw, err := sql.Open("sqlite", dsn(path, DefaultBusyTimeout, false))
	if err != nil {
		t.Fatal(err)
	}
	for v, m := range migrations[:2] {
		if _, err := raw.Exec(m); err != nil {
			t.Fatalf("migration %d: %v", v+1, err)
		}
	}
	stmts := []string{
		`PRAGMA user_version = 2`,
		`INSERT INTO documents (id, url, title, fetched_at) VALUES (1, 'https://x/old', 'Old page', 1)`,
		`INSERT INTO chunks (id, doc_id, ordinal, text) VALUES (1, 1, 0, 'an okapi from before sessions')`,
		`INSERT INTO chunks_fts(rowid, title, heading, body, keywords) SELECT id, title, heading, body, keywords FROM chunks_fts_content`,
	}
	for _, s := range stmts {
		if _, err := raw.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	raw.Close()

	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.write.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != SchemaVersion || SchemaVersion < 3 {
		t.Fatalf("schema version %d (%v), want %d ≥ 3", v, err, SchemaVersion)
	}
	hits, err := db.SearchLexical(t.Context(), panther.Query{Text: "okapi"})
	if err != nil || len(hits) != 1 || hits[0].URL != "https://x/old" {
		t.Errorf("search after the upgrade: %+v, %v", hits, err)
	}
	if err := db.Check(t.Context()); err != nil {
		t.Error(err)
	}
	s, err := db.CreateSession(t.Context(), panther.Session{Agent: "general", Title: "after the upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	msg := panther.SessionMessage{Message: panther.Message{Role: panther.RoleUser, Content: "hello"}}
	if err := db.AppendSessionMessages(t.Context(), s.ID, []panther.SessionMessage{msg}); err != nil {
		t.Fatal(err)
	}
	if got, err := db.SessionMessages(t.Context(), s.ID); err != nil || len(got) != 1 {
		t.Errorf("messages after the upgrade: %+v, %v", got, err)
	}
}

// TestSessionStatusCheck: the schema itself refuses a status the domain does not know, so that a
// bad write from elsewhere cannot make listings unreadable.
func TestSessionStatusCheck(t *testing.T) {
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, st := range []string{"running", "done", "failed", "cancelled", "paused"} {
		_, err := db.write.Exec(`INSERT INTO sessions (id, created_at, updated_at, status) VALUES (?, 1, 1, ?)`, "id-"+st, st)
		if valid := panther.SessionStatus(st).Valid(); valid != (err == nil) {
			t.Errorf("status %s: domain says valid=%v, schema says %v", st, valid, fmt.Sprint(err))
		}
	}
}
