package crawl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"panther"
)

// testSite is an httptest server with exact-path handlers that counts every request by path.
type testSite struct {
	mu   sync.Mutex
	hits map[string]int
	// second counts the requests of a crawler whose User-Agent is secondRunUA: a cancelled run's
	// last requests may reach the server late, and must not be mistaken for the next run's.
	second   map[string]int
	handlers map[string]http.HandlerFunc
	srv      *httptest.Server
}

func newSite(t *testing.T) *testSite {
	s := &testSite{hits: map[string]int{}, second: map[string]int{}, handlers: map[string]http.HandlerFunc{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.RequestURI()]++
		if r.Header.Get("User-Agent") == secondRunUA {
			s.second[r.URL.RequestURI()]++
		}
		h := s.handlers[r.URL.RequestURI()]
		if h == nil {
			h = s.handlers[r.URL.Path]
		}
		s.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *testSite) url(p string) string { return s.srv.URL + p }

func (s *testSite) handle(p string, h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[p] = h
}

func (s *testSite) remove(p string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.handlers, p)
}

// page serves an HTML page with a body unique to its path, linking to links.
func (s *testSite) page(p string, links ...string) {
	body := htmlPage(p, "", links...)
	s.handle(p, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, body)
	})
}

func htmlPage(title, head string, links ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!DOCTYPE html><html><head><title>%s</title>%s</head><body><main><h1>%s</h1>", title, head, title)
	fmt.Fprintf(&b, "<p>This is the page %s, with words that belong to it alone.</p><ul>", title)
	for _, l := range links {
		fmt.Fprintf(&b, `<li><a href="%s">%s</a></li>`, l, l)
	}
	b.WriteString("</ul></main></body></html>")
	return b.String()
}

func (s *testSite) hit(p string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[p]
}

// pageHits counts requests other than robots.txt and sitemaps.
func (s *testSite) pageHits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p, c := range s.hits {
		if p != "/robots.txt" && !strings.Contains(p, "sitemap") && !strings.HasPrefix(p, "/maps/") {
			n += c
		}
	}
	return n
}

func (s *testSite) resetHits() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.hits)
}

func (s *testSite) hitsCopy() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.hits)
}

type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// testOptions are fast options for tests: tiny backoff, unlimited depth, warnings logged.
func testOptions(t *testing.T) Options {
	return Options{
		MaxDepth:     -1,
		Concurrency:  4,
		RetryBackoff: time.Millisecond,
		Timeout:      5 * time.Second,
		Logger:       slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

func crawlOnce(t *testing.T, store *memStore, index *memIndex, opts Options, seed string) Summary {
	t.Helper()
	c, err := New(store, index, opts)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := c.Run(context.Background(), seed)
	if err != nil {
		t.Fatalf("Run(%s): %v", seed, err)
	}
	t.Logf("%s", sum)
	return sum
}

func urlsOf(s *testSite, paths ...string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = s.url(p)
	}
	slices.Sort(out)
	return out
}

func TestScopeDepthFilters(t *testing.T) {
	s := newSite(t)
	s.page("/docs/", "a.html", "b.html", "/other/x.html", "http://elsewhere.invalid/y", "sub/c.html", "mailto:x@example.com")
	s.page("/docs/a.html", "a2.html", "/docs/")
	s.page("/docs/a2.html")
	s.page("/docs/b.html", "private/p.html")
	s.page("/docs/sub/c.html")
	s.page("/docs/private/p.html")
	s.page("/other/x.html")
	all := []string{"/docs/", "/docs/a.html", "/docs/a2.html", "/docs/b.html", "/docs/sub/c.html", "/docs/private/p.html"}
	tests := []struct {
		name string
		opts func(*Options)
		seed string
		want []string
	}{
		{name: "unlimited", want: all},
		{name: "depth 0", opts: func(o *Options) { o.MaxDepth = 0 }, want: []string{"/docs/"}},
		{name: "depth 1", opts: func(o *Options) { o.MaxDepth = 1 }, want: []string{"/docs/", "/docs/a.html", "/docs/b.html", "/docs/sub/c.html"}},
		{name: "include", opts: func(o *Options) { o.Include = []*regexp.Regexp{regexp.MustCompile(`/docs/sub/`)} },
			want: []string{"/docs/", "/docs/sub/c.html"}},
		{name: "exclude", opts: func(o *Options) { o.Exclude = []*regexp.Regexp{regexp.MustCompile(`private|a2`)} },
			want: []string{"/docs/", "/docs/a.html", "/docs/b.html", "/docs/sub/c.html"}},
		{name: "seed page scopes to its directory", seed: "/docs/a.html", want: all},
		{name: "seed in subdirectory", seed: "/docs/sub/c.html", want: []string{"/docs/sub/c.html"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.resetHits()
			opts := testOptions(t)
			if tt.opts != nil {
				tt.opts(&opts)
			}
			seed := "/docs/"
			if tt.seed != "" {
				seed = tt.seed
			}
			index := newMemIndex()
			sum := crawlOnce(t, newMemStore(), index, opts, s.url(seed))
			if got, want := index.urls(), urlsOf(s, tt.want...); !slices.Equal(got, want) {
				t.Fatalf("indexed %q, want %q", got, want)
			}
			if s.hit("/other/x.html") != 0 {
				t.Fatal("out-of-scope page fetched")
			}
			if sum.New != len(tt.want) || sum.Fetched != len(tt.want) {
				t.Fatalf("summary %+v, want %d new and fetched", sum, len(tt.want))
			}
			for p, n := range s.hitsCopy() {
				if n > 1 {
					t.Errorf("%s fetched %d times", p, n)
				}
			}
		})
	}
}

// bigSite serves /docs/ and n pages below it, each linking to a few others, so that the frontier
// grows much faster than pages are fetched.
func bigSite(t *testing.T, n int, delay time.Duration, onHit func(path string)) *testSite {
	s := newSite(t)
	var links []string
	for i := range min(n, 10) {
		links = append(links, fmt.Sprintf("p%d.html", i))
	}
	s.page("/docs/", links...)
	for i := range n {
		p := fmt.Sprintf("/docs/p%d.html", i)
		var ls []string
		for j := 1; j <= 5; j++ {
			ls = append(ls, fmt.Sprintf("p%d.html", (i*5+j)%n))
		}
		body := htmlPage(p, "", ls...)
		s.handle(p, func(w http.ResponseWriter, r *http.Request) {
			if onHit != nil {
				onHit(p)
			}
			time.Sleep(delay)
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, body)
		})
	}
	return s
}

func TestMaxPagesExact(t *testing.T) {
	for _, max := range []int{1, 2, 7, 25} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			s := bigSite(t, 100, time.Millisecond, nil)
			store, index := newMemStore(), newMemIndex()
			opts := testOptions(t)
			opts.MaxPages = max
			opts.Concurrency = 8
			opts.HostConcurrency = 8
			sum := crawlOnce(t, store, index, opts, s.url("/docs/"))
			if got := s.pageHits(); got != max {
				t.Fatalf("%d page requests, want exactly %d", got, max)
			}
			if sum.Fetched != max || !sum.Truncated {
				t.Fatalf("summary %+v, want %d fetched and truncated", sum, max)
			}
			queued := 0
			for _, e := range store.entries() {
				if e.State == panther.FrontierQueued {
					queued++
				}
			}
			if queued != 0 {
				t.Fatalf("%d entries left queued; a cut run should leave none", queued)
			}
			if _, ok := store.crawled[sum.SourceID]; !ok {
				t.Fatal("source not marked crawled")
			}
			// The next run starts afresh (nothing is queued), again within its budget.
			s.resetHits()
			sum2 := crawlOnce(t, store, index, opts, s.url("/docs/"))
			if got := s.pageHits(); got != max || sum2.Resumed {
				t.Fatalf("second run: %d page requests (want %d), resumed %v", got, max, sum2.Resumed)
			}
		})
	}
}

// TestResumeAfterCancel cancels a crawl mid-way, then runs it again: no page finished by the first
// run is requested by the second, everything is crawled in the end, and with MaxPages the two runs
// together fetch exactly the budget.
func TestResumeAfterCancel(t *testing.T) {
	for _, maxPages := range []int{0, 40} {
		t.Run(fmt.Sprintf("max%d", maxPages), func(t *testing.T) {
			testResume(t, newMemStore(), maxPages)
		})
	}
}

const secondRunUA = "panther-test-second-run"

func testResume(t *testing.T, store Store, maxPages int) {
	var ctx context.Context
	var cancel context.CancelFunc
	var hits atomic.Int64
	s := bigSite(t, 80, 2*time.Millisecond, func(string) {
		if hits.Add(1) == 15 {
			cancel()
		}
	})
	index := newMemIndex()
	opts := testOptions(t)
	opts.MaxPages = maxPages
	c, err := New(store, index, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	sum1, err := c.Run(ctx, s.url("/docs/"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first run: err %v, want context.Canceled", err)
	}
	t.Logf("first run: %s", sum1)
	entries, err := store.Frontier(context.Background(), sum1.SourceID)
	if err != nil {
		t.Fatal(err)
	}
	finished := map[string]bool{}
	used := 0
	for _, e := range entries {
		if e.State != panther.FrontierQueued {
			finished[strings.TrimPrefix(e.URL, s.srv.URL)] = true
			if costsFetch(e) {
				used++
			}
		}
	}
	if len(finished) == 0 || len(finished) > 40 {
		t.Fatalf("first run finished %d pages; the test needs a crawl cut mid-way", len(finished))
	}
	hits.Store(-1 << 40)
	opts.UserAgent = secondRunUA
	c, _ = New(store, index, opts)
	sum2, err := c.Run(context.Background(), s.url("/docs/"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second run: %s", sum2)
	if !sum2.Resumed {
		t.Fatal("second run did not resume")
	}
	s.mu.Lock()
	second := maps.Clone(s.second)
	s.mu.Unlock()
	pages := 0
	for p, n := range second {
		if finished[p] {
			t.Errorf("%s was finished by the first run and fetched %d times by the second", p, n)
		}
		if n > 1 {
			t.Errorf("%s fetched %d times in one run", p, n)
		}
		if p != "/robots.txt" && p != "/sitemap.xml" {
			pages += n
		}
	}
	if maxPages == 0 {
		if got := len(index.urls()); got != 81 {
			t.Fatalf("%d pages indexed after resume, want 81", got)
		}
	} else if used+pages != maxPages {
		t.Fatalf("runs fetched %d+%d pages, want exactly %d together", used, pages, maxPages)
	}
}

func TestRobots(t *testing.T) {
	setup := func(t *testing.T, robots string) *testSite {
		s := newSite(t)
		s.handle("/robots.txt", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, robots) })
		s.page("/docs/", "a.html", "b.html", "private/p.html", "private/q.html?x=1")
		s.page("/docs/a.html")
		s.page("/docs/b.html")
		s.page("/docs/private/p.html")
		s.page("/docs/private/q.html")
		return s
	}
	t.Run("disallow", func(t *testing.T) {
		s := setup(t, "User-agent: *\nDisallow: /docs/private/\n\nUser-agent: panther\nDisallow: /docs/private/\nDisallow: /docs/b.html\n")
		index := newMemIndex()
		sum := crawlOnce(t, newMemStore(), index, testOptions(t), s.url("/docs/"))
		if got, want := index.urls(), urlsOf(s, "/docs/", "/docs/a.html"); !slices.Equal(got, want) {
			t.Fatalf("indexed %q, want %q", got, want)
		}
		if sum.Skipped[reasonRobots] != 3 || s.hit("/robots.txt") != 1 {
			t.Fatalf("skipped %v, robots.txt fetched %d times", sum.Skipped, s.hit("/robots.txt"))
		}
	})
	t.Run("ignore", func(t *testing.T) {
		s := setup(t, "User-agent: *\nDisallow: /\nCrawl-delay: 10\n")
		opts := testOptions(t)
		opts.IgnoreRobots = true
		start := time.Now()
		index := newMemIndex()
		crawlOnce(t, newMemStore(), index, opts, s.url("/docs/"))
		if got := len(index.urls()); got != 5 {
			t.Fatalf("indexed %d pages ignoring robots.txt, want 5", got)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("crawl-delay obeyed although robots.txt is ignored")
		}
	})
	t.Run("crawl-delay", func(t *testing.T) {
		s := setup(t, "User-agent: *\nCrawl-delay: 0.15\n")
		start := time.Now()
		sum := crawlOnce(t, newMemStore(), newMemIndex(), testOptions(t), s.url("/docs/"))
		// Five pages and /sitemap.xml after robots.txt: at least five intervals.
		if el := time.Since(start); el < 5*150*time.Millisecond {
			t.Fatalf("6 requests took %v, crawl-delay 0.15s not honoured", el)
		}
		if sum.New != 5 {
			t.Fatalf("summary %+v", sum)
		}
	})
	t.Run("unparsable lines", func(t *testing.T) {
		s := setup(t, "Disallow: /early\nUser-agent: *\nCrawl-delay: soon\nDisallow: /docs/private/\n")
		sum := crawlOnce(t, newMemStore(), newMemIndex(), testOptions(t), s.url("/docs/"))
		if sum.Skipped[reasonRobots] != 2 || sum.New != 3 {
			t.Fatalf("summary %+v: the valid rules of a partly broken robots.txt must hold", sum)
		}
	})
	t.Run("4xx allows all", func(t *testing.T) {
		s := setup(t, "")
		s.handle("/robots.txt", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusForbidden) })
		sum := crawlOnce(t, newMemStore(), newMemIndex(), testOptions(t), s.url("/docs/"))
		if sum.New != 5 {
			t.Fatalf("summary %+v, want all 5 pages", sum)
		}
	})
	t.Run("5xx disallows all", func(t *testing.T) {
		s := setup(t, "")
		s.handle("/robots.txt", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
		opts := testOptions(t)
		opts.Retries = 2
		sum := crawlOnce(t, newMemStore(), newMemIndex(), opts, s.url("/docs/"))
		if sum.Skipped[reasonRobotsUnavailable] != 1 || s.pageHits() != 0 || sum.Fetched != 0 {
			t.Fatalf("summary %+v, %d page hits: want the seed skipped as robots-unavailable", sum, s.pageHits())
		}
		if got := s.hit("/robots.txt"); got != 3 {
			t.Fatalf("robots.txt requested %d times, want 1 + 2 retries", got)
		}
	})
}

func writeGzip(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "application/gzip")
	w.Write(gz(s))
}

func urlset(urls ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">`)
	for _, u := range urls {
		fmt.Fprintf(&b, "<url><loc>%s</loc></url>", u)
	}
	b.WriteString("</urlset>")
	return b.String()
}

func TestSitemaps(t *testing.T) {
	setup := func(t *testing.T) *testSite {
		s := newSite(t)
		s.page("/docs/")
		for _, p := range []string{"/docs/o1.html", "/docs/o2.html", "/docs/o3.html", "/other/z.html"} {
			s.page(p)
		}
		s.handle("/maps/index.xml", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/xml")
			fmt.Fprintf(w, `<sitemapindex><sitemap><loc>%s</loc></sitemap><sitemap><loc>%s</loc></sitemap></sitemapindex>`,
				s.url("/maps/one.xml.gz"), s.url("/maps/two.xml"))
		})
		s.handle("/maps/one.xml.gz", func(w http.ResponseWriter, r *http.Request) { writeGzip(w, urlset(s.url("/docs/o1.html"))) })
		s.handle("/maps/two.xml", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/xml")
			io.WriteString(w, urlset(s.url("/docs/o2.html"), s.url("/other/z.html"), "ftp://x/y", s.url("/docs/o2.html#dup")))
		})
		return s
	}
	t.Run("robots", func(t *testing.T) {
		s := setup(t)
		s.handle("/robots.txt", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "User-agent: *\nAllow: /\nSitemap: %s\n", s.url("/maps/index.xml"))
		})
		index := newMemIndex()
		crawlOnce(t, newMemStore(), index, testOptions(t), s.url("/docs/"))
		if got, want := index.urls(), urlsOf(s, "/docs/", "/docs/o1.html", "/docs/o2.html"); !slices.Equal(got, want) {
			t.Fatalf("indexed %q, want %q", got, want)
		}
	})
	t.Run("sitemap.xml", func(t *testing.T) {
		s := setup(t)
		s.handle("/sitemap.xml", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, urlset(s.url("/docs/o3.html"))) })
		index := newMemIndex()
		crawlOnce(t, newMemStore(), index, testOptions(t), s.url("/docs/"))
		if got, want := index.urls(), urlsOf(s, "/docs/", "/docs/o3.html"); !slices.Equal(got, want) {
			t.Fatalf("indexed %q, want %q", got, want)
		}
	})
	t.Run("depth 0 reads no sitemap", func(t *testing.T) {
		s := setup(t)
		s.handle("/sitemap.xml", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, urlset(s.url("/docs/o3.html"))) })
		opts := testOptions(t)
		opts.MaxDepth = 0
		index := newMemIndex()
		crawlOnce(t, newMemStore(), index, opts, s.url("/docs/"))
		if got := index.urls(); len(got) != 1 || s.hit("/sitemap.xml") != 0 {
			t.Fatalf("indexed %q", got)
		}
	})
	t.Run("sitemap seed", func(t *testing.T) {
		s := setup(t)
		index := newMemIndex()
		store := newMemStore()
		sum := crawlOnce(t, store, index, testOptions(t), s.url("/maps/index.xml"))
		// The scope of a sitemap seed is its URLs' host: /other/z.html is in.
		if got, want := index.urls(), urlsOf(s, "/docs/o1.html", "/docs/o2.html", "/other/z.html"); !slices.Equal(got, want) {
			t.Fatalf("indexed %q, want %q", got, want)
		}
		if sum.Fetched != 3 {
			t.Fatalf("summary %+v: sitemaps must not count as pages", sum)
		}
	})
	t.Run("seed answering a sitemap", func(t *testing.T) {
		s := setup(t)
		s.handle("/feed", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/xml")
			io.WriteString(w, urlset(s.url("/docs/o1.html"), s.url("/other/z.html")))
		})
		index := newMemIndex()
		sum := crawlOnce(t, newMemStore(), index, testOptions(t), s.url("/feed"))
		if got, want := index.urls(), urlsOf(s, "/docs/o1.html", "/other/z.html"); !slices.Equal(got, want) {
			t.Fatalf("indexed %q, want %q", got, want)
		}
		if sum.Skipped[reasonSitemap] != 1 || sum.Fetched != 2 {
			t.Fatalf("summary %+v", sum)
		}
	})
	t.Run("missing sitemap seed", func(t *testing.T) {
		s := setup(t)
		c, _ := New(newMemStore(), newMemIndex(), testOptions(t))
		if _, err := c.Run(context.Background(), s.url("/maps/missing-sitemap.xml")); err == nil {
			t.Fatal("no error for a sitemap seed that does not exist")
		}
	})
}

func TestRetries(t *testing.T) {
	t.Run("429 Retry-After then success", func(t *testing.T) {
		s := newSite(t)
		var n atomic.Int32
		body := htmlPage("/docs/", "")
		s.handle("/docs/", func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return
			}
			io.WriteString(w, body)
		})
		start := time.Now()
		sum := crawlOnce(t, newMemStore(), newMemIndex(), testOptions(t), s.url("/docs/"))
		if sum.New != 1 || s.hit("/docs/") != 2 {
			t.Fatalf("summary %+v, %d hits", sum, s.hit("/docs/"))
		}
		if el := time.Since(start); el < 900*time.Millisecond {
			t.Fatalf("retried after %v, Retry-After: 1 not honoured", el)
		}
	})
	t.Run("503 gives up", func(t *testing.T) {
		s := newSite(t)
		s.handle("/docs/", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
		opts := testOptions(t)
		opts.Retries = 2
		sum := crawlOnce(t, newMemStore(), newMemIndex(), opts, s.url("/docs/"))
		if sum.Failed["http 503"] != 1 || s.hit("/docs/") != 3 {
			t.Fatalf("summary %+v, %d hits; want 3 attempts then failed", sum, s.hit("/docs/"))
		}
	})
	t.Run("network error", func(t *testing.T) {
		s := newSite(t)
		s.page("/docs/", "broken.html")
		s.handle("/docs/broken.html", func(w http.ResponseWriter, r *http.Request) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		})
		opts := testOptions(t)
		opts.Retries = 1
		sum := crawlOnce(t, newMemStore(), newMemIndex(), opts, s.url("/docs/"))
		// net/http itself retries a GET once on a connection closed before the response, so the
		// server sees two requests per attempt.
		if sum.Failed[reasonNetwork] != 1 || s.hit("/docs/broken.html") < 2 {
			t.Fatalf("summary %+v, %d hits", sum, s.hit("/docs/broken.html"))
		}
	})
	t.Run("timeout", func(t *testing.T) {
		s := newSite(t)
		s.page("/docs/", "slow.html")
		s.handle("/docs/slow.html", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
		})
		opts := testOptions(t)
		opts.Timeout = 100 * time.Millisecond
		opts.Retries = -1
		sum := crawlOnce(t, newMemStore(), newMemIndex(), opts, s.url("/docs/"))
		if sum.Failed[reasonTimeout] != 1 {
			t.Fatalf("summary %+v", sum)
		}
	})
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"7", 7 * time.Second, true},
		{" 0 ", 0, true},
		{"-3", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.v != "" {
			h.Set("Retry-After", tt.v)
		}
		got, ok := retryAfter(h, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tt.v, got, ok, tt.want, tt.ok)
		}
	}
	for attempt := range 30 {
		if d := backoff(time.Second, attempt, time.Minute); d <= 0 || d > time.Minute {
			t.Fatalf("backoff(%d) = %v", attempt, d)
		}
	}
}

func TestBodyCapAndContentType(t *testing.T) {
	s := newSite(t)
	s.page("/docs/", "big.html", "chunked.html", "small.html", "img.png", "blob", "readme.md", "notes", "typeless.md")
	big := htmlPage("big", "", strings.Repeat("x", 5000))
	s.handle("/docs/big.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, big)
	})
	s.handle("/docs/chunked.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		for range 10 {
			io.WriteString(w, strings.Repeat("<p>chunk</p>", 100))
			w.(http.Flusher).Flush()
		}
	})
	s.page("/docs/small.html")
	s.handle("/docs/img.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write([]byte("\x89PNG\r\n\x1a\n" + strings.Repeat("\x00", 100)))
	})
	s.handle("/docs/blob", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil
		w.Write([]byte("\x00\x01\x02\x03binary\x00\xff"))
	})
	s.handle("/docs/readme.md", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/markdown")
		io.WriteString(w, "# Readme\n\nSome markdown text.\n")
	})
	s.handle("/docs/notes", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil
		io.WriteString(w, "<html><head><title>Notes</title></head><body><h1>Notes</h1><p>Sniffed as HTML.</p></body></html>")
	})
	s.handle("/docs/typeless.md", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		io.WriteString(w, "# Typeless\n\nMarkdown served as octet-stream.\n")
	})
	opts := testOptions(t)
	opts.MaxBodyBytes = 2000
	index := newMemIndex()
	sum := crawlOnce(t, newMemStore(), index, opts, s.url("/docs/"))
	if sum.Skipped[reasonTooLarge] != 2 || sum.Skipped[reasonContentType] != 2 {
		t.Fatalf("skipped %v, want 2 too-large and 2 content-type", sum.Skipped)
	}
	if got, want := index.urls(), urlsOf(s, "/docs/", "/docs/small.html", "/docs/readme.md", "/docs/notes", "/docs/typeless.md"); !slices.Equal(got, want) {
		t.Fatalf("indexed %q, want %q", got, want)
	}
}

func TestRedirects(t *testing.T) {
	s := newSite(t)
	other := newSite(t)
	other.page("/docs/away.html")
	s.page("/docs/", "r1", "target.html", "out", "loop1", "long0", "moved/")
	redirect := func(from, to string, code int) {
		s.handle(from, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, to, code) })
	}
	redirect("/docs/r1", "/docs/r2", http.StatusMovedPermanently)
	redirect("/docs/r2", "target.html", http.StatusFound)
	s.page("/docs/target.html", "r1")
	redirect("/docs/out", other.url("/docs/away.html"), http.StatusFound)
	redirect("/docs/loop1", "/docs/loop2", http.StatusFound)
	redirect("/docs/loop2", "/docs/loop1", http.StatusFound)
	for i := range 6 {
		redirect(fmt.Sprintf("/docs/long%d", i), fmt.Sprintf("/docs/long%d", i+1), http.StatusTemporaryRedirect)
	}
	s.page("/docs/long6")
	redirect("/docs/moved/", "/elsewhere/", http.StatusMovedPermanently)
	opts := testOptions(t)
	opts.MaxRedirects = 3
	opts.Concurrency = 1
	store, index := newMemStore(), newMemIndex()
	sum := crawlOnce(t, store, index, opts, s.url("/docs/"))
	if got, want := index.urls(), urlsOf(s, "/docs/", "/docs/target.html"); !slices.Equal(got, want) {
		t.Fatalf("indexed %q, want %q", got, want)
	}
	if s.hit("/docs/target.html") != 1 || other.hit("/docs/away.html") != 0 {
		t.Fatalf("target fetched %d times, out-of-scope target %d times", s.hit("/docs/target.html"), other.hit("/docs/away.html"))
	}
	if sum.Skipped[reasonRedirectOutOfScope] != 2 || sum.Failed[reasonTooManyRedirects] != 1 || sum.Failed[reasonRedirectLoop] != 1 {
		t.Fatalf("summary %+v", sum)
	}
	if e := store.entries()[s.url("/docs/r1")]; e.State != panther.FrontierSkipped || e.Reason != reasonRedirect {
		t.Fatalf("r1 entry %+v", e)
	}

	t.Run("seed redirect widens scope", func(t *testing.T) {
		s2 := newSite(t)
		s2.handle("/old/", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.url("/docs/"), http.StatusMovedPermanently)
		})
		other.page("/docs/", "away.html")
		index := newMemIndex()
		crawlOnce(t, newMemStore(), index, testOptions(t), s2.url("/old/"))
		if got, want := index.urls(), urlsOf(other, "/docs/", "/docs/away.html"); !slices.Equal(got, want) {
			t.Fatalf("indexed %q, want %q", got, want)
		}
	})
}

func TestCanonicalNoIndexNoFollowDuplicate(t *testing.T) {
	s := newSite(t)
	s.page("/docs/", "alias.html", "noindex.html", "nofollow.html", "dup1.html", "dup2.html")
	serve := func(p, body string) {
		s.handle(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, body)
		})
	}
	serve("/docs/alias.html", htmlPage("alias", `<link rel="canonical" href="/docs/real.html">`))
	s.page("/docs/real.html")
	serve("/docs/noindex.html", htmlPage("noindex", `<meta name="robots" content="noindex">`, "fromnoindex.html"))
	s.page("/docs/fromnoindex.html")
	serve("/docs/nofollow.html", htmlPage("nofollow", `<meta name="robots" content="nofollow">`, "hidden.html"))
	s.page("/docs/hidden.html")
	dup := htmlPage("same", "")
	serve("/docs/dup1.html", dup)
	serve("/docs/dup2.html", dup)
	index := newMemIndex()
	sum := crawlOnce(t, newMemStore(), index, testOptions(t), s.url("/docs/"))
	got := index.urls()
	if !slices.Contains(got, s.url("/docs/real.html")) || slices.Contains(got, s.url("/docs/alias.html")) {
		t.Fatalf("indexed %q: canonical not honoured", got)
	}
	if slices.Contains(got, s.url("/docs/noindex.html")) || !slices.Contains(got, s.url("/docs/fromnoindex.html")) {
		t.Fatalf("indexed %q: noindex page stored or its links not followed", got)
	}
	if s.hit("/docs/hidden.html") != 0 {
		t.Fatal("link of a nofollow page followed")
	}
	if sum.Skipped[reasonCanonical] != 1 || sum.Skipped[reasonNoIndex] != 1 || sum.Duplicate != 1 {
		t.Fatalf("summary %+v", sum)
	}
}

// TestIncremental re-crawls a site: 304s and unchanged bodies cost no extraction, a changed page is
// re-ingested, a removed one is marked gone, and the unchanged pages' stored links still lead to
// every page.
func TestIncremental(t *testing.T) {
	s := newSite(t)
	var mu sync.Mutex
	bodies := map[string]string{}
	etagged := func(p string) {
		s.handle(p, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			body := bodies[p]
			mu.Unlock()
			etag := fmt.Sprintf(`"%x"`, len(body)*31+int(body[len(body)-20]))
			w.Header().Set("ETag", etag)
			if r.Header.Get("If-None-Match") == etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, body)
		})
	}
	bodies["/docs/"] = htmlPage("root", "", "a.html", "b.html", "c.html", "d.html")
	bodies["/docs/a.html"] = htmlPage("a", "", "deep.html")
	etagged("/docs/")
	etagged("/docs/a.html")
	s.page("/docs/deep.html")
	s.page("/docs/b.html")
	s.page("/docs/c.html")
	s.page("/docs/d.html")
	store, index := newMemStore(), newMemIndex()
	sum := crawlOnce(t, store, index, testOptions(t), s.url("/docs/"))
	if sum.New != 6 {
		t.Fatalf("first crawl %+v", sum)
	}
	ingests := index.ingests

	s.resetHits()
	s.handle("/docs/c.html", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, htmlPage("c changed", "")) })
	s.remove("/docs/d.html")
	sum = crawlOnce(t, store, index, testOptions(t), s.url("/docs/"))
	if sum.Unchanged != 4 || sum.Changed != 1 || sum.Gone != 1 || sum.New != 0 {
		t.Fatalf("re-crawl %+v, want 4 unchanged, 1 changed, 1 gone", sum)
	}
	if index.ingests != ingests+1 {
		t.Fatalf("%d ingests on re-crawl, want only the changed page", index.ingests-ingests)
	}
	if s.hit("/docs/deep.html") != 1 {
		t.Fatal("page behind a 304 not reached through stored links")
	}
	if d := index.docs[s.url("/docs/d.html")]; d.Status != panther.DocGone {
		t.Fatalf("removed page status %q", d.Status)
	}
	// A page never stored that answers 404 is a failure, not a gone page.
	s.page("/docs/", "missing.html")
	sum = crawlOnce(t, store, newMemIndex(), testOptions(t), s.url("/docs/"))
	if sum.Failed["http 404"] != 1 || sum.Gone != 0 {
		t.Fatalf("summary %+v", sum)
	}
}

func TestOptionsValidation(t *testing.T) {
	bad := []Options{
		{MaxPages: -1},
		{Concurrency: -1},
		{HostConcurrency: -2},
		{HostRate: -1},
		{Timeout: -time.Second},
		{MaxBodyBytes: -1},
		{UserAgent: "a\nb"},
		{Include: []*regexp.Regexp{nil}},
	}
	for _, o := range bad {
		if _, err := New(newMemStore(), newMemIndex(), o); !errors.Is(err, panther.ErrInvalid) {
			t.Errorf("New(%+v) = %v, want an invalid-input error", o, err)
		}
	}
	c, err := New(newMemStore(), newMemIndex(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := c.opts
	if o.Concurrency != 8 || o.HostConcurrency != 4 || o.Timeout != 30*time.Second || o.MaxBodyBytes != 10<<20 ||
		o.MaxRedirects != 5 || o.Retries != 3 || !strings.HasPrefix(o.UserAgent, "panther/") {
		t.Fatalf("defaults %+v", o)
	}
	for _, seed := range []string{"", "ftp://example.com/", "/does/not/exist/anywhere"} {
		if _, err := c.Run(context.Background(), seed); !errors.Is(err, panther.ErrInvalid) {
			t.Errorf("Run(%q) = %v, want an invalid-input error", seed, err)
		}
	}
}

func TestProgressAndStoreFailure(t *testing.T) {
	s := bigSite(t, 30, 25*time.Millisecond, nil)
	var mu sync.Mutex
	var calls []Progress
	opts := testOptions(t)
	opts.Progress = func(p Progress) {
		mu.Lock()
		calls = append(calls, p)
		mu.Unlock()
	}
	sum := crawlOnce(t, newMemStore(), newMemIndex(), opts, s.url("/docs/"))
	mu.Lock()
	last := calls[len(calls)-1]
	mu.Unlock()
	if len(calls) < 2 || last.Done != sum.New || last.Queued != 0 || last.PagesPerSec <= 0 {
		t.Fatalf("%d progress calls, last %+v, summary %+v", len(calls), last, sum)
	}

	store := newMemStore()
	store.failFinish = errors.New("disk full")
	c, _ := New(store, newMemIndex(), testOptions(t))
	if _, err := c.Run(context.Background(), s.url("/docs/")); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Run with a failing store: %v", err)
	}
}

func TestSummaryString(t *testing.T) {
	s := Summary{Fetched: 10, New: 8, Unchanged: 2, Skipped: map[string]int{"robots": 2, "content-type": 1},
		Failed: map[string]int{}, Duration: 2 * time.Second, Truncated: true}
	want := "fetched 10 pages in 2s (5/s): 8 new, 0 changed, 2 unchanged, 0 duplicate, 0 gone; skipped 3 (content-type 1, robots 2); failed 0; stopped at max pages"
	if got := s.String(); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestHostLimits(t *testing.T) {
	var inflight, peak atomic.Int32
	s := bigSite(t, 20, 0, nil)
	for i := range 20 {
		p := fmt.Sprintf("/docs/p%d.html", i)
		body := htmlPage(p, "")
		s.handle(p, func(w http.ResponseWriter, r *http.Request) {
			n := inflight.Add(1)
			defer inflight.Add(-1)
			for {
				old := peak.Load()
				if n <= old || peak.CompareAndSwap(old, n) {
					break
				}
			}
			time.Sleep(10 * time.Millisecond)
			io.WriteString(w, body)
		})
	}
	opts := testOptions(t)
	opts.Concurrency = 8
	opts.HostConcurrency = 2
	sum := crawlOnce(t, newMemStore(), newMemIndex(), opts, s.url("/docs/"))
	// The pages here link nowhere: the root and its ten links.
	if sum.New != 11 || peak.Load() > 2 {
		t.Fatalf("summary %+v, peak concurrency %d, want at most 2", sum, peak.Load())
	}

	opts.HostRate = 40
	start := time.Now()
	crawlOnce(t, newMemStore(), newMemIndex(), opts, s.url("/docs/"))
	// 11 pages, robots.txt and sitemap.xml at 40 requests/s: at least 12 intervals of 25ms.
	if el := time.Since(start); el < 12*25*time.Millisecond {
		t.Fatalf("13 requests in %v at 40/s", el)
	}
}

func TestSeedErrors(t *testing.T) {
	c, _ := New(newMemStore(), newMemIndex(), testOptions(t))
	_, err := c.Run(context.Background(), "docs.example.com/guide")
	if !errors.Is(err, panther.ErrInvalid) || !strings.Contains(err.Error(), "https://docs.example.com/guide") {
		t.Fatalf("err %v, want a hint to use a URL", err)
	}
}
