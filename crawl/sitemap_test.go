package crawl

import (
	"bytes"
	"compress/gzip"
	"slices"
	"strings"
	"testing"
)

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func TestParseSitemap(t *testing.T) {
	const urlset = `<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc> http://example.com/a </loc><lastmod>2024-01-01</lastmod></url>
  <url><loc>http://example.com/b?x=1&amp;y=2</loc></url>
</urlset>`
	const index = `<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>http://example.com/s1.xml</loc></sitemap><sitemap><loc>http://example.com/s2.xml.gz</loc></sitemap>
</sitemapindex>`
	tests := []struct {
		name     string
		body     []byte
		urls     []string
		children []string
		bad      bool
	}{
		{name: "urlset", body: []byte(urlset), urls: []string{"http://example.com/a", "http://example.com/b?x=1&y=2"}},
		{name: "gzip", body: gz(urlset), urls: []string{"http://example.com/a", "http://example.com/b?x=1&y=2"}},
		{name: "index", body: []byte(index), children: []string{"http://example.com/s1.xml", "http://example.com/s2.xml.gz"}},
		{name: "latin1", body: []byte(`<?xml version="1.0" encoding="ISO-8859-1"?><urlset><url><loc>http://example.com/caf` + "\xe9" + `</loc></url></urlset>`),
			urls: []string{"http://example.com/café"}},
		{name: "text", body: []byte("http://example.com/a\n\nhttps://example.com/b\n"), urls: []string{"http://example.com/a", "https://example.com/b"}},
		{name: "html", body: []byte("<!DOCTYPE html><html><body>no</body></html>"), bad: true},
		{name: "rss", body: []byte("<rss><channel><link>http://x/</link></channel></rss>"), bad: true},
		{name: "garbage", body: []byte("hello world"), bad: true},
		{name: "empty", body: nil, bad: true},
		// A loc outside url/sitemap, and a sitemap entry inside a urlset, are not the protocol's.
		{name: "mixed", body: []byte(`<urlset><loc>http://x/stray</loc><sitemap><loc>http://x/s.xml</loc></sitemap><url><loc>http://x/ok</loc></url></urlset>`),
			urls: []string{"http://x/ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sm, err := parseSitemap(tt.body)
			if tt.bad {
				if err == nil {
					t.Fatalf("parseSitemap = %+v, want error", sm)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sm.urls, tt.urls) || !slices.Equal(sm.children, tt.children) {
				t.Fatalf("got urls %q children %q, want %q %q", sm.urls, sm.children, tt.urls, tt.children)
			}
		})
	}
}

func TestParseSitemapBounds(t *testing.T) {
	var b strings.Builder
	b.WriteString("<urlset>")
	for range sitemapMaxURLs + 10 {
		b.WriteString("<url><loc>http://example.com/p</loc></url>")
	}
	b.WriteString("</urlset>")
	sm, err := parseSitemap([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(sm.urls) != sitemapMaxURLs {
		t.Fatalf("got %d urls, want the cap %d", len(sm.urls), sitemapMaxURLs)
	}
	// A gzip bomb: small compressed, larger than the cap uncompressed.
	bomb := gz("<urlset>" + strings.Repeat(" ", 1<<20) + "</urlset>")
	if _, err := parseSitemapLimit(bomb, 1<<20); err == nil {
		t.Fatal("oversized sitemap accepted")
	}
}

func FuzzSitemap(f *testing.F) {
	f.Add([]byte(`<urlset><url><loc>http://example.com/a</loc></url></urlset>`))
	f.Add([]byte(`<sitemapindex><sitemap><loc>http://example.com/s.xml</loc></sitemap></sitemapindex>`))
	f.Add(gz(`<urlset><url><loc>http://example.com/a</loc></url></urlset>`))
	f.Add([]byte("http://example.com/a\nhttp://example.com/b"))
	f.Add([]byte(`<?xml version="1.0" encoding="windows-1252"?><urlset><url><loc>x</loc></url></urlset>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		sm, err := parseSitemap(body)
		if sm == nil {
			if err == nil {
				t.Fatal("nil sitemap without error")
			}
			return
		}
		if len(sm.urls) > sitemapMaxURLs || len(sm.children) > sitemapMaxURLs {
			t.Fatalf("bounds exceeded: %d urls %d children", len(sm.urls), len(sm.children))
		}
		for _, u := range slices.Concat(sm.urls, sm.children) {
			if u == "" || strings.TrimSpace(u) != u {
				t.Fatalf("untrimmed or empty location %q", u)
			}
		}
	})
}
