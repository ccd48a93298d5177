package embed

import (
	"context"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var gloveBenchTagRE = regexp.MustCompile(`(?s)<script.*?</script>|<style.*?</style>|<[^>]*>`)

// gloveBenchPassages returns 1,000 passages of about 200 tokens (150 words): from the PostgreSQL
// manual when it is installed (PANTHER_TEST_PGDOCS or Debian's path), else drawn from the vocabulary,
// so that the benchmark runs anywhere but measures real documentation where it can.
func gloveBenchPassages(b *testing.B, g *GloVe) (passages []string, source string) {
	dir := os.Getenv("PANTHER_TEST_PGDOCS")
	if dir == "" {
		dir = "/usr/share/doc/postgresql-doc-15/html"
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.html"))
	var words []string
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		words = append(words, strings.Fields(html.UnescapeString(gloveBenchTagRE.ReplaceAllString(string(raw), " ")))...)
		if len(words) >= 1000*150 {
			break
		}
	}
	source = dir
	if len(words) < 1000*150 {
		source = "synthetic"
		words = words[:0]
		for i := 0; len(words) < 1000*150; i++ {
			// Zipf-like: mostly frequent words, with identifiers and unknown words mixed in as in docs.
			w := g.t.words[(i*7919)%(1+(i*31)%20000)]
			switch i % 17 {
			case 3:
				w = "work_mem"
			case 11:
				w = fmt.Sprintf("tbl%d", i)
			}
			words = append(words, w)
		}
	}
	for i := range 1000 {
		passages = append(passages, strings.Join(words[i*150:(i+1)*150], " "))
	}
	return passages, source
}

// BenchmarkGloVeEmbed embeds 1,000 passages per iteration; passages/s and MB/s are per core.
func BenchmarkGloVeEmbed(b *testing.B) {
	g := newTestGloVe(b)
	passages, source := gloveBenchPassages(b, g)
	size := 0
	for _, p := range passages {
		size += len(p)
	}
	b.Logf("passages from %s, %.0f bytes each on average", source, float64(size)/float64(len(passages)))
	b.SetBytes(int64(size))
	b.ResetTimer()
	for b.Loop() {
		if _, err := g.Embed(context.Background(), passages); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(passages))*float64(b.N)/b.Elapsed().Seconds(), "passages/s")
}

// BenchmarkGloVeDecode is the one-off cost of the first NewGloVe in a process.
func BenchmarkGloVeDecode(b *testing.B) {
	for b.Loop() {
		if _, err := gloveDecode(gloveFile); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGloVeSimilar(b *testing.B) {
	g := newTestGloVe(b)
	g.Similar("index", 10)
	for b.Loop() {
		g.Similar("index", 10)
	}
}
