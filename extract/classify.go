package extract

import (
	"slices"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// alwaysDropped elements never carry readable main content.
func alwaysDropped(n *html.Node) bool {
	switch n.DataAtom {
	case atom.Script, atom.Style, atom.Noscript, atom.Template, atom.Svg, atom.Iframe, atom.Frame,
		atom.Frameset, atom.Object, atom.Embed, atom.Canvas, atom.Video, atom.Audio, atom.Button,
		atom.Input, atom.Select, atom.Textarea, atom.Option, atom.Datalist, atom.Dialog, atom.Head,
		atom.Link, atom.Meta, atom.Map:
		return true
	}
	if n.Namespace == "svg" {
		return true
	}
	return false
}

// isHint says whether n is, by its structure, a container of a page's main content: <main>,
// role=main, <article>, or the content element of a known documentation generator.
func isHint(n *html.Node) bool {
	switch n.DataAtom {
	case atom.Main, atom.Article:
		return true
	case atom.Html, atom.Body:
		return false
	}
	for _, a := range n.Attr {
		switch a.Key {
		case "role":
			if strings.EqualFold(a.Val, "main") {
				return true
			}
		case "class":
			for _, t := range strings.Fields(a.Val) {
				switch t {
				case "md-content", "theme-doc-markdown", "markdown-body", "rst-content", "entry-content",
					"post-content", "article-content", "article-body", "main-content", "page-content":
					return true
				case "body":
					// Sphinx: <div class="body" role="main">, role missing in older themes.
					if n.DataAtom == atom.Div {
						return true
					}
				}
			}
		case "id":
			switch strings.ToLower(a.Val) {
			case "main-content", "maincontent", "content", "main":
				return true
			}
		}
	}
	return false
}

// isBoilerplate says whether an element is page furniture: navigation, headers and footers, sidebars,
// banners, hidden text. Structure decides first (tags, ARIA roles), then class and id names.
func (p *page) isBoilerplate(n *html.Node, st *stats) bool {
	switch n.DataAtom {
	case atom.Html, atom.Body, atom.Main, atom.Article:
		return false
	case atom.Nav, atom.Aside:
		return true
	case atom.Footer:
		return true
	case atom.Header:
		// An article's <header> usually holds its title.
		return st.h12 == 0
	}
	var class, id string
	for _, a := range n.Attr {
		switch a.Key {
		case "hidden":
			return true
		case "aria-hidden":
			if a.Val == "true" {
				return true
			}
		case "style":
			if hiddenStyle(a.Val) {
				return true
			}
		case "role":
			switch strings.ToLower(a.Val) {
			case "navigation", "contentinfo", "complementary", "search", "menu", "menubar", "toolbar",
				"dialog", "alertdialog", "tablist":
				return true
			case "banner":
				return st.h12 == 0
			}
		case "class":
			class = a.Val
		case "id":
			id = a.Val
		}
	}
	if class == "" && id == "" {
		return false
	}
	switch n.DataAtom {
	case atom.Div, atom.Section, atom.Ul, atom.Ol, atom.Table, atom.P, atom.Dl, atom.Form, atom.Details,
		atom.Li, atom.Center, atom.Span:
	default:
		return false
	}
	if n.DataAtom == atom.Span || n.DataAtom == atom.P {
		// Inline-ish elements only go when plainly hidden: their class names are too often words of
		// the text's own markup (Sphinx's "menuselection", DocBook's "navbar"-free spans).
		return hiddenClass(class)
	}
	return boilerplateName(strings.ToLower(class), st) || boilerplateID(strings.ToLower(id), st) || hiddenClass(class)
}

// boilerplateID is boilerplateName for ids, which documentation generators derive from the content
// (DocBook's "FUNCTIONS-INFO-COMMENT-TABLE" is a table of comment functions, not a comment widget):
// only short ids, such as "comments" or "site-footer", name page furniture.
func boilerplateID(id string, st *stats) bool {
	tokens := strings.FieldsFunc(id, func(r rune) bool { return r == '-' || r == '_' || r == '.' || r == ':' })
	if len(tokens) > 3 {
		return false
	}
	// Whole tokens only: "PAGEHEADERDATA-TABLE" documents a struct, it is not a page header.
	for _, t := range tokens {
		if boilerplateName(t, st) && (furnitureWord(t) || furnitureWord(strings.TrimSuffix(t, "s"))) {
			return true
		}
	}
	return false
}

func furnitureWord(t string) bool {
	return slices.Contains(strongNames, t) || slices.Contains(weakNames, t) ||
		slices.Contains([]string{"nav", "topnav", "sidenav", "subnav", "ad", "ads", "toolbar", "feedback"}, t)
}

func hiddenStyle(s string) bool {
	if !strings.Contains(s, "none") && !strings.Contains(s, "hidden") {
		return false
	}
	s = strings.ToLower(strings.ReplaceAll(s, " ", ""))
	return strings.Contains(s, "display:none") || strings.Contains(s, "visibility:hidden")
}

func hiddenClass(class string) bool {
	if class == "" {
		return false
	}
	for _, t := range strings.Fields(class) {
		switch t {
		case "sr-only", "visually-hidden", "screen-reader-text", "d-none", "hidden", "hide", "skip-link",
			"skip-links", "print-only":
			return true
		}
	}
	return false
}

// strongNames mark furniture wherever they appear in a class or id.
var strongNames = []string{
	"sidebar", "navbar", "navheader", "navfooter", "navigation", "breadcrumb", "cookie", "consent", "gdpr",
	"footer", "menu", "skiplink", "skip-link", "advert", "sponsor", "popup", "newsletter", "pagination",
	"pager", "tableofcontents", "table-of-contents", "edit-this-page", "editthispage", "disqus",
	"sphinxsidebar", "social", "masthead", "subscribe", "prev-next", "prevnext",
}

// weakNames mark furniture unless the name also says content ("comment-content", "entry-header" with
// the title in it).
var weakNames = []string{"header", "banner", "comment", "related", "share", "sharing", "promo"}

// boilerplateName matches a lower-cased class or id against the furniture vocabulary.
func boilerplateName(s string, st *stats) bool {
	if s == "" {
		return false
	}
	for _, w := range strongNames {
		if strings.Contains(s, w) {
			return true
		}
	}
	// Whole words (split at - and _) that are too short for substring matching.
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '-' || r == '_' }) {
		switch f {
		case "nav", "topnav", "sidenav", "subnav", "ad", "ads", "toc", "toolbar", "actions", "feedback":
			if f == "toc" && (s == "toc" || strings.Contains(s, "toctree")) {
				continue // DocBook's and Sphinx's in-page tables of contents are the page's content
			}
			return true
		}
	}
	for _, w := range weakNames {
		if strings.Contains(s, w) {
			if st.h12 > 0 || strings.Contains(s, "content") || strings.Contains(s, "article") {
				return false
			}
			return true
		}
	}
	return false
}

// isPermalink says whether n is a heading's self-link ("¶", "#", an icon) or a "skip to content" link:
// navigation aids that mean nothing as text.
func isPermalink(n *html.Node) bool {
	if n.DataAtom != atom.A {
		return false
	}
	href, _ := attrOK(n, "href")
	if href == "" || href[0] != '#' {
		return false
	}
	for _, t := range strings.Fields(attr(n, "class")) {
		switch t {
		case "headerlink", "anchor", "anchor-link", "hash-link", "header-anchor", "heading-anchor",
			"anchorjs-link", "permalink", "headline-hash", "skip-link", "skiplink":
			return true
		}
	}
	// Short symbol text, or "Skip to content".
	var sb strings.Builder
	walk(n, func(c *html.Node) bool {
		if c.Type == html.TextNode {
			sb.WriteString(c.Data)
		}
		return sb.Len() < 64
	})
	t := strings.TrimSpace(sb.String())
	if t == "" {
		return false
	}
	switch t {
	case "¶", "#", "§", "🔗", "⚓", "link", "permalink", "Permalink":
		return true
	}
	lt := strings.ToLower(t)
	return strings.HasPrefix(lt, "skip to ") || strings.HasPrefix(lt, "jump to ") || strings.HasPrefix(lt, "skip navigation")
}

func headingLevel(n *html.Node) int {
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
	v, _ := attrOK(n, key)
	return v
}

func attrOK(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key && a.Namespace == "" {
			return a.Val, true
		}
	}
	return "", false
}

func hasToken(list, tok string) bool {
	for _, t := range strings.Fields(list) {
		if strings.EqualFold(t, tok) {
			return true
		}
	}
	return false
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

func countNonSpace(s string) int {
	c := 0
	for i := 0; i < len(s); i++ {
		if !isSpaceByte(s[i]) {
			c++
		}
	}
	return c
}

// collapseSpace trims s and turns each run of white space (no-break space included) into one space.
func collapseSpace(s string) string {
	var sb strings.Builder
	space := false
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '\u00a0' {
			space = sb.Len() > 0
			continue
		}
		if space {
			sb.WriteByte(' ')
			space = false
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// isBlock says whether an element breaks the flow of text.
func isBlock(n *html.Node) bool {
	switch n.DataAtom {
	case atom.P, atom.Div, atom.Section, atom.Article, atom.Main, atom.Header, atom.Footer, atom.Li,
		atom.Ul, atom.Ol, atom.Dl, atom.Dt, atom.Dd, atom.Table, atom.Tr, atom.Td, atom.Th, atom.Pre,
		atom.Blockquote, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Hr, atom.Figure,
		atom.Figcaption, atom.Caption, atom.Details, atom.Summary, atom.Address, atom.Nav, atom.Aside:
		return true
	}
	return false
}

// isEditLink says whether n is an "Edit this page" link of a docs generator.
func isEditLink(n *html.Node) bool {
	for _, t := range strings.Fields(attr(n, "class")) {
		if strings.Contains(t, "edit-this-page") || strings.Contains(t, "edit-link") || strings.Contains(t, "editlink") || strings.Contains(t, "edit-page") {
			return true
		}
	}
	t := ""
	if c := n.FirstChild; c != nil && c.Type == html.TextNode && c.NextSibling == nil {
		t = strings.ToLower(strings.TrimSpace(c.Data))
	}
	return strings.HasPrefix(t, "edit this page") || strings.HasPrefix(t, "edit on github") || strings.HasPrefix(t, "improve this page") || strings.HasPrefix(t, "edit page")
}
