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
	"panther/internal/httpx"
)

const antTestKey = "sk-ant-secret-key-123"

// antReply is one canned answer of the test server.
type antReply struct {
	status  int
	file    string // under testdata/anthropic; .sse is sent as an event stream
	body    string // used when file is empty
	headers map[string]string
	// hold keeps the connection open after the body until the request is cancelled.
	hold bool
}

// antServer answers requests with its replies in order (the last one repeats) and records them.
type antServer struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	replies []antReply
	reqs    []*http.Request
	bodies  [][]byte
}

func newAntServer(t *testing.T, replies ...antReply) *antServer {
	t.Helper()
	s := &antServer{t: t, replies: replies}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *antServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	n := len(s.reqs)
	s.reqs = append(s.reqs, r)
	s.bodies = append(s.bodies, body)
	rep := s.replies[min(n, len(s.replies)-1)]
	s.mu.Unlock()

	data := []byte(rep.body)
	if rep.file != "" {
		var err error
		data, err = os.ReadFile(filepath.Join("testdata", "anthropic", rep.file))
		if err != nil {
			s.t.Errorf("fixture: %v", err)
			return
		}
	}
	ct := "application/json"
	if strings.HasSuffix(rep.file, ".sse") {
		ct = "text/event-stream"
	}
	w.Header().Set("Content-Type", ct)
	for k, v := range rep.headers {
		w.Header().Set(k, v)
	}
	status := rep.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	w.Write(data)
	w.(http.Flusher).Flush()
	if rep.hold {
		<-r.Context().Done()
	}
}

func (s *antServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// request returns the i-th request body, decoded.
func (s *antServer) request(i int) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m map[string]any
	if err := json.Unmarshal(s.bodies[i], &m); err != nil {
		s.t.Fatalf("request %d is not JSON: %v", i, err)
	}
	return m
}

// client returns a client of the server whose waits are recorded instead of slept.
func (s *antServer) client(o AnthropicOptions) (*Anthropic, *[]time.Duration) {
	s.t.Helper()
	o.BaseURL = s.srv.URL
	if o.APIKey == "" {
		o.APIKey = antTestKey
	}
	if o.Model == "" {
		o.Model = "claude-test"
	}
	c, err := NewAnthropic(o)
	if err != nil {
		s.t.Fatal(err)
	}
	var mu sync.Mutex
	waits := &[]time.Duration{}
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		*waits = append(*waits, d)
		mu.Unlock()
		return ctx.Err()
	}
	return c, waits
}

func antHello() panther.ModelRequest {
	return panther.ModelRequest{Messages: []panther.Message{{Role: panther.RoleUser, Content: "Hi"}}}
}

// antCollect returns an onEvent that records events, and the record.
func antCollect() (func(panther.StreamEvent), *[]panther.StreamEvent) {
	evs := &[]panther.StreamEvent{}
	return func(ev panther.StreamEvent) { *evs = append(*evs, ev) }, evs
}

func TestAnthropicHeaders(t *testing.T) {
	for _, tc := range []struct {
		name, version, wantVersion, suffix string
		stream                             bool
	}{
		{"default version", "", "2023-06-01", "", false},
		{"custom version, base with /v1", "2024-01-01", "2024-01-01", "/v1", true},
		{"base with /v1/messages/", "", "2023-06-01", "/v1/messages/", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := "text.json"
			if tc.stream {
				file = "text_stream.sse"
			}
			s := newAntServer(t, antReply{file: file})
			c, err := NewAnthropic(AnthropicOptions{BaseURL: s.srv.URL + tc.suffix, APIKey: antTestKey, Model: "m", Version: tc.version})
			if err != nil {
				t.Fatal(err)
			}
			var on func(panther.StreamEvent)
			if tc.stream {
				on = func(panther.StreamEvent) {}
			}
			if _, err := c.Complete(context.Background(), antHello(), on); err != nil {
				t.Fatal(err)
			}
			r := s.reqs[0]
			if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
				t.Errorf("request %s %s, want POST /v1/messages", r.Method, r.URL.Path)
			}
			for h, want := range map[string]string{
				"x-api-key":         antTestKey,
				"anthropic-version": tc.wantVersion,
				"content-type":      "application/json",
			} {
				if got := r.Header.Get(h); got != want {
					t.Errorf("header %s = %q, want %q", h, got, want)
				}
			}
			if r.Header.Get("Authorization") != "" {
				t.Error("Authorization header sent; the API wants x-api-key only")
			}
			if got, _ := s.request(0)["stream"].(bool); got != tc.stream {
				t.Errorf("stream = %v, want %v", got, tc.stream)
			}
		})
	}
}

func TestAnthropicComplete(t *testing.T) {
	call := func(id, name, args string) panther.ToolCall {
		return panther.ToolCall{ID: id, Name: name, Arguments: json.RawMessage(args)}
	}
	for _, tc := range []struct {
		name       string
		file       string
		stream     bool
		wantText   string
		wantCalls  []panther.ToolCall
		wantStop   panther.StopReason
		wantUsage  panther.Usage
		wantEvents []panther.StreamEvent
	}{
		{
			name: "plain answer, not streamed", file: "text.json",
			wantText: "Hello, world!", wantStop: panther.StopEnd, wantUsage: panther.Usage{InputTokens: 25, OutputTokens: 15},
		},
		{
			name: "plain answer, streamed in order", file: "text_stream.sse", stream: true,
			wantText: "Hello, world!", wantStop: panther.StopEnd, wantUsage: panther.Usage{InputTokens: 25, OutputTokens: 15},
			wantEvents: []panther.StreamEvent{{Text: "Hello"}, {Text: ", "}, {Text: "world!"}},
		},
		{
			name: "one tool_use after text", file: "tool_use_stream.sse", stream: true,
			wantText:  "Let me search.",
			wantCalls: []panther.ToolCall{call("toolu_01", "kb_search", `{"query":"vacuum","k":5}`)},
			wantStop:  panther.StopToolCalls, wantUsage: panther.Usage{InputTokens: 472, OutputTokens: 89},
			wantEvents: []panther.StreamEvent{{Text: "Let me search."}, {ToolCall: &panther.ToolCall{ID: "toolu_01", Name: "kb_search", Arguments: json.RawMessage(`{"query":"vacuum","k":5}`)}}},
		},
		{
			name: "two tool_use blocks with interleaved partial JSON", file: "two_tools_stream.sse", stream: true,
			wantCalls: []panther.ToolCall{
				call("toolu_a", "kb_search", `{"query":"wal"}`),
				call("toolu_b", "web_fetch", `{"url":"https://example.org/"}`),
			},
			wantStop: panther.StopToolCalls, wantUsage: panther.Usage{InputTokens: 150, OutputTokens: 60},
			// Each call is delivered when its block stops, so b (stopped first) comes first.
			wantEvents: []panther.StreamEvent{
				{ToolCall: &panther.ToolCall{ID: "toolu_b", Name: "web_fetch", Arguments: json.RawMessage(`{"url":"https://example.org/"}`)}},
				{ToolCall: &panther.ToolCall{ID: "toolu_a", Name: "kb_search", Arguments: json.RawMessage(`{"query":"wal"}`)}},
			},
		},
		{
			name: "two tool_use blocks, not streamed", file: "two_tools.json",
			wantText: "Two lookups.",
			wantCalls: []panther.ToolCall{
				call("toolu_a", "kb_search", `{"query":"wal"}`),
				call("toolu_b", "web_fetch", `{"url":"https://example.org/"}`),
			},
			wantStop: panther.StopToolCalls, wantUsage: panther.Usage{InputTokens: 107, OutputTokens: 60},
		},
		{
			name: "JSON answer to a streamed request is replayed as events", file: "two_tools.json", stream: true,
			wantText: "Two lookups.",
			wantCalls: []panther.ToolCall{
				call("toolu_a", "kb_search", `{"query":"wal"}`),
				call("toolu_b", "web_fetch", `{"url":"https://example.org/"}`),
			},
			wantStop: panther.StopToolCalls, wantUsage: panther.Usage{InputTokens: 107, OutputTokens: 60},
			wantEvents: []panther.StreamEvent{
				{Text: "Two lookups."},
				{ToolCall: &panther.ToolCall{ID: "toolu_a", Name: "kb_search", Arguments: json.RawMessage(`{"query":"wal"}`)}},
				{ToolCall: &panther.ToolCall{ID: "toolu_b", Name: "web_fetch", Arguments: json.RawMessage(`{"url":"https://example.org/"}`)}},
			},
		},
		{
			name: "max_tokens", file: "max_tokens.json",
			wantText: "cut", wantStop: panther.StopMaxTokens, wantUsage: panther.Usage{InputTokens: 3, OutputTokens: 4096},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newAntServer(t, antReply{file: tc.file})
			c, _ := s.client(AnthropicOptions{})
			var on func(panther.StreamEvent)
			var evs *[]panther.StreamEvent
			if tc.stream {
				on, evs = antCollect()
			}
			got, err := c.Complete(context.Background(), antHello(), on)
			if err != nil {
				t.Fatal(err)
			}
			want := panther.ModelResponse{
				Message:    panther.Message{Role: panther.RoleAssistant, Content: tc.wantText, ToolCalls: tc.wantCalls},
				StopReason: tc.wantStop,
				Usage:      tc.wantUsage,
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("response\n got %s\nwant %s", antJSON(got), antJSON(want))
			}
			if tc.stream && !reflect.DeepEqual(*evs, tc.wantEvents) {
				t.Errorf("events\n got %s\nwant %s", antJSON(*evs), antJSON(tc.wantEvents))
			}
		})
	}
}

func antJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestAnthropicStopReason(t *testing.T) {
	for _, tc := range []struct {
		in    string
		tools bool
		want  panther.StopReason
	}{
		{"end_turn", false, panther.StopEnd},
		{"stop_sequence", false, panther.StopEnd},
		{"tool_use", true, panther.StopToolCalls},
		{"end_turn", true, panther.StopToolCalls}, // compatible servers that say end_turn for tool calls
		{"", false, panther.StopEnd},
		{"max_tokens", false, panther.StopMaxTokens},
		{"max_tokens", true, panther.StopMaxTokens},
		{"model_context_window_exceeded", false, panther.StopMaxTokens},
		{"refusal", false, panther.StopOther},
		{"pause_turn", false, panther.StopOther},
	} {
		if got := antStopReason(tc.in, tc.tools); got != tc.want {
			t.Errorf("antStopReason(%q, %v) = %q, want %q", tc.in, tc.tools, got, tc.want)
		}
	}
}

func TestAnthropicRequestMapping(t *testing.T) {
	s := newAntServer(t, antReply{file: "text.json"})
	c, _ := s.client(AnthropicOptions{MaxTokens: 1000})
	temp := 0.25
	req := panther.ModelRequest{
		Model:  "claude-other",
		System: "Be brief.",
		Messages: []panther.Message{
			{Role: panther.RoleUser, Content: "Look up two things."},
			{Role: panther.RoleAssistant, Content: "Sure.", ToolCalls: []panther.ToolCall{
				{ID: "toolu_a", Name: "kb_search", Arguments: json.RawMessage(`{"query":"wal"}`)},
				{ID: "toolu_b", Name: "web_fetch"},
			}},
			{Role: panther.RoleTool, ToolCallID: "toolu_a", Content: "hit 1"},
			{Role: panther.RoleTool, ToolCallID: "toolu_b", Content: "404", IsError: true},
			{Role: panther.RoleUser, Content: "And summarise."},
		},
		Tools: []panther.ToolSpec{
			{Name: "kb_search", Description: "Search.", Parameters: json.RawMessage(`{"type":"object","properties":{"query":{"type":"string"}}}`)},
			{Name: "now"},
		},
		Temperature: &temp,
	}
	if _, err := c.Complete(context.Background(), req, nil); err != nil {
		t.Fatal(err)
	}
	var got any
	if err := json.Unmarshal(s.bodies[0], &got); err != nil {
		t.Fatal(err)
	}
	var want any
	json.Unmarshal([]byte(`{
		"model": "claude-other",
		"max_tokens": 1000,
		"system": "Be brief.",
		"temperature": 0.25,
		"messages": [
			{"role": "user", "content": [{"type": "text", "text": "Look up two things."}]},
			{"role": "assistant", "content": [
				{"type": "text", "text": "Sure."},
				{"type": "tool_use", "id": "toolu_a", "name": "kb_search", "input": {"query": "wal"}},
				{"type": "tool_use", "id": "toolu_b", "name": "web_fetch", "input": {}}
			]},
			{"role": "user", "content": [
				{"type": "tool_result", "tool_use_id": "toolu_a", "content": "hit 1"},
				{"type": "tool_result", "tool_use_id": "toolu_b", "content": "404", "is_error": true},
				{"type": "text", "text": "And summarise."}
			]}
		],
		"tools": [
			{"name": "kb_search", "description": "Search.", "input_schema": {"type":"object","properties":{"query":{"type":"string"}}}},
			{"name": "now", "input_schema": {"type":"object","properties":{}}}
		]
	}`), &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("request body\n got %s\nwant %s", antJSON(got), antJSON(want))
	}
}

func TestAnthropicEmptyAssistantTurnDropped(t *testing.T) {
	s := newAntServer(t, antReply{file: "text.json"})
	c, _ := s.client(AnthropicOptions{})
	req := panther.ModelRequest{Messages: []panther.Message{
		{Role: panther.RoleUser, Content: "a"},
		{Role: panther.RoleAssistant, Content: " \n"},
		{Role: panther.RoleUser, Content: "b"},
	}}
	if _, err := c.Complete(context.Background(), req, nil); err != nil {
		t.Fatal(err)
	}
	got := antJSON(s.request(0)["messages"])
	want := `[{"content":[{"text":"a","type":"text"},{"text":"b","type":"text"}],"role":"user"}]`
	if got != want {
		t.Errorf("messages %s, want %s", got, want)
	}
}

func TestAnthropicRequestInvalid(t *testing.T) {
	user := panther.Message{Role: panther.RoleUser, Content: "Hi"}
	for _, tc := range []struct {
		name string
		req  panther.ModelRequest
		opts AnthropicOptions
	}{
		{"no messages", panther.ModelRequest{}, AnthropicOptions{}},
		{"no model anywhere", antHello(), AnthropicOptions{Model: " "}},
		{"empty user message", panther.ModelRequest{Messages: []panther.Message{{Role: panther.RoleUser}}}, AnthropicOptions{}},
		{"tool result without id", panther.ModelRequest{Messages: []panther.Message{user, {Role: panther.RoleTool, Content: "x"}}}, AnthropicOptions{}},
		{"arguments not an object", panther.ModelRequest{Messages: []panther.Message{user,
			{Role: panther.RoleAssistant, ToolCalls: []panther.ToolCall{{ID: "t", Name: "n", Arguments: json.RawMessage(`[1]`)}}}}}, AnthropicOptions{}},
		{"unknown role", panther.ModelRequest{Messages: []panther.Message{{Role: "system", Content: "x"}}}, AnthropicOptions{}},
		{"tool schema not an object", panther.ModelRequest{Messages: []panther.Message{user}, Tools: []panther.ToolSpec{{Name: "t", Parameters: json.RawMessage(`"x"`)}}}, AnthropicOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newAntServer(t, antReply{file: "text.json"})
			o := tc.opts
			o.BaseURL = s.srv.URL
			c, err := NewAnthropic(o)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Complete(context.Background(), tc.req, nil)
			if !errors.Is(err, panther.ErrInvalid) {
				t.Errorf("error %v, want one of kind ErrInvalid", err)
			}
			if s.count() != 0 {
				t.Errorf("%d requests sent for an invalid request", s.count())
			}
		})
	}
}

func TestAnthropicErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		replies   []antReply
		stream    bool
		kind      error
		contains  []string
		requests  int // how many requests were made
		delivered int // events delivered before the error
	}{
		{
			name:    "401 names the URL, not the key",
			replies: []antReply{{status: 401, file: "error_auth.json"}},
			kind:    panther.ErrUnavailable, contains: []string{"authentication failed for http://127.0.0.1"}, requests: 1,
		},
		{
			name:    "403 is not retried",
			replies: []antReply{{status: 403, body: `{"type":"error","error":{"type":"permission_error","message":"no"}}`}},
			kind:    panther.ErrUnavailable, contains: []string{"authentication failed", "HTTP 403"}, requests: 1,
		},
		{
			name:    "prompt too long",
			replies: []antReply{{status: 400, file: "error_prompt_too_long.json"}},
			kind:    panther.ErrInvalid, contains: []string{"context window", "prompt is too long: 208154 tokens > 200000 maximum"}, requests: 1,
		},
		{
			name:    "other 400: the provider's message, key redacted",
			replies: []antReply{{status: 400, file: "error_invalid.json"}},
			kind:    panther.ErrInvalid, contains: []string{"invalid_request_error", "unknown id", "[redacted]"}, requests: 1,
		},
		{
			name:    "404",
			replies: []antReply{{status: 404, body: `{"type":"error","error":{"type":"not_found_error","message":"model: nope"}}`}},
			kind:    panther.ErrUnavailable, contains: []string{"not_found_error", "model: nope"}, requests: 1,
		},
		{
			name:    "error event after text was delivered is not retried",
			replies: []antReply{{file: "error_event_stream.sse"}}, stream: true,
			kind: panther.ErrUnavailable, contains: []string{"overloaded_error", "Overloaded"}, requests: 1, delivered: 1,
		},
		{
			name:    "stream cut mid-way after text was delivered",
			replies: []antReply{{file: "cut_stream.sse"}}, stream: true,
			kind: panther.ErrUnavailable, contains: []string{"ended before message_stop"}, requests: 1, delivered: 1,
		},
		{
			name:    "retries run out",
			replies: []antReply{{status: 500, body: `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`}},
			kind:    panther.ErrUnavailable, contains: []string{"gave up after 5 attempts", "HTTP 500 api_error"}, requests: 5,
		},
		{
			name:    "Retry-After longer than the cap fails at once",
			replies: []antReply{{status: 429, file: "error_rate_limit.json", headers: map[string]string{"Retry-After": "3600"}}},
			kind:    panther.ErrUnavailable, contains: []string{"retry after 1h0m0s"}, requests: 1,
		},
		{
			name:    "200 with an error body",
			replies: []antReply{{file: "error_overloaded.json"}, {file: "text.json"}},
			// A JSON overloaded error is retried like a 529.
			kind: nil, requests: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newAntServer(t, tc.replies...)
			c, _ := s.client(AnthropicOptions{})
			var on func(panther.StreamEvent)
			evs := &[]panther.StreamEvent{}
			if tc.stream {
				on, evs = antCollect()
			}
			_, err := c.Complete(context.Background(), antHello(), on)
			if tc.kind == nil {
				if err != nil {
					t.Fatal(err)
				}
			} else if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, want kind %v", err, tc.kind)
			}
			if err != nil {
				msg := err.Error()
				if strings.Contains(msg, antTestKey) || strings.Contains(fmt.Sprintf("%#v %+v", err, err), antTestKey) {
					t.Errorf("the API key leaked into the error: %s", msg)
				}
				for _, want := range tc.contains {
					if !strings.Contains(msg, want) {
						t.Errorf("error %q does not contain %q", msg, want)
					}
				}
			}
			if s.count() != tc.requests {
				t.Errorf("%d requests, want %d", s.count(), tc.requests)
			}
			if len(*evs) != tc.delivered {
				t.Errorf("%d events delivered, want %d", len(*evs), tc.delivered)
			}
		})
	}
}

func TestAnthropicRetry(t *testing.T) {
	for _, tc := range []struct {
		name      string
		replies   []antReply
		retries   int
		requests  int
		waits     []time.Duration // exact waits; nil means only their number is checked
		waitCount int
		fail      bool
	}{
		{
			name:     "529 then success",
			replies:  []antReply{{status: 529, file: "error_overloaded.json"}, {file: "text_stream.sse"}},
			requests: 2, waitCount: 1,
		},
		{
			name:     "429 with Retry-After",
			replies:  []antReply{{status: 429, file: "error_rate_limit.json", headers: map[string]string{"Retry-After": "7"}}, {file: "text_stream.sse"}},
			requests: 2, waits: []time.Duration{7 * time.Second},
		},
		{
			name:     "overloaded error event before anything was delivered",
			replies:  []antReply{{body: "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n", headers: map[string]string{"Content-Type": "text/event-stream"}}, {file: "text_stream.sse"}},
			requests: 2, waitCount: 1,
		},
		{
			name:     "negative Retries means one attempt",
			replies:  []antReply{{status: 529, file: "error_overloaded.json"}, {file: "text_stream.sse"}},
			retries:  -1,
			requests: 1, waitCount: 0, fail: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newAntServer(t, tc.replies...)
			c, waits := s.client(AnthropicOptions{Retries: tc.retries})
			on, _ := antCollect()
			resp, err := c.Complete(context.Background(), antHello(), on)
			if tc.fail != (err != nil) {
				t.Fatalf("error %v, want failure %v", err, tc.fail)
			}
			if err == nil && resp.Message.Content != "Hello, world!" {
				t.Errorf("content %q", resp.Message.Content)
			}
			if s.count() != tc.requests {
				t.Errorf("%d requests, want %d", s.count(), tc.requests)
			}
			if tc.waits != nil {
				if !reflect.DeepEqual(*waits, tc.waits) {
					t.Errorf("waits %v, want %v", *waits, tc.waits)
				}
			} else if len(*waits) != tc.waitCount {
				t.Errorf("waits %v, want %d of them", *waits, tc.waitCount)
			}
			for _, w := range *waits {
				if w < 0 || w > antMaxWait {
					t.Errorf("wait %s outside [0, %s]", w, antMaxWait)
				}
			}
		})
	}
}

func TestAnthropicBackoff(t *testing.T) {
	for attempt := range 30 {
		d := httpx.Backoff(antBackoffBase, antMaxWait, attempt)
		want := min(antBackoffBase<<min(attempt, 20), antMaxWait)
		if d < want/2 || d > want {
			t.Errorf("attempt %d: backoff %s outside [%s, %s]", attempt, d, want/2, want)
		}
	}
}

func TestAnthropicIdleTimeout(t *testing.T) {
	start := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":1}}}\n\n"
	s := newAntServer(t, antReply{body: start, headers: map[string]string{"Content-Type": "text/event-stream"}, hold: true})
	c, _ := s.client(AnthropicOptions{IdleTimeout: 100 * time.Millisecond, Retries: 1})
	on, _ := antCollect()
	t0 := time.Now()
	_, err := c.Complete(context.Background(), antHello(), on)
	if !errors.Is(err, panther.ErrUnavailable) || !strings.Contains(err.Error(), "IdleTimeout") {
		t.Fatalf("error %v, want an idle time-out", err)
	}
	if el := time.Since(t0); el > 5*time.Second {
		t.Errorf("took %s", el)
	}
	// Nothing was delivered, so the silent stream was tried again.
	if s.count() != 2 {
		t.Errorf("%d requests, want 2", s.count())
	}
}

func TestAnthropicTimeout(t *testing.T) {
	start := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":1}}}\n\n"
	s := newAntServer(t, antReply{body: start, headers: map[string]string{"Content-Type": "text/event-stream"}, hold: true})
	c, _ := s.client(AnthropicOptions{Timeout: 200 * time.Millisecond})
	t0 := time.Now()
	_, err := c.Complete(context.Background(), antHello(), func(panther.StreamEvent) {})
	if !errors.Is(err, panther.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "(Timeout)") {
		t.Fatalf("error %v, want a Timeout of kind ErrUnavailable", err)
	}
	if el := time.Since(t0); el > 5*time.Second {
		t.Errorf("took %s", el)
	}
	if s.count() != 1 {
		t.Errorf("%d requests, want 1: Timeout bounds the whole call", s.count())
	}
}

func TestAnthropicCancel(t *testing.T) {
	part := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":1}}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n"
	for _, tc := range []struct {
		name  string
		reply antReply
	}{
		{"mid-stream", antReply{body: part, headers: map[string]string{"Content-Type": "text/event-stream"}, hold: true}},
		{"while waiting to retry", antReply{status: 529, file: "error_overloaded.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newAntServer(t, tc.reply)
			c, _ := s.client(AnthropicOptions{})
			c.sleep = httpx.Sleep
			c.backoffBase = time.Hour
			c.maxWait = time.Hour
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				for s.count() == 0 {
					time.Sleep(5 * time.Millisecond)
				}
				time.Sleep(50 * time.Millisecond)
				cancel()
			}()
			t0 := time.Now()
			_, err := c.Complete(ctx, antHello(), func(panther.StreamEvent) {})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v, want context.Canceled", err)
			}
			if el := time.Since(t0); el > 5*time.Second {
				t.Errorf("took %s to stop", el)
			}
		})
	}
}

func TestAnthropicNoKeyInStrings(t *testing.T) {
	o := AnthropicOptions{BaseURL: "https://user:pw@api.example.com", APIKey: antTestKey, Model: "m"}
	c, err := NewAnthropic(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		o.String(), fmt.Sprintf("%v", o), fmt.Sprintf("%+v", o), fmt.Sprintf("%#v", o),
		c.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c),
	} {
		if strings.Contains(s, antTestKey) || strings.Contains(s, ":pw@") {
			t.Errorf("secret in %q", s)
		}
	}
}

func TestNewAnthropicOptions(t *testing.T) {
	c, err := NewAnthropic(AnthropicOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.endpoint != "https://api.anthropic.com/v1/messages" || c.version != "2023-06-01" || c.maxTokens != 4096 ||
		c.retries != 4 || c.timeout != 5*time.Minute || c.idle != time.Minute || c.maxBody != 32<<20 {
		t.Errorf("defaults: %+v", c)
	}
	for _, o := range []AnthropicOptions{
		{BaseURL: "ftp://x"},
		{BaseURL: "https://x/?q=1"},
		{APIKey: "key\n"},
		{MaxTokens: -1},
		{Retries: 100},
		{Timeout: -time.Second},
		{IdleTimeout: -time.Second},
		{MaxResponseBytes: -1},
	} {
		if _, err := NewAnthropic(o); !errors.Is(err, panther.ErrInvalid) {
			t.Errorf("NewAnthropic(%v): error %v, want ErrInvalid", o, err)
		}
	}
}

func TestAnthropicMaxResponseBytes(t *testing.T) {
	for _, file := range []string{"text_stream.sse", "text.json"} {
		s := newAntServer(t, antReply{file: file})
		c, _ := s.client(AnthropicOptions{MaxResponseBytes: 100})
		var on func(panther.StreamEvent)
		if strings.HasSuffix(file, ".sse") {
			on = func(panther.StreamEvent) {}
		}
		_, err := c.Complete(context.Background(), antHello(), on)
		if !errors.Is(err, panther.ErrUnavailable) || !strings.Contains(err.Error(), "MaxResponseBytes") {
			t.Errorf("%s: error %v, want a size error", file, err)
		}
		if s.count() != 1 {
			t.Errorf("%s: %d requests, want 1", file, s.count())
		}
	}
}

func TestAnthropicParseStreamStrict(t *testing.T) {
	for _, tc := range []struct{ name, stream, want string }{
		{"delta before start", "data: {\"type\":\"message_start\",\"message\":{}}\n\ndata: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n", "never started"},
		{"unstopped block", "data: {\"type\":\"message_start\",\"message\":{}}\n\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"a\",\"name\":\"b\"}}\n\ndata: {\"type\":\"message_stop\"}\n\n", "never stopped"},
		{"CRLF and comments", ": hi\r\nevent: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{}}\r\n\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n", ""},
		{"empty", "", "ended before message_stop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := antParseStream(strings.NewReader(tc.stream), 1<<20, func(panther.StreamEvent) {})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
