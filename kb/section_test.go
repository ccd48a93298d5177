package kb

import (
	"fmt"
	"strings"
	"testing"

	"panther"
)

func TestSectionMarkdownUndoesSplitting(t *testing.T) {
	var paras []string
	for i := range 60 {
		paras = append(paras, fmt.Sprintf("Paragraph %d says something about partial indexes and their predicates, at some length so that the section must be split.", i))
	}
	body := strings.Join(paras, "\n\n")
	section := "## Partial Indexes\n\n" + body
	chunks := Chunk([]panther.Section{
		{Heading: []string{"Intro"}, Level: 1, Anchor: "intro", Markdown: "# Intro\n\nOther text."},
		{Heading: []string{"Intro", "Partial Indexes"}, Level: 2, Anchor: "partial", Markdown: section},
	}, ChunkOptions{MaxTokens: 120, OverlapTokens: 30})
	parts := 0
	for _, c := range chunks {
		if c.Anchor == "partial" {
			parts++
		}
	}
	if parts < 3 {
		t.Fatalf("the section was cut into %d parts; the test wants several", parts)
	}
	if got := SectionMarkdown(chunks, "partial"); got != section {
		t.Errorf("SectionMarkdown differs from the section:\n got %q\nwant %q", got, section)
	}
	if got := SectionMarkdown(chunks, "missing"); got != "" {
		t.Errorf("unknown anchor: %q", got)
	}
}
