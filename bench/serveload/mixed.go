package main

// The mixed load (-mixed): searches and ingests interleaved on one schedule for a long run, with the
// server's RSS sampled throughout, to show that neither errors nor memory grow under sustained
// writes beside reads (issue 8).

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// mixedRun is the result of one mixed run.
type mixedRun struct {
	Mode        string     `json:"mode"` // "open" or "closed"
	TargetRate  float64    `json:"target_rps,omitempty"`
	Concurrency int        `json:"concurrency,omitempty"`
	IngestShare float64    `json:"ingest_share"`
	Seconds     float64    `json:"seconds"`
	RPS         float64    `json:"rps"`
	Dropped     int        `json:"dropped,omitempty"`
	Search      kindResult `json:"search"`
	Ingest      kindResult `json:"ingest"`
	// Conflicts are 409 answers to ingests: a crawl of that source already queued or running. Each
	// ingest names a new source, so none is expected; they are counted apart and not as errors.
	Conflicts int `json:"ingest_conflicts"`
	// Crawls is what became of the accepted ingests, read once they have all ended.
	Crawls *crawlOutcome `json:"crawls,omitempty"`
	// RSS is the server's VmRSS, MiB, every -rss-every (only for a server serveload started).
	RSS     []rssSample `json:"rss_mib,omitempty"`
	LoadAvg string      `json:"loadavg,omitempty"`
}

type kindResult struct {
	OK         int        `json:"ok"`
	Errors     int        `json:"errors"`
	RPS        float64    `json:"rps"`
	Latency    *latencies `json:"latency_ms"`
	FirstError string     `json:"first_error,omitempty"`
}

type rssSample struct {
	Second int     `json:"s"`
	MiB    float64 `json:"mib"`
}

// crawlOutcome checks the ingests' effect: every accepted one should end done and its pages be
// found by a search for the word only that site's pages hold.
type crawlOutcome struct {
	DrainSeconds float64 `json:"drain_seconds"`
	PagesServed  int64   `json:"site_pages_served"`
	Checked      int     `json:"sites_checked"`
	Found        int     `json:"sites_found"`
	Missing      []int   `json:"missing_sites,omitempty"`
	StillRunning int     `json:"still_running"`
}

// site is the static site ingests crawl: /s/N/ is an index page linking to /s/N/p1 … p(pages-1),
// all generated, each site's pages holding a word (siteWord(N)) no other site has, so every ingest
// writes new documents and a search can tell whether they arrived.
type site struct {
	srv    *http.Server
	base   string
	pages  int
	served atomic.Int64
}

func startSite(pages int) (*site, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("site: %w", err)
	}
	s := &site{base: "http://" + ln.Addr().String(), pages: pages}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *site) close() { s.srv.Close() }

func (s *site) seed(n int) string { return fmt.Sprintf("%s/s/%d/", s.base, n) }

// siteWord spells n in letters: FTS tokenizers keep it whole and no English word collides.
func siteWord(n int) string {
	b := []byte("svlq")
	for {
		b = append(b, byte('a'+n%26))
		n /= 26
		if n == 0 {
			return string(b)
		}
	}
}

var fillerWords = strings.Fields(`the server keeps answering searches while new documentation pages
arrive from a crawl and each page carries its own citation heading anchor title and content hash`)

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] != "s" {
		http.NotFound(w, r)
		return
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil || n < 0 {
		http.NotFound(w, r)
		return
	}
	page := 0
	if len(parts) == 3 {
		p, ok := strings.CutPrefix(parts[2], "p")
		if page, err = strconv.Atoi(p); !ok || err != nil || page < 1 || page >= s.pages {
			http.NotFound(w, r)
			return
		}
	}
	s.served.Add(1)
	word := siteWord(n)
	var b strings.Builder
	fmt.Fprintf(&b, "<!doctype html><html><head><title>Site %d page %d %s</title></head><body><main>\n", n, page, word)
	fmt.Fprintf(&b, "<h1 id=\"top\">Site %d, page %d: %s</h1>\n", n, page, word)
	for sec := range 3 {
		fmt.Fprintf(&b, "<h2 id=\"s%d\">Section %d of %s</h2>\n<p>", sec, sec, word)
		for i := range 60 {
			b.WriteString(fillerWords[(n+page*7+sec*13+i)%len(fillerWords)])
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s.</p>\n", word)
	}
	if page == 0 {
		b.WriteString("<ul>\n")
		for p := 1; p < s.pages; p++ {
			fmt.Fprintf(&b, "<li><a href=\"/s/%d/p%d\">page %d</a></li>\n", n, p, p)
		}
		b.WriteString("</ul>\n")
	}
	b.WriteString("</main></body></html>\n")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, b.String())
}

// mixedConfig writes the config file a server under mixed load needs: a write token (by reference
// to an environment variable, never the value) and [web] allow for the loopback site, which the
// address policy refuses otherwise.
func mixedConfig(dir string) (path, token string, err error) {
	raw := make([]byte, 32)
	rand.Read(raw)
	token = hex.EncodeToString(raw)
	path = filepath.Join(dir, "serveload.toml")
	cfg := `[web]
allow = ["127.0.0.1"]

[[server.tokens]]
name = "serveload"
token = "env:` + tokenEnv + `"
scopes = ["write"]
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return "", "", fmt.Errorf("mixed config: %w", err)
	}
	return path, token, nil
}

// tokenEnv carries the write token to the server serveload starts.
const tokenEnv = "SERVELOAD_WRITE_TOKEN"

// isIngest spreads ingests evenly: request i is one when the running count of share × requests
// steps up, so every 1/share-th request is an ingest.
func isIngest(i uint64, share float64) bool {
	return int(float64(i+1)*share) > int(float64(i)*share)
}

// ingest adds site n as a source and asks for its crawl at once.
func (l *loader) ingest(ctx context.Context, seed string, pages int) (status int, err error) {
	body, _ := json.Marshal(map[string]any{"url": seed, "crawl": true, "max_pages": pages})
	req, err := http.NewRequestWithContext(ctx, "POST", l.base+"/v1/sources", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if l.token != "" {
		req.Header.Set("Authorization", "Bearer "+l.token)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusCreated {
		return resp.StatusCode, fmt.Errorf("POST /v1/sources %s: %s: %s", seed, resp.Status, bytes.TrimSpace(msg))
	}
	return resp.StatusCode, nil
}

type mixedLoad struct {
	ld          *loader
	site        *site
	share       float64
	pages       int
	nextSite    atomic.Int64
	search      tally
	ingest      tally
	conflicts   atomic.Int64
	mu          sync.Mutex
	acceptedIDs []int
}

func (m *mixedLoad) do(ctx context.Context, i uint64, from time.Time) {
	if !isIngest(i, m.share) {
		err := m.ld.search(ctx, m.ld.query())
		if ctx.Err() == nil || err == nil {
			m.search.add(time.Since(from), err)
		}
		return
	}
	n := int(m.nextSite.Add(1) - 1)
	status, err := m.ld.ingest(ctx, m.site.seed(n), m.pages)
	if status == http.StatusConflict {
		m.conflicts.Add(1)
		return
	}
	if ctx.Err() != nil && err != nil {
		return
	}
	m.ingest.add(time.Since(from), err)
	if err == nil {
		m.mu.Lock()
		m.acceptedIDs = append(m.acceptedIDs, n)
		m.mu.Unlock()
	}
}

// runMixed runs the mixed load for d: open loop at rate (rate > 0) or closed loop of n clients,
// sampling the server's RSS every rssEvery when serveload started it.
func runMixed(ctx context.Context, ld *loader, srv *server, st *site, share float64, pages int,
	rate float64, n, maxInFlight int, d, rssEvery, timeout time.Duration) mixedRun {
	m := &mixedLoad{ld: ld, site: st, share: share, pages: pages}
	run := mixedRun{IngestShare: share}
	began := time.Now()
	loadCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()

	var samplerWG sync.WaitGroup
	var rssMu sync.Mutex
	if srv != nil {
		sample := func() {
			if v, err := srv.rss("VmRSS"); err == nil {
				rssMu.Lock()
				run.RSS = append(run.RSS, rssSample{Second: int(time.Since(began).Seconds() + 0.5), MiB: round(v)})
				rssMu.Unlock()
			}
		}
		sample()
		samplerWG.Go(func() {
			tk := time.NewTicker(rssEvery)
			defer tk.Stop()
			for {
				select {
				case <-loadCtx.Done():
					return
				case <-tk.C:
					sample()
				}
			}
		})
	}

	var wg sync.WaitGroup
	var next atomic.Uint64
	if rate > 0 {
		run.Mode, run.TargetRate = "open", rate
		slots := make(chan struct{}, maxInFlight)
		total := int(rate * d.Seconds())
		interval := time.Duration(float64(time.Second) / rate)
		for i := range total {
			due := began.Add(time.Duration(i) * interval)
			if w := time.Until(due); w > 0 {
				sleep(loadCtx, w)
			}
			if loadCtx.Err() != nil {
				break
			}
			select {
			case slots <- struct{}{}:
			default:
				run.Dropped++
				continue
			}
			wg.Go(func() {
				defer func() { <-slots }()
				// Requests in flight at the end finish: the open loop's schedule, not a deadline,
				// ends the run.
				m.do(ctx, uint64(i), due)
			})
		}
	} else {
		run.Mode, run.Concurrency = "closed", n
		for range n {
			wg.Go(func() {
				for loadCtx.Err() == nil {
					m.do(loadCtx, next.Add(1)-1, time.Now())
				}
			})
		}
	}
	wg.Wait()
	samplerWG.Wait()
	secs := time.Since(began).Seconds()
	if srv != nil {
		if v, err := srv.rss("VmRSS"); err == nil {
			run.RSS = append(run.RSS, rssSample{Second: int(secs + 0.5), MiB: round(v)})
		}
	}
	run.Seconds = round(secs)
	run.Search = m.search.result(secs)
	run.Ingest = m.ingest.result(secs)
	run.RPS = round(float64(run.Search.OK+run.Ingest.OK) / secs)
	run.Conflicts = int(m.conflicts.Load())
	run.LoadAvg = loadAvg()
	run.Crawls = m.settle(ctx, timeout)
	return run
}

func (t *tally) result(secs float64) kindResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	return kindResult{OK: len(t.lat), Errors: t.errors, RPS: round(float64(len(t.lat)) / secs),
		Latency: summarise(t.lat), FirstError: t.firstErr}
}

// settle waits (at most two minutes) for the accepted crawls to end, then searches for each
// site's own word and counts the sites whose pages are found.
func (m *mixedLoad) settle(ctx context.Context, timeout time.Duration) *crawlOutcome {
	out := &crawlOutcome{}
	began := time.Now()
	for deadline := began.Add(2 * time.Minute); ; {
		running, err := m.ld.running(ctx)
		out.StillRunning = running
		if (err == nil && running == 0) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		sleep(ctx, 500*time.Millisecond)
	}
	out.DrainSeconds = round(time.Since(began).Seconds())
	out.PagesServed = m.site.served.Load()
	for _, n := range m.acceptedIDs {
		out.Checked++
		if m.ld.found(ctx, siteWord(n), fmt.Sprintf("/s/%d/", n), timeout) {
			out.Found++
		} else if len(out.Missing) < 20 {
			out.Missing = append(out.Missing, n)
		}
	}
	return out
}

// running counts the crawl jobs queued or running.
func (l *loader) running(ctx context.Context) (int, error) {
	var body struct {
		Crawls []struct {
			State string `json:"state"`
		} `json:"crawls"`
	}
	if err := l.getJSON(ctx, "/v1/crawls", &body); err != nil {
		return 0, err
	}
	n := 0
	for _, c := range body.Crawls {
		if c.State == "queued" || c.State == "running" {
			n++
		}
	}
	return n, nil
}

// found reports whether a search for word returns a hit whose URL holds path.
func (l *loader) found(ctx context.Context, word, path string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body struct {
		Hits []struct {
			URL string `json:"url"`
		} `json:"hits"`
	}
	if err := l.getJSON(ctx, "/v1/search?q="+url.QueryEscape(word), &body); err != nil {
		return false
	}
	for _, h := range body.Hits {
		if strings.Contains(h.URL, path) {
			return true
		}
	}
	return false
}

func (l *loader) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", l.base+path, nil)
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
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(v)
}

func (r *mixedRun) print(w io.Writer) {
	shape := fmt.Sprintf("closed loop, %d clients", r.Concurrency)
	if r.Mode == "open" {
		shape = fmt.Sprintf("open loop, %.0f/s offered", r.TargetRate)
	}
	fmt.Fprintf(w, "mixed (%.0f%% ingest), %s: %.1f req/s over %.1fs, %d dropped, %d ingest conflicts; load average %s\n",
		r.IngestShare*100, shape, r.RPS, r.Seconds, r.Dropped, r.Conflicts, r.LoadAvg)
	for _, k := range []struct {
		name string
		r    kindResult
	}{{"search", r.Search}, {"ingest", r.Ingest}} {
		fmt.Fprintf(w, "  %s: %d ok (%.1f/s), %d errors; ms p50 %.2f p95 %.2f p99 %.2f max %.2f\n",
			k.name, k.r.OK, k.r.RPS, k.r.Errors, k.r.Latency.P50, k.r.Latency.P95, k.r.Latency.P99, k.r.Latency.Max)
		if k.r.FirstError != "" {
			fmt.Fprintf(w, "    first error: %s\n", k.r.FirstError)
		}
	}
	if c := r.Crawls; c != nil {
		fmt.Fprintf(w, "  crawls: drained in %.1fs (%d still running); site pages served %d; sites found by search %d of %d",
			c.DrainSeconds, c.StillRunning, c.PagesServed, c.Found, c.Checked)
		if len(c.Missing) > 0 {
			fmt.Fprintf(w, " (missing, first ones: %v)", c.Missing)
		}
		fmt.Fprintln(w)
	}
	if len(r.RSS) > 0 {
		var b strings.Builder
		for i, s := range r.RSS {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%ds %.1f", s.Second, s.MiB)
		}
		fmt.Fprintf(w, "  RSS MiB: %s\n", b.String())
	}
}
