package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// cli runs panther in-process with a fixed environment and returns its exit code and output.
type cli struct {
	t   *testing.T
	env map[string]string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	dir := t.TempDir()
	return &cli{t: t, env: map[string]string{
		"PANTHER_DB": filepath.Join(dir, "kb", "panther.db"),
		"HOME":       dir,
	}}
}

func (c *cli) run(args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut, func(k string) string { return c.env[k] })
	return code, out.String(), errOut.String()
}

// mustJSON runs a command that must succeed and decodes its --json output into v.
func (c *cli) mustJSON(v any, args ...string) {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code != 0 {
		c.t.Fatalf("panther %s: exit %d, stderr: %s", strings.Join(args, " "), code, errOut)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("panther %s: stdout is not one JSON document: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestExitCodesAndErrors(t *testing.T) {
	c := newCLI(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string // a part of the one-line error on stderr
	}{
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"unknown flag", []string{"search", "--frob", "x"}, 2, "unknown flag"},
		{"search without query", []string{"search"}, 2, "expects a QUERY"},
		{"search with bad k", []string{"search", "--k", "-3", "x"}, 2, "k must be between"},
		{"crawl without seed", []string{"crawl"}, 2, "expects one SEED"},
		{"crawl with bad regexp", []string{"crawl", "--include", "([", "/tmp"}, 2, "--include"},
		{"crawl with negative max-pages", []string{"crawl", "--max-pages", "-1", "/tmp"}, 2, "--max-pages"},
		{"eval without qrels", []string{"eval"}, 2, "--qrels"},
		{"eval with missing qrels file", []string{"eval", "--qrels", "/nonexistent/q.jsonl"}, 2, "/nonexistent/q.jsonl"},
		{"postgres unreachable", []string{"--db", "postgres://u:secret@127.0.0.1:1/db?connect_timeout=5", "status"}, 1, "127.0.0.1:1/db"},
		{"postgres URL that does not parse", []string{"--db", "postgresql://u:secret@h:port/db", "status"}, 2, "does not parse"},
		{"postgres password in a parameter", []string{"--db", "postgres://u@127.0.0.1:1/db?password=secret&connect_timeout=5", "migrate"}, 1, "127.0.0.1:1/db"},
		{"export without a destination", []string{"export"}, 2, "--to"},
		{"import from a missing file", []string{"import", "--from", "/nonexistent/kb.db"}, 1, "no knowledge base at /nonexistent/kb.db"},
		{"import with a bad batch", []string{"import", "--from", "x.db", "--batch", "0"}, 2, "--batch"},
		{"migrate with an argument", []string{"migrate", "now"}, 2, "expects no arguments"},
		{"unreachable seed", []string{"crawl", "--retries", "0", "--timeout", "2s", "http://127.0.0.1:1/docs/"}, 1, "nothing could be fetched"},
		{"search since what", []string{"search", "--since", "yesterdayish", "x"}, 2, "--since"},
		{"search an unknown source", []string{"search", "--source", "https://never.example/", "x"}, 1, "no source https://never.example/"},
		{"show a page that is not stored", []string{"docs", "show", "https://nowhere.example/x"}, 1, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := c.run(tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.wantCode, errOut)
			}
			if !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr %q does not mention %q", errOut, tt.wantErr)
			}
			if strings.Count(strings.TrimRight(errOut, "\n"), "\n") != 0 {
				t.Errorf("error is not one line: %q", errOut)
			}
			if strings.Contains(errOut, "secret") {
				t.Errorf("stderr leaks a password: %q", errOut)
			}
		})
	}
}

// copySite copies testdata/site into a temporary folder the test may change.
func copySite(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir("testdata/site", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("testdata/site", p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestCrawlSearchRecrawlOverHTTP(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) { testCrawlSearchRecrawl(t, newCLIOn(t, kind)) })
	}
}

func testCrawlSearchRecrawl(t *testing.T, c *cli) {
	site := copySite(t)
	srv := httptest.NewServer(http.FileServer(http.Dir(site)))
	defer srv.Close()

	var sum crawlSummaryJSON
	c.mustJSON(&sum, "crawl", srv.URL+"/index.html", "--json")
	if sum.New != 3 || sum.Fetched != 3 {
		t.Fatalf("first crawl: %+v, want 3 new pages", sum)
	}

	var res searchJSON
	c.mustJSON(&res, "search", "--json", "zebra-striped quantum gizmo")
	if len(res.Hits) == 0 {
		t.Fatal("search found nothing for a phrase on the install page")
	}
	top := res.Hits[0]
	if top.URL != srv.URL+"/guide/install.html" || top.Anchor != "INSTALL-REQUIREMENTS" || !strings.Contains(top.Heading, "Requirements") {
		t.Errorf("top hit %+v, want the Requirements section of install.html", top)
	}
	if top.FetchedAt.IsZero() || top.ContentHash == "" || top.Snippet == "" {
		t.Errorf("top hit lacks its citation fields: %+v", top)
	}

	var list struct{ Documents []struct{ URL, Title string } }
	c.mustJSON(&list, "docs", "list", "--json")
	if len(list.Documents) != 3 {
		t.Fatalf("docs list: %d documents, want 3", len(list.Documents))
	}
	code, md, errOut := c.run("docs", "show", srv.URL+"/guide/tuning.html")
	if code != 0 {
		t.Fatalf("docs show: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"# Tuning the flux capacitor", "| flux_buffers | 128MB |", "`flux_buffers`"} {
		if !strings.Contains(md, want) {
			t.Errorf("docs show lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "Widget docs") {
		t.Errorf("docs show kept the page header:\n%s", md)
	}

	code, section, errOut := c.run("docs", "show", srv.URL+"/guide/install.html#INSTALL-REQUIREMENTS")
	if code != 0 || !strings.Contains(section, "zebra-striped") || strings.Contains(section, "Upgrading") || strings.Contains(section, "Download the tarball") {
		t.Errorf("docs show URL#anchor: exit %d (%s), want just the Requirements section:\n%s", code, errOut, section)
	}
	if code, _, errOut := c.run("docs", "show", srv.URL+"/guide/install.html#NO-SUCH-SECTION"); code != 1 || !strings.Contains(errOut, "NO-SUCH-SECTION") {
		t.Errorf("docs show with an unknown anchor: exit %d, stderr %q", code, errOut)
	}

	// Nothing changed: every page is answered from validators, nothing re-indexed.
	c.mustJSON(&sum, "crawl", srv.URL+"/index.html", "--json")
	if sum.Unchanged != 3 || sum.New+sum.Changed != 0 {
		t.Fatalf("re-crawl of an unchanged site: %+v, want 3 unchanged", sum)
	}

	// One page changes, one disappears.
	if err := os.WriteFile(filepath.Join(site, "guide", "tuning.html"), []byte(`<html><head><title>Tuning</title></head><body><h1>Tuning</h1><p>Frobnication now scales with the number of hamster wheels.</p><a href="install.html">install</a></body></html>`), 0o644); err != nil {
		t.Fatal(err)
	}
	// Last-Modified has one-second granularity: move the change clearly past the first fetch.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(site, "guide", "tuning.html"), later, later); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(site, "guide", "install.html")); err != nil {
		t.Fatal(err)
	}
	c.mustJSON(&sum, "crawl", srv.URL+"/index.html", "--json")
	if sum.Changed != 1 || sum.Gone != 1 || sum.Unchanged != 1 {
		t.Fatalf("re-crawl after a change and a removal: %+v, want 1 changed, 1 gone, 1 unchanged", sum)
	}
	c.mustJSON(&res, "search", "--json", "zebra-striped quantum gizmo")
	for _, h := range res.Hits {
		if strings.HasSuffix(h.URL, "/install.html") {
			t.Errorf("a gone page is still searched: %+v", h)
		}
	}
	c.mustJSON(&res, "search", "--json", "hamster wheels")
	if len(res.Hits) == 0 || !strings.HasSuffix(res.Hits[0].URL, "/guide/tuning.html") {
		t.Errorf("the changed page's new text is not found: %+v", res.Hits)
	}
	c.mustJSON(&res, "search", "--json", "flux buffers quarter memory")
	for _, h := range res.Hits {
		if strings.Contains(h.Snippet, "quarter") {
			t.Errorf("the changed page's old passage is still searched: %+v", h)
		}
	}
}

func TestCrawlGoDocFolderThenSearch(t *testing.T) {
	docDir := filepath.Join(runtime.GOROOT(), "doc")
	if _, err := os.Stat(filepath.Join(docDir, "go_mem.html")); err != nil {
		t.Skipf("no Go documentation at %s", docDir)
	}
	c := newCLI(t)
	var sum crawlSummaryJSON
	c.mustJSON(&sum, "crawl", docDir, "--json")
	if sum.New < 5 || len(sum.Failed) != 0 {
		t.Fatalf("crawl of %s: %+v", docDir, sum)
	}
	var res searchJSON
	c.mustJSON(&res, "search", "--json", "--k", "3", "happens before synchronization")
	if len(res.Hits) == 0 || !strings.HasSuffix(res.Hits[0].URL, "/go_mem.html") {
		t.Fatalf("search for the memory model's subject: %+v", res.Hits)
	}
	if res.Hits[0].Anchor == "" {
		t.Errorf("the top hit has no section anchor: %+v", res.Hits[0])
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"36h", now.Add(-36 * time.Hour)},
		{"7d", now.AddDate(0, 0, -7)},
		{"2026-11-01T10:00:00Z", time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		got, err := parseSince(tt.in, now)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if got, err := parseSince("2026-11-01", now); err != nil || got.Year() != 2026 || got.Day() != 1 {
		t.Errorf("a date: %v, %v", got, err)
	}
	for _, bad := range []string{"", "-3d", "soon", "-1h"} {
		if _, err := parseSince(bad, now); err == nil {
			t.Errorf("parseSince(%q) accepted", bad)
		}
	}
}
