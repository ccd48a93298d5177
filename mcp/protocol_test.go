package mcp

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
	"strings"
	"sync"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// syncBuffer is a log sink the server may write to from several goroutines.
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

// rpcAnswer is one JSON-RPC message the server sent.
type rpcAnswer struct {
	ID     *int            `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

const initializeRequest = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`

// Clients (OpenCode among them) send notifications/cancelled for requests whose answer has already
// come, or crossed the notification on the way. The server must take it in silence and go on: no
// error answer (a notification has none), no broken session.
func TestCancelledNotificationForAnsweredRequest(t *testing.T) {
	cancels := []string{
		// The answered search, as OpenCode sends it.
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2,"reason":"AbortError: This operation was aborted"}}`,
		// A request that never was.
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":99}}`,
		// A string id.
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"2"}}`,
	}
	search := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"search","arguments":{"query":"vacuum dead tuples"}}}`
	list := `{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{}}`

	t.Run("stdio", func(t *testing.T) {
		svc, db := openKB(t, corpus)
		logs := &syncBuffer{}
		srv, err := NewServer(svc, db, Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		if err != nil {
			t.Fatal(err)
		}
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		done := make(chan error, 1)
		go func() { done <- srv.ServeIO(context.Background(), inR, outW) }()
		out := bufio.NewReader(outR)
		next := func() rpcAnswer {
			t.Helper()
			line, err := out.ReadString('\n')
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			var a rpcAnswer
			if err := json.Unmarshal([]byte(line), &a); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			return a
		}
		send := func(msg string) {
			t.Helper()
			if _, err := io.WriteString(inW, msg+"\n"); err != nil {
				t.Fatal(err)
			}
		}
		send(initializeRequest)
		if a := next(); a.ID == nil || *a.ID != 1 || a.Error != nil {
			t.Fatalf("initialize: %+v", a)
		}
		send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
		send(search)
		if a := next(); a.ID == nil || *a.ID != 2 || a.Error != nil || !strings.Contains(string(a.Result), "dead tuples") {
			t.Fatalf("search: %+v %s", a, a.Result)
		}
		for _, c := range cancels {
			send(c)
		}
		// The next message out is the answer to the next request: nothing was said about the
		// cancellations.
		send(list)
		if a := next(); a.ID == nil || *a.ID != 3 || a.Error != nil || !strings.Contains(string(a.Result), `"search"`) {
			t.Errorf("after the cancellations, tools/list: %+v %s", a, a.Result)
		}
		send(search)
		if a := next(); a.ID == nil || *a.ID != 2 || a.Error != nil || !strings.Contains(string(a.Result), "dead tuples") {
			t.Errorf("a search after the cancellations: %+v %s", a, a.Result)
		}
		inW.Close()
		if err := <-done; err != nil {
			t.Errorf("ServeIO: %v", err)
		}
		if l := logs.String(); strings.Contains(l, "level=ERROR") {
			t.Errorf("the server logged errors:\n%s", l)
		}
	})

	t.Run("streamable HTTP", func(t *testing.T) {
		svc, db := openKB(t, corpus)
		logs := &syncBuffer{}
		srv, err := NewServer(svc, db, Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv.HTTPHandler())
		defer hs.Close()
		var session string
		post := func(msg string) (int, []rpcAnswer) {
			t.Helper()
			req, err := http.NewRequestWithContext(t.Context(), "POST", hs.URL, strings.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("MCP-Protocol-Version", "2025-06-18")
			if session != "" {
				req.Header.Set("Mcp-Session-Id", session)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if id := resp.Header.Get("Mcp-Session-Id"); id != "" {
				session = id
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			return resp.StatusCode, parseAnswers(t, resp.Header.Get("Content-Type"), body)
		}
		if code, as := post(initializeRequest); code != 200 || len(as) != 1 || as[0].Error != nil || session == "" {
			t.Fatalf("initialize: %d %+v (session %q)", code, as, session)
		}
		if code, _ := post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`); code != http.StatusAccepted {
			t.Fatalf("notifications/initialized: %d", code)
		}
		if code, as := post(search); code != 200 || len(as) != 1 || as[0].Error != nil || !strings.Contains(string(as[0].Result), "dead tuples") {
			t.Fatalf("search: %d %+v", code, as)
		}
		for _, c := range cancels {
			if code, as := post(c); code != http.StatusAccepted || len(as) != 0 {
				t.Errorf("%s: %d %+v, want 202 and no answer", c, code, as)
			}
		}
		if code, as := post(list); code != 200 || len(as) != 1 || as[0].Error != nil || !strings.Contains(string(as[0].Result), `"search"`) {
			t.Errorf("after the cancellations, tools/list: %d %+v", code, as)
		}
		if l := logs.String(); strings.Contains(l, "level=ERROR") {
			t.Errorf("the server logged errors:\n%s", l)
		}
	})
}

// parseAnswers reads the JSON-RPC messages of a streamable HTTP answer: one JSON body, or the data
// lines of an event stream.
func parseAnswers(t *testing.T, contentType string, body []byte) []rpcAnswer {
	t.Helper()
	var raw []string
	switch {
	case len(bytes.TrimSpace(body)) == 0:
	case strings.HasPrefix(contentType, "text/event-stream"):
		for line := range strings.SplitSeq(string(body), "\n") {
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				raw = append(raw, data)
			}
		}
	default:
		raw = append(raw, string(body))
	}
	var out []rpcAnswer
	for _, r := range raw {
		var a rpcAnswer
		if err := json.Unmarshal([]byte(r), &a); err != nil {
			t.Fatalf("answer %q: %v", r, err)
		}
		out = append(out, a)
	}
	return out
}

// Output schemas say "array" for lists, never ["null","array"]: clients that map schemas onto a
// single-type dialect reject or mangle the union, and the MCP Inspector's --strict check warns.
func TestOutputSchemasAreSingleTyped(t *testing.T) {
	_, cs := newServer(t, Options{AllowWrite: true, Crawler: &recordingCrawler{}, Asker: fixedAsker{}})
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tools) != 6 {
		t.Errorf("%d tools, want all 6", len(res.Tools))
	}
	for _, tool := range res.Tools {
		b, err := json.Marshal(tool.OutputSchema)
		if err != nil {
			t.Fatal(err)
		}
		var walk func(path string, v any)
		walk = func(path string, v any) {
			switch v := v.(type) {
			case map[string]any:
				if types, ok := v["type"].([]any); ok {
					t.Errorf("%s: output schema %s has type %v", tool.Name, path, types)
				}
				for k, sub := range v {
					walk(path+"/"+k, sub)
				}
			case []any:
				for i, sub := range v {
					walk(fmt.Sprintf("%s/%d", path, i), sub)
				}
			}
		}
		var sc any
		if err := json.Unmarshal(b, &sc); err != nil {
			t.Fatal(err)
		}
		walk("", sc)
	}
	// The lists the schemas promise are there even when empty.
	for _, c := range []struct {
		tool string
		args map[string]any
		key  string
	}{
		{"search", map[string]any{"query": "zebra"}, "hits"},
		{"ask", map[string]any{"question": "anything"}, "citations"},
	} {
		res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: c.tool, Arguments: c.args})
		if err != nil || res.IsError {
			t.Fatalf("%s: %v %+v", c.tool, err, res)
		}
		b, _ := json.Marshal(res.StructuredContent)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m[c.key].([]any); !ok {
			t.Errorf("%s: %s is %v in %s, want an array", c.tool, c.key, m[c.key], b)
		}
	}
}
