// Command paraphrase builds the paraphrase set: a copy of a DocBook manual (the PostgreSQL manual as
// Debian ships it) with every section heading reduced to its number, and relevance judgements that
// use each heading as the query and its own section as the only answer.
//
// The point is to ask whether search finds a section by what it says rather than by what it is
// called. A heading's words usually sit in the heading, the page title, the navigation bars, every
// table of contents and every cross-reference title that quotes it; any one of those gives a lexical
// search the answer for free. The copy removes them all, and leaves the body prose alone, so the
// heading's words remain only where the section's own text uses them.
//
//	go run ./bench/paraphrase -manual /usr/share/doc/postgresql-doc-15/html -out /tmp/para \
//	    -qrels bench/testdata/pg15-paraphrase.qrels.jsonl
//
// What is rewritten, in every page of the copy:
//
//   - a section heading (h1–h6 outside note/tip/warning boxes, which are labels, not sections):
//     its content becomes its number ("11.8.", "Chapter 11.", "Part II.", "F.3.") or "§" when it
//     has none (a reference page's "CREATE TABLE", its "Description");
//   - <title>: the replacement of the page's first heading (the file name would leak: see pageTitle);
//   - title attributes (link rel=prev/next/up, xrefs, navigation links) that quote a heading: removed;
//   - link text that quotes the heading the link points to, or the title of the page it points
//     to, with or without its number (tables of contents, the back-of-book index, xrefs such as
//     "see CREATE TABLE"): that text becomes the heading's replacement;
//   - any other element whose whole text is a numbered heading ("11.7. Indexes on Expressions" in
//     the navigation footer): its number; inside the navigation header and footer unnumbered
//     headings go too;
//   - a reference page's name line ("CREATE TABLE — define a new table"): the names before the
//     dash become "§", since DocBook generates them from the heading, and the purpose stays.
//
// Ids are never touched: the heading's own id and those of the wrapping divs are how panther
// anchors a section (extract's renderer: the heading's id, else the id of the nearest wrapping
// element of which it is the first heading, else an <a id|name> inside it, else an empty <a>
// just before it), and the qrels name sections by those anchors. Files other than HTML are copied
// byte for byte.
//
// Qrels: one line per section heading that has an anchor, in file-name order and document order,
// {"query": heading without its number, "relevant": ["page.html#ANCHOR"]}; headings generic enough
// to be unanswerable by meaning (genericHeadings) or of fewer than two words are skipped, and of
// identical queries the first is kept.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"panther/extract"
)

// Qrel is one line of the qrels file.
type Qrel struct {
	Query    string   `json:"query"`
	Relevant []string `json:"relevant"`
}

// Heading is one section heading of the original manual.
type Heading struct {
	Page   string // file name, "indexes-partial.html"
	Anchor string // what panther cites for the section, "" if none
	Full   string // whole text, whitespace collapsed: "11.8. Partial Indexes"
	Number string // "11.8.", "" when unnumbered
	Text   string // Full without the number: "Partial Indexes"
	node   *html.Node
}

// Replacement is what the heading's text becomes in the copy.
func (h *Heading) Replacement() string {
	if h.Number != "" {
		return h.Number
	}
	return unnumbered
}

type quote struct{ text, repl string }

// quotes are the ways other elements quote the heading whole: as it is, and for chapters,
// appendices and parts also without the word, as the tables of contents list them
// ("10. Type Conversion" for "Chapter 10. Type Conversion").
func (h *Heading) quotes() []quote {
	out := []quote{{h.Full, h.Replacement()}}
	if _, short, ok := strings.Cut(h.Number, " "); ok {
		out = append(out, quote{short + " " + h.Text, short})
	}
	return out
}

// unnumbered stands in for a heading without a number; extraction drops headings with no text, and
// with them the section split, so the heading must keep some text.
const unnumbered = "§"

// genericHeadings name a kind of section rather than its subject; as queries they have hundreds of
// equally right answers. Compared in lower case.
var genericHeadings = map[string]bool{
	"description": true, "parameters": true, "examples": true, "example": true, "notes": true,
	"note": true, "see also": true, "compatibility": true, "synopsis": true, "overview": true,
	"introduction": true, "outputs": true, "options": true, "environment": true, "files": true,
	"diagnostics": true, "usage": true, "author": true, "authors": true, "author(s)": true,
	"arguments": true, "return value": true, "return values": true, "exit status": true,
	"bugs": true, "index": true, "bibliography": true, "preface": true, "table of contents": true,
}

// admonitions are the box classes whose h3 is a label ("Note", "Tip"): panther renders those as a
// quote, not as a section, so they are neither rewritten nor queries.
var admonitions = map[string]bool{
	"note": true, "tip": true, "warning": true, "caution": true, "important": true,
	"admonition": true, "hint": true, "danger": true, "attention": true, "error": true, "seealso": true,
}

// numberRE splits "Chapter 11. Indexes", "Part II. The SQL Language", "11.8. Partial Indexes",
// "F.3.1. Functions" and "1. What Is PostgreSQL?" into number and text.
var numberRE = regexp.MustCompile(`^((?:(?:Chapter|Appendix|Part) [0-9A-Z]+|[0-9]+|[A-Z])(?:\.[0-9]+)*\.) (\S.*)$`)

func splitNumber(full string) (number, text string) {
	if m := numberRE.FindStringSubmatch(full); m != nil {
		return m[1], m[2]
	}
	return "", full
}

func main() {
	manual := flag.String("manual", "/usr/share/doc/postgresql-doc-15/html", "the manual's folder")
	out := flag.String("out", "", "folder for the rewritten copy (created; required)")
	qrelsPath := flag.String("qrels", "", "qrels output file (default stdout)")
	flag.Parse()
	if *out == "" {
		fatal(errors.New("-out is required"))
	}
	if err := run(*manual, *out, *qrelsPath); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "paraphrase:", err)
	os.Exit(1)
}

func run(manual, out, qrelsPath string) error {
	src, err := filepath.Abs(manual)
	if err != nil {
		return err
	}
	dst, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if src == dst {
		return errors.New("-out must not be the manual's own folder")
	}
	files, err := readDir(src)
	if err != nil {
		return err
	}
	rewritten, qrels, err := Process(files)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for name, b := range rewritten {
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
			return err
		}
	}

	w := io.Writer(os.Stdout)
	if qrelsPath != "" {
		f, err := os.Create(qrelsPath)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	if err := Write(bw, qrels); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "paraphrase: %d files copied to %s, %d queries\n", len(rewritten), dst, len(qrels))
	return nil
}

// readDir reads the manual's top folder; DocBook's chunked output is flat, so sub-folders are not
// followed.
func readDir(dir string) (map[string][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := make(map[string][]byte, len(entries))
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		files[e.Name()] = b
	}
	return files, nil
}

// Write emits one JSON object per line, without HTML escaping so that headings such as
// "<@ and @>" stay readable.
func Write(w io.Writer, qrels []Qrel) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, q := range qrels {
		if err := enc.Encode(q); err != nil {
			return err
		}
	}
	return nil
}

type page struct {
	name     string
	doc      *html.Node
	headings []*Heading
}

// Process rewrites a whole manual, given as file name → content, and derives its qrels. Every
// page is read before any is rewritten, because a page's links are rewritten from the headings of
// the pages they point to.
func Process(files map[string][]byte) (map[string][]byte, []Qrel, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)

	out := make(map[string][]byte, len(files))
	var pages []*page
	for _, n := range names {
		if !isHTML(n) {
			out[n] = files[n]
			continue
		}
		doc, err := html.Parse(bytes.NewReader(files[n]))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", n, err)
		}
		pages = append(pages, &page{name: n, doc: doc, headings: collect(n, doc)})
	}

	s := newSite(pages)
	for _, p := range pages {
		s.rewrite(p)
		var b bytes.Buffer
		if err := html.Render(&b, p.doc); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p.name, err)
		}
		out[p.name] = b.Bytes()
	}
	return out, s.qrels(), nil
}

func isHTML(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".html" || ext == ".htm" || ext == ".xhtml"
}

// collect finds the page's section headings in document order, with their anchors.
func collect(name string, doc *html.Node) []*Heading {
	var out []*Heading
	walk(doc, func(n *html.Node) bool {
		if !isSectionHeading(n) {
			return true
		}
		full := collapse(textOf(n))
		if full == "" {
			return false
		}
		num, text := splitNumber(full)
		out = append(out, &Heading{Page: name, Anchor: anchorOf(n), Full: full, Number: num, Text: text, node: n})
		return false
	})
	return out
}

func isSectionHeading(n *html.Node) bool {
	if headingLevel(n) == 0 {
		return false
	}
	for a := n.Parent; a != nil; a = a.Parent {
		if a.Type == html.ElementNode && a.DataAtom == atom.Div {
			for _, c := range strings.Fields(attr(a, "class")) {
				if admonitions[c] {
					return false
				}
			}
		}
	}
	return true
}

// anchorOf mirrors extract's renderer (extract/render.go, renderer.anchor), so that the qrels
// name the fragment panther cites for the section.
func anchorOf(h *html.Node) string {
	if id := attr(h, "id"); id != "" {
		return id
	}
	for a := h.Parent; a != nil; a = a.Parent {
		if a.Type != html.ElementNode || a.DataAtom == atom.Body || a.DataAtom == atom.Html {
			continue
		}
		if id := attr(a, "id"); id != "" {
			if !headingBefore(a, h) {
				return id
			}
			break
		}
	}
	return extract.LinkAnchor(h)
}

// headingBefore says whether a section heading with text precedes h inside a: the renderer then has
// already given a's id to that heading.
func headingBefore(a, h *html.Node) bool {
	before, done := false, false
	walk(a, func(c *html.Node) bool {
		if done || before {
			return false
		}
		if c == h {
			done = true
			return false
		}
		if isSectionHeading(c) {
			if collapse(textOf(c)) != "" {
				before = true
			}
			return false
		}
		return true
	})
	return before
}

// site holds what the rewrite of one page needs to know about all the others.
type site struct {
	pages []*page
	top   map[string]*Heading // page name → its first heading
	byID  map[string]*Heading // "page#id" → the heading that id anchors
	// full maps every heading's whole text to its replacement; numbered holds the numbered ones,
	// which are specific enough to be replaced wherever an element says nothing else.
	full, numbered map[string]string
	maxFull        int
}

func newSite(pages []*page) *site {
	s := &site{
		pages: pages, top: map[string]*Heading{}, byID: map[string]*Heading{},
		full: map[string]string{}, numbered: map[string]string{},
	}
	for _, p := range pages {
		for _, h := range p.headings {
			if _, ok := s.top[p.name]; !ok {
				s.top[p.name] = h
			}
			for _, id := range []string{h.Anchor, attr(h.node, "id")} {
				if k := p.name + "#" + id; id != "" && s.byID[k] == nil {
					s.byID[k] = h
				}
			}
			for _, f := range h.quotes() {
				if _, ok := s.full[f.text]; !ok {
					s.full[f.text] = f.repl
				}
				if h.Number != "" {
					s.numbered[f.text] = f.repl
				}
				s.maxFull = max(s.maxFull, len(f.text))
			}
		}
	}
	return s
}

func (s *site) rewrite(p *page) {
	// Links and name lines first: they are matched against the original heading texts, which the
	// later steps replace.
	s.rewriteLinks(p)
	s.rewriteRefName(p)
	for _, h := range p.headings {
		setText(h.node, h.Replacement())
	}
	s.rewriteNumbered(p.doc)
	walk(p.doc, func(n *html.Node) bool {
		if n.Type != html.ElementNode {
			return true
		}
		switch {
		case n.DataAtom == atom.Title:
			setText(n, s.pageTitle(p))
			return false
		case n.DataAtom == atom.Div && (hasClass(n, "navheader") || hasClass(n, "navfooter")):
			s.replaceDeepest(n, s.full)
		}
		removeTitleAttr(n, s.full)
		return true
	})
}

// pageTitle is the replacement of the page's first heading. Not the file name, although it would
// read better in a hit list: panther indexes titles, and names such as "sql-commit-prepared" or
// "ecpg-sql-set-connection" spell the heading out.
func (s *site) pageTitle(p *page) string {
	if h := s.top[p.name]; h != nil {
		return h.Replacement()
	}
	return unnumbered
}

func removeTitleAttr(n *html.Node, full map[string]string) {
	for i := 0; i < len(n.Attr); i++ {
		a := n.Attr[i]
		if a.Key == "title" && a.Namespace == "" {
			if _, ok := full[collapse(a.Val)]; ok {
				n.Attr = append(n.Attr[:i], n.Attr[i+1:]...)
				i--
			}
		}
	}
}

// rewriteLinks replaces link text that quotes the heading the link points to, or the title of the
// page it points to (the back-of-book index names the page, not the section).
func (s *site) rewriteLinks(p *page) {
	var links []*html.Node
	walk(p.doc, func(n *html.Node) bool {
		if n.Type == html.ElementNode && n.DataAtom == atom.A && attr(n, "href") != "" {
			links = append(links, n)
		}
		return true
	})
	for _, a := range links {
		target, frag, ok := localTarget(p.name, attr(a, "href"))
		if !ok {
			continue
		}
		var cands []*Heading
		if frag != "" {
			if h := s.byID[target+"#"+frag]; h != nil {
				cands = append(cands, h)
			}
		}
		if h := s.top[target]; h != nil {
			cands = append(cands, h)
		}
		text, ok := textUpTo(a, s.maxFull)
		if !ok || text == "" {
			continue
		}
	cands:
		for _, h := range cands {
			if text == h.Text {
				replaceDeepestText(a, text, h.Replacement())
				break
			}
			for _, f := range h.quotes() {
				if text == f.text {
					replaceDeepestText(a, text, f.repl)
					break cands
				}
			}
		}
	}
}

// localTarget resolves href against the page when it points into the same flat folder.
func localTarget(from, href string) (page, frag string, ok bool) {
	u, err := url.Parse(strings.TrimSpace(href))
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" {
		return "", "", false
	}
	page = strings.TrimPrefix(u.Path, "./")
	if page == "" {
		page = from
	}
	if strings.Contains(page, "/") {
		return "", "", false
	}
	return page, u.Fragment, true
}

// rewriteRefName turns "CREATE TABLE — define a new table" into "§ — define a new table". The part
// before the dash is DocBook's list of refnames, the page title again; the purpose is prose.
func (s *site) rewriteRefName(p *page) {
	walk(p.doc, func(n *html.Node) bool {
		if n.Type != html.ElementNode || n.DataAtom != atom.Div || !hasClass(n, "refnamediv") {
			return true
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && c.DataAtom == atom.P {
				stripBeforeDash(c)
				break
			}
		}
		return false
	})
}

// stripBeforeDash removes p's content up to the first " — " and puts "§" in its place; p is left
// alone when it has no dash in a direct text child.
func stripBeforeDash(p *html.Node) {
	const dash = " — "
	for c := p.FirstChild; c != nil; c = c.NextSibling {
		if c.Type != html.TextNode {
			continue
		}
		i := strings.Index(c.Data, dash)
		if i < 0 {
			continue
		}
		for p.FirstChild != c {
			p.RemoveChild(p.FirstChild)
		}
		c.Data = unnumbered + c.Data[i:]
		return
	}
}

// rewriteNumbered replaces elements whose whole text is a numbered heading, wherever they are: a
// heading's number and words together occur only where something quotes the heading.
func (s *site) rewriteNumbered(root *html.Node) {
	s.replaceDeepest(root, s.numbered)
}

// replaceDeepest finds, below root, the elements whose text is a key of repl and replaces the text
// of the innermost such element, so that the links and spans around it survive.
func (s *site) replaceDeepest(root *html.Node, repl map[string]string) {
	var visit func(n *html.Node, depth int)
	visit = func(n *html.Node, depth int) {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type != html.ElementNode || skipElement(c) {
				continue
			}
			if text, ok := textUpTo(c, s.maxFull); ok && text != "" {
				if r, hit := repl[text]; hit {
					replaceDeepestText(c, text, r)
					continue
				}
			}
			if depth < maxDepth {
				visit(c, depth+1)
			}
		}
	}
	visit(root, 0)
}

// maxDepth bounds recursion on adversarial input; html.Parse already refuses nesting beyond 512.
const maxDepth = 600

func skipElement(n *html.Node) bool {
	switch n.DataAtom {
	case atom.Head, atom.Script, atom.Style, atom.Title, atom.Pre, atom.Textarea:
		return true
	}
	return false
}

// replaceDeepestText descends from n while a single child element still carries all of text, then
// replaces that element's content with r.
func replaceDeepestText(n *html.Node, text, r string) {
	for {
		var inner *html.Node
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type != html.ElementNode {
				continue
			}
			if t, ok := textUpTo(c, len(text)); ok && t == text {
				inner = c
				break
			}
		}
		if inner == nil {
			break
		}
		n = inner
	}
	setText(n, r)
}

// setText replaces n's content with text. Elements inside that carry an id or name stay, emptied,
// in front of it: they can be what a link or a section anchor points at.
func setText(n *html.Node, text string) {
	var keep []*html.Node
	walk(n, func(c *html.Node) bool {
		if c != n && c.Type == html.ElementNode && (attr(c, "id") != "" || attr(c, "name") != "") {
			keep = append(keep, &html.Node{Type: html.ElementNode, DataAtom: c.DataAtom, Data: c.Data,
				Namespace: c.Namespace, Attr: append([]html.Attribute(nil), c.Attr...)})
		}
		return true
	})
	for n.FirstChild != nil {
		n.RemoveChild(n.FirstChild)
	}
	for _, k := range keep {
		n.AppendChild(k)
	}
	n.AppendChild(&html.Node{Type: html.TextNode, Data: text})
}

// qrels turns the headings into judgements; see the package comment for the rules.
func (s *site) qrels() []Qrel {
	var out []Qrel
	seen := map[string]bool{}
	for _, p := range s.pages {
		for _, h := range p.headings {
			q := h.Text
			if h.Anchor == "" || genericHeadings[strings.ToLower(q)] || len(strings.Fields(q)) < 2 || seen[q] {
				continue
			}
			seen[q] = true
			out = append(out, Qrel{Query: q, Relevant: []string{p.name + "#" + h.Anchor}})
		}
	}
	return out
}

// walk visits n and its descendants in document order; f returns false to skip a subtree.
// Iterative, since fuzzed input nests as deep as the parser allows.
func walk(n *html.Node, f func(*html.Node) bool) {
	stack := []*html.Node{n}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !f(c) {
			continue
		}
		for k := c.LastChild; k != nil; k = k.PrevSibling {
			stack = append(stack, k)
		}
	}
}

func textOf(n *html.Node) string {
	var b strings.Builder
	walk(n, func(c *html.Node) bool {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
		return true
	})
	return b.String()
}

// textUpTo is n's text with white space collapsed, or ok=false as soon as it is longer than limit:
// elements that hold more than a heading's worth of text cannot be a quoted heading, and collecting
// their text at every level would make the rewrite quadratic.
func textUpTo(n *html.Node, limit int) (string, bool) {
	var b strings.Builder
	space := false
	ok := true
	walk(n, func(c *html.Node) bool {
		if !ok {
			return false
		}
		if c.Type != html.TextNode {
			return true
		}
		for _, r := range c.Data {
			if isSpace(r) {
				space = b.Len() > 0
				continue
			}
			if space {
				b.WriteByte(' ')
				space = false
			}
			b.WriteRune(r)
			if b.Len() > limit {
				ok = false
				return false
			}
		}
		return true
	})
	return b.String(), ok
}

// isSpace counts the no-break space as a space: DocBook puts one between a heading's number and its
// words, and a query is typed with a plain one.
func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\u00a0'
}

// collapse folds runs of white space, no-break spaces included, into one plain space.
func collapse(s string) string {
	return strings.Join(strings.FieldsFunc(s, isSpace), " ")
}

func headingLevel(n *html.Node) int {
	if n.Type != html.ElementNode {
		return 0
	}
	switch n.DataAtom {
	case atom.H1:
		return 1
	case atom.H2:
		return 2
	case atom.H3:
		return 3
	case atom.H4:
		return 4
	case atom.H5:
		return 5
	case atom.H6:
		return 6
	}
	return 0
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key && a.Namespace == "" {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, class string) bool {
	for _, c := range strings.Fields(attr(n, "class")) {
		if c == class {
			return true
		}
	}
	return false
}
