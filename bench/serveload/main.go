// Command serveload measures `panther serve` as a client sees it, on loopback: how soon it is
// ready, how much memory it holds, how many /v1/search requests a second it answers and how fast,
// and how long an MCP tools/call search takes over streamable HTTP.
//
//	go run ./bench/serveload -panther ./panther -db /tmp/pg.db \
//	    -qrels bench/testdata/pg15-bookindex.qrels.jsonl
//
// With -panther it starts the binary itself (serve --addr 127.0.0.1:PORT on a free port, the
// database given by -db): readiness is timed from the process start to the first 200 from
// /readyz, -starts times, and RSS is read from /proc/PID/status after the start, after an idle
// period, and after the load. With -url it measures a server already running (load only).
//
// Search load comes in two shapes: closed loop (-rate 0: -concurrency clients each send their
// next request as soon as the last is answered; the throughput the server can give) and open loop
// (-rate R: requests leave on a fixed schedule of R a second whatever the answers do, and each
// latency is counted from when its request was due, so a server that falls behind is charged for
// the queue it builds). Several -rate values may be given, comma-separated. Queries are the
// qrels file's, in order, round robin. Every loop is bounded by -duration and every request by
// -timeout. Results go to stdout as text, or JSON with -json.
//
// -mixed replaces the search runs with one mixed run (mixed.go): on the first -rate's schedule (or
// closed loop at 0), -ingest-share of the requests (0.1) are ingests, POST /v1/sources with crawl
// true and max_pages -ingest-pages, each of a new site that serveload serves on loopback itself, the
// rest searches; the server's RSS is read every -rss-every. A server serveload starts then gets a
// config of a write token and [web] allow = ["127.0.0.1"], which the loopback site needs:
//
//	go run ./bench/serveload -panther ./panther -db /tmp/pg.db -mixed -rate 20 -duration 5m -mcp-calls 0
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

type config struct {
	panther, db, url, qrels, token string
	concurrency, maxInFlight       int
	rates                          []float64
	duration, warmup, idle         time.Duration
	timeout                        time.Duration
	starts, mcpCalls               int
	jsonOut                        bool
	profile                        string
	// The mixed load (mixed.go).
	mixed       bool
	ingestPages int
	ingestShare float64
	rssEvery    time.Duration
	configPath  string // written for the started server in mixed mode
}

func main() {
	var c config
	var rates string
	flag.StringVar(&c.panther, "panther", "", "panther binary to start as `serve` (readiness and RSS are measured only then)")
	flag.StringVar(&c.db, "db", "", "knowledge base for the started server (--db)")
	flag.StringVar(&c.url, "url", "", "base URL of a server already running, instead of -panther")
	flag.StringVar(&c.token, "token-env", "", "environment variable holding a bearer token to send")
	flag.StringVar(&c.qrels, "qrels", "bench/testdata/pg15-bookindex.qrels.jsonl", "JSON lines with a \"query\" each")
	flag.IntVar(&c.concurrency, "concurrency", 8, "clients of the closed loop")
	flag.IntVar(&c.maxInFlight, "max-inflight", 256, "open loop: requests in flight at most (more are counted as dropped)")
	flag.StringVar(&rates, "rate", "0", "requests/s of open loops, comma-separated; 0 runs the closed loop")
	flag.DurationVar(&c.duration, "duration", 20*time.Second, "length of each load run")
	flag.DurationVar(&c.warmup, "warmup", 3*time.Second, "closed-loop load before the first measured run, not counted")
	flag.DurationVar(&c.idle, "idle", 10*time.Second, "how long the started server idles before its idle RSS is read")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Second, "bound on each request")
	flag.IntVar(&c.starts, "starts", 5, "times the server is started to time its readiness")
	flag.IntVar(&c.mcpCalls, "mcp-calls", 500, "sequential MCP tools/call search round trips (0 skips)")
	flag.BoolVar(&c.jsonOut, "json", false, "print one JSON document")
	flag.StringVar(&c.profile, "cpuprofile", "", "with -panther: the measured server runs with --cpuprofile FILE (written when it stops; "+
		"it covers start, load and idle, and the load dominates)")
	flag.BoolVar(&c.mixed, "mixed", false, "run the mixed load (searches and ingests) instead of the search runs: one run of -duration at the first -rate "+
		"(0: closed loop of -concurrency), RSS sampled every -rss-every")
	flag.Float64Var(&c.ingestShare, "ingest-share", 0.1, "mixed: the share of requests that are ingests (POST /v1/sources with crawl)")
	flag.IntVar(&c.ingestPages, "ingest-pages", 3, "mixed: pages of each generated site an ingest crawls (its max_pages)")
	flag.DurationVar(&c.rssEvery, "rss-every", 10*time.Second, "mixed: how often the started server's RSS is read")
	flag.Parse()
	for _, r := range strings.Split(rates, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if err != nil || v < 0 {
			fail("-rate %q: want requests/s, 0 for the closed loop", r)
		}
		c.rates = append(c.rates, v)
	}
	switch {
	case (c.panther == "") == (c.url == ""):
		fail("give -panther (with -db) or -url")
	case c.panther != "" && c.db == "":
		fail("-panther needs -db")
	case c.ingestShare < 0 || c.ingestShare > 1 || c.ingestPages < 1 || c.rssEvery <= 0:
		fail("-ingest-share must be within 0..1, -ingest-pages and -rss-every positive")
	case c.concurrency < 1 || c.maxInFlight < 1 || c.duration <= 0 || c.timeout <= 0 || c.starts < 1 || c.mcpCalls < 0:
		fail("-concurrency, -max-inflight, -duration, -timeout and -starts must be positive, -mcp-calls not negative")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := measure(ctx, c)
	if err != nil {
		fail("%v", err)
	}
	if c.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return
	}
	rep.print(os.Stdout)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "serveload: "+format+"\n", args...)
	os.Exit(1)
}

// report is what serveload prints.
type report struct {
	Machine   string      `json:"machine"`
	Queries   int         `json:"queries"`
	Readiness *latencies  `json:"readiness_ms,omitempty"`
	RSS       *rss        `json:"rss_mib,omitempty"`
	Search    []loadRun   `json:"search"`
	MCP       *latencies  `json:"mcp_search_ms,omitempty"`
	Server    *serverInfo `json:"server,omitempty"`
	Mixed     *mixedRun   `json:"mixed,omitempty"`
}

type serverInfo struct {
	Binary string `json:"binary"`
	DB     string `json:"db"`
}

type rss struct {
	AfterStart float64 `json:"after_start"`
	Idle       float64 `json:"idle"`
	AfterLoad  float64 `json:"after_load"`
	AfterIdle  float64 `json:"after_load_idle"`
	HWM        float64 `json:"peak"`
}

// latencies summarises durations, in milliseconds.
type latencies struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func summarise(d []time.Duration) *latencies {
	if len(d) == 0 {
		return &latencies{}
	}
	slices.Sort(d)
	q := func(p float64) float64 {
		i := int(p*float64(len(d)) + 0.5)
		i = min(max(i-1, 0), len(d)-1)
		return ms(d[i])
	}
	return &latencies{N: len(d), P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: ms(d[len(d)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// loadRun is one search load run.
type loadRun struct {
	Mode        string     `json:"mode"` // "closed" or "open"
	Concurrency int        `json:"concurrency,omitempty"`
	TargetRate  float64    `json:"target_rps,omitempty"`
	Seconds     float64    `json:"seconds"`
	OK          int        `json:"ok"`
	Errors      int        `json:"errors"`
	Dropped     int        `json:"dropped,omitempty"`
	RPS         float64    `json:"rps"`
	Latency     *latencies `json:"latency_ms"`
	FirstError  string     `json:"first_error,omitempty"`
	// ServerCPUms and LoadCPUms are CPU time per answered request, of the server (when serveload
	// started it) and of serveload itself: figures that the machine's other load disturbs less
	// than throughput.
	ServerCPUms float64 `json:"server_cpu_ms_per_req,omitempty"`
	LoadCPUms   float64 `json:"loadgen_cpu_ms_per_req,omitempty"`
	// LoadAvg is the machine's 1-minute load average at the end of the run (/proc/loadavg).
	LoadAvg string `json:"loadavg,omitempty"`
}

func measure(ctx context.Context, c config) (*report, error) {
	queries, err := readQueries(c.qrels)
	if err != nil {
		return nil, err
	}
	rep := &report{Machine: machine(), Queries: len(queries)}
	base := strings.TrimSuffix(c.url, "/")
	token := ""
	if c.token != "" {
		if token = os.Getenv(c.token); token == "" {
			return nil, fmt.Errorf("-token-env %s: the variable is empty", c.token)
		}
	}
	if c.mixed && c.panther != "" {
		dir, err := os.MkdirTemp("", "serveload")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if c.configPath, token, err = mixedConfig(dir); err != nil {
			return nil, err
		}
	}
	var srv *server
	if c.panther != "" {
		rep.Server = &serverInfo{Binary: c.panther, DB: c.db}
		var ready []time.Duration
		for i := range c.starts {
			profile := ""
			if i == c.starts-1 {
				profile = c.profile
			}
			s, took, err := start(ctx, c, profile, token)
			if err != nil {
				return nil, fmt.Errorf("start %d: %w", i+1, err)
			}
			ready = append(ready, took)
			if i < c.starts-1 {
				if err := s.stop(); err != nil {
					return nil, err
				}
				continue
			}
			srv = s
		}
		defer srv.stop()
		rep.Readiness = summarise(ready)
		base = srv.base
		rep.RSS = &rss{}
		if rep.RSS.AfterStart, err = srv.rss("VmRSS"); err != nil {
			return nil, err
		}
		sleep(ctx, c.idle)
		if rep.RSS.Idle, err = srv.rss("VmRSS"); err != nil {
			return nil, err
		}
	}
	client := &http.Client{
		Timeout: c.timeout,
		Transport: &http.Transport{
			MaxIdleConns: c.maxInFlight, MaxIdleConnsPerHost: c.maxInFlight, IdleConnTimeout: time.Minute,
			DialContext: (&net.Dialer{Timeout: c.timeout}).DialContext,
		},
	}
	defer client.CloseIdleConnections()
	ld := &loader{client: client, base: base, token: token, queries: queries}
	if err := ld.check(ctx); err != nil {
		return nil, err
	}
	if c.warmup > 0 {
		ld.closed(ctx, c.concurrency, c.warmup)
	}
	if c.mixed {
		st, err := startSite(c.ingestPages)
		if err != nil {
			return nil, err
		}
		defer st.close()
		run := runMixed(ctx, ld, srv, st, c.ingestShare, c.ingestPages, c.rates[0], c.concurrency, c.maxInFlight,
			c.duration, c.rssEvery, c.timeout)
		rep.Mixed = &run
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		c.rates = nil
	}
	for _, r := range c.rates {
		serverBefore, selfBefore := srv.cpu(), selfCPU()
		var run loadRun
		if r == 0 {
			run = ld.closed(ctx, c.concurrency, c.duration)
		} else {
			run = ld.open(ctx, r, c.maxInFlight, c.duration)
		}
		if run.OK > 0 {
			if srv != nil {
				run.ServerCPUms = round2(ms(srv.cpu()-serverBefore) / float64(run.OK))
			}
			run.LoadCPUms = round2(ms(selfCPU()-selfBefore) / float64(run.OK))
		}
		run.LoadAvg = loadAvg()
		rep.Search = append(rep.Search, run)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	if c.mcpCalls > 0 {
		if rep.MCP, err = mcpRoundTrips(ctx, base, token, queries, c.mcpCalls, c.timeout); err != nil {
			return nil, err
		}
	}
	if srv != nil {
		if rep.RSS.AfterLoad, err = srv.rss("VmRSS"); err != nil {
			return nil, err
		}
		client.CloseIdleConnections()
		sleep(ctx, c.idle)
		if rep.RSS.AfterIdle, err = srv.rss("VmRSS"); err != nil {
			return nil, err
		}
		if rep.RSS.HWM, err = srv.rss("VmHWM"); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// readQueries reads the "query" of each JSON line.
func readQueries(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("qrels: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var line struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, fmt.Errorf("qrels %s:%d: %w", path, n, err)
		}
		if strings.TrimSpace(line.Query) != "" {
			out = append(out, line.Query)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("qrels %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("qrels %s: no queries", path)
	}
	return out, nil
}

// --- the server ----------------------------------------------------------------------------

type server struct {
	cmd  *exec.Cmd
	base string
	done chan error
}

// start runs `panther --db DB serve --addr 127.0.0.1:PORT` and returns once /readyz answers 200,
// with the time from the process start.
func start(ctx context.Context, c config, profile, token string) (*server, time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, 0, err
	}
	addr := ln.Addr().String()
	ln.Close()
	args := []string{"--db", c.db}
	if profile != "" {
		args = append(args, "--cpuprofile", profile)
	}
	args = append(args, "serve", "--addr", addr)
	cmd := exec.Command(c.panther, args...)
	// No config file of the machine's: the figures are of the defaults (the mixed load's adds only a
	// token and the loopback site to the address policy).
	cmd.Env = append(os.Environ(), "PANTHER_CONFIG=/dev/null")
	if c.configPath != "" {
		cmd.Env = append(os.Environ(), "PANTHER_CONFIG="+c.configPath, tokenEnv+"="+token)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if os.Getenv("SERVELOAD_SERVER_LOG") != "" {
		cmd.Stderr = os.Stderr
	}
	s := &server{cmd: cmd, base: "http://" + addr, done: make(chan error, 1)}
	probe := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("start %s: %w", c.panther, err)
	}
	go func() { s.done <- cmd.Wait() }()
	deadline := began.Add(30 * time.Second)
	for {
		resp, err := probe.Get(s.base + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, time.Since(began), nil
			}
		}
		select {
		case err := <-s.done:
			return nil, 0, fmt.Errorf("panther serve exited before it was ready: %v", err)
		case <-ctx.Done():
			s.stop()
			return nil, 0, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, 0, errors.New("panther serve was not ready within 30s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// stop sends SIGTERM (serve's graceful stop) and waits, killing the process after 30 s.
func (s *server) stop() error {
	if s.cmd.ProcessState != nil {
		return nil
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			return fmt.Errorf("panther serve: %w", err)
		}
		return nil
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		return errors.New("panther serve did not stop within 30s of SIGTERM")
	}
}

// rss reads a memory figure (VmRSS, VmHWM) of the server from /proc, in MiB.
func (s *server) rss(field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("rss: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				return 0, fmt.Errorf("rss: %q: %w", line, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("rss: no %s in /proc/%d/status", field, s.cmd.Process.Pid)
}

// cpu is the server's CPU time so far (user and system), 0 for a server serveload did not start.
func (s *server) cpu() time.Duration {
	if s == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	// Clock ticks: USER_HZ is 100 on Linux.
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return ""
}

// --- search load ---------------------------------------------------------------------------

type loader struct {
	client  *http.Client
	base    string
	token   string
	queries []string
	next    atomic.Uint64
}

func (l *loader) query() string {
	return l.queries[int(l.next.Add(1)-1)%len(l.queries)]
}

func (l *loader) search(ctx context.Context, q string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", l.base+"/v1/search?q="+url.QueryEscape(q), nil)
	if err != nil {
		return err
	}
	if l.token != "" {
		req.Header.Set("Authorization", "Bearer "+l.token)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Read whole, as a client would; bounded like every body here.
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 8<<20)); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /v1/search: %s", resp.Status)
	}
	return nil
}

// check makes sure the server answers searches with hits before any load is measured.
func (l *loader) check(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, "GET", l.base+"/v1/search?q="+url.QueryEscape("partial index"), nil)
	if err != nil {
		return err
	}
	if l.token != "" {
		req.Header.Set("Authorization", "Bearer "+l.token)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return fmt.Errorf("search check: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		Hits []json.RawMessage `json:"hits"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&body); err != nil || resp.StatusCode != 200 {
		return fmt.Errorf("search check: %s, %v", resp.Status, err)
	}
	if len(body.Hits) == 0 {
		return errors.New("search check: no hits for \"partial index\": is the knowledge base empty?")
	}
	return nil
}

type tally struct {
	mu       sync.Mutex
	lat      []time.Duration
	errors   int
	firstErr string
}

func (t *tally) add(d time.Duration, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		if t.errors == 0 {
			t.firstErr = err.Error()
		}
		t.errors++
		return
	}
	t.lat = append(t.lat, d)
}

// closed runs n clients back to back for d.
func (l *loader) closed(ctx context.Context, n int, d time.Duration) loadRun {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var t tally
	var wg sync.WaitGroup
	began := time.Now()
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				q := l.query()
				s := time.Now()
				err := l.search(ctx, q)
				if ctx.Err() != nil {
					return // cut off by the end of the run: not a measurement
				}
				t.add(time.Since(s), err)
			}
		})
	}
	wg.Wait()
	secs := time.Since(began).Seconds()
	return loadRun{Mode: "closed", Concurrency: n, Seconds: round(secs), OK: len(t.lat), Errors: t.errors,
		RPS: round(float64(len(t.lat)) / secs), Latency: summarise(t.lat), FirstError: t.firstErr}
}

// open sends rate requests a second on a fixed schedule for d, at most maxInFlight at once;
// latency counts from each request's due time.
func (l *loader) open(ctx context.Context, rate float64, maxInFlight int, d time.Duration) loadRun {
	var t tally
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxInFlight)
	total := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	dropped := 0
	began := time.Now()
	for i := range total {
		due := began.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > 0 {
			sleep(ctx, w)
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case slots <- struct{}{}:
		default:
			// The server is this far behind: count it rather than let the generator queue
			// without bound.
			dropped++
			continue
		}
		q := l.query()
		wg.Go(func() {
			defer func() { <-slots }()
			err := l.search(ctx, q)
			t.add(time.Since(due), err)
		})
	}
	wg.Wait()
	secs := time.Since(began).Seconds()
	return loadRun{Mode: "open", TargetRate: rate, Seconds: round(secs), OK: len(t.lat), Errors: t.errors, Dropped: dropped,
		RPS: round(float64(len(t.lat)) / secs), Latency: summarise(t.lat), FirstError: t.firstErr}
}

func round(v float64) float64  { return float64(int(v*10+0.5)) / 10 }
func round2(v float64) float64 { return float64(int(v*100+0.5)) / 100 }

// --- MCP -------------------------------------------------------------------------------------

// mcpRoundTrips opens one MCP session over streamable HTTP and times n tools/call search
// requests one after another.
func mcpRoundTrips(ctx context.Context, base, token string, queries []string, n int, timeout time.Duration) (*latencies, error) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	if token != "" {
		hc.Transport = bearer{token: token, next: hc.Transport}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(n)*timeout)
	defer cancel()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "serveload", Version: "v0"}, nil).Connect(ctx,
		&sdk.StreamableClientTransport{Endpoint: base + "/mcp", HTTPClient: hc, DisableStandaloneSSE: true, MaxRetries: -1}, nil)
	if err != nil {
		return nil, fmt.Errorf("mcp connect: %w", err)
	}
	defer cs.Close()
	var lat []time.Duration
	for i := range n {
		q := queries[(i*7)%len(queries)]
		s := time.Now()
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "search", Arguments: map[string]any{"query": q}})
		d := time.Since(s)
		if err != nil {
			return nil, fmt.Errorf("mcp tools/call search %q: %w", q, err)
		}
		if res.IsError {
			return nil, fmt.Errorf("mcp tools/call search %q: the tool failed", q)
		}
		lat = append(lat, d)
	}
	return summarise(lat), nil
}

type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// --- output ----------------------------------------------------------------------------------

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%d × %s, %s", runtime.NumCPU(), model, runtime.Version())
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "machine: %s; %d queries\n", r.Machine, r.Queries)
	if r.Readiness != nil {
		fmt.Fprintf(w, "ready (start → /readyz 200), %d starts: p50 %.1f ms, max %.1f ms\n", r.Readiness.N, r.Readiness.P50, r.Readiness.Max)
	}
	if r.RSS != nil {
		fmt.Fprintf(w, "RSS MiB: after start %.1f, idle %.1f, after load %.1f, idle after load %.1f, peak %.1f\n",
			r.RSS.AfterStart, r.RSS.Idle, r.RSS.AfterLoad, r.RSS.AfterIdle, r.RSS.HWM)
	}
	for _, s := range r.Search {
		shape := fmt.Sprintf("closed loop, %d clients", s.Concurrency)
		if s.Mode == "open" {
			shape = fmt.Sprintf("open loop, %.0f/s offered", s.TargetRate)
		}
		fmt.Fprintf(w, "/v1/search %s: %.0f req/s over %.1fs (%d ok, %d errors, %d dropped); ms p50 %.2f p95 %.2f p99 %.2f max %.2f\n",
			shape, s.RPS, s.Seconds, s.OK, s.Errors, s.Dropped, s.Latency.P50, s.Latency.P95, s.Latency.P99, s.Latency.Max)
		fmt.Fprintf(w, "  CPU per request: server %.2f ms, serveload %.2f ms; load average %s\n", s.ServerCPUms, s.LoadCPUms, s.LoadAvg)
		if s.FirstError != "" {
			fmt.Fprintf(w, "  first error: %s\n", s.FirstError)
		}
	}
	if r.Mixed != nil {
		r.Mixed.print(w)
	}
	if r.MCP != nil {
		fmt.Fprintf(w, "MCP tools/call search, %d sequential: ms p50 %.2f p95 %.2f p99 %.2f max %.2f\n", r.MCP.N, r.MCP.P50, r.MCP.P95, r.MCP.P99, r.MCP.Max)
	}
}
