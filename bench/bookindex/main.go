// Command bookindex turns the back-of-book index of a DocBook manual (the
// PostgreSQL manual's bookindex.html) into relevance judgements (qrels) for
// `panther eval` and `panther bench-search`.
//
// The index is a set of human-made judgements: an editor decided that the
// section behind each link answers the index term. That makes it a free,
// large, and unbiased test set for retrieval over the same manual.
//
// Rules (kept deliberately simple so that they can be stated in one line each):
//
//   - the query of a top-level entry is its term ("DateStyle configuration parameter");
//   - the query of a sub-entry is parent + " " + child ("date output format"),
//     one level deeper likewise;
//   - relevant = the entry's own links, in index order, deduplicated, relative to
//     the manual's folder; a link without a fragment stays page-level;
//   - "X (see Y)" takes Y's own links, because the index says Y answers X;
//     "(see also Y)" only adds a pointer to an entry that has links of its own,
//     so it is ignored;
//   - entries with no link (after resolving "see") are skipped;
//   - identical queries from different entries are merged into one line.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Qrel is one line of the output file.
type Qrel struct {
	Query    string   `json:"query"`
	Relevant []string `json:"relevant"`
}

// entry is one dt of the index, before "see" references are resolved.
type entry struct {
	id    string // top-level entries only; the target of "see" links
	query string
	links []string
	see   string // fragment id of the entry this one defers to
}

func main() {
	in := flag.String("in", "/usr/share/doc/postgresql-doc-15/html/bookindex.html", "the manual's bookindex.html")
	out := flag.String("out", "", "output file (default stdout)")
	flag.Parse()

	f, err := os.Open(*in)
	if err != nil {
		fatal(err)
	}
	defer f.Close()
	qrels, err := Parse(f)
	if err != nil {
		fatal(err)
	}

	w := io.Writer(os.Stdout)
	if *out != "" {
		of, err := os.Create(*out)
		if err != nil {
			fatal(err)
		}
		defer of.Close()
		w = of
	}
	bw := bufio.NewWriter(w)
	if err := Write(bw, qrels); err != nil {
		fatal(err)
	}
	if err := bw.Flush(); err != nil {
		fatal(err)
	}

	anchored, links := 0, 0
	for _, q := range qrels {
		links += len(q.Relevant)
		for _, r := range q.Relevant {
			if strings.Contains(r, "#") {
				anchored++
				break
			}
		}
	}
	fmt.Fprintf(os.Stderr, "bookindex: %d queries, %d with at least one #anchor, %d relevant links\n",
		len(qrels), anchored, links)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bookindex:", err)
	os.Exit(1)
}

// Write emits one JSON object per line. HTML escaping is off so that queries
// such as "<@" or "&&" stay readable in the file.
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

// Parse reads a DocBook bookindex page and returns its qrels in index order.
// Any dl inside an element of class "index" is treated as index entries; the
// page's quick links (a p, not a dl) are thus never mistaken for entries.
func Parse(r io.Reader) ([]Qrel, error) {
	doc, err := html.Parse(r)
	if err != nil {
		return nil, err
	}
	var entries []entry
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.DataAtom == atom.Div && hasClass(n, "index") {
			for _, dl := range topLevelDLs(n) {
				entries = parseDL(dl, "", entries)
			}
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return resolve(entries), nil
}

// topLevelDLs finds the outermost dl elements under n; nested ones are
// reached through parseDL so that they keep their parent's term.
func topLevelDLs(n *html.Node) []*html.Node {
	var out []*html.Node
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type != html.ElementNode {
			continue
		}
		if c.DataAtom == atom.Dl {
			out = append(out, c)
			continue
		}
		out = append(out, topLevelDLs(c)...)
	}
	return out
}

// parseDL walks one dl: each dt is an entry, and a dd right after it holds
// that entry's sub-entries. prefix is the parent's query ("" at top level).
func parseDL(dl *html.Node, prefix string, entries []entry) []entry {
	parent := "" // query of the last dt, the prefix for a following dd
	for c := dl.FirstChild; c != nil; c = c.NextSibling {
		if c.Type != html.ElementNode {
			continue
		}
		switch c.DataAtom {
		case atom.Dt:
			e, ok := parseDT(c, prefix)
			if !ok {
				// "(see also …)" rows are notes about the parent, not terms.
				continue
			}
			parent = e.query
			if len(e.links) > 0 || e.see != "" || e.id != "" {
				entries = append(entries, e)
			}
		case atom.Dd:
			p := parent
			if p == "" {
				p = prefix
			}
			for _, sub := range topLevelDLs(c) {
				entries = parseDL(sub, p, entries)
			}
		}
	}
	return entries
}

// parseDT splits "term, <a>..</a>, <a>..</a>" or "term (see <a>..</a>)".
// The term is the text before the first link; ok is false for rows that
// carry no term of their own.
func parseDT(dt *html.Node, prefix string) (e entry, ok bool) {
	var term strings.Builder
	seenLink := false
	for c := dt.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && c.DataAtom == atom.A {
			seenLink = true
			href := attr(c, "href")
			switch {
			case hasClass(c, "indexterm") && href != "":
				e.links = append(e.links, href)
			case strings.HasPrefix(href, "#") && e.see == "":
				e.see = href[1:]
			}
			continue
		}
		if !seenLink {
			term.WriteString(textOf(c))
		}
	}
	t := collapse(term.String())
	// ASCII-only lowering keeps byte offsets: strings.ToLower turns invalid UTF-8 into 3-byte
	// replacement characters, and an index into its result would not fit t (found by FuzzParse).
	lower := asciiLower(t)
	if strings.HasPrefix(lower, "(see also") {
		return e, false
	}
	if i := strings.LastIndex(lower, "(see"); i >= 0 {
		t = strings.TrimSpace(t[:i])
	} else if e.see != "" && len(e.links) == 0 {
		// A fragment link that is not introduced by "(see" is not a
		// reference we understand; do not guess.
		e.see = ""
	}
	if e.see != "" && len(e.links) > 0 {
		e.see = "" // own links win; this was a "see also" inline
	}
	t = strings.TrimSpace(strings.TrimRight(t, ", "))
	if t == "" {
		return e, false
	}
	e.id = attr(dt, "id")
	if prefix != "" {
		t = prefix + " " + t
	}
	e.query = t
	return e, true
}

// resolve replaces "see" references by the target's own links, drops entries
// left without links, dedups links, and merges identical queries.
func resolve(entries []entry) []Qrel {
	byID := make(map[string]*entry, len(entries))
	for i := range entries {
		if id := entries[i].id; id != "" {
			if _, dup := byID[id]; !dup {
				byID[id] = &entries[i]
			}
		}
	}
	var out []Qrel
	index := make(map[string]int)
	for _, e := range entries {
		links := e.links
		if len(links) == 0 && e.see != "" {
			// One hop only: the index never chains "see", and a cycle
			// must not loop forever on a crafted input.
			if t, ok := byID[e.see]; ok {
				links = t.links
			}
		}
		if len(links) == 0 {
			continue
		}
		i, ok := index[e.query]
		if !ok {
			i = len(out)
			index[e.query] = i
			out = append(out, Qrel{Query: e.query})
		}
		for _, l := range links {
			if !contains(out[i].Relevant, l) {
				out[i].Relevant = append(out[i].Relevant, l)
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func textOf(n *html.Node) string {
	if n.Type == html.TextNode {
		return n.Data
	}
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		b.WriteString(textOf(c))
	}
	return b.String()
}

// collapse folds the index's line breaks and runs of spaces into single
// spaces, so that a query matches what a user would type.
func collapse(s string) string {
	return strings.Join(strings.Fields(s), " ")
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

// asciiLower lowers ASCII letters only, so the result has t's byte offsets.
func asciiLower(t string) string {
	b := []byte(t)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
