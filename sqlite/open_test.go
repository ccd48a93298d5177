package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"panther"
	"panther/sqlite"
)

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	notDB := filepath.Join(dir, "not.db")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("this is not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
	}{
		{"missing directory", filepath.Join(dir, "nope", "panther.db")},
		{"parent is a file", filepath.Join(file, "panther.db")},
		{"not a database", notDB},
		{"a directory", dir},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := sqlite.Open(t.Context(), tc.path)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%s) succeeded", tc.path)
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error %q does not name the path", err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open created the missing directory: %v", err)
	}
	if _, err := sqlite.Open(t.Context(), ""); !errors.Is(err, panther.ErrInvalid) {
		t.Errorf("Open(\"\"): %v, want ErrInvalid", err)
	}
}

func TestOpenNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "panther.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(fmt.Sprintf("PRAGMA user_version = %d", sqlite.SchemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db, err = sqlite.Open(t.Context(), path)
	if err == nil {
		db.Close()
		t.Fatal("Open of a database from a newer binary succeeded")
	}
	if !strings.Contains(err.Error(), "newer") || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q should say the schema is newer and name the path", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	// Special characters in the path must reach SQLite intact (the DSN is a file: URI).
	path := filepath.Join(t.TempDir(), "odd ?#% name.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutDocument(t.Context(), panther.Document{URL: "https://x/", Title: "Kept"}, []panther.Chunk{{Text: "persistent tapir"}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at %s: %v", path, err)
	}
	db = openAt(t, path)
	hits, err := db.SearchLexical(t.Context(), panther.Query{Text: "tapir"})
	if err != nil || len(hits) != 1 || hits[0].Title != "Kept" {
		t.Errorf("after reopen: %+v, %v", hits, err)
	}
}

func openAt(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestConcurrentOpen opens one new file from many goroutines at once, each with its own pools,
// as several processes would: migrations must run once and nobody may fail with SQLITE_BUSY.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "panther.db")
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := sqlite.Open(context.Background(), path)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			for j := 0; j < 20; j++ {
				u := fmt.Sprintf("https://x/%d/%d", i, j)
				if _, err := db.PutDocument(context.Background(), panther.Document{URL: u}, []panther.Chunk{{Text: "gecko"}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	db := openAt(t, path)
	if st, err := db.Stats(t.Context()); err != nil || st.Documents != n*20 {
		t.Errorf("Stats = %+v, %v; want %d documents", st, err, n*20)
	}
}

// TestTwoProcesses writes to one file from child processes (this test binary re-executed) and
// from this process at the same time.
func TestTwoProcesses(t *testing.T) {
	if path := os.Getenv("PANTHER_SQLITE_CHILD_DB"); path != "" {
		childWrites(t, path, os.Getenv("PANTHER_SQLITE_CHILD_ID"))
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "panther.db")
	const children, perChild = 3, 40
	var cmds []*exec.Cmd
	for i := 0; i < children; i++ {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestTwoProcesses$", "-test.count=1")
		cmd.Env = append(os.Environ(), "PANTHER_SQLITE_CHILD_DB="+path, "PANTHER_SQLITE_CHILD_ID="+strconv.Itoa(i))
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("child output:\n%s", out)
			}
		})
		cmds = append(cmds, cmd)
	}
	childWrites(t, path, "parent")
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("child: %v", err)
		}
	}
	db := openAt(t, path)
	if st, err := db.Stats(t.Context()); err != nil || st.Documents != (children+1)*perChild {
		t.Errorf("Stats = %+v, %v; want %d documents", st, err, (children+1)*perChild)
	}
	if err := db.Check(t.Context()); err != nil {
		t.Error(err)
	}
}

func childWrites(t *testing.T, path, id string) {
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for j := 0; j < 40; j++ {
		u := fmt.Sprintf("https://x/%s/%d", id, j)
		if _, err := db.PutDocument(context.Background(), panther.Document{URL: u}, []panther.Chunk{{Text: "heron " + id}}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SearchLexical(context.Background(), panther.Query{Text: "heron"}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWeights(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	put := func(url, title, text string, heading ...string) {
		if _, err := db.PutDocument(ctx, panther.Document{URL: url, Title: title, FetchedAt: time.Now()},
			[]panther.Chunk{{Text: text, Heading: heading}}); err != nil {
			t.Fatal(err)
		}
	}
	put("https://x/title", "Vacuum", "reclaims storage occupied by dead tuples")
	put("https://x/body", "Maintenance", "run vacuum regularly, vacuum is routine")
	first := func(q string) (string, float64) {
		t.Helper()
		hits, err := db.SearchLexical(ctx, panther.Query{Text: q})
		if err != nil || len(hits) == 0 {
			t.Fatalf("search %q: %v, %v", q, hits, err)
		}
		return hits[0].URL, hits[0].Score
	}
	if db.Weights() != sqlite.DefaultWeights {
		t.Errorf("Weights() = %+v, want defaults", db.Weights())
	}
	if u, _ := first("vacuum"); u != "https://x/title" {
		t.Errorf("default weights: first hit %s, want the title match", u)
	}
	if err := db.SetWeights(sqlite.Weights{Title: 0, Heading: 0, Body: 1}); err != nil {
		t.Fatal(err)
	}
	if u, _ := first("vacuum"); u != "https://x/body" {
		t.Errorf("title weight 0: first hit %s, want the body match", u)
	}
	for _, w := range []sqlite.Weights{{Title: -1}, {Body: math.NaN()}, {Heading: math.Inf(1)}, {Keywords: 2e6}} {
		if err := db.SetWeights(w); !errors.Is(err, panther.ErrInvalid) {
			t.Errorf("SetWeights(%+v): %v, want ErrInvalid", w, err)
		}
	}
}

func TestCheckAfterEverything(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	for i := 0; i < 50; i++ {
		u := fmt.Sprintf("https://x/%d", i%10)
		if _, err := db.PutDocument(ctx, panther.Document{URL: u, Title: fmt.Sprintf("T%d", i)},
			[]panther.Chunk{{Text: fmt.Sprintf("v%d a", i), Heading: []string{"H", strconv.Itoa(i)}}, {Text: "b"}}); err != nil {
			t.Fatal(err)
		}
		switch i % 4 {
		case 1:
			if err := db.MarkGone(ctx, u, time.Now()); err != nil {
				t.Fatal(err)
			}
		case 2:
			if err := db.Touch(ctx, u, panther.Validators{ContentHash: "h"}, time.Now()); err != nil {
				t.Fatal(err)
			}
		case 3:
			if err := db.DeleteDocument(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Check(ctx); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
}
