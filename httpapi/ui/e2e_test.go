package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"panther"
	"panther/agent"
	"panther/crawl"
	"panther/httpapi"
	"panther/httpapi/ui"
	"panther/kb"
	"panther/llm"
	"panther/sqlite"
)

// The UI end to end: the real API over a real sqlite knowledge base, live agent sessions talking
// to a fake model that streams the OpenAI wire format, a crawl of a local site, and the UI in a
// headless Chromium, used as a person would: typing, clicking, reading what the page shows.

const (
	// A long URL that has no place to break a line but where the rules allow any, as many have.
	indexesURL = "https://docs.example.org/15/indexes_partial_over_a_subset_of_the_table_rows.html"
	// The page's own id for the section, as the PostgreSQL manual has them: not the heading's slug,
	// so that the document view has to find the heading the anchor names.
	partialAnchor = "INDEXES-PARTIAL"
	apiToken      = "ui-e2e-token-0123456789"
	answerStart   = "A partial index is built "
	answerRest    = "over the rows that satisfy its predicate [1]."
)

type stack struct {
	srv  *httptest.Server
	site *httptest.Server
	// release lets the model finish the answer it holds back after its first piece.
	release func()
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "panther.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := kb.New(db, kb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := db.AddSource(ctx, "https://docs.example.org/15/")
	if err != nil {
		t.Fatal(err)
	}
	// A long introduction puts the cited section well below the first screen, so that the document
	// view must scroll to it, and a long section after it lets the window scroll that far.
	intro := "# Indexes\n\n" + strings.Repeat("Indexes are a common way to enhance database performance. An index allows the server to find rows much faster than without one.\n\n", 40)
	partial := "## Partial Indexes\n\nA partial index is an index built over a subset of a table; the subset is defined by a conditional expression, the predicate of the partial index.\n\n```sql\nCREATE INDEX orders_unbilled ON orders (order_nr) WHERE billed is not true;\n```\n\n| Column | Meaning |\n|---|---|\n| billed | whether the order was billed |"
	usage := "## Examining Index Usage\n\n" + strings.Repeat("It is difficult to formulate a general procedure for determining which indexes to create.\n\n", 40)
	doc := panther.Document{SourceID: src.ID, URL: indexesURL, Title: "Indexes", Markdown: intro + "\n\n" + partial + "\n\n" + usage,
		Validators: panther.Validators{ContentHash: "h1"}, FetchedAt: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)}
	sections := []panther.Section{
		{Heading: []string{"Indexes"}, Level: 1, Anchor: "INDEXES", Markdown: intro},
		{Heading: []string{"Indexes", "Partial Indexes"}, Level: 2, Anchor: partialAnchor, Markdown: partial},
		{Heading: []string{"Indexes", "Examining Index Usage"}, Level: 2, Anchor: "INDEXES-EXAMINE", Markdown: usage},
	}
	if _, err := svc.Ingest(ctx, doc, sections); err != nil {
		t.Fatal(err)
	}

	site := httptest.NewServer(http.FileServer(http.Dir("../../cmd/panther/testdata/site")))
	t.Cleanup(site.Close)
	manager, err := crawl.NewManager(crawl.ManagerOptions{Store: db, Index: svc,
		Crawl: crawl.Options{Retries: -1, Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}

	model := newFakeModel(t)
	client, err := llm.NewOpenAI(llm.OpenAIOptions{BaseURL: model.srv.URL + "/v1", Model: "fake", Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defs, err := agent.BuiltinDefinitions()
	if err != nil {
		t.Fatal(err)
	}
	rt := &agent.Runtime{
		Definitions: defs,
		Tools:       map[string]agent.Tool{"kb_search": agent.KBSearch(svc), "kb_read": agent.KBRead(svc)},
		Model:       func(string) (panther.Model, string, error) { return client, "fake", nil },
	}
	live, err := agent.NewLive(&agent.Sessions{Runtime: rt, Store: db}, agent.LiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		model.release()
		if err := live.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := manager.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})

	api, err := httpapi.New(httpapi.Options{
		Search: svc, Documents: svc, Sources: manager, Crawls: manager, Sessions: live, SessionStore: db, Stats: db,
		Agents: func() []httpapi.AgentInfo {
			var out []httpapi.AgentInfo
			for _, d := range defs {
				out = append(out, httpapi.AgentInfo{Name: d.Name, Description: d.Description, Mode: string(d.Mode), Source: d.Source})
			}
			return out
		},
		Ready:    func(ctx context.Context) error { _, err := db.Sources(ctx); return err },
		Registry: prometheus.NewRegistry(),
		// The server's log shows with a failure: a 500 says no more than "logged".
		Logger: slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		// A token is required, so that the UI must send it, on event streams too.
		Tokens: []httpapi.Token{{Name: "ui", Secret: apiToken, Scope: httpapi.ScopeWrite}},
		// The UI beside the API, as `panther serve` mounts it.
		UI: ui.Handler(),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &stack{srv: srv, site: site, release: model.release}
}

func TestUIEndToEnd(t *testing.T) {
	// The stack first, so that its servers close after the browser (cleanups run last first):
	// a page still loading must not see them go.
	s := newStack(t)
	b := newBrowser(t)
	base := s.srv.URL
	// A follow-up sent the moment an answer ends can meet the server still counting the run as
	// running (409); the page tries again, which is what is tested, and the browser logs the 409.
	b.expect(func(text, url string) bool {
		return strings.Contains(text, "status of 409") && strings.HasSuffix(url, "/messages")
	})

	// The token first: every request after it needs one, event streams included.
	b.do(t, "save the token",
		chromedp.Navigate(base+"/#/settings"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), apiToken),
		chromedp.Click(chromedp.CSS("form button[type=submit]")),
		chromedp.Poll[chromedp.Void](`document.querySelector('[role=status]').textContent.includes('accepts this token')`),
	)

	t.Run("search", func(t *testing.T) {
		b.do(t, "search",
			chromedp.Navigate(base+"/#/search"),
			chromedp.WaitVisible(chromedp.CSS("#q")),
			chromedp.SendKeys(chromedp.CSS("#q"), "partial index predicate"),
			chromedp.SetValue(chromedp.CSS("#mode"), "lexical"),
			chromedp.Click(chromedp.CSS("form.search button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS("#hits .hit .hit-title")),
		)
		title := text(t, b, "#hits .hit .hit-title")
		if !strings.Contains(title, "Indexes") || !strings.Contains(title, "Partial Indexes") {
			t.Errorf("first hit's title %q, want the page and its section", title)
		}
		marks := eval[[]string](t, b, "marks", `[...document.querySelectorAll('#hits .hit .snippet mark')].map((m) => m.textContent)`)
		if !containsFold(marks, "partial") || !containsFold(marks, "predicate") {
			t.Errorf("snippet marks %q, want the query's words", marks)
		}
		cite := eval[string](t, b, "citation", `document.querySelector('#hits .hit .cite a').getAttribute('href')`)
		if cite != indexesURL+"#"+partialAnchor {
			t.Errorf("citation link %q, want %q", cite, indexesURL+"#"+partialAnchor)
		}
		// The query and the mode are in the address, so that a reload or a link gives the same page.
		if loc := eval[string](t, b, "location", `location.hash`); !strings.Contains(loc, "q=partial+index+predicate") || !strings.Contains(loc, "mode=lexical") {
			t.Errorf("address %q lacks the query and the mode", loc)
		}
	})

	t.Run("document", func(t *testing.T) {
		b.do(t, "open the hit",
			chromedp.Click(chromedp.CSS("#hits .hit .hit-title")),
			chromedp.WaitVisible(chromedp.CSS("#doc h2.target")),
		)
		if h := text(t, b, "#doc h2.target"); h != "Partial Indexes" {
			t.Errorf("the section shown is %q", h)
		}
		if id := eval[string](t, b, "id", `document.querySelector('#doc h2.target').id`); id != partialAnchor {
			t.Errorf("the section's id is %q, want its anchor %q", id, partialAnchor)
		}
		// Scrolled to it: the heading is at the top of the window, not a screen or more below.
		top := eval[float64](t, b, "scroll", `document.querySelector('#doc h2.target').getBoundingClientRect().top`)
		if top < -1 || top > 100 {
			t.Errorf("the section's heading is %.0fpx from the top of the window: not scrolled to", top)
		}
		if n := eval[int](t, b, "code", `document.querySelectorAll('#doc pre code.language-sql').length + document.querySelectorAll('#doc table th').length`); n != 3 {
			t.Errorf("the page's code block and table did not render (%d elements)", n)
		}
	})

	t.Run("chat", func(t *testing.T) {
		b.do(t, "ask",
			chromedp.Navigate(base+"/#/chat"),
			chromedp.Poll[chromedp.Void](`document.querySelector('#agent option[value=general]')`),
			chromedp.SendKeys(chromedp.CSS("#prompt"), "what is a partial index?"),
			chromedp.Click(chromedp.CSS("#send")),
			// The tool call shows while the run goes on, and the answer's first piece arrives while the
			// model still holds the rest back: the text streams, it does not come at the end.
			chromedp.Poll[chromedp.Void](`[...document.querySelectorAll('.turn .activity li')].some((li) => li.textContent.includes('kb_search'))`),
			chromedp.Poll[chromedp.Void](`(() => { const a = document.querySelector('.turn .answer.streaming'); return a && a.textContent.includes(`+jsString(strings.TrimSpace(answerStart))+`); })()`),
		)
		if !visible(t, b, "#cancel") {
			t.Error("no cancel button while the answer streams")
		}
		s.release()
		b.do(t, "the answer ends",
			chromedp.WaitVisible(chromedp.CSS(".turn .citations a")),
		)
		// The agent's "Sources:" lines become the list of links, numbered as the answer cites them.
		answer := text(t, b, ".turn .answer")
		if answer != answerStart+answerRest {
			t.Errorf("answer %q, want the model's text alone", answer)
		}
		href := eval[string](t, b, "citation", `document.querySelector('.turn .citations a').getAttribute('href')`)
		if href != indexesURL+"#"+partialAnchor {
			t.Errorf("citation link %q, want %q", href, indexesURL+"#"+partialAnchor)
		}
		if n := eval[int](t, b, "number", `document.querySelector('.turn .citations li').value`); n != 1 {
			t.Errorf("the citation is numbered %d, want the [1] of the answer", n)
		}
		if visible(t, b, "#cancel") {
			t.Error("the cancel button is still shown after the run ended")
		}
		if loc := eval[string](t, b, "location", `location.hash`); !strings.HasPrefix(loc, "#/chat/") {
			t.Errorf("address %q does not name the session", loc)
		}

		// A follow-up continues the session, and "Cancel" stops a run that would not end by itself.
		b.do(t, "follow up",
			chromedp.SendKeys(chromedp.CSS("#prompt"), "and without the predicate?"),
			chromedp.Click(chromedp.CSS("#send")),
			chromedp.Poll[chromedp.Void](`document.querySelectorAll('.turn .citations').length === 2`),
			chromedp.SendKeys(chromedp.CSS("#prompt"), "a slow one"),
			chromedp.Click(chromedp.CSS("#send")),
			chromedp.Poll[chromedp.Void](`document.querySelector('#cancel').offsetParent !== null && document.querySelectorAll('.turn').length === 3`),
			chromedp.Click(chromedp.CSS("#cancel")),
			chromedp.Poll[chromedp.Void](`(() => { const s = document.querySelector('.turn:nth-child(3) .turn-status'); return s && s.textContent.includes('cancelled'); })()`),
		)
		if n := eval[int](t, b, "agent", `document.querySelectorAll('.turn .msg.user').length`); n != 3 {
			t.Errorf("%d prompts shown, want 3", n)
		}

		// The session's address opens it again, from what the server stored.
		b.do(t, "reopen",
			chromedp.Reload(),
			chromedp.Poll[chromedp.Void](`document.querySelectorAll('.turn').length === 3 && document.querySelector('.turn .citations a')`),
		)
		if answer := text(t, b, ".turn .answer"); answer != answerStart+answerRest {
			t.Errorf("reopened, the first answer is %q", answer)
		}
		if href := eval[string](t, b, "citation", `document.querySelector('.turn .citations a').getAttribute('href')`); href != indexesURL+"#"+partialAnchor {
			t.Errorf("reopened, the first citation links to %q", href)
		}
	})

	t.Run("sources", func(t *testing.T) {
		seed := s.site.URL + "/index.html"
		b.do(t, "add and crawl a source",
			chromedp.Navigate(base+"/#/sources"),
			chromedp.Poll[chromedp.Void](`document.querySelectorAll('#sources .source').length === 1`),
			chromedp.SendKeys(chromedp.CSS("#source-url"), seed),
			chromedp.Click(chromedp.CSS(".add-source button[type=submit]")),
			// The crawl's line appears and follows it to its end through the event stream.
			chromedp.Poll[chromedp.Void](`document.querySelector('#crawls .crawl-job.done')`, chromedp.WithPollingTimeout(20*time.Second)),
			chromedp.Poll[chromedp.Void](`[...document.querySelectorAll('#sources .source')].some((li) => li.textContent.includes(`+jsString(seed)+`) && /[1-9]\d* pages?/.test(li.textContent))`),
		)
		counts := text(t, b, "#crawls .crawl-job.done .counts")
		if !strings.Contains(counts, "fetched") || !strings.Contains(counts, "new") {
			t.Errorf("the finished crawl says %q, want its counts", counts)
		}
		noPlaceholders(t, b, "sources")
	})

	// On a phone, nothing is wider than the screen: long URLs wrap, code and tables scroll inside.
	t.Run("phone width", func(t *testing.T) {
		b.do(t, "phone viewport", chromedp.EmulateViewport(375, 667, chromedp.EmulateMobile))
		for _, view := range []struct{ name, hash, ready string }{
			{"search", "#/search?q=" + url.QueryEscape("partial index"), "#hits .hit"},
			{"document", "#/doc?url=" + url.QueryEscape(indexesURL) + "&anchor=" + partialAnchor, "#doc h2.target"},
			{"chat", "#/chat", "#prompt"},
			{"sources", "#/sources", "#sources .source"},
		} {
			b.do(t, view.name,
				chromedp.Navigate(base+"/"+view.hash),
				chromedp.WaitVisible(chromedp.CSS(view.ready)),
			)
			if w := eval[int](t, b, "width", `document.documentElement.scrollWidth`); w > 375 {
				t.Errorf("%s view: %dpx wide at a 375px viewport", view.name, w)
			}
			noPlaceholders(t, b, view.name)
		}
	})
}

// noPlaceholders fails the test when the page shows what a script leaks when it mishandles a value.
func noPlaceholders(t *testing.T, b *browser, view string) {
	t.Helper()
	if leak := eval[string](t, b, "placeholders", `(document.body.innerText.match(/\b(?:undefined|null|NaN)\b|\[object \w+\]/) || [''])[0]`); leak != "" {
		t.Errorf("%s view shows %q", view, leak)
	}
}

// testLog writes a server's log lines to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// visible says whether the element sel finds is rendered (not hidden, nor in a hidden ancestor).
func visible(t *testing.T, b *browser, sel string) bool {
	t.Helper()
	return eval[bool](t, b, "visibility of "+sel, `document.querySelector(`+jsString(sel)+`).offsetParent !== null`)
}

// text is the visible text of the first element sel finds.
func text(t *testing.T, b *browser, sel string) string {
	t.Helper()
	return strings.TrimSpace(eval[string](t, b, "text of "+sel, `document.querySelector(`+jsString(sel)+`).innerText`))
}

func jsString(s string) string {
	j, _ := json.Marshal(s)
	return string(j)
}

func containsFold(list []string, want string) bool {
	for _, s := range list {
		if strings.EqualFold(s, want) {
			return true
		}
	}
	return false
}

// fakeModel speaks the OpenAI chat-completions wire format, streaming. To a prompt it answers
// with a kb_search call for it; to the tool's result with an answer citing [1], sent in pieces, the
// first of which it sends at once and the rest only after release. A prompt with "slow" in it gets
// nothing until the client gives up (the session is cancelled).
type fakeModel struct {
	srv     *httptest.Server
	gate    chan struct{}
	once    sync.Once
	release func()
}

func newFakeModel(t *testing.T) *fakeModel {
	m := &fakeModel{gate: make(chan struct{})}
	m.release = func() { m.once.Do(func() { close(m.gate) }) }
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.srv.Close)
	t.Cleanup(m.release)
	return m
}

func (m *fakeModel) serve(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Messages []struct {
			Role    string `json:"role"`
			Content any    `json:"content"`
		} `json:"messages"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) == 0 {
		http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	last := req.Messages[len(req.Messages)-1]
	prompt, _ := last.Content.(string)
	if last.Role == "user" && strings.Contains(prompt, "slow") {
		<-r.Context().Done()
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	send := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		_ = http.NewResponseController(w).Flush()
	}
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"id": "c", "object": "chat.completion.chunk", "model": "fake",
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	send(chunk(map[string]any{"role": "assistant"}, nil))
	finish := "stop"
	if last.Role == "user" {
		args, _ := json.Marshal(map[string]string{"query": prompt})
		send(chunk(map[string]any{"tool_calls": []any{map[string]any{"index": 0, "id": "call_1", "type": "function",
			"function": map[string]any{"name": "kb_search", "arguments": string(args)}}}}, nil))
		finish = "tool_calls"
	} else {
		send(chunk(map[string]any{"content": answerStart}, nil))
		select {
		case <-m.gate:
		case <-r.Context().Done():
			return
		}
		for _, piece := range strings.SplitAfter(answerRest, " ") {
			send(chunk(map[string]any{"content": piece}, nil))
		}
	}
	send(chunk(map[string]any{}, finish))
	send(map[string]any{"id": "c", "object": "chat.completion.chunk", "choices": []any{},
		"usage": map[string]int{"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}})
	fmt.Fprint(w, "data: [DONE]\n\n")
}
