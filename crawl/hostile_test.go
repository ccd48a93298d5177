package crawl

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"panther"
	"panther/kb"
	"panther/sqlite"
)

// The tests of this file point the crawler at hostile and broken servers. Each site has one hostile
// part and otherwise normal pages; every crawl must return within a bound derived from its options,
// record why the hostile URL was not stored, and still store every normal page.

// hostileOptions cut slow servers quickly: 300 ms a request, one retry, short waits.
func hostileOptions(t *testing.T) Options {
	o := testOptions(t)
	o.Timeout = 300 * time.Millisecond
	o.Retries = 1
	o.RetryBackoff = time.Millisecond
	o.MaxRetryWait = 50 * time.Millisecond
	o.MaxBodyBytes = 256 << 10
	o.MaxRedirects = 3
	return o
}

// attemptBound is the longest one request may take under o, retries and their waits included.
func attemptBound(o Options) time.Duration {
	n := time.Duration(max(o.Retries, 0) + 1)
	return n*o.Timeout + (n-1)*(o.MaxRetryWait+o.RetryBackoff)
}

// runBounded crawls seed and fails the test if the crawl has not returned once requests requests
// in a row have each taken their longest (plus slack for a loaded machine). That is a deadline
// derived from the options, not a measure of speed.
func runBounded(t *testing.T, store Store, index Index, opts Options, seed string, requests int) Summary {
	t.Helper()
	bound := time.Duration(requests)*attemptBound(opts) + 5*time.Second
	c, err := New(store, index, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		sum Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := c.Run(ctx, seed)
		done <- result{sum, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("Run(%s): %v", seed, r.err)
		}
		t.Logf("%s", r.sum)
		return r.sum
	case <-time.After(bound):
		cancel()
		t.Fatalf("crawl of %s still running after %v, the bound its options allow", seed, bound)
	}
	return Summary{}
}

// hostileSite serves four normal pages (/docs/ linking to a.html, b.html, c.html and to the
// hostile links) plus the hostile routes, and counts requests by path.
type hostileSite struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

var normalPages = []string{"/docs/", "/docs/a.html", "/docs/b.html", "/docs/c.html"}

func newHostileSite(t *testing.T, links []string, routes map[string]http.HandlerFunc) *hostileSite {
	t.Helper()
	mux := http.NewServeMux()
	pages := map[string][]string{
		"/docs/":       append([]string{"a.html", "b.html", "c.html"}, links...),
		"/docs/a.html": {"b.html"},
		"/docs/b.html": nil,
		"/docs/c.html": {"a.html"},
	}
	for p, l := range pages {
		body := htmlPage(p, "", l...)
		pattern := "GET " + p
		if p == "/docs/" {
			pattern = "GET /docs/{$}"
		}
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, body)
		})
	}
	for pattern, h := range routes {
		mux.HandleFunc(pattern, h)
	}
	s := &hostileSite{hits: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *hostileSite) url(p string) string { return s.srv.URL + p }

// hitsUnder counts the requests for paths starting with prefix.
func (s *hostileSite) hitsUnder(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p, c := range s.hits {
		if strings.HasPrefix(p, prefix) {
			n += c
		}
	}
	return n
}

// hijack takes the raw connection of a request, for servers that break HTTP itself. The deadline
// keeps a connection the client never closes from outliving the test.
func hijack(t *testing.T, w http.ResponseWriter) net.Conn {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return nil
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn
}

// holdOpen keeps a connection open, reading and ignoring, until the client closes it.
func holdOpen(conn net.Conn) {
	defer conn.Close()
	io.Copy(io.Discard, conn)
}

func redirectTo(to string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, to, http.StatusFound) }
}

func serveBytes(ctype string, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ctype == "" {
			w.Header()["Content-Type"] = nil
		} else {
			w.Header().Set("Content-Type", ctype)
		}
		w.Write(body)
	}
}

// bombMember is one gzip member expanding to 1 MiB of HTML-looking text; members concatenated are
// one valid gzip stream, so n of them are n MiB from about n KiB.
var bombMember = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write(bytes.Repeat([]byte("<p>bomb</p>"), (1<<20)/len("<p>bomb</p>")))
	zw.Close()
	return b.Bytes()
})

// serveBomb sends members gzip members (0: until the client goes away) as a gzip-encoded HTML page,
// whether or not the client asked for gzip.
func serveBomb(members int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Encoding", "gzip")
		m := bombMember()
		for i := 0; members == 0 || i < members; i++ {
			if _, err := w.Write(m); err != nil {
				return
			}
			if i > 1<<14 { // 16 GiB expanded: the client stopped reading long ago
				return
			}
		}
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func zlibBytes(s string) []byte {
	var b bytes.Buffer
	zw := zlib.NewWriter(&b)
	io.WriteString(zw, s)
	zw.Close()
	return b.Bytes()
}

func flateBytes(s string) []byte {
	var b bytes.Buffer
	zw, _ := flate.NewWriter(&b, flate.DefaultCompression)
	io.WriteString(zw, s)
	zw.Close()
	return b.Bytes()
}

// world is the real embedded store and knowledge base a hostile crawl writes to, so that whatever
// a broken server sends is checked all the way into SQLite.
type world struct {
	t  *testing.T
	db *sqlite.DB
	kb *kb.Service
}

func newWorld(t *testing.T) *world {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "panther.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := kb.New(db, kb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, db: db, kb: svc}
}

// docs returns the current documents with their markdown, by URL.
func (w *world) docs() map[string]panther.Document {
	w.t.Helper()
	list, err := w.kb.Documents(context.Background(), panther.DocFilter{Limit: 10_000})
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]panther.Document{}
	for _, d := range list {
		if d.Status != panther.DocCurrent {
			continue
		}
		full, err := w.kb.Document(context.Background(), d.URL)
		if err != nil {
			w.t.Fatal(err)
		}
		out[d.URL] = full
	}
	return out
}

// entries returns the frontier of a source, by URL.
func (w *world) entries(sourceID int64) map[string]panther.FrontierEntry {
	w.t.Helper()
	es, err := w.db.Frontier(context.Background(), sourceID)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]panther.FrontierEntry{}
	for _, e := range es {
		out[e.URL] = e
	}
	return out
}

type hostileCase struct {
	name   string
	links  []string                    // links from /docs/ to the hostile part
	routes map[string]http.HandlerFunc // the hostile part
	opts   func(*Options)
	// requests is how many requests in a row may each take their longest (default 2).
	requests int
	// The hostile URL's record: the summary counts reason under state; when path is set, its
	// frontier entry says so too and no page is stored under it.
	path   string
	state  panther.FrontierState
	reason string
	// stored are pages beyond the normal ones that must be stored (broken but readable).
	stored []string
	check  func(t *testing.T, s *hostileSite, sum Summary, w *world)
}

func TestHostileServers(t *testing.T) {
	calendar := func(w http.ResponseWriter, r *http.Request) {
		y, _ := strconv.Atoi(r.PathValue("y"))
		m, _ := strconv.Atoi(r.PathValue("m"))
		month := func(d int) string {
			t := time.Date(y, time.Month(m+d), 1, 0, 0, 0, 0, time.UTC)
			return fmt.Sprintf("/docs/cal/%d/%02d/", t.Year(), t.Month())
		}
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, htmlPage(r.URL.Path, "", month(-1), month(1)))
	}
	cases := []hostileCase{
		// Redirects.
		{name: "redirect loop", links: []string{"loop"},
			routes: map[string]http.HandlerFunc{"/docs/loop": redirectTo("/docs/loop2"), "/docs/loop2": redirectTo("/docs/loop")},
			path:   "/docs/loop2", state: panther.FrontierFailed, reason: reasonRedirectLoop},
		{name: "redirect to itself", links: []string{"self"},
			routes: map[string]http.HandlerFunc{"/docs/self": redirectTo("/docs/self")},
			path:   "/docs/self", state: panther.FrontierFailed, reason: reasonRedirectLoop},
		{name: "endless redirect chain", links: []string{"chain/0"}, requests: 4,
			routes: map[string]http.HandlerFunc{"/docs/chain/{n}": func(w http.ResponseWriter, r *http.Request) {
				n, _ := strconv.Atoi(r.PathValue("n"))
				http.Redirect(w, r, fmt.Sprintf("/docs/chain/%d", n+1), http.StatusMovedPermanently)
			}},
			path: "/docs/chain/3", state: panther.FrontierFailed, reason: reasonTooManyRedirects,
			check: func(t *testing.T, s *hostileSite, sum Summary, w *world) {
				if n := s.hitsUnder("/docs/chain/"); n != 4 {
					t.Errorf("%d requests along the chain, want MaxRedirects+1 = 4", n)
				}
			}},
		{name: "redirect to javascript:", links: []string{"js"},
			routes: map[string]http.HandlerFunc{"/docs/js": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", "javascript:alert(1)")
				w.WriteHeader(http.StatusFound)
			}},
			path: "/docs/js", state: panther.FrontierFailed, reason: "bad-redirect"},
		{name: "redirect without Location", links: []string{"nowhere"},
			routes: map[string]http.HandlerFunc{"/docs/nowhere": func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusMovedPermanently)
			}},
			path: "/docs/nowhere", state: panther.FrontierFailed, reason: "bad-redirect"},

		// Spider traps.
		{name: "calendar bounded by MaxPages", links: []string{"cal/2024/01/"},
			routes: map[string]http.HandlerFunc{"GET /docs/cal/{y}/{m}/": calendar},
			opts:   func(o *Options) { o.MaxPages = 25 },
			state:  panther.FrontierSkipped, reason: reasonMaxPages,
			check: func(t *testing.T, s *hostileSite, sum Summary, w *world) {
				if sum.Fetched != 25 || !sum.Truncated {
					t.Errorf("fetched %d pages, truncated %v; want 25, true", sum.Fetched, sum.Truncated)
				}
			}},
		{name: "calendar bounded by MaxDepth", links: []string{"cal/2024/01/"},
			routes: map[string]http.HandlerFunc{"GET /docs/cal/{y}/{m}/": calendar},
			opts:   func(o *Options) { o.MaxDepth = 6 },
			state:  panther.FrontierSkipped, reason: reasonMaxDepth,
			check: func(t *testing.T, s *hostileSite, sum Summary, w *world) {
				// The calendar starts at depth 1: months within 5 of it are at most depth 6.
				if n := s.hitsUnder("/docs/cal/"); n != 11 {
					t.Errorf("%d calendar pages fetched, want 11", n)
				}
			}},
		{name: "query growing on every page", links: []string{"search?q=x"},
			routes: map[string]http.HandlerFunc{"/docs/search": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				io.WriteString(w, htmlPage(r.URL.RequestURI(), "", "search?"+r.URL.RawQuery+"&more="+strconv.Itoa(len(r.URL.RawQuery))))
			}},
			opts:  func(o *Options) { o.MaxURLLength = 200 },
			state: panther.FrontierSkipped, reason: reasonURLTooLong,
			check: func(t *testing.T, s *hostileSite, sum Summary, w *world) {
				if n := s.hitsUnder("/docs/search"); n > 30 {
					t.Errorf("%d search pages fetched for a 200-byte URL limit", n)
				}
			}},
		{name: "new query variants on every page", links: []string{"list?page=1"},
			routes: map[string]http.HandlerFunc{"/docs/list": func(w http.ResponseWriter, r *http.Request) {
				n, _ := strconv.Atoi(r.URL.Query().Get("page"))
				w.Header().Set("Content-Type", "text/html")
				io.WriteString(w, htmlPage(r.URL.RequestURI(), "",
					fmt.Sprintf("list?page=%d", n+1), fmt.Sprintf("list?page=%d", n+2), "list?session="+hex.EncodeToString(randomBytes(8))))
			}},
			opts:  func(o *Options) { o.MaxQueryVariants = 20 },
			state: panther.FrontierSkipped, reason: reasonQueryVariants,
			check: func(t *testing.T, s *hostileSite, sum Summary, w *world) {
				if n := s.hitsUnder("/docs/list"); n > 20 {
					t.Errorf("%d variants of /docs/list fetched, want at most 20", n)
				}
			}},
		{name: "a new random path on every page", links: []string{"rand/start"},
			routes: map[string]http.HandlerFunc{"/docs/rand/": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				io.WriteString(w, htmlPage(r.URL.Path, "", "/docs/rand/"+hex.EncodeToString(randomBytes(8))))
			}},
			opts:  func(o *Options) { o.MaxDepth = 8 },
			state: panther.FrontierSkipped, reason: reasonMaxDepth,
			check: func(t *testing.T, s *hostileSite, sum Summary, w *world) {
				if n := s.hitsUnder("/docs/rand/"); n != 8 {
					t.Errorf("%d random pages fetched, want 8 (depths 1 to 8)", n)
				}
			}},
		{name: "path nesting deeper on every page", links: []string{"nest/"},
			routes: map[string]http.HandlerFunc{"/docs/nest/": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				io.WriteString(w, htmlPage(r.URL.Path, "", "x/"))
			}},
			opts:  func(o *Options) { o.MaxURLLength = 120 },
			state: panther.FrontierSkipped, reason: reasonURLTooLong,
			check: func(t *testing.T, s *hostileSite, sum Summary, w *world) {
				if n := s.hitsUnder("/docs/nest/"); n > 60 {
					t.Errorf("%d nested pages fetched for a 120-byte URL limit", n)
				}
			}},

		// Compression.
		{name: "gzip bomb decoded by the transport", links: []string{"bomb.html"},
			routes: map[string]http.HandlerFunc{"/docs/bomb.html": serveBomb(0)},
			path:   "/docs/bomb.html", state: panther.FrontierSkipped, reason: reasonTooLarge},
		{name: "gzip bomb sent without Accept-Encoding", links: []string{"bomb.html"},
			routes: map[string]http.HandlerFunc{"/docs/bomb.html": serveBomb(64)}, // 64 KiB, 64 MiB expanded
			opts: func(o *Options) {
				tr := &http.Transport{DisableCompression: true}
				t.Cleanup(tr.CloseIdleConnections)
				o.Transport = tr
			},
			path: "/docs/bomb.html", state: panther.FrontierSkipped, reason: reasonTooLarge},
		{name: "gzip page sent without Accept-Encoding", links: []string{"zipped.html"},
			routes: map[string]http.HandlerFunc{"/docs/zipped.html": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Header().Set("Content-Encoding", "gzip")
				w.Write(gz(htmlPage("zipped", "")))
			}},
			opts: func(o *Options) {
				tr := &http.Transport{DisableCompression: true}
				t.Cleanup(tr.CloseIdleConnections)
				o.Transport = tr
			},
			stored: []string{"/docs/zipped.html"},
			check:  wantText("/docs/zipped.html", "This is the page zipped")},
		{name: "deflate pages, zlib and raw", links: []string{"zlib.html", "raw.html"},
			routes: map[string]http.HandlerFunc{
				"/docs/zlib.html": func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/html")
					w.Header().Set("Content-Encoding", "deflate")
					w.Write(zlibBytes(htmlPage("zlib", "")))
				},
				"/docs/raw.html": func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/html")
					w.Header().Set("Content-Encoding", "Deflate")
					w.Write(flateBytes(htmlPage("raw", "")))
				},
			},
			stored: []string{"/docs/zlib.html", "/docs/raw.html"},
			check: func(t *testing.T, s *hostileSite, sum Summary, w *world) {
				wantText("/docs/zlib.html", "This is the page zlib")(t, s, sum, w)
				wantText("/docs/raw.html", "This is the page raw")(t, s, sum, w)
			}},
		{name: "brotli nobody asked for", links: []string{"br.html"},
			routes: map[string]http.HandlerFunc{"/docs/br.html": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Header().Set("Content-Encoding", "br")
				w.Write(randomBytes(2000))
			}},
			path: "/docs/br.html", state: panther.FrontierSkipped, reason: reasonContentEncoding},
		{name: "corrupt gzip", links: []string{"corrupt.html"},
			routes: map[string]http.HandlerFunc{"/docs/corrupt.html": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Header().Set("Content-Encoding", "gzip")
				io.WriteString(w, "<html>this is not gzip at all</html>")
			}},
			path: "/docs/corrupt.html", state: panther.FrontierFailed, reason: reasonBadEncoding,
			check: func(t *testing.T, s *hostileSite, sum Summary, w *world) {
				if n := s.hitsUnder("/docs/corrupt.html"); n != 1 {
					t.Errorf("corrupt body fetched %d times; it cannot decode better the second time", n)
				}
			}},

		// Bodies and time.
		{name: "body that never ends", links: []string{"endless.html"},
			routes: map[string]http.HandlerFunc{"/docs/endless.html": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				chunk := []byte(strings.Repeat("<p>more</p>", 1000))
				for range 1 << 16 {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			}},
			path: "/docs/endless.html", state: panther.FrontierSkipped, reason: reasonTooLarge},
		{name: "body that never ends, slowly", links: []string{"trickle.html"},
			routes: map[string]http.HandlerFunc{"/docs/trickle.html": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				for {
					if _, err := io.WriteString(w, "<p>more</p>"); err != nil {
						return
					}
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}},
			path: "/docs/trickle.html", state: panther.FrontierFailed, reason: reasonTimeout},
		{name: "one byte a second", links: []string{"slowloris.html"},
			routes: map[string]http.HandlerFunc{"/docs/slowloris.html": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				body := htmlPage("slowloris", "")
				for i := range len(body) {
					if _, err := io.WriteString(w, body[i:i+1]); err != nil {
						return
					}
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
						return
					case <-time.After(time.Second):
					}
				}
			}},
			path: "/docs/slowloris.html", state: panther.FrontierFailed, reason: reasonTimeout},
		{name: "headers one byte at a time", links: []string{"slowheaders.html"},
			routes: map[string]http.HandlerFunc{"/docs/slowheaders.html": func(w http.ResponseWriter, r *http.Request) {
				conn := hijack(t, w)
				if conn == nil {
					return
				}
				defer conn.Close()
				for _, b := range []byte("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Slow: " + strings.Repeat("z", 1000)) {
					if _, err := conn.Write([]byte{b}); err != nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}},
			path: "/docs/slowheaders.html", state: panther.FrontierFailed, reason: reasonTimeout},
		{name: "accepts and never answers", links: []string{"silent.html"},
			routes: map[string]http.HandlerFunc{"/docs/silent.html": func(w http.ResponseWriter, r *http.Request) {
				if conn := hijack(t, w); conn != nil {
					holdOpen(conn)
				}
			}},
			path: "/docs/silent.html", state: panther.FrontierFailed, reason: reasonTimeout},
		{name: "not HTTP at all", links: []string{"ssh"},
			routes: map[string]http.HandlerFunc{"/docs/ssh": func(w http.ResponseWriter, r *http.Request) {
				if conn := hijack(t, w); conn != nil {
					io.WriteString(conn, "SSH-2.0-OpenSSH_9.6\r\n\r\n")
					conn.Close()
				}
			}},
			path: "/docs/ssh", state: panther.FrontierFailed, reason: reasonNetwork},
		{name: "body shorter than its Content-Length", links: []string{"short.html"},
			routes: map[string]http.HandlerFunc{"/docs/short.html": func(w http.ResponseWriter, r *http.Request) {
				if conn := hijack(t, w); conn != nil {
					io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5000\r\n\r\n<html><body><p>cut")
					conn.Close()
				}
			}},
			path: "/docs/short.html", state: panther.FrontierFailed, reason: reasonNetwork},
		{name: "headers that never end", links: []string{"headers.html"},
			routes: map[string]http.HandlerFunc{"/docs/headers.html": func(w http.ResponseWriter, r *http.Request) {
				conn := hijack(t, w)
				if conn == nil {
					return
				}
				defer conn.Close()
				io.WriteString(conn, "HTTP/1.1 200 OK\r\n")
				line := []byte("X-Junk: " + strings.Repeat("j", 4000) + "\r\n")
				for range 1 << 14 { // 64 MB of headers at most
					if _, err := conn.Write(line); err != nil {
						return
					}
				}
			}},
			path: "/docs/headers.html", state: panther.FrontierFailed, reason: reasonNetwork},
		{name: "50 MB announced", links: []string{"huge.html"},
			routes: map[string]http.HandlerFunc{"/docs/huge.html": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Header().Set("Content-Length", strconv.Itoa(50<<20))
				w.WriteHeader(http.StatusOK)
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			}},
			path: "/docs/huge.html", state: panther.FrontierSkipped, reason: reasonTooLarge},

		// Content types and encodings.
		{name: "PNG labelled text/html", links: []string{"image.html"},
			routes: map[string]http.HandlerFunc{"/docs/image.html": serveBytes("text/html", append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), randomBytes(4000)...))},
			path:   "/docs/image.html", state: panther.FrontierSkipped, reason: reasonContentType},
		{name: "random bytes labelled text/plain", links: []string{"noise.txt"},
			routes: map[string]http.HandlerFunc{"/docs/noise.txt": serveBytes("text/plain", randomBytes(4000))},
			path:   "/docs/noise.txt", state: panther.FrontierSkipped, reason: reasonContentType},
		{name: "no Content-Type", links: []string{"untyped"},
			routes: map[string]http.HandlerFunc{"/docs/untyped": serveBytes("", []byte(htmlPage("untyped", "")))},
			stored: []string{"/docs/untyped"}},
		{name: "Content-Type that is no media type", links: []string{"odd"},
			routes: map[string]http.HandlerFunc{"/docs/odd": serveBytes("html", []byte(htmlPage("odd", "")))},
			stored: []string{"/docs/odd"}},
		{name: "HTML labelled text/plain", links: []string{"plain"},
			routes: map[string]http.HandlerFunc{"/docs/plain": serveBytes("text/plain", []byte(htmlPage("plain", "")))},
			stored: []string{"/docs/plain"}},
		{name: "invalid and mixed encodings", links: []string{"latin1.html", "mixed.html", "bogus.html", "utf16.html", "nul.html", "meta.html"},
			routes: map[string]http.HandlerFunc{
				"/docs/latin1.html": serveBytes("text/html; charset=utf-8", []byte("<html><head><title>Caf\xe9</title></head><body><h1>Caf\xe9</h1><p>cr\xe8me br\xfbl\xe9e</p></body></html>")),
				"/docs/mixed.html":  serveBytes("text/html", []byte("<html><head><title>Mixed</title></head><body><h1>Mixed</h1><p>na\u00efve and caf\xe9 and \xff\xfe and \xe2\x82</p></body></html>")),
				"/docs/bogus.html":  serveBytes("text/html; charset=x-no-such-charset", []byte("<html><head><title>Bogus</title></head><body><p>\x80\x81\x82 text \xc3\xa9</p></body></html>")),
				"/docs/utf16.html":  serveBytes("text/html", utf16LE("<html><head><title>Sixteen</title></head><body><p>Wide text \u00e9</p></body></html>")),
				"/docs/nul.html":    serveBytes("text/html", []byte("<!DOCTYPE html><html><head><title>Nul</title></head><body><p>a\x00b\x01c\x1bd</p></body></html>")),
				"/docs/meta.html":   serveBytes("text/html; charset=utf-8", []byte(`<html><head><meta charset="iso-8859-1"><title>Meta</title></head><body><p>gar\xe7on</p></body></html>`)),
			},
			stored: []string{"/docs/latin1.html", "/docs/mixed.html", "/docs/bogus.html", "/docs/utf16.html", "/docs/nul.html", "/docs/meta.html"},
			check: func(t *testing.T, s *hostileSite, sum Summary, w *world) {
				docs := w.docs()
				if d := docs[s.url("/docs/latin1.html")]; d.Title != "Café" || !strings.Contains(d.Markdown, "crème brûlée") {
					t.Errorf("Latin-1 page read as title %q, markdown %q", d.Title, d.Markdown)
				}
				if d := docs[s.url("/docs/utf16.html")]; d.Title != "Sixteen" || !strings.Contains(d.Markdown, "Wide text é") {
					t.Errorf("UTF-16 page read as title %q, markdown %q", d.Title, d.Markdown)
				}
			}},

		// Throttling.
		{name: "429 forever, Retry-After a day", links: []string{"busy.html"},
			routes: map[string]http.HandlerFunc{"/docs/busy.html": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "86400")
				http.Error(w, "slow down", http.StatusTooManyRequests)
			}},
			path: "/docs/busy.html", state: panther.FrontierFailed, reason: "http 429",
			check: func(t *testing.T, s *hostileSite, sum Summary, w *world) {
				if n := s.hitsUnder("/docs/busy.html"); n != 2 {
					t.Errorf("%d requests, want 1 + Retries", n)
				}
			}},
		{name: "429 forever, Retry-After a date in 2100", links: []string{"busy.html"},
			routes: map[string]http.HandlerFunc{"/docs/busy.html": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat))
				http.Error(w, "slow down", http.StatusTooManyRequests)
			}},
			path: "/docs/busy.html", state: panther.FrontierFailed, reason: "http 429"},
		{name: "503 with a Retry-After that is no time", links: []string{"down.html"},
			routes: map[string]http.HandlerFunc{"/docs/down.html": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "whenever")
				http.Error(w, "down", http.StatusServiceUnavailable)
			}},
			path: "/docs/down.html", state: panther.FrontierFailed, reason: "http 503"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newHostileSite(t, tc.links, tc.routes)
			opts := hostileOptions(t)
			if tc.reason != reasonTimeout {
				// Only slow servers need cutting at 300 ms; the others get time enough for the
				// crawler's own work on a loaded machine (or under -race).
				opts.Timeout = 5 * time.Second
			}
			if tc.opts != nil {
				tc.opts(&opts)
			}
			requests := tc.requests
			if requests == 0 {
				requests = 2
			}
			w := newWorld(t)
			sum := runBounded(t, w.db, w.kb, opts, s.url("/docs/"), requests)
			checkHostile(t, tc, s, w, sum)
		})
	}
}

// wantText checks that the page stored for path holds text.
func wantText(path, text string) func(t *testing.T, s *hostileSite, sum Summary, w *world) {
	return func(t *testing.T, s *hostileSite, sum Summary, w *world) {
		t.Helper()
		if d := w.docs()[s.url(path)]; !strings.Contains(d.Markdown, text) {
			t.Errorf("%s stored as %q, want it to hold %q", path, d.Markdown[:min(len(d.Markdown), 200)], text)
		}
	}
}

func checkHostile(t *testing.T, tc hostileCase, s *hostileSite, w *world, sum Summary) {
	t.Helper()
	docs := w.docs()
	for _, p := range slices.Concat(normalPages, tc.stored) {
		if _, ok := docs[s.url(p)]; !ok {
			t.Errorf("%s not stored", p)
		}
	}
	for u, d := range docs {
		if !utf8.ValidString(d.Title) || !utf8.ValidString(d.Markdown) || strings.ContainsRune(d.Markdown, 0) {
			t.Errorf("%s stored with invalid text: title %q markdown %q", u, d.Title, d.Markdown[:min(len(d.Markdown), 200)])
		}
	}
	if tc.reason != "" {
		counts := sum.Skipped
		if tc.state == panther.FrontierFailed {
			counts = sum.Failed
		}
		if counts[tc.reason] == 0 {
			t.Errorf("summary has no %s %q: skipped %v, failed %v", tc.state, tc.reason, sum.Skipped, sum.Failed)
		}
	}
	if tc.path != "" {
		e, ok := w.entries(sum.SourceID)[s.url(tc.path)]
		if !ok || e.State != tc.state || e.Reason != tc.reason {
			t.Errorf("frontier entry of %s = %+v (recorded %v), want %s %q", tc.path, e, ok, tc.state, tc.reason)
		}
		if _, ok := docs[s.url(tc.path)]; ok {
			t.Errorf("%s stored", tc.path)
		}
	}
	if tc.check != nil {
		tc.check(t, s, sum, w)
	}
}

func utf16LE(s string) []byte {
	out := []byte{0xff, 0xfe}
	for _, r := range s {
		out = append(out, byte(r), byte(r>>8))
	}
	return out
}

// hugeRobots is 2 MiB of robots.txt whose first rule disallows /docs/private.html and whose line at
// the 512 KiB read limit is cut right after "Disallow: /", with /docs/a.html disallowed beyond it.
func hugeRobots() []byte {
	var b bytes.Buffer
	b.WriteString("User-agent: *\nDisallow: /docs/private.html\n")
	const cut = "Disallow: /"
	for b.Len()+100+len(cut) < robotsMaxBytes {
		b.WriteString("# " + strings.Repeat("f", 97) + "\n")
	}
	if n := robotsMaxBytes - b.Len() - len(cut) - 1; n > 0 {
		b.WriteString("#" + strings.Repeat("g", n-1) + "\n")
	}
	b.WriteString(cut + "zzz-beyond-the-limit\nDisallow: /docs/a.html\n")
	for b.Len() < 2<<20 {
		b.WriteString("Disallow: /filler/" + strings.Repeat("h", 80) + "\n")
	}
	return b.Bytes()
}

func TestHostileRobots(t *testing.T) {
	const rules = "User-agent: *\nDisallow: /docs/private.html\n"
	serveText := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, body)
		}
	}
	cases := []struct {
		name     string
		robots   http.HandlerFunc
		requests int
		// private is what becomes of /docs/private.html: "" stored, else its skip reason. With
		// unavailable set, the whole host is disallowed instead: nothing but robots.txt requested.
		private     string
		unavailable bool
		check       func(t *testing.T, s *hostileSite)
	}{
		{name: "huge, cut in the middle of a rule", private: reasonRobots,
			robots: serveBytes("text/plain", hugeRobots())},
		{name: "never ends", private: reasonRobots,
			robots: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, rules)
				line := []byte("# " + strings.Repeat("c", 1000) + "\n")
				for range 1 << 14 {
					if _, err := w.Write(line); err != nil {
						return
					}
				}
			}},
		{name: "gzip bomb", private: reasonRobots,
			robots: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				w.Write(gz(rules))
				serveBomb(0)(w, r)
			}},
		{name: "binary garbage", robots: serveBytes("text/plain", randomBytes(64<<10))},
		{name: "an HTML page with 200", robots: serveBytes("text/html", []byte(htmlPage("Not found", "", "/docs/")))},
		{name: "BOM, CRLF, odd spacing and junk lines", private: reasonRobots,
			robots: serveText("\ufeffUser-Agent : *\r\nthis line means nothing\r\nDisallow:/docs/private.html\r\nCrawl-delay: soon\r\n")},
		{name: "rules before any User-agent", private: reasonRobots,
			robots: serveText("Disallow: /docs/\nAllow: /\n" + rules)},
		{name: "503", unavailable: true,
			robots: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) },
			check: func(t *testing.T, s *hostileSite) {
				if n := s.hitsUnder("/robots.txt"); n != 2 {
					t.Errorf("robots.txt requested %d times, want 1 + Retries", n)
				}
			}},
		{name: "429 with Retry-After a day", unavailable: true,
			robots: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "86400")
				http.Error(w, "slow down", http.StatusTooManyRequests)
			}},
		{name: "never answers", unavailable: true, requests: 1,
			robots: func(w http.ResponseWriter, r *http.Request) {
				if conn := hijack(t, w); conn != nil {
					holdOpen(conn)
				}
			}},
		{name: "redirect loop", // RFC 9309: beyond five redirects robots.txt counts as unavailable (4xx), allowing all
			robots: redirectTo("/robots.txt")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newHostileSite(t, []string{"private.html"}, map[string]http.HandlerFunc{
				"GET /docs/private.html": func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/html")
					io.WriteString(w, htmlPage("private", ""))
				},
				"/robots.txt": tc.robots,
			})
			requests := tc.requests
			if requests == 0 {
				requests = 2
			}
			opts := hostileOptions(t)
			if tc.name != "never answers" {
				opts.Timeout = 5 * time.Second // only a slow server needs cutting at 300 ms
			}
			w := newWorld(t)
			sum := runBounded(t, w.db, w.kb, opts, s.url("/docs/"), requests)
			docs := w.docs()
			if tc.unavailable {
				if sum.Skipped[reasonRobotsUnavailable] != 1 || sum.Fetched != 0 || s.hitsUnder("/docs/") != 0 {
					t.Errorf("summary %v, %d page requests: want the host disallowed", sum, s.hitsUnder("/docs/"))
				}
			} else {
				for _, p := range normalPages {
					if _, ok := docs[s.url(p)]; !ok {
						t.Errorf("%s not stored", p)
					}
				}
				_, stored := docs[s.url("/docs/private.html")]
				if e := w.entries(sum.SourceID)[s.url("/docs/private.html")]; tc.private == "" && !stored {
					t.Errorf("/docs/private.html not stored: %+v", e)
				} else if tc.private != "" && (stored || e.Reason != tc.private) {
					t.Errorf("/docs/private.html: stored %v, entry %+v; want skipped %q", stored, e, tc.private)
				}
			}
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

// TestRobotsUnavailableExpires: RFC 9309 disallows a host while its robots.txt answers 5xx, but
// only for a while; once that is over robots.txt is asked again.
func TestRobotsUnavailableExpires(t *testing.T) {
	var mu sync.Mutex
	down := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "User-agent: *\nDisallow: /private/\n")
	}))
	defer srv.Close()
	opts := hostileOptions(t)
	opts.Retries = -1
	c, err := New(newMemStore(), newMemIndex(), opts)
	if err != nil {
		t.Fatal(err)
	}
	c.robotsRetry = 50 * time.Millisecond
	r, err := c.newRun(srv.URL + "/docs/")
	if err != nil {
		t.Fatal(err)
	}
	h := r.hosts.get(hostKey(srv.URL + "/"))
	ask := func(p string) (bool, string) {
		rules, err := r.robots(context.Background(), h)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(srv.URL + p)
		return rules.allowed(u)
	}
	if ok, reason := ask("/docs/"); ok || reason != reasonRobotsUnavailable {
		t.Fatalf("robots.txt down: allowed %v %q, want disallowed as unavailable", ok, reason)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	if ok, _ := ask("/docs/"); ok {
		t.Fatal("allowed again before the retry time")
	}
	time.Sleep(2 * c.robotsRetry)
	if ok, reason := ask("/docs/"); !ok {
		t.Fatalf("robots.txt back: still disallowed (%s)", reason)
	}
	if ok, reason := ask("/private/x"); ok || reason != reasonRobots {
		t.Fatalf("the rules read once robots.txt is back are not obeyed: %v %q", ok, reason)
	}
}

// TestRobotsCrawlDelayOverflow: a Crawl-delay too large for time.Duration is the longest wait we
// grant, not none.
func TestRobotsCrawlDelayOverflow(t *testing.T) {
	for _, delay := range []string{"1e12", "1e300", "0.05"} {
		t.Run(delay, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "User-agent: *\nCrawl-delay: "+delay+"\n")
			}))
			defer srv.Close()
			opts := hostileOptions(t)
			opts.MaxRetryWait = 2 * time.Second
			c, err := New(newMemStore(), newMemIndex(), opts)
			if err != nil {
				t.Fatal(err)
			}
			r, err := c.newRun(srv.URL + "/docs/")
			if err != nil {
				t.Fatal(err)
			}
			h := r.hosts.get(hostKey(srv.URL + "/"))
			if _, err := r.robots(context.Background(), h); err != nil {
				t.Fatal(err)
			}
			want := rate.Every(opts.MaxRetryWait)
			if delay == "0.05" {
				want = rate.Every(50 * time.Millisecond)
			}
			if got := h.limiter.Limit(); got != want {
				t.Fatalf("rate limit %v after Crawl-delay %s, want %v", got, delay, want)
			}
		})
	}
}

// TestHostile429Storm: a host answering 429 to everything for a while (each path's first two
// requests) is waited out, Retry-After capped by MaxRetryWait, and every page is stored.
func TestHostile429Storm(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	s := newHostileSite(t, nil, nil)
	inner := s.srv.Config.Handler
	s.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path]++
		n := seen[r.URL.Path]
		mu.Unlock()
		if n <= 2 {
			w.Header().Set("Retry-After", "3600")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		inner.ServeHTTP(w, r)
	})
	opts := hostileOptions(t)
	opts.Retries = 3
	w := newWorld(t)
	// Every page waits out two capped Retry-Afters; robots.txt and sitemap.xml too.
	sum := runBounded(t, w.db, w.kb, opts, s.url("/docs/"), 2*(len(normalPages)+2))
	docs := w.docs()
	for _, p := range normalPages {
		if _, ok := docs[s.url(p)]; !ok {
			t.Errorf("%s not stored", p)
		}
	}
	if len(sum.Failed) != 0 || len(sum.Skipped) != 0 {
		t.Errorf("summary %v: the storm should have been waited out", sum)
	}
}

// TestHostileLargePage: a 50 MB page, streamed without a length or announced with one, is skipped
// as too large after reading at most MaxBodyBytes, in bounded memory.
func TestHostileLargePage(t *testing.T) {
	const size = 50 << 20
	chunk := bytes.Repeat([]byte("<p>a fifty megabyte page</p>\n"), 2000)
	write := func(w http.ResponseWriter) {
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
	s := newHostileSite(t, []string{"streamed.html", "announced.html"}, map[string]http.HandlerFunc{
		"/docs/streamed.html": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			write(w)
		},
		"/docs/announced.html": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Length", strconv.Itoa(size/len(chunk)*len(chunk)+len(chunk)))
			write(w)
		},
	})
	opts := hostileOptions(t)
	opts.MaxBodyBytes = 1 << 20
	opts.Timeout = 5 * time.Second // time enough to read 50 MB, were it read
	w := newWorld(t)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	sum := runBounded(t, w.db, w.kb, opts, s.url("/docs/"), 2)
	runtime.ReadMemStats(&after)
	for _, p := range []string{"/docs/streamed.html", "/docs/announced.html"} {
		if e := w.entries(sum.SourceID)[s.url(p)]; e.State != panther.FrontierSkipped || e.Reason != reasonTooLarge {
			t.Errorf("%s: entry %+v, want skipped too-large", p, e)
		}
	}
	if sum.New != len(normalPages) {
		t.Errorf("summary %v", sum)
	}
	// A sanity bound, generous: reading either page whole would allocate 50 MB or more.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 24<<20 {
		t.Errorf("the crawl allocated %d MiB for 1 MiB pages", alloc>>20)
	}
}

// sitemapSite serves /docs/sitemap.xml listing the normal pages of s and extra URLs on other hosts:
// a sitemap seed takes those hosts into its scope, which puts a whole hostile host in a crawl.
func sitemapSite(t *testing.T, extra ...string) *hostileSite {
	var s *hostileSite
	s = newHostileSite(t, nil, map[string]http.HandlerFunc{
		"/docs/sitemap.xml": func(w http.ResponseWriter, r *http.Request) {
			var urls []string
			for _, p := range normalPages {
				urls = append(urls, s.url(p))
			}
			w.Header().Set("Content-Type", "application/xml")
			io.WriteString(w, urlset(append(urls, extra...)...))
		},
	})
	return s
}

// TestHostileTLS: a host whose certificate is not trusted, or that does not speak TLS on an https
// URL, fails its pages as "tls", once each (a certificate does not get better on retry), and the
// other host's pages are all stored.
func TestHostileTLS(t *testing.T) {
	var conns sync.Map // remote address -> true, one per connection the TLS server saw
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, htmlPage("secure", ""))
	}))
	tlsSrv.Config.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Store(c.RemoteAddr().String(), true)
		}
	}
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake errors are the point
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	plain := newHostileSite(t, nil, nil)
	plainAsTLS := strings.Replace(plain.srv.URL, "http://", "https://", 1)

	for _, ignoreRobots := range []bool{false, true} {
		t.Run(fmt.Sprintf("ignore robots %v", ignoreRobots), func(t *testing.T) {
			conns.Clear()
			s := sitemapSite(t, tlsSrv.URL+"/docs/secure.html", plainAsTLS+"/docs/a.html")
			opts := hostileOptions(t)
			opts.IgnoreRobots = ignoreRobots
			// Time enough for a handshake on a loaded machine: a handshake cut by the time-out
			// would be retried, and the count of connections would not tell about TLS retries.
			opts.Timeout = 5 * time.Second
			w := newWorld(t)
			sum := runBounded(t, w.db, w.kb, opts, s.url("/docs/sitemap.xml"), 4)
			docs := w.docs()
			for _, p := range normalPages {
				if _, ok := docs[s.url(p)]; !ok {
					t.Errorf("%s not stored", p)
				}
			}
			for _, u := range []string{tlsSrv.URL + "/docs/secure.html", plainAsTLS + "/docs/a.html"} {
				if e := w.entries(sum.SourceID)[u]; e.State != panther.FrontierFailed || e.Reason != reasonTLS {
					t.Errorf("%s: entry %+v, want failed tls", u, e)
				}
			}
			n := 0
			conns.Range(func(any, any) bool { n++; return true })
			if n != 1 {
				t.Errorf("%d connections to the untrusted server, want 1: no retry", n)
			}
			if sum.Failed[reasonTLS] != 2 {
				t.Errorf("summary %v", sum)
			}
		})
	}
	t.Run("seed", func(t *testing.T) {
		w := newWorld(t)
		sum := runBounded(t, w.db, w.kb, hostileOptions(t), tlsSrv.URL+"/docs/", 2)
		if sum.Failed[reasonTLS] != 1 || len(w.docs()) != 0 {
			t.Errorf("summary %v", sum)
		}
	})
}

// TestHostileDeadHosts: hosts that accept connections and never answer, or refuse them, cost their
// robots.txt time-out (or the page's, when robots.txt is ignored) and nothing more.
func TestHostileDeadHosts(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never read, never written
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		silent.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	refusing, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusingAddr := refusing.Addr().String()
	refusing.Close()

	silentURL := "http://" + silent.Addr().String() + "/docs/x.html"
	refusedURL := "http://" + refusingAddr + "/docs/y.html"
	cases := []struct {
		ignoreRobots           bool
		silentWant, refuseWant panther.FrontierState
		silentWhy, refuseWhy   string
	}{
		{false, panther.FrontierSkipped, panther.FrontierSkipped, reasonRobotsUnavailable, reasonRobotsUnavailable},
		{true, panther.FrontierFailed, panther.FrontierFailed, reasonTimeout, reasonNetwork},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("ignore robots %v", tc.ignoreRobots), func(t *testing.T) {
			s := sitemapSite(t, silentURL, refusedURL)
			opts := hostileOptions(t)
			opts.IgnoreRobots = tc.ignoreRobots
			w := newWorld(t)
			sum := runBounded(t, w.db, w.kb, opts, s.url("/docs/sitemap.xml"), 2)
			docs := w.docs()
			entries := w.entries(sum.SourceID)
			for _, p := range normalPages {
				if _, ok := docs[s.url(p)]; !ok {
					t.Errorf("%s not stored", p)
				}
			}
			if e := entries[silentURL]; e.State != tc.silentWant || e.Reason != tc.silentWhy {
				t.Errorf("silent host: entry %+v, want %s %q", e, tc.silentWant, tc.silentWhy)
			}
			if e := entries[refusedURL]; e.State != tc.refuseWant || e.Reason != tc.refuseWhy {
				t.Errorf("refusing host: entry %+v, want %s %q", e, tc.refuseWant, tc.refuseWhy)
			}
		})
	}
}

// TestAdmissionLimits checks the frontier's limits on links found in pages: the defaults New
// fills in, URL length, query variants per path, and MaxDepth refusals that a shallower link lifts.
func TestAdmissionLimits(t *testing.T) {
	c, err := New(newMemStore(), newMemIndex(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.opts.MaxURLLength != DefaultMaxURLLength || c.opts.MaxQueryVariants != DefaultMaxQueryVariants {
		t.Fatalf("defaults: max URL length %d, max query variants %d", c.opts.MaxURLLength, c.opts.MaxQueryVariants)
	}
	c, _ = New(newMemStore(), newMemIndex(), Options{MaxURLLength: -1, MaxQueryVariants: -1})
	if c.opts.MaxURLLength != 0 || c.opts.MaxQueryVariants != 0 {
		t.Fatalf("negative limits must mean none: %d %d", c.opts.MaxURLLength, c.opts.MaxQueryVariants)
	}

	f := newFrontier(0, 0)
	f.limits = linkLimits{maxDepth: 2, maxURL: DefaultMaxURLLength, maxVariants: DefaultMaxQueryVariants}
	var links []link
	for i := range DefaultMaxQueryVariants + 100 {
		links = append(links, link{url: fmt.Sprintf("http://h/cal?day=%d", i), depth: 1, page: true})
	}
	links = append(links,
		link{url: "http://h/cal", depth: 1, page: true},                                         // no query: not a variant
		link{url: "http://h/" + strings.Repeat("x", DefaultMaxURLLength), depth: 1, page: true}, // too long
		link{url: "http://h/" + strings.Repeat("y", DefaultMaxURLLength), depth: 1},             // too long, but a seed or sitemap URL
		link{url: "http://h/deep", depth: 3, page: true},
		link{url: "http://h/deep", depth: 3, page: true}, // counted once
	)
	got := f.admit(links)
	if len(got) != DefaultMaxQueryVariants+2 {
		t.Fatalf("admitted %d, want %d", len(got), DefaultMaxQueryVariants+2)
	}
	want := map[string]int{reasonQueryVariants: 100, reasonURLTooLong: 1, reasonMaxDepth: 1}
	if !maps.Equal(f.sum.Skipped, want) || f.skipped != 102 {
		t.Fatalf("skipped %v (%d), want %v", f.sum.Skipped, f.skipped, want)
	}
	// Found again within MaxDepth: admitted after all, and no longer counted.
	if got := f.admit([]link{{url: "http://h/deep", depth: 2, page: true}}); len(got) != 1 {
		t.Fatalf("shallower link to a page refused for depth not admitted")
	}
	if f.sum.Skipped[reasonMaxDepth] != 0 || f.skipped != 101 {
		t.Fatalf("skipped %v (%d) after the shallower link", f.sum.Skipped, f.skipped)
	}
	// A redirect chain may reach a page refused for depth.
	f.admit([]link{{url: "http://h/deeper", depth: 3, page: true}})
	if e, fresh := f.claim("http://h/deeper", 1); e == nil || !fresh || f.sum.Skipped[reasonMaxDepth] != 0 {
		t.Fatalf("claim of a URL refused for depth: %v %v, skipped %v", e, fresh, f.sum.Skipped)
	}
}

// FuzzRobots feeds robots.txt bodies through what the crawler does with them: tidying, parsing
// (sanitised on error), matching any path, and the cut at the read limit. None of it may panic; a
// tidied or sanitised file must parse to the same rules when tidied again; the cut keeps whole lines.
func FuzzRobots(f *testing.F) {
	for _, s := range []string{
		"User-agent: *\nDisallow: /private/\nAllow: /private/ok\nCrawl-delay: 2\nSitemap: http://h/s.xml\n",
		"\ufeffUser-Agent : *\r\nDisallow:/docs/\r\n",
		"Disallow: /early\nUser-agent: panther\nCrawl-delay: soon\nDisallow: /*.pdf$\n",
		"User-agent: *\nCrawl-delay: 1e300\n",
		"<html><body>Not found</body></html>",
		"User-agent: a\nUser-agent: b\n\nDisallow: /x\n# comment : with colon\n\tDisallow\t:\t/tab\n",
	} {
		f.Add([]byte(s), "/private/x?y=1")
	}
	f.Fuzz(func(t *testing.T, body []byte, path string) {
		if len(body) > robotsMaxBytes {
			return
		}
		rules, _ := parseRobots(body, "panther/dev", false)
		if rules == nil || rules.unavailable {
			t.Fatal("parseRobots returned no rules or unavailable ones")
		}
		u := &url.URL{Scheme: "http", Host: "h", Path: "/" + strings.TrimPrefix(path, "/")}
		if ok, reason := rules.allowed(u); !ok && reason != reasonRobots {
			t.Fatalf("disallowed with reason %q", reason)
		}
		tidy := tidyRobots(body)
		if again := tidyRobots(tidy); !bytes.Equal(again, tidy) {
			t.Fatalf("tidyRobots not idempotent: %q -> %q -> %q", body, tidy, again)
		}
		san := sanitizeRobots(tidy)
		if again := sanitizeRobots(san); !bytes.Equal(again, san) {
			t.Fatalf("sanitizeRobots not idempotent: %q -> %q -> %q", tidy, san, again)
		}
		// The cut at a read limit keeps whole lines, so no rule is shortened into a wider one.
		limit := int64(len(body) / 2)
		cut := cutAtLine(body, limit)
		if int64(len(cut)) > limit || (len(cut) > 0 && cut[len(cut)-1] != '\n') || !bytes.HasPrefix(body, cut) {
			t.Fatalf("cut of %q at %d = %q", body, limit, cut)
		}
	})
}
