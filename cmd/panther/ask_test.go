package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"panther/httpapi"
)

func TestAskWithoutAModelAnswersExtractively(t *testing.T) {
	site := copySite(t)
	srv := httptest.NewServer(http.FileServer(http.Dir(site)))
	defer srv.Close()
	c := newCLI(t)
	var sum crawlSummaryJSON
	c.mustJSON(&sum, "crawl", srv.URL+"/index.html", "--json")

	code, out, errOut := c.run("ask", "what does the widget server need?")
	if code != 0 {
		t.Fatalf("ask: exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "no model is configured") || !strings.Contains(errOut, "config.example.toml") {
		t.Errorf("ask does not say how to configure a model: %q", errOut)
	}
	if !strings.Contains(out, "[1]") || !strings.Contains(out, "Sources:") || !strings.Contains(out, "#INSTALL") {
		t.Errorf("extractive answer lacks its numbered citations:\n%s", out)
	}
}

// chatRequest is the part of an OpenAI chat-completions request the fake model reads.
type chatRequest struct {
	Stream   bool `json:"stream"`
	Messages []struct {
		Role      string `json:"role"`
		Content   any    `json:"content"`
		ToolCalls []struct {
			Function struct{ Name string } `json:"function"`
		} `json:"tool_calls"`
	} `json:"messages"`
}

func (r chatRequest) text(i int) string {
	switch c := r.Messages[i].Content.(type) {
	case string:
		return c
	case nil:
		return ""
	default:
		b, _ := json.Marshal(c)
		return string(b)
	}
}

// firstUser is the conversation's first user message: what tells a sub-agent from its parent.
func (r chatRequest) firstUser() string {
	for i, m := range r.Messages {
		if m.Role == "user" {
			return r.text(i)
		}
	}
	return ""
}

func (r chatRequest) last() string { return r.text(len(r.Messages) - 1) }

// reply is one model turn: text, or tool calls (name → JSON arguments, in order).
type reply struct {
	text  string
	calls [][2]string
}

// fakeModel speaks the OpenAI chat-completions wire format, streaming (SSE) or not as asked, and
// answers each request with what script returns for it.
type fakeModel struct {
	script func(req chatRequest) reply
	mu     sync.Mutex
	bodies []string
}

func (f *fakeModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.bodies = append(f.bodies, string(body))
	f.mu.Unlock()
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil || len(req.Messages) == 0 {
		http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	rep := f.script(req)
	finish := "stop"
	type call struct {
		Index    int    `json:"index"`
		ID       string `json:"id"`
		Type     string `json:"type"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	var calls []call
	for i, c := range rep.calls {
		cl := call{Index: i, ID: fmt.Sprintf("call_%d_%d", len(req.Messages), i), Type: "function"}
		cl.Function.Name, cl.Function.Arguments = c[0], c[1]
		calls = append(calls, cl)
		finish = "tool_calls"
	}
	usage := map[string]int{"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}
	msg := map[string]any{"role": "assistant", "content": rep.text}
	if len(calls) > 0 {
		msg["tool_calls"] = calls
	}
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": "c", "object": "chat.completion", "model": "m",
			"choices": []any{map[string]any{"index": 0, "finish_reason": finish, "message": msg}}, "usage": usage})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	send := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
	}
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"id": "c", "object": "chat.completion.chunk", "model": "m",
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	send(chunk(map[string]any{"role": "assistant"}, nil))
	// The text in two pieces, as a streaming server sends it.
	if half := len(rep.text) / 2; rep.text != "" {
		send(chunk(map[string]any{"content": rep.text[:half]}, nil))
		send(chunk(map[string]any{"content": rep.text[half:]}, nil))
	}
	for _, c := range calls {
		send(chunk(map[string]any{"tool_calls": []call{c}}, nil))
	}
	send(chunk(map[string]any{}, finish))
	send(map[string]any{"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": []any{}, "usage": usage})
	fmt.Fprint(w, "data: [DONE]\n\n")
}

func (f *fakeModel) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.bodies...)
}

// withModel points c at a config file whose default model is the fake server's.
func withModel(t *testing.T, c *cli, modelURL string, extra string) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "config.toml")
	src := fmt.Sprintf("model = \"fake/test-model\"\n\n[providers.fake]\nwire = \"openai\"\nbase_url = %q\napi_key = \"env:FAKE_KEY\"\nretries = 0\n%s", modelURL+"/v1", extra)
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c.env["PANTHER_CONFIG"] = cfg
	c.env["FAKE_KEY"] = "sk-never-shown"
}

func crawledCLI(t *testing.T) (*cli, *httptest.Server) {
	t.Helper()
	return crawledCLIOn(t, kindSQLite)
}

// crawledCLIOn is crawledCLI with its knowledge base in a store of the kind.
func crawledCLIOn(t *testing.T, kind string) (*cli, *httptest.Server) {
	t.Helper()
	docs := httptest.NewServer(http.FileServer(http.Dir(copySite(t))))
	t.Cleanup(docs.Close)
	c := newCLIOn(t, kind)
	var sum crawlSummaryJSON
	c.mustJSON(&sum, "crawl", docs.URL+"/index.html", "--json")
	return c, docs
}

func TestAskWithAModelKeepsASession(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) { testAskKeepsASession(t, kind) })
	}
}

func testAskKeepsASession(t *testing.T, kind string) {
	c, _ := crawledCLIOn(t, kind)
	model := &fakeModel{script: func(req chatRequest) reply {
		switch {
		case strings.Contains(req.last(), "and the second"):
			return reply{text: "Same gizmo as before [1]."}
		case len(req.Messages) == 1 || req.Messages[len(req.Messages)-1].Role == "user":
			return reply{calls: [][2]string{{"kb_search", `{"query":"zebra-striped quantum gizmo"}`}}}
		}
		return reply{text: "It needs a zebra-striped quantum gizmo [1] and patience [9]."}
	}}
	srv := httptest.NewServer(model)
	defer srv.Close()
	withModel(t, c, srv.URL, "")

	var res askJSON
	c.mustJSON(&res, "ask", "--json", "what does the widget server need?")
	if !strings.Contains(res.Answer, "gizmo [1]") || strings.Contains(res.Answer, "[9]") {
		t.Errorf("answer %q: want [1] kept and the unknown [9] removed", res.Answer)
	}
	if len(res.Citations) != 1 || res.Citations[0].Anchor != "INSTALL-REQUIREMENTS" || !strings.Contains(res.Answer, "#INSTALL-REQUIREMENTS") {
		t.Errorf("citations %+v, answer %q: want the Requirements section", res.Citations, res.Answer)
	}
	if res.StoppedBy != "answer" || res.Usage == nil || res.Usage.InputTokens != 200 || res.Session == "" || res.Agent != "general" {
		t.Errorf("stopped by %q, usage %+v, session %q, agent %q", res.StoppedBy, res.Usage, res.Session, res.Agent)
	}
	reqs := model.requests()
	if len(reqs) != 2 || !strings.Contains(reqs[1], "zebra-striped") || !strings.Contains(reqs[1], "Requirements") {
		t.Fatalf("want 2 requests, the second carrying the search result; got %d", len(reqs))
	}

	// The session holds the conversation with its tool call, usage and timings.
	var shown struct {
		Session struct {
			ID, Agent, Status string
			Steps             int
		}
		Messages []struct {
			Role      string
			Content   string
			ToolCalls []struct{ Name string } `json:"tool_calls"`
			Duration  int64                   `json:"duration_ns"`
			Citations []struct{ URL string }
		}
	}
	c.mustJSON(&shown, "sessions", "show", res.Session[:6], "--json")
	if shown.Session.Status != "done" || shown.Session.Steps != 2 || len(shown.Messages) != 4 {
		t.Fatalf("stored session %+v with %d messages, want done, 2 steps, 4 messages", shown.Session, len(shown.Messages))
	}
	if m := shown.Messages[1]; len(m.ToolCalls) != 1 || m.ToolCalls[0].Name != "kb_search" || m.Duration <= 0 {
		t.Errorf("assistant message %+v: want the kb_search call and its model time", m)
	}
	if m := shown.Messages[2]; m.Role != "tool" || len(m.Citations) == 0 || m.Duration <= 0 {
		t.Errorf("tool message %+v: want its citations and time", m)
	}

	// A follow-up continues the conversation: the model sees the first exchange.
	c.mustJSON(&res, "ask", "--json", "--continue", res.Session, "and the second one?")
	reqs = model.requests()
	if last := reqs[len(reqs)-1]; !strings.Contains(last, "what does the widget server need?") || !strings.Contains(last, "and the second one?") {
		t.Errorf("the continued conversation did not reach the model: %s", last)
	}
	c.mustJSON(&shown, "sessions", "show", res.Session, "--json")
	if len(shown.Messages) != 6 || shown.Session.Steps != 3 {
		t.Errorf("after a follow-up: %d messages, %d steps; want 6 and 3", len(shown.Messages), shown.Session.Steps)
	}

	code, out, errOut := c.run("sessions", "export", res.Session)
	if code != 0 || !strings.Contains(out, "kb_search") || !strings.Contains(out, "and the second one?") {
		t.Errorf("export: exit %d\n%s%s", code, out, errOut)
	}
	for _, s := range []string{out, errOut, strings.Join(reqs, "")} {
		if strings.Contains(s, "sk-never-shown") && s != strings.Join(reqs, "") {
			t.Errorf("the API key leaked into output")
		}
	}
}

func TestAskSubagentsRunInParallelAsChildSessions(t *testing.T) {
	c, _ := crawledCLI(t)
	var mu sync.Mutex
	started := map[string]bool{}
	both := make(chan struct{})
	model := &fakeModel{script: func(req chatRequest) reply {
		first := req.firstUser()
		switch {
		case strings.HasPrefix(first, "part "):
			// Each sub-agent waits until its sibling has started too: they can only both finish if
			// they run at the same time.
			mu.Lock()
			started[first] = true
			if len(started) == 2 {
				close(both)
			}
			mu.Unlock()
			<-both
			return reply{text: "Answer to " + first + "."}
		case req.Messages[len(req.Messages)-1].Role == "user":
			return reply{calls: [][2]string{
				{"task", `{"agent":"general","prompt":"part one","description":"first half"}`},
				{"task", `{"agent":"general","prompt":"part two","description":"second half"}`},
			}}
		}
		return reply{text: "Both parts are answered."}
	}}
	srv := httptest.NewServer(model)
	defer srv.Close()
	withModel(t, c, srv.URL, "")

	code, out, errOut := c.run("ask", "a question in two parts")
	if code != 0 || !strings.Contains(out, "Both parts are answered.") {
		t.Fatalf("ask: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "→ sub-agent general: first half") || !strings.Contains(errOut, "← sub-agent general done") {
		t.Errorf("stderr does not show the sub-agents:\n%s", errOut)
	}
	var list struct {
		Sessions []struct {
			ID       string
			ParentID string `json:"parent_id"`
			Model    string
			Status   string
		}
	}
	c.mustJSON(&list, "sessions", "list", "--all", "--json")
	all := list.Sessions
	var parent string
	children := 0
	for _, s := range all {
		if s.ParentID == "" {
			parent = s.ID
		}
		if s.Model != "test-model" {
			t.Errorf("session %s records model %q, want test-model", s.ID, s.Model)
		}
	}
	for _, s := range all {
		if s.ParentID != "" {
			children++
			if s.ParentID != parent || s.Status != "done" {
				t.Errorf("child session %+v: want parent %s and done", s, parent)
			}
		}
	}
	if len(all) != 3 || children != 2 {
		t.Fatalf("sessions %+v: want one parent and two children", all)
	}
}

func TestAskResearcherFetchesOnlyAllowedAddresses(t *testing.T) {
	tests := []struct {
		name    string
		allow   string
		want    string // in the tool result the model receives
		fetched bool
	}{
		{"loopback refused by default", "", "refused to connect to 127.0.0.1", false},
		{"allowed by the config", "[web]\nallow = [\"127.0.0.1\"]\n", "Installing the widget server", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, docs := crawledCLI(t)
			var hits sync.Map
			page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Store(r.URL.Path, true)
				http.Redirect(w, r, docs.URL+"/guide/install.html", http.StatusFound)
			}))
			defer page.Close()
			model := &fakeModel{script: func(req chatRequest) reply {
				if req.Messages[len(req.Messages)-1].Role == "user" {
					return reply{calls: [][2]string{{"web_fetch", fmt.Sprintf(`{"url":%q}`, page.URL+"/start")}}}
				}
				return reply{text: "Done."}
			}}
			srv := httptest.NewServer(model)
			defer srv.Close()
			withModel(t, c, srv.URL, tt.allow)
			if code, out, errOut := c.run("run", "--agent", "researcher", "fetch it"); code != 0 {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			reqs := model.requests()
			if last := reqs[len(reqs)-1]; !strings.Contains(last, tt.want) {
				t.Errorf("the tool result the model got lacks %q:\n%s", tt.want, last)
			}
			if _, ok := hits.Load("/start"); ok != tt.fetched {
				t.Errorf("page fetched = %v, want %v", ok, tt.fetched)
			}
		})
	}
}

func TestAskErrors(t *testing.T) {
	model := &fakeModel{script: func(chatRequest) reply { return reply{text: "x"} }}
	srv := httptest.NewServer(model)
	defer srv.Close()
	tests := []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"unknown provider", []string{"ask", "--model", "psychic/x", "q"}, 2, `no provider "psychic" is configured (configured: fake)`},
		{"unknown agent", []string{"ask", "--agent", "nobody", "q"}, 1, `agent "nobody"`},
		{"unknown session", []string{"ask", "--continue", "ffffffff", "q"}, 1, "session ffffffff not found"},
		{"no question", []string{"ask"}, 2, "ask expects a QUESTION"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t)
			withModel(t, c, srv.URL, "")
			code, out, errOut := c.run(tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tt.code, errOut, tt.wantErr)
			}
			if strings.Contains(out+errOut, "sk-never-shown") {
				t.Fatal("the API key leaked")
			}
		})
	}
}

func TestAgentsList(t *testing.T) {
	c := newCLI(t)
	dir := filepath.Join(c.env["HOME"], ".config", "panther", "agents")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	def := "---\ndescription: Reviews SQL\nmode: subagent\ntools:\n  \"*\": false\n  kb_search: true\n---\nYou review SQL.\n"
	if err := os.WriteFile(filepath.Join(dir, "sqlreview.md"), []byte(def), 0o600); err != nil {
		t.Fatal(err)
	}
	var list []httpapi.AgentInfo
	c.mustJSON(&list, "agents", "--json")
	got := map[string]httpapi.AgentInfo{}
	for _, a := range list {
		got[a.Name] = a
	}
	if g, ok := got["general"]; !ok || strings.Contains(strings.Join(g.Tools, ","), "web_fetch") {
		t.Errorf("general: %+v (must not have web_fetch)", g)
	}
	if r, ok := got["researcher"]; !ok || !strings.Contains(strings.Join(r.Tools, ","), "crawl") {
		t.Errorf("researcher: %+v (must have crawl)", r)
	}
	if s, ok := got["sqlreview"]; !ok || strings.Join(s.Tools, ",") != "kb_search" || s.Mode != "subagent" {
		t.Errorf("user definition: %+v", s)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.md"), []byte("---\ndescription: x\nmood: happy\n---\nbody\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := c.run("agents"); code == 0 || !strings.Contains(errOut, "broken.md") || !strings.Contains(errOut, "mood") {
		t.Errorf("a broken definition: exit %d, %q", code, errOut)
	}
}
