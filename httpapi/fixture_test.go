package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"panther"
	"panther/agent"
	"panther/crawl"
	"panther/kb"
	"panther/llm"
	"panther/sqlite"
)

// The API's tests run it over the real services: a sqlite store, the knowledge base, the crawl
// manager crawling an httptest site, and live sessions of the built-in agents talking to an
// httptest server that speaks the OpenAI chat-completions wire format.

// Test tokens, one per scope.
var (
	readToken  = Token{Name: "reader", Secret: "read-token-0123456789", Scope: ScopeRead}
	writeToken = Token{Name: "writer", Secret: "write-token-0123456789", Scope: ScopeWrite}
	adminToken = Token{Name: "admin", Secret: "admin-token-0123456789", Scope: ScopeAdmin}
)

const (
	installURL = "https://docs.example.org/install.html"
	tuningURL  = "https://docs.example.org/tuning.html"
)

type fixture struct {
	t       *testing.T
	srv     *httptest.Server
	db      *sqlite.DB
	manager *crawl.Manager
	live    *agent.Live
	site    *httptest.Server
	logs    *syncBuffer
	// release lets the model answer "slow" prompts.
	release func()
}

type fixtureOptions struct {
	tokens     []Token
	maxBody    int64
	maxStreams int
	public     bool
	ui, mcp    http.Handler
	mcpWrite   http.Handler
	// serverTimeouts, when set, is the test server's read and write timeout.
	serverTimeouts time.Duration
}

func newFixture(t *testing.T, fo fixtureOptions) *fixture {
	t.Helper()
	f := &fixture{t: t, logs: &syncBuffer{}}
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "panther.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f.db = db
	svc, err := kb.New(db, kb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := db.AddSource(ctx, "https://docs.example.org/")
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range []struct{ url, title, body string }{
		{installURL, "Installing", "The widget server needs a zebra-striped quantum gizmo."},
		{tuningURL, "Tuning", "Tune the flux capacitor to 88 gigawatts."},
	} {
		doc := panther.Document{SourceID: src.ID, URL: p.url, Title: p.title, Markdown: "# " + p.title + "\n\n" + p.body,
			Validators: panther.Validators{ContentHash: fmt.Sprintf("h%d", i)}, FetchedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
		sections := []panther.Section{{Heading: []string{p.title}, Level: 1, Anchor: "top", Markdown: "# " + p.title + "\n\n" + p.body}}
		if _, err := svc.Ingest(ctx, doc, sections); err != nil {
			t.Fatal(err)
		}
	}

	f.site = httptest.NewServer(http.FileServer(http.Dir("../cmd/panther/testdata/site")))
	t.Cleanup(f.site.Close)
	f.manager, err = crawl.NewManager(crawl.ManagerOptions{Store: db, Index: svc,
		Crawl: crawl.Options{Retries: -1, Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}

	model := newFakeModel(t)
	f.release = model.release
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
	f.live, err = agent.NewLive(&agent.Sessions{Runtime: rt, Store: db}, agent.LiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		f.release()
		if err := f.live.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := f.manager.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})

	h, err := New(Options{
		Search: svc, Documents: svc, Sources: f.manager, Crawls: f.manager, Sessions: f.live, SessionStore: db, Stats: db,
		Agents: func() []AgentInfo {
			var out []AgentInfo
			for _, d := range defs {
				out = append(out, AgentInfo{Name: d.Name, Description: d.Description, Mode: string(d.Mode), Source: d.Source, Tools: []string{"kb_search"}})
			}
			return out
		},
		Ready:           func(ctx context.Context) error { _, err := db.Sources(ctx); return err },
		DocumentRemover: db, Embedding: svc,
		Backfill: backfillFunc(func() BackfillStatus { return BackfillStatus{Done: 3, Total: 3} }),
		Registry: prometheus.NewRegistry(), Tokens: fo.tokens, MetricsPublic: fo.public,
		MaxBodyBytes: fo.maxBody, MaxStreams: fo.maxStreams, Heartbeat: 50 * time.Millisecond, UI: fo.ui, MCP: fo.mcp, MCPWrite: fo.mcpWrite,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewUnstartedServer(h)
	f.srv.Config.ReadTimeout, f.srv.Config.WriteTimeout = fo.serverTimeouts, fo.serverTimeouts
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

type backfillFunc func() BackfillStatus

func (b backfillFunc) BackfillStatus() BackfillStatus { return b() }

// do sends a request with token's secret (none for a zero token) and returns the response with
// its body read.
func (f *fixture) do(method, path string, body any, tok Token, header ...string) (*http.Response, []byte) {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(f.t.Context(), method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok.Secret != "" {
		req.Header.Set("Authorization", "Bearer "+tok.Secret)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp, b
}

// mustJSON does a request that must answer code and decodes its JSON body.
func (f *fixture) mustJSON(code int, method, path string, body any, tok Token, out any) {
	f.t.Helper()
	resp, b := f.do(method, path, body, tok)
	if resp.StatusCode != code {
		f.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, code)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			f.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

// sseEvent is one server-sent event.
type sseEvent struct {
	kind, id, data string
}

// events opens an event stream and reads it until it ends (or until stop says so).
func (f *fixture) events(path string, tok Token, stop func(sseEvent) bool, header ...string) []sseEvent {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.t.Context(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", f.srv.URL+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if tok.Secret != "" {
		req.Header.Set("Authorization", "Bearer "+tok.Secret)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		f.t.Fatalf("GET %s: %d %s %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.kind != "" || cur.data != "" {
				out = append(out, cur)
				if stop != nil && stop(cur) {
					return out
				}
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			cur.kind = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			cur.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			cur.data += strings.TrimPrefix(line, "data: ")
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() != nil {
		f.t.Fatalf("GET %s: the stream did not end: %v (events so far %v)", path, err, out)
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeModel speaks the OpenAI chat-completions wire format, streaming. Its script: a first turn
// that calls kb_search with the prompt, then an answer citing [1]. A prompt containing "slow"
// waits, before answering, for release or for the client to give up.
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
	prompt, _ := req.Messages[len(req.Messages)-1].Content.(string)
	last := req.Messages[len(req.Messages)-1].Role
	if strings.Contains(prompt, "slow") {
		select {
		case <-m.gate:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	send := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		http.NewResponseController(w).Flush()
	}
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"id": "c", "object": "chat.completion.chunk", "model": "fake",
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	send(chunk(map[string]any{"role": "assistant"}, nil))
	finish := "stop"
	if last == "user" {
		args, _ := json.Marshal(map[string]string{"query": "zebra-striped quantum gizmo"})
		send(chunk(map[string]any{"tool_calls": []any{map[string]any{"index": 0, "id": "call_1", "type": "function",
			"function": map[string]any{"name": "kb_search", "arguments": string(args)}}}}, nil))
		finish = "tool_calls"
	} else {
		for _, piece := range []string{"It needs a zebra-striped ", "quantum gizmo [1]."} {
			send(chunk(map[string]any{"content": piece}, nil))
		}
	}
	send(chunk(map[string]any{}, finish))
	send(map[string]any{"id": "c", "object": "chat.completion.chunk", "choices": []any{},
		"usage": map[string]int{"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}})
	fmt.Fprint(w, "data: [DONE]\n\n")
}
