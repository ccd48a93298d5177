package sshui

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"panther"
	"panther/agent"
)

func TestSearchOverSSH(t *testing.T) {
	k := openKB(t)
	user := newKey(t)
	ts := startServer(t, Options{Search: k, Reader: k, AuthorizedKeys: []gossh.PublicKey{user.PublicKey()}})
	c, err := ts.dial(gossh.PublicKeys(user))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	term := openTerminal(t, c, 80, 24)
	term.waitFor(t, "Search ›", "enter search")

	term.send(t, "partial index\r")
	term.waitFor(t, "1. Indexes — Indexes > Partial Indexes", indexesURL+"#partial-indexes")

	// Enter opens the section, wrapped to the window, and esc goes back to the hits.
	term.send(t, "\r")
	term.waitFor(t, "Such an index is smaller", "esc back")
	for _, line := range strings.Split(term.screen.text(), "\n") {
		if n := len([]rune(line)); n > 80 {
			t.Errorf("a line of %d cells in an 80-cell window: %q", n, line)
		}
	}
	// The window shrinks: the text is wrapped again to the new width.
	term.screen.resize(50, 24)
	if err := term.sess.WindowChange(24, 50); err != nil {
		t.Fatal(err)
	}
	if err := term.screen.wait(30*time.Second, func(text string) bool {
		lines := strings.Split(text, "\n")
		// The paragraph's last words end a line of their own, once wrapped at 49 cells.
		return slices.ContainsFunc(lines, func(l string) bool { return strings.HasSuffix(l, "never written to it.") && len(l) < 50 })
	}); err != nil {
		t.Fatalf("the section was not wrapped again to 50 cells:\n%s", term.screen.text())
	}
	term.send(t, "\x1b")
	term.waitFor(t, "enter read")

	// q leaves; the session ends cleanly.
	term.send(t, "q")
	if err := term.sess.Wait(); err != nil {
		t.Fatalf("session end: %v", err)
	}
}

func TestAuthOnlyAuthorizedPublicKeys(t *testing.T) {
	k := openKB(t)
	user := newKey(t)
	ts := startServer(t, Options{Search: k, AuthorizedKeys: []gossh.PublicKey{user.PublicKey()}})
	stranger := newKey(t)
	for _, tc := range []struct {
		name string
		auth []gossh.AuthMethod
	}{
		{"unknown key", []gossh.AuthMethod{gossh.PublicKeys(stranger)}},
		{"password", []gossh.AuthMethod{gossh.Password("hunter2")}},
		{"keyboard-interactive", []gossh.AuthMethod{gossh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) {
			return []string{"hunter2"}, nil
		})}},
		{"none", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ts.dial(tc.auth...)
			if err == nil {
				c.Close()
				t.Fatal("the handshake succeeded")
			}
			if !strings.Contains(err.Error(), "unable to authenticate") {
				t.Fatalf("refused for another reason: %v", err)
			}
			if strings.Contains(err.Error(), "password") || strings.Contains(err.Error(), "keyboard-interactive") {
				t.Errorf("the server offers more than public keys: %v", err)
			}
		})
	}
	// The authorized key still gets in, after all those refusals.
	c, err := ts.dial(gossh.PublicKeys(user))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestMaxSessions(t *testing.T) {
	k := openKB(t)
	user := newKey(t)
	ts := startServer(t, Options{Search: k, AuthorizedKeys: []gossh.PublicKey{user.PublicKey()}, MaxSessions: 2})
	var terms []*terminal
	for range 2 {
		c, err := ts.dial(gossh.PublicKeys(user))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		term := openTerminal(t, c, 80, 24)
		term.waitFor(t, "Search ›")
		terms = append(terms, term)
	}
	c, err := ts.dial(gossh.PublicKeys(user))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	third := openTerminal(t, c, 80, 24)
	ended := make(chan error, 1)
	go func() { ended <- third.sess.Wait() }()
	select {
	case err = <-ended:
	case <-time.After(30 * time.Second):
		t.Fatalf("a third session was let in past MaxSessions 2:\n%s", third.screen.text())
	}
	var exit *gossh.ExitError
	if !errors.As(err, &exit) || exit.ExitStatus() != 1 {
		t.Fatalf("the third session ended with %v, want exit status 1", err)
	}
	if !strings.Contains(third.screen.text(), "too many sessions") {
		t.Fatalf("the refused session was not told why:\n%s", third.screen.text())
	}
	// A session that ends frees its place.
	terms[0].send(t, "\x04")
	if err := terms[0].sess.Wait(); err != nil {
		t.Fatal(err)
	}
	// The freed place is given back when the ended session's handler returns, which may be just
	// after the client sees the end: retry a refused session until the deadline.
	deadline := time.Now().Add(30 * time.Second)
	for {
		fourth := openTerminal(t, c, 80, 24)
		done := make(chan error, 1)
		go func() { done <- fourth.sess.Wait() }()
		if err := fourth.screen.wait(30*time.Second, func(s string) bool {
			return strings.Contains(s, "Search ›") || strings.Contains(s, "too many sessions")
		}); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(fourth.screen.text(), "Search ›") {
			fourth.send(t, "\x04")
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			return
		}
		<-done
		if time.Now().After(deadline) {
			t.Fatal("the place of an ended session was never freed")
		}
	}
}

func TestConnectionsAreBounded(t *testing.T) {
	k := openKB(t)
	user := newKey(t)
	ts := startServer(t, Options{Search: k, AuthorizedKeys: []gossh.PublicKey{user.PublicKey()}, MaxSessions: 1})
	// Connections that never finish a handshake hold their places: MaxSessions 1 allows two.
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	// The listener accepts in its own time: a refusal shows once both are counted.
	refused := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		c, err := ts.dial(gossh.PublicKeys(user))
		if err != nil {
			refused = true
			break
		}
		c.Close()
	}
	if !refused {
		t.Fatal("a connection past the bound was served")
	}
	idle[0].Close()
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := ts.dial(gossh.PublicKeys(user))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed connection's place was never freed: %v", err)
		}
	}
}

func TestIdleConnectionsAreClosed(t *testing.T) {
	k := openKB(t)
	user := newKey(t)
	ts := startServer(t, Options{Search: k, AuthorizedKeys: []gossh.PublicKey{user.PublicKey()}, IdleTimeout: 300 * time.Millisecond})
	c, err := ts.dial(gossh.PublicKeys(user))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	term := openTerminal(t, c, 80, 24)
	term.waitFor(t, "Search ›")
	ended := make(chan error, 1)
	go func() { ended <- term.sess.Wait() }()
	select {
	case <-ended:
	case <-time.After(30 * time.Second):
		t.Fatal("an idle connection was kept open")
	}
}

func TestChatOverSSH(t *testing.T) {
	k := openKB(t)
	citeRE := regexp.MustCompile(`\[(\d+)\][^\n]*#partial-indexes`)
	sessions, fake := newSessions(t, k, func(n int, req wireRequest) turn {
		prompts := req.userPrompts()
		last := prompts[len(prompts)-1]
		switch {
		case strings.Contains(last, "follow-up"):
			return turn{Text: fmt.Sprintf("The follow-up saw %d earlier prompts.", len(prompts)-1)}
		case req.toolText() == "":
			return turn{Calls: []call{{ID: "c1", Name: "kb_search", Args: `{"query":"partial index"}`}}}
		}
		m := citeRE.FindStringSubmatch(req.toolText())
		if m == nil {
			return turn{Text: "the search found nothing"}
		}
		return turn{Text: "A partial index covers only the rows that satisfy its predicate [" + m[1] + "]."}
	})
	user := newKey(t)
	ts := startServer(t, Options{Search: k, Reader: k, Ask: sessions, Agents: []string{"general", "researcher"},
		AuthorizedKeys: []gossh.PublicKey{user.PublicKey()}})
	c, err := ts.dial(gossh.PublicKeys(user))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	term := openTerminal(t, c, 80, 24)
	term.waitFor(t, "Search ›")
	term.send(t, "\t")
	term.waitFor(t, "agent general")
	term.send(t, "what is a partial index?\r")
	term.waitFor(t,
		"A partial index covers only the rows that satisfy its predicate [1].",
		"✓ kb_search",
		"Sources:",
		"[1] Indexes — Indexes > Partial Indexes",
		indexesURL+"#partial-indexes",
		"enter send")

	all, err := k.db.Sessions(context.Background(), panther.SessionFilter{})
	if err != nil || len(all) != 1 {
		t.Fatalf("sessions %+v, %v", all, err)
	}
	first := all[0]
	term.waitFor(t, "session "+first.ID)

	// A follow-up continues the same session.
	term.send(t, "a follow-up\r")
	term.waitFor(t, "The follow-up saw 1 earlier prompts.")
	all, err = k.db.Sessions(context.Background(), panther.SessionFilter{})
	if err != nil || len(all) != 1 || all[0].ID != first.ID {
		t.Fatalf("after a follow-up, sessions %+v, %v", all, err)
	}
	if n := len(fake.requests()); n != 3 {
		t.Errorf("the model saw %d requests, want 3", n)
	}
	term.send(t, "\x04")
	if err := term.sess.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestLeavingDuringAnAnswerStoresIt(t *testing.T) {
	k := openKB(t)
	sessions, fake := newSessions(t, k, func(int, wireRequest) turn { return turn{Text: "Half an answer", Hold: true} })
	// Storing how a run ended takes a while, as on a busy disk.
	sessions.Store = slowEnd{sessions.Store}
	user := newKey(t)
	ts := startServer(t, Options{Search: k, Ask: sessions, AuthorizedKeys: []gossh.PublicKey{user.PublicKey()}})
	c, err := ts.dial(gossh.PublicKeys(user))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	term := openTerminal(t, c, 80, 24)
	term.waitFor(t, "Search ›")
	term.send(t, "\tstart something\r")
	term.waitFor(t, "Half an answer", "ctrl-c cancels")
	<-fake.held
	term.send(t, "\x04")
	if err := term.sess.Wait(); err != nil {
		t.Fatal(err)
	}
	// The session ends only once the run it left is stored.
	all, err := k.db.Sessions(context.Background(), panther.SessionFilter{})
	if err != nil || len(all) != 1 || all[0].Status != panther.SessionCancelled {
		t.Fatalf("sessions after leaving mid-answer: %+v, %v", all, err)
	}
}

// slowEnd is the real session store, slow to record how a run ended.
type slowEnd struct{ agent.SessionStore }

func (s slowEnd) UpdateSession(ctx context.Context, sess panther.Session) error {
	if sess.Status != panther.SessionRunning {
		time.Sleep(300 * time.Millisecond)
	}
	return s.SessionStore.UpdateSession(ctx, sess)
}

func TestShutdownEndsSessions(t *testing.T) {
	k := openKB(t)
	user := newKey(t)
	s, err := New(Options{Addr: "127.0.0.1:0", HostKeyPath: filepath.Join(t.TempDir(), "keys", "host"), Search: k,
		AuthorizedKeys: []gossh.PublicKey{user.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx) }()
	var addr net.Addr
	// Addr is nil until the server listens.
	for deadline := time.Now().Add(30 * time.Second); addr == nil; {
		select {
		case err := <-done:
			t.Fatalf("ListenAndServe: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if addr = s.Addr(); addr == nil && time.Now().After(deadline) {
			t.Fatal("the server never listened")
		}
	}
	c, err := gossh.Dial("tcp", addr.String(), &gossh.ClientConfig{User: "tester", Auth: []gossh.AuthMethod{gossh.PublicKeys(user)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	term := openTerminal(t, c, 80, 24)
	term.waitFor(t, "Search ›")
	cancel()
	// The session is ended by the server, as a normal exit, and the server returns.
	if err := term.sess.Wait(); err != nil {
		t.Fatalf("session end: %v", err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("ListenAndServe: %v", err)
	}
	if _, err := net.DialTimeout("tcp", addr.String(), 5*time.Second); err == nil {
		t.Error("the server still accepts connections")
	}
}

func TestHostKey(t *testing.T) {
	k := openKB(t)
	user := newKey(t)
	path := filepath.Join(t.TempDir(), "state", "ssh_host_ed25519_key")
	opts := Options{Search: k, HostKeyPath: path, AuthorizedKeys: []gossh.PublicKey{user.PublicKey()}}
	if _, err := New(opts); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("host key mode %v, want 0600", fi.Mode().Perm())
	}
	first, _ := os.ReadFile(path)
	signer, err := gossh.ParsePrivateKey(first)
	if err != nil {
		t.Fatal(err)
	}
	if signer.PublicKey().Type() != gossh.KeyAlgoED25519 {
		t.Errorf("host key type %s", signer.PublicKey().Type())
	}
	// A second server keeps the key.
	if _, err := New(opts); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path); string(again) != string(first) {
		t.Error("the host key was replaced")
	}
	// A file that is not a key is an error naming it.
	os.WriteFile(path, []byte("not a key"), 0o600)
	if _, err := New(opts); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("a broken host key: %v", err)
	}
}

func TestNewChecksOptions(t *testing.T) {
	k := openKB(t)
	user := newKey(t)
	dir := t.TempDir()
	keysFile := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	authorized := string(gossh.MarshalAuthorizedKey(user.PublicKey()))
	good := Options{Search: k, HostKeyPath: filepath.Join(dir, "host"), AuthorizedKeys: []gossh.PublicKey{user.PublicKey()}}
	for _, tc := range []struct {
		name   string
		change func(o *Options)
		want   string // in the error; empty: no error
	}{
		{"good", func(o *Options) {}, ""},
		{"no search", func(o *Options) { o.Search = nil }, "no Search"},
		{"no host key path", func(o *Options) { o.HostKeyPath = "" }, "no host key path"},
		{"no keys", func(o *Options) { o.AuthorizedKeys = nil }, "no authorized keys"},
		{"negative sessions", func(o *Options) { o.MaxSessions = -1 }, "max sessions"},
		{"negative idle", func(o *Options) { o.IdleTimeout = -time.Second }, "idle timeout"},
		{"keys file", func(o *Options) {
			o.AuthorizedKeys = nil
			o.AuthorizedKeysFile = keysFile("ok", "# the user\n\n"+authorized)
		}, ""},
		{"missing keys file", func(o *Options) { o.AuthorizedKeysFile = filepath.Join(dir, "missing") }, "missing"},
		{"bad keys line", func(o *Options) { o.AuthorizedKeysFile = keysFile("bad", authorized+"ssh-ed25519 !!!\n") }, "line 2"},
		{"key options", func(o *Options) {
			o.AuthorizedKeysFile = keysFile("opts", `from="10.0.0.0/8" `+authorized)
		}, "options"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.change(&o)
			_, err := New(o)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			case tc.want != "" && !errors.Is(err, panther.ErrInvalid) && !errors.Is(err, os.ErrNotExist):
				t.Errorf("error %v is not an invalid-input error", err)
			}
		})
	}
}
