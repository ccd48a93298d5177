package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"panther"
	"panther/internal/netguard"
)

const testPage = `<!doctype html>
<html><head><title>Partial Indexes</title></head>
<body>
<nav><a href="/">Home</a> | <a href="/docs">Docs</a> | navigation menu</nav>
<main>
<h1>Partial Indexes</h1>
<p>A partial index is built over a subset of a table; the subset is defined by a conditional
expression, called the predicate of the partial index.</p>
<h2 id="examples">Examples</h2>
<p>Setting up a partial index to exclude common values.</p>
<pre><code>CREATE INDEX orders_unbilled_index ON orders (order_nr) WHERE billed is not true;</code></pre>
</main>
<footer>Copyright footer text</footer>
</body></html>`

// webServer serves the pages the web_fetch tests need on 127.0.0.1 and counts its requests.
func webServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, testPage)
	})
	mux.HandleFunc("/notes.md", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/markdown")
		io.WriteString(w, "# Notes\n\nSome *markdown* notes.\n")
	})
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "just text")
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		line := strings.Repeat("word ", 19) + "end\n"
		for range 1000 { // 100 KB
			io.WriteString(w, line)
		}
	})
	mux.HandleFunc("/long", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		for i := range 2000 { // 120 KB, within MaxBytes, beyond what a result holds
			fmt.Fprintf(w, "line %04d %s\n", i, strings.Repeat("x", 49))
		}
	})
	mux.HandleFunc("/doc.pdf", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pdf")
		io.WriteString(w, "%PDF-1.7 ...")
	})
	mux.HandleFunc("/img", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write([]byte("\x89PNG\r\n\x1a\n"))
	})
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"a":1}`)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/page", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/to-metadata", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/iam/", http.StatusFound)
	})
	mux.HandleFunc("/to-loopback", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.2:9/admin", http.StatusFound)
	})
	mux.HandleFunc("/to-file", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
	})
	mux.HandleFunc("/gone", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "gone", http.StatusGone)
	})
	mux.HandleFunc("/boom", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if ua := r.Header.Get("User-Agent"); ua == "" || strings.HasPrefix(ua, "Go-http-client") {
			http.Error(w, "no user agent", http.StatusBadRequest)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// testFetch is a web_fetch tool allowed to reach the loopback test server.
func testFetch(opts WebFetchOptions) Tool {
	if opts.Client == nil {
		p := netguard.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
		opts.Client = p.Client(time.Minute, 5)
	}
	return WebFetch(opts)
}

func fetch(t *testing.T, tool Tool, url string) (ToolResult, error) {
	t.Helper()
	args, err := json.Marshal(map[string]string{"url": url})
	if err != nil {
		t.Fatal(err)
	}
	return tool.Run(context.Background(), args)
}

func TestWebFetchSpec(t *testing.T) {
	s := WebFetch(WebFetchOptions{}).Spec()
	if s.Name != "web_fetch" || !json.Valid(s.Parameters) || s.Description == "" {
		t.Errorf("spec = %+v", s)
	}
}

func TestWebFetchPage(t *testing.T) {
	srv, _ := webServer(t)
	tool := testFetch(WebFetchOptions{})
	before := time.Now().UTC()
	res, err := fetch(t, tool, srv.URL+"/page")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Citations) != 1 {
		t.Fatalf("%d citations, want 1", len(res.Citations))
	}
	c := res.Citations[0]
	sum := sha256.Sum256([]byte(testPage))
	if c.URL != srv.URL+"/page" || c.Title != "Partial Indexes" || c.Anchor != "" || c.ContentHash != hex.EncodeToString(sum[:]) || c.FetchedAt.Before(before) {
		t.Errorf("citation = %+v", c)
	}
	if !strings.HasPrefix(res.Content, CiteMark(0)+"\n") {
		t.Errorf("content does not start with the citation mark:\n%s", res.Content)
	}
	for _, want := range []string{"# Partial Indexes", "## Examples", "predicate of the partial index", "```", "CREATE INDEX orders_unbilled_index"} {
		if !strings.Contains(res.Content, want) {
			t.Errorf("content lacks %q:\n%s", want, res.Content)
		}
	}
	for _, unwanted := range []string{"<p>", "navigation menu", "Copyright footer"} {
		if strings.Contains(res.Content, unwanted) {
			t.Errorf("content has %q:\n%s", unwanted, res.Content)
		}
	}
	// As the loop shows it to the model: a numbered source line to cite.
	shown := newCiteBook().render(res)
	if want := "[1] Partial Indexes (" + srv.URL + "/page)\n"; !strings.HasPrefix(shown, want) {
		t.Errorf("rendered result starts %q, want %q", shown[:min(len(shown), 80)], want)
	}
}

func TestWebFetchKinds(t *testing.T) {
	srv, _ := webServer(t)
	tool := testFetch(WebFetchOptions{})
	cases := []struct {
		name, path string
		wantIn     []string
		wantURL    string
		anchor     string
	}{
		{"markdown", "/notes.md", []string{"# Notes", "*markdown*"}, "/notes.md", ""},
		{"plain text", "/plain", []string{"just text"}, "/plain", ""},
		{"redirect followed", "/moved", []string{"Note: " + srv.URL + "/moved redirected here.", "# Partial Indexes"}, "/page", ""},
		{"section of a page", "/page#examples", []string{"# Partial Indexes"}, "/page", "examples"},
		{"unknown section", "/page#nowhere", []string{"# Partial Indexes"}, "/page", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := fetch(t, tool, srv.URL+tc.path)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.wantIn {
				if !strings.Contains(res.Content, w) {
					t.Errorf("content lacks %q:\n%s", w, res.Content)
				}
			}
			if len(res.Citations) != 1 {
				t.Fatalf("%d citations", len(res.Citations))
			}
			c := res.Citations[0]
			if c.URL != srv.URL+tc.wantURL || c.Anchor != tc.anchor {
				t.Errorf("citation %+v, want URL %s anchor %q", c, srv.URL+tc.wantURL, tc.anchor)
			}
			if tc.anchor != "" && c.Heading != "Partial Indexes"+panther.HeadingSep+"Examples" {
				t.Errorf("heading %q", c.Heading)
			}
		})
	}
}

func TestWebFetchErrors(t *testing.T) {
	srv, hits := webServer(t)
	tool := testFetch(WebFetchOptions{Timeout: 300 * time.Millisecond})
	cases := []struct {
		name, args string
		wantErr    []string
		invalid    bool // an argument error, not a fetch error
		blocked    bool
		noRequest  bool // refused before anything was sent
	}{
		{name: "missing url", args: `{}`, wantErr: []string{"web_fetch: url is empty"}, invalid: true, noRequest: true},
		{name: "blank url", args: `{"url":"  "}`, wantErr: []string{"url is empty"}, invalid: true, noRequest: true},
		{name: "url not a string", args: `{"url":3}`, wantErr: []string{`"url" must be of type string`}, invalid: true, noRequest: true},
		{name: "not json", args: `[1]`, wantErr: []string{"not a JSON object"}, invalid: true, noRequest: true},
		{name: "ftp", args: `{"url":"ftp://127.0.0.1/x"}`, wantErr: []string{`scheme "ftp" refused`}, invalid: true, noRequest: true},
		{name: "file", args: `{"url":"file:///etc/passwd"}`, wantErr: []string{`scheme "file" refused`}, invalid: true, noRequest: true},
		{name: "relative", args: `{"url":"/page"}`, wantErr: []string{"no scheme"}, invalid: true, noRequest: true},
		{name: "no host", args: `{"url":"http:///page"}`, wantErr: []string{"no host"}, invalid: true, noRequest: true},
		{name: "bad url", args: `{"url":"http://a b/"}`, wantErr: []string{"not a valid URL"}, invalid: true, noRequest: true},
		{name: "userinfo", args: `{"url":"` + strings.Replace(srv.URL, "http://", "http://me:hunter2@", 1) + `/page"}`, wantErr: []string{"userinfo"}, invalid: true, noRequest: true},
		{name: "404", args: `{"url":"` + srv.URL + `/nothing"}`, wantErr: []string{"web_fetch " + srv.URL + "/nothing: the server answered 404 Not Found"}},
		{name: "410", args: `{"url":"` + srv.URL + `/gone"}`, wantErr: []string{"410 Gone"}},
		{name: "500", args: `{"url":"` + srv.URL + `/boom"}`, wantErr: []string{"500 Internal Server Error"}},
		{name: "pdf", args: `{"url":"` + srv.URL + `/doc.pdf"}`, wantErr: []string{"content type application/pdf is not supported", "not PDFs"}},
		{name: "image", args: `{"url":"` + srv.URL + `/img"}`, wantErr: []string{"content type image/png is not supported"}},
		{name: "json", args: `{"url":"` + srv.URL + `/json"}`, wantErr: []string{"content type application/json is not supported"}},
		{name: "redirect to metadata", args: `{"url":"` + srv.URL + `/to-metadata"}`, wantErr: []string{"web_fetch " + srv.URL + "/to-metadata: refused to connect to 169.254.169.254:80: cloud metadata address (allow it in the config's [web] allow list)"}, blocked: true},
		{name: "redirect to other loopback", args: `{"url":"` + srv.URL + `/to-loopback"}`, wantErr: []string{"refused to connect to 127.0.0.2:9: loopback address"}, blocked: true},
		{name: "redirect to file", args: `{"url":"` + srv.URL + `/to-file"}`, wantErr: []string{`redirect to scheme "file" refused`}},
		{name: "time-out", args: `{"url":"` + srv.URL + `/hang"}`, wantErr: []string{"no complete response within 300ms"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := hits.Load()
			res, err := tool.Run(context.Background(), json.RawMessage(tc.args))
			if err == nil {
				t.Fatalf("no error; content:\n%s", res.Content)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if got := errors.Is(err, panther.ErrInvalid); got != tc.invalid {
				t.Errorf("errors.Is(ErrInvalid) = %v, want %v", got, tc.invalid)
			}
			if got := errors.Is(err, netguard.ErrBlocked); got != tc.blocked {
				t.Errorf("errors.Is(ErrBlocked) = %v, want %v", got, tc.blocked)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error repeats the password: %v", err)
			}
			if tc.noRequest && hits.Load() != n {
				t.Errorf("the server got a request")
			}
		})
	}
}

func TestWebFetchDefaultPolicyRefusesLoopback(t *testing.T) {
	srv, hits := webServer(t)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	_, err := fetch(t, WebFetch(WebFetchOptions{}), srv.URL+"/page")
	want := fmt.Sprintf("web_fetch %s/page: refused to connect to 127.0.0.1:%d: loopback address (allow it in the config's [web] allow list)", srv.URL, port)
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if !errors.Is(err, netguard.ErrBlocked) {
		t.Errorf("not ErrBlocked: %v", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server got %d requests", n)
	}
}

func TestWebFetchBounds(t *testing.T) {
	srv, _ := webServer(t)

	// A body beyond MaxBytes is cut there, and the result says so.
	res, err := fetch(t, testFetch(WebFetchOptions{MaxBytes: 4096}), srv.URL+"/big")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Content, "Note: the page is larger than 4 KiB; only its first 4 KiB were read.") {
		t.Errorf("no truncation note:\n%s", res.Content[:min(300, len(res.Content))])
	}
	if len(res.Content) > 4096+500 {
		t.Errorf("content is %d bytes for a 4 KiB bound", len(res.Content))
	}
	if !strings.Contains(res.Content, "word word") {
		t.Errorf("the start of the page is missing")
	}

	// A page within MaxBytes but beyond what a tool result holds is trimmed with a note, not
	// left to the loop's cut.
	res, err = fetch(t, testFetch(WebFetchOptions{}), srv.URL+"/long")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(res.Content, "larger than") {
		t.Errorf("truncation note on a page within MaxBytes")
	}
	if !strings.Contains(res.Content, "[trimmed: showing about") || !strings.Contains(res.Content, "line 0000") {
		t.Errorf("not trimmed as expected: %d bytes", len(res.Content))
	}
	shown := newCiteBook().render(res)
	if len(shown) > MaxToolResultChars || strings.Contains(shown, "[tool result trimmed]") {
		t.Errorf("rendered result is %d bytes (limit %d) or was cut by the loop", len(shown), MaxToolResultChars)
	}
}
