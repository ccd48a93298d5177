package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigShowAndSecretsCheck(t *testing.T) {
	const (
		literal  = "sk-literal-value-0123456789"
		envValue = "sk-from-env-0123456789"
		opValue  = "sk-from-opnix-0123456789"
	)
	dir := t.TempDir()
	opnixFile := filepath.Join(dir, "minimax-key")
	if err := os.WriteFile(opnixFile, []byte(opValue+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.toml")
	src := fmt.Sprintf(`model = "zai/glm-4.6"

[providers.zai]
wire = "openai"
base_url = "https://api.z.ai/api/coding/paas/v4"
api_key = "env:ZAI_KEY"

[providers.minimax]
wire = "anthropic"
base_url = "https://api.minimax.io/anthropic"
api_key = "op://pantherOS/minimax-coding-plan-api/default/apiKey"

[providers.local]
wire = "openai"
base_url = "http://localhost:11434/v1"
api_key = %q

[providers.gone]
wire = "openai"
base_url = "http://localhost:8000/v1"
api_key = "op://pantherOS/nowhere/default/apiKey"

[secrets]
op_map = { "op://pantherOS/minimax-coding-plan-api/default/apiKey" = %q }
`, literal, opnixFile)
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t)
	c.env["PANTHER_CONFIG"] = cfg
	c.env["ZAI_KEY"] = envValue

	code, out, errOut := c.run("config", "show")
	if code != 0 || !strings.Contains(out, `api_key = "(redacted)"`) || !strings.Contains(out, "env:ZAI_KEY") || !strings.Contains(out, "op://pantherOS/minimax-coding-plan-api") {
		t.Errorf("config show: exit %d\n%s%s", code, out, errOut)
	}
	code, out2, errOut2 := c.run("config", "check")
	if code != 0 || !strings.Contains(out2, "config.toml: ok") {
		t.Errorf("config check: exit %d\n%s%s", code, out2, errOut2)
	}

	code, out3, errOut3 := c.run("secrets", "check", "--json")
	var res struct {
		Secrets []secretCheckJSON
		Missing int
	}
	if err := json.Unmarshal([]byte(out3), &res); err != nil {
		t.Fatalf("secrets check --json: %v\n%s", err, out3)
	}
	if code != 1 || res.Missing != 1 || len(res.Secrets) != 4 {
		t.Fatalf("secrets check: exit %d, %+v", code, res)
	}
	want := map[string]string{
		"providers.zai.api_key":     "env",
		"providers.minimax.api_key": "file",
		"providers.local.api_key":   "literal",
	}
	for _, s := range res.Secrets {
		if src, ok := want[s.Setting]; ok && (!s.OK || s.Source != src) {
			t.Errorf("%s: %+v, want ok from %s", s.Setting, s, src)
		}
		if s.Setting == "providers.gone.api_key" && (s.OK || !strings.Contains(s.Problem, "no mapping")) {
			t.Errorf("the unmapped reference: %+v", s)
		}
	}
	for _, output := range []string{out, errOut, out2, errOut2, out3, errOut3} {
		for _, v := range []string{literal, envValue, opValue} {
			if strings.Contains(output, v) {
				t.Errorf("a secret value reached the output:\n%s", output)
			}
		}
	}

	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[secrets]\nop_map = { \"op://x\" = \"/run/secrets/x\" }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := c.run("config", "check", bad); code != 2 || !strings.Contains(errOut, "secrets.op_map") {
		t.Errorf("a malformed op:// reference in the map: exit %d, %q", code, errOut)
	}
}
