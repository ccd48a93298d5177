package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<html>home</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(dir))
	defer srv.Close()

	get := func(path string, header map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		// No redirect following: a redirect is itself a failure here.
		resp, err := (&http.Transport{}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	first := get("/index.html", nil)
	if first.StatusCode != 200 {
		t.Fatalf("GET /index.html = %d, want 200 (no redirect to ./)", first.StatusCode)
	}
	etag, lm := first.Header.Get("ETag"), first.Header.Get("Last-Modified")
	if etag == "" || lm == "" {
		t.Fatalf("missing validators: ETag %q Last-Modified %q", etag, lm)
	}
	if r := get("/index.html", map[string]string{"If-None-Match": etag}); r.StatusCode != 304 {
		t.Errorf("If-None-Match = %d, want 304", r.StatusCode)
	}
	if r := get("/index.html", map[string]string{"If-Modified-Since": lm}); r.StatusCode != 304 {
		t.Errorf("If-Modified-Since = %d, want 304", r.StatusCode)
	}

	// Rewriting the file must change the ETag, or a re-crawl would miss it.
	later := time.Now().Add(time.Hour)
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<html>changed</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(dir, "index.html"), later, later)
	if r := get("/index.html", map[string]string{"If-None-Match": etag}); r.StatusCode != 200 {
		t.Errorf("If-None-Match after change = %d, want 200", r.StatusCode)
	}

	if r := get("/robots.txt", nil); r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("robots.txt = %d %q, want 200 text/plain", r.StatusCode, r.Header.Get("Content-Type"))
	}
	if r := get("/missing.html", nil); r.StatusCode != 404 {
		t.Errorf("missing = %d, want 404", r.StatusCode)
	}
}
