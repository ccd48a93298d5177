package extract

import (
	"encoding/json"
	"net/url"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// maxInput bounds what HTML parses: the crawler caps bodies well below this, and a bigger page is far
// more likely a dump than documentation worth a full parse.
const maxInput = 32 << 20

// HTML extracts the main content of an HTML page as markdown, with its sections, title and links.
func HTML(pageURL *url.URL, body []byte) (*Result, error) {
	if len(body) > maxInput {
		body = body[:maxInput]
	}
	src := decodeHTML(body)
	limit := 4*len(src) + 64<<10
	p := newPage(pageURL)
	doc, err := html.ParseWithOptions(strings.NewReader(src), html.ParseOptionEnableScripting(true))
	if err != nil {
		// The parser refuses pages nested deeper than 512 elements; their text is still worth having.
		return tokenText(p, src, limit), nil
	}
	p.scan(doc)

	res := &Result{NoIndex: p.noIndex, NoFollow: p.noFollow, Links: p.links()}
	if p.canonical != "" {
		if abs, ok := p.resolve(p.canonical); ok && isCrawlable(abs) {
			res.Canonical = stripFragment(abs)
		}
	}

	root := p.mainContent()
	title := p.title(root)
	md, secs := render(p, root, title, limit)
	if !hasText(md, title) && p.body != nil && root != p.body {
		// The chosen container said nothing: fall back to the whole body, boilerplate still removed.
		title = p.title(p.body)
		md, secs = render(p, p.body, title, limit)
	}
	if !hasText(md, title) && p.body != nil && p.rawText > 0 {
		// Everything with text was taken for boilerplate; a page with text must not come out empty.
		p.skip = nil
		md, secs = render(p, p.body, title, limit)
	}
	if trail := p.trail(title); len(trail) > 0 {
		for i := range secs {
			// Text before the first heading (level 0) keeps an empty path: it is under no heading.
			if secs[i].Level > 0 {
				secs[i].Heading = append(trail[:len(trail):len(trail)], secs[i].Heading...)
			}
		}
	}
	res.Title, res.Markdown, res.Sections = title, md, secs
	return res, nil
}

// trail is where the page sits in its site, outermost first, without the page itself: a breadcrumb
// trail when the page has one, else its parent's title from an "up" link. It starts every section's
// heading path, so that "11.8. Partial Indexes" reads, and is found, as part of "Chapter 11.
// Indexes" — the words a section is known by often live only in the chapter around it.
func (p *page) trail(title string) []string {
	var out []string
	for _, c := range p.crumbs {
		if strings.EqualFold(c, title) || strings.EqualFold(c, "home") || len(out) == 8 {
			continue
		}
		out = append(out, c)
	}
	if len(out) == 0 && p.upTitle != "" && !strings.EqualFold(p.upTitle, title) {
		out = []string{p.upTitle}
	}
	return out
}

// isBreadcrumb recognises a breadcrumb trail's container by its ARIA label, class or id.
func isBreadcrumb(n *html.Node) bool {
	switch n.DataAtom {
	case atom.Nav, atom.Ol, atom.Ul, atom.Div:
	default:
		return false
	}
	for _, key := range []string{"aria-label", "class", "id"} {
		if strings.Contains(strings.ToLower(attr(n, key)), "breadcrumb") {
			return true
		}
	}
	return false
}

// breadcrumbTexts are the texts of a trail's items: its links, and a last item without one.
func breadcrumbTexts(n *html.Node) []string {
	out := []string{}
	walk(n, func(c *html.Node) bool {
		if c.Type != html.ElementNode || (c.DataAtom != atom.A && c.DataAtom != atom.Li) {
			return true
		}
		if c.DataAtom == atom.Li && hasChildElement(c, atom.A) {
			return true
		}
		var sb strings.Builder
		walk(c, func(t *html.Node) bool {
			if t.Type == html.TextNode {
				sb.WriteString(t.Data)
			}
			return sb.Len() < 200
		})
		if t := collapseSpace(sb.String()); t != "" && utf8.RuneCountInString(t) <= 120 {
			out = append(out, t)
		}
		return false
	})
	return out
}

func hasChildElement(n *html.Node, a atom.Atom) bool {
	found := false
	walk(n, func(c *html.Node) bool {
		if c != n && c.Type == html.ElementNode && c.DataAtom == a {
			found = true
		}
		return !found
	})
	return found
}

// hasText says whether md holds more than its "# title" line.
func hasText(md, title string) bool {
	rest := strings.TrimPrefix(md, "# "+escapeHeading(title))
	return strings.TrimSpace(rest) != ""
}

// stats are what content detection needs to know about an element's subtree, boilerplate excluded.
type stats struct {
	text, linkText int32 // non-space bytes of text, and of those inside links
	h1, h12        int32 // <h1> elements, and <h1>/<h2> elements
	hint           bool  // a main-content hint lies inside
}

func (s stats) score() int32 { return s.text - s.linkText + s.linkText/4 }

type frame struct {
	n  *html.Node
	st stats
}

// page is one parsed HTML page: what the scan of the whole tree found.
type page struct {
	url  *url.URL
	base *url.URL
	// resolved caches link resolution: the same href is resolved for Links and for the markdown.
	resolved map[string]resolvedURL

	body      *html.Node
	rawText   int32 // all text outside script and style, boilerplate included
	stats     map[*html.Node]stats
	skip      map[*html.Node]bool // boilerplate subtrees
	hints     []*html.Node
	rawLinks  []string
	titleTag  string
	goTitle   string
	canonical string
	upTitle   string   // the parent page's title, from rel="up" or DocBook's accesskey="u" link
	crumbs    []string // the texts of the first breadcrumb trail
	baseHref  string
	noIndex   bool
	noFollow  bool
}

type resolvedURL struct {
	abs string
	ok  bool
}

func newPage(u *url.URL) *page {
	return &page{
		url:      u,
		base:     u,
		resolved: make(map[string]resolvedURL, 64),
		stats:    make(map[*html.Node]stats, 256),
		skip:     make(map[*html.Node]bool, 16),
	}
}

// scan walks the whole tree once, iteratively so that no nesting depth can exhaust the stack. It
// gathers the page's metadata and links, decides which subtrees are boilerplate, and sums the text
// that content detection weighs.
func (p *page) scan(doc *html.Node) {
	stack := make([]frame, 0, 64)
	linkDepth := 0
	n := doc
	for {
		descend := true
		switch n.Type {
		case html.ElementNode:
			descend = p.enter(n)
			stack = append(stack, frame{n: n})
			if n.DataAtom == atom.A {
				linkDepth++
			}
		case html.TextNode:
			if len(stack) > 0 {
				c := int32(countNonSpace(n.Data))
				p.rawText += c
				top := &stack[len(stack)-1]
				top.st.text += c
				if linkDepth > 0 {
					top.st.linkText += c
				}
			}
		case html.CommentNode:
			if p.goTitle == "" && (n.Parent == doc || n.Parent != nil && n.Parent.DataAtom == atom.Body && n.PrevSibling == nil) {
				p.goComment(n.Data)
			}
		}
		if descend && n.FirstChild != nil {
			n = n.FirstChild
			continue
		}
		for {
			if n.Type == html.ElementNode {
				f := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				if n.DataAtom == atom.A {
					linkDepth--
				}
				if p.exit(n, &f.st) && len(stack) > 0 {
					parent := &stack[len(stack)-1].st
					parent.text += f.st.text
					parent.linkText += f.st.linkText
					parent.h1 += f.st.h1
					parent.h12 += f.st.h12
					parent.hint = parent.hint || f.st.hint
				}
			}
			if n == doc {
				if p.base != nil && p.baseHref != "" {
					if b, err := p.base.Parse(strings.TrimSpace(p.baseHref)); err == nil {
						p.base = b
					}
				} else if p.base == nil && p.baseHref != "" {
					if b, err := url.Parse(strings.TrimSpace(p.baseHref)); err == nil && b.IsAbs() {
						p.base = b
					}
				}
				return
			}
			if n.NextSibling != nil {
				n = n.NextSibling
				break
			}
			n = n.Parent
		}
	}
}

// enter looks at an element on the way down and says whether its children are worth a visit.
func (p *page) enter(n *html.Node) bool {
	if p.crumbs == nil && isBreadcrumb(n) {
		p.crumbs = breadcrumbTexts(n)
	}
	switch n.DataAtom {
	case atom.Title:
		if p.titleTag == "" && n.FirstChild != nil {
			p.titleTag = collapseSpace(n.FirstChild.Data)
		}
		return false
	case atom.Base:
		if p.baseHref == "" {
			p.baseHref = attr(n, "href")
		}
	case atom.Link:
		if p.canonical == "" && hasToken(attr(n, "rel"), "canonical") {
			p.canonical = attr(n, "href")
		}
		if p.upTitle == "" && hasToken(attr(n, "rel"), "up") {
			p.upTitle = collapseSpace(attr(n, "title"))
		}
	case atom.Meta:
		if strings.EqualFold(attr(n, "name"), "robots") {
			for _, t := range strings.FieldsFunc(strings.ToLower(attr(n, "content")), func(r rune) bool { return r == ',' || r == ' ' }) {
				switch t {
				case "noindex":
					p.noIndex = true
				case "nofollow":
					p.noFollow = true
				case "none":
					p.noIndex, p.noFollow = true, true
				}
			}
		}
	case atom.A, atom.Area:
		if p.upTitle == "" && (hasToken(attr(n, "rel"), "up") || attr(n, "accesskey") == "u") {
			// The link's text is "Up" or an arrow; its title names the parent.
			p.upTitle = collapseSpace(attr(n, "title"))
		}
		if h, ok := attrOK(n, "href"); ok {
			p.rawLinks = append(p.rawLinks, h)
		}
	case atom.Iframe, atom.Frame:
		if s, ok := attrOK(n, "src"); ok {
			p.rawLinks = append(p.rawLinks, s)
		}
		return false
	case atom.Body:
		if p.body == nil {
			p.body = n
		}
	case atom.Head:
		return true // for its metadata; its text never counts
	}
	return !alwaysDropped(n)
}

// exit decides, with the element's subtree summed up in st, whether it is content; it returns false for
// boilerplate, whose text then does not count for its ancestors.
func (p *page) exit(n *html.Node, st *stats) bool {
	switch n.DataAtom {
	case atom.H1:
		st.h1++
		st.h12++
	case atom.H2:
		st.h12++
	}
	if alwaysDropped(n) {
		return false
	}
	if !st.hint && p.isBoilerplate(n, st) {
		p.skip[n] = true
		return false
	}
	if isHint(n) {
		p.hints = append(p.hints, n)
		st.hint = true
	}
	if st.text > 0 {
		p.stats[n] = *st
	}
	return true
}

// goComment reads the title of Go's documentation pages, which start with <!--{ "Title": "..." }-->.
func (p *page) goComment(data string) {
	data = strings.TrimSpace(data)
	if !strings.HasPrefix(data, "{") || !strings.Contains(data, `"Title"`) {
		return
	}
	var meta struct{ Title string }
	if json.Unmarshal([]byte(data), &meta) == nil {
		p.goTitle = collapseSpace(meta.Title)
	}
}

// mainContent picks the element whose subtree is the page's main content.
func (p *page) mainContent() *html.Node {
	if p.body == nil {
		return nil
	}
	bodyScore := p.stats[p.body].score()
	if h := p.bestHint(bodyScore); h != nil {
		return h
	}
	// No structural hint: descend from <body> while one child holds nearly all of the content and
	// nothing left behind carries a top-level heading.
	cur := p.body
	for {
		cs := p.stats[cur]
		var best *html.Node
		var bestScore int32
		for c := cur.FirstChild; c != nil; c = c.NextSibling {
			if c.Type != html.ElementNode || p.skip[c] || !isContainer(c) {
				continue
			}
			if s := p.stats[c].score(); s > bestScore {
				best, bestScore = c, s
			}
		}
		if best == nil || cs.score() <= 0 || bestScore*4 < cs.score()*3 {
			return cur
		}
		if bs := p.stats[best]; cs.h12 > bs.h12 {
			return cur
		}
		cur = best
	}
}

// bestHint returns the structural main-content element, if the page has one that holds a fair share
// of the page's text.
func (p *page) bestHint(bodyScore int32) *html.Node {
	var best *html.Node
	var bestScore int32
	articles := 0
	for _, h := range p.hints {
		if h.DataAtom == atom.Article {
			articles++
		}
	}
	for i, h := range p.hints {
		if i == 64 {
			break // hints are compared pairwise; a page with more is not structured by them
		}
		if h.DataAtom == atom.Article && articles > 1 {
			continue // a listing of articles: none of them is the page
		}
		if p.removed(h) {
			continue
		}
		s := p.stats[h].score()
		// <main> and role=main are explicit; the other hints must hold a quarter of the page.
		explicit := h.DataAtom == atom.Main || strings.EqualFold(attr(h, "role"), "main")
		if s < 1 || explicit && s*10 < bodyScore && s < 500 || !explicit && s*4 < bodyScore {
			continue
		}
		// Prefer the innermost hint that still holds most of an outer one (main > article > .md-content).
		if best == nil || s > bestScore && !isAncestor(h, best) || isAncestor(best, h) && s*10 >= bestScore*6 {
			best, bestScore = h, s
		}
	}
	return best
}

// removed says whether n lies inside a boilerplate subtree.
func (p *page) removed(n *html.Node) bool {
	for a := n; a != nil; a = a.Parent {
		if p.skip[a] {
			return true
		}
	}
	return false
}

func isAncestor(a, n *html.Node) bool {
	for x := n.Parent; x != nil; x = x.Parent {
		if x == a {
			return true
		}
	}
	return false
}

// title picks the page title: Go's metadata comment, else the first <h1> of the content, else
// <title> (cut to the first heading when <title> is that heading plus a site suffix), else the first
// heading.
func (p *page) title(root *html.Node) string {
	if p.goTitle != "" {
		return p.goTitle
	}
	var firstHeading string
	if root != nil {
		var h1 *html.Node
		first := findFirst(root, p, func(n *html.Node) bool { return headingLevel(n) > 0 })
		if first != nil && first.DataAtom == atom.H1 {
			h1 = first
		} else if first != nil {
			h1 = findFirst(root, p, func(n *html.Node) bool { return n.DataAtom == atom.H1 })
		}
		if h1 != nil {
			if t := plainText(h1, p); t != "" {
				return t
			}
		}
		if first != nil {
			firstHeading = plainText(first, p)
		}
	}
	if t := p.titleTag; t != "" {
		if firstHeading != "" && strings.HasPrefix(t, firstHeading) {
			rest := t[len(firstHeading):]
			for _, sep := range []string{" | ", " - ", " — ", " – ", " :: ", " · ", " « ", " » "} {
				if strings.HasPrefix(rest, sep) {
					return firstHeading
				}
			}
		}
		return t
	}
	return firstHeading
}

// links resolves every link of the page for the crawler: absolute http(s)/file URLs without fragment,
// each once, in document order, the page itself left out.
func (p *page) links() []string {
	self := ""
	if p.url != nil {
		self = stripFragment(p.url.String())
	}
	seen := make(map[string]bool, len(p.rawLinks))
	var out []string
	for _, raw := range p.rawLinks {
		abs, ok := p.resolve(raw)
		if !ok || !isCrawlable(abs) {
			continue
		}
		abs = stripFragment(abs)
		if abs == self || seen[abs] {
			continue
		}
		seen[abs] = true
		out = append(out, abs)
	}
	return out
}

// resolve makes href absolute against the base; ok is false for links that lead nowhere useful
// (javascript:, mailto:, data:, unparsable, or relative with nothing to resolve against).
func (p *page) resolve(href string) (string, bool) {
	if r, ok := p.resolved[href]; ok {
		return r.abs, r.ok
	}
	abs, ok := p.resolveUncached(href)
	p.resolved[href] = resolvedURL{abs, ok}
	return abs, ok
}

func (p *page) resolveUncached(href string) (string, bool) {
	h := strings.TrimSpace(href)
	if strings.ContainsAny(h, "\t\n\r") {
		h = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return -1
			}
			return r
		}, h)
	}
	if h == "" {
		return "", false
	}
	if i := strings.IndexByte(h, ':'); i > 0 {
		switch strings.ToLower(h[:i]) {
		case "javascript", "mailto", "data", "vbscript", "about", "blob":
			return "", false
		}
	}
	u, err := url.Parse(h)
	if err != nil {
		return "", false
	}
	if u.Host != "" {
		u.Host = strings.ToLower(u.Host)
	}
	if !u.IsAbs() {
		if p.base == nil {
			return "", false
		}
		u = p.base.ResolveReference(u)
	}
	return u.String(), true
}

func isCrawlable(abs string) bool {
	return hasPrefixFold(abs, "https://") || hasPrefixFold(abs, "http://") || hasPrefixFold(abs, "file:")
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func stripFragment(s string) string {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		return s[:i]
	}
	return s
}

// findFirst returns the first element under root (root included) in document order that matches,
// skipping boilerplate.
func findFirst(root *html.Node, p *page, match func(*html.Node) bool) *html.Node {
	var found *html.Node
	walk(root, func(n *html.Node) bool {
		if found != nil || n.Type != html.ElementNode {
			return found == nil
		}
		if alwaysDropped(n) || p != nil && p.skip[n] {
			return false
		}
		if match(n) {
			found = n
			return false
		}
		return true
	})
	return found
}

// walk visits root's subtree in document order without recursion; visit returns whether to descend.
func walk(root *html.Node, visit func(*html.Node) bool) {
	n := root
	for {
		if visit(n) && n.FirstChild != nil {
			n = n.FirstChild
			continue
		}
		for n != root && n.NextSibling == nil {
			n = n.Parent
		}
		if n == root {
			return
		}
		n = n.NextSibling
	}
}

// plainText is the collapsed text of n's subtree as a reader sees it: boilerplate, hidden elements and
// heading permalinks left out.
func plainText(n *html.Node, p *page) string { return textUpTo(n, p, 4096) }

// textUpTo is plainText that stops descending once max bytes are gathered.
func textUpTo(n *html.Node, p *page, limit int) string {
	var sb strings.Builder
	walk(n, func(c *html.Node) bool {
		switch c.Type {
		case html.TextNode:
			t := c.Data
			if room := limit - sb.Len(); len(t) > room {
				for room > 0 && !utf8.RuneStart(t[room]) {
					room--
				}
				t = t[:max(room, 0)]
			}
			sb.WriteString(t)
		case html.ElementNode:
			if alwaysDropped(c) || p != nil && p.skip[c] || isPermalink(c) {
				return false
			}
			if c.DataAtom == atom.Br || c.DataAtom == atom.Img && attr(c, "alt") != "" || isBlock(c) {
				sb.WriteString(" " + attr(c, "alt") + " ")
			}
		}
		return sb.Len() < limit
	})
	return collapseSpace(sb.String())
}

// isContainer says whether content detection may descend into n: elements that group blocks.
func isContainer(n *html.Node) bool {
	switch n.DataAtom {
	case atom.Div, atom.Section, atom.Article, atom.Main, atom.Table, atom.Tbody, atom.Tr, atom.Td,
		atom.Center, atom.Form, atom.Font:
		return true
	}
	return n.DataAtom == 0 // custom elements
}
