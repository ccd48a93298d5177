// Package sshui serves panther's terminal UI over SSH: a search view (query, ranked passages with
// their citations, the cited section as wrapped text) and a chat view with an agent whose answer
// streams in as it is written, its tool calls and sub-agents shown while they run.
//
// It is a face, not a service: searches go to a Searcher (kb.Service), sections come from a Reader
// (kb.Service), and answers come from an Asker (agent.Sessions), so every conversation is a stored
// session like the CLI's and the HTTP API's.
//
// Only public-key authentication is offered, against keys fixed when the Server is made: no
// password, no keyboard-interactive, and a client whose key is not listed is refused during the
// SSH handshake, before any UI runs. Sessions, connections, handshakes and idle connections are all
// bounded.
package sshui

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/ssh"
	"charm.land/wish/v2"
	teassh "charm.land/wish/v2/bubbletea"
	gossh "golang.org/x/crypto/ssh"

	"panther"
	"panther/agent"
	"panther/kb"
)

// Searcher ranks passages for a query: *kb.Service is one.
type Searcher interface {
	Search(ctx context.Context, q panther.Query) ([]panther.Hit, error)
}

// Reader returns a stored page and its passages, so that a hit's section can be read whole:
// *kb.Service is one.
type Reader interface {
	Document(ctx context.Context, url string) (panther.Document, error)
	Chunks(ctx context.Context, docID int64) ([]panther.Chunk, error)
}

// Asker runs an agent as a stored session: *agent.Sessions is one.
type Asker interface {
	Ask(ctx context.Context, req agent.AskRequest) (panther.Session, agent.Result, error)
}

var (
	_ Searcher = (*kb.Service)(nil)
	_ Reader   = (*kb.Service)(nil)
	_ Asker    = (*agent.Sessions)(nil)
)

// Defaults and bounds.
const (
	DefaultMaxSessions = 8
	DefaultIdleTimeout = 30 * time.Minute
	// handshakeTimeout bounds a connection's SSH handshake, authentication included.
	handshakeTimeout = 20 * time.Second
	// shutdownGrace is how long a stopping server waits for its sessions to end on their own
	// before it closes their connections.
	shutdownGrace = 5 * time.Second
	// connsPerSession bounds open connections (authenticated or not) at this many per session
	// allowed, so that clients stuck in handshakes cannot exhaust the server.
	connsPerSession = 2
)

// Options configure a Server. Addr, HostKeyPath, at least one authorized key and Search are
// required.
type Options struct {
	// Addr is the TCP address to listen on ("127.0.0.1:2222", ":2222").
	Addr string
	// HostKeyPath is the server's private host key (OpenSSH or PEM format). When the file does not
	// exist, an ed25519 key is made and written there, readable only by its owner.
	HostKeyPath string
	// AuthorizedKeys and AuthorizedKeysFile (OpenSSH authorized_keys format) are the keys that may
	// log in; both may be given. The file is read once, by New. Lines with options (from=,
	// command=, ...) are refused rather than accepted without their restrictions.
	AuthorizedKeys     []gossh.PublicKey
	AuthorizedKeysFile string
	// Search answers the search view. Required.
	Search Searcher
	// Reader opens a hit's section; without it the reader shows the hit's passage.
	Reader Reader
	// Ask answers the chat view; without it the chat view says no model is configured.
	Ask Asker
	// Agents are the names the chat view offers (ctrl-n); the first conversation is with
	// agent.DefaultAgent when listed, else the first.
	Agents []string
	// MaxSessions bounds concurrent SSH sessions (DefaultMaxSessions); one more is refused with a
	// message.
	MaxSessions int
	// IdleTimeout closes a connection with no traffic for this long (DefaultIdleTimeout).
	IdleTimeout time.Duration
	// Logger receives connection and session events (never keys' material or typed text); nil
	// discards them.
	Logger *slog.Logger
}

// Server is the SSH terminal UI. Make it with New and run it with ListenAndServe or Serve.
type Server struct {
	deps     deps
	log      *slog.Logger
	keys     map[string]bool // authorized keys in wire format
	ssh      *ssh.Server
	max      int
	sessions chan struct{} // one token per running session
	conns    chan struct{} // one token per open connection
	handlers sync.WaitGroup

	mu       sync.Mutex
	addr     net.Addr
	serving  bool
	closing  bool
	programs map[*tea.Program]bool
}

// New checks opts, loads (or makes) the host key and reads the authorized keys.
func New(opts Options) (*Server, error) {
	if opts.Search == nil {
		return nil, panther.Invalidf("ssh ui: no Search service")
	}
	if opts.HostKeyPath == "" {
		return nil, panther.Invalidf("ssh ui: no host key path")
	}
	if opts.MaxSessions < 0 {
		return nil, panther.Invalidf("ssh ui: max sessions must not be negative, got %d", opts.MaxSessions)
	}
	if opts.IdleTimeout < 0 {
		return nil, panther.Invalidf("ssh ui: idle timeout must not be negative, got %s", opts.IdleTimeout)
	}
	if opts.MaxSessions == 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		deps:     deps{searcher: opts.Search, reader: opts.Reader, asker: opts.Ask, agents: append([]string(nil), opts.Agents...)},
		log:      log,
		keys:     map[string]bool{},
		max:      opts.MaxSessions,
		sessions: make(chan struct{}, opts.MaxSessions),
		conns:    make(chan struct{}, opts.MaxSessions*connsPerSession),
		programs: map[*tea.Program]bool{},
	}
	for i, k := range opts.AuthorizedKeys {
		if k == nil {
			return nil, panther.Invalidf("ssh ui: authorized key %d is nil", i)
		}
		s.keys[string(k.Marshal())] = true
	}
	if opts.AuthorizedKeysFile != "" {
		keys, err := readAuthorizedKeys(opts.AuthorizedKeysFile)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			s.keys[string(k.Marshal())] = true
		}
	}
	if len(s.keys) == 0 {
		return nil, panther.Invalidf("ssh ui: no authorized keys: only public-key login is offered, so nobody could log in")
	}
	signer, err := loadHostKey(opts.HostKeyPath, log)
	if err != nil {
		return nil, err
	}
	s.ssh, err = wish.NewServer(
		wish.WithAddress(opts.Addr),
		wish.WithVersion("panther"),
		func(srv *ssh.Server) error { srv.AddHostKey(signer); return nil },
		// Setting only this handler is what leaves password and keyboard-interactive out.
		wish.WithPublicKeyAuth(s.authorize),
		wish.WithIdleTimeout(opts.IdleTimeout),
		func(srv *ssh.Server) error {
			srv.Handler = s.handle
			srv.HandshakeTimeout = handshakeTimeout
			srv.ConnCallback = s.connOpened
			srv.ConnectionFailedCallback = s.connFailed
			return nil
		},
	)
	if err != nil {
		return nil, fmt.Errorf("ssh ui: %w", err)
	}
	return s, nil
}

// Addr is the address the server listens on, nil before it does.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// ListenAndServe listens on Options.Addr and serves until ctx is cancelled, then asks every
// session to end, waits a little for them, closes what is left and returns nil.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.ssh.Addr)
	if err != nil {
		return fmt.Errorf("ssh ui: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve is ListenAndServe on a listener of the caller's (a tailnet's, a test's). It closes ln.
// A Server serves once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		ln.Close()
		return errors.New("ssh ui: the server is already serving")
	}
	s.serving, s.addr = true, ln.Addr()
	s.mu.Unlock()
	s.log.Info("ssh ui: listening", "addr", ln.Addr().String())

	errc := make(chan error, 1)
	go func() { errc <- s.ssh.Serve(ln) }()
	select {
	case err := <-errc:
		s.shutdown(ln)
		return fmt.Errorf("ssh ui on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.shutdown(ln)
	<-errc
	return nil
}

// shutdown stops accepting, tells every session to end and gives them shutdownGrace to do so
// before closing their connections.
func (s *Server) shutdown(ln net.Listener) {
	s.mu.Lock()
	s.closing = true
	programs := make([]*tea.Program, 0, len(s.programs))
	for p := range s.programs {
		programs = append(programs, p)
	}
	s.mu.Unlock()
	// Closing the listener ourselves covers a shutdown that comes before Serve has registered it.
	ln.Close()
	for _, p := range programs {
		go p.Send(shutdownMsg{})
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := s.ssh.Shutdown(ctx); err != nil {
		s.log.Info("ssh ui: closing the connections still open", "err", err)
		s.ssh.Close()
	}
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("ssh ui: sessions still ending after the shutdown grace")
	}
	s.log.Info("ssh ui: stopped")
}

func (s *Server) authorize(ctx ssh.Context, key ssh.PublicKey) bool {
	if s.keys[string(key.Marshal())] {
		return true
	}
	s.log.Debug("ssh ui: key refused", "user", ctx.User(), "remote", ctx.RemoteAddr().String(), "key", gossh.FingerprintSHA256(key))
	return false
}

// countedConn gives its connection slot back when closed.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

func (s *Server) connOpened(_ ssh.Context, c net.Conn) net.Conn {
	select {
	case s.conns <- struct{}{}:
		return &countedConn{Conn: c, release: func() { <-s.conns }}
	default:
		s.log.Warn("ssh ui: connection refused: too many open connections", "remote", c.RemoteAddr().String(), "max", cap(s.conns))
		return nil
	}
}

func (s *Server) connFailed(c net.Conn, err error) {
	s.log.Info("ssh ui: connection failed", "remote", c.RemoteAddr().String(), "err", err)
}

// begin counts a session handler in, unless the server is stopping: shutdown waits for those
// counted, and none may be added once it waits.
func (s *Server) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.handlers.Add(1)
	return true
}

// track adds or removes a running program; it refuses new ones once the server is stopping.
func (s *Server) track(p *tea.Program, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.programs, p)
		return true
	}
	if s.closing {
		return false
	}
	s.programs[p] = true
	return true
}

// handle runs one SSH session: the UI, when there is room and a terminal for it.
func (s *Server) handle(sess ssh.Session) {
	if !s.begin() {
		wish.Fatalln(sess, "panther: the server is shutting down")
		return
	}
	defer s.handlers.Done()
	started := time.Now()
	log := s.log.With("user", sess.User(), "remote", sess.RemoteAddr().String())
	if k := sess.PublicKey(); k != nil {
		log = log.With("key", gossh.FingerprintSHA256(k))
	}
	select {
	case s.sessions <- struct{}{}:
		defer func() { <-s.sessions }()
	default:
		log.Warn("ssh ui: session refused: too many sessions", "max", s.max)
		wish.Fatalf(sess, "panther: too many sessions (at most %d); try again later\n", s.max)
		return
	}
	pty, windows, ok := sess.Pty()
	if !ok {
		wish.Fatalln(sess, "panther: the terminal UI needs a terminal; connect with ssh -t")
		return
	}
	if sess.RawCommand() != "" {
		wish.Fatalln(sess, "panther: the terminal UI takes no command")
		return
	}
	m := newModel(s.deps, pty.Window.Width, pty.Window.Height)
	defer func() {
		// A run the session leaves is cancelled; it is still stored, as cancelled, before the
		// session counts as ended.
		if !m.wait(shutdownGrace) {
			log.Warn("ssh ui: an agent run is still ending after the session")
		}
	}()
	opts := append(teassh.MakeOptions(sess),
		// The server's own signals are not the session's business.
		tea.WithoutSignalHandler(),
		// A closed connection ends the program.
		tea.WithContext(sess.Context()))
	p := tea.NewProgram(m, opts...)
	if !s.track(p, true) {
		wish.Fatalln(sess, "panther: the server is shutting down")
		return
	}
	defer s.track(p, false)

	ctx, cancel := context.WithCancel(sess.Context())
	defer cancel()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case w, ok := <-windows:
				if !ok {
					return
				}
				p.Send(tea.WindowSizeMsg{Width: w.Width, Height: w.Height})
			}
		}
	}()
	log.Info("ssh ui: session started", "term", pty.Term, "width", pty.Window.Width, "height", pty.Window.Height)
	if _, err := p.Run(); err != nil && ctx.Err() == nil && !errors.Is(err, tea.ErrProgramKilled) {
		log.Warn("ssh ui: session failed", "err", err)
	}
	log.Info("ssh ui: session ended", "duration", time.Since(started).Round(time.Second))
}

// readAuthorizedKeys reads an OpenSSH authorized_keys file.
func readAuthorizedKeys(path string) ([]gossh.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ssh ui: authorized keys: %w", err)
	}
	var keys []gossh.PublicKey
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		key, _, options, _, err := gossh.ParseAuthorizedKey(line)
		if err != nil {
			return nil, panther.Invalidf("ssh ui: authorized keys %s, line %d: %v", path, n, err)
		}
		if len(options) > 0 {
			return nil, panther.Invalidf("ssh ui: authorized keys %s, line %d: options (%s) are not supported; list the key without them", path, n, options[0])
		}
		keys = append(keys, key)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ssh ui: authorized keys %s: %w", path, err)
	}
	return keys, nil
}

// loadHostKey reads the host key at path, first making an ed25519 one there if there is none.
func loadHostKey(path string, log *slog.Logger) (gossh.Signer, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		data, err = createHostKey(path)
		if err == nil {
			log.Info("ssh ui: made a new host key", "path", path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ssh ui: host key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("ssh ui: the host key can be read by others than its owner", "path", path, "mode", fi.Mode().Perm().String())
	}
	signer, err := gossh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("ssh ui: host key %s: %w", path, err)
	}
	return signer, nil
}

func createHostKey(path string) ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := gossh.MarshalPrivateKey(priv, "panther ssh ui host key")
	if err != nil {
		return nil, err
	}
	data := pem.EncodeToMemory(block)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another process made one first: use it.
		return os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, err
	}
	return data, nil
}
