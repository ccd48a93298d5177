package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	example, err := os.ReadFile("../../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		src     string
		wantErr string // "" for success
	}{
		{"the example file", string(example), ""},
		{"empty", "", ""},
		{"unknown top-level key", "db = \"x\"\nmodle = \"a/b\"\n", `config c.toml:2: unknown key "modle"`},
		{"unknown key in a table", "[embedder]\nkind = \"none\"\n\n[providers.zai]\nwire = \"openai\"\nbase_url = \"http://x/v1\"\napikey = \"k\"\n", `config c.toml:7: unknown key "providers.zai.apikey"`},
		{"unknown table", "[embeder]\nkind = \"none\"\n", `config c.toml:1: unknown key "embeder"`},
		{"syntax error", "db = \n", "config c.toml:1:"},
		{"bad wire", "[providers.x]\nwire = \"grpc\"\nbase_url = \"http://x\"\n", `providers.x.wire "grpc": want openai or anthropic`},
		{"missing wire", "[providers.x]\nbase_url = \"http://x\"\n", `providers.x.wire is missing`},
		{"openai without url", "[providers.x]\nwire = \"openai\"\n", `providers.x.base_url is missing`},
		{"bad url", "[providers.x]\nwire = \"openai\"\nbase_url = \"localhost:11434\"\n", `providers.x.base_url: "localhost:11434" is not an http(s) URL`},
		{"credentials in url", "[providers.x]\nwire = \"openai\"\nbase_url = \"https://u:p@x/v1\"\n", `not in the URL`},
		{"model without provider", "model = \"glm\"\n", `model: "glm": name a model as provider/model`},
		{"model of unknown provider", "model = \"zai/glm\"\n[providers.ollama]\nwire = \"openai\"\nbase_url = \"http://x/v1\"\n", `no provider "zai" is configured (configured: ollama)`},
		{"bad embedder", "[embedder]\nkind = \"bert\"\n", `embedder.kind "bert"`},
		{"weight out of range", "[embedder]\nvector_weight = 1.5\n", `embedder.vector_weight 1.5`},
		{"negative budget", "[agents]\nmax_steps = -1\n", `agents: limits cannot be negative`},
		{"bad duration", "[agents]\ntimeout = \"soon\"\n", `config c.toml`},
		{"bad allow", "[web]\nallow = [\"intranet\"]\n", `web.allow: allow entry "intranet": not an address or prefix`},
		{"upper-case provider", "[providers.ZAI]\nwire = \"openai\"\nbase_url = \"http://x/v1\"\n", `providers.ZAI: a provider name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("c.toml", []byte(tt.src))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigFileDrivesCommands(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "from-config.db")
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte("db = \""+dbPath+"\"\n[embedder]\nkind = \"builtin\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t)
	c.env["PANTHER_DB"] = ""
	if code, out, errOut := c.run("--config", cfgPath, "status", "--json"); code != 0 {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	} else if !strings.Contains(out, "glove") {
		t.Errorf("status does not show the configured builtin embedder:\n%s", out)
	}
	if _, err := os.Stat(dbPath); err != nil {
		t.Errorf("the database named by the config file was not used: %v", err)
	}

	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		wantErr  string
	}{
		{"named config missing", []string{"--config", filepath.Join(dir, "nope.toml"), "status"}, nil, 2, "nope.toml does not exist"},
		{"PANTHER_CONFIG missing", []string{"status"}, map[string]string{"PANTHER_CONFIG": filepath.Join(dir, "gone.toml")}, 2, "gone.toml does not exist"},
		{"default location absent is fine", []string{"status"}, map[string]string{"XDG_CONFIG_HOME": filepath.Join(dir, "empty")}, 0, ""},
		{"flag beats config", []string{"--config", cfgPath, "--embedder", "nonsense", "status"}, nil, 2, `--embedder "nonsense"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t)
			for k, v := range tt.env {
				c.env[k] = v
			}
			code, out, errOut := c.run(tt.args...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)\n%s", code, tt.wantCode, errOut, tt.wantErr, out)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	example, err := os.ReadFile("../../config.example.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(example))
	f.Add("[providers.a]\nwire='openai'\nbase_url='http://x'\n[web]\nallow=['::1']\n")
	f.Fuzz(func(t *testing.T, src string) {
		cfg, err := parseConfig("fuzz.toml", []byte(src))
		if err == nil && cfg == nil {
			t.Fatal("nil config without an error")
		}
		if err == nil && cfg.Model != "" {
			if _, _, err := cfg.splitModel(cfg.Model); err != nil {
				t.Fatalf("a valid config names a model it cannot resolve: %v", err)
			}
		}
	})
}
