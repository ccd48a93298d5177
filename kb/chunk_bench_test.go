package kb

import (
	"testing"

	"panther/internal/cputime"
)

// benchChunk reports ns/op per page (one op chunks every page once, so ns/page is ns/op / pages)
// and the shape of the result.
func benchChunk(b *testing.B, pages []corpusPage) {
	bytes, sections := 0, 0
	for _, p := range pages {
		for _, s := range p.sections {
			bytes += len(s.Markdown)
		}
		sections += len(p.sections)
	}
	chunks, tokens := 0, 0
	for _, p := range pages {
		for _, c := range Chunk(p.sections, ChunkOptions{}) {
			chunks++
			tokens += c.Tokens
		}
	}
	b.SetBytes(int64(bytes))
	b.ResetTimer()
	cpu0 := cputime.Used()
	for b.Loop() {
		for _, p := range pages {
			Chunk(p.sections, ChunkOptions{})
		}
	}
	b.ReportMetric(float64((cputime.Used()-cpu0).Nanoseconds())/float64(b.N*len(pages)), "cpu-ns/page")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pages)), "ns/page")
	b.ReportMetric(float64(chunks)/float64(len(pages)), "chunks/page")
	b.ReportMetric(float64(tokens)/float64(chunks), "tokens/chunk")
	b.ReportMetric(float64(bytes)/float64(len(pages)), "bytes/page")
}

// BenchmarkChunkPostgresManual chunks the PostgreSQL 15 manual (Debian's postgresql-doc-15), the
// project's reference corpus, converted by the crude walk in corpus_test.go.
func BenchmarkChunkPostgresManual(b *testing.B) { benchChunk(b, pgPages(b, 0)) }

// BenchmarkChunkGoDocs chunks the markdown files of the Go tree.
func BenchmarkChunkGoDocs(b *testing.B) { benchChunk(b, goDocPages(b)) }

// BenchmarkChunkSynthetic chunks the adversarial pages (CJK, huge code and tables, minified lines).
func BenchmarkChunkSynthetic(b *testing.B) { benchChunk(b, syntheticPages()) }

// BenchmarkCountTokens is the exact tokenizer the chunker avoids, for scale.
func BenchmarkCountTokens(b *testing.B) {
	pages := goDocPages(b)
	var all []string
	n := 0
	for _, p := range pages {
		for _, s := range p.sections {
			all = append(all, s.Markdown)
			n += len(s.Markdown)
		}
	}
	b.SetBytes(int64(n))
	cpu0 := cputime.Used()
	for b.Loop() {
		for _, s := range all {
			countTokens(s)
		}
	}
	b.ReportMetric(float64(n*b.N)/float64((cputime.Used()-cpu0).Microseconds()), "cpu-MB/s")
}

// BenchmarkCountTokensPackage is the tokenizer package's own Count on the same text.
func BenchmarkCountTokensPackage(b *testing.B) {
	c, err := cl100k()
	if err != nil {
		b.Fatal(err)
	}
	pages := goDocPages(b)
	var all []string
	n := 0
	for _, p := range pages {
		for _, s := range p.sections {
			all = append(all, s.Markdown)
			n += len(s.Markdown)
		}
	}
	b.SetBytes(int64(n))
	cpu0 := cputime.Used()
	for b.Loop() {
		for _, s := range all {
			if _, err := c.Count(s); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n*b.N)/float64((cputime.Used()-cpu0).Microseconds()), "cpu-MB/s")
}

func BenchmarkEstimateTokens(b *testing.B) {
	pages := goDocPages(b)
	var all []string
	n := 0
	for _, p := range pages {
		for _, s := range p.sections {
			all = append(all, s.Markdown)
			n += len(s.Markdown)
		}
	}
	b.SetBytes(int64(n))
	cpu0 := cputime.Used()
	for b.Loop() {
		for _, s := range all {
			estimateTokens(s)
		}
	}
	b.ReportMetric(float64(n*b.N)/float64((cputime.Used()-cpu0).Microseconds()), "cpu-MB/s")
}
