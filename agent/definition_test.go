package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"panther"
)

const fullDefinition = `---
description: Looks things up.
mode: subagent
model: openai/qwen3
temperature: 0.2
steps: 7
max_tokens: 5000
timeout: 90s
tools:
  "*": false
  kb_search: true
  kb_read: true
permission:
  web_fetch: deny
  kb_read: ask
---

You look things up.
`

func TestParseDefinition(t *testing.T) {
	d, err := ParseDefinition("lookup", []byte(fullDefinition))
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "lookup" || d.Description != "Looks things up." || d.Mode != ModeSubagent || d.Model != "openai/qwen3" ||
		d.Temperature == nil || *d.Temperature != 0.2 || d.Steps != 7 || d.MaxTokens != 5000 || d.Timeout != 90*time.Second ||
		d.Prompt != "You look things up." {
		t.Errorf("definition = %+v", d)
	}
	perms := map[string]Permission{"kb_search": Allow, "kb_read": Ask, "web_fetch": Deny, "crawl": Deny, "task": Deny}
	for tool, want := range perms {
		if got := d.PermissionFor(tool); got != want {
			t.Errorf("PermissionFor(%s) = %s, want %s", tool, got, want)
		}
	}

	minimal, err := ParseDefinition("m", []byte("---\r\ndescription: d\r\nmaxSteps: 3\r\n---\r\nPrompt.\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if minimal.Mode != ModeAll || minimal.Steps != 3 || minimal.Temperature != nil || minimal.PermissionFor("anything") != Allow || minimal.Prompt != "Prompt." {
		t.Errorf("minimal definition = %+v", minimal)
	}
}

func TestParseDefinitionErrors(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string // substrings of the error
	}{
		{"unknown key", "---\ndescription: d\ncolour: red\n---\np", []string{"x.md:3:", `unknown key "colour"`, "description, mode"}},
		{"unknown key after a block", "---\ndescription: d\ntools:\n  a: true\n  b: false\nmaxsteps: 3\n---\np", []string{"x.md:6:", `"maxsteps"`}},
		{"temperature out of range", "---\ndescription: d\ntemperature: 7\n---\np", []string{"x.md:3:", "temperature", "from 0 to 2"}},
		{"temperature not a number", "---\ndescription: d\ntemperature: warm\n---\np", []string{"x.md:3:", "temperature", `"warm"`}},
		{"bad mode", "---\ndescription: d\nmode: boss\n---\np", []string{"x.md:3:", "mode", `"boss"`, "primary, subagent or all"}},
		{"bad permission", "---\ndescription: d\npermission:\n  crawl: allow\n  web_fetch: maybe\n---\np", []string{"x.md:5:", "permission.web_fetch", "allow, deny or ask", `"maybe"`}},
		{"nested permission", "---\ndescription: d\npermission:\n  bash:\n    \"git *\": allow\n---\np", []string{"x.md:4:", "permission.bash", "allow, deny or ask"}},
		{"tool not a bool", "---\ndescription: d\ntools:\n  crawl: sometimes\n---\np", []string{"x.md:4:", "tools.crawl", "true or false"}},
		{"bad tool name", "---\ndescription: d\ntools:\n  \"web fetch\": true\n---\np", []string{"x.md:4:", "not a tool name"}},
		{"tools not a mapping", "---\ndescription: d\ntools: [kb_search]\n---\np", []string{"x.md:3:", "tools", "mapping"}},
		{"steps zero", "---\ndescription: d\nsteps: 0\n---\np", []string{"x.md:3:", "steps", "from 1 to"}},
		{"steps and maxSteps", "---\ndescription: d\nsteps: 2\nmaxSteps: 3\n---\np", []string{"x.md:4:", "steps and maxSteps"}},
		{"bad timeout", "---\ndescription: d\ntimeout: soon\n---\np", []string{"x.md:3:", "timeout", "90s"}},
		{"bad max_tokens", "---\ndescription: d\nmax_tokens: -5\n---\np", []string{"x.md:3:", "max_tokens"}},
		{"model without provider", "---\ndescription: d\nmodel: qwen3\n---\np", []string{"x.md:3:", "model", "provider/model"}},
		{"duplicate key", "---\ndescription: d\nmode: all\nmode: primary\n---\np", []string{"x.md:4:", "twice", "line 3"}},
		{"missing description", "---\nmode: all\n---\np", []string{"x.md", "description is required"}},
		{"empty description", "---\ndescription: \"  \"\n---\np", []string{"x.md:2:", "description", "empty"}},
		{"description a list", "---\ndescription: [a, b]\n---\np", []string{"x.md:2:", "description", "list"}},
		{"no front matter", "You answer.\n", []string{"x.md:1:", "no front matter"}},
		{"unterminated", "---\ndescription: d\nYou answer.\n", []string{"x.md:1:", "not closed"}},
		{"empty front matter", "---\n---\nYou answer.", []string{"x.md", "description is required"}},
		{"front matter a list", "---\n- a\n- b\n---\np", []string{"x.md:2:", "mapping"}},
		{"bad yaml", "---\ndescription: d\nmode: [a\n---\np", []string{"x.md", "not valid YAML", "line"}},
		{"alias", "---\ndescription: &x d\nmodel: *x\n---\np", []string{"x.md:3:", "alias"}},
		{"no prompt", "---\ndescription: d\n---\n\n  \n", []string{"x.md", "no system prompt"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDefinition("x", []byte(tc.src))
			if err == nil {
				t.Fatal("parsed; want an error")
			}
			if !errors.Is(err, panther.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to contain %q", err, w)
				}
			}
		})
	}
	if _, err := ParseDefinition("../etc", []byte("---\ndescription: d\n---\np")); err == nil {
		t.Error("a name with a slash parsed")
	}
}

func TestBuiltinDefinitions(t *testing.T) {
	defs, err := BuiltinDefinitions()
	if err != nil {
		t.Fatal(err)
	}
	g, r := defs["general"], defs["researcher"]
	// The general prompt as panther ask used it.
	const generalSystem = `You answer questions about the documentation in a knowledge base. Search it with kb_search ` +
		`(several searches with different words when the first finds little), read whole sections with kb_read ` +
		`when a passage is cut, and answer concisely from what you found.`
	if !strings.HasPrefix(g.Prompt, generalSystem) || g.Source != "built-in:general.md" {
		t.Errorf("general = %+v", g)
	}
	if !r.CanBeSubagent() || !g.CanBePrimary() || r.Description == "" {
		t.Errorf("modes: general %q, researcher %q", g.Mode, r.Mode)
	}
	want := map[string][2]Permission{ // general, researcher
		"kb_search": {Allow, Allow},
		"kb_read":   {Allow, Allow},
		"task":      {Allow, Allow},
		"web_fetch": {Deny, Allow},
		"crawl":     {Deny, Allow},
		"shell":     {Deny, Deny}, // anything not named
	}
	for tool, w := range want {
		if got := g.PermissionFor(tool); got != w[0] {
			t.Errorf("general %s: %s, want %s", tool, got, w[0])
		}
		if got := r.PermissionFor(tool); got != w[1] {
			t.Errorf("researcher %s: %s, want %s", tool, got, w[1])
		}
	}
}

func TestLoadDefinitions(t *testing.T) {
	user, project := t.TempDir(), t.TempDir()
	write := func(dir, name, src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(user, "general.md", "---\ndescription: user general\n---\nUser prompt.")
	write(user, "helper.md", "---\ndescription: user helper\nmode: subagent\n---\nHelp.")
	write(user, "notes.txt", "not a definition")
	write(project, "general.md", "---\ndescription: project general\n---\nProject prompt.")

	defs, err := LoadDefinitions(user, filepath.Join(t.TempDir(), "missing"), project)
	if err != nil {
		t.Fatal(err)
	}
	if d := defs["general"]; d.Description != "project general" || d.Source != filepath.Join(project, "general.md") {
		t.Errorf("general = %+v, want the project's", d)
	}
	if d := defs["helper"]; d.Description != "user helper" || d.Mode != ModeSubagent {
		t.Errorf("helper = %+v", d)
	}
	if _, ok := defs["researcher"]; !ok || len(defs) != 3 {
		t.Errorf("definitions: %d, want general, helper, researcher", len(defs))
	}

	write(project, "broken.md", "---\ndescription: d\nmode: boss\n---\np")
	_, err = LoadDefinitions(user, project)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(project, "broken.md")+":3:") {
		t.Errorf("err = %v, want it to name broken.md and its line", err)
	}

	big := t.TempDir()
	write(big, "big.md", "---\ndescription: d\n---\n"+strings.Repeat("x", maxDefinitionBytes))
	if _, err := LoadDefinitions(big); err == nil || !strings.Contains(err.Error(), "big.md") {
		t.Errorf("err = %v, want a too-big file named", err)
	}
}

func FuzzParseDefinition(f *testing.F) {
	f.Add([]byte(fullDefinition))
	f.Add([]byte("---\ndescription: d\n---\np"))
	f.Fuzz(func(t *testing.T, src []byte) {
		d, err := ParseDefinition("fuzz", src)
		if err != nil {
			if !errors.Is(err, panther.ErrInvalid) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		if d.Description == "" || d.Prompt == "" || (d.Mode != ModePrimary && d.Mode != ModeSubagent && d.Mode != ModeAll) {
			t.Fatalf("accepted an incomplete definition: %+v", d)
		}
		if d.Temperature != nil && (*d.Temperature < 0 || *d.Temperature > MaxTemperature) {
			t.Fatalf("temperature %v accepted", *d.Temperature)
		}
		if d.Steps < 0 || d.Steps > MaxDefSteps || d.MaxTokens < 0 || d.Timeout < 0 || d.Timeout > MaxDefTimeout {
			t.Fatalf("budget out of range accepted: %+v", d)
		}
		for _, p := range d.Permission {
			if p != Allow && p != Deny && p != Ask {
				t.Fatalf("permission %q accepted", p)
			}
		}
	})
}
