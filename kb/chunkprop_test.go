package kb

import (
	"strings"
	"testing"
	"unicode/utf8"

	"panther"
)

// checkChunks asserts the invariants every chunk of every section of real documentation keeps.
func checkChunks(t *testing.T, name string, sections []panther.Section, chunks []panther.Chunk, opts ChunkOptions) {
	t.Helper()
	opts = opts.normalized()
	for i, c := range chunks {
		if n := countTokens(c.Text); n > opts.MaxTokens {
			t.Errorf("%s: chunk %d (%v) has %d tokens > %d:\n%.300s", name, i, c.Heading, n, opts.MaxTokens, c.Text)
		}
		// Every part repeats its heading line unless the line takes over a quarter of the limit, which
		// documentation's headings never do (FuzzChunk found parts without it under such a heading).
		if len(c.Heading) > 0 && !strings.HasPrefix(c.Text, "#") {
			t.Errorf("%s: chunk %d (%v) does not start with a heading line:\n%.200s", name, i, c.Heading, c.Text)
		}
		// A line too long for a chunk is cut between words, and a cut before a run of backticks in
		// the middle of a line makes the next part look like it opens a fence (FuzzChunk); lines of
		// documentation are short enough that fences only ever close.
		if !fencesBalanced(c.Text) {
			t.Errorf("%s: chunk %d has an unclosed fence:\n%s", name, i, c.Text)
		}
	}
	checkChunkShapes(t, name, chunks)
}

// checkChunkShapes asserts what holds for any input. The token bound, the repeated heading line and
// closed fences do not (see checkChunks); of the token bound: small blocks are sized
// by an estimate that is conservative on documentation (TestEstimateIsConservative) but not on any
// text (FuzzChunk found a chunk of 37 tokens under a limit of 36, from "000000aaa Barb Barb … (bAdaAA",
// kept as a seed).
func checkChunkShapes(t *testing.T, name string, chunks []panther.Chunk) {
	t.Helper()
	for i, c := range chunks {
		if c.Ordinal != i {
			t.Errorf("%s: chunk %d has ordinal %d", name, i, c.Ordinal)
		}
		if !utf8.ValidString(c.Text) {
			t.Errorf("%s: chunk %d is not valid UTF-8", name, i)
		}
		if strings.TrimSpace(c.Text) == "" {
			t.Errorf("%s: chunk %d is empty", name, i)
		}
	}
}

func fencesBalanced(md string) bool {
	in := false
	var ch byte
	var n int
	for line := range strings.Lines(md) {
		l := strings.TrimRight(line, "\n")
		if in {
			if isClosingFence(l, ch, n) {
				in = false
			}
			continue
		}
		if c, m, ok := openingFence(l); ok {
			in, ch, n = true, c, m
		}
	}
	return !in
}

func TestChunkCorpusInvariants(t *testing.T) {
	if testing.Short() {
		t.Skip("tokenizes whole corpora")
	}
	pages := append(goDocPages(t), syntheticPages()...)
	pages = append(pages, pgPages(t, 200)...)
	for _, opts := range []ChunkOptions{{}, {MaxTokens: 128, OverlapTokens: 20}, {MaxTokens: 1000, OverlapTokens: -1}} {
		for _, p := range pages {
			checkChunks(t, p.name, p.sections, Chunk(p.sections, opts), opts)
		}
	}
}

// FuzzChunk: any markdown, cut into sections at its headings and chunked at any allowed size, ends
// and keeps the invariants of checkChunkShapes (ordinals, valid UTF-8, no empty chunk). It found the
// token estimate's endless loop.
func FuzzChunk(f *testing.F) {
	f.Add("# Title\n\nSome text.\n\n## Part\n\n```go\nfunc main() {}\n```\n\nMore text after the code.", uint16(0), uint8(0))
	f.Add(strings.Repeat("word ", 3000), uint16(10), uint8(8))
	f.Add("## A\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n### B\n\n- one\n- two\n\n~~~~\n```\nnot a fence here\n~~~~", uint16(500), uint8(200))
	f.Fuzz(func(t *testing.T, md string, size uint16, overlap uint8) {
		// Extracted markdown is valid UTF-8. 8 KB spans many chunks at the smallest sizes, and keeps
		// the minimising of a large input from taking minutes (chunking itself is linear: 60 KB pages
		// of one long line took 10–65 ms, measured).
		if !utf8.ValidString(md) || len(md) > 8<<10 {
			return
		}
		opts := ChunkOptions{MaxTokens: minChunkTokens + int(size)%2000}
		opts.OverlapTokens = int(overlap) % (opts.MaxTokens/4 + 1)
		sections := markdownSections(md)
		checkChunkShapes(t, "fuzz", Chunk(sections, opts))
	})
}
