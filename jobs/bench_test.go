package jobs

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"panther/crawl"
	"panther/kb"
	"panther/sqlite"
)

const pgManual = "/usr/share/doc/postgresql-doc-15/html"

// BenchmarkCrawlManual crawls the PostgreSQL manual (1,171 pages) from a loopback server into a
// fresh store each time: "sqlite" is the embedded mode (crawl.Run, 8 at once, one process);
// "postgres-local" crawl.Run on the PostgreSQL store (no jobs); "postgres-1" one Cluster working 8 jobs at once; "postgres-2" two Clusters in this process, 8
// each, sharing the database as two `panther worker` processes would. No rate limit, no embedder.
// Results go to BENCHMARKS.md.
func BenchmarkCrawlManual(b *testing.B) {
	if _, err := os.Stat(pgManual + "/index.html"); err != nil {
		b.Skip("PostgreSQL manual not installed:", err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(pgManual)))
	defer srv.Close()
	seed := srv.URL + "/index.html"
	report := func(b *testing.B, pages int, d time.Duration) {
		b.ReportMetric(float64(pages)/d.Seconds(), "pages/s")
		b.ReportMetric(0, "ns/op")
	}
	b.Run("sqlite", func(b *testing.B) {
		pages, elapsed := 0, time.Duration(0)
		for b.Loop() {
			ctx := context.Background()
			store, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "panther.db"))
			if err != nil {
				b.Fatal(err)
			}
			svc, err := kb.New(store, kb.Options{})
			if err != nil {
				b.Fatal(err)
			}
			c, err := crawl.New(store, svc, crawl.Options{MaxDepth: -1, Concurrency: 8, HostConcurrency: 8})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			sum, err := c.Run(ctx, seed)
			elapsed += time.Since(start)
			if err != nil || sum.New < 1100 {
				b.Fatalf("crawl: %s, %v", sum, err)
			}
			pages += sum.New
			store.Close()
		}
		report(b, pages, elapsed)
	})
	b.Run("postgres-local", func(b *testing.B) {
		pages, elapsed := 0, time.Duration(0)
		for b.Loop() {
			e := newEnv(b)
			c, err := crawl.New(e.store, e.kb, crawl.Options{MaxDepth: -1, Concurrency: 8, HostConcurrency: 8})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			sum, err := c.Run(context.Background(), seed)
			elapsed += time.Since(start)
			if err != nil || sum.New < 1100 {
				b.Fatalf("crawl: %s, %v", sum, err)
			}
			pages += sum.New
		}
		report(b, pages, elapsed)
	})
	for _, n := range []int{1, 2} {
		b.Run("postgres-"+string(rune('0'+n)), func(b *testing.B) {
			pages, elapsed := 0, time.Duration(0)
			for b.Loop() {
				e := newEnv(b)
				var ws []*Cluster
				for i := range n {
					o := Options{Workers: 8, PollInterval: 100 * time.Millisecond, Logger: quiet(),
						ID: "bench-" + string(rune('a'+i)), Store: e.store, KB: e.kb,
						Crawl: crawl.Options{Timeout: 10 * time.Second}}
					c, err := NewCluster(context.Background(), e.dsn, o)
					if err != nil {
						b.Fatal(err)
					}
					if err := c.Start(context.Background()); err != nil {
						b.Fatal(err)
					}
					ws = append(ws, c)
				}
				zero := 0.0
				start := time.Now()
				st, err := ws[0].EnqueueSeed(context.Background(), seed, CrawlRequest{HostRate: &zero})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				final, err := ws[0].Follow(ctx, st.ID, nil)
				cancel()
				elapsed += time.Since(start)
				if err != nil || final.New < 1100 {
					b.Fatalf("crawl: %+v, %v", final, err)
				}
				pages += final.New
				for _, c := range ws {
					_ = c.Stop(context.Background())
					c.Close()
				}
			}
			report(b, pages, elapsed)
		})
	}
}
