package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"panther"
	"panther/kb"
)

// Searcher is what kb_search needs: *kb.Service satisfies it.
type Searcher interface {
	Search(ctx context.Context, q panther.Query) ([]panther.Hit, error)
}

// Reader is what kb_read needs: *kb.Service satisfies it. When a Reader is also a ChunkReader,
// kb_read can return one section of a page (url#anchor) rather than the whole page.
type Reader interface {
	Document(ctx context.Context, url string) (panther.Document, error)
}

// ChunkReader returns a stored page's chunks in order (every panther.DocumentStore is one).
type ChunkReader interface {
	Chunks(ctx context.Context, docID int64) ([]panther.Chunk, error)
}

// Bounds of the knowledge-base tools.
const (
	KBSearchDefaultK = 6
	KBSearchMaxK     = 20
	// KBPassageChars bounds one passage in a kb_search result.
	KBPassageChars = 1200
	// KBReadChars bounds a kb_read result.
	KBReadChars = 20_000
	// maxListedSections bounds the list of sections a trimmed kb_read result ends with.
	maxListedSections = 50
)

// decodeArgs decodes a tool's JSON arguments into v, naming the tool in the error.
func decodeArgs(tool string, args json.RawMessage, v any) error {
	if len(bytes.TrimSpace(args)) == 0 {
		args = json.RawMessage("{}")
	}
	if err := json.Unmarshal(args, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return panther.Invalidf("%s: argument %q must be of type %s, not %s", tool, te.Field, te.Type.Kind(), te.Value)
		}
		return panther.Invalidf("%s: arguments are not a JSON object of the expected shape: %v", tool, err)
	}
	return nil
}

type kbSearch struct{ s Searcher }

// KBSearch returns the kb_search tool: a search of the knowledge base returning passages with
// their citations.
func KBSearch(s Searcher) Tool { return kbSearch{s: s} }

func (kbSearch) Spec() panther.ToolSpec {
	return panther.ToolSpec{
		Name: "kb_search",
		Description: "Search the documentation knowledge base. Returns the best matching passages, each under " +
			"a numbered source line \"[n] title — heading (url#anchor)\" to cite as [n]. Use specific words " +
			"(names of functions, options, errors); search again with other words if nothing fits. " +
			"Read a whole section or page with kb_read.",
		Parameters: json.RawMessage(`{"type":"object","properties":{` +
			`"query":{"type":"string","description":"what to look for"},` +
			`"k":{"type":"integer","description":"how many passages, default 6, at most 20","minimum":1,"maximum":20}` +
			`},"required":["query"]}`),
	}
}

func (t kbSearch) Run(ctx context.Context, args json.RawMessage) (ToolResult, error) {
	var a struct {
		Query string `json:"query"`
		K     int    `json:"k"`
	}
	if err := decodeArgs("kb_search", args, &a); err != nil {
		return ToolResult{}, err
	}
	a.Query = strings.TrimSpace(a.Query)
	if a.Query == "" {
		return ToolResult{}, panther.Invalidf("kb_search: query is empty")
	}
	switch {
	case a.K < 0:
		return ToolResult{}, panther.Invalidf("kb_search: k must be between 1 and %d, got %d", KBSearchMaxK, a.K)
	case a.K == 0:
		a.K = KBSearchDefaultK
	case a.K > KBSearchMaxK:
		a.K = KBSearchMaxK
	}
	hits, err := t.s.Search(ctx, panther.Query{Text: a.Query, K: a.K})
	if err != nil {
		return ToolResult{}, fmt.Errorf("kb_search: %w", err)
	}
	if len(hits) == 0 {
		return ToolResult{Content: fmt.Sprintf("No passages found for %q. Try other words, or fewer of them.", a.Query)}, nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d passages for %q, best first:\n", len(hits), a.Query)
	res := ToolResult{Citations: make([]panther.Citation, 0, len(hits))}
	for i, h := range hits {
		res.Citations = append(res.Citations, h.Citation)
		b.WriteString("\n")
		b.WriteString(CiteMark(i))
		b.WriteString("\n")
		b.WriteString(passage(h))
		b.WriteString("\n")
	}
	res.Content = b.String()
	return res, nil
}

// passage is the text of a hit as kb_search shows it: the whole passage when it is short enough, else
// the part that matched.
func passage(h panther.Hit) string {
	text := strings.TrimSpace(h.Text)
	if len(text) <= KBPassageChars {
		if text == "" {
			return strings.TrimSpace(h.Snippet)
		}
		return text
	}
	read := "kb_read " + h.Link()
	if sn := strings.TrimSpace(h.Snippet); sn != "" {
		return trimText(sn, KBPassageChars, "") + "\n(excerpt; " + read + " for the whole section)"
	}
	return trimText(text, KBPassageChars, "(excerpt; "+read+" for the whole section)")
}

type kbRead struct{ r Reader }

// KBRead returns the kb_read tool: a stored page, or one section of it, as markdown.
func KBRead(r Reader) Tool { return kbRead{r: r} }

func (kbRead) Spec() panther.ToolSpec {
	return panther.ToolSpec{
		Name: "kb_read",
		Description: "Read a page of the documentation knowledge base as markdown: a whole page (its URL) or one " +
			"section of it (URL#anchor, as kb_search gives). Cite it with the number of its source line.",
		Parameters: json.RawMessage(`{"type":"object","properties":{` +
			`"url":{"type":"string","description":"the page URL, or URL#anchor for one section"}` +
			`},"required":["url"]}`),
	}
}

func (t kbRead) Run(ctx context.Context, args json.RawMessage) (ToolResult, error) {
	var a struct {
		URL string `json:"url"`
	}
	if err := decodeArgs("kb_read", args, &a); err != nil {
		return ToolResult{}, err
	}
	raw := strings.TrimSpace(a.URL)
	if raw == "" {
		return ToolResult{}, panther.Invalidf("kb_read: url is empty")
	}
	page, anchor, _ := strings.Cut(raw, "#")
	if !strings.Contains(page, "://") {
		return ToolResult{}, panther.Invalidf("kb_read: %q is not an absolute URL (give one that kb_search returned)", raw)
	}
	doc, err := t.document(ctx, page)
	if err != nil {
		if errors.Is(err, panther.ErrNotFound) {
			return ToolResult{}, panther.NotFoundf("kb_read: %s is not in the knowledge base (kb_search finds pages that are)", page)
		}
		return ToolResult{}, fmt.Errorf("kb_read: %w", err)
	}
	cite := panther.Citation{URL: doc.URL, Title: doc.Title, FetchedAt: doc.FetchedAt, ContentHash: doc.ContentHash}
	var notes []string
	if doc.Status == panther.DocGone {
		notes = append(notes, "Note: this page is no longer served by its site; this is the last stored version.")
	}
	body := doc.Markdown
	var chunks []panther.Chunk
	if cr, ok := t.r.(ChunkReader); ok && doc.ID != 0 {
		// Chunks are a help, not a need: without them the whole page is still an answer.
		if cs, err := cr.Chunks(ctx, doc.ID); err == nil {
			chunks = cs
		} else if ctx.Err() != nil {
			return ToolResult{}, fmt.Errorf("kb_read: %w", ctx.Err())
		}
	}
	if anchor != "" {
		switch sec := kb.SectionMarkdown(chunks, anchor); {
		case sec != "":
			body = sec
			cite.Anchor = anchor
			for _, c := range chunks {
				if c.Anchor == anchor {
					cite.Heading = panther.HeadingPath(c.Heading)
					break
				}
			}
		case chunks == nil:
			notes = append(notes, fmt.Sprintf("Note: sections cannot be read separately here; the whole page follows (look for #%s in it).", anchor))
		default:
			notes = append(notes, fmt.Sprintf("Note: the page has no section #%s; the whole page follows.", anchor))
		}
	}
	if strings.TrimSpace(body) == "" {
		body = "(the page has no text)"
	}
	if len(body) > KBReadChars {
		note := fmt.Sprintf("[trimmed: showing about %d of %d characters", KBReadChars, len(body))
		if cite.Anchor == "" && len(chunks) > 0 {
			note += "; read one section with kb_read url#anchor. Sections:"
			seen := map[string]bool{}
			for _, c := range chunks {
				if c.Anchor == "" || seen[c.Anchor] || c.Navigation {
					continue
				}
				if len(seen) == maxListedSections {
					note += "\n- …"
					break
				}
				seen[c.Anchor] = true
				note += "\n- " + panther.HeadingPath(c.Heading) + " (" + doc.URL + "#" + c.Anchor + ")"
			}
		}
		body = trimText(body, KBReadChars, note+"]")
	}
	var b strings.Builder
	b.WriteString(CiteMark(0))
	b.WriteString("\n")
	for _, n := range notes {
		b.WriteString(n)
		b.WriteString("\n")
	}
	b.WriteString("\n")
	b.WriteString(body)
	return ToolResult{Content: b.String(), Citations: []panther.Citation{cite}}, nil
}

// document looks a page up, trying it also with and without a trailing slash.
func (t kbRead) document(ctx context.Context, url string) (panther.Document, error) {
	doc, err := t.r.Document(ctx, url)
	if err == nil || !errors.Is(err, panther.ErrNotFound) {
		return doc, err
	}
	alt := url + "/"
	if strings.HasSuffix(url, "/") {
		alt = strings.TrimSuffix(url, "/")
	}
	if d, err2 := t.r.Document(ctx, alt); err2 == nil {
		return d, nil
	}
	return doc, err
}
