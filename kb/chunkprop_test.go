package kb

import (
	"strings"
	"testing"
	"unicode/utf8"

	"panther"
)

// checkChunks asserts the invariants every chunk of every section keeps.
func checkChunks(t *testing.T, name string, sections []panther.Section, chunks []panther.Chunk, opts ChunkOptions) {
	t.Helper()
	opts = opts.normalized()
	for i, c := range chunks {
		if c.Ordinal != i {
			t.Errorf("%s: chunk %d has ordinal %d", name, i, c.Ordinal)
		}
		if n := countTokens(c.Text); n > opts.MaxTokens {
			t.Errorf("%s: chunk %d (%v) has %d tokens > %d:\n%.300s", name, i, c.Heading, n, opts.MaxTokens, c.Text)
		}
		if !utf8.ValidString(c.Text) {
			t.Errorf("%s: chunk %d is not valid UTF-8", name, i)
		}
		if !fencesBalanced(c.Text) {
			t.Errorf("%s: chunk %d has an unclosed fence:\n%s", name, i, c.Text)
		}
		if len(c.Heading) > 0 && !strings.HasPrefix(c.Text, "#") {
			t.Errorf("%s: chunk %d (%v) does not start with a heading line:\n%.200s", name, i, c.Heading, c.Text)
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
