package extract

import (
	"strings"
	"testing"
	"time"
)

// TestAdversarialTime feeds inputs built to trigger super-linear paths; each must finish quickly.
func TestAdversarialTime(t *testing.T) {
	const n = 1 << 20
	inputs := map[string]string{
		"nested divs":        strings.Repeat("<div>", 500) + strings.Repeat("x ", n/2),
		"many mains":         strings.Repeat("<main><p>text</p></main>", n/24),
		"nested tables":      strings.Repeat("<table><tr><td>", 150) + strings.Repeat("y ", n/2),
		"wide table":         "<table><tr><td colspan=64>a</td></tr>" + strings.Repeat("<tr><td>b</td></tr>", n/20) + "</table>",
		"unclosed b":         "<p>" + strings.Repeat("<b>x", n/4),
		"amp word":           "<p>" + strings.Repeat("&amp;", n/5),
		"long class":         `<div class="` + strings.Repeat("a", n) + `">x</div>`,
		"many headings":      strings.Repeat("<h2>h</h2><p>p</p>", n/17),
		"headings in divs":   strings.Repeat("<div id=a><h3>h</h3>", 400) + strings.Repeat("<p>z</p>", n/8),
		"lists":              strings.Repeat("<ul><li>", 200) + strings.Repeat("<br>w", n/5),
		"code in code":       strings.Repeat("<code>", 500) + strings.Repeat("c ", n/2),
		"markdown brackets":  "# " + strings.Repeat("](", n/2),
		"markdown lt":        "# " + strings.Repeat("<", n) + ">",
		"markdown fences":    strings.Repeat("```\n# x\n", n/8),
		"many links":         strings.Repeat(`<a href="/p`+"x"+`">l</a>`, n/20),
		"admonitions":        strings.Repeat(`<div class="note"><h3>Note</h3><p>t</p>`, n/40),
		"inline marks":       strings.Repeat("<em><strong><a href=x><del>", 100) + strings.Repeat("q ", n/2),
		"blockquotes":        strings.Repeat("<blockquote>", 400) + strings.Repeat("<p>q</p>", n/8),
		"nested a in h":      strings.Repeat("<h1><div>", 250) + strings.Repeat("t ", n/2),
		"single line markup": strings.Repeat("<span>", n/6),
	}
	for name, in := range inputs {
		ct := "text/html"
		if strings.HasPrefix(name, "markdown") {
			ct = "text/markdown"
		}
		start := time.Now()
		res, err := Extract(mustURL("https://e.org/x.html"), ct, []byte(in))
		d := time.Since(start)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ct == "text/html" {
			checkHTMLInvariants(t, res)
		}
		// A generous bound: the point is to catch quadratic blow-ups, which on 1 MB take minutes, not
		// to time the extractor (BenchmarkExtractPostgresManual does that). The slowest inputs here,
		// 400 levels of nesting around every line, take about 1 s on a quiet 2-core machine.
		if d > 15*time.Second {
			t.Errorf("%s: %v for %d bytes", name, d, len(in))
		}
		t.Logf("%-20s %8v  in %7d  out %7d", name, d.Round(time.Millisecond), len(in), len(res.Markdown))
	}
}
