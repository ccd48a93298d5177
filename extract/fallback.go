package extract

import (
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// tokenText is the way out for pages the parser rejects (nested deeper than it allows): the text of
// the token stream in paragraphs, headings kept, with the page's links. No main-content detection is
// possible without a tree, so everything outside script and style is kept.
func tokenText(p *page, src string, limit int) *Result {
	z := html.NewTokenizer(strings.NewReader(src))
	w := &writer{}
	w.reset(limit)
	skipDepth := 0
	inTitle := false
	headingLevel := 0
	var title, firstHeading strings.Builder
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		switch tt {
		case html.TextToken:
			if skipDepth > 0 {
				continue
			}
			t := z.Text()
			if inTitle {
				title.Write(t)
				continue
			}
			if headingLevel > 0 && firstHeading.Len() < 256 {
				firstHeading.Write(t)
			}
			w.text(string(t))
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			end := tt == html.EndTagToken
			switch a {
			case atom.Script, atom.Style, atom.Noscript, atom.Template, atom.Svg, atom.Textarea:
				if tt == html.StartTagToken {
					skipDepth++
				} else if end && skipDepth > 0 {
					skipDepth--
				}
				continue
			case atom.Title:
				inTitle = !end && tt == html.StartTagToken
				continue
			case atom.A, atom.Base, atom.Link, atom.Iframe, atom.Frame, atom.Area:
				for hasAttr && !end {
					var k, v []byte
					k, v, hasAttr = z.TagAttr()
					key := string(k)
					switch {
					case a == atom.Base && key == "href" && p.baseHref == "":
						p.baseHref = string(v)
					case a == atom.Link && key == "href":
					case (a == atom.A || a == atom.Area) && key == "href", (a == atom.Iframe || a == atom.Frame) && key == "src":
						p.rawLinks = append(p.rawLinks, string(v))
					}
				}
			case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
				w.block(2)
				if end {
					headingLevel = 0
				} else {
					headingLevel = int(name[1] - '0')
					w.raw(strings.Repeat("#", headingLevel) + " ")
					w.lineStart = false
				}
				continue
			}
			if isBlockAtom(a) {
				w.block(2)
			}
		}
		if w.full {
			break
		}
	}
	if p.baseHref != "" && p.url != nil {
		if b, err := p.url.Parse(strings.TrimSpace(p.baseHref)); err == nil {
			p.base = b
		}
	}
	t := collapseSpace(title.String())
	if t == "" {
		t = collapseSpace(firstHeading.String())
	}
	md := strings.TrimRight(string(w.buf), "\n ")
	r := &renderer{}
	r.main.buf = []byte(md)
	// Sections: cut at the heading lines written above.
	off := 0
	for _, line := range strings.SplitAfter(md, "\n") {
		if lvl, text := atxHeading(strings.TrimRight(line, "\n")); lvl > 0 && (off == 0 || md[off-1] == '\n' && off >= 2 && md[off-2] == '\n') {
			r.secs = append(r.secs, secMark{start: off, level: lvl, path: []string{text}})
		}
		off += len(line)
	}
	_, secs := r.finish()
	return &Result{Title: t, Markdown: md, Sections: secs, Links: p.links()}
}

func isBlockAtom(a atom.Atom) bool {
	switch a {
	case atom.P, atom.Div, atom.Section, atom.Article, atom.Main, atom.Header, atom.Footer, atom.Li,
		atom.Ul, atom.Ol, atom.Dl, atom.Dt, atom.Dd, atom.Table, atom.Tr, atom.Td, atom.Th, atom.Pre,
		atom.Blockquote, atom.Hr, atom.Br, atom.Figure, atom.Figcaption, atom.Caption, atom.Details,
		atom.Summary, atom.Address, atom.Nav, atom.Aside, atom.Body, atom.Form:
		return true
	}
	return false
}
