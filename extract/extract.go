// Package extract turns a fetched page (HTML, markdown or plain text) into clean markdown split into
// sections at headings, with the page's links. It is a pure function of (URL, content type, bytes).
//
// HTML is parsed once (golang.org/x/net/html); everything else works on that one tree:
//
//   - One iterative scan of the whole tree collects metadata (title, <base>, canonical, robots, Go's
//     <!--{"Title":...}--> comment), every link for the crawler, and per-element text and link-text
//     sums. On the way up it marks boilerplate subtrees: nav/aside/footer, headers without a
//     top-level heading, ARIA navigation roles, hidden elements, and blocks whose class or id names
//     furniture (nav, sidebar, breadcrumb, cookie, consent, footer, menu, pagination, ...). DocBook's
//     navheader/navfooter and Sphinx's sphinxsidebar/related fall out of these rules.
//   - The main content is the best structural hint (<main>, role=main, a lone <article>, the content
//     element of MkDocs, Docusaurus, Sphinx, GitHub, WordPress), refined to a nested hint that holds
//     most of its text. Without a hint, content detection descends from <body> into the container
//     child that holds at least three quarters of the (link-discounted) text, stopping where a
//     top-level heading would be left behind.
//   - The renderer writes that subtree as markdown, recording where each heading starts; sections
//     are cut from the same buffer, so joined with blank lines they are exactly Result.Markdown.
//
// A page that has text never comes out empty: if the chosen container renders nothing, the body is
// rendered, and then the body without boilerplate removal.
package extract

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"

	"panther"
)

// ErrUnsupported is returned for content types extraction does not handle.
var ErrUnsupported = errors.New("unsupported content type")

// Result is what extraction finds in one page.
type Result struct {
	Title string
	// Markdown is the whole main content as clean markdown; it starts with "# Title" when a title is known.
	Markdown string
	// Sections are the same content split at headings.
	Sections []panther.Section
	// Links are every http(s)/file link of the whole page (navigation included, since the crawler needs
	// them), absolute, without fragment, deduplicated, in document order.
	Links []string
	// Canonical is the absolute URL of <link rel="canonical">, "" if none.
	Canonical string
	// NoIndex and NoFollow come from <meta name="robots">.
	NoIndex, NoFollow bool
}

// Extract dispatches on contentType (its media type, params ignored) and, when that is empty or
// application/octet-stream, on the URL's extension.
func Extract(pageURL *url.URL, contentType string, body []byte) (*Result, error) {
	mt := contentType
	if m, _, err := mime.ParseMediaType(contentType); err == nil {
		mt = m
	} else if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt == "" || mt == "application/octet-stream" {
		switch extOf(pageURL) {
		case ".html", ".htm", ".xhtml":
			mt = "text/html"
		case ".md", ".markdown":
			mt = "text/markdown"
		case ".txt", ".text":
			mt = "text/plain"
		case "":
			// No type and no extension ("https://site/docs/"): look at the bytes, as browsers do.
			if m, _, err := mime.ParseMediaType(http.DetectContentType(body)); err == nil && m == "text/html" {
				mt = m
			}
		}
	}
	switch mt {
	case "text/html", "application/xhtml+xml":
		return HTML(pageURL, body)
	case "text/markdown", "text/x-markdown":
		return Markdown(pageURL, body)
	case "text/plain":
		return Text(pageURL, body)
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupported, contentType)
}

func extOf(u *url.URL) string {
	if u == nil {
		return ""
	}
	return strings.ToLower(path.Ext(u.Path))
}
