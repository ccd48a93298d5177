package crawl

import (
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"panther"
)

// Normalize returns the form of an absolute http, https or file URL under which the crawler dedups,
// scopes and stores pages: scheme and host lower-cased, default ports dropped, dot segments resolved,
// fragment dropped, an empty "?" dropped. The query is kept as it is, in its order, because many
// documentation sites route on parameter order and reordering could merge distinct pages.
// "/dir/" and "/dir/index.html" stay distinct: only the page's canonical link may merge them.
// Normalize(Normalize(x)) == Normalize(x).
func Normalize(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", panther.Invalidf("url %q: %v", raw, err)
	}
	n, err := normalizeURL(u)
	if err != nil {
		return "", err
	}
	return n.String(), nil
}

// normalizeURL works on a parsed URL so that callers holding one avoid a second parse. The result is
// a new URL; u is not modified.
func normalizeURL(u *url.URL) (*url.URL, error) {
	if u.Opaque != "" {
		return nil, panther.Invalidf("url %q: opaque URLs are not crawlable", u.String())
	}
	scheme := strings.ToLower(u.Scheme)
	n := &url.URL{Scheme: scheme}
	switch scheme {
	case "http", "https":
		host := strings.ToLower(u.Hostname())
		if host == "" {
			return nil, panther.Invalidf("url %q: no host", u.String())
		}
		if strings.ContainsAny(host, "%/?#@ \t\r\n") {
			// Zone identifiers and stray delimiters do not round-trip through url.Parse reliably, and
			// no documentation site needs them.
			return nil, panther.Invalidf("url %q: unsupported host", u.String())
		}
		port := u.Port()
		if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
			port = ""
		}
		if port != "" {
			for _, c := range port {
				if c < '0' || c > '9' {
					return nil, panther.Invalidf("url %q: bad port", u.String())
				}
			}
			n.Host = net.JoinHostPort(host, port)
		} else if strings.Contains(host, ":") {
			n.Host = "[" + host + "]"
		} else {
			n.Host = host
		}
		n.User = u.User
		n.RawQuery = escapeQuery(u.RawQuery)
	case "file":
		// Only local files: a host other than localhost would be a network share we do not walk.
		if h := strings.ToLower(u.Host); h != "" && h != "localhost" {
			return nil, panther.Invalidf("url %q: file URLs must be local", u.String())
		}
		// The query means nothing to a file system; keeping it would make one file many pages.
	default:
		return nil, panther.Invalidf("url %q: scheme %q is not crawlable", u.String(), u.Scheme)
	}
	p := removeDotSegments(u.EscapedPath())
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	unesc, err := url.PathUnescape(p)
	if err != nil {
		return nil, panther.Invalidf("url %q: %v", u.String(), err)
	}
	n.Path = unesc
	n.RawPath = p
	// url.URL only keeps RawPath when it is a valid encoding of Path different from the default one;
	// setting both and asking EscapedPath gives the canonical choice.
	if n.EscapedPath() != p {
		n.RawPath = ""
	}
	return n, nil
}

// escapeQuery percent-encodes what url.Parse lets through a query raw: spaces, which no request line
// may carry and which a second Normalize would trim off the end, and bytes outside ASCII, encoded as
// browsers do (RFC 3987's mapping of an IRI to a URI).
func escapeQuery(q string) string {
	const hex = "0123456789ABCDEF"
	clean := true
	for i := 0; i < len(q); i++ {
		if c := q[i]; c <= ' ' || c >= 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	for i := 0; i < len(q); i++ {
		if c := q[i]; c <= ' ' || c >= 0x7f {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// removeDotSegments is RFC 3986 section 5.2.4 on an escaped path.
func removeDotSegments(p string) string {
	if !strings.Contains(p, ".") {
		return p
	}
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			// Never pop the leading empty segment that stands for the root.
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	r := strings.Join(out, "/")
	if strings.HasPrefix(p, "/") && !strings.HasPrefix(r, "/") {
		r = "/" + r
	}
	return r
}

// dirPrefix is the scope a page URL opens: scheme, host and path up to its last '/'.
func dirPrefix(u *url.URL) string {
	s := u.Scheme + "://" + u.Host
	p := u.EscapedPath()
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		p = p[:i+1]
	} else {
		p = "/"
	}
	return s + p
}

// hostPrefix is the scope of a whole host.
func hostPrefix(u *url.URL) string { return u.Scheme + "://" + u.Host + "/" }

// scope is the set of URL prefixes a crawl may enter. It grows at run time (a seed that redirects to
// another host, sitemap URLs on several hosts), hence the lock.
type scope struct {
	mu       sync.RWMutex
	prefixes []string
}

func (s *scope) add(prefix string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.prefixes {
		if strings.HasPrefix(prefix, p) {
			return
		}
	}
	// Drop narrower prefixes the new one covers, so that contains stays a short scan.
	kept := s.prefixes[:0]
	for _, p := range s.prefixes {
		if !strings.HasPrefix(p, prefix) {
			kept = append(kept, p)
		}
	}
	s.prefixes = append(kept, prefix)
}

func (s *scope) contains(u string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, p := range s.prefixes {
		if strings.HasPrefix(u, p) {
			return true
		}
	}
	return false
}

func (s *scope) String() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return strings.Join(s.prefixes, " ")
}

// filters are the user's Include/Exclude patterns.
type filters struct {
	include, exclude []*regexp.Regexp
}

func (f filters) allow(u string) bool {
	for _, re := range f.exclude {
		if re.MatchString(u) {
			return false
		}
	}
	if len(f.include) == 0 {
		return true
	}
	for _, re := range f.include {
		if re.MatchString(u) {
			return true
		}
	}
	return false
}
