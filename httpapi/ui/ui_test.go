package ui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

func TestHandlerServesAssets(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	tests := []struct {
		method, path string
		status       int
		contentType  string
		bodyHas      string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", `<script type="module" src="app.js">`},
		{"GET", "/index.html", 200, "text/html; charset=utf-8", `<main id="view"`},
		{"GET", "/app.js", 200, "text/javascript; charset=utf-8", "hashchange"},
		{"GET", "/markdown.js", 200, "text/javascript; charset=utf-8", "export function renderMarkdown"},
		{"GET", "/style.css", 200, "text/css; charset=utf-8", ":root"},
		{"GET", "/icon.svg", 200, "image/svg+xml", "<svg"},
		{"HEAD", "/app.js", 200, "text/javascript; charset=utf-8", ""},
		{"GET", "/nope.js", 404, "", ""},
		{"GET", "/static/app.js", 404, "", ""},
		{"GET", "/../ui.go", 404, "", ""},
		{"GET", "/v1/search", 404, "", ""},
		{"POST", "/", 405, "", ""},
		{"DELETE", "/app.js", 405, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.status)
			}
			// Every answer carries the policy, errors included: a 404 page is a page too.
			if got := res.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
				t.Errorf("Content-Security-Policy %q", got)
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if tt.status == 405 && res.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("405 without Allow: %q", res.Header.Get("Allow"))
			}
			if tt.contentType != "" && res.Header.Get("Content-Type") != tt.contentType {
				t.Errorf("Content-Type %q, want %q", res.Header.Get("Content-Type"), tt.contentType)
			}
			if !strings.Contains(string(body), tt.bodyHas) {
				t.Errorf("body lacks %q:\n%.300s", tt.bodyHas, body)
			}
			if tt.method == "HEAD" && len(body) != 0 {
				t.Errorf("HEAD answered with a body of %d bytes", len(body))
			}
		})
	}
}

func TestPolicyForbidsInlineAndForeignContent(t *testing.T) {
	for _, directive := range []string{"default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(ContentSecurityPolicy, directive) {
			t.Errorf("policy lacks %q: %s", directive, ContentSecurityPolicy)
		}
	}
	for _, weak := range []string{"unsafe-inline", "unsafe-eval", "http:", "https:", "*"} {
		if strings.Contains(ContentSecurityPolicy, weak) {
			t.Errorf("policy allows %q: %s", weak, ContentSecurityPolicy)
		}
	}
}

func TestConditionalRequestIsNotModified(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL + "/app.js")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	etag := res.Header.Get("ETag")
	if etag == "" || res.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q: a browser could not revalidate", etag, res.Header.Get("Cache-Control"))
	}
	req, _ := http.NewRequest("GET", srv.URL+"/app.js", nil)
	req.Header.Set("If-None-Match", etag)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: status %d, want 304", res.StatusCode)
	}
}

// The policy forbids inline scripts and styles, so the page must have none: a browser would
// silently ignore them. And every module the scripts import must be one the handler serves.
func TestAssetsNeedNothingThePolicyForbids(t *testing.T) {
	assets, err := load(static)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(strings.NewReader(string(assets["/index.html"].body)))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			attrs := map[string]string{}
			for _, a := range n.Attr {
				attrs[a.Key] = a.Val
				if strings.HasPrefix(a.Key, "on") || a.Key == "style" {
					t.Errorf("index.html: <%s %s=...>: inline code or style the policy blocks", n.Data, a.Key)
				}
			}
			switch n.Data {
			case "script":
				if attrs["src"] == "" {
					t.Errorf("index.html: an inline <script>")
				} else if _, ok := assets["/"+attrs["src"]]; !ok {
					t.Errorf("index.html: <script src=%q> is not an asset", attrs["src"])
				}
			case "style":
				t.Errorf("index.html: an inline <style>")
			case "link":
				if _, ok := assets["/"+attrs["href"]]; !ok {
					t.Errorf("index.html: <link href=%q> is not an asset", attrs["href"])
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)

	imports := regexp.MustCompile(`(?m)^import [^'"]*['"]\./([^'"]+)['"]`)
	for name, a := range assets {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		src := string(a.body)
		for _, m := range imports.FindAllStringSubmatch(src, -1) {
			if _, ok := assets["/"+m[1]]; !ok {
				t.Errorf("%s imports ./%s, which is not an asset", name, m[1])
			}
		}
		// Server text must never be parsed as HTML.
		for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
			if strings.Contains(src, sink) {
				t.Errorf("%s uses %s", name, sink)
			}
		}
	}
}
