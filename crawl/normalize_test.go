package crawl

import (
	"net/url"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "HTTP://Example.COM/a/b", want: "http://example.com/a/b"},
		{in: "http://example.com", want: "http://example.com/"},
		{in: "http://example.com:80/x", want: "http://example.com/x"},
		{in: "https://example.com:443/x", want: "https://example.com/x"},
		{in: "https://example.com:8443/x", want: "https://example.com:8443/x"},
		{in: "http://example.com:/x", want: "http://example.com/x"},
		{in: "http://example.com/a/./b/../c", want: "http://example.com/a/c"},
		{in: "http://example.com/a/b/..", want: "http://example.com/a/"},
		{in: "http://example.com/../../x", want: "http://example.com/x"},
		{in: "http://example.com/a/.", want: "http://example.com/a/"},
		{in: "http://example.com/a#frag", want: "http://example.com/a"},
		{in: "http://example.com/a?", want: "http://example.com/a"},
		{in: "http://example.com/a?b=2&a=1", want: "http://example.com/a?b=2&a=1"},
		{in: "http://example.com/a?b=2&a=1#x", want: "http://example.com/a?b=2&a=1"},
		// Found by FuzzNormalize: a raw space ended the query and was trimmed by a second pass.
		{in: "HTTP://0? #", want: "http://0/?%20"},
		{in: "http://example.com/a?q=a b", want: "http://example.com/a?q=a%20b"},
		{in: "http://example.com/a?q=café", want: "http://example.com/a?q=caf%C3%A9"},
		{in: "http://example.com/a?q=%C3%A9", want: "http://example.com/a?q=%C3%A9"},
		{in: "http://example.com/dir/", want: "http://example.com/dir/"},
		{in: "http://example.com/dir/index.html", want: "http://example.com/dir/index.html"},
		{in: "http://example.com/a%20b", want: "http://example.com/a%20b"},
		{in: "http://example.com/a%2Fb", want: "http://example.com/a%2Fb"},
		{in: "http://[::1]:80/x", want: "http://[::1]/x"},
		{in: "http://[::1]:8080/x", want: "http://[::1]:8080/x"},
		{in: "  http://example.com/x  ", want: "http://example.com/x"},
		{in: "file:///tmp/a/../b.html", want: "file:///tmp/b.html"},
		{in: "file://localhost/tmp/b.html?x=1", want: "file:///tmp/b.html"},
		{in: "file://server/share/x.html", bad: true},
		{in: "mailto:someone@example.com", bad: true},
		{in: "javascript:void(0)", bad: true},
		{in: "ftp://example.com/x", bad: true},
		{in: "/relative/path", bad: true},
		{in: "http:///nohost", bad: true},
		{in: "http://exa mple.com/", bad: true},
		{in: "http://example.com:port/", bad: true},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("Normalize(%q) = %q, want error", tt.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("Normalize(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRemoveDotSegments(t *testing.T) {
	// The examples of RFC 3986 section 5.4, paths only.
	tests := map[string]string{
		"/a/b/c/./../../g": "/a/g",
		"/b/c/./g":         "/b/c/g",
		"/b/c/g/.":         "/b/c/g/",
		"/b/c/..":          "/b/",
		"/b/c/../..":       "/",
		"/b/c/../../../g":  "/g",
		"/./g":             "/g",
		"/g.":              "/g.",
		"/.g":              "/.g",
		"/b/..g":           "/b/..g",
	}
	for in, want := range tests {
		if got := removeDotSegments(in); got != want {
			t.Errorf("removeDotSegments(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzNormalize checks that normalised URLs are fixed points, parse back to themselves and keep
// their scheme and host.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"http://example.com/a/../b?x=1#y", "HTTPS://EXAMPLE.com:443", "http://[::1]:80/%7e/",
		"file:///a/./b/../c.md", "http://u:p@h/x", "http://h/a?", "http://h/%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Normalize(s)
		if err != nil {
			return
		}
		n2, err := Normalize(n)
		if err != nil {
			t.Fatalf("Normalize(%q) = %q, which does not normalise: %v", s, n, err)
		}
		if n2 != n {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, n, n2)
		}
		u, err := url.Parse(n)
		if err != nil {
			t.Fatalf("Normalize(%q) = %q, which does not parse: %v", s, n, err)
		}
		if u.Fragment != "" || u.Scheme == "" {
			t.Fatalf("Normalize(%q) = %q: fragment or scheme wrong", s, n)
		}
	})
}
