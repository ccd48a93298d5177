package mcp

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/jsonschema-go/jsonschema"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"panther"
	"panther/crawl"
	"panther/kb"
)

// Bounds of what one tool call may ask for and return.
const (
	// MaxQueryChars bounds a search query, MaxQuestionChars a question to ask, MaxURLChars a URL.
	MaxQueryChars    = 1000
	MaxQuestionChars = 4000
	MaxURLChars      = 2048
	// DefaultK passages a search returns unless asked; MaxK at most.
	DefaultK = 10
	MaxK     = 50
	// PassageChars bounds one passage in a search result; a longer one is cut to its snippet with a
	// pointer to read it whole.
	PassageChars = 1500
	// ReadChars bounds the markdown a read returns; a longer page ends with a note listing its
	// sections, each readable on its own.
	ReadChars = 50_000
	// DefaultCrawlPages pages a crawl fetches unless asked; MaxCrawlPages at most.
	DefaultCrawlPages = 50
	MaxCrawlPages     = 200
	// maxCountedPages bounds the pages list_sources counts per source.
	maxCountedPages = 100_000
	// maxListedSections bounds the sections named in a trimmed page's note or a missing-anchor error.
	maxListedSections = 50
)

// SearchInput is the search tool's arguments.
type SearchInput struct {
	Query        string `json:"query" jsonschema:"what to look for, in plain words; names of functions, options and error messages work best"`
	K            int    `json:"k,omitempty" jsonschema:"how many passages to return (default 10)"`
	Mode         string `json:"mode,omitempty" jsonschema:"lexical (words), vector (meaning) or hybrid (both); default hybrid when vectors are configured, else lexical"`
	Source       string `json:"source,omitempty" jsonschema:"only pages crawled from this source: its URL as list_sources shows it"`
	URLPrefix    string `json:"url_prefix,omitempty" jsonschema:"only pages whose URL starts with this"`
	FetchedAfter string `json:"fetched_after,omitempty" jsonschema:"only pages fetched after this time: RFC 3339 (2026-11-01T00:00:00Z) or a date (2026-11-01)"`
}

// SearchHit is one passage of a search, with its citation.
type SearchHit struct {
	// Link is url#anchor, the address of the cited section; read takes it.
	Link    string `json:"link" jsonschema:"url#anchor: the cited section; read takes it"`
	URL     string `json:"url"`
	Anchor  string `json:"anchor,omitempty"`
	Title   string `json:"title"`
	Heading string `json:"heading,omitempty" jsonschema:"the section's heading path, outermost first, joined by ' > '"`
	Snippet string `json:"snippet" jsonschema:"the part of the passage that matched"`
	// Text is the passage, cut to PassageChars.
	Text        string    `json:"text" jsonschema:"the passage as markdown, or an excerpt of a long one"`
	Score       float64   `json:"score"`
	Found       string    `json:"found,omitempty" jsonschema:"which side of a hybrid search found it: lexical, vector or both"`
	FetchedAt   time.Time `json:"fetched_at"`
	ContentHash string    `json:"content_hash"`
}

// SearchOutput is the search tool's structured result.
type SearchOutput struct {
	Query string      `json:"query"`
	Mode  string      `json:"mode,omitempty"`
	Hits  []SearchHit `json:"hits"`
	Note  string      `json:"note,omitempty"`
}

// ReadInput is the read tool's arguments.
type ReadInput struct {
	URL string `json:"url" jsonschema:"a page URL, or URL#anchor for one section, as search returns them"`
}

// ReadOutput is the read tool's structured result: the page or section with its citation.
type ReadOutput struct {
	URL         string    `json:"url"`
	Anchor      string    `json:"anchor,omitempty"`
	Title       string    `json:"title"`
	Heading     string    `json:"heading,omitempty"`
	Status      string    `json:"status" jsonschema:"current, or gone when the site no longer serves the page (this is then the last stored version)"`
	FetchedAt   time.Time `json:"fetched_at"`
	ContentHash string    `json:"content_hash"`
	Markdown    string    `json:"markdown"`
	// Trimmed says the markdown was cut to ReadChars; it then ends with a note naming the sections.
	Trimmed bool `json:"trimmed,omitempty"`
}

// ListSourcesInput is the list_sources tool's (empty) arguments.
type ListSourcesInput struct{}

// SourceInfo is one crawled source.
type SourceInfo struct {
	ID  int64  `json:"id"`
	URL string `json:"url"`
	// Pages counts the source's current pages; PagesCapped says there are more than that.
	Pages       int       `json:"pages"`
	PagesCapped bool      `json:"pages_capped,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	LastCrawlAt time.Time `json:"last_crawl_at,omitzero" jsonschema:"when the last crawl of the source ran to its end; absent if none has"`
}

// ListSourcesOutput is the list_sources tool's structured result.
type ListSourcesOutput struct {
	Sources []SourceInfo `json:"sources"`
}

// CrawlInput is the crawl tool's arguments.
type CrawlInput struct {
	URL      string `json:"url" jsonschema:"http(s) URL of the documentation site or section to crawl; the crawl stays under its path"`
	MaxPages int    `json:"max_pages,omitempty" jsonschema:"fetch at most this many pages (default 50)"`
}

// CrawlOutput is the crawl tool's structured result.
type CrawlOutput struct {
	URL       string `json:"url"`
	Fetched   int    `json:"fetched"`
	New       int    `json:"new"`
	Changed   int    `json:"changed"`
	Unchanged int    `json:"unchanged"`
	Failed    int    `json:"failed"`
	Skipped   int    `json:"skipped"`
	// Truncated says the page limit stopped the crawl with pages still queued; crawling the same URL
	// again goes on from there.
	Truncated bool `json:"truncated"`
}

// AddSourceInput is the add_source tool's arguments.
type AddSourceInput struct {
	URL string `json:"url" jsonschema:"http(s) URL of the documentation site or section to add; a later crawl stays under its path"`
}

// AddSourceOutput is the add_source tool's structured result.
type AddSourceOutput struct {
	ID  int64  `json:"id"`
	URL string `json:"url" jsonschema:"the source as stored: the URL normalised the way the crawler stores its seeds"`
	// Added is false when the source was already there; nothing changed then.
	Added     bool      `json:"added"`
	CreatedAt time.Time `json:"created_at"`
}

// AskInput is the ask tool's arguments.
type AskInput struct {
	Question string `json:"question" jsonschema:"the question, in plain words"`
}

// Citation is a source an answer cites.
type Citation struct {
	Link        string    `json:"link" jsonschema:"url#anchor of the cited section"`
	URL         string    `json:"url"`
	Anchor      string    `json:"anchor,omitempty"`
	Title       string    `json:"title"`
	Heading     string    `json:"heading,omitempty"`
	FetchedAt   time.Time `json:"fetched_at"`
	ContentHash string    `json:"content_hash,omitempty"`
}

// AskOutput is the ask tool's structured result.
type AskOutput struct {
	Answer    string     `json:"answer"`
	Citations []Citation `json:"citations"`
}

func (s *Server) addTools() {
	readOnly := &sdk.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: new(false)}
	sdk.AddTool(s.sdk, &sdk.Tool{
		Name:  "search",
		Title: "Search the documentation",
		Description: fmt.Sprintf("Search the documentation knowledge base. Returns up to k passages (default %d, at most %d), "+
			"best first, each with its citation: title, section heading and url#anchor. Use specific words; "+
			"search again with other words if nothing fits. Read a whole section or page with read.", DefaultK, MaxK),
		Annotations: readOnly,
		InputSchema: mustSchema[SearchInput](func(p map[string]*jsonschema.Schema) {
			p["query"].MinLength, p["query"].MaxLength = new(1), new(MaxQueryChars)
			p["k"].Minimum, p["k"].Maximum = new(1.0), new(float64(MaxK))
			p["mode"].Enum = []any{string(panther.ModeLexical), string(panther.ModeVector), string(panther.ModeHybrid)}
			p["source"].MaxLength, p["url_prefix"].MaxLength = new(MaxURLChars), new(MaxURLChars)
			p["fetched_after"].MaxLength = new(64)
		}),
		OutputSchema: outputSchema[SearchOutput](),
	}, s.search)
	sdk.AddTool(s.sdk, &sdk.Tool{
		Name:  "read",
		Title: "Read a page or section",
		Description: fmt.Sprintf("Read a stored documentation page as markdown: the whole page (its URL) or one section "+
			"of it (URL#anchor, as search returns). Pages longer than %d characters are cut, with a list of their "+
			"sections to read one by one.", ReadChars),
		Annotations: readOnly,
		InputSchema: mustSchema[ReadInput](func(p map[string]*jsonschema.Schema) {
			p["url"].MinLength, p["url"].MaxLength = new(1), new(MaxURLChars)
		}),
		OutputSchema: outputSchema[ReadOutput](),
	}, s.read)
	sdk.AddTool(s.sdk, &sdk.Tool{
		Name:         "list_sources",
		Title:        "List crawled sources",
		Description:  "List the sites and folders the knowledge base was crawled from, with how many pages each has.",
		Annotations:  readOnly,
		OutputSchema: outputSchema[ListSourcesOutput](),
	}, s.listSources)
	if s.opts.AllowWrite {
		sdk.AddTool(s.sdk, &sdk.Tool{
			Name:  "crawl",
			Title: "Crawl a documentation site",
			Description: fmt.Sprintf("Crawl a documentation site into the knowledge base so that search finds its pages. "+
				"Give the URL of the docs' root or of the section you need: the crawl stays under that path. It fetches "+
				"at most max_pages pages (default %d, at most %d); crawling the same URL again goes on where the last "+
				"crawl stopped and refreshes changed pages. One crawl runs at a time.", DefaultCrawlPages, MaxCrawlPages),
			Annotations: &sdk.ToolAnnotations{DestructiveHint: new(false), OpenWorldHint: new(true)},
			InputSchema: mustSchema[CrawlInput](func(p map[string]*jsonschema.Schema) {
				p["url"].MinLength, p["url"].MaxLength = new(1), new(MaxURLChars)
				p["max_pages"].Minimum, p["max_pages"].Maximum = new(1.0), new(float64(MaxCrawlPages))
			}),
			OutputSchema: outputSchema[CrawlOutput](),
		}, s.crawl)
		sdk.AddTool(s.sdk, &sdk.Tool{
			Name:  "add_source",
			Title: "Add a documentation source",
			Description: "Register a documentation site (or a section of one) as a source of the knowledge base, without " +
				"crawling it: list_sources shows it at once, and a crawl of the same URL later fills it. Adding a " +
				"source that is already there changes nothing.",
			Annotations: &sdk.ToolAnnotations{DestructiveHint: new(false), IdempotentHint: true, OpenWorldHint: new(false)},
			InputSchema: mustSchema[AddSourceInput](func(p map[string]*jsonschema.Schema) {
				p["url"].MinLength, p["url"].MaxLength = new(1), new(MaxURLChars)
			}),
			OutputSchema: outputSchema[AddSourceOutput](),
		}, s.addSource)
	}
	if s.opts.Asker != nil {
		sdk.AddTool(s.sdk, &sdk.Tool{
			Name:  "ask",
			Title: "Ask the documentation",
			Description: "Answer a question from the documentation knowledge base: an agent searches and reads on its " +
				"own and answers with numbered citations (url#anchor). Slower than search; use it for questions " +
				"that need several passages put together.",
			Annotations: readOnly,
			InputSchema: mustSchema[AskInput](func(p map[string]*jsonschema.Schema) {
				p["question"].MinLength, p["question"].MaxLength = new(1), new(MaxQuestionChars)
			}),
			OutputSchema: outputSchema[AskOutput](),
		}, s.ask)
	}
}

// mustSchema infers T's input schema and lets tune add the bounds struct tags cannot say. It panics
// on a type it cannot describe, which is a programming error caught by any test.
func mustSchema[T any](tune func(props map[string]*jsonschema.Schema)) *jsonschema.Schema {
	sc, err := jsonschema.For[T](nil)
	if err != nil {
		panic(err)
	}
	tune(sc.Properties)
	return sc
}

// outputSchema infers T's output schema with its slices typed as arrays only: the Go inference also
// allows null for them (a nil slice), which some clients cannot map onto their single-type schema
// dialects (the MCP Inspector warns of it), and the tools never answer with a nil slice.
func outputSchema[T any]() *jsonschema.Schema {
	sc, err := jsonschema.For[T](nil)
	if err != nil {
		panic(err)
	}
	nonNullArrays(sc)
	return sc
}

func nonNullArrays(sc *jsonschema.Schema) {
	if sc == nil {
		return
	}
	if len(sc.Types) == 2 && slices.Contains(sc.Types, "null") && slices.Contains(sc.Types, "array") {
		sc.Type, sc.Types = "array", nil
	}
	for _, p := range sc.Properties {
		nonNullArrays(p)
	}
	nonNullArrays(sc.Items)
}

func (s *Server) search(ctx context.Context, _ *sdk.CallToolRequest, in SearchInput) (*sdk.CallToolResult, SearchOutput, error) {
	q, err := s.searchQuery(ctx, in)
	if err != nil {
		return nil, SearchOutput{}, err
	}
	hits, err := s.kb.Search(ctx, q)
	if err != nil {
		return nil, SearchOutput{}, toolError("search", err)
	}
	out := SearchOutput{Query: q.Text, Mode: string(q.Mode), Hits: make([]SearchHit, 0, len(hits))}
	if out.Mode == "" {
		if dm, ok := s.kb.(defaultModer); ok {
			out.Mode = string(dm.DefaultMode())
		}
	}
	if out.Mode != "" && out.Mode != string(panther.ModeLexical) {
		// As `panther search` warns: passages without a vector can only be found by their words.
		if c, ok := s.kb.(coverager); ok {
			if with, total, err := c.Coverage(ctx); err == nil && with < total {
				out.Note = fmt.Sprintf("vectors cover %d of %d passages; the others are found by their words only", with, total)
			}
		}
	}
	for _, h := range hits {
		out.Hits = append(out.Hits, SearchHit{
			Link: h.Link(), URL: h.URL, Anchor: h.Anchor, Title: h.Title, Heading: h.Heading,
			Snippet: trimText(strings.TrimSpace(h.Snippet), PassageChars, ""), Text: passage(h),
			Score: h.Score, Found: h.Found, FetchedAt: h.FetchedAt, ContentHash: h.ContentHash,
		})
	}
	return textResult(searchText(out)), out, nil
}

// searchQuery checks a search's arguments and turns them into a query.
func (s *Server) searchQuery(ctx context.Context, in SearchInput) (panther.Query, error) {
	q := panther.Query{Text: strings.TrimSpace(in.Query), K: in.K}
	switch {
	case q.Text == "":
		return q, errors.New("search: query is empty")
	case utf8.RuneCountInString(q.Text) > MaxQueryChars:
		return q, fmt.Errorf("search: query is longer than %d characters", MaxQueryChars)
	case q.K < 0 || q.K > MaxK:
		return q, fmt.Errorf("search: k must be between 1 and %d, got %d", MaxK, q.K)
	case q.K == 0:
		q.K = DefaultK
	}
	mode, err := panther.ParseSearchMode(in.Mode)
	if err != nil {
		return q, toolError("search", err)
	}
	q.Mode = mode
	q.URLPrefix = strings.TrimSpace(in.URLPrefix)
	if len(q.URLPrefix) > MaxURLChars {
		return q, fmt.Errorf("search: url_prefix is longer than %d characters", MaxURLChars)
	}
	if in.FetchedAfter != "" {
		if q.FetchedAfter, err = parseTime(in.FetchedAfter); err != nil {
			return q, fmt.Errorf("search: fetched_after: %w", err)
		}
	}
	if src := strings.TrimSpace(in.Source); src != "" {
		if q.SourceID, err = s.sourceID(ctx, src); err != nil {
			return q, err
		}
	}
	return q, nil
}

func parseTime(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-11-01T00:00:00Z) nor a date (2026-11-01)", v)
}

// sourceID finds the source whose URL is seed, a trailing slash either way.
func (s *Server) sourceID(ctx context.Context, seed string) (int64, error) {
	sources, err := s.sources.Sources(ctx)
	if err != nil {
		return 0, toolError("search: list sources", err)
	}
	want := strings.TrimSuffix(seed, "/")
	for _, src := range sources {
		if strings.TrimSuffix(src.URL, "/") == want {
			return src.ID, nil
		}
	}
	return 0, fmt.Errorf("search: no source %s in the knowledge base (list_sources shows the sources)", seed)
}

func searchText(out SearchOutput) string {
	var b strings.Builder
	if len(out.Hits) == 0 {
		fmt.Fprintf(&b, "No passages found for %q. Try other words, or fewer of them.", out.Query)
	} else {
		fmt.Fprintf(&b, "%d passages for %q, best first:\n", len(out.Hits), out.Query)
		for i, h := range out.Hits {
			where := h.Title
			if h.Heading != "" && h.Heading != h.Title {
				where += " — " + h.Heading
			}
			fmt.Fprintf(&b, "\n[%d] %s\n%s\n\n%s\n", i+1, where, h.Link, h.Text)
		}
	}
	if out.Note != "" {
		b.WriteString("\nNote: " + out.Note + "\n")
	}
	return b.String()
}

// passage is a hit's text as search shows it: the whole passage when it is short enough, else the part
// that matched with a pointer to the whole section.
func passage(h panther.Hit) string {
	text := strings.TrimSpace(h.Text)
	if len(text) <= PassageChars {
		if text == "" {
			return strings.TrimSpace(h.Snippet)
		}
		return text
	}
	more := "(excerpt; read " + h.Link() + " for the whole section)"
	if sn := strings.TrimSpace(h.Snippet); sn != "" {
		return trimText(sn, PassageChars-len(more)-2, "") + "\n" + more
	}
	return trimText(text, PassageChars-len(more)-2, more)
}

func (s *Server) read(ctx context.Context, _ *sdk.CallToolRequest, in ReadInput) (*sdk.CallToolResult, ReadOutput, error) {
	raw := strings.TrimSpace(in.URL)
	switch {
	case raw == "":
		return nil, ReadOutput{}, errors.New("read: url is empty")
	case len(raw) > MaxURLChars:
		return nil, ReadOutput{}, fmt.Errorf("read: url is longer than %d characters", MaxURLChars)
	}
	page, anchor, _ := strings.Cut(raw, "#")
	if !strings.Contains(page, "://") {
		return nil, ReadOutput{}, fmt.Errorf("read: %q is not an absolute URL (give one that search returned)", raw)
	}
	out, err := s.page(ctx, page, anchor, ReadChars, "read one section with read url#anchor")
	if err != nil {
		return nil, ReadOutput{}, toolError("read", err)
	}
	var b strings.Builder
	where := out.Title
	if out.Heading != "" && out.Heading != out.Title {
		where += " — " + out.Heading
	}
	link := out.URL
	if out.Anchor != "" {
		link += "#" + out.Anchor
	}
	fmt.Fprintf(&b, "%s\n%s (fetched %s)\n", where, link, out.FetchedAt.UTC().Format("2006-01-02"))
	if out.Status == string(panther.DocGone) {
		b.WriteString("Note: the site no longer serves this page; this is the last stored version.\n")
	}
	b.WriteString("\n")
	b.WriteString(out.Markdown)
	return textResult(b.String()), out, nil
}

// page returns a stored page, or its section anchor, cut to limit bytes with a note that begins with
// hint and lists the page's sections. Unknown pages and sections are errors of kind
// panther.ErrNotFound that say what is there instead.
func (s *Server) page(ctx context.Context, pageURL, anchor string, limit int, hint string) (ReadOutput, error) {
	doc, err := s.document(ctx, pageURL)
	if errors.Is(err, panther.ErrNotFound) {
		return ReadOutput{}, fmt.Errorf("%s is not in the knowledge base (search finds the pages that are): %w", pageURL, panther.ErrNotFound)
	}
	if err != nil {
		return ReadOutput{}, err
	}
	out := ReadOutput{URL: doc.URL, Title: doc.Title, Status: string(doc.Status), FetchedAt: doc.FetchedAt, ContentHash: doc.ContentHash, Markdown: doc.Markdown}
	if out.Status == "" {
		out.Status = string(panther.DocCurrent)
	}
	var chunks []panther.Chunk
	if anchor != "" || len(doc.Markdown) > limit {
		if chunks, err = s.kb.Chunks(ctx, doc.ID); err != nil {
			return ReadOutput{}, fmt.Errorf("chunks of %s: %w", doc.URL, err)
		}
	}
	if anchor != "" {
		sec := kb.SectionMarkdown(chunks, anchor)
		if sec == "" {
			return ReadOutput{}, fmt.Errorf("%s has no section #%s%s: %w", doc.URL, anchor, sectionList(doc.URL, chunks, "; its sections:"), panther.ErrNotFound)
		}
		out.Anchor, out.Markdown = anchor, sec
		for _, c := range chunks {
			if c.Anchor == anchor {
				out.Heading = panther.HeadingPath(c.Heading)
				break
			}
		}
	}
	if strings.TrimSpace(out.Markdown) == "" {
		out.Markdown = "(the page has no text)"
	}
	if len(out.Markdown) > limit {
		note := fmt.Sprintf("[trimmed: showing about %d of %d characters", limit, len(out.Markdown))
		if anchor == "" {
			note += sectionList(doc.URL, chunks, "; "+hint+". Sections:")
		}
		out.Markdown, out.Trimmed = trimText(out.Markdown, limit, note+"]"), true
	}
	return out, nil
}

// document looks a page up, also with and without a trailing slash: links and seeds differ in it.
func (s *Server) document(ctx context.Context, pageURL string) (panther.Document, error) {
	doc, err := s.kb.Document(ctx, pageURL)
	if err == nil || !errors.Is(err, panther.ErrNotFound) {
		return doc, err
	}
	alt := pageURL + "/"
	if strings.HasSuffix(pageURL, "/") {
		alt = strings.TrimSuffix(pageURL, "/")
	}
	if d, err2 := s.kb.Document(ctx, alt); err2 == nil {
		return d, nil
	}
	return doc, err
}

// sectionList names a page's sections, each as url#anchor, after intro; "" when it has none.
func sectionList(pageURL string, chunks []panther.Chunk, intro string) string {
	var b strings.Builder
	seen := map[string]bool{}
	for _, c := range chunks {
		if c.Anchor == "" || seen[c.Anchor] || c.Navigation {
			continue
		}
		if len(seen) == maxListedSections {
			b.WriteString("\n- …")
			break
		}
		seen[c.Anchor] = true
		fmt.Fprintf(&b, "\n- %s (%s#%s)", panther.HeadingPath(c.Heading), pageURL, c.Anchor)
	}
	if b.Len() == 0 {
		return ""
	}
	return intro + b.String()
}

func (s *Server) listSources(ctx context.Context, _ *sdk.CallToolRequest, _ ListSourcesInput) (*sdk.CallToolResult, ListSourcesOutput, error) {
	sources, err := s.sources.Sources(ctx)
	if err != nil {
		return nil, ListSourcesOutput{}, toolError("list_sources", err)
	}
	out := ListSourcesOutput{Sources: make([]SourceInfo, 0, len(sources))}
	for _, src := range sources {
		// Counting by listing, bounded: the store has no count by source, and a listing without
		// markdown is cheap.
		docs, err := s.kb.Documents(ctx, panther.DocFilter{SourceID: src.ID, Limit: maxCountedPages + 1})
		if err != nil {
			return nil, ListSourcesOutput{}, toolError("list_sources", err)
		}
		info := SourceInfo{ID: src.ID, URL: src.URL, Pages: len(docs), CreatedAt: src.CreatedAt, LastCrawlAt: src.LastCrawlAt}
		if info.Pages > maxCountedPages {
			info.Pages, info.PagesCapped = maxCountedPages, true
		}
		out.Sources = append(out.Sources, info)
	}
	var b strings.Builder
	if len(out.Sources) == 0 {
		b.WriteString("The knowledge base has no sources yet.")
	} else {
		fmt.Fprintf(&b, "%d sources:\n", len(out.Sources))
		for _, src := range out.Sources {
			more := ""
			if src.PagesCapped {
				more = "+"
			}
			crawled := "never crawled to the end"
			if !src.LastCrawlAt.IsZero() {
				crawled = "last crawled " + src.LastCrawlAt.UTC().Format("2006-01-02 15:04 UTC")
			}
			fmt.Fprintf(&b, "- %s: %d%s pages, %s\n", src.URL, src.Pages, more, crawled)
		}
	}
	return textResult(b.String()), out, nil
}

func (s *Server) crawl(ctx context.Context, _ *sdk.CallToolRequest, in CrawlInput) (*sdk.CallToolResult, CrawlOutput, error) {
	seed := strings.TrimSpace(in.URL)
	if seed == "" {
		return nil, CrawlOutput{}, errors.New("crawl: url is empty")
	}
	if len(seed) > MaxURLChars {
		return nil, CrawlOutput{}, fmt.Errorf("crawl: url is longer than %d characters", MaxURLChars)
	}
	u, err := url.Parse(seed)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Local paths and file:// URLs are refused: a client must not make the server read its files.
		return nil, CrawlOutput{}, fmt.Errorf("crawl: %q is not an http(s) URL", seed)
	}
	if u.User != nil {
		return nil, CrawlOutput{}, errors.New("crawl: URLs with credentials (user:password@) are refused")
	}
	switch {
	case in.MaxPages < 0 || in.MaxPages > MaxCrawlPages:
		return nil, CrawlOutput{}, fmt.Errorf("crawl: max_pages must be between 1 and %d, got %d", MaxCrawlPages, in.MaxPages)
	case in.MaxPages == 0:
		in.MaxPages = DefaultCrawlPages
	}
	select {
	case s.crawling <- struct{}{}:
		defer func() { <-s.crawling }()
	default:
		return nil, CrawlOutput{}, errors.New("crawl: another crawl is running; try again when it has finished")
	}
	rep, err := s.opts.Crawler.CrawlSite(ctx, u.String(), in.MaxPages)
	if err != nil {
		return nil, CrawlOutput{}, toolError("crawl "+u.String(), err)
	}
	out := CrawlOutput{URL: u.String(), Fetched: rep.Fetched, New: rep.New, Changed: rep.Changed, Unchanged: rep.Unchanged,
		Failed: rep.Failed, Skipped: rep.Skipped, Truncated: rep.Truncated}
	var b strings.Builder
	fmt.Fprintf(&b, "Crawled %s: %d pages fetched (%d new, %d changed, %d unchanged), %d failed, %d skipped.",
		out.URL, out.Fetched, out.New, out.Changed, out.Unchanged, out.Failed, out.Skipped)
	if out.Truncated {
		fmt.Fprintf(&b, " The page limit (%d) stopped it with pages still queued; crawl the same URL again to go on.", in.MaxPages)
	}
	if out.New+out.Changed+out.Unchanged > 0 {
		b.WriteString(" Search finds its pages now.")
	} else {
		b.WriteString(" Nothing was added to the knowledge base.")
	}
	return textResult(b.String()), out, nil
}

func (s *Server) addSource(ctx context.Context, _ *sdk.CallToolRequest, in AddSourceInput) (*sdk.CallToolResult, AddSourceOutput, error) {
	raw := strings.TrimSpace(in.URL)
	switch {
	case raw == "":
		return nil, AddSourceOutput{}, errors.New("add_source: url is empty")
	case len(raw) > MaxURLChars:
		return nil, AddSourceOutput{}, fmt.Errorf("add_source: url is longer than %d characters", MaxURLChars)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// As for crawl: a client must not make the server read its local files.
		return nil, AddSourceOutput{}, fmt.Errorf("add_source: %q is not an http(s) URL", raw)
	}
	if u.User != nil {
		return nil, AddSourceOutput{}, errors.New("add_source: URLs with credentials (user:password@) are refused")
	}
	// Stored the way the crawler stores its seed, so that crawling the same URL later fills this
	// source instead of making a second one.
	seed, err := crawl.Normalize(raw)
	if err != nil {
		return nil, AddSourceOutput{}, toolError("add_source", err)
	}
	existing, err := s.sources.Sources(ctx)
	if err != nil {
		return nil, AddSourceOutput{}, toolError("add_source: list sources", err)
	}
	src, err := s.adder.AddSource(ctx, seed)
	if err != nil {
		return nil, AddSourceOutput{}, toolError("add_source "+seed, err)
	}
	out := AddSourceOutput{ID: src.ID, URL: src.URL, Added: !slices.ContainsFunc(existing, func(e panther.Source) bool { return e.ID == src.ID }),
		CreatedAt: src.CreatedAt}
	var text string
	if out.Added {
		text = fmt.Sprintf("Added the source %s (id %d). It has no pages yet: crawl %s to make them searchable.", out.URL, out.ID, out.URL)
	} else {
		text = fmt.Sprintf("%s is already a source (id %d); nothing changed.", out.URL, out.ID)
	}
	return textResult(text), out, nil
}

func (s *Server) ask(ctx context.Context, _ *sdk.CallToolRequest, in AskInput) (*sdk.CallToolResult, AskOutput, error) {
	question := strings.TrimSpace(in.Question)
	switch {
	case question == "":
		return nil, AskOutput{}, errors.New("ask: question is empty")
	case utf8.RuneCountInString(question) > MaxQuestionChars:
		return nil, AskOutput{}, fmt.Errorf("ask: question is longer than %d characters", MaxQuestionChars)
	}
	answer, cites, err := s.opts.Asker.Ask(ctx, question)
	if err != nil {
		return nil, AskOutput{}, toolError("ask", err)
	}
	out := AskOutput{Answer: strings.TrimSpace(answer), Citations: make([]Citation, 0, len(cites))}
	var b strings.Builder
	b.WriteString(out.Answer)
	if len(cites) > 0 {
		b.WriteString("\n\nSources:")
	}
	for i, c := range cites {
		out.Citations = append(out.Citations, Citation{Link: c.Link(), URL: c.URL, Anchor: c.Anchor, Title: c.Title,
			Heading: c.Heading, FetchedAt: c.FetchedAt, ContentHash: c.ContentHash})
		where := c.Title
		if c.Heading != "" && c.Heading != c.Title {
			where += " — " + c.Heading
		}
		fmt.Fprintf(&b, "\n[%d] %s (%s)", i+1, where, c.Link())
	}
	return textResult(b.String()), out, nil
}

func textResult(text string) *sdk.CallToolResult {
	return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: text}}}
}

// toolError words a failed call for the client, which sees it as a tool error (the model can read it
// and try something else), not as a protocol error.
func toolError(what string, err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: took longer than this server allows; ask for less", what)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: cancelled", what)
	}
	msg := err.Error()
	// The error kinds are for programs; the message already says what went wrong.
	for _, kind := range []error{panther.ErrNotFound, panther.ErrInvalid} {
		msg = strings.TrimSuffix(msg, ": "+kind.Error())
	}
	if strings.HasPrefix(msg, what) {
		return errors.New(msg)
	}
	return errors.New(what + ": " + msg)
}

// trimText cuts s to about max bytes, at a line or word break when there is one near the end, and
// adds note after the cut.
func trimText(s string, max int, note string) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	cut := s[:max]
	if i := strings.LastIndexByte(cut, '\n'); i > max*3/4 {
		cut = cut[:i]
	} else if i := strings.LastIndexByte(cut, ' '); i > max*3/4 {
		cut = cut[:i]
	}
	cut = strings.TrimRight(cut, " \n") + "…"
	if note == "" {
		return cut
	}
	return cut + "\n\n" + note
}
