// Package httpapi is panther's HTTP face: a JSON API under /v1 (search, documents, sources, crawls,
// agent sessions with live events over server-sent events), /healthz, /readyz, Prometheus /metrics,
// an OpenAPI 3.1 description at /v1/openapi.json, and the MCP server mounted at /mcp (read-only for
// read tokens, with its write tools for write tokens).
//
// It holds no business logic: each handler decodes and checks its input, calls one of the services
// it is given (the same ones the command line and the MCP server call), and encodes the answer.
// Errors are {"error": "...", "kind": "invalid|not_found|conflict|unavailable|unauthorized|forbidden"},
// with the status mapped from panther's error kinds.
//
// Access is by bearer tokens with scopes read < write < admin: reading needs read, changing the
// knowledge base or running agents needs write. With no tokens the API is open (the caller decides
// where it may listen). Everything is bounded: request bodies, query lengths, hits per search,
// concurrent event streams.
package httpapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"panther"
	"panther/agent"
	"panther/crawl"
)

// The services the API calls, each as small as its handlers need.
type (
	// Searcher ranks passages; *kb.Service is one.
	Searcher interface {
		Search(ctx context.Context, q panther.Query) ([]panther.Hit, error)
		DefaultMode() panther.SearchMode
	}
	// Documents lists and reads stored pages; *kb.Service is one.
	Documents interface {
		Documents(ctx context.Context, f panther.DocFilter) ([]panther.Document, error)
		Document(ctx context.Context, url string) (panther.Document, error)
		Chunks(ctx context.Context, docID int64) ([]panther.Chunk, error)
	}
	// Sources adds, lists and removes the seeds of the knowledge base; *crawl.Manager is one.
	Sources interface {
		Sources(ctx context.Context) ([]panther.Source, error)
		AddSource(ctx context.Context, url string) (panther.Source, error)
		RemoveSource(ctx context.Context, id int64, withDocuments bool) error
	}
	// Crawls runs crawls in the background; *crawl.Manager is one.
	Crawls interface {
		Start(ctx context.Context, sourceID int64, req crawl.JobRequest) (crawl.Job, error)
		Job(id string) (crawl.Job, error)
		Jobs() []crawl.Job
		Running() []crawl.Job
		Cancel(id string) (crawl.Job, error)
		Subscribe(id string) (<-chan crawl.Job, func(), error)
		Totals() crawl.PageTotals
	}
	// LiveSessions runs agent sessions in the background; *agent.Live is one.
	LiveSessions interface {
		Start(ctx context.Context, req agent.AskRequest) (panther.Session, error)
		Cancel(ctx context.Context, id string) (string, error)
		Subscribe(ctx context.Context, id string, after int64) (<-chan agent.LiveEvent, func(), error)
		Running() []panther.Session
		IsRunning(id string) bool
		Stats() agent.LiveStats
	}
	// SessionReader reads stored sessions; every panther.SessionStore is one.
	SessionReader interface {
		Session(ctx context.Context, id string) (panther.Session, error)
		Sessions(ctx context.Context, f panther.SessionFilter) ([]panther.Session, error)
		SessionMessages(ctx context.Context, id string) ([]panther.SessionMessage, error)
	}
	// StatsReader counts what the store holds; every panther.Store is one.
	StatsReader interface {
		Stats(ctx context.Context) (panther.Stats, error)
	}
	// Embedding says which embedder the knowledge base uses and how far its vectors cover the
	// passages; *kb.Service is one.
	Embedding interface {
		Embedder() panther.Embedder
		Coverage(ctx context.Context) (withVector, searchable int, err error)
	}
	// BackfillReporter tells how the background embedding of passages goes.
	BackfillReporter interface {
		BackfillStatus() BackfillStatus
	}
)

// BackfillStatus is the state of the background embedding of passages that have no vector yet.
type BackfillStatus struct {
	Running bool `json:"running"`
	// Done and Total count the passages with a vector and all searchable ones, as of the last batch.
	Done     int       `json:"done"`
	Total    int       `json:"total"`
	Embedded int       `json:"embedded"`
	Started  time.Time `json:"started_at,omitzero"`
	Ended    time.Time `json:"ended_at,omitzero"`
	Error    string    `json:"error,omitempty"`
}

// AgentInfo describes an agent a session may run; the fields are those of `panther agents --json`.
type AgentInfo struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Mode        string   `json:"mode"`
	Model       string   `json:"model,omitempty"`
	Source      string   `json:"source"`
	Tools       []string `json:"tools"`
}

// Options wire the API to its services and set its limits. Zero limits take the defaults.
type Options struct {
	Search       Searcher
	Documents    Documents
	Sources      Sources
	Crawls       Crawls
	Sessions     LiveSessions
	SessionStore SessionReader
	Stats        StatsReader
	// Agents lists the agents sessions may run.
	Agents func() []AgentInfo
	// Ready checks that the store answers, for /readyz.
	Ready func(ctx context.Context) error

	// Optional services: without DocumentRemover, DELETE /v1/document answers 503; without
	// Embedding and Backfill, status says nothing of vectors; without MCP, /mcp does not exist.
	DocumentRemover panther.DocumentRemover
	Embedding       Embedding
	Backfill        BackfillReporter
	// MCP serves /mcp to read-scope tokens; MCPWrite, when set, serves it instead to tokens that may
	// write (and to everyone when no tokens are configured, as the rest of the API is open then).
	// They are two handlers, each with its own MCP sessions, so that a session begun with a write
	// token cannot be continued with a read one. MCPWrite needs MCP.
	MCP      http.Handler
	MCPWrite http.Handler
	// UI, when set, serves every path outside the API's (/v1/, /mcp, /healthz, /readyz, /metrics):
	// the web interface. It needs no token; the pages it serves call the API with one.
	UI http.Handler

	// Registry receives the API's metrics and is what /metrics serves; nil makes a new one.
	Registry *prometheus.Registry
	// Tokens are the bearer tokens accepted; none leaves the API open.
	Tokens []Token
	// MetricsPublic serves /metrics without a token.
	MetricsPublic bool

	// MaxBodyBytes bounds a request body (DefaultMaxBodyBytes); larger ones get 413.
	MaxBodyBytes int64
	// MaxStreams bounds the event streams open at once (DefaultMaxStreams).
	MaxStreams int
	// StreamWriteTimeout bounds one write to an event stream (DefaultStreamWriteTimeout); the
	// server's WriteTimeout does not apply to streams, which may last as long as a run.
	StreamWriteTimeout time.Duration
	// Heartbeat is how often an idle event stream gets a comment line (DefaultHeartbeat), so that
	// proxies keep it open and a dead client is noticed.
	Heartbeat time.Duration
	// Logger gets one line per request (never a token); nil discards.
	Logger *slog.Logger
}

// Defaults and bounds.
const (
	DefaultMaxBodyBytes       = 1 << 20
	DefaultMaxStreams         = 64
	DefaultStreamWriteTimeout = 30 * time.Second
	DefaultHeartbeat          = 15 * time.Second
	// MaxK bounds the hits of one search.
	MaxK = 50
	// MaxQueryBytes bounds a search query; MaxURLBytes a URL or prefix given as a parameter.
	MaxQueryBytes = 1000
	MaxURLBytes   = 4096
	// MaxPromptBytes bounds a prompt to an agent.
	MaxPromptBytes = 32_000
	// MaxListLimit bounds the items of one listing.
	MaxListLimit = 1000
)

// server is the API's state: its options and what it shares between requests.
type server struct {
	opts   Options
	log    *slog.Logger
	mux    *http.ServeMux
	tokens []tokenHash
	// streamSlots holds a token per open event stream; streams are the patterns of stream routes.
	streamSlots chan struct{}
	streams     map[string]bool
	metrics     *metrics
}

// requestInfo is what the handlers learn about a request that its log line reports.
type requestInfo struct {
	// token is the name (never the value) of the token the request was authorized with.
	token string
	// scope is what the request may do once authorized: its token's scope, or ScopeAdmin when the
	// API is open.
	scope Scope
}

// grantedScope is the scope authorize granted r.
func grantedScope(r *http.Request) Scope {
	if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
		return info.scope
	}
	return scopeNone
}

type requestInfoKey struct{}

// route is one endpoint: the ServeMux pattern, the scope it needs and its handler. The list of
// routes is what New registers and what the OpenAPI test compares with the document.
type route struct {
	method, path string
	scope        Scope
	// stream marks event streams, kept out of the latency histogram.
	stream bool
	h      func(s *server, w http.ResponseWriter, r *http.Request) error
}

func routes() []route {
	return []route{
		{method: "GET", path: "/healthz", scope: scopeNone, h: (*server).healthz},
		{method: "GET", path: "/readyz", scope: scopeNone, h: (*server).readyz},
		{method: "GET", path: "/metrics", scope: ScopeRead, h: (*server).metricsHandler},
		{method: "GET", path: "/v1/openapi.json", scope: scopeNone, h: (*server).openapi},
		{method: "GET", path: "/v1/search", scope: ScopeRead, h: (*server).search},
		{method: "GET", path: "/v1/documents", scope: ScopeRead, h: (*server).documents},
		{method: "GET", path: "/v1/document", scope: ScopeRead, h: (*server).document},
		{method: "DELETE", path: "/v1/document", scope: ScopeWrite, h: (*server).deleteDocument},
		{method: "GET", path: "/v1/sources", scope: ScopeRead, h: (*server).sources},
		{method: "POST", path: "/v1/sources", scope: ScopeWrite, h: (*server).addSource},
		{method: "DELETE", path: "/v1/sources/{id}", scope: ScopeWrite, h: (*server).removeSource},
		{method: "POST", path: "/v1/sources/{id}/crawl", scope: ScopeWrite, h: (*server).startCrawl},
		{method: "GET", path: "/v1/crawls", scope: ScopeRead, h: (*server).crawls},
		{method: "GET", path: "/v1/crawls/{id}", scope: ScopeRead, h: (*server).crawlJob},
		{method: "POST", path: "/v1/crawls/{id}/cancel", scope: ScopeWrite, h: (*server).cancelCrawl},
		{method: "GET", path: "/v1/crawls/{id}/events", scope: ScopeRead, stream: true, h: (*server).crawlEvents},
		{method: "POST", path: "/v1/sessions", scope: ScopeWrite, h: (*server).startSession},
		{method: "GET", path: "/v1/sessions", scope: ScopeRead, h: (*server).listSessions},
		{method: "GET", path: "/v1/sessions/{id}", scope: ScopeRead, h: (*server).getSession},
		{method: "POST", path: "/v1/sessions/{id}/messages", scope: ScopeWrite, h: (*server).continueSession},
		{method: "POST", path: "/v1/sessions/{id}/cancel", scope: ScopeWrite, h: (*server).cancelSession},
		{method: "GET", path: "/v1/sessions/{id}/events", scope: ScopeRead, stream: true, h: (*server).sessionEvents},
		{method: "GET", path: "/v1/agents", scope: ScopeRead, h: (*server).agents},
		{method: "GET", path: "/v1/status", scope: ScopeRead, h: (*server).status},
	}
}

// New returns the API's handler.
func New(opts Options) (http.Handler, error) {
	if opts.MCPWrite != nil && opts.MCP == nil {
		return nil, panther.Invalidf("httpapi: MCPWrite needs MCP, the handler for read tokens")
	}
	var missing []string
	for name, ok := range map[string]bool{
		"Search": opts.Search != nil, "Documents": opts.Documents != nil, "Sources": opts.Sources != nil,
		"Crawls": opts.Crawls != nil, "Sessions": opts.Sessions != nil, "SessionStore": opts.SessionStore != nil,
		"Stats": opts.Stats != nil, "Agents": opts.Agents != nil, "Ready": opts.Ready != nil,
	} {
		if !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, panther.Invalidf("httpapi: options %s are required", strings.Join(sortedStrings(missing), ", "))
	}
	if opts.MaxBodyBytes < 0 || opts.MaxStreams < 0 || opts.StreamWriteTimeout < 0 || opts.Heartbeat < 0 {
		return nil, panther.Invalidf("httpapi: limits must not be negative")
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxStreams == 0 {
		opts.MaxStreams = DefaultMaxStreams
	}
	if opts.StreamWriteTimeout == 0 {
		opts.StreamWriteTimeout = DefaultStreamWriteTimeout
	}
	if opts.Heartbeat == 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	s := &server{opts: opts, log: opts.Logger, mux: http.NewServeMux(),
		streamSlots: make(chan struct{}, opts.MaxStreams), streams: map[string]bool{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	seen := map[string]bool{}
	for i, t := range opts.Tokens {
		if err := t.validate(); err != nil {
			return nil, fmt.Errorf("httpapi: token %d: %w", i+1, err)
		}
		if seen[t.Name] {
			return nil, panther.Invalidf("httpapi: two tokens are named %q", t.Name)
		}
		seen[t.Name] = true
		s.tokens = append(s.tokens, tokenHash{name: t.Name, scope: t.Scope, sum: sha256.Sum256([]byte(t.Secret))})
	}
	m, err := newMetrics(opts.Registry, opts.Crawls, opts.Sessions)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	for _, rt := range routes() {
		scope := rt.scope
		if rt.path == "/metrics" && opts.MetricsPublic {
			scope = scopeNone
		}
		s.mux.Handle(rt.method+" "+rt.path, s.endpoint(rt, scope))
		s.streams[rt.method+" "+rt.path] = rt.stream
	}
	if opts.MCP != nil {
		s.mux.Handle("/mcp", s.endpoint(route{path: "/mcp", stream: true, h: func(_ *server, w http.ResponseWriter, r *http.Request) error {
			h := opts.MCP
			if opts.MCPWrite != nil && grantedScope(r) >= ScopeWrite {
				h = opts.MCPWrite
			}
			h.ServeHTTP(w, r)
			return nil
		}}, ScopeRead))
		s.streams["/mcp"] = true
	}
	return http.HandlerFunc(s.serveHTTP), nil
}

// serveHTTP is the outermost handler: panics, body limits, unknown routes, metrics and the log line.
func (s *server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusWriter{ResponseWriter: w}
	_, pattern := s.mux.Handler(r)
	routeLabel := "unmatched"
	if _, path, ok := strings.Cut(pattern, " "); ok {
		routeLabel = path
	} else if pattern != "" {
		routeLabel = pattern
	}
	stream := s.streams[pattern]
	info := &requestInfo{}
	r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info))
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("http handler panicked", "method", r.Method, "route", routeLabel, "panic", p)
			if !rec.wrote {
				writeError(rec, http.StatusInternalServerError, "internal", "internal error (logged)")
			}
		}
		code := rec.code
		if code == 0 {
			code = http.StatusOK
		}
		s.metrics.observe(routeLabel, r.Method, code, time.Since(start), stream)
		level := slog.LevelInfo
		if routeLabel == "/healthz" || routeLabel == "/readyz" || routeLabel == "/metrics" {
			// Probes and scrapes come every few seconds and would drown the log.
			level = slog.LevelDebug
		}
		s.log.Log(r.Context(), level, "http", "method", r.Method, "route", routeLabel, "path", r.URL.Path, "status", code,
			"ms", time.Since(start).Milliseconds(), "caller", info.token)
	}()
	// Refused before anything reads it: a body said to be too large is not read at all.
	if r.ContentLength > s.opts.MaxBodyBytes {
		writeError(rec, http.StatusRequestEntityTooLarge, "invalid", fmt.Sprintf("the request body is larger than %d bytes", s.opts.MaxBodyBytes))
		stopReading(w)
		return
	}
	// The server's own ResponseWriter, not rec: through it MaxBytesReader tells net/http that the
	// limit was hit, so that the connection is closed after the answer.
	body := &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)}
	r.Body = body
	defer func() {
		if r.ContentLength != 0 && !body.done {
			stopReading(w)
		}
	}()
	if pattern == "" && s.opts.UI != nil && !apiPath(r.URL.Path) {
		routeLabel = "ui"
		s.opts.UI.ServeHTTP(rec, r)
		return
	}
	if pattern == "" {
		// The mux's own 404 and 405 answers, as JSON errors.
		probe := &probeWriter{header: http.Header{}}
		h, _ := s.mux.Handler(r)
		h.ServeHTTP(probe, r)
		if allow := probe.header.Get("Allow"); allow != "" {
			rec.Header().Set("Allow", allow)
		}
		if probe.code == http.StatusMethodNotAllowed {
			writeError(rec, probe.code, "invalid", fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, probe.header.Get("Allow")))
			return
		}
		writeError(rec, http.StatusNotFound, "not_found", fmt.Sprintf("no route %s %s (see /v1/openapi.json)", r.Method, r.URL.Path))
		return
	}
	s.mux.ServeHTTP(rec, r)
}

// limitedBody notes whether the handler read the body to its end.
type limitedBody struct {
	io.ReadCloser
	done bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.done = true
	}
	return n, err
}

// stopReading ends the reading of a request whose body was refused (too large, or not read at all
// because the request was refused before: no token, no such route). net/http would otherwise read up
// to 256 KiB more of it when the handler returns, to find its end and reuse the connection: a
// client streaming a huge chunked body would make the server read several times the limit. What it
// has buffered is still read, so a small unread body keeps its connection alive. Measured by
// TestOversizedBodiesAreNotReadWhole.
func stopReading(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}

// apiPath reports whether path belongs to the API rather than to the web interface.
func apiPath(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/metrics", "/mcp", "/v1":
		return true
	}
	return strings.HasPrefix(path, "/v1/") || strings.HasPrefix(path, "/mcp/")
}

// endpoint wraps a handler with its authorization and error mapping.
func (s *server) endpoint(rt route, scope Scope) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, ok := s.authorize(w, r, scope)
		if !ok {
			return
		}
		if err := rt.h(s, w, r); err != nil {
			s.fail(w, r, err)
		}
	})
}

// fail answers err as a JSON error with the status its kind maps to.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, kind := errorStatus(err)
	msg := err.Error()
	if code == http.StatusInternalServerError {
		// Internal errors may name files and hosts; the log has them, the client gets none.
		s.log.Error("http request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error (logged)"
	}
	if sw, ok := w.(*statusWriter); ok && sw.wrote {
		return
	}
	writeError(w, code, kind, msg)
}

// errTooLarge marks a body that went over the limit while being read.
var errTooLarge = errors.New("request body too large")

func errorStatus(err error) (int, string) {
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, errTooLarge) || errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, "invalid"
	case errors.Is(err, panther.ErrInvalid):
		return http.StatusBadRequest, "invalid"
	case errors.Is(err, panther.ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, panther.ErrConflict):
		return http.StatusConflict, "conflict"
	case errors.Is(err, panther.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "unavailable"
	case errors.Is(err, context.Canceled):
		// The client went away (or the server is stopping): nobody reads this answer.
		return http.StatusServiceUnavailable, "unavailable"
	}
	return http.StatusInternalServerError, "internal"
}

// statusWriter records the status for metrics and logs, and lets handlers reach the connection
// (Flush, deadlines) through http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.code, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Flush is here as well as through Unwrap for handlers (the MCP SDK's) that assert http.Flusher.
func (w *statusWriter) Flush() {
	if !w.wrote {
		w.code, w.wrote = http.StatusOK, true
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// probeWriter captures what the mux answers for a request no route matches.
type probeWriter struct {
	header http.Header
	code   int
}

func (p *probeWriter) Header() http.Header         { return p.header }
func (p *probeWriter) Write(b []byte) (int, error) { return len(b), nil }
func (p *probeWriter) WriteHeader(code int)        { p.code = code }
