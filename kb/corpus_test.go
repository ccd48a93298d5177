package kb

import (
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"panther"
)

// This file turns documentation found on the machine into sections for the chunking tests and
// benchmarks, without package extract (which is written separately and must not be a dependency of
// kb's tests): the Go tree's markdown files, and the PostgreSQL manual when Debian's postgresql-doc
// is installed, through a crude HTML walk that is close enough in section sizes and code blocks.

// markdownSections cuts markdown at ATX headings outside fences, as extract does.
func markdownSections(md string) []panther.Section {
	var out []panther.Section
	cur := panther.Section{}
	var path []string
	var levels []int
	var b strings.Builder
	inFence := false
	var fch byte
	var flen int
	flush := func() {
		cur.Markdown = b.String()
		if strings.TrimSpace(cur.Markdown) != "" {
			out = append(out, cur)
		}
		b.Reset()
	}
	for line := range strings.Lines(md) {
		l := strings.TrimRight(line, "\n")
		if inFence {
			if isClosingFence(l, fch, flen) {
				inFence = false
			}
			b.WriteString(line)
			continue
		}
		if ch, n, ok := openingFence(l); ok {
			inFence, fch, flen = true, ch, n
			b.WriteString(line)
			continue
		}
		if isATXHeading(l) {
			flush()
			t := strings.TrimLeft(l, " ")
			level := len(t) - len(strings.TrimLeft(t, "#"))
			text := strings.TrimSpace(strings.Trim(strings.TrimSpace(t[level:]), "#"))
			for len(levels) > 0 && levels[len(levels)-1] >= level {
				levels = levels[:len(levels)-1]
				path = path[:len(path)-1]
			}
			levels = append(levels, level)
			path = append(path, text)
			cur = panther.Section{Heading: append([]string(nil), path...), Level: level, Anchor: slug(text)}
		}
		b.WriteString(line)
	}
	flush()
	return out
}

func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		case r == ' ' || r == '-':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// htmlMarkdown renders a PostgreSQL manual page as rough markdown: headings, paragraphs, list items,
// pre blocks as fenced code, tables as pipe tables.
func htmlMarkdown(t testing.TB, path string) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := html.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	var walk func(n *html.Node)
	text := func(n *html.Node) string {
		var tb strings.Builder
		var rec func(*html.Node)
		rec = func(n *html.Node) {
			if n.Type == html.TextNode {
				tb.WriteString(n.Data)
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				rec(c)
			}
		}
		rec(n)
		return strings.Join(strings.Fields(tb.String()), " ")
	}
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.DataAtom {
			case atom.Script, atom.Style, atom.Head:
				return
			case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
				level := int(n.Data[1] - '0')
				b.WriteString("\n\n" + strings.Repeat("#", level) + " " + text(n) + "\n\n")
				return
			case atom.Pre:
				var tb strings.Builder
				var rec func(*html.Node)
				rec = func(n *html.Node) {
					if n.Type == html.TextNode {
						tb.WriteString(n.Data)
					}
					for c := n.FirstChild; c != nil; c = c.NextSibling {
						rec(c)
					}
				}
				rec(n)
				b.WriteString("\n\n```sql\n" + strings.TrimRight(tb.String(), "\n") + "\n```\n\n")
				return
			case atom.P, atom.Dt, atom.Dd:
				if tx := text(n); tx != "" {
					b.WriteString("\n\n" + tx + "\n\n")
				}
				return
			case atom.Li:
				b.WriteString("\n- " + text(n) + "\n")
				return
			case atom.Table:
				b.WriteString("\n\n")
				rows := 0
				var rec func(*html.Node)
				rec = func(n *html.Node) {
					if n.Type == html.ElementNode && n.DataAtom == atom.Tr {
						var cells []string
						for c := n.FirstChild; c != nil; c = c.NextSibling {
							if c.Type == html.ElementNode && (c.DataAtom == atom.Td || c.DataAtom == atom.Th) {
								cells = append(cells, text(c))
							}
						}
						b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
						if rows == 0 {
							b.WriteString(strings.Repeat("| --- ", len(cells)) + "|\n")
						}
						rows++
						return
					}
					for c := n.FirstChild; c != nil; c = c.NextSibling {
						rec(c)
					}
				}
				rec(n)
				b.WriteString("\n")
				return
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return b.String()
}

const pgManual = "/usr/share/doc/postgresql-doc-15/html"

type corpusPage struct {
	name     string
	sections []panther.Section
}

// goDocPages are the Go tree's markdown files.
func goDocPages(t testing.TB) []corpusPage {
	var pages []corpusPage
	root := runtime.GOROOT()
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".md") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		pages = append(pages, corpusPage{p, markdownSections(string(data))})
		return nil
	})
	if len(pages) == 0 {
		t.Skip("no markdown under GOROOT")
	}
	return pages
}

// pgPages are up to limit pages of the PostgreSQL manual, in name order (0: all); skips when absent.
func pgPages(t testing.TB, limit int) []corpusPage {
	names, _ := filepath.Glob(filepath.Join(pgManual, "*.html"))
	if len(names) == 0 {
		t.Skip("PostgreSQL manual not installed (" + pgManual + ")")
	}
	sort.Strings(names)
	if limit > 0 && len(names) > limit {
		// Spread the sample over the manual rather than taking the first pages of the alphabet.
		step := len(names) / limit
		var picked []string
		for i := 0; i < len(names) && len(picked) < limit; i += step {
			picked = append(picked, names[i])
		}
		names = picked
	}
	pages := make([]corpusPage, 0, len(names))
	for _, n := range names {
		pages = append(pages, corpusPage{n, markdownSections(htmlMarkdown(t, n))})
	}
	return pages
}

// syntheticPages are generated pages the real corpora lack: CJK prose, long unbroken lines, huge code
// blocks and tables, digits and symbols.
func syntheticPages() []corpusPage {
	cjk := strings.Repeat("数据库索引可以提高查询速度，但也会增加写入的开销。部分索引只包含满足条件的行。", 60)
	jp := strings.Repeat("インデックスは検索を速くしますが、書き込みは遅くなります。", 80)
	code := "```go\n" + strings.Repeat("func f(x int) int { return x*x + 2*x + 1 } // square plus\n", 200) + "```"
	var tbl strings.Builder
	tbl.WriteString("| name | type | default | description |\n|---|---|---|---|\n")
	for i := range 150 {
		tbl.WriteString("| param_" + strings.Repeat("x", i%7) + " | integer | 42 | Sets the number of things. |\n")
	}
	digits := strings.Repeat("3.14159265358979 2.71828182845904 1234567890 0xDEADBEEF ", 120)
	emoji := strings.Repeat("Deploy 🚀 then ✅ check → done ⚠️ careful — “quoted” «text» ", 80)
	minified := strings.Repeat("a=b+c;d=e*f;g=h(i,j);", 400)
	sec := func(h, md string) panther.Section {
		return panther.Section{Heading: []string{"Synthetic", h}, Level: 2, Anchor: slug(h), Markdown: "## " + h + "\n\n" + md}
	}
	return []corpusPage{{"synthetic", []panther.Section{
		sec("CJK", cjk), sec("Japanese", jp), sec("Code", code), sec("Table", tbl.String()),
		sec("Digits", digits), sec("Emoji", emoji), sec("Minified", minified),
	}}}
}
