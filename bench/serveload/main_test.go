package main

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSummarise(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- { // out of order on purpose
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	got := summarise(d)
	want := latencies{N: 100, P50: 50, P95: 95, P99: 99, Max: 100}
	if *got != want {
		t.Errorf("summarise(1..100 ms) = %+v, want %+v", *got, want)
	}
	if one := summarise([]time.Duration{3 * time.Millisecond}); one.P50 != 3 || one.P99 != 3 {
		t.Errorf("one sample: %+v", *one)
	}
	if none := summarise(nil); none.N != 0 {
		t.Errorf("no samples: %+v", *none)
	}
}

func TestReadQueries(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		want          []string
		err           string
	}{
		{"qrels", "{\"query\":\"partial index\",\"relevant\":[\"a.html\"]}\n\n{\"query\":\"vacuum\"}\n", []string{"partial index", "vacuum"}, ""},
		{"bad line", "{\"query\":\"a\"}\nnot json\n", nil, ":2:"},
		{"no queries", "{\"query\":\"  \"}\n", nil, "no queries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name+".jsonl")
			if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := readQueries(p)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("want an error with %q, got %v", tc.err, err)
				}
				return
			}
			if err != nil || strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// searchServer answers /v1/search like panther (one hit), or with status when it is not 200.
func searchServer(t *testing.T, status int) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.URL.Path != "/v1/search" || r.URL.Query().Get("q") == "" {
			http.Error(w, "bad path or query", http.StatusBadRequest)
			return
		}
		if status != http.StatusOK {
			http.Error(w, `{"error":"down"}`, status)
			return
		}
		w.Write([]byte(`{"hits":[{"url":"https://example.org/a.html"}]}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestLoadRuns(t *testing.T) {
	ctx := context.Background()
	ok, _ := searchServer(t, http.StatusOK)
	ld := &loader{client: &http.Client{Timeout: 5 * time.Second}, base: ok.URL, queries: []string{"a b", "c"}}
	if err := ld.check(ctx); err != nil {
		t.Fatalf("check: %v", err)
	}

	closed := ld.closed(ctx, 4, 200*time.Millisecond)
	if closed.OK == 0 || closed.Errors != 0 || closed.Latency.N != closed.OK || closed.Mode != "closed" {
		t.Errorf("closed loop against a healthy server: %+v", closed)
	}

	// The open loop sends exactly rate × duration requests, each answered or counted as dropped.
	// (A server of its own: the closed loop's last requests, cut off, may still reach the first.)
	ok2, served := searchServer(t, http.StatusOK)
	ld.base = ok2.URL
	open := ld.open(ctx, 200, 64, 300*time.Millisecond)
	if open.OK+open.Errors+open.Dropped != 60 || open.Errors != 0 {
		t.Errorf("open loop at 200/s for 300ms: %+v, want 60 requests, no errors", open)
	}
	if got := served.Load(); got != int64(open.OK) {
		t.Errorf("the server saw %d requests, the loop counted %d answered", got, open.OK)
	}

	down, _ := searchServer(t, http.StatusServiceUnavailable)
	bad := &loader{client: &http.Client{Timeout: 5 * time.Second}, base: down.URL, queries: []string{"a"}}
	if err := bad.check(ctx); err == nil {
		t.Error("check passed against a server answering 503")
	}
	failed := bad.closed(ctx, 2, 100*time.Millisecond)
	if failed.OK != 0 || failed.Errors == 0 || !strings.Contains(failed.FirstError, "503") {
		t.Errorf("closed loop against a failing server: %+v", failed)
	}
}

func TestIsIngest(t *testing.T) {
	for _, tc := range []struct {
		share float64
		want  int // ingests among the first 1,000 requests
	}{{0, 0}, {0.1, 100}, {0.25, 250}, {1, 1000}} {
		n, run, longest := 0, 0, 0
		for i := range uint64(1000) {
			if isIngest(i, tc.share) {
				n++
				run = 0
				continue
			}
			run++
			longest = max(longest, run)
		}
		if n != tc.want {
			t.Errorf("share %v: %d ingests in 1000 requests, want %d", tc.share, n, tc.want)
		}
		// Spread evenly: never a long stretch of searches only.
		if tc.share > 0 && float64(longest) > 1/tc.share {
			t.Errorf("share %v: %d searches in a row", tc.share, longest)
		}
	}
}

func TestSite(t *testing.T) {
	st, err := startSite(3)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	if siteWord(0) == siteWord(26) || siteWord(1) == siteWord(27) {
		t.Fatal("siteWord repeats")
	}
	for _, tc := range []struct {
		path   string
		status int
		holds  []string
	}{
		{"/s/7/", 200, []string{siteWord(7), `href="/s/7/p1"`, `href="/s/7/p2"`}},
		{"/s/7/p2", 200, []string{siteWord(7)}},
		{"/s/7/p3", 404, nil}, // beyond the site's pages
		{"/s/x/", 404, nil},
		{"/robots.txt", 404, nil},
	} {
		resp, err := http.Get(st.base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("GET %s: %d, want %d", tc.path, resp.StatusCode, tc.status)
		}
		for _, h := range tc.holds {
			if !strings.Contains(string(b), h) {
				t.Errorf("GET %s lacks %q", tc.path, h)
			}
		}
	}
	if n := st.served.Load(); n != 2 {
		t.Errorf("served %d pages, want 2", n)
	}
}

// fakePanther answers searches, takes sources (409 for a URL seen before, 503 when full says so) and
// "crawls" each at once by fetching its seed, so a search for the seed's word finds it.
func fakePanther(t *testing.T, token string, full bool) *httptest.Server {
	var mu sync.Mutex
	seen := map[string]bool{}
	var words []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		switch {
		case r.Method == "GET" && r.URL.Path == "/v1/search":
			q := r.URL.Query().Get("q")
			mu.Lock()
			defer mu.Unlock()
			for _, u := range words {
				if strings.HasPrefix(u, q+" ") {
					json.NewEncoder(w).Encode(map[string]any{"hits": []map[string]string{{"url": strings.TrimPrefix(u, q+" ")}}})
					return
				}
			}
			w.Write([]byte(`{"hits":[{"url":"https://example.org/a.html"}]}`))
		case r.Method == "POST" && r.URL.Path == "/v1/sources":
			var in struct {
				URL      string `json:"url"`
				Crawl    bool   `json:"crawl"`
				MaxPages int    `json:"max_pages"`
			}
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil || !in.Crawl || in.MaxPages != 2 {
				http.Error(w, "bad body", http.StatusBadRequest)
				return
			}
			if full {
				http.Error(w, `{"error":"32 crawls are waiting already"}`, http.StatusServiceUnavailable)
				return
			}
			mu.Lock()
			dup := seen[in.URL]
			seen[in.URL] = true
			mu.Unlock()
			if dup {
				http.Error(w, "conflict", http.StatusConflict)
				return
			}
			resp, err := http.Get(in.URL)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			word := regexp.MustCompile(`svlq[a-z]+`).FindString(string(b))
			mu.Lock()
			words = append(words, word+" "+in.URL)
			mu.Unlock()
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte(`{"source":{"id":1}}`))
		case r.Method == "GET" && r.URL.Path == "/v1/crawls":
			w.Write([]byte(`{"crawls":[{"state":"done"}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestRunMixed(t *testing.T) {
	ctx := context.Background()
	const token = "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name string
		full bool
		rate float64
	}{{"open loop", false, 200}, {"closed loop", false, 0}, {"queue full", true, 200}} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := startSite(2)
			if err != nil {
				t.Fatal(err)
			}
			defer st.close()
			fp := fakePanther(t, token, tc.full)
			ld := &loader{client: &http.Client{Timeout: 5 * time.Second}, base: fp.URL, token: token, queries: []string{"a", "b"}}
			run := runMixed(ctx, ld, nil, st, 0.1, 2, tc.rate, 2, 64, 300*time.Millisecond, time.Second, 5*time.Second)
			if run.Search.OK == 0 || run.Search.Errors != 0 {
				t.Errorf("searches: %+v", run.Search)
			}
			if tc.full {
				if run.Ingest.OK != 0 || run.Ingest.Errors == 0 || !strings.Contains(run.Ingest.FirstError, "503") {
					t.Errorf("a full crawl queue must count as ingest errors: %+v", run.Ingest)
				}
				return
			}
			if run.Ingest.OK == 0 || run.Ingest.Errors != 0 || run.Conflicts != 0 {
				t.Errorf("ingests: %+v, %d conflicts", run.Ingest, run.Conflicts)
			}
			// One request in ten is an ingest, give or take the requests cut off at the end (one
			// a client, two clients).
			if total := run.Search.OK + run.Ingest.OK; math.Abs(float64(run.Ingest.OK)-float64(total)/10) > 2 {
				t.Errorf("%d ingests of %d requests, want a tenth", run.Ingest.OK, total)
			}
			if c := run.Crawls; c == nil || c.Checked != run.Ingest.OK || c.Found != c.Checked || c.PagesServed < int64(run.Ingest.OK) {
				t.Errorf("crawl outcome %+v for %d ingests", run.Crawls, run.Ingest.OK)
			}
		})
	}
}
