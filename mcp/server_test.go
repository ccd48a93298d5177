package mcp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"panther"
	"panther/agent"
	"panther/kb"
	"panther/sqlite"
)

var fetched = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// page is a test document: its sections in order, each "anchor|heading path|body".
type page struct {
	url, title string
	source     string
	sections   []string
}

var corpus = []page{
	{"https://docs.example.org/guide/indexes.html", "Indexes", "https://docs.example.org/guide/", []string{
		"indexes|Indexes|An index lets the database find rows without reading the whole table.",
		"partial|Indexes>Partial Indexes|A partial index covers only the rows that satisfy its predicate, a WHERE clause on the indexed table.",
		"unique|Indexes>Unique Indexes|A unique index refuses duplicate values in the indexed columns.",
	}},
	{"https://docs.example.org/guide/vacuum.html", "Routine Vacuuming", "https://docs.example.org/guide/", []string{
		"vacuum|Routine Vacuuming|Vacuum reclaims storage occupied by dead tuples and freezes old transaction ids.",
	}},
	{"https://other.example.com/faq/", "FAQ", "https://other.example.com/", []string{
		"faq|FAQ|Frequently asked questions about widgets, including partial widgets.",
	}},
}

// openKB ingests pages into a real SQLite store through kb.Service, as a crawl would.
func openKB(t *testing.T, pages []page) (*kb.Service, *sqlite.DB) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := kb.New(db, kb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pages {
		src, err := db.AddSource(ctx, p.source)
		if err != nil {
			t.Fatal(err)
		}
		var secs []panther.Section
		var md []string
		for _, s := range p.sections {
			parts := strings.SplitN(s, "|", 3)
			heading := strings.Split(parts[1], ">")
			text := strings.Repeat("#", len(heading)) + " " + heading[len(heading)-1] + "\n\n" + parts[2]
			secs = append(secs, panther.Section{Heading: heading, Level: len(heading), Anchor: parts[0], Markdown: text})
			md = append(md, text)
		}
		doc := panther.Document{SourceID: src.ID, URL: p.url, Title: p.title, Markdown: strings.Join(md, "\n\n"),
			Validators: panther.Validators{ContentHash: fmt.Sprintf("hash%d", i)}, FetchedAt: fetched}
		if _, err := svc.Ingest(ctx, doc, secs); err != nil {
			t.Fatal(err)
		}
	}
	return svc, db
}

// connect starts srv on an in-memory transport and returns a client session to it.
func connect(t *testing.T, srv *Server) *sdk.ClientSession {
	t.Helper()
	ctx := context.Background()
	st, ct := sdk.NewInMemoryTransports()
	ss, err := srv.sdk.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "v0"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		ss.Wait()
	})
	return cs
}

func newServer(t *testing.T, opts Options) (*Server, *sdk.ClientSession) {
	t.Helper()
	svc, db := openKB(t, corpus)
	srv, err := NewServer(svc, db, opts)
	if err != nil {
		t.Fatal(err)
	}
	return srv, connect(t, srv)
}

// call calls a tool and returns its text, its structured content decoded into out (when not nil),
// and whether it was a tool error. Protocol errors fail the test.
func call(t *testing.T, cs *sdk.ClientSession, tool string, args map[string]any, out any) (text string, isError bool) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s %v: protocol error %v", tool, args, err)
	}
	var texts []string
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			texts = append(texts, tc.Text)
		}
	}
	text = strings.Join(texts, "\n")
	if out != nil && !res.IsError {
		b, err := json.Marshal(res.StructuredContent)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: structured content %s: %v", tool, b, err)
		}
	}
	return text, res.IsError
}

type crawlCall struct {
	seed     string
	maxPages int
}

// recordingCrawler reports a fixed crawl and records what it was asked; when block is not nil, each
// crawl waits for it, so that a test can have one running.
type recordingCrawler struct {
	mu      sync.Mutex
	calls   []crawlCall
	started chan struct{}
	block   chan struct{}
}

func (c *recordingCrawler) CrawlSite(ctx context.Context, seed string, maxPages int) (agent.CrawlReport, error) {
	c.mu.Lock()
	c.calls = append(c.calls, crawlCall{seed, maxPages})
	c.mu.Unlock()
	if c.block != nil {
		c.started <- struct{}{}
		<-c.block
	}
	return agent.CrawlReport{Fetched: 3, New: 2, Unchanged: 1, Truncated: true}, nil
}

type fixedAsker struct{ err error }

func (a fixedAsker) Ask(ctx context.Context, question string) (string, []panther.Citation, error) {
	if a.err != nil {
		return "", nil, a.err
	}
	return "Use a partial index [1].", []panther.Citation{{URL: "https://docs.example.org/guide/indexes.html", Anchor: "partial",
		Title: "Indexes", Heading: "Indexes > Partial Indexes", FetchedAt: fetched}}, nil
}

func TestNewServerChecksOptions(t *testing.T) {
	svc, db := openKB(t, nil)
	tests := []struct {
		name string
		opts Options
	}{
		{"write without crawler", Options{AllowWrite: true}},
		{"negative limit", Options{MaxConcurrent: -1}},
		{"negative timeout", Options{CallTimeout: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewServer(svc, db, tt.opts); !errors.Is(err, panther.ErrInvalid) {
				t.Errorf("NewServer: %v, want an invalid-input error", err)
			}
		})
	}
	if _, err := NewServer(nil, db, Options{}); err == nil {
		t.Error("NewServer without a knowledge base: no error")
	}
	// A store that can only list sources serves read-only, and refuses write access.
	listOnly := struct{ SourceLister }{db}
	if _, err := NewServer(svc, listOnly, Options{}); err != nil {
		t.Errorf("NewServer read-only over a source lister: %v", err)
	}
	if _, err := NewServer(svc, listOnly, Options{AllowWrite: true, Crawler: &recordingCrawler{}}); !errors.Is(err, panther.ErrInvalid) {
		t.Errorf("NewServer with write access over a source lister that cannot add: %v, want an invalid-input error", err)
	}
}

func TestListTools(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want []string
	}{
		{"read-only", Options{}, []string{"list_sources", "read", "search"}},
		{"a crawler without write access stays read-only", Options{Crawler: &recordingCrawler{}}, []string{"list_sources", "read", "search"}},
		{"write access", Options{AllowWrite: true, Crawler: &recordingCrawler{}}, []string{"add_source", "crawl", "list_sources", "read", "search"}},
		{"with an asker", Options{Asker: fixedAsker{}}, []string{"ask", "list_sources", "read", "search"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, cs := newServer(t, tt.opts)
			res, err := cs.ListTools(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tool := range res.Tools {
				names = append(names, tool.Name)
				if tool.OutputSchema == nil {
					t.Errorf("%s has no output schema", tool.Name)
				}
			}
			slices.Sort(names)
			if !slices.Equal(names, tt.want) {
				t.Errorf("tools %v, want %v", names, tt.want)
			}
		})
	}
}

func TestSearch(t *testing.T) {
	_, cs := newServer(t, Options{})
	tests := []struct {
		name      string
		args      map[string]any
		wantLinks []string // the hits' links, in order; nil with wantErr
		wantErr   string
	}{
		{"best passage first", map[string]any{"query": "partial index predicate", "k": 1},
			[]string{"https://docs.example.org/guide/indexes.html#partial"}, ""},
		{"url prefix", map[string]any{"query": "partial", "url_prefix": "https://other.example.com/"},
			[]string{"https://other.example.com/faq/#faq"}, ""},
		{"source", map[string]any{"query": "partial", "source": "https://other.example.com"},
			[]string{"https://other.example.com/faq/#faq"}, ""},
		{"fetched after everything", map[string]any{"query": "partial", "fetched_after": "2026-03-05"}, []string{}, ""},
		{"nothing matches", map[string]any{"query": "zebra"}, []string{}, ""},
		{"unknown source", map[string]any{"query": "partial", "source": "https://never.example/"}, nil, "no source https://never.example/"},
		{"k above the bound", map[string]any{"query": "partial", "k": MaxK + 1}, nil, "properties/k"},
		{"unknown mode", map[string]any{"query": "partial", "mode": "fuzzy"}, nil, "properties/mode"},
		{"vector mode without an embedder", map[string]any{"query": "partial", "mode": "vector"}, nil, "embedder"},
		{"empty query", map[string]any{"query": "  "}, nil, "query is empty"},
		{"query too long", map[string]any{"query": strings.Repeat("x", MaxQueryChars+1)}, nil, "properties/query"},
		{"bad time", map[string]any{"query": "partial", "fetched_after": "yesterday"}, nil, "fetched_after"},
		{"unknown argument", map[string]any{"query": "partial", "limit": 3}, nil, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out SearchOutput
			text, isErr := call(t, cs, "search", tt.args, &out)
			if tt.wantErr != "" {
				if !isErr || !strings.Contains(text, tt.wantErr) {
					t.Errorf("error %v %q, want a tool error containing %q", isErr, text, tt.wantErr)
				}
				return
			}
			if isErr {
				t.Fatalf("tool error: %s", text)
			}
			links := []string{}
			for _, h := range out.Hits {
				links = append(links, h.Link)
				if !strings.Contains(text, h.Link) {
					t.Errorf("text does not cite %s:\n%s", h.Link, text)
				}
			}
			if !slices.Equal(links, tt.wantLinks) {
				t.Errorf("hits %v, want %v", links, tt.wantLinks)
			}
		})
	}

	// The structured hit carries the whole citation.
	var out SearchOutput
	call(t, cs, "search", map[string]any{"query": "partial index predicate", "k": 1}, &out)
	if len(out.Hits) != 1 {
		t.Fatalf("hits %+v", out.Hits)
	}
	h := out.Hits[0]
	if h.URL != "https://docs.example.org/guide/indexes.html" || h.Anchor != "partial" || h.Title != "Indexes" ||
		h.Heading != "Indexes > Partial Indexes" || !strings.Contains(h.Text, "predicate") || h.Snippet == "" ||
		h.Score <= 0 || !h.FetchedAt.Equal(fetched) || h.ContentHash != "hash0" || out.Mode != "lexical" {
		t.Errorf("hit %+v (mode %q)", h, out.Mode)
	}
}

func TestRead(t *testing.T) {
	long := page{"https://docs.example.org/guide/long.html", "Long", "https://docs.example.org/guide/", nil}
	for i := range 40 {
		long.sections = append(long.sections, fmt.Sprintf("s%d|Long>Part %d|%s", i, i, strings.Repeat(fmt.Sprintf("word%d ", i), 300)))
	}
	svc, db := openKB(t, append(slices.Clone(corpus), long))
	srv, err := NewServer(svc, db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := connect(t, srv)
	tests := []struct {
		name        string
		url         string
		want        []string
		notWant     []string
		wantErr     string
		wantTrimmed bool
	}{
		{name: "whole page", url: "https://docs.example.org/guide/indexes.html",
			want: []string{"# Indexes", "## Partial Indexes", "## Unique Indexes"}},
		{name: "one section", url: "https://docs.example.org/guide/indexes.html#partial",
			want: []string{"## Partial Indexes", "predicate", "https://docs.example.org/guide/indexes.html#partial"}, notWant: []string{"Unique", "whole table"}},
		{name: "without the trailing slash", url: "https://other.example.com/faq", want: []string{"widgets"}},
		{name: "long page is cut with its sections listed", url: long.url,
			want: []string{"[trimmed: showing about", long.url + "#s1)"}, wantTrimmed: true},
		{name: "unknown page", url: "https://docs.example.org/guide/nope.html", wantErr: "https://docs.example.org/guide/nope.html is not in the knowledge base"},
		{name: "unknown section", url: "https://docs.example.org/guide/indexes.html#nope", wantErr: "has no section #nope; its sections:\n- Indexes (https://docs.example.org/guide/indexes.html#indexes)"},
		{name: "relative URL", url: "guide/indexes.html", wantErr: "not an absolute URL"},
		{name: "empty", url: "", wantErr: "properties/url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out ReadOutput
			text, isErr := call(t, cs, "read", map[string]any{"url": tt.url}, &out)
			if tt.wantErr != "" {
				if !isErr || !strings.Contains(text, tt.wantErr) {
					t.Errorf("error %v %q, want a tool error containing %q", isErr, text, tt.wantErr)
				}
				return
			}
			if isErr {
				t.Fatalf("tool error: %s", text)
			}
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("text lacks %q:\n%.2000s", w, text)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(text, w) || strings.Contains(out.Markdown, w) {
					t.Errorf("text has %q:\n%s", w, text)
				}
			}
			if out.Trimmed != tt.wantTrimmed || len(out.Markdown) > ReadChars+20_000 {
				t.Errorf("trimmed %v with %d characters, want trimmed %v", out.Trimmed, len(out.Markdown), tt.wantTrimmed)
			}
			if !strings.Contains(text, out.Markdown) {
				t.Error("the text does not carry the structured markdown")
			}
		})
	}
}

func TestListSources(t *testing.T) {
	_, cs := newServer(t, Options{})
	var out ListSourcesOutput
	text, isErr := call(t, cs, "list_sources", nil, &out)
	if isErr {
		t.Fatal(text)
	}
	got := map[string]int{}
	for _, s := range out.Sources {
		got[s.URL] = s.Pages
	}
	want := map[string]int{"https://docs.example.org/guide/": 2, "https://other.example.com/": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sources %v, want %v", got, want)
	}
	if !strings.Contains(text, "https://docs.example.org/guide/: 2 pages") {
		t.Errorf("text:\n%s", text)
	}
}

func TestCrawlTool(t *testing.T) {
	c := &recordingCrawler{}
	_, cs := newServer(t, Options{AllowWrite: true, Crawler: c})
	tests := []struct {
		name    string
		args    map[string]any
		want    crawlCall // zero with wantErr
		wantErr string
	}{
		{"default page limit", map[string]any{"url": "https://docs.example.net/manual/"}, crawlCall{"https://docs.example.net/manual/", DefaultCrawlPages}, ""},
		{"page limit", map[string]any{"url": "http://docs.example.net/", "max_pages": 7}, crawlCall{"http://docs.example.net/", 7}, ""},
		{"page limit above the bound", map[string]any{"url": "https://docs.example.net/", "max_pages": MaxCrawlPages + 1}, crawlCall{}, "properties/max_pages"},
		{"local file", map[string]any{"url": "file:///etc/"}, crawlCall{}, "not an http(s) URL"},
		{"local path", map[string]any{"url": "/etc"}, crawlCall{}, "not an http(s) URL"},
		{"credentials", map[string]any{"url": "https://user:pw@docs.example.net/"}, crawlCall{}, "credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.mu.Lock()
			c.calls = nil
			c.mu.Unlock()
			var out CrawlOutput
			text, isErr := call(t, cs, "crawl", tt.args, &out)
			c.mu.Lock()
			calls := c.calls
			c.mu.Unlock()
			if tt.wantErr != "" {
				if !isErr || !strings.Contains(text, tt.wantErr) {
					t.Errorf("error %v %q, want a tool error containing %q", isErr, text, tt.wantErr)
				}
				if len(calls) != 0 {
					t.Errorf("crawled %v", calls)
				}
				return
			}
			if isErr {
				t.Fatal(text)
			}
			if len(calls) != 1 || calls[0] != tt.want {
				t.Errorf("crawls %v, want %v", calls, tt.want)
			}
			if out.Fetched != 3 || out.New != 2 || !out.Truncated || !strings.Contains(text, "crawl the same URL again") {
				t.Errorf("result %+v, text %q", out, text)
			}
		})
	}
}

func TestAddSource(t *testing.T) {
	c := &recordingCrawler{}
	_, cs := newServer(t, Options{AllowWrite: true, Crawler: c})
	tests := []struct {
		name      string
		url       string
		wantURL   string // the stored source; "" with wantErr
		wantAdded bool
		wantErr   string
	}{
		{"new site", "https://docs.example.net/manual/", "https://docs.example.net/manual/", true, ""},
		{"the same site again", "https://docs.example.net/manual/", "https://docs.example.net/manual/", false, ""},
		{"stored as the crawler stores its seed", "HTTPS://Docs.Example.NET:443/manual/#install", "https://docs.example.net/manual/", false, ""},
		{"a source that was crawled", "https://docs.example.org/guide/", "https://docs.example.org/guide/", false, ""},
		{"http", "http://wiki.example.net/docs/", "http://wiki.example.net/docs/", true, ""},
		{"local file", "file:///etc/", "", false, "not an http(s) URL"},
		{"local path", "/etc", "", false, "not an http(s) URL"},
		{"no host", "https:///docs/", "", false, "not an http(s) URL"},
		{"credentials", "https://user:pw@docs.example.net/", "", false, "credentials"},
		{"empty", "  ", "", false, "url is empty"},
		{"too long", "https://docs.example.net/" + strings.Repeat("x", MaxURLChars), "", false, "properties/url"},
	}
	ids := map[string]int64{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out AddSourceOutput
			text, isErr := call(t, cs, "add_source", map[string]any{"url": tt.url}, &out)
			if tt.wantErr != "" {
				if !isErr || !strings.Contains(text, tt.wantErr) {
					t.Errorf("error %v %q, want a tool error containing %q", isErr, text, tt.wantErr)
				}
				return
			}
			if isErr {
				t.Fatal(text)
			}
			if out.URL != tt.wantURL || out.Added != tt.wantAdded || out.ID == 0 || out.CreatedAt.IsZero() {
				t.Errorf("result %+v, want %s added %v", out, tt.wantURL, tt.wantAdded)
			}
			if id, ok := ids[out.URL]; ok && id != out.ID {
				t.Errorf("%s has id %d, before %d", out.URL, out.ID, id)
			}
			ids[out.URL] = out.ID
			if !strings.Contains(text, out.URL) {
				t.Errorf("text does not name the source: %q", text)
			}
		})
	}
	// Registered, not crawled.
	if len(c.calls) != 0 {
		t.Errorf("add_source crawled: %v", c.calls)
	}
	var list ListSourcesOutput
	call(t, cs, "list_sources", nil, &list)
	pages := map[string]int{}
	for _, s := range list.Sources {
		pages[s.URL] = s.Pages
	}
	want := map[string]int{"https://docs.example.org/guide/": 2, "https://other.example.com/": 1,
		"https://docs.example.net/manual/": 0, "http://wiki.example.net/docs/": 0}
	if fmt.Sprint(pages) != fmt.Sprint(want) {
		t.Errorf("sources %v, want %v", pages, want)
	}
}

func TestOneCrawlAtATime(t *testing.T) {
	c := &recordingCrawler{started: make(chan struct{}), block: make(chan struct{})}
	_, cs := newServer(t, Options{AllowWrite: true, Crawler: c})
	first := make(chan string)
	go func() {
		text, _ := call(t, cs, "crawl", map[string]any{"url": "https://docs.example.net/"}, nil)
		first <- text
	}()
	<-c.started
	text, isErr := call(t, cs, "crawl", map[string]any{"url": "https://docs.example.net/other/"}, nil)
	if !isErr || !strings.Contains(text, "another crawl is running") {
		t.Errorf("second crawl: error %v %q", isErr, text)
	}
	// Searches go on while a crawl runs.
	if text, isErr := call(t, cs, "search", map[string]any{"query": "vacuum"}, nil); isErr {
		t.Errorf("search during a crawl: %s", text)
	}
	close(c.block)
	if text := <-first; !strings.Contains(text, "Crawled https://docs.example.net/") {
		t.Errorf("first crawl: %q", text)
	}
}

func TestAsk(t *testing.T) {
	tests := []struct {
		name     string
		asker    Asker
		question string
		want     string
		wantErr  string
	}{
		{"answer with sources", fixedAsker{}, "how do I index some rows?",
			"Use a partial index [1].\n\nSources:\n[1] Indexes — Indexes > Partial Indexes (https://docs.example.org/guide/indexes.html#partial)", ""},
		{"asker fails", fixedAsker{err: errors.New("model unavailable")}, "why?", "", "ask: model unavailable"},
		{"empty question", fixedAsker{}, " ", "", "question is empty"},
		{"question too long", fixedAsker{}, strings.Repeat("why ", MaxQuestionChars), "", "properties/question"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, cs := newServer(t, Options{Asker: tt.asker})
			var out AskOutput
			text, isErr := call(t, cs, "ask", map[string]any{"question": tt.question}, &out)
			if tt.wantErr != "" {
				if !isErr || !strings.Contains(text, tt.wantErr) {
					t.Errorf("error %v %q, want a tool error containing %q", isErr, text, tt.wantErr)
				}
				return
			}
			if isErr || text != tt.want {
				t.Errorf("text %q (error %v), want %q", text, isErr, tt.want)
			}
			if len(out.Citations) != 1 || out.Citations[0].Link != "https://docs.example.org/guide/indexes.html#partial" || out.Answer != "Use a partial index [1]." {
				t.Errorf("structured %+v", out)
			}
		})
	}
}

// blockingAsker holds every question until released, counting how many it holds at once.
type blockingAsker struct {
	mu            sync.Mutex
	inside, most  int
	entered, done chan struct{}
}

func (a *blockingAsker) Ask(ctx context.Context, q string) (string, []panther.Citation, error) {
	a.mu.Lock()
	a.inside++
	a.most = max(a.most, a.inside)
	a.mu.Unlock()
	a.entered <- struct{}{}
	<-a.done
	a.mu.Lock()
	a.inside--
	a.mu.Unlock()
	return "ok", nil, nil
}

func TestConcurrentCallsAreBounded(t *testing.T) {
	const limit, calls = 2, 6
	a := &blockingAsker{entered: make(chan struct{}), done: make(chan struct{})}
	srv, cs := newServer(t, Options{Asker: a, MaxConcurrent: limit})
	// Every call is made to arrive before any is let go, so that calls past the limit would be
	// inside the asker together with the first ones.
	arrived := make(chan struct{}, calls)
	srv.sdk.AddReceivingMiddleware(func(next sdk.MethodHandler) sdk.MethodHandler {
		return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
			if method == "tools/call" {
				arrived <- struct{}{}
			}
			return next(ctx, method, req)
		}
	})
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			if text, isErr := call(t, cs, "ask", map[string]any{"question": fmt.Sprint("q", i)}, nil); isErr {
				t.Errorf("ask: %s", text)
			}
		})
	}
	for range calls {
		<-arrived
	}
	for range calls {
		<-a.entered
		a.done <- struct{}{}
	}
	wg.Wait()
	if a.most > limit {
		t.Errorf("%d asks ran at once, limit %d", a.most, limit)
	}

	// With every slot taken, a request whose client has gone away never runs.
	for range limit {
		go srv.withSlot(context.Background(), time.Minute, func(context.Context) (sdk.Result, error) {
			a.entered <- struct{}{}
			<-a.done
			return nil, nil
		})
		<-a.entered
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for range 20 {
		ran := false
		if _, err := srv.withSlot(gone, time.Minute, func(context.Context) (sdk.Result, error) { ran = true; return nil, nil }); ran || err == nil {
			t.Fatalf("ran %v, error %v: a request went past the limit", ran, err)
		}
	}
	for range limit {
		a.done <- struct{}{}
	}
}

func TestResources(t *testing.T) {
	srv, cs := newServer(t, Options{})
	srv.pageSize = 2
	ctx := context.Background()

	tmpl, err := cs.ListResourceTemplates(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tmpl.ResourceTemplates) != 1 || tmpl.ResourceTemplates[0].URITemplate != "panther://doc/{+url}" {
		t.Errorf("templates %+v", tmpl.ResourceTemplates)
	}

	// The listing goes through every stored page, by URL, a page of two at a time.
	var uris []string
	cursor, pages := "", 0
	for {
		res, err := cs.ListResources(ctx, &sdk.ListResourcesParams{Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range res.Resources {
			uris = append(uris, r.URI)
			if r.MIMEType != "text/markdown" || r.Title == "" {
				t.Errorf("resource %+v", r)
			}
		}
		if cursor = res.NextCursor; cursor == "" {
			break
		}
	}
	want := []string{"panther://doc/https://docs.example.org/guide/indexes.html", "panther://doc/https://docs.example.org/guide/vacuum.html",
		"panther://doc/https://other.example.com/faq/"}
	if !slices.Equal(uris, want) || pages != 2 {
		t.Errorf("listed %v in %d pages, want %v in 2", uris, pages, want)
	}
	if _, err := cs.ListResources(ctx, &sdk.ListResourcesParams{Cursor: "bogus"}); err == nil {
		t.Error("a bogus cursor was accepted")
	}

	reads := []struct {
		name    string
		uri     string
		want    []string
		notWant []string
	}{
		{"a page", "panther://doc/https://docs.example.org/guide/indexes.html", []string{"# Indexes", "## Unique Indexes"}, nil},
		{"a section", "panther://doc/https://docs.example.org/guide/indexes.html#partial", []string{"## Partial Indexes"}, []string{"Unique"}},
		{"percent-encoded", "panther://doc/https%3A%2F%2Fdocs.example.org%2Fguide%2Fvacuum.html", []string{"dead tuples"}, nil},
	}
	for _, tt := range reads {
		t.Run(tt.name, func(t *testing.T) {
			res, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: tt.uri})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Contents) != 1 || res.Contents[0].MIMEType != "text/markdown" || res.Contents[0].URI != tt.uri {
				t.Fatalf("contents %+v", res.Contents)
			}
			text := res.Contents[0].Text
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("lacks %q:\n%s", w, text)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(text, w) {
					t.Errorf("has %q:\n%s", w, text)
				}
			}
		})
	}
	for _, uri := range []string{"panther://doc/https://docs.example.org/guide/nope.html", "panther://doc/https://docs.example.org/guide/indexes.html#nope", "panther://other/x"} {
		if _, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: uri}); err == nil {
			t.Errorf("read %s: no error", uri)
		}
	}
}

func TestHTTPHandler(t *testing.T) {
	svc, db := openKB(t, corpus)
	srv, err := NewServer(svc, db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.HTTPHandler())
	defer hs.Close()
	ctx := context.Background()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "v0"}, nil).Connect(ctx, &sdk.StreamableClientTransport{Endpoint: hs.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	var out SearchOutput
	text, isErr := call(t, cs, "search", map[string]any{"query": "vacuum dead tuples"}, &out)
	if isErr || len(out.Hits) == 0 || out.Hits[0].Link != "https://docs.example.org/guide/vacuum.html#vacuum" {
		t.Errorf("search over HTTP: %v %q %+v", isErr, text, out.Hits)
	}
}

func TestServeIOEndsWhenInputCloses(t *testing.T) {
	svc, db := openKB(t, corpus)
	srv, err := NewServer(svc, db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- srv.ServeIO(context.Background(), inR, outW) }()
	fmt.Fprintln(inW, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`)
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		ID     int
		Result struct{ ServerInfo struct{ Name string } }
	}
	if err := json.Unmarshal([]byte(line), &resp); err != nil || resp.ID != 1 || resp.Result.ServerInfo.Name != "panther" {
		t.Errorf("initialize answer %q: %v", line, err)
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Errorf("ServeIO after the input closed: %v", err)
	}
}
