package extract

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var fuzzTypes = []string{"text/html", "text/markdown", "text/plain", ""}

func FuzzExtract(f *testing.F) {
	files, _ := filepath.Glob("testdata/golden/*")
	for _, file := range files {
		if strings.HasSuffix(file, ".json") || strings.HasSuffix(file, ".golden.md") {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		// Small prefixes keep the fuzzer fast; the whole pages are covered by TestGolden.
		if len(b) > 4096 {
			b = b[:4096]
		}
		typ := uint8(0)
		if strings.HasSuffix(file, ".md") {
			typ = 1
		}
		f.Add(typ, b)
	}
	for _, s := range []string{
		`<div class="sect1" id="A"><div class="titlepage"><h2>T</h2></div><p>x <a href="b.html#c">l</a></p></div>`,
		"<pre><code class=\"language-go\">a ``` b</code></pre><table><tr><td>a|b</td><td colspan=3>c</td></tr></table>",
		"<ul><li>a<ol><li>b</li></ol></li></ul><blockquote><p># x</p></blockquote><dl><dt>t</dt><dd>d</dd></dl>",
		"# h\n\n```\n# no\n```\nSetext\n===\n",
		"<meta charset=latin1><p>caf\xe9</p>",
		"<base href=\"http://x/y/\"><a href=z>z</a><img src=i alt=\"[a]\">",
	} {
		f.Add(uint8(0), []byte(s))
		f.Add(uint8(1), []byte(s))
	}
	u := mustURL("https://example.org/docs/page")
	f.Fuzz(func(t *testing.T, typ uint8, body []byte) {
		ct := fuzzTypes[int(typ)%len(fuzzTypes)]
		res, err := Extract(u, ct, body)
		if err != nil {
			if ct != "" {
				t.Fatalf("%s: %v", ct, err)
			}
			return
		}
		if ct == "text/html" {
			checkHTMLInvariants(t, res)
		} else {
			checkInvariants(t, res)
		}
		if len(res.Markdown) > 4*len(body)+64<<10+1024 {
			t.Fatalf("markdown of %d bytes from %d", len(res.Markdown), len(body))
		}
	})
}
