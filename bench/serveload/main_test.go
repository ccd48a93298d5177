package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
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
