package sshui

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	gossh "golang.org/x/crypto/ssh"

	"panther"
	"panther/agent"
	"panther/kb"
	"panther/llm"
	"panther/sqlite"
)

// A real knowledge base over a real sqlite store, as agent/fake_test.go builds it.

const (
	indexesURL = "https://docs.example.org/indexes.html"
	vacuumURL  = "https://docs.example.org/vacuum.html"
	backupURL  = "https://docs.example.org/backup.html"
)

var fetched = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

type testKB struct {
	*kb.Service
	db *sqlite.DB
}

type pageSpec struct {
	url, title string
	sections   []panther.Section
}

func openKB(t *testing.T, extra ...pageSpec) testKB {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := kb.New(db, kb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pages := append([]pageSpec{
		{indexesURL, "Indexes", []panther.Section{
			{Heading: []string{"Indexes"}, Level: 1, Anchor: "indexes", Markdown: "# Indexes\n\nIndexes speed up queries on large tables."},
			{Heading: []string{"Indexes", "Partial Indexes"}, Level: 2, Anchor: "partial-indexes", Markdown: "## Partial Indexes\n\nA partial index is built over a subset of a table, the rows that satisfy its WHERE predicate. " +
				"Such an index is smaller than a full one, and cheaper to keep up to date, because rows outside the predicate are never written to it."},
		}},
		{vacuumURL, "VACUUM", []panther.Section{
			{Heading: []string{"VACUUM"}, Level: 1, Anchor: "vacuum", Markdown: "# VACUUM\n\nVACUUM reclaims storage occupied by dead tuples."},
		}},
		{backupURL, "Backup", []panther.Section{
			{Heading: []string{"Backup"}, Level: 1, Anchor: "backup", Markdown: "# Backup\n\npg_dump writes a consistent snapshot of one database."},
		}},
	}, extra...)
	for i, p := range pages {
		var md []string
		for _, s := range p.sections {
			md = append(md, s.Markdown)
		}
		doc := panther.Document{URL: p.url, Title: p.title, Markdown: strings.Join(md, "\n\n"),
			Validators: panther.Validators{ContentHash: fmt.Sprintf("hash-%d", i)}, FetchedAt: fetched}
		if _, err := svc.Ingest(ctx, doc, p.sections); err != nil {
			t.Fatal(err)
		}
	}
	return testKB{Service: svc, db: db}
}

// A fake model at the HTTP level, speaking the OpenAI chat-completions wire format, with the real
// llm.OpenAI client in front of it (the pattern of agent/fake_test.go).

type call struct{ ID, Name, Args string }

type turn struct {
	Text  string
	Calls []call
	// Hold keeps the response open, after the text, until the client goes away.
	Hold bool
}

type wireRequest struct {
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	Messages []struct {
		Role       string  `json:"role"`
		Content    *string `json:"content"`
		ToolCallID string  `json:"tool_call_id"`
	} `json:"messages"`
}

// toolText is every tool result of the request, joined.
func (r wireRequest) toolText() string {
	var b strings.Builder
	for _, m := range r.Messages {
		if m.Role == "tool" && m.Content != nil {
			b.WriteString(*m.Content)
			b.WriteString("\n")
		}
	}
	return b.String()
}

// userPrompts are the request's user messages.
func (r wireRequest) userPrompts() []string {
	var out []string
	for _, m := range r.Messages {
		if m.Role == "user" && m.Content != nil {
			out = append(out, *m.Content)
		}
	}
	return out
}

type fakeModel struct {
	mu     sync.Mutex
	reqs   []wireRequest
	script func(n int, req wireRequest) turn
	// held is closed when a Hold turn has sent its text.
	held chan struct{}
}

func (f *fakeModel) requests() []wireRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]wireRequest(nil), f.reqs...)
}

func (f *fakeModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req wireRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `{"error":{"message":"bad json"}}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	n := len(f.reqs)
	f.mu.Unlock()
	t := f.script(n, req)
	finish := "stop"
	if len(t.Calls) > 0 {
		finish = "tool_calls"
	}
	usage := map[string]int{"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
	if !req.Stream {
		msg := map[string]any{"role": "assistant", "content": t.Text}
		var calls []map[string]any
		for _, c := range t.Calls {
			calls = append(calls, map[string]any{"id": c.ID, "type": "function", "function": map[string]string{"name": c.Name, "arguments": c.Args}})
		}
		if calls != nil {
			msg["tool_calls"] = calls
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": fmt.Sprintf("c-%d", n), "object": "chat.completion", "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}}, "usage": usage})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fl, _ := w.(http.Flusher)
	send := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		if fl != nil {
			fl.Flush()
		}
	}
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"id": fmt.Sprintf("c-%d", n), "object": "chat.completion.chunk",
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	send(chunk(map[string]any{"role": "assistant", "content": ""}, nil))
	// Text in pieces, as real servers stream it.
	if t.Text != "" {
		h := len(t.Text) / 2
		send(chunk(map[string]any{"content": t.Text[:h]}, nil))
		send(chunk(map[string]any{"content": t.Text[h:]}, nil))
	}
	if t.Hold {
		close(f.held)
		<-r.Context().Done()
		return
	}
	for i, c := range t.Calls {
		send(chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i, "id": c.ID, "type": "function",
			"function": map[string]any{"name": c.Name, "arguments": c.Args}}}}, nil))
	}
	send(chunk(map[string]any{}, finish))
	send(map[string]any{"id": fmt.Sprintf("c-%d", n), "object": "chat.completion.chunk", "choices": []any{}, "usage": usage})
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// newSessions returns agent sessions over db with the built-in agents, the kb tools over k and a
// fake model following script.
func newSessions(t *testing.T, k testKB, script func(n int, req wireRequest) turn) (*agent.Sessions, *fakeModel) {
	t.Helper()
	f := &fakeModel{script: script, held: make(chan struct{})}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	model, err := llm.NewOpenAI(llm.OpenAIOptions{BaseURL: srv.URL + "/v1", Model: "fake-model", Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defs, err := agent.BuiltinDefinitions()
	if err != nil {
		t.Fatal(err)
	}
	rt := &agent.Runtime{
		Definitions: defs,
		Tools:       map[string]agent.Tool{"kb_search": agent.KBSearch(k), "kb_read": agent.KBRead(k)},
		Model:       func(string) (panther.Model, string, error) { return model, "fake-model", nil },
	}
	return &agent.Sessions{Runtime: rt, Store: k.db}, f
}

// Keys.

func newKey(t *testing.T) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testServer runs a Server on 127.0.0.1:0 until the test ends.
type testServer struct {
	*Server
	hostKey gossh.PublicKey
	addr    string
	cancel  context.CancelFunc
	done    chan error
}

func startServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	if opts.HostKeyPath == "" {
		opts.HostKeyPath = filepath.Join(t.TempDir(), "host_key")
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: s, addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ts.done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	pemBytes, err := os.ReadFile(opts.HostKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	hk, err := gossh.ParsePrivateKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	ts.hostKey = hk.PublicKey()
	return ts
}

func (ts *testServer) dial(auth ...gossh.AuthMethod) (*gossh.Client, error) {
	return gossh.Dial("tcp", ts.addr, &gossh.ClientConfig{
		User: "tester", Auth: auth, HostKeyCallback: gossh.FixedHostKey(ts.hostKey), Timeout: 10 * time.Second,
	})
}

// terminal is an SSH session with a PTY whose output drives a small terminal emulator.
type terminal struct {
	sess   *gossh.Session
	stdin  interface{ Write([]byte) (int, error) }
	screen *screen
}

func openTerminal(t *testing.T, c *gossh.Client, w, h int) *terminal {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	if err := sess.RequestPty("xterm-256color", h, w, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	scr := newScreen(w, h)
	sess.Stdout = scr
	sess.Stderr = scr
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	return &terminal{sess: sess, stdin: stdin, screen: scr}
}

func (term *terminal) send(t *testing.T, keys string) {
	t.Helper()
	if _, err := term.stdin.Write([]byte(keys)); err != nil {
		t.Fatal(err)
	}
}

// waitFor waits until the screen shows want, failing the test with the screen when it does not
// within a generous deadline (a bound on a hang, not a performance assertion).
func (term *terminal) waitFor(t *testing.T, want ...string) {
	t.Helper()
	if err := term.screen.wait(30*time.Second, func(text string) bool {
		for _, w := range want {
			if !strings.Contains(text, w) {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatalf("the screen never showed %q:\n%s", want, term.screen.text())
	}
}

// screen is a terminal emulator just big enough for what the renderer sends: printing, cursor
// movement, erasing, insert/delete of characters and lines, scroll regions.
type screen struct {
	mu       sync.Mutex
	changed  chan struct{}
	w, h     int
	cells    [][]rune
	x, y     int
	top, bot int
	sx, sy   int
	autowrap bool
	last     rune
	p        *ansi.Parser
}

func newScreen(w, h int) *screen {
	s := &screen{w: w, h: h, changed: make(chan struct{}), autowrap: true, bot: h - 1}
	s.clear(0, h)
	s.p = ansi.NewParser()
	s.p.SetHandler(ansi.Handler{
		Print:     s.print,
		Execute:   s.execute,
		HandleCsi: s.csi,
		HandleEsc: s.esc,
	})
	return s
}

func (s *screen) Write(b []byte) (int, error) {
	s.mu.Lock()
	s.p.Parse(b)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return len(b), nil
}

func (s *screen) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	lines := make([]string, s.h)
	for i, row := range s.cells {
		lines[i] = strings.TrimRight(strings.ReplaceAll(string(row), "\x00", ""), " ")
	}
	return strings.Join(lines, "\n")
}

func (s *screen) wait(limit time.Duration, ok func(string) bool) error {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if ok(s.text()) {
			return nil
		}
		select {
		case <-ch:
		case <-deadline.C:
			return fmt.Errorf("timed out")
		}
	}
}

// resize changes the screen's size as a terminal window's, keeping what fits.
func (s *screen) resize(w, h int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cells
	s.w, s.h, s.cells = w, h, nil
	s.clear(0, h)
	for y := 0; y < min(h, len(old)); y++ {
		copy(s.cells[y], old[y])
	}
	s.x, s.y, s.top, s.bot = min(s.x, w-1), min(s.y, h-1), 0, h-1
}

func (s *screen) clear(from, to int) {
	if s.cells == nil {
		s.cells = make([][]rune, s.h)
	}
	for y := max(from, 0); y < min(to, s.h); y++ {
		s.cells[y] = []rune(strings.Repeat(" ", s.w))
	}
}

func (s *screen) blankRow() []rune { return []rune(strings.Repeat(" ", s.w)) }

func (s *screen) print(r rune) {
	wd := max(ansi.StringWidth(string(r)), 1)
	if s.x+wd > s.w {
		if s.autowrap {
			s.x = 0
			s.lineFeed()
		} else {
			s.x = s.w - wd
		}
	}
	s.cells[s.y][s.x] = r
	if wd == 2 && s.x+1 < s.w {
		s.cells[s.y][s.x+1] = 0
	}
	s.x += wd
	s.last = r
}

func (s *screen) lineFeed() {
	if s.y == s.bot {
		s.scrollUp(1)
	} else if s.y < s.h-1 {
		s.y++
	}
}

func (s *screen) scrollUp(n int) {
	for range n {
		copy(s.cells[s.top:s.bot+1], s.cells[s.top+1:s.bot+1])
		s.cells[s.bot] = s.blankRow()
	}
}

func (s *screen) scrollDown(n int) {
	for range n {
		copy(s.cells[s.top+1:s.bot+1], s.cells[s.top:s.bot])
		s.cells[s.top] = s.blankRow()
	}
}

func (s *screen) execute(b byte) {
	switch b {
	case '\r':
		s.x = 0
	case '\n', '\v', '\f':
		s.lineFeed()
	case '\b':
		s.x = max(s.x-1, 0)
	case '\t':
		s.x = min((s.x/8+1)*8, s.w-1)
	}
}

func (s *screen) esc(cmd ansi.Cmd) {
	switch cmd.Final() {
	case '7':
		s.sx, s.sy = s.x, s.y
	case '8':
		s.x, s.y = s.sx, s.sy
	case 'D':
		s.lineFeed()
	case 'E':
		s.x = 0
		s.lineFeed()
	case 'M':
		if s.y == s.top {
			s.scrollDown(1)
		} else {
			s.y = max(s.y-1, 0)
		}
	case 'c':
		s.clear(0, s.h)
		s.x, s.y, s.top, s.bot = 0, 0, 0, s.h-1
	}
}

func (s *screen) csi(cmd ansi.Cmd, params ansi.Params) {
	n := func(i, def int) int {
		v, _, _ := params.Param(i, def)
		if v == 0 {
			v = def
		}
		return v
	}
	clampX := func() { s.x = min(max(s.x, 0), s.w-1) }
	clampY := func() { s.y = min(max(s.y, 0), s.h-1) }
	if cmd.Prefix() == '?' {
		if f := cmd.Final(); f == 'h' || f == 'l' {
			params.ForEach(0, func(_, p int, _ bool) {
				switch p {
				case 7:
					s.autowrap = f == 'h'
				case 1049, 47, 1047:
					s.clear(0, s.h)
				}
			})
		}
		return
	}
	if cmd.Prefix() != 0 || cmd.Intermediate() != 0 {
		return
	}
	switch cmd.Final() {
	case 'H', 'f':
		s.y, s.x = n(0, 1)-1, n(1, 1)-1
		clampX()
		clampY()
	case 'A':
		s.y -= n(0, 1)
		clampY()
	case 'B', 'e':
		s.y += n(0, 1)
		clampY()
	case 'C', 'a':
		s.x += n(0, 1)
		clampX()
	case 'D':
		s.x -= n(0, 1)
		clampX()
	case 'E':
		s.x, s.y = 0, s.y+n(0, 1)
		clampY()
	case 'F':
		s.x, s.y = 0, s.y-n(0, 1)
		clampY()
	case 'G', '`':
		s.x = n(0, 1) - 1
		clampX()
	case 'd':
		s.y = n(0, 1) - 1
		clampY()
	case 'I':
		for range n(0, 1) {
			s.x = min((s.x/8+1)*8, s.w-1)
		}
	case 'Z':
		for range n(0, 1) {
			s.x = max((s.x-1)/8*8, 0)
		}
	case 'J':
		v, _, _ := params.Param(0, 0)
		switch v {
		case 0:
			copy(s.cells[s.y][s.x:], []rune(strings.Repeat(" ", s.w-s.x)))
			s.clear(s.y+1, s.h)
		case 1:
			copy(s.cells[s.y][:s.x+1], []rune(strings.Repeat(" ", s.x+1)))
			s.clear(0, s.y)
		case 2, 3:
			s.clear(0, s.h)
		}
	case 'K':
		v, _, _ := params.Param(0, 0)
		row := s.cells[s.y]
		switch v {
		case 0:
			copy(row[s.x:], []rune(strings.Repeat(" ", s.w-s.x)))
		case 1:
			copy(row[:s.x+1], []rune(strings.Repeat(" ", s.x+1)))
		case 2:
			s.cells[s.y] = s.blankRow()
		}
	case 'X':
		k := min(n(0, 1), s.w-s.x)
		copy(s.cells[s.y][s.x:s.x+k], []rune(strings.Repeat(" ", k)))
	case '@':
		k := min(n(0, 1), s.w-s.x)
		row := s.cells[s.y]
		copy(row[s.x+k:], row[s.x:s.w-k])
		copy(row[s.x:s.x+k], []rune(strings.Repeat(" ", k)))
	case 'P':
		k := min(n(0, 1), s.w-s.x)
		row := s.cells[s.y]
		copy(row[s.x:], row[s.x+k:])
		copy(row[s.w-k:], []rune(strings.Repeat(" ", k)))
	case 'L':
		if s.y >= s.top && s.y <= s.bot {
			top := s.top
			s.top = s.y
			s.scrollDown(min(n(0, 1), s.bot-s.y+1))
			s.top = top
			s.x = 0
		}
	case 'M':
		if s.y >= s.top && s.y <= s.bot {
			top := s.top
			s.top = s.y
			s.scrollUp(min(n(0, 1), s.bot-s.y+1))
			s.top = top
			s.x = 0
		}
	case 'S':
		s.scrollUp(n(0, 1))
	case 'T':
		s.scrollDown(n(0, 1))
	case 'r':
		s.top, s.bot = n(0, 1)-1, n(1, s.h)-1
		if s.top >= s.bot || s.bot >= s.h {
			s.top, s.bot = 0, s.h-1
		}
		s.x, s.y = 0, 0
	case 'b':
		for range n(0, 1) {
			s.print(s.last)
		}
	}
}
