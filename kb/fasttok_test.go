package kb

import (
	"strings"
	"testing"
)

var tokenizerCases = []string{
	"", " ", "  ", "\n", " \n ", "\n\n  x", "a  b", "a   \t b", "x \u00a0y", "\u00a0\u00a0z",
	"I'm you're we'VE they'LL it's 'S 'sword", "don't", "''s",
	"Hello, world!", "(word", "((word", " (x)", "\t(", "a.\n\nb", "foo;\n\n\n",
	"3.14159 2.71828 1234567890 0xDEADBEEF ²³ ½ ٣٤٥",
	"数据库索引可以提高查询速度。インデックス", "naïve café Ωmega ß", "emoji 🚀✅ → — “q” «t»",
	"```go\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n```", "    indented\n        more\n",
	"| a | b |\n|---|---|\n| 1 | 2 |", strings.Repeat("x", 300), strings.Repeat(" ", 300) + "y",
	strings.Repeat("ab1", 200), "trailing   ", "\r\n\r\nwindows\r\n", "\u2028line\u2029sep\u0085nel",
	"a\u200bb", "\u0301combining", "x\x0by\x0cz",
}

func TestFastCountMatchesTokenizer(t *testing.T) {
	c, err := cl100k()
	if err != nil {
		t.Fatal(err)
	}
	check := func(name, s string) {
		t.Helper()
		want, err := c.Count(s)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := fastCount(s)
		if !ok || got != want {
			t.Errorf("%s: fastCount(%.80q) = %d, %v; tokenizer says %d", name, s, got, ok, want)
		}
	}
	for _, s := range tokenizerCases {
		check("case", s)
	}
	if testing.Short() {
		return
	}
	pages := append(goDocPages(t), syntheticPages()...)
	pages = append(pages, pgPages(t, 100)...)
	for _, p := range pages {
		for _, s := range p.sections {
			check(p.name, s.Markdown)
		}
	}
}

func FuzzFastCount(f *testing.F) {
	for _, s := range tokenizerCases {
		f.Add(s)
	}
	c, err := cl100k()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := fastCount(s)
		if !ok {
			return // invalid UTF-8 goes to the package
		}
		want, err := c.Count(s)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("fastCount(%q) = %d; tokenizer says %d", s, got, want)
		}
	})
}
