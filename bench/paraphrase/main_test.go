package main

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"panther/extract"
)

const manualDir = "/usr/share/doc/postgresql-doc-15/html"

func readExcerpt(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := readDir("testdata/manual")
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func parse(t testing.TB, b []byte) *html.Node {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// find returns the text of the first element with tag a inside an element of class class ("" for
// anywhere), after the nth such match (0-based).
func find(doc *html.Node, a atom.Atom, class string, nth int) (string, bool) {
	var out []string
	walk(doc, func(n *html.Node) bool {
		if n.Type == html.ElementNode && n.DataAtom == a && (class == "" || insideClass(n, class)) {
			out = append(out, collapse(textOf(n)))
		}
		return true
	})
	if nth >= len(out) {
		return "", false
	}
	return out[nth], true
}

func insideClass(n *html.Node, class string) bool {
	for p := n; p != nil; p = p.Parent {
		if p.Type == html.ElementNode && hasClass(p, class) {
			return true
		}
	}
	return false
}

// everything is all text and all attribute values of a page, for "this string is gone" checks.
func everything(doc *html.Node) string {
	var b strings.Builder
	walk(doc, func(n *html.Node) bool {
		switch n.Type {
		case html.TextNode:
			b.WriteString(n.Data)
		case html.ElementNode:
			for _, a := range n.Attr {
				b.WriteString(" " + a.Val + " ")
			}
		}
		return true
	})
	return collapse(b.String())
}

func ids(doc *html.Node) []string {
	var out []string
	walk(doc, func(n *html.Node) bool {
		if n.Type == html.ElementNode {
			if id := attr(n, "id"); id != "" {
				out = append(out, id)
			}
		}
		return true
	})
	return out
}

func TestRewriteExcerpt(t *testing.T) {
	in := readExcerpt(t)
	out, _, err := Process(in)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]*html.Node{}
	for name, b := range out {
		if isHTML(name) {
			docs[name] = parse(t, b)
		}
	}

	t.Run("numbered headings are gone from every page, text and attributes", func(t *testing.T) {
		for _, gone := range []string{"11.8. Partial Indexes", "Chapter 11. Indexes", "11.8.1. Partial Unique Constraints",
			"Partial Unique Constraints", "How the Planner Proves Implication", "Storage Parameters", "Temporary Tables"} {
			for name, doc := range docs {
				if all := everything(doc); strings.Contains(all, gone) {
					t.Errorf("%s still says %q: %s", name, gone, all)
				}
			}
		}
	})

	// The words of "Partial Indexes" and "CREATE TABLE" are also body prose, so these are checked where
	// they quote the heading.
	tests := []struct {
		page  string
		tag   atom.Atom
		class string
		nth   int
		want  string
	}{
		{"indexes-partial.html", atom.Title, "", 0, "11.8."},
		{"indexes-partial.html", atom.H2, "sect1", 0, "11.8."},
		{"indexes-partial.html", atom.H3, "sect2", 0, "11.8.1."},
		{"indexes-partial.html", atom.H3, "sect2", 1, "11.8.2."},
		{"indexes-partial.html", atom.Th, "navheader", 0, "11.8."},
		{"indexes-partial.html", atom.Th, "navheader", 1, "Chapter 11."},
		{"indexes-partial.html", atom.Td, "navfooter", 2, "§"},
		{"indexes-partial.html", atom.H3, "note", 0, "Note"}, // a label, not a section
		{"indexes.html", atom.Title, "", 0, "Chapter 11."},
		{"indexes.html", atom.H2, "chapter", 0, "Chapter 11."},
		{"indexes.html", atom.A, "toc", 0, "11.8."},
		{"indexes.html", atom.A, "toc", 1, "11.8.1."},
		{"indexes.html", atom.Strong, "toc", 0, "Table of Contents"},
		{"indexes.html", atom.P, "chapter", 1, "Indexes are a common way to enhance database performance. See Section 11.8 and §."},
		{"indexes.html", atom.Td, "navfooter", 1, "11.8."},
		{"sql-createtable.html", atom.Title, "", 0, "§"},
		{"sql-createtable.html", atom.H2, "refnamediv", 0, "§"},
		{"sql-createtable.html", atom.P, "refnamediv", 0, "§ — define a new table"},
		{"sql-createtable.html", atom.H2, "refsynopsisdiv", 0, "§"},
		{"sql-createtable.html", atom.H3, "refsect2", 0, "§"},
		{"sql-createtable.html", atom.Th, "navheader", 0, "§"},
		{"sql-createtable.html", atom.Code, "refsect1", 0, "CREATE TABLE"}, // body prose stays
		{"sql-createtable.html", atom.Pre, "", 0, "CREATE TABLE table_name ( ... )"},
		{"sql-createtable.html", atom.A, "refsect1", 0, "11.8."},
		{"sql-createtable.html", atom.A, "refsect1", 2, "Chapter 11"}, // an xref's own words are not the heading
		{"bookindex.html", atom.A, "index", 0, "11.8."},
		{"bookindex.html", atom.A, "index", 1, "§"}, // names the page, not the section it points to
		{"bookindex.html", atom.A, "index", 2, "11.8.1."},
		{"bookindex.html", atom.Dt, "index", 1, "partial, 11.8."},
	}
	for _, tt := range tests {
		got, ok := find(docs[tt.page], tt.tag, tt.class, tt.nth)
		if !ok || got != tt.want {
			t.Errorf("%s: <%s> in .%s #%d = %q (found %v), want %q", tt.page, tt.tag, tt.class, tt.nth, got, ok, tt.want)
		}
	}

	t.Run("ids survive", func(t *testing.T) {
		for name, b := range in {
			if !isHTML(name) {
				continue
			}
			if before, after := ids(parse(t, b)), ids(docs[name]); !reflect.DeepEqual(before, after) {
				t.Errorf("%s: ids %q, want %q", name, after, before)
			}
		}
	})

	t.Run("title attributes that quote a heading are gone, others stay", func(t *testing.T) {
		for name, doc := range docs {
			walk(doc, func(n *html.Node) bool {
				if n.Type == html.ElementNode && attr(n, "title") != "" {
					t.Errorf("%s: <%s title=%q> left", name, n.Data, attr(n, "title"))
				}
				return true
			})
		}
		extra := map[string][]byte{"a.html": []byte(`<html><head><title>1. A B</title></head><body><h2>1. A B</h2><abbr title="Structured Query Language">SQL</abbr></body></html>`)}
		out, _, err := Process(extra)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(out["a.html"], []byte(`title="Structured Query Language"`)) {
			t.Errorf("unrelated title attribute removed: %s", out["a.html"])
		}
	})

	t.Run("other files are copied byte for byte", func(t *testing.T) {
		if !bytes.Equal(out["stylesheet.css"], in["stylesheet.css"]) {
			t.Errorf("stylesheet.css changed: %q", out["stylesheet.css"])
		}
	})
}

func TestQrels(t *testing.T) {
	tests := []struct {
		name  string
		files map[string][]byte
		want  []Qrel
	}{
		{
			name:  "excerpt",
			files: readExcerpt(t),
			want: []Qrel{
				{"Partial Indexes", []string{"indexes-partial.html#INDEXES-PARTIAL"}},
				{"Partial Unique Constraints", []string{"indexes-partial.html#INDEXES-PARTIAL-UNIQUE"}},
				// The sect2 has no id and its sect1 already anchors a heading: the <a id> inside counts.
				{"How the Planner Proves Implication", []string{"indexes-partial.html#INDEXES-PARTIAL-PLANNER"}},
				{"CREATE TABLE", []string{"sql-createtable.html#SQL-CREATETABLE"}},
				{"Storage Parameters", []string{"sql-createtable.html#SQL-CREATETABLE-STORAGE-PARAMETERS"}},
				{"Temporary Tables", []string{"sql-createtable.html#id-1.9.3.85.9.3"}},
			},
		},
		{
			name: "generic, one-word, anchorless and repeated headings are skipped",
			files: map[string][]byte{
				"a.html": []byte(`<div id="A"><h2>1. Return Value</h2></div><div id="B"><h2>2. Storage</h2></div>` +
					`<div><h2>3. No Anchor Here</h2></div><div id="C"><h2>4. Same Words</h2></div>`),
				"b.html": []byte(`<div id="D"><h2>Same Words</h2></div><div id="E"><h2>See Also</h2></div>`),
			},
			want: []Qrel{{"Same Words", []string{"a.html#C"}}},
		},
		{
			name: "a heading's own id beats its div's; a later heading in the div gets none of it",
			files: map[string][]byte{
				"a.html": []byte(`<div id="D"><h2 id="H">Own Id</h2><h3>Second Heading</h3></div>` +
					`<div id="E"><p>text</p><a id="F"></a><h3>After Empty Link</h3></div>`),
			},
			want: []Qrel{
				{"Own Id", []string{"a.html#H"}},
				{"After Empty Link", []string{"a.html#E"}},
			},
		},
		{
			name: "numbers of parts, chapters, appendices and no-break spaces",
			files: map[string][]byte{
				"a.html": []byte("<div id=\"P\"><h1>Part\u00a0II.\u00a0The SQL Language</h1></div>" +
					"<div id=\"Q\"><h2>Appendix\u00a0F.\u00a0Additional Supplied Modules</h2></div>" +
					"<div id=\"R\"><h2>F.3.1.\u00a0Configuration  Parameters</h2></div>" +
					"<div id=\"S\"><h2>1.\u00a0What Is PostgreSQL?</h2></div>"),
			},
			want: []Qrel{
				{"The SQL Language", []string{"a.html#P"}},
				{"Additional Supplied Modules", []string{"a.html#Q"}},
				{"Configuration Parameters", []string{"a.html#R"}},
				{"What Is PostgreSQL?", []string{"a.html#S"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got, err := Process(tt.files)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("qrels:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestWriteKeepsOperatorsReadable(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, []Qrel{{"<@ & @>", []string{"a.html#X"}}}); err != nil {
		t.Fatal(err)
	}
	if want := `{"query":"<@ & @>","relevant":["a.html#X"]}` + "\n"; b.String() != want {
		t.Errorf("Write = %q, want %q", b.String(), want)
	}
}

var (
	manualOnce sync.Once
	manualOut  map[string][]byte
	manualQ    []Qrel
	manualErr  error
)

// processManual runs the rewrite over the installed manual once for all the tests that need it.
func processManual(t *testing.T) (map[string][]byte, []Qrel) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(manualDir, "index.html")); err != nil {
		t.Skip("postgresql-doc-15 not installed:", err)
	}
	manualOnce.Do(func() {
		var files map[string][]byte
		if files, manualErr = readDir(manualDir); manualErr == nil {
			manualOut, manualQ, manualErr = Process(files)
		}
	})
	if manualErr != nil {
		t.Fatal(manualErr)
	}
	return manualOut, manualQ
}

// TestCommittedQrelsMatchManual guards the committed qrels against drift from the program.
func TestCommittedQrelsMatchManual(t *testing.T) {
	_, qrels := processManual(t)
	var b bytes.Buffer
	if err := Write(&b, qrels); err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("../testdata/pg15-paraphrase.qrels.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), committed) {
		t.Errorf("bench/testdata/pg15-paraphrase.qrels.jsonl is stale; regenerate with: " +
			"go run ./bench/paraphrase -out /tmp/para -qrels bench/testdata/pg15-paraphrase.qrels.jsonl")
	}
	if len(qrels) < 1000 {
		t.Errorf("only %d queries from the whole manual", len(qrels))
	}
}

// replaced is what a heading or a title may read in the copy: a number or "§".
var replaced = regexp.MustCompile(`^((Chapter|Appendix|Part) [0-9A-Z]+\.|[0-9A-Z]+(\.[0-9]+)*\.|§)$`)

// TestExtractionCitesTheAnchors runs panther's own extraction over the rewritten manual: every
// qrel must name a section that extraction cites (so that section-level scores can be earned), and
// no heading path or title may carry words any more.
func TestExtractionCitesTheAnchors(t *testing.T) {
	if testing.Short() {
		t.Skip("extracts the whole manual")
	}
	out, qrels := processManual(t)
	want := map[string][]string{} // page → anchors the qrels name
	for _, q := range qrels {
		page, anchor, _ := strings.Cut(q.Relevant[0], "#")
		want[page] = append(want[page], anchor)
	}
	names := make([]string, 0, len(out))
	for n := range out {
		if isHTML(n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	missing, checked := 0, 0
	for _, name := range names {
		u := &url.URL{Scheme: "file", Path: "/para/" + name}
		res, err := extract.HTML(u, out[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !replaced.MatchString(res.Title) {
			t.Errorf("%s: title %q still has words", name, res.Title)
		}
		cited := map[string]bool{}
		for _, s := range res.Sections {
			cited[s.Anchor] = true
			for _, h := range s.Heading {
				if !replaced.MatchString(h) {
					t.Errorf("%s#%s: heading path %q still has words", name, s.Anchor, s.Heading)
					break
				}
			}
		}
		for _, a := range want[name] {
			checked++
			if !cited[a] {
				missing++
				t.Errorf("%s: qrels name #%s, extraction cites no such section", name, a)
			}
		}
	}
	if checked != len(qrels) {
		t.Errorf("checked %d anchors, want one per qrel (%d): a qrel names a page that is not in the copy", checked, len(qrels))
	}
	if missing > 0 {
		t.Logf("%d of %d qrels anchors not cited", missing, len(qrels))
	}
}

// TestNumberedHeadingsGoneFromManual looks, in every page of the rewritten manual, for an element
// or an attribute that quotes a numbered heading whole. (Prose that mentions a heading inside a
// sentence is left alone by design, and a number run into the next words, "Table F.1. adminpack
// Functions", is not a quote.)
func TestNumberedHeadingsGoneFromManual(t *testing.T) {
	if testing.Short() {
		t.Skip("parses the whole manual twice")
	}
	out, _ := processManual(t)
	files, err := readDir(manualDir)
	if err != nil {
		t.Fatal(err)
	}
	quoted := map[string]bool{}
	maxLen := 0
	for name, b := range files {
		if !isHTML(name) {
			continue
		}
		for _, h := range collect(name, parse(t, b)) {
			if h.Number == "" {
				continue
			}
			for _, q := range h.quotes() {
				quoted[q.text] = true
				maxLen = max(maxLen, len(q.text))
			}
		}
	}
	if len(quoted) < 2000 {
		t.Fatalf("only %d numbered headings in the manual", len(quoted))
	}
	for name, b := range out {
		if !isHTML(name) {
			continue
		}
		walk(parse(t, b), func(n *html.Node) bool {
			if n.Type != html.ElementNode {
				return true
			}
			if text, ok := textUpTo(n, maxLen); ok && quoted[text] {
				t.Errorf("%s: <%s> still says %q", name, n.Data, text)
			}
			for _, a := range n.Attr {
				if quoted[collapse(a.Val)] {
					t.Errorf("%s: <%s %s=%q> still quotes a heading", name, n.Data, a.Key, a.Val)
				}
			}
			return true
		})
	}
}

// FuzzRewrite: whatever the page, the rewrite must not panic, its output must parse, ids must not
// be lost, and the qrels must keep their invariants.
func FuzzRewrite(f *testing.F) {
	for _, b := range readExcerpt(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		files := map[string][]byte{
			"a.html": data,
			"b.html": []byte(`<div id="B"><h2>2. Linked Heading</h2><a href="a.html">1. A Heading</a><a href="a.html#X">Linked Heading</a></div>`),
		}
		out, qrels, err := Process(files)
		if err != nil {
			return
		}
		for name, b := range out {
			if _, err := html.Parse(bytes.NewReader(b)); err != nil {
				t.Fatalf("%s: output does not parse: %v", name, err)
			}
		}
		seen := map[string]bool{}
		for _, q := range qrels {
			if len(strings.Fields(q.Query)) < 2 || seen[q.Query] || genericHeadings[strings.ToLower(q.Query)] {
				t.Fatalf("bad or repeated query %q", q.Query)
			}
			seen[q.Query] = true
			if len(q.Relevant) != 1 || !strings.Contains(q.Relevant[0], "#") || strings.HasSuffix(q.Relevant[0], "#") {
				t.Fatalf("query %q: relevant %q", q.Query, q.Relevant)
			}
		}
	})
}
