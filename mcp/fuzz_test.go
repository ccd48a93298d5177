package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"panther"
	"panther/kb"
	"panther/sqlite"
)

// fuzzSession serves the test corpus from a real store with every tool registered (write access,
// a recording crawler, a fixed asker) and returns a client session to it.
func fuzzSession(tb testing.TB, crawler *recordingCrawler) *sdk.ClientSession {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "fuzz.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	svc, err := kb.New(db, kb.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	for i, p := range corpus {
		src, err := db.AddSource(ctx, p.source)
		if err != nil {
			tb.Fatal(err)
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
			tb.Fatal(err)
		}
	}
	srv, err := NewServer(svc, db, Options{AllowWrite: true, Crawler: crawler, Asker: fixedAsker{}, CallTimeout: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	st, ct := sdk.NewInMemoryTransports()
	ss, err := srv.sdk.Connect(ctx, st, nil)
	if err != nil {
		tb.Fatal(err)
	}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "fuzz", Version: "v0"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cs.Close()
		ss.Wait()
	})
	return cs
}

var fuzzTools = []string{"search", "read", "list_sources", "crawl", "add_source", "ask", "no_such_tool"}

// FuzzToolInput calls every tool with fuzzed arguments: each call ends (a result or a protocol
// error, within the call timeout), the session keeps working, and what the tools accept stays
// within their bounds: at most MaxK hits, at most ReadChars of markdown and a note, crawls of
// http(s) URLs without credentials and at most MaxCrawlPages pages.
func FuzzToolInput(f *testing.F) {
	seeds := []struct {
		tool uint8
		args string
	}{
		{0, `{"query":"partial index","k":3}`}, {0, `{"query":"vacuum","mode":"hybrid","source":"https://docs.example.org/guide/"}`},
		{0, `{"query":"x","k":-1}`}, {0, `{"query":"","fetched_after":"yesterday"}`}, {0, `{"query":"\"NEAR(a b\" OR *","url_prefix":"https://"}`},
		{1, `{"url":"https://docs.example.org/guide/indexes.html#partial"}`}, {1, `{"url":"https://docs.example.org/guide/indexes.html#nope"}`},
		{1, `{"url":"file:///etc/passwd"}`}, {2, `{}`}, {2, `{"extra":1}`},
		{3, `{"url":"https://docs.example.org/","max_pages":5}`}, {3, `{"url":"file:///etc/"}`}, {3, `{"url":"https://u:p@x.example/"}`},
		{3, `{"url":"https://x.example/","max_pages":100000}`}, {4, `{"url":"https://new.example.org/docs/"}`}, {4, `{"url":"ftp://x"}`},
		{5, `{"question":"how do partial indexes work?"}`}, {5, `{"question":7}`}, {6, `{}`}, {0, `null`}, {0, `[]`}, {0, `{"query":["a"]}`},
	}
	for _, s := range seeds {
		f.Add(s.tool, []byte(s.args))
	}
	crawler := &recordingCrawler{}
	cs := fuzzSession(f, crawler)
	f.Fuzz(func(t *testing.T, which uint8, args []byte) {
		tool := fuzzTools[int(which)%len(fuzzTools)]
		if !json.Valid(args) {
			return // the client does not send what is not JSON
		}
		crawler.mu.Lock()
		crawlsBefore := len(crawler.calls)
		crawler.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: tool, Arguments: json.RawMessage(args)})
		if ctx.Err() != nil {
			t.Fatalf("%s %s: no answer within 20s", tool, args)
		}
		if err != nil {
			// A protocol error (arguments that fail the input schema, an unknown tool): the session
			// must still serve.
			if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "list_sources", Arguments: map[string]any{}}); err != nil {
				t.Fatalf("after %s %s failed (%v), the session is broken: %v", tool, args, err, err)
			}
			return
		}
		crawler.mu.Lock()
		newCrawls := append([]crawlCall(nil), crawler.calls[crawlsBefore:]...)
		crawler.mu.Unlock()
		for _, c := range newCrawls {
			u, err := url.Parse(c.seed)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || c.maxPages < 1 || c.maxPages > MaxCrawlPages {
				t.Fatalf("%s %s made the crawler crawl %q for %d pages", tool, args, c.seed, c.maxPages)
			}
		}
		if res.IsError {
			if len(newCrawls) > 0 && tool != "crawl" {
				t.Fatalf("%s %s failed but crawled", tool, args)
			}
			return
		}
		b, err := json.Marshal(res.StructuredContent)
		if err != nil {
			t.Fatal(err)
		}
		switch tool {
		case "search":
			var out SearchOutput
			if err := json.Unmarshal(b, &out); err != nil || len(out.Hits) > MaxK {
				t.Fatalf("search %s: %d hits (%v)", args, len(out.Hits), err)
			}
		case "read":
			var out ReadOutput
			if err := json.Unmarshal(b, &out); err != nil || len(out.Markdown) > ReadChars+20_000 {
				t.Fatalf("read %s: %d bytes of markdown (%v)", args, len(out.Markdown), err)
			}
		}
	})
}
