// Package mcp serves the knowledge base to MCP clients (Claude Desktop, editors, other agents) with
// the official Go SDK, over stdio or streamable HTTP. It holds no business logic: its tools and
// resources call the same service methods as the command line (kb.Service, the store's sources, the
// crawler of `panther crawl`), and only shape their answers for MCP: readable text for the model
// plus typed structured content for programs, every passage with its citation.
//
// Tools: search, read, list_sources; crawl and add_source only when the server is built with write
// access; ask only when an Asker is given. Resources: every stored page as panther://doc/{url}
// (markdown).
//
// Everything a client can ask for is bounded: query and URL lengths, hits per search, pages per
// crawl, characters per answer, requests handled at once, and the time one request may take.
package mcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"panther"
	"panther/agent"
)

// Searcher ranks passages; *kb.Service satisfies it.
type Searcher interface {
	Search(ctx context.Context, q panther.Query) ([]panther.Hit, error)
}

// DocumentReader returns stored pages and their chunks (for url#anchor sections); *kb.Service
// satisfies it.
type DocumentReader interface {
	Document(ctx context.Context, url string) (panther.Document, error)
	Documents(ctx context.Context, f panther.DocFilter) ([]panther.Document, error)
	Chunks(ctx context.Context, docID int64) ([]panther.Chunk, error)
}

// KnowledgeBase is what every server needs: *kb.Service.
type KnowledgeBase interface {
	Searcher
	DocumentReader
}

// SourceLister lists the crawled sources; every panther.SourceStore (*sqlite.DB) is one.
type SourceLister interface {
	Sources(ctx context.Context) ([]panther.Source, error)
}

// SourceAdder registers a source without crawling it; every panther.SourceStore (*sqlite.DB) is one,
// and so is *crawl.Manager.
type SourceAdder interface {
	AddSource(ctx context.Context, url string) (panther.Source, error)
}

// Crawler grows the knowledge base from a seed, at most maxPages pages at a time. The implementation
// decides politeness and which addresses may be reached (cmd/panther's siteCrawler dials through
// netguard); the crawl tool only bounds and checks what a client asks for.
type Crawler interface {
	CrawlSite(ctx context.Context, seed string, maxPages int) (agent.CrawlReport, error)
}

// Asker answers a question from the knowledge base with the sources the answer cites.
type Asker interface {
	Ask(ctx context.Context, question string) (answer string, citations []panther.Citation, err error)
}

// The services a KnowledgeBase may also offer, used when present: the default search mode to report,
// and how much of the knowledge base vectors cover (as `panther search` warns).
type (
	defaultModer interface {
		DefaultMode() panther.SearchMode
	}
	coverager interface {
		Coverage(ctx context.Context) (withVector, searchable int, err error)
	}
)

// Options configure a server. Zero values take the defaults.
type Options struct {
	// AllowWrite registers the crawl and add_source tools, which grow the knowledge base; Crawler
	// must then be set, and the SourceLister given to NewServer must also be a SourceAdder. Without
	// it the server is read-only.
	AllowWrite bool
	Crawler    Crawler
	// Asker registers the ask tool when not nil.
	Asker Asker
	// Version is reported to clients as the server's version.
	Version string
	// Logger receives the server's own log lines; nil discards them. Never give a stdio server a
	// logger that writes to stdout: stdout carries the protocol.
	Logger *slog.Logger
	// MaxConcurrent bounds the requests (tool calls, resource reads and listings) handled at once;
	// more wait their turn (DefaultMaxConcurrent). Crawls are not counted: one runs at a time.
	MaxConcurrent int
	// CallTimeout bounds a search, read or listing (DefaultCallTimeout); AskTimeout an ask
	// (DefaultAskTimeout); CrawlTimeout a crawl (DefaultCrawlTimeout).
	CallTimeout  time.Duration
	AskTimeout   time.Duration
	CrawlTimeout time.Duration
	// SessionTimeout closes HTTP sessions idle for that long (DefaultSessionTimeout), so that clients
	// that vanish without closing do not pile up.
	SessionTimeout time.Duration
}

// Defaults of Options.
const (
	DefaultMaxConcurrent  = 8
	DefaultCallTimeout    = time.Minute
	DefaultAskTimeout     = 10 * time.Minute
	DefaultCrawlTimeout   = 30 * time.Minute
	DefaultSessionTimeout = 30 * time.Minute
)

// Server is an MCP server over one knowledge base. One Server serves any number of sessions: a stdio
// one with ServeIO, HTTP ones through HTTPHandler.
type Server struct {
	kb      KnowledgeBase
	sources SourceLister
	// adder is sources as a SourceAdder; nil unless AllowWrite.
	adder SourceAdder
	opts  Options
	log   *slog.Logger
	sdk   *sdk.Server
	// busy bounds the requests handled at once; crawling admits one crawl at a time.
	busy     chan struct{}
	crawling chan struct{}
	// pageSize is ResourcePageSize; tests make it smaller.
	pageSize int
}

// NewServer returns a server over kb and sources with the tools and resources opts allow.
func NewServer(kb KnowledgeBase, sources SourceLister, opts Options) (*Server, error) {
	if kb == nil || sources == nil {
		return nil, panther.Invalidf("mcp: a knowledge base and a source lister are required")
	}
	var adder SourceAdder
	if opts.AllowWrite {
		if opts.Crawler == nil {
			return nil, panther.Invalidf("mcp: write access needs a Crawler")
		}
		a, ok := sources.(SourceAdder)
		if !ok {
			return nil, panther.Invalidf("mcp: write access needs sources that can be added to (a SourceAdder)")
		}
		adder = a
	}
	if opts.MaxConcurrent < 0 || opts.CallTimeout < 0 || opts.AskTimeout < 0 || opts.CrawlTimeout < 0 || opts.SessionTimeout < 0 {
		return nil, panther.Invalidf("mcp: limits and timeouts cannot be negative")
	}
	if opts.MaxConcurrent == 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	if opts.CallTimeout == 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if opts.AskTimeout == 0 {
		opts.AskTimeout = DefaultAskTimeout
	}
	if opts.CrawlTimeout == 0 {
		opts.CrawlTimeout = DefaultCrawlTimeout
	}
	if opts.SessionTimeout == 0 {
		opts.SessionTimeout = DefaultSessionTimeout
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		kb:       kb,
		sources:  sources,
		adder:    adder,
		opts:     opts,
		log:      log,
		busy:     make(chan struct{}, opts.MaxConcurrent),
		crawling: make(chan struct{}, 1),
		pageSize: ResourcePageSize,
	}
	s.sdk = sdk.NewServer(&sdk.Implementation{Name: "panther", Title: "panther documentation knowledge base", Version: opts.Version}, &sdk.ServerOptions{
		Instructions: instructions(opts),
		Logger:       log,
		// No logging capability: the server logs to its own logger, not to clients. Tools and
		// resources are inferred from what is registered.
		Capabilities: &sdk.ServerCapabilities{},
	})
	s.addTools()
	s.addResources()
	s.sdk.AddReceivingMiddleware(s.limit)
	return s, nil
}

func instructions(opts Options) string {
	text := "panther serves a knowledge base of crawled documentation. Use search to find passages (each cites " +
		"its page and section as url#anchor), read to get a whole page or one section as markdown, and " +
		"list_sources to see which sites are covered. Cite the url#anchor of what you use."
	if opts.AllowWrite {
		text += " When a site you need is missing, crawl adds it; add_source only registers a site, for a crawl later."
	}
	if opts.Asker != nil {
		text += " ask answers a question with citations, searching and reading on its own."
	}
	return text
}

// ServeIO serves one session over newline-delimited JSON-RPC on in and out (stdin and stdout for
// `panther mcp`) until in is closed, which is a normal end, or ctx is cancelled.
func (s *Server) ServeIO(ctx context.Context, in io.Reader, out io.Writer) error {
	t := &sdk.IOTransport{Reader: io.NopCloser(in), Writer: nopWriteCloser{out}, MaxLineLength: maxRequestBytes}
	err := s.sdk.Run(ctx, t)
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
		return nil
	}
	return fmt.Errorf("mcp: %w", err)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// maxRequestBytes bounds one JSON-RPC message a client sends, over stdio and over HTTP: the largest
// legitimate one (a search or a question) is a few kilobytes.
const maxRequestBytes = 1 << 20

// HTTPHandler serves the streamable HTTP transport, for mounting at /mcp. It adds no authentication:
// the mount point does. Each call returns a handler with its own sessions, so mount one. Requests
// arriving on a loopback address with another Host are refused (the SDK's DNS rebinding guard).
func (s *Server) HTTPHandler() http.Handler {
	return sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s.sdk }, &sdk.StreamableHTTPOptions{
		Logger:              s.log,
		SessionTimeout:      s.opts.SessionTimeout,
		MaxRequestBodyBytes: maxRequestBytes,
	})
}

// limit bounds the work requests handled at once and the time each may take. Calls are handled
// concurrently (the SDK runs each in its own goroutine), so a client that sends a hundred searches at
// once waits for them rather than opening a hundred store readers. Crawls are left out of the count:
// the crawl tool admits one at a time and turns others away at once instead of queueing them.
func (s *Server) limit(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		switch method {
		case "tools/call":
			timeout := s.opts.CallTimeout
			if r, ok := req.(*sdk.CallToolRequest); ok && r.Params != nil {
				switch r.Params.Name {
				case "crawl":
					ctx, cancel := context.WithTimeout(ctx, s.opts.CrawlTimeout)
					defer cancel()
					return next(ctx, method, req)
				case "ask":
					timeout = s.opts.AskTimeout
				}
			}
			return s.withSlot(ctx, timeout, func(ctx context.Context) (sdk.Result, error) { return next(ctx, method, req) })
		case "resources/read":
			return s.withSlot(ctx, s.opts.CallTimeout, func(ctx context.Context) (sdk.Result, error) { return next(ctx, method, req) })
		case "resources/list":
			// Answered here: the SDK lists only resources registered one by one, and the stored pages
			// are many and change with every crawl.
			var cursor string
			if r, ok := req.(*sdk.ListResourcesRequest); ok && r.Params != nil {
				cursor = r.Params.Cursor
			}
			return s.withSlot(ctx, s.opts.CallTimeout, func(ctx context.Context) (sdk.Result, error) {
				return s.listDocuments(ctx, cursor)
			})
		}
		return next(ctx, method, req)
	}
}

// withSlot runs f once fewer than MaxConcurrent requests are running, with at most timeout to finish.
func (s *Server) withSlot(ctx context.Context, timeout time.Duration, f func(context.Context) (sdk.Result, error)) (sdk.Result, error) {
	select {
	case s.busy <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.busy }()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return f(ctx)
}
