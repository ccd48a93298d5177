package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildPanther compiles the real binary once per test that needs a separate process.
func buildPanther(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "panther")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// slowSite serves pages 0..n-1, each linking to the next ten, slowly enough that a crawl can be
// killed in the middle; it counts requests per page.
type slowSite struct {
	mu   sync.Mutex
	hits map[int]int
	n    int
}

func (s *slowSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/p/"), ".html")
	i, err := strconv.Atoi(name)
	if err != nil || i < 0 || i >= s.n {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	s.hits[i]++
	s.mu.Unlock()
	time.Sleep(15 * time.Millisecond)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<html><head><title>Page %d</title></head><body><h1 id=\"p%d\">Page %d</h1><p>Body text of page number %d about widgets.</p>", i, i, i, i)
	for j := i + 1; j <= i+10 && j < s.n; j++ {
		fmt.Fprintf(w, `<a href="/p/%d.html">next %d</a> `, j, j)
	}
	fmt.Fprint(w, "</body></html>")
}

func (s *slowSite) served() (total int, perPage map[int]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	perPage = make(map[int]int, len(s.hits))
	for k, v := range s.hits {
		perPage[k] = v
		total += v
	}
	return total, perPage
}

// TestKill9MidCrawlResumes kills a crawl with SIGKILL and checks that the database is intact and
// that the re-run finishes the crawl without fetching again the pages finished before the kill.
func TestKill9MidCrawlResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and crawls for seconds")
	}
	bin := buildPanther(t)
	site := &slowSite{hits: map[int]int{}, n: 300}
	srv := httptest.NewServer(site)
	defer srv.Close()
	db := filepath.Join(t.TempDir(), "kill.db")
	const concurrency = 4
	args := []string{"--db", db, "crawl", srv.URL + "/p/0.html", "--concurrency", strconv.Itoa(concurrency), "--json"}

	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if total, _ := site.served(); total >= 80 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the crawl did not get going")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	_, beforeKill := site.served()

	checkIntegrity(t, db)

	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("re-run after kill -9: %v", err)
	}
	var sum crawlSummaryJSON
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatalf("re-run summary: %v\n%s", err, out)
	}
	_, after := site.served()
	if len(after) != site.n {
		t.Fatalf("after the resume %d of %d pages were fetched", len(after), site.n)
	}
	refetched := 0
	for page, n := range after {
		if n > 1 {
			refetched++
		}
		if n > 2 {
			t.Errorf("page %d fetched %d times", page, n)
		}
	}
	// Only pages in flight at the kill (at most one per worker, plus one batch not yet recorded)
	// may be fetched again.
	if refetched > 2*concurrency {
		t.Errorf("%d pages fetched again after the resume (before the kill: %d pages), want at most %d", refetched, len(beforeKill), 2*concurrency)
	}
	checkIntegrity(t, db)

	var docs int
	conn := openSQL(t, db)
	if err := conn.QueryRow(`SELECT count(*) FROM documents`).Scan(&docs); err != nil {
		t.Fatal(err)
	}
	if docs != site.n {
		t.Errorf("%d documents stored, want %d", docs, site.n)
	}
}

func openSQL(t *testing.T, path string) *sql.DB {
	t.Helper()
	conn, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func checkIntegrity(t *testing.T, path string) {
	t.Helper()
	var res string
	if err := openSQL(t, path).QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil {
		t.Fatalf("integrity check: %v", err)
	}
	if res != "ok" {
		t.Fatalf("integrity check: %s", res)
	}
}
