package extract

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestExtractDispatch(t *testing.T) {
	html := []byte("<html><head><title>T</title></head><body><p>hello</p></body></html>")
	tests := []struct {
		url, ct string
		body    []byte
		want    string // "" for ErrUnsupported
	}{
		{"https://x.org/a", "text/html; charset=utf-8", html, "hello"},
		{"https://x.org/a", "application/xhtml+xml", html, "hello"},
		{"https://x.org/a.html", "", html, "hello"},
		{"https://x.org/a.html", "application/octet-stream", html, "hello"},
		{"https://x.org/", "", html, "hello"}, // sniffed
		{"https://x.org/a.md", "", []byte("# A\n\ntext"), "# A"},
		{"https://x.org/a", "text/markdown", []byte("# A\n\ntext"), "# A"},
		{"https://x.org/a", "text/x-markdown", []byte("# A\n\ntext"), "# A"},
		{"https://x.org/a.markdown", "", []byte("# A\n\ntext"), "# A"},
		{"https://x.org/a.txt", "", []byte("plain *text*"), "plain *text*"},
		{"https://x.org/a", "text/plain", []byte("plain"), "plain"},
		{"https://x.org/a.pdf", "application/pdf", []byte("%PDF"), ""},
		{"https://x.org/a.png", "", []byte("\x89PNG"), ""},
		{"https://x.org/a.html", "image/png", []byte("x"), ""},
	}
	for _, tt := range tests {
		res, err := Extract(mustURL(tt.url), tt.ct, tt.body)
		if tt.want == "" {
			if !errors.Is(err, ErrUnsupported) {
				t.Errorf("%s %q: err = %v, want ErrUnsupported", tt.url, tt.ct, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %q: %v", tt.url, tt.ct, err)
			continue
		}
		if !strings.Contains(res.Markdown, tt.want) {
			t.Errorf("%s %q: markdown %q lacks %q", tt.url, tt.ct, res.Markdown, tt.want)
		}
	}
}

// htmlCase runs one HTML snippet and checks the markdown for wanted and unwanted text.
type htmlCase struct {
	name    string
	url     string // default https://example.org/docs/page.html
	html    string
	want    []string
	notWant []string
	check   func(t *testing.T, res *Result)
}

func runHTMLCases(t *testing.T, cases []htmlCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.url
			if u == "" {
				u = "https://example.org/docs/page.html"
			}
			res, err := HTML(mustURL(u), []byte(tc.html))
			if err != nil {
				t.Fatal(err)
			}
			checkHTMLInvariants(t, res)
			for _, w := range tc.want {
				if !strings.Contains(res.Markdown, w) {
					t.Errorf("markdown lacks %q:\n%s", w, res.Markdown)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(res.Markdown, w) {
					t.Errorf("markdown has %q:\n%s", w, res.Markdown)
				}
			}
			if tc.check != nil {
				tc.check(t, res)
			}
		})
	}
}

func sectionAnchors(res *Result) []string {
	var a []string
	for _, s := range res.Sections {
		a = append(a, s.Anchor)
	}
	return a
}

func wantAnchors(want ...string) func(*testing.T, *Result) {
	return func(t *testing.T, res *Result) {
		t.Helper()
		if got := sectionAnchors(res); !slices.Equal(got, want) {
			t.Errorf("anchors = %q, want %q", got, want)
		}
	}
}

func TestAnchors(t *testing.T) {
	runHTMLCases(t, []htmlCase{
		{
			name:  "own id",
			html:  `<h1 id="top">Title</h1><p>x</p><h2 id="two">Two</h2><p>y</p>`,
			check: wantAnchors("top", "two"),
		},
		{
			name: "wrapping div (DocBook)",
			html: `<div class="sect1" id="INDEXES-PARTIAL"><div class="titlepage"><div><div><h2 class="title">11.8. Partial Indexes</h2></div></div></div><p>text</p>
				<div class="sect2" id="SUB"><div class="titlepage"><h3>Sub</h3></div><p>more</p></div></div>`,
			check: wantAnchors("INDEXES-PARTIAL", "SUB"),
		},
		{
			name:  "wrapping section, not for the second heading",
			html:  `<section id="s1"><h2>One</h2><p>a</p><h3>Two</h3><p>b</p></section>`,
			check: wantAnchors("s1", ""),
		},
		{
			name:  "inner a id and name (Sphinx, old DocBook)",
			html:  `<h2><a id="first"></a>First</h2><p>a</p><h2><a name="second">Second</a></h2><p>b</p>`,
			check: wantAnchors("first", "second"),
		},
		{
			name:  "empty a name just before",
			html:  `<a name="before"></a><h2>Heading</h2><p>a</p>`,
			check: wantAnchors("before"),
		},
		{
			name:    "permalink dropped from heading text",
			html:    `<h2 id="x">Install<a class="headerlink" href="#x" title="Permalink">¶</a></h2><p>a</p>`,
			want:    []string{"# Install\n"},
			notWant: []string{"¶"},
		},
	})
}

func TestSectionsAndTitle(t *testing.T) {
	runHTMLCases(t, []htmlCase{
		{
			name: "title tag, h2 promoted when it is the title",
			html: `<title>11.8. Partial Indexes</title><div><h2>11.8. Partial Indexes</h2><p>a</p><h3>Sub</h3><p>b</p></div>`,
			want: []string{"# 11.8. Partial Indexes\n\na\n\n### Sub\n\nb"},
			check: func(t *testing.T, res *Result) {
				if res.Title != "11.8. Partial Indexes" || len(res.Sections) != 2 {
					t.Fatalf("title %q, %d sections", res.Title, len(res.Sections))
				}
				if got := res.Sections[1].Heading; !slices.Equal(got, []string{"11.8. Partial Indexes", "Sub"}) || res.Sections[1].Level != 3 {
					t.Errorf("second section %q level %d", got, res.Sections[1].Level)
				}
			},
		},
		{
			name: "site suffix stripped from title",
			html: `<title>Install Guide | Example Docs</title><main><h2>Install Guide</h2><p>text here</p></main>`,
			check: func(t *testing.T, res *Result) {
				if res.Title != "Install Guide" {
					t.Errorf("title %q", res.Title)
				}
			},
		},
		{
			name: "first h1 wins over title tag",
			html: `<title>Something - Site</title><article><p>intro</p><h1>Real Title</h1><p>body</p></article>`,
			check: func(t *testing.T, res *Result) {
				if res.Title != "Real Title" {
					t.Errorf("title %q", res.Title)
				}
			},
		},
		{
			name: "Go doc comment title, synthesized h1",
			html: "<!--{\n\t\"Title\": \"The Go Memory Model\",\n\t\"Path\": \"/ref/mem\"\n}-->\n<h2 id=\"introduction\">Introduction</h2><p>text</p>",
			want: []string{"# The Go Memory Model\n\n## Introduction\n\ntext"},
			check: func(t *testing.T, res *Result) {
				if res.Title != "The Go Memory Model" {
					t.Errorf("title %q", res.Title)
				}
				if got := res.Sections[1].Heading; !slices.Equal(got, []string{"The Go Memory Model", "Introduction"}) {
					t.Errorf("path %q", got)
				}
			},
		},
		{
			name: "heading inside a list is bold, not a section",
			html: `<h1>T</h1><ul><li><h3>Item head</h3><p>x</p></li></ul>`,
			want: []string{"- **Item head**"},
			check: func(t *testing.T, res *Result) {
				if len(res.Sections) != 1 {
					t.Errorf("%d sections", len(res.Sections))
				}
			},
		},
	})
}

func TestBoilerplateRemoval(t *testing.T) {
	runHTMLCases(t, []htmlCase{
		{
			name: "DocBook navheader and navfooter",
			html: `<body><div class="navheader"><table><tr><th>11.8. Partial Indexes</th></tr><tr><td><a href="a.html">Prev</a></td><td><a href="b.html">Up</a></td><td><a href="index.html">Home</a></td><td><a href="c.html">Next</a></td></tr></table><hr/></div>
				<div class="sect1" id="S"><h2>11.8. Partial Indexes</h2><p>A partial index is an index built over a subset of a table.</p></div>
				<div class="navfooter"><hr/><table><tr><td><a href="a.html">Prev</a></td><td><a href="c.html">Next</a></td></tr></table></div></body>`,
			want:    []string{"A partial index"},
			notWant: []string{"Prev", "Next", "Home", "Up]"},
			check: func(t *testing.T, res *Result) {
				// The crawler still gets the navigation links.
				if len(res.Links) != 4 {
					t.Errorf("links %q", res.Links)
				}
			},
		},
		{
			name: "nav header footer aside cookie banner",
			html: `<body><header><a href="/">Logo</a><nav><a href="/docs">Docs</a></nav></header>
				<div id="cookie-consent">We use cookies. <button>Accept</button></div>
				<div class="breadcrumbs"><a href="/">Home</a> / Docs</div>
				<a class="skip-link" href="#main">Skip to content</a>
				<div class="layout"><aside class="sidebar"><ul><li><a href="/a">Menu A</a></li></ul></aside>
				<div class="content"><h1>Real Page</h1><p>This is the real content of the page, long enough to matter.</p>
				<p>Second paragraph with more words in it.</p><a href="https://github.com/x/edit/main/p.md" class="edit-this-page">Edit this page</a></div></div>
				<footer>© 2024 Example</footer><script>var x = "<p>no</p>";</script><style>p{}</style></body>`,
			want:    []string{"# Real Page", "real content", "Second paragraph"},
			notWant: []string{"cookies", "Logo", "Menu A", "Skip to", "©", "var x", "Home", "Accept", "Edit this page"},
		},
		{
			name:    "main element wins",
			html:    `<div class="top">Lots of header text that is not content at all really</div><main><h1>Doc</h1><p>content text</p></main><div>unrelated trailer text</div>`,
			want:    []string{"# Doc", "content text"},
			notWant: []string{"header text", "trailer"},
		},
		{
			name:    "Sphinx role=main and sphinxsidebar",
			html:    `<div class="related" role="navigation"><a href="genindex.html">index</a></div><div class="document"><div class="documentwrapper"><div class="bodywrapper"><div class="body" role="main"><section id="intro"><h1>Intro<a class="headerlink" href="#intro">¶</a></h1><p>Sphinx body text.</p></section></div></div></div><div class="sphinxsidebar" role="navigation"><h3>Navigation</h3></div></div><div class="footer">© Copyright</div>`,
			want:    []string{"# Intro\n\nSphinx body text."},
			notWant: []string{"index]", "Navigation", "Copyright", "¶"},
			check:   wantAnchors("intro"),
		},
		{
			name:    "MkDocs material",
			html:    `<main class="md-main"><div class="md-main__inner"><div class="md-sidebar md-sidebar--primary"><nav>Site nav</nav></div><div class="md-sidebar md-sidebar--secondary"><nav class="md-nav--secondary">Table of contents</nav></div><div class="md-content"><article class="md-content__inner md-typeset"><h1 id="setup">Setup</h1><p>MkDocs text.</p></article></div></div></main>`,
			want:    []string{"# Setup\n\nMkDocs text."},
			notWant: []string{"Site nav", "Table of contents"},
		},
		{
			name:    "hidden elements",
			html:    `<h1>T</h1><p>shown</p><p hidden>secret1</p><div style="display: none">secret2</div><span class="sr-only">secret3</span><div aria-hidden="true">secret4</div>`,
			want:    []string{"shown"},
			notWant: []string{"secret"},
		},
		{
			name: "density picks the content column without hints",
			html: `<body><div id="wrap"><div class="left"><a href="/1">one</a> <a href="/2">two</a> <a href="/3">three</a> <a href="/4">four</a></div>
				<div class="right"><h1>Article</h1><p>` + strings.Repeat("Plenty of real prose here. ", 40) + `</p></div></div></body>`,
			want:    []string{"# Article", "Plenty of real prose"},
			notWant: []string{"one]", "four]"},
		},
		{
			name: "ids derived from content are not furniture",
			html: `<div class="sect1" id="S"><h2>Comment Functions</h2><p>Intro text of the section.</p>
				<div class="table" id="FUNCTIONS-INFO-COMMENT-TABLE"><table><tr><th>Function</th></tr><tr><td>col_description</td></tr></table></div>
				<div class="table" id="PAGEHEADERDATA-TABLE"><table><tr><th>Field</th></tr><tr><td>pd_lsn</td></tr></table></div>
				<div id="comments"><p>Reader comment: great page!</p></div><div id="site-footer">Footer links</div></div>`,
			want:    []string{"col_description", "pd_lsn"},
			notWant: []string{"Reader comment", "Footer links"},
		},
		{
			name: "never empty: everything looks like boilerplate",
			html: `<body><div class="sidebar"><p>The only text on this page lives in something named sidebar.</p></div></body>`,
			want: []string{"The only text on this page"},
		},
	})
}

func TestBlocks(t *testing.T) {
	runHTMLCases(t, []htmlCase{
		{
			name: "code fence with language and backticks inside",
			html: "<h1>T</h1><pre><code class=\"language-go\">x := `raw`\n```\nfence inside\n\n\tindented</code></pre>",
			want: []string{"````go\nx := `raw`\n```\nfence inside\n\n\tindented\n````"},
		},
		{
			name: "DocBook programlisting: no language guessed, whitespace kept",
			html: "<h1>T</h1><pre class=\"programlisting\">\nSELECT *\n  FROM t   \nWHERE a &lt; 1;\n</pre>",
			want: []string{"```\nSELECT *\n  FROM t   \nWHERE a < 1;\n```"},
		},
		{
			name: "Sphinx highlight wrapper gives the language",
			html: `<h1>T</h1><div class="highlight-python notranslate"><div class="highlight"><pre><span class="k">import</span> <span class="nn">os</span></pre></div></div>`,
			want: []string{"```python\nimport os\n```"},
		},
		{
			name: "inline code with backticks",
			html: "<h1>T</h1><p>Use <code>a`b</code> and <code>`x</code> and <code>plain</code>.</p>",
			want: []string{"Use ``a`b`` and `` `x `` and `plain`."},
		},
		{
			name: "table with thead, pipes and newlines",
			html: `<h1>T</h1><div class="table"><p class="title"><strong>Table 8.2. Numeric Types</strong></p><div class="table-contents"><table class="table"><thead><tr><th>Name</th><th>Op</th></tr></thead><tbody><tr><td><code>or</code></td><td>a | b</td></tr><tr><td>multi
line</td><td><p>one</p><p>two</p></td></tr></tbody></table></div></div>`,
			want: []string{"**Table 8.2. Numeric Types**\n\n| Name | Op |\n| --- | --- |\n| `or` | a \\| b |\n| multi line | one<br>two |"},
		},
		{
			name: "table without thead, colspan repeated, rowspan carried",
			html: `<h1>T</h1><table><tr><td>a</td><td>b</td><td>c</td></tr><tr><td colspan="2">wide</td><td>z</td></tr><tr><td rowspan="2">tall</td><td>1</td><td>2</td></tr><tr><td>3</td><td>4</td></tr></table>`,
			want: []string{"| a | b | c |\n| --- | --- | --- |\n| wide | wide | z |\n| tall | 1 | 2 |\n| | 3 | 4 |"},
		},
		{
			name:    "layout table is unwrapped",
			html:    `<h1>T</h1><table><tr><td><h2>Inside</h2><p>para</p></td></tr></table>`,
			want:    []string{"## Inside\n\npara"},
			notWant: []string{"|"},
		},
		{
			name: "nested lists, ordered with start",
			html: `<h1>T</h1><ul><li>one<ul><li>one.a</li><li>one.b</li></ul></li><li>two</li></ul><ol start="3"><li>three</li><li><p>four</p><p>four more</p></li></ol>`,
			want: []string{"- one\n  - one.a\n  - one.b\n- two", "3. three\n4. four\n\n   four more"},
		},
		{
			name: "definition list (DocBook variablelist)",
			html: `<h1>T</h1><div class="variablelist"><dl class="variablelist"><dt><span class="term"><code class="literal">UNIQUE</code></span></dt><dd><p>Causes the system to check.</p></dd></dl></div>`,
			want: []string{"**`UNIQUE`**\n\nCauses the system to check."},
		},
		{
			name: "DocBook admonition",
			html: `<h1>T</h1><div class="note"><h3 class="title">Note</h3><p>Be careful.</p><p>Really.</p></div>`,
			want: []string{"> **Note**\n>\n> Be careful.\n>\n> Really."},
			check: func(t *testing.T, res *Result) {
				if len(res.Sections) != 1 {
					t.Errorf("admonition title became a section: %d", len(res.Sections))
				}
			},
		},
		{
			name: "blockquote, emphasis, strong, br, hr",
			html: `<h1>T</h1><blockquote><p>quoted <em>em</em> and <strong> strong </strong>text</p></blockquote><p>line one<br>line two</p><hr><p>after</p>`,
			want: []string{"> quoted *em* and **strong** text", "line one\nline two\n\n---\n\nafter"},
		},
		{
			name:    "empty inline elements leave nothing",
			html:    `<h1>T</h1><p>a<em> </em>b<strong></strong>c<a href="x.html"></a>d</p>`,
			want:    []string{"a bcd"},
			notWant: []string{"**", "[]"},
		},
	})
}

func TestLinks(t *testing.T) {
	runHTMLCases(t, []htmlCase{
		{
			name: "relative resolution, fragments, schemes, dedup",
			url:  "https://example.org/docs/guide/page.html",
			html: `<h1>T</h1><p><a href="other.html#sec">rel</a> <a href="/root">root</a> <a href="../up.html">up</a> <a href="#frag">frag</a>
				<a href="javascript:void(0)">js</a> <a href="mailto:a@b.c">mail</a> <a href="data:text/html,x">data</a>
				<a href="other.html">again</a> <a href="HTTPS://Other.example/x">abs</a> <a href="ftp://f/x">ftp</a>
				<img src="img/p.png" alt="A [pic]"></p>`,
			want: []string{
				"[rel](https://example.org/docs/guide/other.html#sec)",
				"[root](https://example.org/root)",
				"[up](https://example.org/docs/up.html)",
				"[frag](https://example.org/docs/guide/page.html#frag)",
				"js mail data",
				"![A \\[pic\\]](https://example.org/docs/guide/img/p.png)",
			},
			check: func(t *testing.T, res *Result) {
				want := []string{
					"https://example.org/docs/guide/other.html",
					"https://example.org/root",
					"https://example.org/docs/up.html",
					"https://other.example/x",
				}
				if !slices.Equal(res.Links, want) {
					t.Errorf("links\n got %q\nwant %q", res.Links, want)
				}
			},
		},
		{
			name: "base href",
			url:  "https://example.org/docs/page.html",
			html: `<html><head><base href="https://cdn.example.net/v2/"><link rel="canonical" href="/canon/page"></head><body><h1>T</h1><p><a href="a.html">a</a></p></body></html>`,
			want: []string{"[a](https://cdn.example.net/v2/a.html)"},
			check: func(t *testing.T, res *Result) {
				if res.Canonical != "https://cdn.example.net/canon/page" {
					t.Errorf("canonical %q", res.Canonical)
				}
			},
		},
		{
			name: "meta robots",
			html: `<html><head><meta name="ROBOTS" content="NoIndex, nofollow"></head><body><p>x</p></body></html>`,
			check: func(t *testing.T, res *Result) {
				if !res.NoIndex || !res.NoFollow {
					t.Errorf("noindex %v nofollow %v", res.NoIndex, res.NoFollow)
				}
			},
		},
		{
			name: "file URLs are links too",
			url:  "file:///usr/share/doc/x/index.html",
			html: `<p><a href="a.html">a</a> <a href="https://e.org/">e</a></p>`,
			check: func(t *testing.T, res *Result) {
				if !slices.Equal(res.Links, []string{"file:///usr/share/doc/x/a.html", "https://e.org/"}) {
					t.Errorf("links %q", res.Links)
				}
			},
		},
	})
}

func TestEscaping(t *testing.T) {
	runHTMLCases(t, []htmlCase{
		{
			name:    "line starts that would become markdown",
			html:    `<h1>T</h1><p># not a heading</p><p>- not a list</p><p>1. not ordered</p><p>&gt; not a quote</p><p>snake_case_name and 2 * 3 and a*b and &lt;div&gt;</p>`,
			want:    []string{"\\# not a heading", "\\- not a list", "\\1. not ordered", "\\> not a quote", "snake_case_name and 2 * 3 and a\\*b and \\<div>"},
			notWant: []string{"snake\\_"},
		},
	})
}

func TestCharset(t *testing.T) {
	latin1 := []byte("<html><head><meta charset=\"iso-8859-1\"><title>Caf\xe9</title></head><body><h1>Caf\xe9</h1><p>na\xefve \x93quoted\x94</p></body></html>")
	res, err := HTML(mustURL("https://e.org/"), latin1)
	if err != nil {
		t.Fatal(err)
	}
	checkHTMLInvariants(t, res)
	if res.Title != "Café" || !strings.Contains(res.Markdown, "naïve “quoted”") {
		t.Errorf("latin1: title %q markdown %q", res.Title, res.Markdown)
	}
	// Undeclared and invalid: no invalid UTF-8 leaks out.
	res, err = HTML(mustURL("https://e.org/"), []byte("<p>ok \xff\xfe bad \xc3</p>"))
	if err != nil {
		t.Fatal(err)
	}
	checkHTMLInvariants(t, res)
	// UTF-16 with BOM.
	u16 := []byte{0xFF, 0xFE}
	for _, r := range "<p>wide</p>" {
		u16 = append(u16, byte(r), 0)
	}
	res, _ = HTML(mustURL("https://e.org/"), u16)
	if !strings.Contains(res.Markdown, "wide") {
		t.Errorf("utf-16: %q", res.Markdown)
	}
}

func TestMarkdownInput(t *testing.T) {
	src := "---\ntitle: Front Title\n---\nintro\n\n# Top {#custom}\n\ntext\n\n```sh\n# not a heading\n```\n\n## Second `code`\n\nSetext\n------\n\nbody\n\n## Second `code`\n"
	res, err := Markdown(mustURL("https://e.org/doc/page.md"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, res)
	if res.Markdown != src || res.Title != "Front Title" {
		t.Errorf("markdown changed or title %q", res.Title)
	}
	type sec struct {
		path   string
		level  int
		anchor string
	}
	var got []sec
	for _, s := range res.Sections {
		got = append(got, sec{strings.Join(s.Heading, " > "), s.Level, s.Anchor})
	}
	want := []sec{
		{"", 0, ""},
		{"Top", 1, "custom"},
		{"Top > Second code", 2, "second-code"},
		{"Top > Setext", 2, "setext"},
		{"Top > Second code", 2, "second-code-1"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("sections\n got %v\nwant %v", got, want)
	}
	if !strings.Contains(res.Sections[1].Markdown, "# not a heading") {
		t.Errorf("fenced code split off: %q", res.Sections[1].Markdown)
	}

	res, _ = Markdown(mustURL("https://e.org/doc/page.md"), []byte("See [a](other.md#x), ![i](img.png \"t\"), <https://go.dev/x>.\n\n```\n[no](skip.md)\n```\n[ref]: ../ref.md\n"))
	if want := []string{"https://e.org/doc/other.md", "https://e.org/doc/img.png", "https://go.dev/x", "https://e.org/ref.md"}; !slices.Equal(res.Links, want) {
		t.Errorf("links %q, want %q", res.Links, want)
	}

	res, _ = Markdown(mustURL("https://e.org/notes/readme.md"), []byte("no headings here"))
	if res.Title != "readme" || len(res.Sections) != 1 {
		t.Errorf("title %q sections %d", res.Title, len(res.Sections))
	}
}

func TestText(t *testing.T) {
	res, err := Text(mustURL("file:///tmp/notes/todo.txt"), []byte("line 1\r\nline 2\xff\n"))
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, res)
	if res.Title != "todo" || len(res.Sections) != 1 || strings.Contains(res.Markdown, "\r") {
		t.Errorf("%+v", res)
	}
}

func TestGarbage(t *testing.T) {
	inputs := []string{
		"", " ", "<", "<<<>>>", "<html>", "</p></div>", "\x00\x00\x00", "<h1></h1>", "<pre></pre>",
		"<table></table>", "<table><tr></tr></table>", "<ul><li></li></ul>", "<a href=':'>x</a>",
		"<base href='::'><a href='x'>x</a>", "<td colspan=999999999>x</td>", "<p>" + strings.Repeat("<b>", 5000) + "x",
		strings.Repeat("<div>", 20000) + "deep" + strings.Repeat("</div>", 20000),
		strings.Repeat("<ul><li>", 3000) + "deep list",
		strings.Repeat("<blockquote>", 3000) + "deep quote",
		"<table>" + strings.Repeat("<tr><td colspan=1000 rowspan=1000>"+strings.Repeat("x", 100)+"</td></tr>", 200) + "</table>",
	}
	for _, in := range inputs {
		for _, u := range []*url.URL{nil, mustURL("https://e.org/a/b.html")} {
			res, err := HTML(u, []byte(in))
			if err != nil {
				t.Fatalf("%.40q: %v", in, err)
			}
			checkHTMLInvariants(t, res)
			if len(res.Markdown) > 4*len(in)+64<<10+1024 {
				t.Errorf("%.40q: markdown of %d bytes", in, len(res.Markdown))
			}
			if strings.Contains(in, "deep") && !strings.Contains(res.Markdown, "deep") {
				t.Errorf("%.40q: deep text lost", in)
			}
		}
		res, _ := Markdown(nil, []byte(in))
		checkInvariants(t, res)
	}
}

func TestHeadingTrail(t *testing.T) {
	tests := []struct {
		name string
		html string
		want [][]string // every section's heading path
	}{
		{"DocBook up link", `<div class="navheader"><a accesskey="u" href="indexes.html" title="Chapter 11. Indexes">Up</a></div>
			<div class="sect1" id="P"><h2>11.8. Partial Indexes</h2><p>A partial index.</p><h3>Examples</h3><p>More.</p></div>`,
			[][]string{{"Chapter 11. Indexes", "11.8. Partial Indexes"}, {"Chapter 11. Indexes", "11.8. Partial Indexes", "Examples"}}},
		{"link rel=up in head", `<html><head><title>Sub</title><link rel="up" href="/guide/" title="User Guide"></head><body><h1>Sub</h1><p>text</p></body></html>`,
			[][]string{{"User Guide", "Sub"}}},
		{"breadcrumb trail without Home and the page itself", `<nav aria-label="Breadcrumbs"><ol><li><a href="/">Home</a></li><li><a href="/docs/">Docs</a></li><li><a href="/docs/setup/">Setup</a></li><li>Install</li></ol></nav>
			<main><h1>Install</h1><p>Run the installer.</p></main>`,
			[][]string{{"Docs", "Setup", "Install"}}},
		{"no trail", `<h1>Alone</h1><p>text</p>`, [][]string{{"Alone"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, _ := url.Parse("https://example.org/docs/page.html")
			res, err := HTML(u, []byte(tt.html))
			if err != nil {
				t.Fatal(err)
			}
			var got [][]string
			for _, s := range res.Sections {
				got = append(got, s.Heading)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("heading paths %q, want %q", got, tt.want)
			}
		})
	}
}
