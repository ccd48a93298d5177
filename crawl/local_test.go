package crawl

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"panther"
)

// copyDir copies the testdata site into a temporary folder the test may change.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestLocalFolder(t *testing.T) {
	root := copyDir(t, "testdata/site")
	outside := filepath.Join(t.TempDir(), "outside.html")
	os.WriteFile(outside, []byte("<html><body><p>outside</p></body></html>"), 0o644)
	if err := os.Symlink(outside, filepath.Join(root, "escape.html")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	if err := os.Symlink(filepath.Join(root, "sub"), filepath.Join(root, "linkeddir")); err != nil {
		t.Fatal(err)
	}
	fileURLs := func(rels ...string) []string {
		var out []string
		for _, r := range rels {
			out = append(out, fileURL(filepath.Join(root, r)))
		}
		slices.Sort(out)
		return out
	}
	store, index := newMemStore(), newMemIndex()
	sum := crawlOnce(t, store, index, testOptions(t), root)
	want := fileURLs("index.html", "guide.md", "sub/page.html", "sub/notes.txt")
	if got := index.urls(); !slices.Equal(got, want) {
		t.Fatalf("indexed %q, want %q", got, want)
	}
	if sum.Failed[reasonNotFound] != 1 || sum.New != 4 {
		t.Fatalf("summary %+v, want 4 new and the broken link failed", sum)
	}
	d := index.docs[fileURL(filepath.Join(root, "guide.md"))]
	fi, _ := os.Stat(filepath.Join(root, "guide.md"))
	if d.LastModified != fi.ModTime().UTC().Format(time.RFC1123[:len(time.RFC1123)-3]+"GMT") {
		t.Fatalf("Last-Modified %q not from the file's mtime %v", d.LastModified, fi.ModTime())
	}

	// Nothing changed: no file is re-read into the index.
	ingests := index.ingests
	sum = crawlOnce(t, store, index, testOptions(t), "file://"+filepath.ToSlash(root))
	if sum.Unchanged != 4 || index.ingests != ingests {
		t.Fatalf("re-crawl %+v with %d ingests, want all unchanged", sum, index.ingests-ingests)
	}

	// A changed file and a removed one.
	later := time.Now().Add(time.Minute)
	os.WriteFile(filepath.Join(root, "sub/notes.txt"), []byte("New notes, changed since the last crawl.\n"), 0o644)
	os.Chtimes(filepath.Join(root, "sub/notes.txt"), later, later)
	os.Remove(filepath.Join(root, "guide.md"))
	sum = crawlOnce(t, store, index, testOptions(t), root)
	if sum.Changed != 1 || sum.Gone != 1 || sum.Unchanged != 2 {
		t.Fatalf("summary %+v, want 1 changed, 1 gone, 2 unchanged", sum)
	}
	if index.docs[fileURL(filepath.Join(root, "guide.md"))].Status != panther.DocGone {
		t.Fatal("removed file not marked gone")
	}

	// A single file seed crawls that file and what it links to in its own folder (not above it).
	index = newMemIndex()
	crawlOnce(t, newMemStore(), index, testOptions(t), filepath.Join(root, "sub", "page.html"))
	if got, want := index.urls(), fileURLs("sub/page.html", "sub/notes.txt"); !slices.Equal(got, want) {
		t.Fatalf("single file: indexed %q, want %q", got, want)
	}
}
