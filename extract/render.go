package extract

import (
	"strconv"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"panther"
)

const (
	// maxDepth bounds the renderer's recursion; deeper subtrees are written as plain text.
	maxDepth = 256
	// maxNesting bounds list and quote prefixes, which every line repeats.
	maxNesting = 10
	// maxCols bounds table width, since colspan could otherwise multiply a cell at will.
	maxCols = 64
)

type idMark struct {
	id   string
	seen bool // a heading has been rendered since the element opened
}

type secMark struct {
	start  int
	level  int
	path   []string
	anchor string
}

type heading struct {
	level int
	text  string
}

// renderer turns the content subtree into markdown and notes where each section starts.
type renderer struct {
	p       *page
	w       *writer
	main    writer
	scratch writer // table cells
	depth   int
	title   string
	ids     []idMark
	secs    []secMark
	path    []heading
	inTable int
	inPre   int
}

// render writes root's subtree as markdown and splits it into sections at headings.
func render(p *page, root *html.Node, title string, limit int) (string, []panther.Section) {
	r := &renderer{p: p, title: title}
	r.main.reset(limit)
	r.w = &r.main
	if root != nil {
		r.node(root)
	}
	if len(r.secs) == 0 && title != "" {
		r.titleSection()
	}
	return r.finish()
}

func (r *renderer) finish() (string, []panther.Section) {
	buf := r.main.buf
	for len(buf) > 0 && (buf[len(buf)-1] == '\n' || buf[len(buf)-1] == ' ') {
		buf = buf[:len(buf)-1]
	}
	// Leading white space would put the first section after the start of the markdown.
	lead := 0
	for lead < len(buf) && (buf[lead] == '\n' || buf[lead] == ' ') {
		lead++
	}
	md := string(buf[lead:])
	for i := range r.secs {
		r.secs[i].start = max(0, r.secs[i].start-lead)
	}
	var secs []panther.Section
	if len(r.secs) == 0 || r.secs[0].start > 0 {
		end := len(md)
		if len(r.secs) > 0 {
			end = r.secs[0].start
		}
		if pre := strings.TrimRight(md[:end], "\n "); pre != "" {
			secs = append(secs, panther.Section{Heading: []string{}, Markdown: pre})
		}
	}
	for i, s := range r.secs {
		end := len(md)
		if i+1 < len(r.secs) {
			end = r.secs[i+1].start
		}
		if s.start > end || end > len(md) {
			continue
		}
		secs = append(secs, panther.Section{
			Heading:  s.path,
			Level:    s.level,
			Anchor:   s.anchor,
			Markdown: strings.TrimRight(md[s.start:end], "\n "),
		})
	}
	return md, secs
}

// titleSection starts the markdown with "# Title"; whatever came before becomes that section's text.
func (r *renderer) titleSection() {
	w := r.w
	line := "# " + escapeHeading(r.title)
	if !w.started {
		w.raw(line)
		w.block(2)
	} else {
		head := line + "\n\n"
		w.buf = append([]byte(head), w.buf...)
	}
	r.path = append(r.path[:0], heading{1, r.title})
	r.secs = append(r.secs, secMark{start: 0, level: 1, path: []string{r.title}})
}

func (r *renderer) children(n *html.Node) {
	for c := n.FirstChild; c != nil && !r.w.full; c = c.NextSibling {
		r.node(c)
	}
}

func (r *renderer) node(n *html.Node) {
	switch n.Type {
	case html.TextNode:
		r.w.text(n.Data)
		return
	case html.DocumentNode:
		r.children(n)
		return
	case html.ElementNode:
	default:
		return
	}
	if alwaysDropped(n) || r.p.skip != nil && r.p.skip[n] {
		return
	}
	if r.depth >= maxDepth {
		r.w.block(1)
		r.w.text(textUpTo(n, r.p, r.w.limit-len(r.w.buf)))
		r.w.block(1)
		return
	}
	r.depth++
	defer func() { r.depth-- }()

	if id := attr(n, "id"); id != "" && n.DataAtom != atom.Body && n.DataAtom != atom.Html {
		r.ids = append(r.ids, idMark{id: id})
		defer func() { r.ids = r.ids[:len(r.ids)-1] }()
	}

	w := r.w
	switch n.DataAtom {
	case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		r.heading(n)
	case atom.P, atom.Div, atom.Section, atom.Article, atom.Main, atom.Header, atom.Footer, atom.Address,
		atom.Figure, atom.Fieldset, atom.Center, atom.Hgroup, atom.Form, atom.Details, atom.Legend,
		atom.Figcaption, atom.Caption:
		if n.DataAtom == atom.Div && r.admonition(n) {
			return
		}
		w.block(2)
		r.children(n)
		w.block(2)
	case atom.Summary:
		w.block(2)
		w.pushMark("**", "**")
		r.children(n)
		w.popMark()
		w.block(2)
	case atom.Blockquote:
		r.quote(n, "")
	case atom.Ul, atom.Ol, atom.Menu:
		r.list(n)
	case atom.Li:
		// A stray <li> outside a list.
		w.block(1)
		r.children(n)
		w.block(1)
	case atom.Dl:
		r.dl(n)
	case atom.Dt:
		w.block(2)
		w.pushMark("**", "**")
		r.children(n)
		w.popMark()
		w.block(1)
	case atom.Dd:
		w.block(1)
		r.children(n)
		w.block(2)
	case atom.Pre, atom.Listing, atom.Xmp, atom.Plaintext:
		r.pre(n)
	case atom.Table:
		r.table(n)
	case atom.Br:
		if r.inPre == 0 {
			w.block(1)
		}
	case atom.Hr:
		if w.inline == 0 {
			w.block(2)
			m := w.suspendMarks()
			w.raw("---")
			w.resume(m)
			w.block(2)
		}
	case atom.Em, atom.I, atom.Cite, atom.Dfn, atom.Var:
		r.wrap(n, "*", "*")
	case atom.Strong, atom.B:
		r.wrap(n, "**", "**")
	case atom.Del, atom.S, atom.Strike:
		r.wrap(n, "~~", "~~")
	case atom.Code, atom.Kbd, atom.Samp, atom.Tt:
		w.codeSpan(r.textOf(n))
	case atom.A:
		r.link(n)
	case atom.Img:
		r.image(n)
	default:
		r.children(n)
	}
}

// wrap renders an inline element between delimiters, unless the same delimiters are already open
// (nested <em><em> would otherwise close each other).
func (r *renderer) wrap(n *html.Node, open, close string) {
	w := r.w
	for _, m := range w.marks {
		if m.open == open {
			r.children(n)
			return
		}
	}
	if len(w.marks) >= 8 {
		r.children(n)
		return
	}
	w.pushMark(open, close)
	r.children(n)
	w.popMark()
}

func (r *renderer) link(n *html.Node) {
	w := r.w
	if isPermalink(n) || isEditLink(n) {
		return
	}
	href, ok := attrOK(n, "href")
	if !ok || w.link > 0 {
		r.children(n)
		return
	}
	abs, ok := r.p.resolve(href)
	if !ok {
		r.children(n)
		return
	}
	w.pushMark("[", "]("+markdownURL(abs)+")")
	w.link++
	r.children(n)
	w.link--
	w.popMark()
}

// markdownURL makes a URL safe as a link destination.
func markdownURL(u string) string {
	if strings.ContainsAny(u, " ()<>") {
		u = strings.NewReplacer(" ", "%20", "(", "%28", ")", "%29", "<", "%3C", ">", "%3E").Replace(u)
	}
	return u
}

func (r *renderer) image(n *html.Node) {
	src := attr(n, "src")
	if src == "" || hasPrefixFold(src, "data:") {
		src = attr(n, "data-src")
	}
	abs, ok := r.p.resolve(src)
	if !ok {
		return
	}
	alt := collapseSpace(attr(n, "alt"))
	alt = strings.NewReplacer("[", `\[`, "]", `\]`, "\n", " ").Replace(alt)
	r.w.raw("![" + alt + "](" + markdownURL(abs) + ")")
}

// textOf is the raw text of an inline code element.
func (r *renderer) textOf(n *html.Node) string {
	var sb strings.Builder
	walk(n, func(c *html.Node) bool {
		switch c.Type {
		case html.TextNode:
			sb.WriteString(c.Data)
		case html.ElementNode:
			if alwaysDropped(c) || r.p.skip != nil && r.p.skip[c] {
				return false
			}
			if c.DataAtom == atom.Br {
				sb.WriteByte(' ')
			}
		}
		return true
	})
	return sb.String()
}

func (r *renderer) heading(n *html.Node) {
	w := r.w
	text := plainText(n, r.p)
	if text == "" {
		return
	}
	anchor := r.anchor(n)
	for i := len(r.ids) - 1; i >= 0 && !r.ids[i].seen; i-- {
		r.ids[i].seen = true
	}
	if w.inline > 0 || len(w.prefixes) > 0 || r.inTable > 0 {
		// Markdown headings cannot live in cells, quotes or lists: keep the words, in bold.
		w.block(2)
		w.pushMark("**", "**")
		r.children(n)
		w.popMark()
		w.block(2)
		return
	}
	level := headingLevel(n)
	if len(r.secs) == 0 {
		switch {
		case r.title == "":
		case text == r.title:
			level = 1
		default:
			r.titleSection()
		}
	}
	for len(r.path) > 0 && r.path[len(r.path)-1].level >= level {
		r.path = r.path[:len(r.path)-1]
	}
	r.path = append(r.path, heading{level, text})
	path := make([]string, len(r.path))
	for i, h := range r.path {
		path[i] = h.text
	}

	w.block(2)
	w.pending = 2
	defer w.resume(w.suspendMarks())
	w.startContent()
	r.secs = append(r.secs, secMark{start: len(w.buf), level: level, path: path, anchor: anchor})
	w.put(strings.Repeat("#", level) + " ")
	w.lineStart = false
	w.inline++
	r.children(n)
	w.inline--
	w.block(2)
}

// anchor finds the id that url#id opens for heading n: its own id; else that of the nearest wrapping
// element of which n is the first heading (DocBook's <div class="sect1" id>, <section id>); else an
// <a id|name> inside it; else an empty <a id|name> just before it.
func (r *renderer) anchor(n *html.Node) string {
	if id := attr(n, "id"); id != "" {
		return id
	}
	// The top of r.ids is n's nearest ancestor with an id; it wraps n as its first heading only if
	// no heading has been rendered since it opened.
	if k := len(r.ids); k > 0 && !r.ids[k-1].seen {
		return r.ids[k-1].id
	}
	return LinkAnchor(n)
}

// LinkAnchor is the anchor a heading carries on a link rather than on itself or a wrapper: an
// <a id|name> inside it (Sphinx, older DocBook), else an empty <a id|name> just before it. Exported
// so that tools that build ground truth (bench/paraphrase) name sections exactly as panther cites them.
func LinkAnchor(n *html.Node) string {
	var found string
	walk(n, func(c *html.Node) bool {
		if found != "" {
			return false
		}
		if c.Type == html.ElementNode && c.DataAtom == atom.A {
			if v := attr(c, "id"); v != "" {
				found = v
			} else if v := attr(c, "name"); v != "" {
				found = v
			}
		}
		return true
	})
	if found != "" {
		return found
	}
	for s := n.PrevSibling; s != nil; s = s.PrevSibling {
		if s.Type == html.TextNode && strings.TrimSpace(s.Data) == "" {
			continue
		}
		if s.Type == html.ElementNode && s.DataAtom == atom.A && s.FirstChild == nil {
			if v := attr(s, "id"); v != "" {
				return v
			}
			return attr(s, "name")
		}
		break
	}
	return ""
}

// admonitionKinds are the class names of notes and warnings (DocBook, Sphinx, MkDocs, GitHub).
var admonitionKinds = map[string]string{
	"note": "Note", "tip": "Tip", "warning": "Warning", "caution": "Caution", "important": "Important",
	"hint": "Hint", "danger": "Danger", "attention": "Attention", "error": "Error", "seealso": "See also",
	"admonition": "Note", "markdown-alert": "Note",
}

// admonition renders a note/tip/warning box as a blockquote led by its bold label.
func (r *renderer) admonition(n *html.Node) bool {
	label := ""
	for _, t := range strings.Fields(attr(n, "class")) {
		if l, ok := admonitionKinds[t]; ok && (label == "" || label == "Note") {
			label = l
		}
	}
	if label == "" {
		return false
	}
	// The box's own title element (<h3 class="title">Note</h3>, <p class="admonition-title">) is the label.
	var titleEl *html.Node
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.TextNode && strings.TrimSpace(c.Data) == "" {
			continue
		}
		if c.Type == html.ElementNode && (headingLevel(c) > 0 || hasClassPrefix(c, "title") || hasClassPrefix(c, "admonition-title") || hasClassPrefix(c, "markdown-alert-title")) {
			titleEl = c
			if t := plainText(c, r.p); t != "" && len(t) < 80 {
				label = t
			}
		}
		break
	}
	r.quote(n, label, titleEl)
	return true
}

func hasClassPrefix(n *html.Node, name string) bool {
	for _, t := range strings.Fields(attr(n, "class")) {
		if t == name || strings.HasPrefix(t, name+"_") || strings.HasPrefix(t, name+"-") {
			return true
		}
	}
	return false
}

func (r *renderer) quote(n *html.Node, label string, skip ...*html.Node) {
	w := r.w
	if w.inline > 0 || len(w.prefixes) >= maxNesting {
		w.block(2)
		if label != "" {
			w.raw("**" + escapeHeading(label) + "**")
			w.block(2)
		}
		r.childrenExcept(n, skip)
		w.block(2)
		return
	}
	w.block(2)
	w.prefixes = append(w.prefixes, prefix{first: "> ", rest: "> "})
	if label != "" {
		w.raw("**" + escapeHeading(label) + "**")
		w.block(2)
	}
	r.childrenExcept(n, skip)
	w.prefixes = w.prefixes[:len(w.prefixes)-1]
	w.block(2)
}

func (r *renderer) childrenExcept(n *html.Node, skip []*html.Node) {
	for c := n.FirstChild; c != nil && !r.w.full; c = c.NextSibling {
		if len(skip) > 0 && c == skip[0] {
			continue
		}
		r.node(c)
	}
}

func (r *renderer) list(n *html.Node) {
	w := r.w
	if w.inline > 0 || len(w.prefixes) >= maxNesting {
		w.block(1)
		for c := n.FirstChild; c != nil && !w.full; c = c.NextSibling {
			r.node(c)
			if c.Type == html.ElementNode {
				w.block(1)
			}
		}
		w.block(1)
		return
	}
	ordered := n.DataAtom == atom.Ol
	num := 1
	if ordered {
		if s, err := strconv.Atoi(attr(n, "start")); err == nil && s >= 0 && s < 1e9 {
			num = s
		}
	}
	if len(w.prefixes) > 0 && w.prefixes[len(w.prefixes)-1].first != "> " {
		w.block(1) // a nested list hangs off its item
	} else {
		w.block(2)
	}
	for c := n.FirstChild; c != nil && !w.full; c = c.NextSibling {
		if c.Type == html.TextNode {
			if strings.TrimSpace(c.Data) == "" {
				continue
			}
		} else if c.Type != html.ElementNode || alwaysDropped(c) || r.p.skip != nil && r.p.skip[c] {
			continue
		}
		marker := "- "
		if ordered {
			marker = strconv.Itoa(num) + ". "
			num++
		}
		w.block(1)
		w.prefixes = append(w.prefixes, prefix{first: marker, rest: strings.Repeat(" ", len(marker))})
		if c.DataAtom == atom.Li {
			r.children(c)
		} else {
			r.node(c)
		}
		w.prefixes = w.prefixes[:len(w.prefixes)-1]
		w.block(1)
	}
	if len(w.prefixes) > 0 && w.prefixes[len(w.prefixes)-1].first != "> " {
		w.block(1)
	} else {
		w.block(2)
	}
}

// dl renders a definition list: terms in bold, definitions as paragraphs. DocBook's tables of contents
// (dl.toc, nested in dd) read better as nested lists.
func (r *renderer) dl(n *html.Node) {
	w := r.w
	if !hasToken(attr(n, "class"), "toc") && !(n.Parent != nil && n.Parent.DataAtom == atom.Dd && r.inTOC(n)) || w.inline > 0 || len(w.prefixes) >= maxNesting {
		w.block(2)
		r.children(n)
		w.block(2)
		return
	}
	w.block(1)
	for c := n.FirstChild; c != nil && !w.full; c = c.NextSibling {
		if c.Type != html.ElementNode {
			continue
		}
		switch c.DataAtom {
		case atom.Dt:
			w.block(1)
			w.prefixes = append(w.prefixes, prefix{first: "- ", rest: "  "})
			r.children(c)
			w.prefixes = w.prefixes[:len(w.prefixes)-1]
			w.block(1)
		case atom.Dd:
			w.block(1)
			w.prefixes = append(w.prefixes, prefix{first: "  ", rest: "  "})
			r.children(c)
			w.prefixes = w.prefixes[:len(w.prefixes)-1]
			w.block(1)
		default:
			r.node(c)
		}
	}
	if n.Parent != nil && n.Parent.DataAtom == atom.Dd {
		w.block(1)
	} else {
		w.block(2)
	}
}

func (r *renderer) inTOC(n *html.Node) bool {
	for a := n.Parent; a != nil; a = a.Parent {
		if a.DataAtom == atom.Dl && hasToken(attr(a, "class"), "toc") {
			return true
		}
		if a.DataAtom != atom.Dl && a.DataAtom != atom.Dd {
			return false
		}
	}
	return false
}

// pre renders preformatted text as a fenced code block, white space kept as it is.
func (r *renderer) pre(n *html.Node) {
	w := r.w
	code := r.preText(n)
	if w.inline > 0 {
		// In a table cell: each line as inline code.
		first := true
		for _, line := range strings.Split(code, "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			if !first {
				w.block(1)
			}
			first = false
			w.codeSpan(line)
		}
		return
	}
	// The parser drops the newline right after <pre>; generators often add more, and trailing ones.
	code = strings.TrimLeft(code, "\n")
	code = strings.TrimRight(code, " \t\n")
	if code == "" {
		return
	}
	fence := "```"
	if k := longestRun(code, '`'); k >= 3 {
		fence = strings.Repeat("`", k+1)
	}
	w.block(2)
	defer w.resume(w.suspendMarks())
	w.raw(fence + codeLang(n))
	for line := range strings.SplitSeq(code, "\n") {
		w.newline(line == "")
		w.put(line)
	}
	w.newline(false)
	w.put(fence)
	w.block(2)
}

// preText is the text of a <pre>, with <br> as newlines and line-number gutters left out.
func (r *renderer) preText(n *html.Node) string {
	var sb strings.Builder
	walk(n, func(c *html.Node) bool {
		switch c.Type {
		case html.TextNode:
			sb.WriteString(c.Data)
		case html.ElementNode:
			if c != n && (alwaysDropped(c) || r.p.skip != nil && r.p.skip[c]) {
				return false
			}
			if c.DataAtom == atom.Br {
				sb.WriteByte('\n')
			}
			for _, t := range strings.Fields(attr(c, "class")) {
				if t == "linenos" || t == "lineno" || t == "line-numbers-rows" || t == "gutter" {
					return false
				}
			}
		}
		return true
	})
	s := sb.String()
	if strings.IndexByte(s, '\r') >= 0 {
		s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	return s
}

// codeLang reads a code block's language from the class names highlighters use, on the <pre>, its
// <code>, or a wrapper (Sphinx: <div class="highlight-python">). DocBook's programlisting says nothing
// about the language, so none is guessed.
func codeLang(n *html.Node) string {
	check := func(e *html.Node) string {
		if v := attr(e, "data-lang"); v != "" {
			return v
		}
		for _, t := range strings.Fields(attr(e, "class")) {
			for _, p := range []string{"language-", "lang-", "highlight-", "sourceCode-"} {
				if strings.HasPrefix(t, p) && len(t) > len(p) {
					return t[len(p):]
				}
			}
		}
		return ""
	}
	lang := check(n)
	if lang == "" {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && c.DataAtom == atom.Code {
				lang = check(c)
				break
			}
		}
	}
	for a, i := n.Parent, 0; lang == "" && a != nil && i < 3; a, i = a.Parent, i+1 {
		lang = check(a)
	}
	switch lang {
	case "default", "none", "text", "plaintext", "nohighlight":
		return ""
	}
	for i := 0; i < len(lang); i++ {
		c := lang[i]
		if !(isAlnum(c) && c < 0x80 || c == '-' || c == '+' || c == '_' || c == '.' || c == '#') {
			return ""
		}
	}
	if len(lang) > 32 {
		return ""
	}
	return lang
}
