package mcpclients

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"
)

// opencode runs OpenCode in a project folder of its own, with a home of its own.
type opencode struct {
	bin, home, project string
	secrets            []string
}

func newOpenCode(t *testing.T, config map[string]any, secrets ...string) *opencode {
	t.Helper()
	oc := &opencode{bin: needClient(t, "opencode"), home: t.TempDir(), project: t.TempDir(), secrets: secrets}
	config["$schema"] = "https://opencode.ai/config.json"
	// Nothing that would reach out: no updates, no sharing.
	config["autoupdate"] = false
	config["share"] = "disabled"
	b, err := json.MarshalIndent(config, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(oc.project, "opencode.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return oc
}

// run runs opencode with args (--pure: no external plugins) in the project folder.
func (oc *opencode) run(t *testing.T, args ...string) result {
	t.Helper()
	env := isolatedEnv(oc.home,
		// The model list would be fetched from the network, and updates looked for.
		"OPENCODE_DISABLE_MODELS_FETCH=1", "OPENCODE_DISABLE_AUTOUPDATE=1", "OPENCODE_DISABLE_LSP_DOWNLOAD=1",
		"OPENCODE_DISABLE_DEFAULT_PLUGINS=1", "OPENCODE_DISABLE_CLAUDE_CODE=1", "OPENCODE_DISABLE_SHARE=1")
	res := run(t, oc.project, env, oc.bin, append([]string{"--pure"}, args...)...)
	res.stdout, res.stderr = stripANSI(redact(res.stdout, oc.secrets...)), stripANSI(redact(res.stderr, oc.secrets...))
	return res
}

// log is the end of OpenCode's own log, for failure messages.
func (oc *opencode) log() string {
	b, _ := os.ReadFile(filepath.Join(oc.home, ".local", "share", "opencode", "log", "opencode.log"))
	s := redact(string(b), oc.secrets...)
	if len(s) > 4000 {
		s = "…" + s[len(s)-4000:]
	}
	return s
}

var ansiRE = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

func stripANSI(s string) string { return ansiRE.ReplaceAllString(s, "") }

// mcpStatuses reads `opencode mcp list`: each server's name and status (connected, failed, …), from
// the lines that start with a bullet and a status mark ("●  ✓ panther connected").
func mcpStatuses(out string) map[string]string {
	st := map[string]string{}
	for line := range strings.SplitSeq(out, "\n") {
		fields := strings.Fields(line)
		marks := 0
		for marks < len(fields) && utf8.RuneCountInString(fields[marks]) == 1 && !unicode.IsLetter([]rune(fields[marks])[0]) {
			marks++
		}
		if marks >= 2 && len(fields) >= marks+2 {
			st[fields[marks]] = strings.Join(fields[marks+1:], " ")
		}
	}
	return st
}

func TestOpenCodeListsPantherConnected(t *testing.T) {
	t.Parallel()
	needClient(t, "opencode")
	db := crawledDB(t)
	srv := servePanther(t, db)
	wrong := newToken(t)
	oc := newOpenCode(t, map[string]any{"mcp": map[string]any{
		"panther": map[string]any{"type": "local", "command": []string{pantherBin(t), "--db", db, "mcp"}},
		"panther-remote": map[string]any{"type": "remote", "url": srv.url + "/mcp", "oauth": false,
			"headers": map[string]string{"Authorization": "Bearer " + srv.read}},
		// The check below must be able to fail: a server panther refuses is not connected.
		"panther-wrong-token": map[string]any{"type": "remote", "url": srv.url + "/mcp", "oauth": false,
			"headers": map[string]string{"Authorization": "Bearer " + wrong}},
	}}, srv.read, srv.write, wrong)
	res := oc.run(t, "mcp", "list")
	st := mcpStatuses(res.stdout)
	if res.code != 0 || st["panther"] != "connected" || st["panther-remote"] != "connected" {
		t.Errorf("opencode mcp list: exit %d, statuses %v, want panther and panther-remote connected\nstdout:\n%s\nstderr:\n%s\nlog:\n%s",
			res.code, st, res.stdout, res.stderr, oc.log())
	}
	if s, ok := st["panther-wrong-token"]; !ok || s == "connected" {
		t.Errorf("panther-wrong-token: status %q, want it listed and not connected\n%s", s, res.stdout)
	}
}

// scriptedModel is an OpenAI-compatible chat completions server (streaming) with a script: asked
// with tools, it calls panther's search tool; given the tool's result, it answers with the passage
// it found there. Anything else (OpenCode's title requests) gets a short title.
type scriptedModel struct {
	mu       sync.Mutex
	requests []chatRequest
}

type chatRequest struct {
	Stream   bool          `json:"stream"`
	Messages []chatMessage `json:"messages"`
	Tools    []struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	} `json:"tools"`
}

type chatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	ToolCallID string          `json:"tool_call_id"`
}

// text is a message's content, a string or a list of text parts.
func (m chatMessage) text() string {
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return s
	}
	var parts []struct {
		Text string `json:"text"`
	}
	json.Unmarshal(m.Content, &parts)
	var out []string
	for _, p := range parts {
		out = append(out, p.Text)
	}
	return strings.Join(out, "")
}

func (r chatRequest) toolNames() []string {
	var names []string
	for _, tool := range r.Tools {
		names = append(names, tool.Function.Name)
	}
	slices.Sort(names)
	return names
}

const (
	searchTool   = "panther_search"
	searchCallID = "call_zebra"
	question     = "How do I set the zebra dial of the gizmo?"
	answerPrefix = "According to panther's documentation: "
)

func (m *scriptedModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	var req chatRequest
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil || len(req.Messages) == 0 {
		http.Error(w, fmt.Sprintf("bad request: %v", err), http.StatusBadRequest)
		return
	}
	m.mu.Lock()
	m.requests = append(m.requests, req)
	m.mu.Unlock()

	last := req.Messages[len(req.Messages)-1]
	var delta map[string]any
	finish := "stop"
	switch {
	case last.Role == "tool" && last.ToolCallID == searchCallID:
		answer := "the search found nothing about the zebra dial."
		for line := range strings.SplitSeq(last.text(), "\n") {
			if strings.Contains(line, "zebra dial to") {
				answer = strings.TrimSpace(line)
				break
			}
		}
		delta = map[string]any{"role": "assistant", "content": answerPrefix + answer}
	case slices.Contains(req.toolNames(), searchTool):
		delta = map[string]any{"role": "assistant", "tool_calls": []any{map[string]any{
			"index": 0, "id": searchCallID, "type": "function",
			"function": map[string]any{"name": searchTool, "arguments": `{"query":"zebra dial","k":3}`},
		}}}
		finish = "tool_calls"
	default:
		delta = map[string]any{"role": "assistant", "content": "Zebra dial"}
	}
	if !req.Stream {
		msg := map[string]any{"role": "assistant", "content": delta["content"], "tool_calls": delta["tool_calls"]}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "scripted",
			"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}}})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	chunk := func(delta map[string]any, finish any) {
		b, _ := json.Marshal(map[string]any{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "scripted",
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}})
		fmt.Fprintf(w, "data: %s\n\n", b)
	}
	chunk(delta, nil)
	chunk(map[string]any{}, finish)
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// toolResult returns the search tool's result as it came back to the model, and the tools the model
// was offered with it.
func (m *scriptedModel) toolResult() (chatMessage, []string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, req := range m.requests {
		last := req.Messages[len(req.Messages)-1]
		if last.Role == "tool" && last.ToolCallID == searchCallID {
			return last, req.toolNames(), true
		}
	}
	return chatMessage{}, nil, false
}

func (m *scriptedModel) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.requests)
}

// TestOpenCodeRunCallsPantherSearch has OpenCode, driven by the scripted model, call panther's search
// tool over each transport, and checks that the passage reached the model and its answer the user.
func TestOpenCodeRunCallsPantherSearch(t *testing.T) {
	t.Parallel()
	needClient(t, "opencode")
	db := crawledDB(t)
	srv := servePanther(t, db)
	servers := []struct {
		name   string
		config map[string]any
	}{
		{"local", map[string]any{"type": "local", "command": []string{pantherBin(t), "--db", db, "mcp"}}},
		{"remote", map[string]any{"type": "remote", "url": srv.url + "/mcp", "oauth": false,
			"headers": map[string]string{"Authorization": "Bearer " + srv.read}}},
	}
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			model := &scriptedModel{}
			ms := httptest.NewServer(model)
			defer ms.Close()
			oc := newOpenCode(t, map[string]any{
				"provider": map[string]any{"scripted": map[string]any{
					"npm":     "@ai-sdk/openai-compatible",
					"name":    "Scripted",
					"options": map[string]any{"baseURL": ms.URL + "/v1", "apiKey": "not-a-real-key"},
					"models":  map[string]any{"model": map[string]any{"name": "Scripted model", "tool_call": true}},
				}},
				"model":       "scripted/model",
				"small_model": "scripted/model",
				// The script only searches; should it go astray, it changes nothing here.
				"permission": map[string]any{"edit": "deny", "bash": "deny", "webfetch": "deny"},
				"mcp":        map[string]any{"panther": s.config},
			}, srv.read, srv.write)
			res := oc.run(t, "run", question)
			fail := func(format string, args ...any) {
				t.Helper()
				t.Errorf(format+"\nexit %d\nstdout:\n%s\nstderr:\n%s\nlog:\n%s", append(args, res.code, res.stdout, res.stderr, oc.log())...)
			}
			msg, tools, ok := model.toolResult()
			if !ok {
				fail("the search tool's result never reached the model (%d model requests)", model.count())
				return
			}
			if want := []string{"panther_list_sources", "panther_read", searchTool}; !containsAll(tools, want) || slices.Contains(tools, "panther_add_source") {
				t.Errorf("OpenCode offered the model %v: want %v and no write tool", tools, want)
			}
			if text := msg.text(); !strings.Contains(text, zebraPassage) || !strings.Contains(text, zebraLink(t)) {
				fail("the tool result the model got lacks the passage or its citation:\n%s", text)
			}
			if res.code != 0 || !strings.Contains(res.stdout, answerPrefix+zebraPassage) {
				fail("OpenCode's output lacks the answer built from the passage")
			}
		})
	}
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
