package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"panther"
	"panther/crawl"
	"panther/internal/pgtest"
	"panther/kb"
	"panther/postgres"
)

// site is a documentation site on loopback that records every request it answers: how often each
// path was asked for, and when.
type site struct {
	srv   *httptest.Server
	pages int
	delay time.Duration

	mu    sync.Mutex
	hits  map[string]int
	times []time.Time
}

// newSite serves pages /docs/p0.html … /docs/p{n-1}.html: p0 links to p1..p9 and to two special
// pages, every page pi to p(2i+1), p(2i+2) and back to p0, so that every page is reachable and most
// are linked more than once. /docs/old.html redirects to p3; /docs/private/ is disallowed by
// robots.txt. Each page carries a word of its own ("uniqword<i>x") to search for.
func newSite(t *testing.T, n int, delay time.Duration) *site {
	t.Helper()
	s := &site{pages: n, delay: delay, hits: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *site) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.hits[r.URL.Path]++
	s.times = append(s.times, time.Now())
	s.mu.Unlock()
	switch {
	case r.URL.Path == "/robots.txt":
		fmt.Fprint(w, "User-agent: *\nDisallow: /docs/private/\n")
		return
	case r.URL.Path == "/docs/old.html":
		http.Redirect(w, r, "/docs/p3.html", http.StatusMovedPermanently)
		return
	}
	var i int
	if _, err := fmt.Sscanf(r.URL.Path, "/docs/p%d.html", &i); err != nil || i < 0 || i >= s.pages ||
		r.URL.Path != fmt.Sprintf("/docs/p%d.html", i) {
		http.NotFound(w, r)
		return
	}
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-r.Context().Done():
			return
		}
	}
	var links []string
	if i == 0 {
		for j := 1; j < 10 && j < s.pages; j++ {
			links = append(links, fmt.Sprintf("p%d.html", j))
		}
		links = append(links, "old.html", "private/secret.html")
	}
	for _, j := range []int{2*i + 1, 2*i + 2} {
		if j < s.pages {
			links = append(links, fmt.Sprintf("p%d.html", j))
		}
	}
	links = append(links, "p0.html")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html><html><head><title>Page %d</title></head><body><main>
<h1>Page %d</h1><p>This page is about the uniqword%dx feature and how it is configured in detail.</p>
<h2>Usage</h2><p>Use uniqword%dx with care; the settings below matter for page %d.</p><ul>`, i, i, i, i, i)
	for _, l := range links {
		fmt.Fprintf(w, `<li><a href="%s">%s</a></li>`, l, l)
	}
	fmt.Fprint(w, `</ul></main></body></html>`)
}

func (s *site) seed() string { return s.srv.URL + "/docs/p0.html" }

func (s *site) hitsOf(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

func (s *site) requestTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.times)
}

// env is one test's shared store: a schema of its own on the test server.
type env struct {
	dsn   string
	store *postgres.DB
	kb    *kb.Service
	admin *pgxpool.Pool
}

func newEnv(t testing.TB) *env {
	t.Helper()
	dsn := pgtest.FreshDSN(t)
	ctx := t.Context()
	store, err := postgres.OpenWith(ctx, dsn, postgres.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc, err := kb.New(store, kb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	return &env{dsn: dsn, store: store, kb: svc, admin: admin}
}

func quiet() *slog.Logger {
	if os.Getenv("PANTHER_TEST_VERBOSE") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// worker is one Cluster of a test, with its knowledge base calls counted and a switch that makes
// it behave as a dead process: its connections cut, its index and its HTTP requests failing.
type worker struct {
	*Cluster
	kb       *killableKB
	tr       *killableTransport
	dialer   *killableDialer
	ingested atomic.Int64
}

type killableKB struct {
	KB
	dead     atomic.Bool
	ingested atomic.Int64
}

var errKilled = errors.New("killed")

func (k *killableKB) Ingest(ctx context.Context, doc panther.Document, s []panther.Section) (panther.IngestOutcome, error) {
	if k.dead.Load() {
		return "", errKilled
	}
	o, err := k.KB.Ingest(ctx, doc, s)
	if err == nil {
		k.ingested.Add(1)
	}
	return o, err
}

func (k *killableKB) DocumentMeta(ctx context.Context, url string) (panther.Document, error) {
	if k.dead.Load() {
		return panther.Document{}, errKilled
	}
	return k.KB.DocumentMeta(ctx, url)
}

type killableTransport struct {
	base     http.RoundTripper
	dead     atomic.Bool
	inflight atomic.Int64
}

func (k *killableTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if k.dead.Load() {
		return nil, errKilled
	}
	k.inflight.Add(1)
	defer k.inflight.Add(-1)
	return k.base.RoundTrip(r)
}

// killableDialer hands out connections it can close all at once, refusing new ones from then on.
type killableDialer struct {
	mu    sync.Mutex
	dead  bool
	conns []net.Conn
}

func (d *killableDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dead {
		return nil, errKilled
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err == nil {
		d.conns = append(d.conns, c)
	}
	return c, err
}

func (d *killableDialer) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dead = true
	for _, c := range d.conns {
		c.Close()
	}
}

// testOptions are quick to react: short polls, leases and timeouts.
func testOptions(id string, workers int) Options {
	return Options{
		ID:           id,
		Workers:      workers,
		PollInterval: 50 * time.Millisecond,
		FetchTimeout: 3 * time.Second,
		SeedTimeout:  3 * time.Second,
		RescueAfter:  3 * time.Second,
		// Follow polls quickly so that tests see progress as it happens.
		FollowInterval: 50 * time.Millisecond,
		ScheduleEvery:  time.Second,
		Crawl: crawl.Options{
			Timeout:      5 * time.Second,
			RetryBackoff: 10 * time.Millisecond,
			Retries:      -1,
		},
		Logger: quiet(),
	}
}

// startWorker makes a Cluster over e's store and starts it when it has workers. It is stopped when
// the test ends.
func startWorker(t *testing.T, e *env, o Options) *worker {
	t.Helper()
	w := &worker{
		kb:     &killableKB{KB: e.kb},
		tr:     &killableTransport{base: http.DefaultTransport.(*http.Transport).Clone()},
		dialer: &killableDialer{},
	}
	o.Store = e.store
	o.KB = w.kb
	o.Crawl.Transport = w.tr
	o.poolConfig = func(cfg *pgxpool.Config) { cfg.ConnConfig.DialFunc = w.dialer.dial }
	c, err := NewCluster(t.Context(), e.dsn, o)
	if err != nil {
		t.Fatal(err)
	}
	w.Cluster = c
	if o.Workers > 0 {
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if o.Workers > 0 {
			_ = c.river.StopAndCancel(ctx)
		}
		c.Close()
	})
	return w
}

// kill makes w behave as a process that died: connections cut, requests and index calls failing,
// jobs cancelled without River hearing of it.
func (w *worker) kill() {
	w.kb.dead.Store(true)
	w.tr.dead.Store(true)
	w.dialer.kill()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = w.river.StopAndCancel(ctx)
	}()
}

func follow(t *testing.T, c *Cluster, id int64, timeout time.Duration, fn func(Status)) Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	s, err := c.Follow(ctx, id, fn)
	if err != nil {
		t.Fatalf("follow run %d: %v (last status %+v)", id, err, s)
	}
	return s
}

// checkPages asserts that every page of the site is stored exactly once, with its chunks stored
// once each, and is found by its own word.
func checkPages(t *testing.T, e *env, s *site) {
	t.Helper()
	ctx := t.Context()
	docs, err := e.kb.Documents(ctx, panther.DocFilter{URLPrefix: s.srv.URL + "/docs/"})
	if err != nil {
		t.Fatal(err)
	}
	byURL := map[string]int{}
	for _, d := range docs {
		byURL[d.URL]++
	}
	for i := range s.pages {
		u := fmt.Sprintf("%s/docs/p%d.html", s.srv.URL, i)
		if byURL[u] != 1 {
			t.Errorf("page %s stored %d times, want once", u, byURL[u])
		}
	}
	if len(docs) != s.pages {
		t.Errorf("%d documents stored, want %d", len(docs), s.pages)
	}
	// No chunk twice: (document, ordinal) is unique, and every document has its chunks.
	var dupes, empty int
	if err := e.admin.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM (SELECT doc_id, ordinal FROM chunks GROUP BY 1, 2 HAVING count(*) > 1) x),
		(SELECT count(*) FROM documents d WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.doc_id = d.id))`).Scan(&dupes, &empty); err != nil {
		t.Fatal(err)
	}
	if dupes != 0 || empty != 0 {
		t.Errorf("%d chunks stored twice, %d documents without chunks", dupes, empty)
	}
	for _, i := range []int{0, s.pages / 2, s.pages - 1} {
		hits, err := e.kb.Search(ctx, panther.Query{Text: fmt.Sprintf("uniqword%dx", i), K: 3})
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("%s/docs/p%d.html", s.srv.URL, i)
		if len(hits) == 0 || hits[0].URL != want {
			t.Errorf("search for page %d's word: %v, want %s first", i, hits, want)
		}
	}
}

// TestTwoWorkersShareRateAndFetchOnce crawls a site with two workers over one database: each page is
// requested once however many pages link to it, a redirect target once whether its redirect or its
// own link got there first, both workers work, and the requests the site sees stay within the
// host rate although each worker alone would be allowed that rate.
func TestTwoWorkersShareRateAndFetchOnce(t *testing.T) {
	e := newEnv(t)
	s := newSite(t, 40, 0)
	const rate = 25.0
	a := startWorker(t, e, testOptions("w1", 3))
	b := startWorker(t, e, testOptions("w2", 3))

	r := rate
	st, err := a.EnqueueSeed(t.Context(), s.seed(), CrawlRequest{HostRate: &r})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.EnqueueSeed(t.Context(), s.seed(), CrawlRequest{}); !errors.Is(err, panther.ErrConflict) {
		t.Errorf("a second crawl of a source being crawled: %v, want ErrConflict", err)
	}
	final := follow(t, b.Cluster, st.ID, 60*time.Second, nil)

	if final.State != RunDone || final.Queued != 0 || final.Failed != 0 {
		t.Fatalf("final status %+v, want done with nothing queued or failed", final)
	}
	if final.New != s.pages || final.Done != s.pages {
		t.Errorf("done %d (new %d), want %d pages", final.Done, final.New, s.pages)
	}
	if final.SkippedBy["robots"] != 1 {
		t.Errorf("skipped %v, want the private page skipped for robots", final.SkippedBy)
	}
	if final.SkippedBy["redirect"]+final.SkippedBy["redirect-duplicate"] != 1 {
		t.Errorf("skipped %v, want old.html skipped as a redirect", final.SkippedBy)
	}
	for i := range s.pages {
		if n := s.hitsOf(fmt.Sprintf("/docs/p%d.html", i)); n != 1 {
			t.Errorf("page p%d requested %d times, want once", i, n)
		}
	}
	if n := s.hitsOf("/docs/private/secret.html"); n != 0 {
		t.Errorf("a page robots.txt disallows was requested %d times", n)
	}
	if n := s.hitsOf("/robots.txt"); n < 1 || n > 2 {
		t.Errorf("robots.txt requested %d times, want once per worker at most", n)
	}
	if a.kb.ingested.Load() == 0 || b.kb.ingested.Load() == 0 {
		t.Errorf("pages ingested by worker 1: %d, worker 2: %d; want both working", a.kb.ingested.Load(), b.kb.ingested.Load())
	}
	checkPages(t, e, s)

	// Every request (pages, redirects, robots.txt, sitemap) went through the shared slots. The gate
	// spaces them exactly on the database's clock, but a worker may send late (a busy machine wakes
	// it late) and the next one on time, so the bound is on windows: no half second holds more than
	// its share at the rate plus a little slack — far below what two workers each at the rate would send.
	times := s.requestTimes()
	slices.SortFunc(times, func(x, y time.Time) int { return x.Compare(y) })
	const window = 500 * time.Millisecond
	limit := int(rate*window.Seconds()) + 1 + 3
	for i := range times {
		n := 0
		for j := i; j < len(times) && times[j].Sub(times[i]) < window; j++ {
			n++
		}
		if n > limit {
			t.Errorf("%d requests within %s from request %d, want at most %d at %.0f/s", n, window, i, limit, rate)
			break
		}
	}
	if span := times[len(times)-1].Sub(times[0]); span > 0 {
		if got := float64(len(times)-1) / span.Seconds(); got > rate*1.15 {
			t.Errorf("%d requests in %s: %.1f/s, more than the host rate %.0f/s", len(times), span, got, rate)
		}
	}

	// The crawl ended: the source is crawled and the vectors' job queued.
	srcs, err := e.store.Sources(t.Context())
	if err != nil || len(srcs) != 1 || srcs[0].LastCrawlAt.IsZero() {
		t.Errorf("sources %+v (err %v), want one marked crawled", srcs, err)
	}
	var embeds int
	if err := e.admin.QueryRow(t.Context(), `SELECT count(*) FROM river_job WHERE kind = 'panther_embed'`).Scan(&embeds); err != nil || embeds != 1 {
		t.Errorf("%d embed jobs (err %v), want 1", embeds, err)
	}
}

// TestKilledWorkerJobsRescued kills one of two workers mid-crawl, as a process dies: its
// connections cut and its jobs left running in River. After the lease the other worker takes them,
// and every page ends up stored exactly once.
func TestKilledWorkerJobsRescued(t *testing.T) {
	e := newEnv(t)
	s := newSite(t, 60, 100*time.Millisecond)
	workers := map[string]*worker{
		"w1": startWorker(t, e, testOptions("w1", 3)),
		"w2": startWorker(t, e, testOptions("w2", 3)),
	}
	zero := 0.0
	st, err := workers["w1"].EnqueueSeed(t.Context(), s.seed(), CrawlRequest{HostRate: &zero})
	if err != nil {
		t.Fatal(err)
	}
	// Kill the leader: the other worker then also has to take over River's maintenance (the rescuer
	// runs on the leader) before the killed worker's jobs can come back.
	var leader string
	deadline := time.Now().Add(30 * time.Second)
	for leader == "" && time.Now().Before(deadline) {
		_ = e.admin.QueryRow(t.Context(), `SELECT leader_id FROM river_leader`).Scan(&leader)
		time.Sleep(20 * time.Millisecond)
	}
	victim := workers[leader]
	if victim == nil {
		t.Fatalf("leader %q is neither worker", leader)
	}
	var survivor *worker
	for id, w := range workers {
		if id != leader {
			survivor = w
		}
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatal("no page was done within 60s")
		}
		cur, err := survivor.CrawlStatus(t.Context(), st.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cur.Finished() {
			t.Fatalf("the crawl ended before a worker could be killed: %+v", cur)
		}
		if cur.Done >= 10 && victim.tr.inflight.Load() > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	victim.kill()
	killedAt := time.Now()

	final := follow(t, survivor.Cluster, st.ID, 120*time.Second, nil)
	t.Logf("crawl finished %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	if final.State != RunDone || final.Queued != 0 {
		t.Fatalf("final status %+v, want done", final)
	}
	// A page the killed worker had ingested but not recorded is fetched again and found unchanged.
	if final.New+final.Unchanged != s.pages || final.Done != s.pages || final.Failed != 0 {
		t.Errorf("final status %+v, want %d pages done", final, s.pages)
	}
	checkPages(t, e, s)
	var rescued int
	if err := e.admin.QueryRow(t.Context(), `SELECT count(*) FROM river_job
		WHERE kind = 'panther_crawl_fetch' AND attempt > 1`).Scan(&rescued); err != nil {
		t.Fatal(err)
	}
	if rescued == 0 {
		t.Error("no fetch job was tried twice: the killed worker's jobs were not rescued")
	}
}

// TestMaxPagesAcrossWorkers bounds a crawl to a few pages; the budget holds over both workers.
func TestMaxPagesAcrossWorkers(t *testing.T) {
	e := newEnv(t)
	s := newSite(t, 30, 0)
	a := startWorker(t, e, testOptions("w1", 3))
	startWorker(t, e, testOptions("w2", 3))
	zero := 0.0
	st, err := a.EnqueueSeed(t.Context(), s.seed(), CrawlRequest{JobRequest: crawl.JobRequest{MaxPages: 5}, HostRate: &zero})
	if err != nil {
		t.Fatal(err)
	}
	final := follow(t, a.Cluster, st.ID, 60*time.Second, nil)
	if final.State != RunDone || final.Fetched != 5 || !final.Truncated {
		t.Errorf("final status %+v, want done after 5 fetches, truncated", final)
	}
	pages := 0
	for i := range s.pages {
		pages += s.hitsOf(fmt.Sprintf("/docs/p%d.html", i))
	}
	if old := s.hitsOf("/docs/old.html"); pages+old != 5 {
		t.Errorf("%d page requests (and %d redirects) reached the site, want 5 in all", pages, old)
	}
	if final.SkippedBy["max-pages"] == 0 {
		t.Errorf("skipped %v, want URLs skipped for max-pages", final.SkippedBy)
	}
}

// TestCancelCrawl stops a crawl: its queued URLs are not fetched and it ends cancelled.
func TestCancelCrawl(t *testing.T) {
	e := newEnv(t)
	s := newSite(t, 30, 0)
	// No worker yet: the crawl is only queued.
	c := startWorker(t, e, testOptions("client", 0))
	st, err := c.EnqueueSeed(t.Context(), s.seed(), CrawlRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.State != RunRunning || st.Queued != 1 {
		t.Errorf("a new crawl: %+v, want running with its seed queued", st)
	}
	if err := c.Start(t.Context()); !errors.Is(err, panther.ErrInvalid) {
		t.Errorf("starting a cluster without workers: %v, want ErrInvalid", err)
	}
	if st, err = c.CancelCrawl(t.Context(), st.ID); err != nil || st.State != RunCancelled {
		t.Fatalf("cancel: %+v, %v", st, err)
	}
	w := startWorker(t, e, testOptions("w1", 2))
	// The cancelled crawl's jobs drain without a request; a new crawl of the source may start.
	st2, err := w.EnqueueSeed(t.Context(), s.seed(), CrawlRequest{JobRequest: crawl.JobRequest{MaxDepth: new(int)}})
	if err != nil {
		t.Fatal(err)
	}
	final := follow(t, w.Cluster, st2.ID, 30*time.Second, nil)
	if final.State != RunDone || final.Done != 1 {
		t.Errorf("a depth-0 crawl: %+v, want the seed alone done", final)
	}
	if n := s.hitsOf("/docs/p0.html"); n != 1 {
		t.Errorf("the seed was requested %d times, want once (by the second crawl)", n)
	}
	if _, err := c.CrawlStatus(t.Context(), 999999); !errors.Is(err, panther.ErrNotFound) {
		t.Errorf("status of an unknown run: %v, want ErrNotFound", err)
	}
	runs, err := c.Runs(t.Context(), 0)
	if err != nil || len(runs) != 2 || runs[0].ID != st2.ID {
		t.Errorf("runs %+v (err %v), want the two crawls, newest first", runs, err)
	}
}

func TestCrawlRequestChecked(t *testing.T) {
	e := newEnv(t)
	c := startWorker(t, e, testOptions("client", 0))
	src, err := e.store.AddSource(t.Context(), "https://docs.example.org/manual/")
	if err != nil {
		t.Fatal(err)
	}
	neg := -1.0
	for _, tc := range []struct {
		name string
		req  CrawlRequest
	}{
		{"negative max pages", CrawlRequest{JobRequest: crawl.JobRequest{MaxPages: -1}}},
		{"bad include", CrawlRequest{JobRequest: crawl.JobRequest{Include: []string{"("}}}},
		{"negative rate", CrawlRequest{HostRate: &neg}},
	} {
		if _, err := c.EnqueueCrawl(t.Context(), src.ID, tc.req); !errors.Is(err, panther.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, err)
		}
	}
	if _, err := c.EnqueueCrawl(t.Context(), 424242, CrawlRequest{}); !errors.Is(err, panther.ErrNotFound) {
		t.Errorf("unknown source: %v, want ErrNotFound", err)
	}
	if _, err := c.EnqueueSeed(t.Context(), "/usr/share/doc", CrawlRequest{}); !errors.Is(err, panther.ErrInvalid) {
		t.Errorf("a local folder: %v, want ErrInvalid", err)
	}
}

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		spec string
		ok   bool
	}{
		{"0 3 * * *", true},
		{"*/15 * * * *", true},
		{"@daily", true},
		{"@every 6h", true},
		{"CRON_TZ=Europe/Paris 0 3 * * 1-5", true},
		{"", false},
		{"* * *", false},
		{"61 * * * *", false},
		{"0 3 * * * *", false}, // six fields: seconds are not offered
		{"@every 10s", false},
		{"0 0 30 2 *", false}, // never: 30 February
		{strings.Repeat("1,", 150) + "1 * * * *", false},
	} {
		_, err := ParseSpec(tc.spec)
		if (err == nil) != tc.ok {
			t.Errorf("ParseSpec(%q) = %v, want ok %v", tc.spec, err, tc.ok)
		}
		if err != nil && !errors.Is(err, panther.ErrInvalid) {
			t.Errorf("ParseSpec(%q): %v is not ErrInvalid", tc.spec, err)
		}
	}
	next, err := nextRun("0 3 * * *", time.Date(2030, 5, 1, 12, 0, 0, 0, time.FixedZone("X", 5*3600)))
	if want := time.Date(2030, 5, 2, 3, 0, 0, 0, time.UTC); err != nil || !next.Equal(want) {
		t.Errorf("next run of 0 3 * * * = %v (%v), want %v: specs are read in UTC", next, err, want)
	}
}

// TestSchedulesRunOnceClusterWide makes a schedule due and has both workers look for due schedules
// at once, many times: one crawl starts, the schedule moves to its next time. Then the leader's
// periodic job alone starts the next due crawl.
func TestSchedulesRunOnceClusterWide(t *testing.T) {
	e := newEnv(t)
	s := newSite(t, 3, 0)
	a := startWorker(t, e, testOptions("w1", 0))
	b := startWorker(t, e, testOptions("w2", 0))
	src, err := e.store.AddSource(t.Context(), s.seed())
	if err != nil {
		t.Fatal(err)
	}
	zero := 0.0
	sc, err := a.SetSchedule(t.Context(), src.ID, "0 3 * * *", CrawlRequest{HostRate: &zero})
	if err != nil {
		t.Fatal(err)
	}
	if !sc.NextRun.After(time.Now()) || sc.NextRun.Hour() != 3 || sc.Spec != "0 3 * * *" {
		t.Errorf("schedule %+v, want its next run at 03:00 UTC", sc)
	}
	if _, err := a.SetSchedule(t.Context(), src.ID, "@every 5s", CrawlRequest{}); !errors.Is(err, panther.ErrInvalid) {
		t.Errorf("a schedule every 5s: %v, want ErrInvalid", err)
	}
	if _, err := a.SetSchedule(t.Context(), 999, "@daily", CrawlRequest{}); !errors.Is(err, panther.ErrNotFound) {
		t.Errorf("a schedule of an unknown source: %v, want ErrNotFound", err)
	}
	if _, err := e.admin.Exec(t.Context(), `UPDATE crawl_schedules SET next_run_at = now() - interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	var started atomic.Int64
	var wg sync.WaitGroup
	for _, c := range []*worker{a, b, a, b, a, b} {
		wg.Go(func() {
			for range 5 {
				n, err := c.RunDueSchedules(t.Context())
				if err != nil {
					t.Error(err)
				}
				started.Add(int64(n))
			}
		})
	}
	wg.Wait()
	if n := started.Load(); n != 1 {
		t.Fatalf("%d crawls started for one due time, want 1", n)
	}
	all, err := b.Schedules(t.Context())
	if err != nil || len(all) != 1 {
		t.Fatalf("schedules %+v (err %v)", all, err)
	}
	runs, err := a.Runs(t.Context(), 0)
	if err != nil || len(runs) != 1 || !runs[0].Scheduled {
		t.Fatalf("runs %+v (err %v), want one scheduled crawl", runs, err)
	}
	if got := all[0]; got.LastRunID != runIDString(runs[0].ID) || !got.NextRun.After(time.Now()) || got.LastRun.IsZero() {
		t.Errorf("schedule after its run %+v, want last run %d and a next run ahead", got, runs[0].ID)
	}

	// Now the periodic job: only started workers run it, and only the leader enqueues it.
	w1 := startWorker(t, e, testOptions("w3", 2))
	w2 := startWorker(t, e, testOptions("w4", 2))
	first := follow(t, w1.Cluster, runs[0].ID, 30*time.Second, nil)
	if first.State != RunDone || first.Done != s.pages {
		t.Fatalf("scheduled crawl %+v, want its %d pages done", first, s.pages)
	}
	if _, err := e.admin.Exec(t.Context(), `UPDATE crawl_schedules SET next_run_at = now() - interval '1 minute'`); err != nil {
		t.Fatal(err)
	}
	var second Status
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		runs, err := w2.Runs(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) > 1 {
			second = runs[0]
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if second.ID == 0 {
		t.Fatal("the due schedule started no crawl within 30s")
	}
	done := follow(t, w2.Cluster, second.ID, 30*time.Second, nil)
	// The second crawl found every page as stored.
	if done.State != RunDone || done.Unchanged != s.pages {
		t.Errorf("second scheduled crawl %+v, want %d pages unchanged", done, s.pages)
	}
	// Two more periods of looking start nothing more: the schedule is a day away.
	time.Sleep(2500 * time.Millisecond)
	if runs, err := w1.Runs(t.Context(), 0); err != nil || len(runs) != 2 {
		t.Errorf("%d crawls (err %v), want 2", len(runs), err)
	}
	if err := a.RemoveSchedule(t.Context(), src.ID); err != nil {
		t.Fatal(err)
	}
	if err := a.RemoveSchedule(t.Context(), src.ID); !errors.Is(err, panther.ErrNotFound) {
		t.Errorf("removing a removed schedule: %v, want ErrNotFound", err)
	}
}
