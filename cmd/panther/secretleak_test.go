package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestSecretsNeverInAnyOutput runs the commands that touch secrets — config, secrets check, ask
// with a model whose key comes from an op:// reference mapped to an OpNix file, serve with a token,
// its API, metrics and shutdown, session export — and greps everything they printed and logged for
// the secret values.
func TestSecretsNeverInAnyOutput(t *testing.T) {
	const (
		modelKey = "sk-model-key-3f9a2c71e5d04b88"
		apiToken = "tok-api-8c1e4f7a2b9d6e30a5c4"
	)
	c, _ := crawledCLI(t)
	var mu sync.Mutex
	var auths []string
	model := &fakeModel{script: func(req chatRequest) reply {
		if req.Messages[len(req.Messages)-1].Role == "user" {
			return reply{calls: [][2]string{{"kb_search", `{"query":"zebra-striped quantum gizmo"}`}}}
		}
		return reply{text: "A zebra-striped quantum gizmo [1]."}
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		model.ServeHTTP(w, r)
	}))
	defer srv.Close()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "opnix-model-key")
	if err := os.WriteFile(keyFile, []byte(modelKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.toml")
	src := fmt.Sprintf(`model = "fake/test-model"

[providers.fake]
wire = "openai"
base_url = %q
api_key = "op://pantherOS/fake-model/default/apiKey"

[secrets]
op_map = { "op://pantherOS/fake-model/default/apiKey" = %q }

[[server.tokens]]
name = "owner"
token = "env:PANTHER_TEST_TOKEN"
scopes = ["write"]

[telemetry]
log_level = "debug"
`, srv.URL+"/v1", keyFile)
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c.env["PANTHER_CONFIG"] = cfg
	c.env["PANTHER_TEST_TOKEN"] = apiToken

	var outputs []string
	run := func(args ...string) {
		t.Helper()
		code, out, errOut := c.run(args...)
		outputs = append(outputs, out, errOut)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	run("config", "show")
	run("config", "check")
	run("secrets", "check")
	run("ask", "--json", "what does the widget server need?")
	var list struct{ Sessions []struct{ ID string } }
	c.mustJSON(&list, "sessions", "list", "--json")
	run("sessions", "export", list.Sessions[0].ID)

	s := startServe(t, c)
	for _, path := range []string{"/v1/status", "/metrics", "/v1/agents"} {
		code, body := s.do("GET", path, nil, apiToken)
		outputs = append(outputs, string(body))
		if code != http.StatusOK {
			t.Errorf("GET %s: %d", path, code)
		}
	}
	code, body := s.do("POST", "/v1/sessions", map[string]string{"agent": "general", "prompt": "and the gizmo?"}, apiToken)
	outputs = append(outputs, string(body))
	if code != http.StatusAccepted {
		t.Errorf("POST /v1/sessions: %d %s", code, body)
	}
	code, body = s.do("GET", "/v1/status", nil, "tok-wrong-"+apiToken[10:])
	outputs = append(outputs, string(body))
	if code != http.StatusUnauthorized {
		t.Errorf("a wrong token: %d", code)
	}
	if err := s.shutdown(); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	outputs = append(outputs, s.logs.String())

	mu.Lock()
	used := strings.Join(auths, "\n")
	mu.Unlock()
	if !strings.Contains(used, "Bearer "+modelKey) {
		t.Fatalf("the model key from the OpNix file was not the one sent to the model server")
	}
	for i, out := range outputs {
		for _, secret := range []string{modelKey, apiToken} {
			if strings.Contains(out, secret) {
				t.Errorf("output %d shows a secret:\n%s", i, out)
			}
		}
	}
}
