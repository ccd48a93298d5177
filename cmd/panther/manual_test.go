package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pgManual returns the PostgreSQL manual's folder. scripts/test.sh installs it and sets
// PANTHER_TEST_PGDOCS, which turns a missing manual into a failure instead of a skip.
func pgManual(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PANTHER_TEST_PGDOCS")
	required := dir != ""
	if dir == "" {
		dir = "/usr/share/doc/postgresql-doc-15/html"
	}
	if _, err := os.Stat(filepath.Join(dir, "bookindex.html")); err != nil {
		if required {
			t.Fatalf("PANTHER_TEST_PGDOCS=%s but the manual is not there: %v", dir, err)
		}
		t.Skipf("the PostgreSQL manual is not installed (scripts/setup.sh installs it)")
	}
	return dir
}

// TestPostgresManualQuality crawls the whole PostgreSQL manual over loopback HTTP and holds search
// quality on the manual's own book index to the figures the project promises.
func TestPostgresManualQuality(t *testing.T) {
	if testing.Short() {
		t.Skip("crawls 1,171 pages")
	}
	dir := pgManual(t)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	c := newCLI(t)

	var sum crawlSummaryJSON
	c.mustJSON(&sum, "crawl", srv.URL+"/index.html", "--json")
	if sum.Fetched < 1100 || len(sum.Failed) != 0 {
		t.Fatalf("crawl of the manual: %+v", sum)
	}

	var res searchJSON
	c.mustJSON(&res, "search", "--json", "partial index")
	if len(res.Hits) == 0 || !strings.HasSuffix(res.Hits[0].URL, "/indexes-partial.html") {
		t.Errorf("search \"partial index\": top hit %+v, want indexes-partial.html", res.Hits)
	}

	var report struct {
		Queries int
		Page    map[string]float64
		Section map[string]float64
	}
	c.mustJSON(&report, "eval", "--qrels", "../../bench/testdata/pg15-bookindex.qrels.jsonl", "--base", srv.URL+"/", "--json")
	t.Logf("book-index eval over %d queries: page %v, section %v", report.Queries, report.Page, report.Section)
	if report.Queries < 2000 {
		t.Errorf("only %d queries evaluated", report.Queries)
	}
	// Floors just under the figures measured and recorded in BENCHMARKS.md, so that a change that
	// costs retrieval quality fails here. The issue aims at page-level recall@10 0.95, not reached yet.
	floors := []struct {
		level, metric string
		min           float64
	}{
		{"page", "recall@10", 0.93}, {"page", "mrr@10", 0.80},
		{"section", "recall@10", 0.86}, {"section", "mrr@10", 0.75},
	}
	for _, f := range floors {
		m := report.Page
		if f.level == "section" {
			m = report.Section
		}
		if m[f.metric] < f.min {
			t.Errorf("%s-level %s %.3f, want at least %.2f", f.level, f.metric, m[f.metric], f.min)
		}
	}
}
