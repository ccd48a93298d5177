package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"panther"
	"panther/agent"
	"panther/crawl"
	"panther/httpapi"
	"panther/httpapi/ui"
	"panther/jobs"
	"panther/kb"
	"panther/mcp"
	"panther/sshui"
)

const defaultServeAddr = "127.0.0.1:7777"

// Server time limits. WriteTimeout does not bound event streams, which extend their own deadlines.
const (
	serveReadHeaderTimeout = 10 * time.Second
	serveReadTimeout       = time.Minute
	serveWriteTimeout      = time.Minute
	serveIdleTimeout       = 2 * time.Minute
	serveMaxHeaderBytes    = 64 << 10
	// serveShutdownTimeout bounds a graceful shutdown: running sessions saving, crawls stopping,
	// requests finishing.
	serveShutdownTimeout = 30 * time.Second
)

func (a *app) serveCommand() *cobra.Command {
	var flags serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the knowledge base, crawls and agents over an HTTP API",
		Long: `Serve the HTTP API: search with citations, documents, sources and background crawls, agent
sessions that run in the background with live events (server-sent events), status, Prometheus
metrics at /metrics, /healthz and /readyz. The API is described at /v1/openapi.json. The web
interface is at /, and the MCP server at /mcp (search, read and list_sources for read tokens; write tokens also get
crawl, add_source and ask).

Access is by bearer tokens from the config's [server] table, each with scopes read, write or admin
(write may change the knowledge base and run agents); token values are references (env:NAME,
file:/path), never the tokens themselves. With no token configured the API is open, so serve then
listens only on a loopback address.

Crawls started over the API go through the same address policy as agents' ([web] allow). When an
embedder is configured, passages without vectors are embedded in the background (at start and after
each crawl) while search keeps serving. SIGINT or SIGTERM stops it gracefully: running sessions are
saved as cancelled and crawls stop where they can resume.`,
		Example: `  panther serve
  panther serve --addr 127.0.0.1:8080
  curl -H "Authorization: Bearer $PANTHER_TOKEN" 'http://127.0.0.1:7777/v1/search?q=partial+index'`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.serve(cmd.Context(), flags, nil)
		},
	}
	cmd.Flags().StringVar(&flags.sshAddr, "ssh-addr", "", "serve the SSH terminal UI on this host:port, e.g. :2222 (default: the config's [ssh] addr; keys from [ssh] authorized_keys, else ~/.ssh/authorized_keys)")
	cmd.Flags().BoolVar(&flags.tailnet, "tailscale", false, "join the tailnet as its own node ([tailscale] table) and serve HTTP and SSH there instead of on local addresses; needs a build with -tags tsnet")
	cmd.Flags().StringVar(&flags.addr, "addr", "", "listen on this host:port (default: the config's [server] addr, else "+defaultServeAddr+")")
	return cmd
}

// serverTokens resolves the configured tokens' references. A token's scope is the highest it names.
func (a *app) serverTokens(cfg *fileConfig) ([]httpapi.Token, error) {
	var out []httpapi.Token
	for i, t := range cfg.Server.Tokens {
		v, err := a.resolveSecret(context.Background(), t.Token, true)
		if err != nil {
			return nil, fmt.Errorf("server.tokens[%d] (%s): %w", i, t.Name, err)
		}
		tok := httpapi.Token{Name: t.Name, Secret: v}
		for _, s := range t.Scopes {
			sc, err := httpapi.ParseScope(s)
			if err != nil {
				return nil, fmt.Errorf("server.tokens[%d] (%s): %w", i, t.Name, err)
			}
			tok.Scope = max(tok.Scope, sc)
		}
		if len(v) < httpapi.MinTokenBytes {
			return nil, panther.Invalidf("server.tokens[%d] (%s): the token is shorter than %d characters; use a random one (openssl rand -hex 32)", i, t.Name, httpapi.MinTokenBytes)
		}
		out = append(out, tok)
	}
	return out, nil
}

// checkOpenAddr refuses to serve an open API on an address others can reach.
func checkOpenAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return panther.Invalidf("--addr %q: want host:port, e.g. %s", addr, defaultServeAddr)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return panther.Invalidf("refusing to listen on %s without API tokens: anyone who can reach it could read the knowledge base, "+
		"change it and run agents. Listen on 127.0.0.1, or add a token to the config file: "+
		`[[server.tokens]] name = "me", token = "env:PANTHER_TOKEN", scopes = ["write"] (see config.example.toml)`, addr)
}

// serve runs the server until ctx ends, then shuts it down gracefully. onListen, when not nil, is
// told the address listened on (tests listen on port 0).
// serveFlags are serve's command-line choices of where to listen.
type serveFlags struct {
	addr, sshAddr string
	tailnet       bool
}

func (a *app) serve(ctx context.Context, flags serveFlags, onListen func(net.Addr)) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	log, err := a.logger("info")
	if err != nil {
		return err
	}
	if flags.tailnet && !tsnetBuilt {
		return errNoTsnet
	}
	if err := applySSHAddrFlag(cfg, flags.sshAddr, a.getenv); err != nil {
		return err
	}
	addr := firstNonEmpty(flags.addr, cfg.Server.Addr, defaultServeAddr)
	tokens, err := a.serverTokens(cfg)
	if err != nil {
		return err
	}
	if len(tokens) == 0 && !flags.tailnet {
		if err := checkOpenAddr(addr); err != nil {
			return err
		}
	}
	ms, err := a.models("")
	if err != nil {
		return err
	}
	policy, err := a.webPolicy()
	if err != nil {
		return err
	}
	db, svc, err := a.openKB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := a.metrics(reg, func(ctx context.Context) (int64, error) {
		st, err := db.Stats(ctx)
		return st.SizeBytes, err
	}, log)
	if err != nil {
		return err
	}
	defer metrics.Close()
	go metrics.Report(ctx, 0)
	// Every model call, search, crawled page and sub-agent is counted, whichever face started it.
	ms.instrument = metrics.InstrumentModel
	searcher, err := metrics.InstrumentSearcher(svc)
	if err != nil {
		return err
	}
	indexer, err := metrics.InstrumentIndex(svc)
	if err != nil {
		return err
	}
	rt, err := a.agentRuntime(db, svc, ms)
	if err != nil {
		return err
	}
	rt.Tools["kb_search"] = agent.KBSearch(searcher)
	rt.OnSubagent = metrics.Subagent
	live, err := agent.NewLive(&agent.Sessions{Runtime: rt, Store: db}, agent.LiveOptions{})
	if err != nil {
		return err
	}
	// Pages indexed one at a time leave the search index in many small segments (see runCrawl), and
	// merging them keeps searches fast; but a merge rewrites the whole index, so under a stream of
	// small crawls it runs at most once per mergeInterval instead of after each (measured: merging
	// after every crawl at 5 crawls/s filled the crawl queue; RELIABILITY.md).
	merger := newDebouncer(mergeInterval, func(ctx context.Context) {
		if err := db.Optimize(ctx); err != nil {
			log.Warn("merging the search index", "err", err)
		}
	})
	mergeCtx, stopMerge := context.WithCancel(context.WithoutCancel(ctx))
	mergeDone := make(chan struct{})
	go func() { merger.run(mergeCtx); close(mergeDone) }()
	defer func() { stopMerge(); <-mergeDone }()
	// Crawls asked for by agents and MCP clients, one at a time between them, merge through the same
	// debounce as the API's.
	clientCrawler := &siteCrawler{db: db, svc: svc, transport: policy.Transport(),
		merge: func(context.Context) error { merger.trigger(); return nil }}
	rt.Tools["crawl"] = agent.Crawl(clientCrawler)
	bf := &backfiller{svc: svc, log: log, kick: make(chan struct{}, 1), done: make(chan struct{})}
	manager, err := crawl.NewManager(crawl.ManagerOptions{
		Store: db, Index: indexer,
		Crawl: crawl.Options{HostRate: defaultRemoteRate, Transport: metrics.InstrumentTransport(policy.Transport()), Logger: log},
		Adjust: func(seed string, o *crawl.Options) {
			if isLocalSeed(seed) {
				o.HostRate = 0
			}
		},
		AfterCrawl: func(ctx context.Context, j crawl.Job) error {
			if s := j.Summary; s != nil && s.New+s.Changed+s.Gone > 0 {
				merger.trigger()
			}
			bf.trigger()
			return nil
		},
		OnJobEnd: metrics.CrawlJob,
		Logger:   log,
	})
	if err != nil {
		return err
	}
	// Scheduled re-crawls: on SQLite this process runs them; on PostgreSQL the workers do, once
	// across the cluster.
	if kind, where := describeStore(db); kind == kindSQLite {
		sched, err := jobs.OpenScheduler(ctx, where, func(ctx context.Context, sourceID int64, r jobs.CrawlRequest) (string, error) {
			j, err := manager.Start(ctx, sourceID, r.JobRequest)
			return j.ID, err
		}, log)
		if err != nil {
			return err
		}
		defer sched.Close()
		schedCtx, stopSched := context.WithCancel(context.WithoutCancel(ctx))
		defer stopSched()
		go func() {
			if err := sched.Run(schedCtx); err != nil && !errors.Is(err, context.Canceled) {
				log.Warn("scheduled re-crawls stopped", "err", err)
			}
		}()
	}
	opts := httpapi.Options{
		Search: searcher, Documents: svc, Sources: manager, Crawls: manager, Sessions: live, SessionStore: db, Stats: db,
		Agents:          func() []httpapi.AgentInfo { return agentInfos(rt.Definitions) },
		Ready:           func(ctx context.Context) error { _, err := db.Sources(ctx); return err },
		DocumentRemover: db, Embedding: svc,
		Registry: reg, Tokens: tokens, MetricsPublic: cfg.Server.MetricsPublic, MaxBodyBytes: cfg.Server.MaxBody,
		Logger: log,
	}
	if svc.Embedder() != nil {
		opts.Backfill = bf
	}
	// /mcp gives read tokens the read-only tools and write tokens also crawl, add_source and ask,
	// which change the knowledge base or spend model tokens as the API's write routes do.
	mcpRead, err := mcp.NewServer(svc, db, mcp.Options{Version: version, Logger: log})
	if err != nil {
		return err
	}
	mcpWriteOpts := mcp.Options{AllowWrite: true, Crawler: clientCrawler,
		Version: version, Logger: log}
	if ms.configured() {
		mcpWriteOpts.Asker = sessionAsker{sessions: &agent.Sessions{Runtime: rt, Store: db}}
	}
	mcpWrite, err := mcp.NewServer(svc, db, mcpWriteOpts)
	if err != nil {
		return err
	}
	opts.MCP, opts.MCPWrite = mcpRead.HTTPHandler(), mcpWrite.HTTPHandler()
	opts.UI = ui.Handler()
	handler, err := httpapi.New(opts)
	if err != nil {
		return err
	}

	var ln, sshLn net.Listener
	if flags.tailnet {
		dir, err := a.stateDir(db)
		if err != nil {
			return err
		}
		tn, err := a.openTailnet(ctx, cfg.Tailscale, dir, addr, cfg.SSH.Addr, len(tokens), log)
		if err != nil {
			return err
		}
		defer tn.Close()
		ln, sshLn = tn.HTTP, tn.SSH
		log.Info("panther serve: on the tailnet", "name", tn.Name)
	} else if ln, err = net.Listen("tcp", addr); err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: serveReadHeaderTimeout,
		ReadTimeout:       serveReadTimeout,
		WriteTimeout:      serveWriteTimeout,
		IdleTimeout:       serveIdleTimeout,
		MaxHeaderBytes:    serveMaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	_, where := describeStore(db)
	log.Info("panther serve listening", "addr", ln.Addr().String(), "tokens", len(tokens), "db", where, "version", version)
	if len(tokens) == 0 {
		log.Warn("no API tokens are configured: the API is open to anyone who can reach " + ln.Addr().String())
	}
	if onListen != nil {
		onListen(ln.Addr())
	}
	bfCtx, stopBackfill := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackfill()
	if svc.Embedder() != nil {
		go bf.run(bfCtx)
	} else {
		close(bf.done)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	// sshDone stays nil, never ready, when the SSH interface is off.
	var sshDone chan error
	if cfg.SSH.Addr != "" {
		sshSrv, err := a.sshServer(cfg, db, svc, rt, ms, log)
		if err != nil {
			srv.Close()
			return err
		}
		sshDone = make(chan error, 1)
		go func() {
			if sshLn != nil {
				sshDone <- sshSrv.Serve(baseCtx, sshLn)
				return
			}
			sshDone <- sshSrv.ListenAndServe(baseCtx)
		}()
		log.Info("panther serve: SSH interface", "addr", cfg.SSH.Addr)
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
		served <- serveErr
	case err := <-sshDone:
		// The SSH interface failed (its address taken, say): stop everything rather than serve half.
		sshDone <- err
	}
	log.Info("panther serve stopping")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), serveShutdownTimeout)
	defer cancel()
	// Stop accepting at once; requests in flight go on while sessions and crawls stop.
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Shutdown(shutCtx) }()
	var errs []error
	if err := live.Shutdown(shutCtx); err != nil {
		errs = append(errs, err)
	}
	if err := manager.Shutdown(shutCtx); err != nil {
		errs = append(errs, err)
	}
	stopBackfill()
	select {
	case <-bf.done:
	case <-shutCtx.Done():
		errs = append(errs, errors.New("background embedding did not stop in time"))
	}
	// What streams are left (MCP's, say) end with their requests' context; SSH sessions end too.
	cancelBase()
	if sshDone != nil {
		if err := <-sshDone; err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("ssh: %w", err))
		}
	}
	if err := <-httpDone; err != nil {
		srv.Close()
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("serve %s: %w", addr, err))
	}
	if err := errors.Join(errs...); err != nil {
		log.Error("panther serve stopped with errors", "err", err)
		return err
	}
	log.Info("panther serve stopped")
	return nil
}

// agentInfos describes the agents, by name, for `panther agents` and the API. "ask" tools are listed
// as such; over the API no one can approve them, so they are refused when called.
func agentInfos(defs map[string]agent.Definition) []httpapi.AgentInfo {
	names := make([]string, 0, len(defs))
	for n := range defs {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]httpapi.AgentInfo, 0, len(defs))
	for _, n := range names {
		d := defs[n]
		j := httpapi.AgentInfo{Name: d.Name, Description: d.Description, Mode: string(d.Mode), Model: d.Model, Source: d.Source, Tools: []string{}}
		for _, t := range knownTools {
			switch d.PermissionFor(t) {
			case agent.Allow:
				j.Tools = append(j.Tools, t)
			case agent.Ask:
				j.Tools = append(j.Tools, t+" (ask)")
			}
		}
		out = append(out, j)
	}
	return out
}

// backfiller embeds, in the background, the passages that have no vector from the embedder: at
// start (after a change of embedder, say) and whenever kicked (after a crawl). Backfill commits
// batch by batch, so stopping it loses at most one batch, and search serves meanwhile from the
// vectors that exist (and words).
type backfiller struct {
	svc  *kb.Service
	log  *slog.Logger
	kick chan struct{}
	done chan struct{}

	mu sync.Mutex
	st httpapi.BackfillStatus
}

func (b *backfiller) trigger() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

func (b *backfiller) run(ctx context.Context) {
	defer close(b.done)
	for {
		b.once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-b.kick:
		}
	}
}

func (b *backfiller) once(ctx context.Context) {
	with, total, err := b.svc.Coverage(ctx)
	if err != nil {
		b.set(func(s *httpapi.BackfillStatus) { s.Error = err.Error() })
		b.log.Warn("background embedding: read coverage", "err", err)
		return
	}
	b.set(func(s *httpapi.BackfillStatus) { s.Done, s.Total = with, total })
	if with >= total {
		return
	}
	model := b.svc.Embedder().Model()
	b.log.Info("background embedding starting", "model", model, "vectors", with, "passages", total)
	b.set(func(s *httpapi.BackfillStatus) {
		s.Running, s.Started, s.Ended, s.Error = true, time.Now(), time.Time{}, ""
	})
	n, err := b.svc.Backfill(ctx, func(done, total int) {
		b.set(func(s *httpapi.BackfillStatus) { s.Done, s.Total = done, total })
	})
	b.set(func(s *httpapi.BackfillStatus) {
		s.Running, s.Ended, s.Embedded = false, time.Now(), s.Embedded+n
		if err != nil && ctx.Err() == nil {
			s.Error = err.Error()
		}
	})
	if err != nil && ctx.Err() == nil {
		b.log.Warn("background embedding failed; it resumes after the next crawl or restart", "model", model, "embedded", n, "err", err)
		return
	}
	b.log.Info("background embedding ended", "model", model, "embedded", n)
}

func (b *backfiller) set(change func(*httpapi.BackfillStatus)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	change(&b.st)
}

// BackfillStatus is for GET /v1/status.
func (b *backfiller) BackfillStatus() httpapi.BackfillStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st
}

// sshServer builds the SSH terminal interface over the same knowledge base and agents.
func (a *app) sshServer(cfg *fileConfig, db kbStore, svc *kb.Service, rt *agent.Runtime, ms *models, log *slog.Logger) (*sshui.Server, error) {
	hostKey := cfg.SSH.HostKey
	if hostKey == "" {
		dir, err := a.stateDir(db)
		if err != nil {
			return nil, fmt.Errorf("ssh: host key: %w", err)
		}
		hostKey = filepath.Join(dir, "ssh_host_ed25519_key")
	}
	opts := sshui.Options{
		Addr: cfg.SSH.Addr, HostKeyPath: hostKey, AuthorizedKeysFile: cfg.SSH.AuthorizedKeys,
		Search: svc, Reader: svc, MaxSessions: cfg.SSH.MaxSessions, Logger: log,
	}
	if ms.configured() {
		opts.Ask = &agent.Sessions{Runtime: rt, Store: db}
		for _, info := range agentInfos(rt.Definitions) {
			if rt.Definitions[info.Name].CanBePrimary() {
				opts.Agents = append(opts.Agents, info.Name)
			}
		}
	}
	srv, err := sshui.New(opts)
	if err != nil {
		return nil, fmt.Errorf("ssh: %w", err)
	}
	return srv, nil
}

// stateDir is where serve keeps its own files (the SSH host key, tailnet state): beside the SQLite
// file, else (a PostgreSQL store) in panther's data directory.
func (a *app) stateDir(db kbStore) (string, error) {
	if kind, where := describeStore(db); kind == kindSQLite {
		return filepath.Dir(where), nil
	}
	dir, err := a.dataDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, nil
}

// mergeInterval is the least time between two merges of the search index in serve.
const mergeInterval = 30 * time.Second

// debouncer runs fn after a trigger, at most once per interval, and always once after the last
// trigger: triggers that come while it waits are folded into the next run.
type debouncer struct {
	interval time.Duration
	fn       func(context.Context)
	kick     chan struct{}
}

func newDebouncer(interval time.Duration, fn func(context.Context)) *debouncer {
	return &debouncer{interval: interval, fn: fn, kick: make(chan struct{}, 1)}
}

func (d *debouncer) trigger() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func (d *debouncer) run(ctx context.Context) {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
		}
		if wait := d.interval - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		last = time.Now()
		d.fn(ctx)
	}
}
