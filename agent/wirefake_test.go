package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"panther"
	"panther/llm"
)

// A fake model speaking either wire format: OpenAI's chat completions (through fake_test.go's
// fakeModel) or Anthropic's Messages API (written here, plain JSON and server-sent events), scripted
// turn by turn, with the failures real servers have: error statuses with Retry-After, and streams
// that end early. The real llm clients talk to it.

const (
	wireOpenAI    = "openai"
	wireAnthropic = "anthropic"
)

// wireStep is what the fake answers one request with.
type wireStep struct {
	turn
	// status, when not 0, answers with this HTTP status and an error body instead of a turn, and
	// retryAfter is its Retry-After header.
	status     int
	retryAfter string
	// cut ends the answer early: "early" before anything of it (the client may repeat the request),
	// "midway" after part of its text (the client has delivered it and must not).
	cut string
	// block, when not nil, holds the answer back until it is closed or the client goes away; gone
	// (if not nil) is then called, as the server sees the request cancelled.
	block <-chan struct{}
	gone  func()
}

// wireReq is a request of either wire format, as much of it as the tests look at.
type wireReq struct {
	Model  string
	Stream bool
	System string
	Tools  []string
	Prompt string // the first user text
	Step   int    // the step of the conversation, from 1: assistant turns so far + 1
	// Results are the tool results sent, by tool call id.
	Results map[string]wireResult
	At      time.Time
}

type wireResult struct {
	Content string
	IsError bool
}

type wireFake struct {
	wire   string
	mu     sync.Mutex
	reqs   []wireReq
	script func(n int, req wireReq) wireStep // n counts requests from 1
}

func (f *wireFake) requests() []wireReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]wireReq(nil), f.reqs...)
}

func (f *wireFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	var req wireReq
	switch {
	case f.wire == wireOpenAI && r.URL.Path == "/v1/chat/completions":
		req, err = parseOpenAIReq(body)
	case f.wire == wireAnthropic && r.URL.Path == "/v1/messages":
		if r.Header.Get("anthropic-version") == "" {
			err = fmt.Errorf("no anthropic-version header")
		} else {
			req, err = parseAnthropicReq(body)
		}
	default:
		err = fmt.Errorf("no such path %s", r.URL.Path)
	}
	if err != nil {
		http.Error(w, `{"error":{"message":"`+err.Error()+`"}}`, http.StatusBadRequest)
		return
	}
	req.At = time.Now()
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	n := len(f.reqs)
	f.mu.Unlock()
	st := f.script(n, req)
	if st.block != nil {
		select {
		case <-st.block:
		case <-r.Context().Done():
			if st.gone != nil {
				st.gone()
			}
			return
		}
	}
	if st.status != 0 {
		if st.retryAfter != "" {
			w.Header().Set("Retry-After", st.retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(st.status)
		if f.wire == wireOpenAI {
			io.WriteString(w, `{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}`)
		} else {
			io.WriteString(w, `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`)
		}
		return
	}
	if f.wire == wireOpenAI {
		f.serveOpenAI(w, r, body, req, st)
		return
	}
	f.serveAnthropic(w, n, req, st)
}

func parseOpenAIReq(body []byte) (wireReq, error) {
	var wr wireRequest
	if err := json.Unmarshal(body, &wr); err != nil {
		return wireReq{}, err
	}
	req := wireReq{Model: wr.Model, Stream: wr.Stream, System: systemOf(wr), Tools: toolsOf(wr), Prompt: promptOf(wr), Step: stepOf(wr), Results: map[string]wireResult{}}
	for id, c := range wr.toolMessages() {
		content, isErr := strings.CutPrefix(c, "[tool error] ")
		req.Results[id] = wireResult{Content: content, IsError: isErr}
	}
	return req, nil
}

func parseAnthropicReq(body []byte) (wireReq, error) {
	var ar struct {
		Model     string `json:"model"`
		MaxTokens int    `json:"max_tokens"`
		System    string `json:"system"`
		Stream    bool   `json:"stream"`
		Messages  []struct {
			Role    string `json:"role"`
			Content []struct {
				Type      string          `json:"type"`
				Text      string          `json:"text"`
				ToolUseID string          `json:"tool_use_id"`
				Content   string          `json:"content"`
				IsError   bool            `json:"is_error"`
				Input     json.RawMessage `json:"input"`
			} `json:"content"`
		} `json:"messages"`
		Tools []struct {
			Name        string          `json:"name"`
			InputSchema json.RawMessage `json:"input_schema"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(body, &ar); err != nil {
		return wireReq{}, err
	}
	if ar.MaxTokens <= 0 {
		return wireReq{}, fmt.Errorf("max_tokens: field required")
	}
	req := wireReq{Model: ar.Model, Stream: ar.Stream, System: ar.System, Step: 1, Results: map[string]wireResult{}}
	for _, t := range ar.Tools {
		req.Tools = append(req.Tools, t.Name)
	}
	for i, m := range ar.Messages {
		if i > 0 && ar.Messages[i-1].Role == m.Role {
			return wireReq{}, fmt.Errorf("messages: roles must alternate between user and assistant")
		}
		if m.Role == "assistant" {
			req.Step++
		}
		for _, b := range m.Content {
			switch {
			case b.Type == "text" && m.Role == "user" && req.Prompt == "":
				req.Prompt = b.Text
			case b.Type == "tool_result":
				req.Results[b.ToolUseID] = wireResult{Content: b.Content, IsError: b.IsError}
			case b.Type == "tool_use" && !json.Valid(b.Input):
				return wireReq{}, fmt.Errorf("tool_use input is not JSON")
			}
		}
	}
	return req, nil
}

// serveOpenAI answers through fake_test.go's fakeModel, but for cut streams, which it does not make.
func (f *wireFake) serveOpenAI(w http.ResponseWriter, r *http.Request, body []byte, req wireReq, st wireStep) {
	if st.cut == "" {
		one := &fakeModel{script: func(int, wireRequest) turn { return st.turn }}
		r.Body = io.NopCloser(bytes.NewReader(body))
		one.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	io.WriteString(w, `data: {"id":"chatcmpl-cut","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n")
	if st.cut == "midway" {
		b, _ := json.Marshal(st.Text[:len(st.Text)/2])
		fmt.Fprintf(w, `data: {"id":"chatcmpl-cut","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":%s},"finish_reason":null}]}`+"\n\n", b)
	}
	// The handler returns: the stream ends with neither a finish reason nor [DONE].
}

// serveAnthropic writes a Messages API answer: a message object, or its stream of events.
func (f *wireFake) serveAnthropic(w http.ResponseWriter, n int, req wireReq, t wireStep) {
	stop := "end_turn"
	if len(t.Calls) > 0 {
		stop = "tool_use"
	}
	id := fmt.Sprintf("msg_%03d", n)
	if !req.Stream {
		content := []any{}
		if t.Text != "" {
			content = append(content, map[string]any{"type": "text", "text": t.Text})
		}
		for _, c := range t.Calls {
			content = append(content, map[string]any{"type": "tool_use", "id": c.ID, "name": c.Name, "input": json.RawMessage(c.Args)})
		}
		b, err := json.Marshal(map[string]any{
			"id": id, "type": "message", "role": "assistant", "model": req.Model, "content": content,
			"stop_reason": stop, "stop_sequence": nil, "usage": map[string]int{"input_tokens": t.In, "output_tokens": t.Out},
		})
		if err != nil { // arguments that are not JSON cannot be in a message object
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if t.cut != "" {
			b = b[:len(b)/2]
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fl, _ := w.(http.Flusher)
	send := func(event string, v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
		if fl != nil {
			fl.Flush()
		}
	}
	send("message_start", map[string]any{"type": "message_start", "message": map[string]any{
		"id": id, "type": "message", "role": "assistant", "model": req.Model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil, "usage": map[string]int{"input_tokens": t.In, "output_tokens": 1}}})
	if t.cut == "early" {
		return
	}
	send("ping", map[string]any{"type": "ping"})
	idx := 0
	if t.Text != "" {
		h := len(t.Text) / 2
		send("content_block_start", map[string]any{"type": "content_block_start", "index": idx, "content_block": map[string]any{"type": "text", "text": ""}})
		send("content_block_delta", map[string]any{"type": "content_block_delta", "index": idx, "delta": map[string]any{"type": "text_delta", "text": t.Text[:h]}})
		if t.cut == "midway" {
			return
		}
		send("content_block_delta", map[string]any{"type": "content_block_delta", "index": idx, "delta": map[string]any{"type": "text_delta", "text": t.Text[h:]}})
		send("content_block_stop", map[string]any{"type": "content_block_stop", "index": idx})
		idx++
	}
	for _, c := range t.Calls {
		// Arguments in two pieces, as the API cuts them; the pieces need not be JSON on their own.
		h := len(c.Args) / 2
		send("content_block_start", map[string]any{"type": "content_block_start", "index": idx, "content_block": map[string]any{"type": "tool_use", "id": c.ID, "name": c.Name, "input": map[string]any{}}})
		send("content_block_delta", map[string]any{"type": "content_block_delta", "index": idx, "delta": map[string]any{"type": "input_json_delta", "partial_json": c.Args[:h]}})
		send("content_block_delta", map[string]any{"type": "content_block_delta", "index": idx, "delta": map[string]any{"type": "input_json_delta", "partial_json": c.Args[h:]}})
		send("content_block_stop", map[string]any{"type": "content_block_stop", "index": idx})
		idx++
	}
	send("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stop, "stop_sequence": nil}, "usage": map[string]int{"output_tokens": t.Out}})
	send("message_stop", map[string]any{"type": "message_stop"})
}

// newWireFake starts a fake of the given wire format and returns it with a real client of it, which
// repeats a failed request retries times.
func newWireFake(t testing.TB, wire string, retries int, script func(n int, req wireReq) wireStep) (*wireFake, panther.Model) {
	t.Helper()
	f := &wireFake{wire: wire, script: script}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	var m panther.Model
	var err error
	switch wire {
	case wireOpenAI:
		m, err = llm.NewOpenAI(llm.OpenAIOptions{BaseURL: srv.URL + "/v1", Model: "fake-model", Retries: retries})
	case wireAnthropic:
		m, err = llm.NewAnthropic(llm.AnthropicOptions{BaseURL: srv.URL, APIKey: "test-key", Model: "fake-model", Retries: retries})
	default:
		t.Fatalf("no wire %q", wire)
	}
	if err != nil {
		t.Fatal(err)
	}
	return f, m
}
