package mcpclients

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// inspector runs the MCP Inspector's CLI mode, each call a client session of its own.
type inspector struct {
	bin, home string
	// secrets are hidden in what failures print.
	secrets []string
}

func newInspector(t *testing.T, secrets ...string) *inspector {
	return &inspector{bin: needClient(t, "mcp-inspector"), home: t.TempDir(), secrets: secrets}
}

// call runs the Inspector with args after --cli and returns its result.
func (in *inspector) call(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, t.TempDir(), isolatedEnv(in.home), in.bin, append([]string{"--cli"}, args...)...)
}

// ok runs the Inspector, fails the test unless it exits 0, and returns its stdout: the JSON result.
func (in *inspector) ok(t *testing.T, args ...string) []byte {
	t.Helper()
	res := in.call(t, args...)
	if res.code != 0 {
		t.Fatalf("inspector %s: exit %d\nstdout: %s\nstderr: %s", redact(strings.Join(args, " "), in.secrets...), res.code,
			redact(res.stdout, in.secrets...), redact(res.stderr, in.secrets...))
	}
	return []byte(res.stdout)
}

// toolResult is a tools/call result as the Inspector prints it.
type toolResult struct {
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	StructuredContent json.RawMessage `json:"structuredContent"`
	IsError           bool            `json:"isError"`
}

func (r toolResult) text() string {
	var parts []string
	for _, c := range r.Content {
		parts = append(parts, c.Text)
	}
	return strings.Join(parts, "\n")
}

// tool calls a tool through the Inspector; target is the server part of the command line.
func (in *inspector) tool(t *testing.T, target []string, name string, args ...string) toolResult {
	t.Helper()
	cl := append(slices.Clone(target), "--method", "tools/call", "--tool-name", name)
	for _, a := range args {
		cl = append(cl, "--tool-arg", a)
	}
	r := in.call(t, cl...)
	var res toolResult
	err := json.Unmarshal([]byte(r.stdout), &res)
	// A tool error is an answer too: the Inspector prints it and exits 5.
	if err != nil || (r.code != 0 && !(r.code == toolErrorExit && res.IsError)) {
		t.Fatalf("tools/call %s: exit %d, %v\nstdout: %s\nstderr: %s", name, r.code, err,
			redact(r.stdout, in.secrets...), redact(r.stderr, in.secrets...))
	}
	return res
}

// toolErrorExit is the Inspector CLI's exit code for a tool result with isError set.
const toolErrorExit = 5

type searchOutput struct {
	Hits []struct {
		Link string `json:"link"`
		Text string `json:"text"`
	} `json:"hits"`
}

// checkSearch calls search for the zebra dial and checks that its section comes first, cited.
func checkSearch(t *testing.T, in *inspector, target []string) {
	t.Helper()
	res := in.tool(t, target, "search", "query=zebra dial", "k=3")
	var out searchOutput
	if err := json.Unmarshal(res.StructuredContent, &out); err != nil || res.IsError || len(out.Hits) == 0 {
		t.Fatalf("search: %v %+v", err, res)
	}
	if out.Hits[0].Link != zebraLink(t) || !strings.Contains(out.Hits[0].Text, zebraPassage) {
		t.Errorf("top hit %+v, want %s with %q", out.Hits[0], zebraLink(t), zebraPassage)
	}
	if text := res.text(); !strings.Contains(text, zebraLink(t)) || !strings.Contains(text, zebraPassage) {
		t.Errorf("the text for the model lacks the passage or its citation:\n%s", text)
	}
}

type addSourceOutput struct {
	ID    int64  `json:"id"`
	URL   string `json:"url"`
	Added bool   `json:"added"`
}

type listSourcesOutput struct {
	Sources []struct {
		URL   string `json:"url"`
		Pages int    `json:"pages"`
	} `json:"sources"`
}

func sourcePages(t *testing.T, in *inspector, target []string) map[string]int {
	t.Helper()
	res := in.tool(t, target, "list_sources")
	var out listSourcesOutput
	if err := json.Unmarshal(res.StructuredContent, &out); err != nil || res.IsError {
		t.Fatalf("list_sources: %v %+v", err, res)
	}
	pages := map[string]int{}
	for _, s := range out.Sources {
		pages[s.URL] = s.Pages
	}
	return pages
}

func TestInspectorOverStdio(t *testing.T) {
	t.Parallel()
	in := newInspector(t)
	bin := pantherBin(t)
	db := crawledDB(t)
	readOnly := []string{bin, "--db", db, "mcp"}
	write := []string{bin, "--db", db, "mcp", "--write"}

	t.Run("tools/list", func(t *testing.T) {
		// --strict reports every schema portability problem on stderr, and fails on errors.
		res := in.call(t, append(slices.Clone(readOnly), "--method", "tools/list", "--strict")...)
		if res.code != 0 || strings.TrimSpace(res.stderr) != "" {
			t.Errorf("tools/list --strict: exit %d, stderr:\n%s", res.code, res.stderr)
		}
		if got := toolNames(t, []byte(res.stdout)); !slices.Equal(got, readOnlyTools) {
			t.Errorf("tools %v, want %v", got, readOnlyTools)
		}
		if got := toolNames(t, in.ok(t, append(slices.Clone(write), "--method", "tools/list")...)); !slices.Equal(got, writeTools) {
			t.Errorf("with --write: tools %v, want %v", got, writeTools)
		}
	})

	t.Run("search", func(t *testing.T) { checkSearch(t, in, readOnly) })

	t.Run("read", func(t *testing.T) {
		res := in.tool(t, readOnly, "read", "url="+zebraLink(t))
		if text := res.text(); res.IsError || !strings.Contains(text, zebraPassage) || strings.Contains(text, "hum for three minutes") {
			t.Errorf("read %s: want the zebra dial section alone:\n%s", zebraLink(t), text)
		}
	})

	t.Run("add_source", func(t *testing.T) {
		res := in.tool(t, write, "add_source", "url=https://docs.example.net/manual/")
		var out addSourceOutput
		if err := json.Unmarshal(res.StructuredContent, &out); err != nil || res.IsError || !out.Added || out.URL != "https://docs.example.net/manual/" {
			t.Fatalf("add_source: %v %+v", err, res)
		}
		res = in.tool(t, write, "add_source", "url=file:///etc/")
		if !res.IsError || !strings.Contains(res.text(), "not an http(s) URL") {
			t.Errorf("add_source of a local path: %+v", res)
		}
		pages := sourcePages(t, in, readOnly)
		if p, ok := pages["https://docs.example.net/manual/"]; !ok || p != 0 {
			t.Errorf("sources %v: want the added one, with no pages (it was not crawled)", pages)
		}
		if len(pages) != 2 {
			t.Errorf("sources %v: want the crawled folder and the added site", pages)
		}
	})
}

func TestInspectorOverStreamableHTTP(t *testing.T) {
	t.Parallel()
	needClient(t, "mcp-inspector")
	db := crawledDB(t)
	srv := servePanther(t, db)
	in := newInspector(t, srv.read, srv.write)
	endpoint := srv.url + "/mcp"
	as := func(token string) []string {
		return []string{"--transport", "http", "--server-url", endpoint, "--header", "Authorization: Bearer " + token}
	}

	t.Run("read token", func(t *testing.T) {
		if got := toolNames(t, in.ok(t, append(as(srv.read), "--method", "tools/list")...)); !slices.Equal(got, readOnlyTools) {
			t.Errorf("tools %v, want %v", got, readOnlyTools)
		}
		checkSearch(t, in, as(srv.read))
		// The write tools are not there for it, whatever it calls.
		res := in.call(t, append(as(srv.read), "--method", "tools/call", "--tool-name", "add_source", "--tool-arg", "url=https://read.example.net/")...)
		var tr toolResult
		if res.code == 0 && json.Unmarshal([]byte(res.stdout), &tr) == nil && !tr.IsError {
			t.Errorf("a read token called add_source: %s", res.stdout)
		}
	})

	t.Run("write token", func(t *testing.T) {
		if got := toolNames(t, in.ok(t, append(as(srv.write), "--method", "tools/list")...)); !slices.Equal(got, writeTools) {
			t.Errorf("tools %v, want %v", got, writeTools)
		}
		res := in.tool(t, as(srv.write), "add_source", "url=https://docs.example.net/manual/")
		var out addSourceOutput
		if err := json.Unmarshal(res.StructuredContent, &out); err != nil || res.IsError || !out.Added {
			t.Fatalf("add_source: %v %+v", err, res)
		}
		// Readers see it: one knowledge base behind both.
		pages := sourcePages(t, in, as(srv.read))
		if _, ok := pages["https://docs.example.net/manual/"]; !ok {
			t.Errorf("sources %v: want the added one", pages)
		}
		if _, ok := pages["https://read.example.net/"]; ok {
			t.Errorf("sources %v: the read token's add_source went through", pages)
		}
	})

	for _, tt := range []struct{ name, token string }{{"no token", ""}, {"wrong token", newToken(t)}} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"--transport", "http", "--server-url", endpoint, "--method", "tools/list"}
			if tt.token != "" {
				args = append(args, "--header", "Authorization: Bearer "+tt.token)
			}
			res := in.call(t, args...)
			if res.code == 0 || strings.Contains(res.stdout, `"tools"`) {
				t.Errorf("tools/list without a valid token: exit %d\n%s", res.code, res.stdout)
			}
		})
	}
}
