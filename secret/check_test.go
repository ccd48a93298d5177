package secret

import (
	"fmt"
	"path/filepath"
	"testing"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good", minimaxKey, 0o600)
	open := writeFile(t, dir, "open", zaiURL, 0o644)
	env := map[string]string{"MINIMAX": minimaxKey}
	r := Resolver{
		Getenv:    func(k string) string { return env[k] },
		OPMap:     map[string]string{"op://pantherOS/zai-coding-plan-api/default/baseUrl": open},
		OPCommand: filepath.Join(dir, "no-op"),
	}
	got := r.Check(map[string]string{
		"models.minimax.api_key": "env:MINIMAX",
		"models.zai.base_url":    "op://pantherOS/zai-coding-plan-api/default/baseUrl",
		"embed.api_key":          "file:" + good,
		"tailscale.auth_key":     "op://pantherOS/tailscale-auth-key/authKey",
		"postgres.password":      "env:PG_PASSWORD",
		"literal.key":            tailscaleKey,
		"unset.key":              "",
	})
	want := []CheckResult{
		{Setting: "embed.api_key", Reference: "file:" + good, OK: true, Source: "file"},
		{Setting: "literal.key", Reference: "(literal value)", OK: true, Source: "literal"},
		{Setting: "models.minimax.api_key", Reference: "env:MINIMAX", OK: true, Source: "env"},
		{Setting: "models.zai.base_url", Reference: "op://pantherOS/zai-coding-plan-api/default/baseUrl", OK: true, Source: "file",
			Warnings: []string{fmt.Sprintf("secret file %s is readable by group or others (mode 0644); make it 0600", open)}},
		{Setting: "postgres.password", Reference: "env:PG_PASSWORD", Problem: "the environment variable PG_PASSWORD is unset or empty"},
		{Setting: "tailscale.auth_key", Reference: "op://pantherOS/tailscale-auth-key/authKey",
			Problem: "no mapping; no $CREDENTIALS_DIRECTORY; op CLI " + filepath.Join(dir, "no-op") + " not found; Connect not configured"},
		{Setting: "unset.key", Reference: "(empty)", Problem: "no value or reference set"},
	}
	assertNoSecret(t, "the check results", fmt.Sprintf("%+v", got))
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("Check =\n%+v\nwant\n%+v", got, want)
	}
}
