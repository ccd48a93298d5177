package kb

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"panther"
)

func sec(heading []string, level int, anchor, md string) panther.Section {
	return panther.Section{Heading: heading, Level: level, Anchor: anchor, Markdown: md}
}

func paragraphs(n int, word string) string {
	var ps []string
	for i := range n {
		ps = append(ps, fmt.Sprintf("Paragraph %d says that %s matters because of reasons number %d. It goes on to explain the %s in a second sentence.", i, word, i, word))
	}
	return strings.Join(ps, "\n\n")
}

func TestChunk(t *testing.T) {
	bigCode := "```sql title=\"x\"\n" + strings.Repeat("SELECT a, b, c FROM some_table WHERE id = 42;\n", 60) + "```"
	var tbl strings.Builder
	tbl.WriteString("| Name | Type | Description |\n| --- | --- | --- |\n")
	for i := range 60 {
		fmt.Fprintf(&tbl, "| param%d | integer | Sets how many things happen %d |\n", i, i)
	}
	cjk := strings.Repeat("部分索引只包含满足条件的行。", 80)

	tests := []struct {
		name     string
		sections []panther.Section
		opts     ChunkOptions
		check    func(t *testing.T, cs []panther.Chunk)
	}{
		{
			name:     "small section is one chunk, heading path and anchor kept",
			sections: []panther.Section{sec([]string{"Indexes", "Partial Indexes"}, 2, "indexes-partial", "## Partial Indexes\n\nA partial index covers some rows.\n")},
			check: func(t *testing.T, cs []panther.Chunk) {
				if len(cs) != 1 || cs[0].Text != "## Partial Indexes\n\nA partial index covers some rows." ||
					panther.HeadingPath(cs[0].Heading) != "Indexes > Partial Indexes" || cs[0].Anchor != "indexes-partial" || cs[0].Tokens == 0 {
					t.Fatalf("%+v", cs)
				}
			},
		},
		{
			name:     "heading line made up when the markdown lacks one",
			sections: []panther.Section{sec([]string{"A", "B"}, 3, "b", "Text only.")},
			check: func(t *testing.T, cs []panther.Chunk) {
				if len(cs) != 1 || cs[0].Text != "### B\n\nText only." {
					t.Fatalf("%+v", cs)
				}
			},
		},
		{
			name:     "text before the first heading has no heading",
			sections: []panther.Section{sec(nil, 0, "", "Intro text.\n"), sec([]string{"A"}, 1, "a", "# A\n\nBody.")},
			check: func(t *testing.T, cs []panther.Chunk) {
				if len(cs) != 2 || cs[0].Text != "Intro text." || len(cs[0].Heading) != 0 || cs[1].Ordinal != 1 {
					t.Fatalf("%+v", cs)
				}
			},
		},
		{
			name:     "blank sections are dropped",
			sections: []panther.Section{sec(nil, 0, "", "  \n\n"), sec([]string{"A"}, 1, "a", "# A\n\nBody.")},
			check: func(t *testing.T, cs []panther.Chunk) {
				if len(cs) != 1 || cs[0].Ordinal != 0 {
					t.Fatalf("%+v", cs)
				}
			},
		},
		{
			name:     "long section split with overlap, every part headed",
			sections: []panther.Section{sec([]string{"Guide", "Vacuum"}, 2, "vacuum", "## Vacuum\n\n"+paragraphs(12, "vacuuming"))},
			opts:     ChunkOptions{MaxTokens: 100, OverlapTokens: 25},
			check: func(t *testing.T, cs []panther.Chunk) {
				if len(cs) < 4 {
					t.Fatalf("%d chunks", len(cs))
				}
				for i, c := range cs {
					if !strings.HasPrefix(c.Text, "## Vacuum\n\n") || c.Anchor != "vacuum" || panther.HeadingPath(c.Heading) != "Guide > Vacuum" {
						t.Errorf("part %d: %q %v %q", i, c.Anchor, c.Heading, c.Text)
					}
					if i == 0 {
						continue
					}
					// The part starts (after its heading) with text that ended the previous part.
					body := strings.TrimPrefix(c.Text, "## Vacuum\n\n")
					first, _, _ := strings.Cut(body, "\n\n")
					if !strings.HasSuffix(cs[i-1].Text, first) {
						t.Errorf("part %d starts with %q, which does not end part %d:\n%s", i, first, i-1, cs[i-1].Text)
					}
				}
				for i := range 12 {
					if !strings.Contains(joinText(cs), fmt.Sprintf("Paragraph %d says", i)) {
						t.Errorf("paragraph %d lost", i)
					}
				}
			},
		},
		{
			name:     "no overlap when disabled",
			sections: []panther.Section{sec([]string{"V"}, 1, "v", "# V\n\n"+paragraphs(8, "x"))},
			opts:     ChunkOptions{MaxTokens: 100, OverlapTokens: -1},
			check: func(t *testing.T, cs []panther.Chunk) {
				n := 0
				for _, c := range cs {
					n += strings.Count(c.Text, "Paragraph ")
				}
				if len(cs) < 2 || n != 8 {
					t.Fatalf("%d chunks, %d paragraphs", len(cs), n)
				}
			},
		},
		{
			name: "split never falls inside a fence",
			sections: []panther.Section{sec([]string{"Ex"}, 2, "ex", "## Ex\n\n"+paragraphs(2, "a")+"\n\n```go\nfunc a() {\n\n\treturn\n\n}\n"+
				strings.Repeat("// comment line here\n", 12)+"```\n\n"+paragraphs(2, "b"))},
			opts: ChunkOptions{MaxTokens: 120, OverlapTokens: 20},
			check: func(t *testing.T, cs []panther.Chunk) {
				whole := 0
				for _, c := range cs {
					if strings.Contains(c.Text, "```go\nfunc a() {\n\n\treturn\n\n}\n") && strings.Contains(c.Text, "// comment line here\n```") {
						whole++
					}
				}
				if len(cs) < 2 || whole == 0 {
					t.Fatalf("code block not kept whole in %d chunks:\n%s", len(cs), joinText(cs))
				}
			},
		},
		{
			name:     "code block larger than the limit is re-fenced",
			sections: []panther.Section{sec([]string{"Q"}, 2, "q", "## Q\n\n"+bigCode)},
			opts:     ChunkOptions{MaxTokens: 120},
			check: func(t *testing.T, cs []panther.Chunk) {
				lines := 0
				for _, c := range cs {
					if !strings.Contains(c.Text, "```sql title=\"x\"\n") || !strings.HasSuffix(c.Text, "\n```") {
						t.Errorf("part not fenced with the original info string:\n%s", c.Text)
					}
					lines += strings.Count(c.Text, "SELECT a, b, c")
				}
				if len(cs) < 3 || lines < 60 {
					t.Fatalf("%d parts, %d lines", len(cs), lines)
				}
			},
		},
		{
			name:     "table larger than the limit repeats its header",
			sections: []panther.Section{sec([]string{"T"}, 2, "t", "## T\n\n"+tbl.String())},
			opts:     ChunkOptions{MaxTokens: 150},
			check: func(t *testing.T, cs []panther.Chunk) {
				rows := 0
				for _, c := range cs {
					if !strings.Contains(c.Text, "| Name | Type | Description |\n| --- | --- | --- |\n| param") {
						t.Errorf("part without header:\n%s", c.Text)
					}
					rows += strings.Count(c.Text, "| integer |")
				}
				if len(cs) < 3 || rows < 60 {
					t.Fatalf("%d parts, %d rows", len(cs), rows)
				}
			},
		},
		{
			name: "heading-only section goes in front of its first subsection",
			sections: []panther.Section{
				sec([]string{"Indexes"}, 1, "indexes", "# Indexes\n"),
				sec([]string{"Indexes", "Types"}, 2, "types", "## Types\n"),
				sec([]string{"Indexes", "Types", "B-Tree"}, 3, "btree", "### B-Tree\n\nB-trees handle equality and range queries."),
				sec([]string{"Indexes", "Partial"}, 2, "partial", "## Partial\n\nSome rows."),
			},
			check: func(t *testing.T, cs []panther.Chunk) {
				if len(cs) != 2 || cs[0].Text != "# Indexes\n\n## Types\n\n### B-Tree\n\nB-trees handle equality and range queries." || cs[0].Anchor != "btree" || len(cs[0].Heading) != 3 {
					t.Fatalf("%+v", cs)
				}
			},
		},
		{
			name: "heading-only section with nothing under it stays",
			sections: []panther.Section{
				sec([]string{"A"}, 2, "a", "## A"),
				sec([]string{"B"}, 2, "b", "## B\n\nText."),
				sec([]string{"B", "C"}, 3, "c", "### C"),
			},
			check: func(t *testing.T, cs []panther.Chunk) {
				if len(cs) != 3 || cs[0].Text != "## A" || cs[0].Anchor != "a" || cs[2].Text != "### C" || cs[2].Anchor != "c" {
					t.Fatalf("%+v", cs)
				}
			},
		},
		{
			name: "KeepEmptySections keeps every heading",
			sections: []panther.Section{
				sec([]string{"Indexes"}, 1, "indexes", "# Indexes"),
				sec([]string{"Indexes", "Partial"}, 2, "partial", "## Partial\n\nSome rows."),
			},
			opts: ChunkOptions{KeepEmptySections: true},
			check: func(t *testing.T, cs []panther.Chunk) {
				if len(cs) != 2 || cs[0].Text != "# Indexes" || cs[0].Anchor != "indexes" {
					t.Fatalf("%+v", cs)
				}
			},
		},
		{
			name:     "CJK text without spaces splits at sentence ends, runes intact",
			sections: []panther.Section{sec([]string{"索引"}, 2, "idx", "## 索引\n\n"+cjk)},
			opts:     ChunkOptions{MaxTokens: 100, OverlapTokens: 10},
			check: func(t *testing.T, cs []panther.Chunk) {
				if len(cs) < 5 {
					t.Fatalf("%d chunks", len(cs))
				}
				for _, c := range cs {
					body := strings.TrimPrefix(c.Text, "## 索引\n\n")
					if !utf8.ValidString(c.Text) || !strings.HasPrefix(c.Text, "## 索引\n\n") || !strings.HasPrefix(body, "部分") {
						t.Errorf("bad part %q", c.Text)
					}
				}
			},
		},
		{
			name:     "a line with no boundary is cut at tokens",
			sections: []panther.Section{sec([]string{"M"}, 2, "m", "## M\n\n"+strings.Repeat("a=b+c;d=e*f;", 300))},
			opts:     ChunkOptions{MaxTokens: 80},
			check: func(t *testing.T, cs []panther.Chunk) {
				n := 0
				for _, c := range cs {
					n += strings.Count(c.Text, "a=b+c;")
				}
				if len(cs) < 10 || n < 270 { // cuts fall inside statements
					t.Fatalf("%d chunks, %d statements", len(cs), n)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := Chunk(tt.sections, tt.opts)
			checkChunks(t, tt.name, tt.sections, cs, tt.opts)
			tt.check(t, cs)
		})
	}
}

func joinText(cs []panther.Chunk) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.Text)
		b.WriteString("\n\n")
	}
	return b.String()
}

func TestSplitBlocks(t *testing.T) {
	md := "para one\nline two\n\n~~~~ sh\necho a\n\n~~~\nstill code\n~~~~\n# Heading\ntext\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```\nunclosed\n\nstill"
	got := splitBlocks(md)
	want := []struct {
		kind blockKind
		text string
	}{
		{kindProse, "para one\nline two"},
		{kindCode, "~~~~ sh\necho a\n\n~~~\nstill code\n~~~~"},
		{kindHeading, "# Heading"},
		{kindProse, "text\n| a | b |\n|---|---|\n| 1 | 2 |"},
		{kindCode, "```\nunclosed\n\nstill"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d blocks: %+v", len(got), got)
	}
	for i := range want {
		if got[i].kind != want[i].kind || got[i].text != want[i].text {
			t.Errorf("block %d = %d %q, want %d %q", i, got[i].kind, got[i].text, want[i].kind, want[i].text)
		}
	}
}

// TestEstimateIsConservative checks the margin Chunk relies on to skip tokenizing: a section whose
// estimate is within estimateMarginPct of the limit must really be within the limit.
func TestEstimateIsConservative(t *testing.T) {
	pages := append(goDocPages(t), syntheticPages()...)
	if !testing.Short() {
		pages = append(pages, pgPages(t, 300)...)
	}
	worst := 0.0
	for _, p := range pages {
		for _, s := range p.sections {
			act := countTokens(s.Markdown)
			if act < 20 {
				continue
			}
			r := float64(act) / float64(estimateTokens(s.Markdown))
			worst = max(worst, r)
			if r*estimateMarginPct/100 > 1 {
				t.Errorf("%s %v: %d tokens, estimate %d", p.name, s.Heading, act, estimateTokens(s.Markdown))
			}
		}
	}
	t.Logf("largest tokens/estimate: %.3f", worst)
}

// TestEstimateTokensEveryByte: the estimate ends and counts something for every byte, alone and
// between words; a control character once kept it from moving on (found by FuzzChunk).
func TestEstimateTokensEveryByte(t *testing.T) {
	for b := range 256 {
		for _, s := range []string{string([]byte{byte(b)}), "word" + string([]byte{byte(b)}) + "word"} {
			if n := estimateTokens(s); n < 1 {
				t.Errorf("estimateTokens(%q) = %d", s, n)
			}
		}
	}
}
