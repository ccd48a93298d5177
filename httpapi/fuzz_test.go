package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"panther"
	"panther/agent"
	"panther/crawl"
	"panther/kb"
	"panther/mcp"
	"panther/sqlite"
)

// Hostile-client tests (issue 8): every protected route refuses a missing or wrong token, the
// request decoders are fuzzed, and oversized bodies are refused without being read whole.

// TestEveryProtectedRouteRefusesBadTokens takes the routes from the table New registers, so that a
// route added later is covered without editing this test.
func TestEveryProtectedRouteRefusesBadTokens(t *testing.T) {
	mcpCalled := false
	mcpHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mcpCalled = true })
	f := newFixture(t, fixtureOptions{tokens: []Token{readToken, writeToken, adminToken}, mcp: mcpHandler, mcpWrite: mcpHandler})
	type target struct{ method, path string }
	var targets []target
	for _, rt := range routes() {
		if rt.scope == scopeNone {
			continue
		}
		targets = append(targets, target{rt.method, strings.ReplaceAll(rt.path, "{id}", "1")})
	}
	for _, m := range []string{"GET", "POST", "DELETE"} {
		targets = append(targets, target{m, "/mcp"})
	}
	if len(targets) < 20 {
		t.Fatalf("only %d protected routes found", len(targets))
	}
	bad := []struct {
		name   string
		header string // the Authorization header; "" sends none
	}{
		{"no token", ""},
		{"wrong token", "Bearer not-a-token-at-all-0000"},
		{"wrong scheme", "Basic " + readToken.Secret},
		{"token without scheme", readToken.Secret},
		{"empty bearer", "Bearer "},
		{"a valid token with a suffix", "Bearer " + adminToken.Secret + "x"},
		{"a prefix of a valid token", "Bearer " + adminToken.Secret[:len(adminToken.Secret)-1]},
	}
	for _, tg := range targets {
		for _, b := range bad {
			req, err := http.NewRequest(tg.method, f.srv.URL+tg.path, strings.NewReader(`{"url":"https://x.example/","prompt":"hi"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if b.header != "" {
				req.Header.Set("Authorization", b.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s with %s: %d %s, want 401 with a Bearer challenge", tg.method, tg.path, b.name, resp.StatusCode, body)
				continue
			}
			for _, tok := range []Token{readToken, writeToken, adminToken} {
				if strings.Contains(string(body), tok.Secret) {
					t.Errorf("%s %s: the answer shows a token", tg.method, tg.path)
				}
			}
		}
	}
	if mcpCalled {
		t.Error("the MCP handler was reached without a valid token")
	}
	if n, _ := f.manager.Sources(t.Context()); len(n) != 1 {
		t.Errorf("refused requests changed the sources: %d", len(n))
	}
}

// countingListener counts the bytes the server reads from its connections.
type countingListener struct {
	net.Listener
	read atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &l.read}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestOversizedBodiesAreNotReadWhole sends 16 MiB bodies, with a Content-Length and chunked, to
// routes that read a body, and counts what the server reads: at most the limit and a little more,
// however much the client sends.
func TestOversizedBodiesAreNotReadWhole(t *testing.T) {
	const limit = 64 << 10
	const sent = 16 << 20
	// What the server may read beyond the limit: the request head, its read buffer, chunk framing.
	const slack = 32 << 10
	f := newFixture(t, fixtureOptions{maxBody: limit, tokens: []Token{writeToken}})
	// The real MCP server, mounted as serve mounts it.
	svc, err := kb.New(f.db, kb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mcpServer, err := mcp.NewServer(svc, f.db, mcp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Search: svc, Documents: svc, Sources: f.manager, Crawls: f.manager, Sessions: f.live, SessionStore: f.db, Stats: f.db,
		Agents: func() []AgentInfo { return nil }, Ready: func(ctx context.Context) error { return nil },
		Registry: prometheus.NewRegistry(), Tokens: []Token{writeToken}, MaxBodyBytes: limit, MCP: mcpServer.HTTPHandler()})
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: mustListen(t)}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = ln
	srv.Start()
	defer srv.Close()

	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/v1/sources", writeToken.Secret, http.StatusRequestEntityTooLarge},
		{"/v1/sessions", writeToken.Secret, http.StatusRequestEntityTooLarge},
		{"/v1/sources/1/crawl", writeToken.Secret, http.StatusRequestEntityTooLarge},
		// The MCP SDK reads the body itself, through the API's limit.
		{"/mcp", writeToken.Secret, http.StatusRequestEntityTooLarge},
		// Refused before the body is read at all.
		{"/v1/sources", "", http.StatusUnauthorized},
		{"/v1/nowhere", writeToken.Secret, http.StatusNotFound},
	} {
		for _, chunked := range []bool{false, true} {
			name := fmt.Sprintf("%s token=%v chunked=%v", tc.path, tc.token != "", chunked)
			before := ln.read.Load()
			status := sendHuge(t, srv.Listener.Addr().String(), tc.path, tc.token, sent, chunked)
			read := ln.read.Load() - before
			t.Logf("%s: %d, server read %d bytes of %d sent", name, status, read, sent)
			want := tc.want
			if !chunked {
				want = http.StatusRequestEntityTooLarge // refused on its Content-Length alone, first
			}
			if status != want {
				t.Errorf("%s: status %d, want %d", name, status, want)
			}
			if read > limit+slack {
				t.Errorf("%s: the server read %d bytes, more than the %d-byte limit and %d more", name, read, limit, slack)
			}
		}
	}
}

func mustListen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// sendHuge writes a POST of size bytes of JSON to addr on a raw connection, in a goroutine that
// stops when the server stops reading, and returns the status the server answered with once the
// server has closed the connection.
func sendHuge(t *testing.T, addr, path, token string, size int, chunked bool) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := "POST " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
	if token != "" {
		head += "Authorization: Bearer " + token + "\r\n"
	}
	if chunked {
		head += "Transfer-Encoding: chunked\r\n\r\n"
	} else {
		head += fmt.Sprintf("Content-Length: %d\r\n\r\n", size)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		if _, err := io.WriteString(conn, head); err != nil {
			return
		}
		// One JSON string that never ends: a decoder must read up to the limit to find out.
		piece := bytes.Repeat([]byte("a"), 16<<10)
		if _, err := io.WriteString(conn, chunkOf(`{"url":"`, chunked)); err != nil {
			return
		}
		for sentSoFar := 0; sentSoFar < size; sentSoFar += len(piece) {
			if _, err := io.WriteString(conn, chunkOf(string(piece), chunked)); err != nil {
				return // the server closed the connection: it stopped reading
			}
		}
	})
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	rd := bufio.NewReader(conn)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	// Wait for the server to close the connection, so that everything it read is counted.
	io.Copy(io.Discard, rd)
	conn.Close()
	return resp.StatusCode
}

func chunkOf(s string, chunked bool) string {
	if !chunked {
		return s
	}
	return fmt.Sprintf("%x\r\n%s\r\n", len(s), s)
}

// The body decoders' fuzz targets: whatever the bytes, decoding ends in the value or in an error of
// kind invalid (400) or too large (413), never a panic or an internal error; what decodes, encodes
// and decodes again to the same value.

func fuzzBody[T any](t *testing.T, body []byte, check func(T) error) {
	r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 4096)
	var v T
	err := decodeBody(r, &v, true)
	if err == nil && check != nil {
		err = check(v)
	}
	if err != nil {
		if code, _ := errorStatus(err); code != http.StatusBadRequest && code != http.StatusRequestEntityTooLarge {
			t.Fatalf("decoding %q: %v answers %d", body, err, code)
		}
		return
	}
	again, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%#v does not encode: %v", v, err)
	}
	r = httptest.NewRequest("POST", "/", bytes.NewReader(again))
	var w T
	err = decodeBody(r, &w, true)
	twice, _ := json.Marshal(w)
	// Compared as JSON: an empty list and none encode alike (omitempty) and mean the same.
	if err != nil || !bytes.Equal(again, twice) {
		t.Fatalf("%q decoded to %#v, which encodes to %s and decodes to %#v (%v)", body, v, again, w, err)
	}
}

func FuzzDecodeAddSource(f *testing.F) {
	for _, s := range []string{`{"url":"https://docs.example.org/"}`, `{"url":"https://a.example/","crawl":true,"max_pages":5,"max_depth":2,"include":["/docs/"],"exclude":["\\.pdf$"]}`,
		`{"url":1}`, `{"url":"x","extra":true}`, `{"url":"x"} {"url":"y"}`, ``, `[]`, `{"max_depth":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzBody(t, body, func(in addSourceJSON) error {
			if len(in.URL) > MaxURLBytes {
				return panther.Invalidf("url too long")
			}
			return nil
		})
	})
}

func FuzzDecodeCrawlRequest(f *testing.F) {
	for _, s := range []string{`{}`, `{"max_pages":10}`, `{"max_depth":0,"include":["a","b"]}`, `{"max_pages":-1}`, `{"include":"notalist"}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzBody[crawl.JobRequest](t, body, nil)
	})
}

func FuzzDecodePrompt(f *testing.F) {
	for _, s := range []string{`{"prompt":"how do I index?"}`, `{"agent":"researcher","prompt":"x"}`, `{"prompt":""}`, `{"prompt":"\u0000"}`, `{"prompt":["a"]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzBody(t, body, func(in promptJSON) error {
			if err := in.check(); err != nil {
				return err
			}
			if strings.TrimSpace(in.Prompt) == "" || len(in.Prompt) > MaxPromptBytes || len(in.Agent) > 100 {
				t.Fatalf("check accepted %#v", in)
			}
			return nil
		})
	})
}

// newQueryServer is a real API over a real store with a few pages, for the query fuzz target: only
// GET routes are fuzzed, which change nothing.
func newQueryServer(tb testing.TB) http.Handler {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "fuzz.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	svc, err := kb.New(db, kb.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	src, err := db.AddSource(ctx, "https://docs.example.org/")
	if err != nil {
		tb.Fatal(err)
	}
	for i, p := range []struct{ url, title, body string }{
		{installURL, "Installing", "The widget server needs a zebra-striped quantum gizmo."},
		{tuningURL, "Tuning", "Tune the flux capacitor to 88 gigawatts."},
	} {
		doc := panther.Document{SourceID: src.ID, URL: p.url, Title: p.title, Markdown: "# " + p.title + "\n\n" + p.body,
			Validators: panther.Validators{ContentHash: fmt.Sprintf("h%d", i)}, FetchedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
		if _, err := svc.Ingest(ctx, doc, []panther.Section{{Heading: []string{p.title}, Level: 1, Anchor: "top", Markdown: doc.Markdown}}); err != nil {
			tb.Fatal(err)
		}
	}
	manager, err := crawl.NewManager(crawl.ManagerOptions{Store: db, Index: svc})
	if err != nil {
		tb.Fatal(err)
	}
	defs, err := agent.BuiltinDefinitions()
	if err != nil {
		tb.Fatal(err)
	}
	rt := &agent.Runtime{Definitions: defs, Tools: map[string]agent.Tool{"kb_search": agent.KBSearch(svc)},
		Model: func(string) (panther.Model, string, error) { return nil, "", errors.New("no model in the fuzz test") }}
	live, err := agent.NewLive(&agent.Sessions{Runtime: rt, Store: db}, agent.LiveOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		live.Shutdown(ctx)
		manager.Shutdown(ctx)
	})
	h, err := New(Options{Search: svc, Documents: svc, Sources: manager, Crawls: manager, Sessions: live, SessionStore: db, Stats: db,
		Agents: func() []AgentInfo { return nil }, Ready: func(ctx context.Context) error { return nil },
		DocumentRemover: db, Embedding: svc, Registry: prometheus.NewRegistry()})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// FuzzDecodeQuery sends GET requests with fuzzed query strings (and ids) to every read route of a
// real API: each answers JSON (or markdown when asked), never an internal error, and a search
// never more than MaxK hits.
func FuzzDecodeQuery(f *testing.F) {
	paths := []string{"/v1/search", "/v1/documents", "/v1/document", "/v1/sources", "/v1/crawls", "/v1/crawls/", "/v1/sessions", "/v1/sessions/", "/v1/status", "/v1/agents"}
	seeds := []struct {
		path  int
		query string
	}{
		{0, "q=gizmo&k=5&mode=lexical"}, {0, "q=gizmo&since=7d&prefix=https://docs.example.org/"}, {0, "q=x&k=0"}, {0, "q=x&k=99999999999999999999"},
		{0, "q=x&source=https://docs.example.org/&since=2026-11-01"}, {0, "q=%ff%fe&mode=psychic"}, {0, "q=\"unbalanced&k=3"}, {0, "q=a%20OR%20b%20NOT%20c*"},
		{1, "limit=10&offset=5&gone=true"}, {1, "limit=-1"}, {1, "source=1"}, {2, "url=" + url.QueryEscape(installURL+"#top")},
		{2, "url=" + url.QueryEscape(installURL) + "&anchor=nope"}, {2, "url="}, {5, "abc"}, {6, "limit=3&all=yes"}, {7, "zzzzzzzzzz"},
	}
	for _, s := range seeds {
		f.Add(uint8(s.path), s.query)
	}
	h := newQueryServer(f)
	f.Fuzz(func(t *testing.T, which uint8, q string) {
		path := paths[int(which)%len(paths)]
		target := path + "?" + q
		if strings.HasSuffix(path, "/") {
			// An id in the path, whatever the fuzzer makes of it.
			target = path + url.PathEscape(q)
		}
		req, err := http.NewRequest("GET", "http://panther.test"+target, nil)
		if err != nil {
			return // not a request a client could send
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body)
		}
		if rec.Code/100 == 3 {
			// ServeMux sends a path with . or .. segments to its clean form, before any handler.
			if loc := rec.Header().Get("Location"); !strings.HasPrefix(loc, "/v1/") {
				t.Fatalf("GET %s: %d to %q", target, rec.Code, loc)
			}
			return
		}
		var out struct {
			Hits []json.RawMessage `json:"hits"`
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
			t.Fatalf("GET %s: %d %q is not JSON: %s", target, rec.Code, ct, rec.Body)
		}
		if len(out.Hits) > MaxK {
			t.Fatalf("GET %s: %d hits", target, len(out.Hits))
		}
	})
}
