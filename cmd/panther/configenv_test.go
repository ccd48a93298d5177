package main

import (
	"strings"
	"testing"
	"time"
)

func TestEnvironmentOverridesTheConfigFile(t *testing.T) {
	const file = "model = \"zai/glm-4.6\"\n[providers.zai]\nwire = \"openai\"\nbase_url = \"https://api.z.ai/api/coding/paas/v4\"\napi_key = \"env:ZAI\"\n[server]\naddr = \"127.0.0.1:7777\"\n"
	tests := []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, c *fileConfig)
		wantErr string
	}{
		{"nothing set", nil, func(t *testing.T, c *fileConfig) {
			if c.Server.Addr != "127.0.0.1:7777" {
				t.Errorf("addr %q", c.Server.Addr)
			}
		}, ""},
		{"scalars in tables", map[string]string{"PANTHER_SERVER_ADDR": "127.0.0.1:9000", "PANTHER_AGENTS_TIMEOUT": "90s", "PANTHER_SERVER_METRICS_PUBLIC": "true", "PANTHER_AGENTS_MAX_STEPS": "7"}, func(t *testing.T, c *fileConfig) {
			if c.Server.Addr != "127.0.0.1:9000" || c.Agents.Timeout != 90*time.Second || !c.Server.MetricsPublic || c.Agents.MaxSteps != 7 {
				t.Errorf("server %+v agents %+v", c.Server, c.Agents)
			}
		}, ""},
		{"a provider's key", map[string]string{"PANTHER_PROVIDERS_ZAI_API_KEY": "file:/run/secrets/zai"}, func(t *testing.T, c *fileConfig) {
			if c.Providers["zai"].APIKey != "file:/run/secrets/zai" || c.Providers["zai"].Wire != "openai" {
				t.Errorf("provider %+v", c.Providers["zai"])
			}
		}, ""},
		{"a pointer setting", map[string]string{"PANTHER_EMBEDDER_VECTOR_WEIGHT": "0.3"}, func(t *testing.T, c *fileConfig) {
			if c.Embedder.VectorWeight == nil || *c.Embedder.VectorWeight != 0.3 {
				t.Errorf("weight %v", c.Embedder.VectorWeight)
			}
		}, ""},
		{"top level", map[string]string{"PANTHER_DB": "/tmp/x.db"}, func(t *testing.T, c *fileConfig) {
			if c.DB != "/tmp/x.db" {
				t.Errorf("db %q", c.DB)
			}
		}, ""},
		{"not a duration", map[string]string{"PANTHER_AGENTS_TIMEOUT": "soon-sk-secret"}, nil, "environment variable PANTHER_AGENTS_TIMEOUT: want a duration"},
		{"not a number", map[string]string{"PANTHER_SERVER_MAX_BODY": "lots"}, nil, "PANTHER_SERVER_MAX_BODY: want a whole number"},
		{"checked like the file", map[string]string{"PANTHER_EMBEDDER_VECTOR_WEIGHT": "3"}, nil, "embedder.vector_weight 3"},
		{"a model of an unknown provider", map[string]string{"PANTHER_MODEL": "nope/x"}, nil, `no provider "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig("c.toml", []byte(file))
			if err != nil {
				t.Fatal(err)
			}
			changed, err := envOverrides(cfg, func(k string) string { return tt.env[k] })
			if err == nil && changed {
				err = cfg.validate()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "sk-secret") {
					t.Fatalf("the error shows the variable's value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if changed != (len(tt.env) > 0) {
				t.Errorf("changed = %v", changed)
			}
			tt.check(t, cfg)
		})
	}
}
