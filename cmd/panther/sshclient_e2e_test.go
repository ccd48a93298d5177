package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// The SSH interface as a person uses it: `panther serve` with an [ssh] table, the real OpenSSH
// client in a real terminal (tmux), keys typed with send-keys and the screen read with
// capture-pane. Skipped where tmux or ssh is missing, unless PANTHER_TEST_REQUIRE_TMUX=1
// (scripts/setup-tmux.sh installs both).

const (
	tmuxPageTitle = "Tundra Otter Handbook"
	// tmuxParagraph is long enough to wrap differently at 100 and 60 columns.
	tmuxParagraph = "This handbook explains how the tundra otter keeps its burrow warm through the polar winter. " +
		"The otter lines every chamber with moss, lichen and shed fur, and it seals the entrance with packed snow " +
		"once the first storm arrives. A family of otters shares one burrow and takes turns fishing under the ice, " +
		"so that no otter leaves the warmth for long."
	// The model's answer comes in two parts, the second held back until the first is on screen.
	tmuxAnswerHead = "Otters keep warm by lining their burrows"
	tmuxAnswerTail = " with moss, lichen and shed fur."
	// tmuxDeadline bounds every wait for the screen: a bound on a hang, not a performance figure.
	tmuxDeadline = 30 * time.Second
)

func TestSSHWithOpenSSHInTmux(t *testing.T) {
	tmuxBin, sshBin := lookTools(t)
	dir := t.TempDir()

	// The knowledge base: one page, crawled from a folder.
	site := filepath.Join(dir, "site")
	page := "<!doctype html><html><head><title>" + tmuxPageTitle + "</title></head><body><main>" +
		"<h1 id=\"top\">" + tmuxPageTitle + "</h1><p>" + tmuxParagraph + "</p>" +
		"<h2 id=\"feeding\">Feeding under the ice</h2><p>Tundra otters fish through breathing holes that they keep open all winter.</p>" +
		"</main></body></html>"
	writeFile(t, filepath.Join(site, "index.html"), page, 0o644)

	// The user's key, as ssh-keygen writes it, and the authorized_keys file serve reads.
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "tmux test user")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "id_ed25519")
	writeFile(t, keyFile, string(pem.EncodeToMemory(block)), 0o600)
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	authKeys := filepath.Join(dir, "authorized_keys")
	writeFile(t, authKeys, string(gossh.MarshalAuthorizedKey(signer.PublicKey())), 0o600)

	model := newHeldModel()
	modelSrv := httptest.NewServer(model)
	defer modelSrv.Close()
	defer model.release() // a failing test must not leave the handler waiting

	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sshAddr := free.Addr().String()
	free.Close()
	cfg := fmt.Sprintf("model = \"fake/test-model\"\n\n[providers.fake]\nwire = \"openai\"\nbase_url = %q\napi_key = \"env:FAKE_KEY\"\nretries = 0\n\n"+
		"[ssh]\naddr = %q\nauthorized_keys = %q\n", modelSrv.URL+"/v1", sshAddr, authKeys)
	writeFile(t, filepath.Join(dir, "config.toml"), cfg, 0o600)
	env := map[string]string{
		"PANTHER_DB": filepath.Join(dir, "kb", "panther.db"), "HOME": dir,
		"PANTHER_CONFIG": filepath.Join(dir, "config.toml"), "FAKE_KEY": "sk-never-shown",
	}
	getenv := func(k string) string { return env[k] }
	var crawlErr bytes.Buffer
	if code := run(context.Background(), []string{"crawl", site}, io.Discard, &crawlErr, getenv); code != 0 {
		t.Fatalf("crawl: exit %d: %s", code, crawlErr.String())
	}

	// panther serve, in-process, until the test ends.
	logs := &lockedBuffer{}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan int, 1)
	go func() { served <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0"}, io.Discard, logs, getenv) }()
	defer func() {
		stop()
		select {
		case code := <-served:
			if code != 0 {
				t.Errorf("serve: exit %d\n%s", code, logs.String())
			}
		case <-time.After(40 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	waitListening(t, sshAddr, served, logs)

	statusFile := filepath.Join(dir, "ssh.status")
	term := startTmux(t, tmuxBin, dir, 100, 30, fmt.Sprintf(
		"%s -F /dev/null -i '%s' -p %s -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes "+
			"-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10 owner@127.0.0.1; "+
			// ssh's exit status as the shell saw it, in a file: on a loaded machine tmux's
			// pane_dead_status was left unset, and output after the TUI left was not on the pane.
			"echo $? > '%s'",
		sshBin, keyFile, portOf(t, sshAddr), statusFile))

	// Search: a query typed and entered, its hit with its citation.
	term.waitFor(t, "search screen", contains("Search ›", "enter search"))
	term.keys(t, "-l", "otter burrow")
	term.keys(t, "Enter")
	term.waitFor(t, "the hit", contains("1. "+tmuxPageTitle, "index.html#top"))

	// The hit's section, wrapped to the 100 columns.
	term.keys(t, "Enter")
	term.waitFor(t, "the section at 100 columns", wrappedAt(100))
	// The window narrows: the section is wrapped again, no word lost, the footer drawn again.
	term.tmux(t, "resize-window", "-t", "panther", "-x", "60", "-y", "30")
	term.waitFor(t, "the section wrapped again at 60 columns", wrappedAt(60), contains("esc back"))
	term.tmux(t, "resize-window", "-t", "panther", "-x", "100", "-y", "30")
	term.waitFor(t, "the section wrapped again at 100 columns", wrappedAt(100))

	// Chat: the answer streams in; its first part is on screen while the model holds the rest.
	term.keys(t, "Escape")
	term.waitFor(t, "the hits again", contains("enter read"))
	term.keys(t, "Tab")
	term.waitFor(t, "the chat screen", contains("enter send"))
	term.keys(t, "-l", "how do tundra otters stay warm?")
	term.keys(t, "Enter")
	term.waitFor(t, "the first part of the answer", contains(tmuxAnswerHead), lacks(strings.TrimSpace(tmuxAnswerTail)))
	model.release()
	term.waitFor(t, "the whole answer", func(screen string) bool {
		return strings.Contains(squash(screen), squash(tmuxAnswerHead+tmuxAnswerTail))
	})
	if got := model.prompts(); len(got) == 0 || !strings.Contains(got[0], "how do tundra otters stay warm?") {
		t.Errorf("the model was not asked the question typed: %q", got)
	}

	// ctrl-d quits; ssh ends as a clean session does.
	term.keys(t, "C-d")
	var status []byte
	for deadline := time.Now().Add(tmuxDeadline); ; time.Sleep(50 * time.Millisecond) {
		var err error
		if status, err = os.ReadFile(statusFile); err == nil && len(status) > 0 || time.Now().After(deadline) {
			break
		}
	}
	if got := strings.TrimSpace(string(status)); got != "0" {
		t.Errorf("after ctrl-d, ssh's exit status: %q, want 0\n%s", got, term.capture(t))
	}
	if strings.Contains(logs.String(), "sk-never-shown") {
		t.Error("the model's API key is in serve's log")
	}
}

// lookTools finds tmux and ssh, skipping the test without them unless they are required.
func lookTools(t *testing.T) (tmuxBin, sshBin string) {
	t.Helper()
	var missing []string
	tmuxBin, err := exec.LookPath("tmux")
	if err != nil {
		missing = append(missing, "tmux")
	}
	sshBin, err = exec.LookPath("ssh")
	if err != nil {
		missing = append(missing, "ssh (openssh-client)")
	}
	if len(missing) > 0 {
		msg := strings.Join(missing, " and ") + " not found (scripts/setup-tmux.sh installs them)"
		if os.Getenv("PANTHER_TEST_REQUIRE_TMUX") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return tmuxBin, sshBin
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitListening waits until addr accepts connections, failing if serve ends first.
func waitListening(t *testing.T, addr string, served <-chan int, logs *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(tmuxDeadline)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case code := <-served:
			t.Fatalf("serve ended with %d before listening on %s\n%s", code, addr, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tmuxTerm is a tmux server of the test's own (its own socket and config) with one session,
// "panther", running a command in a window of a fixed size.
type tmuxTerm struct {
	bin, socket string
}

func startTmux(t *testing.T, bin, dir string, w, h int, command string) *tmuxTerm {
	t.Helper()
	conf := filepath.Join(dir, "tmux.conf")
	// No status line, so that the pane is the whole window; a dead pane stays, so that ssh's last
	// words and exit status can be read.
	writeFile(t, conf, "set -g status off\nset -g remain-on-exit on\nset -g default-terminal xterm-256color\n", 0o600)
	term := &tmuxTerm{bin: bin, socket: filepath.Join(dir, "tmux.sock")}
	cmd := exec.Command(bin, "-S", term.socket, "-f", conf, "new-session", "-d", "-s", "panther",
		"-x", fmt.Sprint(w), "-y", fmt.Sprint(h), command)
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		// Ends this test's tmux server (and ssh with it), nothing else.
		exec.Command(bin, "-S", term.socket, "kill-server").Run()
	})
	return term
}

func (term *tmuxTerm) tmux(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(term.bin, append([]string{"-S", term.socket}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// keys types into the pane: send-keys arguments ("-l", "text" types text literally).
func (term *tmuxTerm) keys(t *testing.T, keys ...string) {
	t.Helper()
	term.tmux(t, append([]string{"send-keys", "-t", "panther"}, keys...)...)
}

func (term *tmuxTerm) capture(t *testing.T) string {
	t.Helper()
	return term.tmux(t, "capture-pane", "-p", "-t", "panther")
}

// waitFor polls the screen until every check holds, failing with the screen after tmuxDeadline.
func (term *tmuxTerm) waitFor(t *testing.T, what string, checks ...func(screen string) bool) {
	t.Helper()
	deadline := time.Now().Add(tmuxDeadline)
	for {
		screen := term.capture(t)
		ok := true
		for _, c := range checks {
			ok = ok && c(screen)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: the screen never showed it:\n%s", what, screen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func contains(want ...string) func(string) bool {
	return func(screen string) bool {
		for _, w := range want {
			if !strings.Contains(screen, w) {
				return false
			}
		}
		return true
	}
}

func lacks(unwanted string) func(string) bool {
	return func(screen string) bool { return !strings.Contains(screen, unwanted) }
}

// squash joins the screen's lines and collapses runs of spaces, so that wrapped text reads whole.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

// wrappedAt holds when the section's paragraph is on screen whole and wrapped at word boundaries
// for a window w columns wide: its first line fits in w, and the next word would not have fitted
// within w-2 (the UI may keep a column or two of margin). A screen drawn for another width fails:
// tmux cuts wider lines and never joins narrower ones.
func wrappedAt(w int) func(string) bool {
	return func(screen string) bool {
		if !strings.Contains(squash(screen), tmuxParagraph) {
			return false
		}
		for _, line := range strings.Split(screen, "\n") {
			line = strings.TrimRight(line, " ")
			if !strings.HasPrefix(line, "This handbook explains") {
				continue
			}
			rest := strings.TrimPrefix(tmuxParagraph, line)
			next := strings.Fields(rest)
			n := len([]rune(line))
			return n <= w && len(next) > 0 && n+1+len([]rune(next[0])) > w-2
		}
		return false
	}
}

// heldModel is a model server (OpenAI chat completions) that streams tmuxAnswerHead, then holds
// the stream until released, then sends tmuxAnswerTail. Later requests get the whole answer at once.
type heldModel struct {
	mu       sync.Mutex
	asked    []string
	released chan struct{}
	once     sync.Once
}

func newHeldModel() *heldModel { return &heldModel{released: make(chan struct{})} }

func (m *heldModel) release() { m.once.Do(func() { close(m.released) }) }

func (m *heldModel) prompts() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.asked...)
}

func (m *heldModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Stream   bool `json:"stream"`
		Messages []struct {
			Role    string `json:"role"`
			Content any    `json:"content"`
		} `json:"messages"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	var last string
	for _, msg := range req.Messages {
		if s, ok := msg.Content.(string); ok && msg.Role == "user" {
			last = s
		}
	}
	m.mu.Lock()
	m.asked = append(m.asked, last)
	first := len(m.asked) == 1
	m.mu.Unlock()
	usage := map[string]int{"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62}
	if !req.Stream {
		// The chat must stream; a request that does not is answered, and the test then fails on
		// the first part never showing alone.
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": "c", "object": "chat.completion", "model": "m",
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": tmuxAnswerHead + tmuxAnswerTail}}}, "usage": usage})
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
		return map[string]any{"id": "c", "object": "chat.completion.chunk", "model": "m",
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	send(chunk(map[string]any{"role": "assistant", "content": ""}, nil))
	send(chunk(map[string]any{"content": tmuxAnswerHead}, nil))
	if first {
		select {
		case <-m.released:
		case <-r.Context().Done():
			return
		}
	}
	send(chunk(map[string]any{"content": tmuxAnswerTail}, nil))
	send(chunk(map[string]any{}, "stop"))
	send(map[string]any{"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": []any{}, "usage": usage})
	fmt.Fprint(w, "data: [DONE]\n\n")
}
