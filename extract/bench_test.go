package extract

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"panther/internal/cputime"
)

const pgManual = "/usr/share/doc/postgresql-doc-15/html"

type testPage struct {
	url  *url.URL
	body []byte
}

func loadManual(tb testing.TB) []testPage {
	files, _ := filepath.Glob(filepath.Join(pgManual, "*.html"))
	if len(files) == 0 {
		tb.Skip("PostgreSQL manual not installed at " + pgManual)
	}
	pages := make([]testPage, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		pages = append(pages, testPage{&url.URL{Scheme: "file", Path: f}, b})
	}
	return pages
}

// BenchmarkExtractPostgresManual extracts every page of the PostgreSQL manual per iteration.
func BenchmarkExtractPostgresManual(b *testing.B) {
	pages := loadManual(b)
	var size int64
	for _, p := range pages {
		size += int64(len(p.body))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Used().Seconds()
	for b.Loop() {
		for _, p := range pages {
			if _, err := Extract(p.url, "text/html", p.body); err != nil {
				b.Fatal(err)
			}
		}
	}
	sec := b.Elapsed().Seconds()
	if sec > 0 {
		b.ReportMetric(float64(b.N*len(pages))/sec, "pages/s")
		b.ReportMetric(sec*1e3/float64(b.N*len(pages)), "ms/page")
	}
	if cpu := cputime.Used().Seconds() - cpu0; cpu > 0 {
		b.ReportMetric(cpu*1e3/float64(b.N*len(pages)), "cpu-ms/page")
	}
}
