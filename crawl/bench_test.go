package crawl

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

const pgManual = "/usr/share/doc/postgresql-doc-15/html"

// BenchmarkCrawlPostgresManual crawls the PostgreSQL manual (1,171 pages) from a loopback server
// through extraction into an in-memory index: "fresh" is a first crawl, "unchanged" a re-crawl where
// every page answers 304.
func BenchmarkCrawlPostgresManual(b *testing.B) {
	if _, err := os.Stat(pgManual + "/index.html"); err != nil {
		b.Skip("PostgreSQL manual not installed:", err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(pgManual)))
	defer srv.Close()
	opts := Options{MaxDepth: -1, Concurrency: 8, HostConcurrency: 8}
	seed := srv.URL + "/index.html"
	run := func(b *testing.B, store *memStore, index *memIndex) Summary {
		c, err := New(store, index, opts)
		if err != nil {
			b.Fatal(err)
		}
		sum, err := c.Run(context.Background(), seed)
		if err != nil {
			b.Fatal(err)
		}
		return sum
	}
	report := func(b *testing.B, pages int, d time.Duration) {
		b.ReportMetric(float64(pages)/d.Seconds(), "pages/s")
		b.ReportMetric(0, "ns/op")
	}
	b.Run("fresh", func(b *testing.B) {
		pages, elapsed := 0, time.Duration(0)
		var last Summary
		for b.Loop() {
			start := time.Now()
			sum := run(b, newMemStore(), newMemIndex())
			last = sum
			elapsed += time.Since(start)
			pages += sum.Fetched
			if sum.New < 1100 {
				b.Fatalf("only %d new pages: %s", sum.New, sum)
			}
		}
		report(b, pages, elapsed)
		b.Logf("last run: %s", last)
	})
	b.Run("unchanged", func(b *testing.B) {
		store, index := newMemStore(), newMemIndex()
		run(b, store, index)
		pages, elapsed := 0, time.Duration(0)
		for b.Loop() {
			start := time.Now()
			sum := run(b, store, index)
			elapsed += time.Since(start)
			pages += sum.Fetched
			if sum.Unchanged < 1100 || sum.New+sum.Changed != 0 {
				b.Fatalf("re-crawl not unchanged: %s", sum)
			}
		}
		report(b, pages, elapsed)
	})
}
