package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"panther"
)

const oaiTestKey = "sk-test-secret"

// oaiFixture reads a recorded-style answer from testdata/openai.
func oaiFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "openai", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// oaiReply is one canned answer of the fake server.
type oaiReply struct {
	status  int
	header  map[string]string
	fixture string // file under testdata/openai; .sse is served as an event stream
	body    string
}

// oaiServer answers POST /v1/chat/completions with replies in turn (the last one repeats) and keeps
// the bodies it was sent.
type oaiServer struct {
	*httptest.Server
	mu      sync.Mutex
	bodies  [][]byte
	headers []http.Header
}

func (s *oaiServer) attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

func newOAIServer(t *testing.T, replies ...oaiReply) *oaiServer {
	t.Helper()
	s := &oaiServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusTeapot)
			return
		}
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, b)
		s.headers = append(s.headers, r.Header.Clone())
		n := len(s.bodies)
		s.mu.Unlock()
		rep := replies[min(n, len(replies))-1]
		body := []byte(rep.body)
		if rep.fixture != "" {
			body = oaiFixture(t, rep.fixture)
		}
		ct := "application/json"
		if strings.HasSuffix(rep.fixture, ".sse") || strings.HasPrefix(rep.body, "data:") {
			ct = "text/event-stream; charset=utf-8"
		}
		w.Header().Set("Content-Type", ct)
		for k, v := range rep.header {
			w.Header().Set(k, v)
		}
		status := rep.status
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

// newOAITestClient makes a client whose retry waits are recorded instead of slept.
func newOAITestClient(t *testing.T, url string, o OpenAIOptions) (*OpenAI, *[]time.Duration) {
	t.Helper()
	o.BaseURL = url + "/v1"
	if o.APIKey == "" {
		o.APIKey = oaiTestKey
	}
	if o.Model == "" {
		o.Model = "gpt-4o-mini"
	}
	c, err := NewOpenAI(o)
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	c.sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		return ctx.Err()
	}
	return c, &waits
}

var oaiHello = panther.ModelRequest{Messages: []panther.Message{{Role: panther.RoleUser, Content: "Say hello"}}}

func TestOpenAIAnswers(t *testing.T) {
	tests := []struct {
		name      string
		fixture   string
		stream    bool
		wantText  string
		wantCalls []panther.ToolCall
		wantStop  panther.StopReason
		wantUsage panther.Usage
		// wantEvents is the text of the events in order, tool calls written as name(args).
		wantEvents []string
	}{
		{
			name: "plain non-stream", fixture: "plain.json",
			wantText: "Hello, world!", wantStop: panther.StopEnd, wantUsage: panther.Usage{InputTokens: 19, OutputTokens: 4},
		},
		{
			name: "plain stream", fixture: "plain_stream.sse", stream: true,
			wantText: "Hello, world!", wantStop: panther.StopEnd, wantUsage: panther.Usage{InputTokens: 19, OutputTokens: 4},
			wantEvents: []string{"Hello", ", wor", "ld!"},
		},
		{
			name: "non-stream answer to a stream request", fixture: "plain.json", stream: true,
			wantText: "Hello, world!", wantStop: panther.StopEnd, wantUsage: panther.Usage{InputTokens: 19, OutputTokens: 4},
			wantEvents: []string{"Hello, world!"},
		},
		{
			name: "length", fixture: "length_stream.sse", stream: true,
			wantText: "Once upon", wantStop: panther.StopMaxTokens, wantUsage: panther.Usage{InputTokens: 10, OutputTokens: 2},
			wantEvents: []string{"Once upon"},
		},
		{
			name: "content filter", fixture: "content_filter_stream.sse", stream: true,
			wantStop: panther.StopOther, wantUsage: panther.Usage{InputTokens: 10},
		},
		{
			name: "one tool call", fixture: "one_tool_stream.sse", stream: true,
			wantCalls: []panther.ToolCall{{ID: "call_Ke5hQ1", Name: "kb_search", Arguments: json.RawMessage(`{"query":"partial indexes","k":5}`)}},
			wantStop:  panther.StopToolCalls, wantUsage: panther.Usage{InputTokens: 120, OutputTokens: 22},
			wantEvents: []string{`kb_search({"query":"partial indexes","k":5})`},
		},
		{
			name: "two tool calls with interleaved fragments", fixture: "two_tools_stream.sse", stream: true,
			wantText: "Let me look.",
			wantCalls: []panther.ToolCall{
				{ID: "call_A1", Name: "kb_search", Arguments: json.RawMessage(`{"query":"vacuum"}`)},
				{ID: "call_B2", Name: "web_fetch", Arguments: json.RawMessage(`{"url":"https://example.org/"}`)},
			},
			wantStop: panther.StopToolCalls, wantUsage: panther.Usage{InputTokens: 200, OutputTokens: 40},
			wantEvents: []string{"Let me look.", `kb_search({"query":"vacuum"})`, `web_fetch({"url":"https://example.org/"})`},
		},
		{
			name: "ollama parallel calls at one index, finished with stop", fixture: "ollama_parallel_stream.sse", stream: true,
			wantCalls: []panther.ToolCall{
				{ID: "call_x1", Name: "kb_search", Arguments: json.RawMessage(`{"query":"a"}`)},
				{ID: "call_x2", Name: "kb_read", Arguments: json.RawMessage(`{"id":7}`)},
			},
			wantStop: panther.StopToolCalls, wantUsage: panther.Usage{InputTokens: 80, OutputTokens: 30},
			wantEvents: []string{`kb_search({"query":"a"})`, `kb_read({"id":7})`},
		},
		{
			name: "tool calls non-stream", fixture: "tool_calls.json",
			wantCalls: []panther.ToolCall{
				{ID: "call_abc123", Name: "kb_search", Arguments: json.RawMessage("{\n\"query\": \"vacuum\"\n}")},
				{ID: "call_def456", Name: "kb_read", Arguments: json.RawMessage(`{"id": 3}`)},
			},
			wantStop: panther.StopToolCalls, wantUsage: panther.Usage{InputTokens: 82, OutputTokens: 17},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newOAIServer(t, oaiReply{fixture: tt.fixture})
			c, _ := newOAITestClient(t, srv.URL, OpenAIOptions{})
			var events []string
			var onEvent func(panther.StreamEvent)
			if tt.stream {
				onEvent = func(e panther.StreamEvent) {
					switch {
					case e.ToolCall != nil && e.Text != "":
						t.Errorf("event with both text and a tool call: %+v", e)
					case e.ToolCall != nil:
						events = append(events, e.ToolCall.Name+"("+string(e.ToolCall.Arguments)+")")
					default:
						events = append(events, e.Text)
					}
				}
			}
			resp, err := c.Complete(context.Background(), oaiHello, onEvent)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Message.Role != panther.RoleAssistant {
				t.Errorf("role = %q", resp.Message.Role)
			}
			if resp.Message.Content != tt.wantText {
				t.Errorf("text = %q, want %q", resp.Message.Content, tt.wantText)
			}
			if !reflect.DeepEqual(resp.Message.ToolCalls, tt.wantCalls) {
				t.Errorf("tool calls = %s, want %s", oaiShow(resp.Message.ToolCalls), oaiShow(tt.wantCalls))
			}
			if resp.StopReason != tt.wantStop {
				t.Errorf("stop = %q, want %q", resp.StopReason, tt.wantStop)
			}
			if resp.Usage != tt.wantUsage {
				t.Errorf("usage = %+v, want %+v", resp.Usage, tt.wantUsage)
			}
			if tt.stream && !reflect.DeepEqual(events, tt.wantEvents) {
				t.Errorf("events = %q, want %q", events, tt.wantEvents)
			}
			var req map[string]any
			if err := json.Unmarshal(srv.bodies[0], &req); err != nil {
				t.Fatal(err)
			}
			if req["stream"] != tt.stream {
				t.Errorf("stream = %v, want %v", req["stream"], tt.stream)
			}
			if _, ok := req["stream_options"]; ok != tt.stream {
				t.Errorf("stream_options present = %v, want %v", ok, tt.stream)
			}
			if got := srv.headers[0].Get("Authorization"); got != "Bearer "+oaiTestKey {
				t.Errorf("Authorization = %q", got)
			}
		})
	}
}

func oaiShow(calls []panther.ToolCall) string {
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "[%s %s %s]", c.ID, c.Name, c.Arguments)
	}
	return b.String()
}

func TestOpenAIErrors(t *testing.T) {
	tests := []struct {
		name     string
		replies  []oaiReply
		stream   bool
		wantKind error
		wantIn   []string
		// wantAttempts is how many requests the server should see (Retries is 2).
		wantAttempts int
		wantWaits    []time.Duration
	}{
		{
			name:     "401 without the key",
			replies:  []oaiReply{{status: 401, fixture: "error_401.json"}},
			wantKind: panther.ErrUnavailable, wantIn: []string{"authentication failed for http://", "/v1"}, wantAttempts: 1,
		},
		{
			name:     "404 names the model",
			replies:  []oaiReply{{status: 404, fixture: "error_404_model.json"}},
			wantKind: panther.ErrUnavailable, wantIn: []string{`model "gpt-4o-mini" not found`}, wantAttempts: 1,
		},
		{
			name:     "context length",
			replies:  []oaiReply{{status: 400, fixture: "error_context_length.json"}},
			wantKind: panther.ErrInvalid, wantIn: []string{"longer than the model's context window", "maximum context length is 128000"}, wantAttempts: 1,
		},
		{
			name:     "context length in a stream",
			replies:  []oaiReply{{fixture: "context_length_stream.sse"}},
			stream:   true,
			wantKind: panther.ErrInvalid, wantIn: []string{"context window"}, wantAttempts: 1,
		},
		{
			name:     "other 4xx gives the provider's message, key redacted",
			replies:  []oaiReply{{status: 400, fixture: "error_400.json"}},
			wantKind: panther.ErrInvalid, wantIn: []string{"Invalid schema for function 'kb_search'", "[redacted]"}, wantAttempts: 1,
		},
		{
			name:     "429 with Retry-After, then success",
			replies:  []oaiReply{{status: 429, header: map[string]string{"Retry-After": "3"}, fixture: "error_429.json"}, {fixture: "plain_stream.sse"}},
			stream:   true,
			wantKind: nil, wantAttempts: 2, wantWaits: []time.Duration{3 * time.Second},
		},
		{
			name:     "429 with retry-after-ms",
			replies:  []oaiReply{{status: 429, header: map[string]string{"Retry-After-Ms": "250", "Retry-After": "1"}, fixture: "error_429.json"}, {fixture: "plain.json"}},
			wantKind: nil, wantAttempts: 2, wantWaits: []time.Duration{250 * time.Millisecond},
		},
		{
			name:     "Retry-After beyond the cap fails at once",
			replies:  []oaiReply{{status: 429, header: map[string]string{"Retry-After": "3600"}, fixture: "error_429.json"}},
			wantKind: panther.ErrUnavailable, wantIn: []string{"retry after 1h0m0s"}, wantAttempts: 1,
		},
		{
			name:     "insufficient quota is not retried",
			replies:  []oaiReply{{status: 429, body: `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`}},
			wantKind: panther.ErrUnavailable, wantIn: []string{"quota exhausted"}, wantAttempts: 1,
		},
		{
			name:     "503 gives up",
			replies:  []oaiReply{{status: 503, fixture: "error_503.json"}},
			wantKind: panther.ErrUnavailable, wantIn: []string{"gave up after 3 attempts", "HTTP 503", "overloaded"}, wantAttempts: 3,
		},
		{
			name:     "error event inside a stream",
			replies:  []oaiReply{{fixture: "error_event_stream.sse"}},
			stream:   true,
			wantKind: panther.ErrUnavailable, wantIn: []string{"error event in the stream", "The server had an error"}, wantAttempts: 1,
		},
		{
			name:     "stream cut after text was delivered is an error, not retried",
			replies:  []oaiReply{{fixture: "cut_stream.sse"}},
			stream:   true,
			wantKind: panther.ErrUnavailable, wantIn: []string{"stream broken", "not retried", "unexpected EOF"}, wantAttempts: 1,
		},
		{
			name:     "stream cut before anything was delivered is retried",
			replies:  []oaiReply{{body: "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n", fixture: ""}, {fixture: "plain_stream.sse"}},
			stream:   true,
			wantKind: nil, wantAttempts: 2,
		},
		{
			name:     "HTML instead of JSON",
			replies:  []oaiReply{{body: "<html>proxy login</html>"}},
			wantKind: panther.ErrUnavailable, wantIn: []string{"not JSON"}, wantAttempts: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newOAIServer(t, tt.replies...)
			c, waits := newOAITestClient(t, srv.URL, OpenAIOptions{Retries: 2})
			var onEvent func(panther.StreamEvent)
			if tt.stream {
				onEvent = func(panther.StreamEvent) {}
			}
			_, err := c.Complete(context.Background(), oaiHello, onEvent)
			if tt.wantKind == nil {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				if err == nil {
					t.Fatal("no error")
				}
				t.Log(err)
				if !errors.Is(err, tt.wantKind) {
					t.Errorf("error %q is not %v", err, tt.wantKind)
				}
				for _, s := range tt.wantIn {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				if strings.Contains(err.Error(), oaiTestKey) || strings.Contains(err.Error(), "cret") {
					t.Errorf("error %q shows the key", err)
				}
			}
			if got := srv.attempts(); got != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", got, tt.wantAttempts)
			}
			if tt.wantWaits != nil && !reflect.DeepEqual(*waits, tt.wantWaits) {
				t.Errorf("waits = %v, want %v", *waits, tt.wantWaits)
			}
		})
	}
}

func TestOpenAIBackoffWithoutRetryAfter(t *testing.T) {
	srv := newOAIServer(t, oaiReply{status: 500, body: `{"error":{"message":"boom"}}`})
	c, waits := newOAITestClient(t, srv.URL, OpenAIOptions{Retries: 4})
	_, err := c.Complete(context.Background(), oaiHello, nil)
	if !errors.Is(err, panther.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if len(*waits) != 4 {
		t.Fatalf("waits = %v", *waits)
	}
	for i, w := range *waits {
		full := openAIBackoffBase << i
		if w < full/2 || w > full {
			t.Errorf("wait %d = %s, want within [%s, %s]", i, w, full/2, full)
		}
	}
}

// oaiStallServer writes head as an event stream, then holds the connection open until the client
// goes away.
func oaiStallServer(t *testing.T, head string) *oaiServer {
	s := &oaiServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, b)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, head)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(s.Close)
	return s
}

func TestOpenAIIdleTimeout(t *testing.T) {
	t.Run("after text: error, not retried", func(t *testing.T) {
		srv := oaiStallServer(t, `data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}`+"\n\n")
		c, _ := newOAITestClient(t, srv.URL, OpenAIOptions{IdleTimeout: 100 * time.Millisecond, Retries: 3})
		var got []string
		start := time.Now()
		_, err := c.Complete(context.Background(), oaiHello, func(e panther.StreamEvent) { got = append(got, e.Text) })
		if err == nil || !strings.Contains(err.Error(), "IdleTimeout") || !errors.Is(err, panther.ErrUnavailable) {
			t.Fatalf("err = %v", err)
		}
		if time.Since(start) > 3*time.Second {
			t.Errorf("took %s", time.Since(start))
		}
		if !reflect.DeepEqual(got, []string{"Hel"}) {
			t.Errorf("events = %q", got)
		}
		if n := srv.attempts(); n != 1 {
			t.Errorf("attempts = %d, want 1", n)
		}
	})
	t.Run("before anything: retried", func(t *testing.T) {
		srv := oaiStallServer(t, ": ping\n\n")
		c, _ := newOAITestClient(t, srv.URL, OpenAIOptions{IdleTimeout: 50 * time.Millisecond, Retries: 1})
		_, err := c.Complete(context.Background(), oaiHello, func(panther.StreamEvent) {})
		if err == nil || !strings.Contains(err.Error(), "gave up after 2 attempts") {
			t.Fatalf("err = %v", err)
		}
		if n := srv.attempts(); n != 2 {
			t.Errorf("attempts = %d, want 2", n)
		}
	})
	t.Run("slow onEvent is not idleness", func(t *testing.T) {
		srv := newOAIServer(t, oaiReply{fixture: "plain_stream.sse"})
		c, _ := newOAITestClient(t, srv.URL, OpenAIOptions{IdleTimeout: 30 * time.Millisecond})
		resp, err := c.Complete(context.Background(), oaiHello, func(panther.StreamEvent) { time.Sleep(60 * time.Millisecond) })
		if err != nil || resp.Message.Content != "Hello, world!" {
			t.Fatalf("resp = %+v, err = %v", resp, err)
		}
	})
}

func TestOpenAITimeout(t *testing.T) {
	srv := oaiStallServer(t, ": ping\n\n")
	c, _ := newOAITestClient(t, srv.URL, OpenAIOptions{Timeout: 100 * time.Millisecond})
	_, err := c.Complete(context.Background(), oaiHello, func(panther.StreamEvent) {})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, panther.ErrUnavailable) || !strings.Contains(err.Error(), "Timeout") {
		t.Fatalf("err = %v", err)
	}
}

func TestOpenAICancel(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) {
			srv := oaiStallServer(t, `data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}`+"\n\n")
			c, _ := newOAITestClient(t, srv.URL, OpenAIOptions{})
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			var onEvent func(panther.StreamEvent)
			if stream {
				onEvent = func(panther.StreamEvent) {}
			}
			start := time.Now()
			_, err := c.Complete(ctx, oaiHello, onEvent)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("cancel took %s", d)
			}
			if n := srv.attempts(); n != 1 {
				t.Errorf("attempts = %d", n)
			}
		})
	}
}

func TestOpenAIRequestBody(t *testing.T) {
	srv := newOAIServer(t, oaiReply{fixture: "plain_stream.sse"})
	c, _ := newOAITestClient(t, srv.URL, OpenAIOptions{Model: "glm-4.6", MaxTokens: 1000})
	temp := 0.2
	req := panther.ModelRequest{
		System: "You are terse.",
		Messages: []panther.Message{
			{Role: panther.RoleUser, Content: "What is VACUUM?"},
			{Role: panther.RoleAssistant, ToolCalls: []panther.ToolCall{
				{ID: "call_1", Name: "kb_search", Arguments: json.RawMessage(`{"query":"vacuum"}`)},
				{ID: "call_2", Name: "kb_list"},
			}},
			{Role: panther.RoleTool, ToolCallID: "call_1", Content: "VACUUM reclaims storage."},
			{Role: panther.RoleTool, ToolCallID: "call_2", Content: "no such tool", IsError: true},
			{Role: panther.RoleAssistant, Content: "It reclaims storage."},
			{Role: panther.RoleUser, Content: "Thanks"},
		},
		Tools: []panther.ToolSpec{
			{Name: "kb_search", Description: "Search the knowledge base.", Parameters: json.RawMessage(`{"type":"object","properties":{"query":{"type":"string"}},"required":["query"]}`)},
			{Name: "kb_list", Description: "List sources."},
		},
		Temperature: &temp,
	}
	if _, err := c.Complete(context.Background(), req, func(panther.StreamEvent) {}); err != nil {
		t.Fatal(err)
	}
	want := `{
  "model": "glm-4.6",
  "messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is VACUUM?"},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "call_1", "type": "function", "function": {"name": "kb_search", "arguments": "{\"query\":\"vacuum\"}"}},
      {"id": "call_2", "type": "function", "function": {"name": "kb_list", "arguments": "{}"}}
    ]},
    {"role": "tool", "tool_call_id": "call_1", "content": "VACUUM reclaims storage."},
    {"role": "tool", "tool_call_id": "call_2", "content": "[tool error] no such tool"},
    {"role": "assistant", "content": "It reclaims storage."},
    {"role": "user", "content": "Thanks"}
  ],
  "tools": [
    {"type": "function", "function": {"name": "kb_search", "description": "Search the knowledge base.",
      "parameters": {"type":"object","properties":{"query":{"type":"string"}},"required":["query"]}}},
    {"type": "function", "function": {"name": "kb_list", "description": "List sources.",
      "parameters": {"type":"object","properties":{}}}}
  ],
  "temperature": 0.2,
  "max_tokens": 1000,
  "stream": true,
  "stream_options": {"include_usage": true}
}`
	var got, exp any
	if err := json.Unmarshal(srv.bodies[0], &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("request body:\n%s\nwant:\n%s", srv.bodies[0], want)
	}
}

func TestOpenAIInvalidRequests(t *testing.T) {
	srv := newOAIServer(t, oaiReply{fixture: "plain.json"})
	c, _ := newOAITestClient(t, srv.URL, OpenAIOptions{})
	for name, req := range map[string]panther.ModelRequest{
		"tool result without id": {Messages: []panther.Message{{Role: panther.RoleTool, Content: "x"}}},
		"unknown role":           {Messages: []panther.Message{{Role: "system", Content: "x"}}},
		"bad tool arguments":     {Messages: []panther.Message{{Role: panther.RoleAssistant, ToolCalls: []panther.ToolCall{{ID: "a", Name: "t", Arguments: json.RawMessage(`{`)}}}}},
		"bad tool schema":        {Messages: oaiHello.Messages, Tools: []panther.ToolSpec{{Name: "t", Parameters: json.RawMessage(`{`)}}},
	} {
		if _, err := c.Complete(context.Background(), req, nil); !errors.Is(err, panther.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if n := srv.attempts(); n != 0 {
		t.Errorf("%d requests sent for invalid input", n)
	}

	noModel, err := NewOpenAI(OpenAIOptions{BaseURL: srv.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noModel.Complete(context.Background(), oaiHello, nil); !errors.Is(err, panther.ErrInvalid) {
		t.Errorf("no model: err = %v", err)
	}
}

func TestOpenAIOptions(t *testing.T) {
	for _, o := range []OpenAIOptions{
		{},
		{BaseURL: "ftp://x/v1"},
		{BaseURL: "https://api.openai.com/v1/chat/completions"},
		{BaseURL: "https://api.openai.com/v1", APIKey: "sk-abc\n"},
		{BaseURL: "https://api.openai.com/v1", Timeout: -1},
	} {
		if _, err := NewOpenAI(o); !errors.Is(err, panther.ErrInvalid) {
			t.Errorf("%v: err = %v", o, err)
		} else if strings.Contains(err.Error(), "sk-abc") {
			t.Errorf("error shows the key: %v", err)
		}
	}
	o := OpenAIOptions{BaseURL: "https://user:pw@api.openai.com/v1/", APIKey: oaiTestKey, Model: "gpt-4o"}
	c, err := NewOpenAI(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(o), fmt.Sprintf("%+v", o), fmt.Sprintf("%#v", o), fmt.Sprint(c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v", *c)} {
		if strings.Contains(s, oaiTestKey) {
			t.Errorf("formatted value shows the key: %s", s)
		}
	}
	if c.endpoint != "https://user:pw@api.openai.com/v1/chat/completions" || strings.Contains(c.String(), "pw") {
		t.Errorf("endpoint %q, String %q", c.endpoint, c.String())
	}
}
