package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"panther"
	"panther/sqlite"
)

// lockedBuffer collects the server's log lines, written from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const serveToken = "serve-test-token-0123456789abcdef"

// runningServer is `panther serve` running in-process.
type runningServer struct {
	t      *testing.T
	url    string
	logs   *lockedBuffer
	stop   context.CancelFunc
	result chan error
}

// startServe runs serve for c's environment on a free loopback port until the test stops it.
func startServe(t *testing.T, c *cli) *runningServer {
	t.Helper()
	logs := &lockedBuffer{}
	a := &app{stdout: io.Discard, stderr: logs, getenv: func(k string) string { return c.env[k] }}
	ctx, cancel := context.WithCancel(context.Background())
	s := &runningServer{t: t, logs: logs, stop: cancel, result: make(chan error, 1)}
	listening := make(chan string, 1)
	go func() {
		s.result <- a.serve(ctx, serveFlags{addr: "127.0.0.1:0"}, func(addr net.Addr) { listening <- "http://" + addr.String() })
	}()
	select {
	case s.url = <-listening:
	case err := <-s.result:
		t.Fatalf("serve: %v\n%s", err, logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not start\n%s", logs.String())
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.result:
		case <-time.After(40 * time.Second):
			t.Error("serve did not stop")
		}
	})
	return s
}

// shutdown stops the server as SIGTERM does and returns what serve returned.
func (s *runningServer) shutdown() error {
	s.stop()
	select {
	case err := <-s.result:
		s.result <- err
		return err
	case <-time.After(40 * time.Second):
		s.t.Fatal("serve did not stop")
		return nil
	}
}

func (s *runningServer) do(method, path string, body any, token string) (int, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// events reads an event stream to its end and returns each event's type and data.
func (s *runningServer) events(path, token string) (kinds []string, data []string) {
	s.t.Helper()
	req, _ := http.NewRequest("GET", s.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		s.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if k, ok := strings.CutPrefix(line, "event: "); ok {
			kinds = append(kinds, k)
		}
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			data = append(data, d)
		}
	}
	return kinds, data
}

// slowModel is the fake model, except that prompts with "slow" in them wait until the caller gives
// up; arrived hears of each such request.
type slowModel struct {
	fake    *fakeModel
	arrived chan struct{}
}

func (m *slowModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if bytes.Contains(body, []byte("slow")) {
		m.arrived <- struct{}{}
		<-r.Context().Done()
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	m.fake.ServeHTTP(w, r)
}

func TestServeEndToEnd(t *testing.T) {
	docs := httptest.NewServer(http.FileServer(http.Dir(copySite(t))))
	defer docs.Close()
	model := &slowModel{arrived: make(chan struct{}, 4), fake: &fakeModel{script: func(req chatRequest) reply {
		if req.Messages[len(req.Messages)-1].Role == "user" {
			return reply{calls: [][2]string{{"kb_search", `{"query":"zebra-striped quantum gizmo"}`}}}
		}
		return reply{text: "It needs a zebra-striped quantum gizmo [1]."}
	}}}
	modelSrv := httptest.NewServer(model)
	defer modelSrv.Close()
	c := newCLI(t)
	withModel(t, c, modelSrv.URL, "\n[web]\nallow = [\"127.0.0.1\"]\n\n[server]\n[[server.tokens]]\nname = \"tester\"\ntoken = \"env:PANTHER_TEST_TOKEN\"\nscopes = [\"read\", \"write\"]\n")
	c.env["PANTHER_TEST_TOKEN"] = serveToken
	s := startServe(t, c)

	if code, b := s.do("GET", "/v1/status", nil, ""); code != 401 {
		t.Errorf("status without a token: %d %s", code, b)
	}
	if code, _ := s.do("GET", "/healthz", nil, ""); code != 200 {
		t.Errorf("healthz: %d", code)
	}
	// A source crawled in the background, followed over server-sent events.
	code, b := s.do("POST", "/v1/sources", map[string]any{"url": docs.URL + "/index.html", "crawl": true}, serveToken)
	var created struct {
		Job struct{ ID string } `json:"job"`
	}
	if err := json.Unmarshal(b, &created); code != 201 || err != nil || created.Job.ID == "" {
		t.Fatalf("POST /v1/sources: %d %s", code, b)
	}
	kinds, data := s.events("/v1/crawls/"+created.Job.ID+"/events", serveToken)
	if len(kinds) == 0 || kinds[len(kinds)-1] != "done" || !strings.Contains(data[len(data)-1], `"state":"done"`) || !strings.Contains(data[len(data)-1], `"new":3`) {
		t.Fatalf("crawl events %v, last %s", kinds, data[len(data)-1])
	}
	code, b = s.do("GET", "/v1/search?q=zebra-striped+gizmo", nil, serveToken)
	if code != 200 || !strings.Contains(string(b), "#INSTALL-REQUIREMENTS") && !strings.Contains(string(b), `"anchor":"INSTALL-REQUIREMENTS"`) {
		t.Errorf("search after the crawl: %d %s", code, b)
	}

	// A session answered with streamed text and a done event carrying the citation.
	code, b = s.do("POST", "/v1/sessions", map[string]any{"prompt": "what does the widget server need?"}, serveToken)
	var started struct {
		Session panther.Session `json:"session"`
	}
	if err := json.Unmarshal(b, &started); code != 202 || err != nil {
		t.Fatalf("POST /v1/sessions: %d %s", code, b)
	}
	kinds, data = s.events("/v1/sessions/"+started.Session.ID+"/events", serveToken)
	text := ""
	for i, k := range kinds {
		if k == "text" {
			var e struct{ Text string }
			json.Unmarshal([]byte(data[i]), &e)
			text += e.Text
		}
	}
	if text != "It needs a zebra-striped quantum gizmo [1]." || kinds[len(kinds)-1] != "done" || !strings.Contains(data[len(data)-1], "INSTALL-REQUIREMENTS") {
		t.Errorf("session events %v, text %q, done %s", kinds, text, data[len(data)-1])
	}

	// The web interface at /, the MCP server at /mcp behind the token.
	if code, b := s.do("GET", "/", nil, ""); code != 200 || !strings.Contains(strings.ToLower(string(b)), "<html") {
		t.Errorf("GET /: %d %.200s", code, b)
	}
	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}`
	for _, tok := range []string{"", serveToken} {
		req, _ := http.NewRequest("POST", s.url+"/mcp", strings.NewReader(initialize))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case tok == "" && resp.StatusCode != 401:
			t.Errorf("MCP without a token: %d %s", resp.StatusCode, b)
		case tok != "" && (resp.StatusCode != 200 || !strings.Contains(string(b), "serverInfo")):
			t.Errorf("MCP initialize: %d %s", resp.StatusCode, b)
		}
	}

	// A session still running when the server is told to stop is saved as cancelled.
	code, b = s.do("POST", "/v1/sessions", map[string]any{"prompt": "a slow question"}, serveToken)
	if err := json.Unmarshal(b, &started); code != 202 || err != nil {
		t.Fatalf("POST /v1/sessions: %d %s", code, b)
	}
	<-model.arrived
	if code, b := s.do("GET", "/v1/status", nil, serveToken); code != 200 || !strings.Contains(string(b), started.Session.ID) {
		t.Errorf("status does not show the running session: %d %s", code, b)
	}
	if err := s.shutdown(); err != nil {
		t.Fatalf("graceful shutdown: %v\n%s", err, s.logs.String())
	}
	db, err := sqlite.Open(context.Background(), c.env["PANTHER_DB"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sess, err := db.Session(context.Background(), started.Session.ID)
	if err != nil || sess.Status != panther.SessionCancelled {
		t.Errorf("the session running at shutdown: %+v, %v; want it saved as cancelled", sess, err)
	}
	if msgs, err := db.SessionMessages(context.Background(), sess.ID); err != nil || len(msgs) == 0 || msgs[0].Content != "a slow question" {
		t.Errorf("its messages: %+v, %v", msgs, err)
	}
	logs := s.logs.String()
	if strings.Contains(logs, serveToken) {
		t.Error("the log shows the token")
	}
	for _, want := range []string{"panther serve listening", "caller=tester", "panther serve stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q:\n%s", want, logs)
		}
	}
}

func TestServeRefusesUnsafeSetups(t *testing.T) {
	tests := []struct {
		name   string
		config string
		env    map[string]string
		args   []string
		code   int
		want   string
	}{
		{"an open API on all interfaces", "", nil, []string{"serve", "--addr", "0.0.0.0:0"}, 2, "refusing to listen on 0.0.0.0:0 without API tokens"},
		{"an open API on every address", "", nil, []string{"serve", "--addr", ":0"}, 2, "server.tokens"},
		{"an open API on a LAN address", "[server]\naddr = \"192.168.1.10:7777\"\n", nil, []string{"serve"}, 2, "refusing"},
		{"a bad address", "", nil, []string{"serve", "--addr", "nonsense"}, 2, "host:port"},
		{"a token written in the file", "[[server.tokens]]\nname = \"a\"\ntoken = \"literal-token-0123456789\"\nscopes = [\"read\"]\n", nil, []string{"serve"}, 2, "must be a reference"},
		{"a token without scopes", "[[server.tokens]]\nname = \"a\"\ntoken = \"env:T\"\n", nil, []string{"serve"}, 2, "scopes are missing"},
		{"an unknown scope", "[[server.tokens]]\nname = \"a\"\ntoken = \"env:T\"\nscopes = [\"root\"]\n", nil, []string{"serve"}, 2, "root"},
		{"two tokens of one name", "[[server.tokens]]\nname = \"a\"\ntoken = \"env:T\"\nscopes = [\"read\"]\n[[server.tokens]]\nname = \"a\"\ntoken = \"env:U\"\nscopes = [\"read\"]\n", nil, []string{"serve"}, 2, "another token"},
		{"an unknown key", "[server]\nport = 7777\n", nil, []string{"serve"}, 2, "server.port"},
		{"an unset token", "[[server.tokens]]\nname = \"a\"\ntoken = \"env:PANTHER_UNSET\"\nscopes = [\"read\"]\n", nil, []string{"serve", "--addr", "0.0.0.0:0"}, 1, "PANTHER_UNSET"},
		{"a short token", "[[server.tokens]]\nname = \"a\"\ntoken = \"env:T\"\nscopes = [\"read\"]\n", map[string]string{"T": "short-secret"}, []string{"serve"}, 2, "shorter than 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t)
			cfg := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(cfg, []byte(tt.config), 0o600); err != nil {
				t.Fatal(err)
			}
			c.env["PANTHER_CONFIG"] = cfg
			for k, v := range tt.env {
				c.env[k] = v
			}
			code, _, errOut := c.run(tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d mentioning %q", code, errOut, tt.code, tt.want)
			}
			if strings.Contains(errOut, "short-secret") {
				t.Errorf("the error shows the token: %q", errOut)
			}
		})
	}
}

func TestServeWithTokensMayListenOnAllInterfaces(t *testing.T) {
	c := newCLI(t)
	cfg := filepath.Join(t.TempDir(), "config.toml")
	src := "[server]\naddr = \"0.0.0.0:0\"\n[[server.tokens]]\nname = \"ops\"\ntoken = \"env:T\"\nscopes = [\"admin\"]\n"
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c.env["PANTHER_CONFIG"] = cfg
	c.env["T"] = serveToken
	logs := &lockedBuffer{}
	a := &app{stdout: io.Discard, stderr: logs, getenv: func(k string) string { return c.env[k] }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	addr := make(chan net.Addr, 1)
	go func() { done <- a.serve(ctx, serveFlags{}, func(x net.Addr) { addr <- x }) }()
	select {
	case x := <-addr:
		_, port, _ := net.SplitHostPort(x.String())
		req, _ := http.NewRequest("GET", "http://127.0.0.1:"+port+"/v1/sources", nil)
		req.Header.Set("Authorization", "Bearer "+serveToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("GET /v1/sources with the admin token: %v %v", resp, err)
		}
		resp.Body.Close()
	case err := <-done:
		t.Fatalf("serve: %v\n%s", err, logs.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve stopped with %v", err)
	}
}

func TestServeEmbedsInTheBackground(t *testing.T) {
	c, _ := crawledCLI(t)
	// The pages were crawled without an embedder; serving with one embeds them in the background.
	c.env["PANTHER_EMBEDDER"] = "builtin"
	s := startServe(t, c)
	type status struct {
		Embedder struct {
			Model            string `json:"model"`
			Vectors          int    `json:"vectors"`
			SearchableChunks int    `json:"searchable_chunks"`
			Backfill         *struct {
				Running  bool   `json:"running"`
				Done     int    `json:"done"`
				Total    int    `json:"total"`
				Embedded int    `json:"embedded"`
				Error    string `json:"error"`
			} `json:"backfill"`
		} `json:"embedder"`
	}
	var st status
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, b := s.do("GET", "/v1/status", nil, "")
		if err := json.Unmarshal(b, &st); code != 200 || err != nil {
			t.Fatalf("status: %d %s", code, b)
		}
		if bf := st.Embedder.Backfill; bf != nil && !bf.Running && bf.Total > 0 && bf.Done == bf.Total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the background embedding did not finish: %+v %+v", st.Embedder, st.Embedder.Backfill)
		}
		time.Sleep(20 * time.Millisecond)
	}
	bf := st.Embedder.Backfill
	if !strings.HasPrefix(st.Embedder.Model, "builtin:") || bf.Embedded != bf.Total || bf.Error != "" {
		t.Errorf("embedder %+v, backfill %+v", st.Embedder, bf)
	}
	code, b := s.do("GET", "/v1/search?q=gizmo&mode=vector", nil, "")
	if code != 200 || !strings.Contains(string(b), `"found":"vector"`) {
		t.Errorf("vector search after the background embedding: %d %s", code, b)
	}
}

func TestServeSSHInterface(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(keys, gossh.MarshalAuthorizedKey(signer.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sshAddr := free.Addr().String()
	free.Close()
	cfg := filepath.Join(dir, "config.toml")
	src := fmt.Sprintf("[ssh]\naddr = %q\nauthorized_keys = %q\n", sshAddr, keys)
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c.env["PANTHER_CONFIG"] = cfg
	s := startServe(t, c)

	dial := func(signer gossh.Signer) error {
		var conn *gossh.Client
		var err error
		// The SSH listener starts just after the HTTP one.
		for range 50 {
			conn, err = gossh.Dial("tcp", sshAddr, &gossh.ClientConfig{
				User: "owner", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
				HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second,
			})
			var opErr *net.OpError
			if err == nil || !errors.As(err, &opErr) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			return err
		}
		return conn.Close()
	}
	if err := dial(signer); err != nil {
		t.Errorf("the authorized key was refused: %v", err)
	}
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := gossh.NewSignerFromKey(otherPriv)
	if err := dial(other); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("an unknown key: %v, want refused at the handshake", err)
	}
	if err := s.shutdown(); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(c.env["PANTHER_DB"]), "ssh_host_ed25519_key")); err != nil {
		t.Errorf("no host key next to the database: %v", err)
	}
}
