package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"panther"
)

// reliabilityDoc is page i of the storage tests, with n passages of filler.
func reliabilityDoc(i, n int) (panther.Document, []panther.Chunk) {
	url := fmt.Sprintf("https://docs.example.org/p%d.html", i)
	var chunks []panther.Chunk
	for j := range n {
		text := fmt.Sprintf("Page %d passage %d. %s", i, j, strings.Repeat(fmt.Sprintf("widget%d gear%d shaft ", i, j), 40))
		chunks = append(chunks, panther.Chunk{Ordinal: j, Heading: []string{fmt.Sprintf("Page %d", i)}, Anchor: fmt.Sprintf("s%d", j), Text: text, Tokens: 200})
	}
	return panther.Document{URL: url, Title: fmt.Sprintf("Page %d", i), Markdown: "# Page",
		Validators: panther.Validators{ContentHash: fmt.Sprintf("h%d-%d", i, n)}, FetchedAt: time.Now()}, chunks
}

func countDocs(t *testing.T, db *DB) int {
	t.Helper()
	var n int
	if err := db.read.QueryRow(`SELECT count(*) FROM documents`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFullDatabase fills a database to its page limit (PRAGMA max_page_count, which SQLite reports
// as a full disk would be): the write that does not fit fails with an error naming the file, and
// neither it nor a failed replacement loses or changes what was stored.
func TestFullDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "full.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pages int
	if err := db.write.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	// The write pool is one connection kept for good, so the limit holds for every later write.
	if _, err := db.write.Exec(fmt.Sprintf(`PRAGMA max_page_count = %d`, pages+60)); err != nil {
		t.Fatal(err)
	}
	var full error
	stored := 0
	for i := range 1000 {
		doc, chunks := reliabilityDoc(i, 4)
		if _, err := db.PutDocument(ctx, doc, chunks); err != nil {
			full = err
			break
		}
		stored++
	}
	if full == nil {
		t.Fatal("1000 pages fitted in 60 database pages")
	}
	if !errors.Is(full, panther.ErrUnavailable) || !strings.Contains(full.Error(), "database or disk is full") || !strings.Contains(full.Error(), path) {
		t.Errorf("the write that did not fit: %v; want ErrUnavailable saying the database or disk is full and naming %s", full, path)
	}
	if n := countDocs(t, db); n != stored {
		t.Errorf("%d documents stored, want the %d whose writes succeeded", n, stored)
	}
	if err := db.Check(ctx); err != nil {
		t.Errorf("after the failed write: %v", err)
	}

	// Replacing a stored page with a bigger version fails too, and leaves the old version whole.
	old, err := db.Document(ctx, "https://docs.example.org/p0.html")
	if err != nil {
		t.Fatal(err)
	}
	oldChunks, err := db.Chunks(ctx, old.ID)
	if err != nil {
		t.Fatal(err)
	}
	doc, chunks := reliabilityDoc(0, 40)
	if _, err := db.PutDocument(ctx, doc, chunks); err == nil || !errors.Is(err, panther.ErrUnavailable) {
		t.Fatalf("a replacement too big to fit: %v", err)
	}
	if again, err := db.Document(ctx, old.URL); err != nil || again.ContentHash != old.ContentHash {
		t.Errorf("after a failed replacement the page is %+v, %v; want the old version", again.Validators, err)
	}
	if again, err := db.Chunks(ctx, old.ID); err != nil || len(again) != len(oldChunks) {
		t.Errorf("after a failed replacement the page has %d passages (%v), want %d", len(again), err, len(oldChunks))
	}
	hits, err := db.SearchLexical(ctx, panther.Query{Text: "widget0 gear1", K: 5})
	if err != nil || len(hits) == 0 {
		t.Errorf("search after the failed writes: %v, %v", hits, err)
	}
	if err := db.Check(ctx); err != nil {
		t.Errorf("after the failed replacement: %v", err)
	}
	if n := countDocs(t, db); n != stored {
		t.Errorf("%d documents stored after the failed replacement, want %d", n, stored)
	}

	// Reopened without the limit, the write goes through.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutDocument(ctx, doc, chunks); err != nil {
		t.Errorf("with room again: %v", err)
	}
}

// TestReadOnlyDatabase opens a database this process may not write: reads work, writes fail with
// an error naming the file, and nothing changes. As root, which ignores file modes, the database is
// put on a tmpfs remounted read-only; as anyone else, the file and its folder lose their write bits.
func TestReadOnlyDatabase(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "kb")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	root := os.Geteuid() == 0
	if root {
		if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=8m"); err != nil {
			t.Skipf("as root, a read-only database needs a read-only mount, and mounting failed: %v", err)
		}
		t.Cleanup(func() { syscall.Unmount(dir, 0) })
	}
	path := filepath.Join(dir, "ro.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		doc, chunks := reliabilityDoc(i, 2)
		if _, err := db.PutDocument(ctx, doc, chunks); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if root {
		if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			t.Fatalf("remount read-only: %v", err)
		}
	} else {
		if err := os.Chmod(path, 0o444); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
	}

	db, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("open a read-only database: %v", err)
	}
	defer db.Close()
	if hits, err := db.SearchLexical(ctx, panther.Query{Text: "widget1 gear1", K: 3}); err != nil || len(hits) == 0 || hits[0].URL != "https://docs.example.org/p1.html" {
		t.Errorf("search: %+v, %v", hits, err)
	}
	docs, err := db.Documents(ctx, panther.DocFilter{Limit: 10})
	if err != nil || len(docs) != 3 {
		t.Errorf("documents: %d, %v", len(docs), err)
	}
	doc, chunks := reliabilityDoc(7, 2)
	_, err = db.PutDocument(ctx, doc, chunks)
	if !errors.Is(err, panther.ErrUnavailable) || !strings.Contains(err.Error(), "database "+path+" is read-only") {
		t.Errorf("a write: %v; want ErrUnavailable naming %s as read-only", err, path)
	}
	if _, err := db.AddSource(ctx, "https://new.example.org/"); !errors.Is(err, panther.ErrUnavailable) {
		t.Errorf("adding a source: %v", err)
	}
	if err := db.Optimize(ctx); err != nil {
		t.Errorf("optimize of a read-only database: %v", err)
	}
	if err := db.Check(ctx); err != nil {
		t.Errorf("check: %v", err)
	}
	if n := countDocs(t, db); n != 3 {
		t.Errorf("%d documents, want 3", n)
	}
}

// TestOpenAndReadBesideAWriter holds the write lock from another connection, as a crawl in another
// process does between its writes: opening and searching do not wait for it, and a write that waits
// longer than the busy timeout fails with an error naming the file, then succeeds once the lock is
// free.
func TestOpenAndReadBesideAWriter(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "busy.db")
	first, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	doc, chunks := reliabilityDoc(1, 2)
	if _, err := first.PutDocument(ctx, doc, chunks); err != nil {
		t.Fatal(err)
	}

	raw, err := sql.Open("sqlite", dsn(path, DefaultBusyTimeout, false))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	holder, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}

	// A short busy timeout: were opening to need the write lock, it would fail here.
	db, err := OpenWith(ctx, path, Options{BusyTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("open beside a writer: %v", err)
	}
	defer db.Close()
	if hits, err := db.SearchLexical(ctx, panther.Query{Text: "widget1", K: 3}); err != nil || len(hits) == 0 {
		t.Errorf("search beside a writer: %v, %v", hits, err)
	}
	doc2, chunks2 := reliabilityDoc(2, 2)
	_, err = db.PutDocument(ctx, doc2, chunks2)
	if !errors.Is(err, panther.ErrUnavailable) || !strings.Contains(err.Error(), "database "+path+" is busy") {
		t.Errorf("a write that outwaited the busy timeout: %v; want ErrUnavailable naming %s as busy", err, path)
	}
	if _, err := holder.ExecContext(ctx, `COMMIT`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutDocument(ctx, doc2, chunks2); err != nil {
		t.Errorf("the write once the lock is free: %v", err)
	}
	if n := countDocs(t, db); n != 2 {
		t.Errorf("%d documents, want 2", n)
	}
}
