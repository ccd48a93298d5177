package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"panther/internal/netguard"
)

// The web_fetch tool against hostile and broken servers: every fetch returns within its Timeout
// (plus slack), reads no more than MaxBytes of decoded body, and either returns a readable page or an
// error that says what was wrong.

const hostileTimeout = 300 * time.Millisecond

var loopback = netguard.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}

// hostileFetch runs web_fetch on u and fails the test if it has not returned within its Timeout
// plus slack for a loaded machine: a deadline from the options, not a measure of speed.
func hostileFetch(t *testing.T, tool Tool, timeout time.Duration, u string) (ToolResult, error) {
	t.Helper()
	args, _ := json.Marshal(map[string]string{"url": u})
	type result struct {
		res ToolResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := tool.Run(context.Background(), args)
		done <- result{res, err}
	}()
	select {
	case r := <-done:
		return r.res, r.err
	case <-time.After(timeout + 5*time.Second):
		t.Fatalf("web_fetch %s still running after its %v timeout", u, timeout)
	}
	return ToolResult{}, nil
}

func hijackConn(t *testing.T, w http.ResponseWriter) net.Conn {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return nil
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn
}

// randBytes is noise, the same on every run. Fresh random bytes failed a case once: one run in
// 32,768 they begin with a UTF-16 byte-order mark, which content sniffing takes for text, and the
// error names the content type instead of binary data.
func randBytes(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func gzipBytes(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	io.WriteString(zw, s)
	zw.Close()
	return b.Bytes()
}

// bomb is one gzip member expanding to 1 MiB of HTML-looking text; members concatenated are one
// gzip stream.
var bomb = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write(bytes.Repeat([]byte("<p>bomb</p>"), (1<<20)/len("<p>bomb</p>")))
	zw.Close()
	return b.Bytes()
})

func sendBomb(members int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Encoding", "gzip")
		for i := 0; (members == 0 && i < 1<<14) || i < members; i++ {
			if _, err := w.Write(bomb()); err != nil {
				return
			}
		}
	}
}

func typed(ctype string, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ctype == "" {
			w.Header()["Content-Type"] = nil
		} else {
			w.Header().Set("Content-Type", ctype)
		}
		w.Write(body)
	}
}

func page(title string) string {
	return "<!DOCTYPE html><html><head><title>" + title + "</title></head><body><main><h1>" + title +
		"</h1><p>This is the page " + title + ".</p></main></body></html>"
}

func TestWebFetchHostile(t *testing.T) {
	mux := http.NewServeMux()
	routes := map[string]http.HandlerFunc{
		"/loop": func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop2", http.StatusFound) },
		"/loop2": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/loop", http.StatusFound)
		},
		"/chain/{n}": func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.Atoi(r.PathValue("n"))
			http.Redirect(w, r, "/chain/"+strconv.Itoa(n+1), http.StatusMovedPermanently)
		},
		"/bomb":   sendBomb(0),
		"/bomb64": sendBomb(64),
		"/zipped": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(gzipBytes(page("Zipped")))
		},
		"/br": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Encoding", "br")
			w.Write(randBytes(2000))
		},
		"/corrupt": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Encoding", "gzip")
			io.WriteString(w, "<html>not gzip</html>")
		},
		"/endless": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			chunk := []byte(strings.Repeat("<p>more words</p>", 1000))
			for range 1 << 16 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		},
		"/trickle": func(w http.ResponseWriter, r *http.Request) {
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
		},
		"/slowloris": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			for _, b := range []byte(page("Slow")) {
				if _, err := w.Write([]byte{b}); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(time.Second):
				}
			}
		},
		"/slowheaders": func(w http.ResponseWriter, r *http.Request) {
			conn := hijackConn(t, w)
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
		},
		"/silent": func(w http.ResponseWriter, r *http.Request) {
			if conn := hijackConn(t, w); conn != nil {
				defer conn.Close()
				io.Copy(io.Discard, conn)
			}
		},
		"/ssh": func(w http.ResponseWriter, r *http.Request) {
			if conn := hijackConn(t, w); conn != nil {
				io.WriteString(conn, "SSH-2.0-OpenSSH_9.6\r\n\r\n")
				conn.Close()
			}
		},
		"/short": func(w http.ResponseWriter, r *http.Request) {
			if conn := hijackConn(t, w); conn != nil {
				io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5000\r\n\r\n<html><body><p>cut")
				conn.Close()
			}
		},
		"/headers": func(w http.ResponseWriter, r *http.Request) {
			conn := hijackConn(t, w)
			if conn == nil {
				return
			}
			defer conn.Close()
			io.WriteString(conn, "HTTP/1.1 200 OK\r\n")
			line := []byte("X-Junk: " + strings.Repeat("j", 4000) + "\r\n")
			for range 1 << 14 {
				if _, err := conn.Write(line); err != nil {
					return
				}
			}
		},
		"/announced": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Length", strconv.Itoa(50<<20))
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		},
		"/png":     typed("text/html", append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), randBytes(4000)...)),
		"/noise":   typed("text/plain", randBytes(4000)),
		"/untyped": typed("", []byte(page("Untyped"))),
		"/blob":    typed("application/octet-stream", randBytes(4000)),
		"/odd":     typed("html", []byte(page("Odd"))),
		"/latin1":  typed("text/html; charset=utf-8", []byte("<html><head><title>Caf\xe9</title></head><body><h1>Caf\xe9</h1><p>cr\xe8me br\xfbl\xe9e \xff\xfe</p></body></html>")),
		"/busy": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "86400")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		},
	}
	for p, h := range routes {
		mux.HandleFunc(p, h)
	}
	// Cleanups, not defers: the parallel cases run after this function returns.
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	tlsSrv := httptest.NewUnstartedServer(typed("text/html", []byte(page("Secure"))))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0)
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)

	// A host that accepts connections and never reads or writes a byte.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held sync.WaitGroup
	held.Go(func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := dead.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	})
	t.Cleanup(func() {
		dead.Close()
		held.Wait()
	})

	const maxBytes = 256 << 10
	// slow cuts slow servers at 300 ms. Servers that are quick but hostile get roomy, so that
	// decoding and reading 256 KiB on a loaded machine (or under -race) is not taken for them.
	const roomyTimeout = 5 * time.Second
	slow := WebFetch(WebFetchOptions{Client: loopback.Client(time.Minute, WebFetchMaxRedirects), Timeout: hostileTimeout, MaxBytes: maxBytes})
	roomy := WebFetch(WebFetchOptions{Client: loopback.Client(time.Minute, WebFetchMaxRedirects), Timeout: roomyTimeout, MaxBytes: maxBytes})
	// A transport that asks for no compression: what a server sending gzip regardless looks like.
	plainTr := loopback.Transport()
	plainTr.DisableCompression = true
	t.Cleanup(plainTr.CloseIdleConnections)
	unasked := WebFetch(WebFetchOptions{Client: &http.Client{Transport: plainTr}, Timeout: roomyTimeout, MaxBytes: maxBytes})

	cases := []struct {
		name string
		tool Tool
		url  string
		// wantErr, when set, are what the error must say; else want are what the page must hold.
		wantErr []string
		want    []string
	}{
		{name: "redirect loop", url: srv.URL + "/loop", wantErr: []string{"stopped after 10 redirects"}},
		{name: "endless redirect chain", url: srv.URL + "/chain/0", wantErr: []string{"stopped after 10 redirects"}},
		{name: "gzip bomb decoded by the transport", url: srv.URL + "/bomb", want: []string{"bomb", "larger than 256 KiB"}},
		{name: "gzip bomb sent without Accept-Encoding", tool: unasked, url: srv.URL + "/bomb64", want: []string{"bomb", "larger than 256 KiB"}},
		{name: "gzip page sent without Accept-Encoding", tool: unasked, url: srv.URL + "/zipped", want: []string{"This is the page Zipped"}},
		{name: "brotli nobody asked for", url: srv.URL + "/br", wantErr: []string{`content encoding "br" is not supported`}},
		{name: "corrupt gzip", url: srv.URL + "/corrupt", wantErr: []string{"does not decode", "gzip: invalid header"}},
		{name: "body that never ends", url: srv.URL + "/endless", want: []string{"more words", "larger than 256 KiB"}},
		{name: "body that never ends, slowly", url: srv.URL + "/trickle", wantErr: []string{"no complete response within 300ms"}},
		{name: "one byte a second", url: srv.URL + "/slowloris", wantErr: []string{"no complete response within 300ms"}},
		{name: "headers one byte at a time", url: srv.URL + "/slowheaders", wantErr: []string{"no complete response within 300ms"}},
		{name: "accepts and never answers", url: srv.URL + "/silent", wantErr: []string{"no complete response within 300ms"}},
		{name: "host that never reads", url: "http://" + dead.Addr().String() + "/", wantErr: []string{"no complete response within 300ms"}},
		{name: "not HTTP at all", url: srv.URL + "/ssh", wantErr: []string{"malformed HTTP"}},
		{name: "body shorter than its Content-Length", url: srv.URL + "/short", wantErr: []string{"unexpected EOF"}},
		{name: "headers that never end", url: srv.URL + "/headers", wantErr: []string{"headers exceeded"}},
		{name: "50 MB announced, never sent", url: srv.URL + "/announced", wantErr: []string{"no complete response within 300ms"}},
		{name: "PNG labelled text/html", url: srv.URL + "/png", wantErr: []string{"the body is binary data (image/png), not a page, although its content type says text/html"}},
		{name: "random bytes labelled text/plain", url: srv.URL + "/noise", wantErr: []string{"the body is binary data"}},
		{name: "random bytes labelled octet-stream", url: srv.URL + "/blob", wantErr: []string{"the body is binary data, not a page; web_fetch reads"}},
		{name: "no Content-Type", url: srv.URL + "/untyped", want: []string{"This is the page Untyped"}},
		{name: "Content-Type that is no media type", url: srv.URL + "/odd", want: []string{"This is the page Odd"}},
		{name: "invalid UTF-8", url: srv.URL + "/latin1", want: []string{"Café", "crème"}},
		{name: "429 with Retry-After", url: srv.URL + "/busy", wantErr: []string{"429 Too Many Requests; it asks to retry after 86400 seconds"}},
		{name: "untrusted certificate", url: tlsSrv.URL + "/", wantErr: []string{"TLS certificate is not trusted", "x509"}},
		{name: "plain HTTP on an https URL", url: strings.Replace(srv.URL, "http://", "https://", 1) + "/untyped", wantErr: []string{"does not speak TLS"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tool, timeout := tc.tool, roomyTimeout
			switch {
			case slices.ContainsFunc(tc.wantErr, func(s string) bool { return strings.Contains(s, "no complete response") }):
				tool, timeout = slow, hostileTimeout
			case tool == nil:
				tool = roomy
			}
			res, err := hostileFetch(t, tool, timeout, tc.url)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("no error; content %q", res.Content[:min(len(res.Content), 300)])
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !utf8.ValidString(res.Content) || len(res.Content) > MaxToolResultChars {
				t.Errorf("content of %d bytes, valid UTF-8 %v", len(res.Content), utf8.ValidString(res.Content))
			}
			for _, w := range tc.want {
				if !strings.Contains(res.Content, w) {
					t.Errorf("content lacks %q: %q", w, res.Content[:min(len(res.Content), 300)])
				}
			}
		})
	}
}

// TestWebFetchLargePage: a 50 MB page is cut at MaxBytes, in bounded memory.
func TestWebFetchLargePage(t *testing.T) {
	chunk := bytes.Repeat([]byte("<p>a fifty megabyte page</p>\n"), 2000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		for sent := 0; sent < 50<<20; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	tool := WebFetch(WebFetchOptions{Client: loopback.Client(time.Minute, 5), Timeout: 5 * time.Second, MaxBytes: 1 << 20})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := hostileFetch(t, tool, 5*time.Second, srv.URL+"/")
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Content, "larger than 1 MiB") {
		t.Errorf("no truncation note: %q", res.Content[:min(len(res.Content), 300)])
	}
	// A sanity bound, generous: reading the page whole would allocate 50 MB or more.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Errorf("web_fetch allocated %d MiB for a 1 MiB limit", alloc>>20)
	}
}
