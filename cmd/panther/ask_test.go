package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
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
	if !strings.Contains(errOut, "no model is configured") || !strings.Contains(errOut, "PANTHER_MODEL_PROVIDER") {
		t.Errorf("ask does not say how to configure a model: %q", errOut)
	}
	if !strings.Contains(out, "[1]") || !strings.Contains(out, "Sources:") || !strings.Contains(out, "#INSTALL") {
		t.Errorf("extractive answer lacks its numbered citations:\n%s", out)
	}
}

// chatServer speaks the OpenAI chat-completions wire format (non-streaming) and plays a script:
// first a kb_search tool call, then an answer that cites [1] and a source that does not exist.
type chatServer struct {
	turns    atomic.Int32
	lastBody atomic.Value
}

func (s *chatServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.lastBody.Store(string(body))
	w.Header().Set("Content-Type", "application/json")
	switch s.turns.Add(1) {
	case 1:
		io.WriteString(w, `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"finish_reason":"tool_calls",
			"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"kb_search","arguments":"{\"query\":\"zebra-striped quantum gizmo\"}"}}]}}],
			"usage":{"prompt_tokens":100,"completion_tokens":10,"total_tokens":110}}`)
	default:
		io.WriteString(w, `{"id":"c2","object":"chat.completion","model":"m","choices":[{"index":0,"finish_reason":"stop",
			"message":{"role":"assistant","content":"It needs a zebra-striped quantum gizmo [1] and patience [9]."}}],
			"usage":{"prompt_tokens":300,"completion_tokens":20,"total_tokens":320}}`)
	}
}

func TestAskWithAModel(t *testing.T) {
	site := copySite(t)
	docs := httptest.NewServer(http.FileServer(http.Dir(site)))
	defer docs.Close()
	chat := &chatServer{}
	model := httptest.NewServer(chat)
	defer model.Close()
	c := newCLI(t)
	var sum crawlSummaryJSON
	c.mustJSON(&sum, "crawl", docs.URL+"/index.html", "--json")

	c.env["PANTHER_MODEL_PROVIDER"] = "openai"
	c.env["PANTHER_MODEL"] = "test-model"
	c.env["PANTHER_MODEL_URL"] = model.URL + "/v1"
	c.env["PANTHER_MODEL_API_KEY"] = "sk-never-shown"
	var res askJSON
	c.mustJSON(&res, "ask", "--json", "what does the widget server need?")
	if !strings.Contains(res.Answer, "gizmo [1]") || strings.Contains(res.Answer, "[9]") {
		t.Errorf("answer %q: want [1] kept and the unknown [9] removed", res.Answer)
	}
	if len(res.Citations) != 1 || res.Citations[0].Anchor != "INSTALL-REQUIREMENTS" || !strings.Contains(res.Answer, "#INSTALL-REQUIREMENTS") {
		t.Errorf("citations %+v, answer %q: want the Requirements section", res.Citations, res.Answer)
	}
	if res.StoppedBy != "answer" || res.Usage == nil || res.Usage.InputTokens != 400 {
		t.Errorf("stopped by %q, usage %+v", res.StoppedBy, res.Usage)
	}
	var last struct{ Messages []json.RawMessage }
	if err := json.Unmarshal([]byte(chat.lastBody.Load().(string)), &last); err != nil || len(last.Messages) < 4 {
		t.Fatalf("the second request: %v, %d messages", err, len(last.Messages))
	}
	if !strings.Contains(string(last.Messages[len(last.Messages)-1]), "zebra-striped") {
		t.Errorf("the tool result did not reach the model: %s", last.Messages[len(last.Messages)-1])
	}

	c.env["PANTHER_MODEL_PROVIDER"] = "psychic"
	if code, _, errOut := c.run("ask", "x"); code != 2 || !strings.Contains(errOut, "PANTHER_MODEL_PROVIDER") || strings.Contains(errOut, "sk-never-shown") {
		t.Errorf("a bad provider: exit %d, %q", code, errOut)
	}
}
