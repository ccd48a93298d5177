package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"panther"
	"panther/sqlite"
	"panther/storetest"
)

func openTemp(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "panther.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) panther.Store {
		db := openTemp(t)
		// Registered after openTemp's Close, so it runs first: every subtest must leave the
		// full-text index exactly in step with the chunks of current documents.
		t.Cleanup(func() {
			if err := db.Check(context.Background()); err != nil {
				t.Error(err)
			}
		})
		return db
	})
}
