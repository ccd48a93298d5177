package crawl

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"panther/sqlite"
)

// TestResumeSQLite runs the resume test against the real embedded store.
func TestResumeSQLite(t *testing.T) {
	for _, maxPages := range []int{0, 40} {
		db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "panther.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		testResume(t, db, maxPages)
	}
}

// BenchmarkCrawlPostgresManualSQLiteFrontier is the fresh crawl of BenchmarkCrawlPostgresManual with
// the frontier in the real embedded store, to see what its per-page writes cost.
func BenchmarkCrawlPostgresManualSQLiteFrontier(b *testing.B) {
	if _, err := os.Stat(pgManual + "/index.html"); err != nil {
		b.Skip("PostgreSQL manual not installed:", err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(pgManual)))
	defer srv.Close()
	pages, elapsed := 0, time.Duration(0)
	for b.Loop() {
		db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "panther.db"))
		if err != nil {
			b.Fatal(err)
		}
		c, err := New(db, newMemIndex(), Options{MaxDepth: -1, Concurrency: 8, HostConcurrency: 8})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		sum, err := c.Run(context.Background(), srv.URL+"/index.html")
		elapsed += time.Since(start)
		db.Close()
		if err != nil {
			b.Fatal(err)
		}
		pages += sum.Fetched
	}
	b.ReportMetric(float64(pages)/elapsed.Seconds(), "pages/s")
	b.ReportMetric(0, "ns/op")
}
