package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// mcpProcess is `panther mcp` running as a separate process, spoken to over its stdin and stdout
// the way an MCP client does: one JSON-RPC message per line.
type mcpProcess struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr bytes.Buffer
	lines  []string // every line read from stdout
	nextID int
}

func startMCP(t *testing.T, bin string, args ...string) *mcpProcess {
	t.Helper()
	p := &mcpProcess{t: t, cmd: exec.Command(bin, args...)}
	p.cmd.Env = []string{"HOME=" + t.TempDir()}
	p.cmd.Stderr = &p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdout = bufio.NewReader(out)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	p.call("initialize", map[string]any{"protocolVersion": "2025-06-18", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "test", "version": "0"}})
	p.send(map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"})
	return p
}

func (p *mcpProcess) send(msg map[string]any) {
	p.t.Helper()
	b, err := json.Marshal(msg)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		p.t.Fatalf("write to panther mcp: %v (stderr: %s)", err, p.stderr.String())
	}
}

// call sends a request and returns its result, skipping the notifications that come before it.
func (p *mcpProcess) call(method string, params any) json.RawMessage {
	p.t.Helper()
	p.nextID++
	id := p.nextID
	p.send(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	for {
		line, err := p.stdout.ReadString('\n')
		if err != nil {
			p.t.Fatalf("%s: read from panther mcp: %v (stderr: %s)", method, err, p.stderr.String())
		}
		p.lines = append(p.lines, line)
		var resp struct {
			ID     *int            `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &resp); err != nil {
			p.t.Fatalf("%s: stdout line is not JSON: %v: %q", method, err, line)
		}
		if resp.ID == nil || *resp.ID != id {
			continue
		}
		if resp.Error != nil {
			p.t.Fatalf("%s: protocol error %s", method, resp.Error)
		}
		return resp.Result
	}
}

type toolResult struct {
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	StructuredContent json.RawMessage `json:"structuredContent"`
	IsError           bool            `json:"isError"`
}

func (p *mcpProcess) tool(name string, args map[string]any) toolResult {
	p.t.Helper()
	var res toolResult
	if err := json.Unmarshal(p.call("tools/call", map[string]any{"name": name, "arguments": args}), &res); err != nil {
		p.t.Fatal(err)
	}
	return res
}

func (p *mcpProcess) toolNames() []string {
	p.t.Helper()
	var res struct{ Tools []struct{ Name string } }
	if err := json.Unmarshal(p.call("tools/list", map[string]any{}), &res); err != nil {
		p.t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

// close closes stdin, as a client does when it is done, and checks that the server exits 0 having
// written nothing but JSON-RPC messages on stdout.
func (p *mcpProcess) close() {
	p.t.Helper()
	p.stdin.Close()
	rest, err := io.ReadAll(p.stdout)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		p.t.Errorf("panther mcp did not exit cleanly when stdin closed: %v (stderr: %s)", err, p.stderr.String())
	}
	lines := append(p.lines, strings.SplitAfter(string(rest), "\n")...)
	for _, line := range lines {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var msg struct {
			JSONRPC string `json:"jsonrpc"`
		}
		if err := json.Unmarshal([]byte(line), &msg); err != nil || msg.JSONRPC != "2.0" {
			p.t.Errorf("stdout has a line that is not a JSON-RPC message: %q", line)
		}
	}
}

func TestMCPOverStdio(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildPanther(t)
	var requests atomic.Int64
	files := http.FileServer(http.Dir(copySite(t)))
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		files.ServeHTTP(w, r)
	}))
	defer site.Close()
	dir := t.TempDir()
	db := filepath.Join(dir, "kb.db")
	allowLoopback := filepath.Join(dir, "allow.toml")
	if err := os.WriteFile(allowLoopback, []byte("[web]\nallow = [\"127.0.0.1\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noAllow := filepath.Join(dir, "default.toml")
	if err := os.WriteFile(noAllow, []byte("# defaults\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	installReqs := site.URL + "/guide/install.html#INSTALL-REQUIREMENTS"

	t.Run("crawl is refused loopback addresses by default", func(t *testing.T) {
		p := startMCP(t, bin, "--db", filepath.Join(dir, "refused.db"), "--config", noAllow, "mcp", "--write")
		res := p.tool("crawl", map[string]any{"url": site.URL + "/index.html", "max_pages": 10})
		if n := requests.Load(); n != 0 || !strings.Contains(res.Content[0].Text, "Nothing was added") {
			t.Errorf("a crawl reached a loopback address without [web] allow (%d requests): %s", n, res.Content[0].Text)
		}
		p.close()
	})

	t.Run("crawl with write access", func(t *testing.T) {
		p := startMCP(t, bin, "--db", db, "--config", allowLoopback, "mcp", "--write")
		if got := p.toolNames(); !slices.Equal(got, []string{"add_source", "crawl", "list_sources", "read", "search"}) {
			t.Errorf("tools %v", got)
		}
		res := p.tool("crawl", map[string]any{"url": site.URL + "/index.html", "max_pages": 10})
		var out struct{ Fetched, New int }
		if err := json.Unmarshal(res.StructuredContent, &out); err != nil || res.IsError || out.New != 3 {
			t.Fatalf("crawl: %+v %v: %s", out, err, res.Content[0].Text)
		}
		p.close()
	})

	t.Run("read-only session", func(t *testing.T) {
		p := startMCP(t, bin, "--db", db, "mcp")
		if got := p.toolNames(); !slices.Equal(got, []string{"list_sources", "read", "search"}) {
			t.Errorf("tools %v, want no crawl without --write", got)
		}
		res := p.tool("search", map[string]any{"query": "zebra-striped quantum gizmo", "k": 3})
		var out struct {
			Hits []struct{ Link, Heading string }
		}
		if err := json.Unmarshal(res.StructuredContent, &out); err != nil || res.IsError || len(out.Hits) == 0 {
			t.Fatalf("search: %v %+v %+v", err, res, out)
		}
		if out.Hits[0].Link != installReqs || !strings.Contains(res.Content[0].Text, installReqs) {
			t.Errorf("search: top hit %+v, want %s; text:\n%s", out.Hits[0], installReqs, res.Content[0].Text)
		}
		res = p.tool("read", map[string]any{"url": installReqs})
		if text := res.Content[0].Text; res.IsError || !strings.Contains(text, "zebra-striped") || strings.Contains(text, "Download the tarball") {
			t.Errorf("read %s: want just the Requirements section:\n%s", installReqs, text)
		}
		res = p.tool("read", map[string]any{"url": site.URL + "/nope.html"})
		if !res.IsError || !strings.Contains(res.Content[0].Text, "not in the knowledge base") {
			t.Errorf("read of an unknown page: %+v", res)
		}
		var resources struct{ Resources []struct{ URI string } }
		if err := json.Unmarshal(p.call("resources/list", map[string]any{}), &resources); err != nil || len(resources.Resources) != 3 {
			t.Errorf("resources/list: %v %+v", err, resources)
		}
		p.close()
		if p.stderr.Len() > 0 {
			t.Errorf("a clean session logged on stderr: %s", p.stderr.String())
		}
	})
}

func TestMCPAskRunsTheGeneralAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildPanther(t)
	c, _ := crawledCLI(t)
	model := &fakeModel{script: func(req chatRequest) reply {
		if req.Messages[len(req.Messages)-1].Role == "user" {
			return reply{calls: [][2]string{{"kb_search", `{"query":"zebra-striped quantum gizmo"}`}}}
		}
		return reply{text: "A zebra-striped quantum gizmo [1]."}
	}}
	srv := httptest.NewServer(model)
	defer srv.Close()
	// The subprocess does not inherit the test's environment: the key comes from a file.
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("sk-never-shown\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withModel(t, c, srv.URL, "")
	cfg, err := os.ReadFile(c.env["PANTHER_CONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), "env:FAKE_KEY", "file:"+keyFile, 1))
	if err := os.WriteFile(c.env["PANTHER_CONFIG"], cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startMCP(t, bin, "--db", c.env["PANTHER_DB"], "--config", c.env["PANTHER_CONFIG"], "mcp")
	if got := p.toolNames(); !slices.Contains(got, "ask") {
		t.Fatalf("tools %v: want ask with a model configured", got)
	}
	res := p.tool("ask", map[string]any{"question": "what does the widget server need?"})
	if res.IsError || !strings.Contains(res.Content[0].Text, "gizmo [1]") || !strings.Contains(res.Content[0].Text, "#INSTALL-REQUIREMENTS") {
		t.Fatalf("ask: %+v", res)
	}
	p.close()
	var list struct{ Sessions []struct{ Agent string } }
	c.mustJSON(&list, "sessions", "list", "--json")
	if len(list.Sessions) != 1 || list.Sessions[0].Agent != "general" {
		t.Errorf("the MCP ask was not kept as a session: %+v", list.Sessions)
	}
}

func TestMCPCommandUsage(t *testing.T) {
	c := newCLI(t)
	code, out, errOut := c.run("mcp", "extra")
	if code != exitUsage || out != "" || !strings.Contains(errOut, "no arguments") {
		t.Errorf("panther mcp extra: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = c.run("mcp", "--help")
	if code != 0 || !strings.Contains(out, "--write") {
		t.Errorf("panther mcp --help: exit %d\n%s", code, out)
	}
}
