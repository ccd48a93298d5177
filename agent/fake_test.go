package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"panther"
	"panther/kb"
	"panther/llm"
	"panther/sqlite"
)

// A fake model at the HTTP level: an httptest server speaking the OpenAI chat-completions wire format
// (plain JSON and server-sent events), answering with scripted turns, and the real llm.OpenAI client in
// front of it.

type call struct{ ID, Name, Args string }

type turn struct {
	Text    string
	Calls   []call
	In, Out int
}

type wireMessage struct {
	Role       string  `json:"role"`
	Content    *string `json:"content"`
	ToolCallID string  `json:"tool_call_id"`
	ToolCalls  []struct {
		ID       string `json:"id"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls"`
}

type wireRequest struct {
	Model    string        `json:"model"`
	Stream   bool          `json:"stream"`
	Messages []wireMessage `json:"messages"`
	Tools    []struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	} `json:"tools"`
}

// toolMessages returns the request's tool messages by call id, with their content.
func (r wireRequest) toolMessages() map[string]string {
	out := map[string]string{}
	for _, m := range r.Messages {
		if m.Role == "tool" && m.Content != nil {
			out[m.ToolCallID] = *m.Content
		}
	}
	return out
}

type fakeModel struct {
	mu     sync.Mutex
	reqs   []wireRequest
	script func(n int, req wireRequest) turn // n counts from 1
}

func (f *fakeModel) requests() []wireRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]wireRequest(nil), f.reqs...)
}

func (f *fakeModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/chat/completions" {
		http.Error(w, `{"error":{"message":"no such path"}}`, http.StatusNotFound)
		return
	}
	var req wireRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `{"error":{"message":"bad json"}}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	n := len(f.reqs)
	f.mu.Unlock()
	t := f.script(n, req)
	finish := "stop"
	if len(t.Calls) > 0 {
		finish = "tool_calls"
	}
	usage := map[string]int{"prompt_tokens": t.In, "completion_tokens": t.Out, "total_tokens": t.In + t.Out}
	if !req.Stream {
		msg := map[string]any{"role": "assistant", "content": nil}
		if t.Text != "" {
			msg["content"] = t.Text
		}
		var calls []map[string]any
		for _, c := range t.Calls {
			calls = append(calls, map[string]any{"id": c.ID, "type": "function", "function": map[string]string{"name": c.Name, "arguments": c.Args}})
		}
		if calls != nil {
			msg["tool_calls"] = calls
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"id": fmt.Sprintf("chatcmpl-%d", n), "object": "chat.completion", "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}},
			"usage":   usage,
		})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fl, _ := w.(http.Flusher)
	send := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		if fl != nil {
			fl.Flush()
		}
	}
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"id": fmt.Sprintf("chatcmpl-%d", n), "object": "chat.completion.chunk",
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	send(chunk(map[string]any{"role": "assistant", "content": ""}, nil))
	// Text in two pieces, tool arguments in two pieces, as real servers cut them.
	if t.Text != "" {
		h := len(t.Text) / 2
		send(chunk(map[string]any{"content": t.Text[:h]}, nil))
		send(chunk(map[string]any{"content": t.Text[h:]}, nil))
	}
	for i, c := range t.Calls {
		h := len(c.Args) / 2
		send(chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i, "id": c.ID, "type": "function",
			"function": map[string]any{"name": c.Name, "arguments": c.Args[:h]}}}}, nil))
		send(chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i,
			"function": map[string]any{"arguments": c.Args[h:]}}}}, nil))
	}
	send(chunk(map[string]any{}, finish))
	send(map[string]any{"id": fmt.Sprintf("chatcmpl-%d", n), "object": "chat.completion.chunk", "choices": []any{}, "usage": usage})
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// newFakeModel starts the server and returns the fake and a real client of it.
func newFakeModel(t *testing.T, script func(n int, req wireRequest) turn) (*fakeModel, *llm.OpenAI) {
	t.Helper()
	f := &fakeModel{script: script}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	m, err := llm.NewOpenAI(llm.OpenAIOptions{BaseURL: srv.URL + "/v1", Model: "fake-model", Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return f, m
}

// A real knowledge base over a real sqlite store.

const (
	indexesURL = "https://docs.example.org/indexes.html"
	vacuumURL  = "https://docs.example.org/vacuum.html"
	backupURL  = "https://docs.example.org/backup.html"
)

var fetched = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// kbWithChunks is the service with the store's Chunks, so that kb_read can read sections.
type kbWithChunks struct {
	*kb.Service
	db *sqlite.DB
}

func (k kbWithChunks) Chunks(ctx context.Context, docID int64) ([]panther.Chunk, error) {
	return k.db.Chunks(ctx, docID)
}

func openKB(t testing.TB, extra ...pageSpec) kbWithChunks {
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
	pages := append([]pageSpec{
		{indexesURL, "Indexes", []panther.Section{
			{Heading: []string{"Indexes"}, Level: 1, Anchor: "indexes", Markdown: "# Indexes\n\nIndexes speed up queries on large tables."},
			{Heading: []string{"Indexes", "Partial Indexes"}, Level: 2, Anchor: "partial-indexes", Markdown: "## Partial Indexes\n\nA partial index is built over a subset of a table, the rows that satisfy its WHERE predicate."},
		}},
		{vacuumURL, "VACUUM", []panther.Section{
			{Heading: []string{"VACUUM"}, Level: 1, Anchor: "vacuum", Markdown: "# VACUUM\n\nVACUUM reclaims storage occupied by dead tuples."},
		}},
		{backupURL, "Backup", []panther.Section{
			{Heading: []string{"Backup"}, Level: 1, Anchor: "backup", Markdown: "# Backup\n\npg_dump writes a consistent snapshot of one database."},
		}},
	}, extra...)
	for i, p := range pages {
		var md []string
		for _, s := range p.sections {
			md = append(md, s.Markdown)
		}
		doc := panther.Document{URL: p.url, Title: p.title, Markdown: strings.Join(md, "\n\n"),
			Validators: panther.Validators{ContentHash: fmt.Sprintf("hash-%d", i)}, FetchedAt: fetched}
		if _, err := svc.Ingest(ctx, doc, p.sections); err != nil {
			t.Fatal(err)
		}
	}
	return kbWithChunks{Service: svc, db: db}
}

type pageSpec struct {
	url, title string
	sections   []panther.Section
}

// funcTool is a tool made of a function, for the loop's tests.
type funcTool struct {
	name string
	run  func(ctx context.Context, args json.RawMessage) (ToolResult, error)
}

func (f funcTool) Spec() panther.ToolSpec {
	return panther.ToolSpec{Name: f.name, Description: "test tool " + f.name, Parameters: json.RawMessage(`{"type":"object","properties":{}}`)}
}

func (f funcTool) Run(ctx context.Context, args json.RawMessage) (ToolResult, error) {
	return f.run(ctx, args)
}

// eventLog collects events.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) kinds(kind string) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for _, e := range l.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func (l *eventLog) text() string {
	var b strings.Builder
	for _, e := range l.kinds(EventText) {
		b.WriteString(e.Text)
	}
	return b.String()
}
