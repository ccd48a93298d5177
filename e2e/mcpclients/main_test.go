package mcpclients

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bounds of the processes the tests start: none may hang the suite.
const (
	commandTimeout = 90 * time.Second
	serveStartWait = 30 * time.Second
	serveStopWait  = 20 * time.Second
)

var (
	// workDir holds the binary built for the whole run; TestMain removes it.
	workDir   string
	buildOnce sync.Once
	pantherAt string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "panther-mcpclients-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needClient returns the executable of an npm-installed client (mcp-inspector, opencode). A missing
// one skips the test, or fails it under PANTHER_TEST_REQUIRE_NPM=1, so that CI cannot pass by
// skipping.
func needClient(t *testing.T, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary and runs the real MCP clients")
	}
	dir := toolsDir(t)
	bin := filepath.Join(dir, "node_modules", ".bin", name)
	_, err := os.Stat(bin)
	if err == nil {
		// The Inspector is a Node.js script; OpenCode is a binary of its own.
		if _, nerr := exec.LookPath("node"); nerr != nil && name != "opencode" {
			err = errors.New("node is not on PATH")
		}
	}
	if err != nil {
		msg := fmt.Sprintf("%s is not usable from %s (%v); scripts/setup-npm.sh installs it", name, dir, err)
		if os.Getenv("PANTHER_TEST_REQUIRE_NPM") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// toolsDir is where scripts/setup-npm.sh installs the clients: $PANTHER_NPM_TOOLS, else
// .cache/npm-tools at the module's root.
func toolsDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("PANTHER_NPM_TOOLS"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, ".cache", "npm-tools")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// pantherBin builds the panther binary once for the whole run.
func pantherBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		pantherAt = filepath.Join(workDir, "panther")
		out, err := exec.Command("go", "build", "-o", pantherAt, "panther/cmd/panther").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return pantherAt
}

// isolatedEnv is the environment of every process the tests start: the PATH it needs and a home of
// its own, and nothing else of the machine's (no one's configuration, keys or tokens).
func isolatedEnv(home string, extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"XDG_STATE_HOME=" + filepath.Join(home, ".local", "state"),
		"TMPDIR=" + os.TempDir(),
		"NO_COLOR=1",
	}
	return append(env, extra...)
}

// result is what a finished command left.
type result struct {
	stdout, stderr string
	code           int
}

// run runs a command to its end (at most commandTimeout) in dir with env. Only a failure to start
// it fails the test; its exit code is the caller's to judge.
func run(t *testing.T, dir string, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", filepath.Base(name), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %s\nstdout: %s\nstderr: %s", filepath.Base(name), commandTimeout, res.stdout, res.stderr)
	}
	return res
}

// siteDir is the small documentation site the tests crawl.
func siteDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "site"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// zebraLink is the section search should find first for "zebra dial"; zebraPassage is its text.
func zebraLink(t *testing.T) string {
	return "file://" + filepath.ToSlash(siteDir(t)) + "/guide/calibration.html#zebra-dial"
}

const zebraPassage = "Turn the zebra dial to 42 before the first frobnication of the day"

// crawledDB crawls the test site into a new knowledge base and returns its path.
func crawledDB(t *testing.T) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "kb.db")
	res := run(t, t.TempDir(), isolatedEnv(t.TempDir()), pantherBin(t), "--db", db, "crawl", siteDir(t))
	if res.code != 0 {
		t.Fatalf("panther crawl: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	return db
}

// newToken returns a random bearer token.
func newToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// redact hides the tokens in text that goes into test output.
func redact(text string, secrets ...string) string {
	for _, s := range secrets {
		if s != "" {
			text = strings.ReplaceAll(text, s, "[token]")
		}
	}
	return text
}

// server is a `panther serve` process on a loopback port.
type server struct {
	url          string // http://127.0.0.1:PORT
	read, write  string // tokens with the read and the write scope
	mu           sync.Mutex
	log          strings.Builder
	stderrClosed chan struct{}
}

func (s *server) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return redact(s.log.String(), s.read, s.write)
}

// servePanther starts `panther serve` over db with a read token and a write token, on a free
// loopback port, and stops it (gracefully) when the test ends.
func servePanther(t *testing.T, db string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{read: newToken(t), write: newToken(t), stderrClosed: make(chan struct{})}
	var cfg strings.Builder
	for _, tok := range []struct{ name, secret, scope string }{{"reader", s.read, "read"}, {"writer", s.write, "write"}} {
		file := filepath.Join(dir, tok.name+".token")
		if err := os.WriteFile(file, []byte(tok.secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&cfg, "[[server.tokens]]\nname = %q\ntoken = %q\nscopes = [%q]\n\n", tok.name, "file:"+file, tok.scope)
	}
	config := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(config, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pantherBin(t), "--db", db, "--config", config, "serve", "--addr", "127.0.0.1:0")
	cmd.Env = isolatedEnv(t.TempDir())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	listening := make(chan string, 1)
	go func() {
		defer close(s.stderrClosed)
		listenRE := regexp.MustCompile(`msg="panther serve listening" addr=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.log.WriteString(line + "\n")
			s.mu.Unlock()
			if m := listenRE.FindStringSubmatch(line); m != nil {
				listening <- m[1]
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() {
		<-s.stderrClosed
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("panther serve stopped with %v\n%s", err, s.logs())
			}
		case <-time.After(serveStopWait):
			cmd.Process.Kill()
			<-exited
			t.Errorf("panther serve did not stop within %s of SIGINT\n%s", serveStopWait, s.logs())
		}
	})
	select {
	case addr := <-listening:
		s.url = "http://" + addr
	case err := <-exited:
		t.Fatalf("panther serve exited: %v\n%s", err, s.logs())
	case <-time.After(serveStartWait):
		t.Fatalf("panther serve did not listen within %s\n%s", serveStartWait, s.logs())
	}
	return s
}

// toolNames are the names in a tools/list result, sorted.
func toolNames(t *testing.T, listing []byte) []string {
	t.Helper()
	var res struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(listing, &res); err != nil {
		t.Fatalf("tools/list result %q: %v", listing, err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

var (
	readOnlyTools = []string{"list_sources", "read", "search"}
	writeTools    = []string{"add_source", "crawl", "list_sources", "read", "search"}
)
