package crawl

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Sitemap bounds. The sitemap protocol allows 50,000 URLs and 50 MB (uncompressed) per file; the
// nesting and file limits keep a hostile or broken index from turning discovery into a crawl of its own.
const (
	sitemapMaxBytes = 50 << 20
	sitemapMaxURLs  = 50_000
	sitemapMaxDepth = 3
	sitemapMaxFiles = 200
	// sitemapMaxHosts bounds how many hosts a sitemap seed's URLs may add to the scope.
	sitemapMaxHosts = 16
)

// errNotSitemap says that a body is neither a <urlset> nor a <sitemapindex> nor a text sitemap.
var errNotSitemap = errors.New("not a sitemap")

// sitemap is what one sitemap file lists: page URLs (urlset) or more sitemaps (sitemapindex).
type sitemap struct {
	urls     []string
	children []string
}

// parseSitemap reads a sitemap: XML (urlset or sitemapindex, any namespace, any declared encoding),
// gzip-compressed or not, or the protocol's plain-text form (one URL a line). It reads at most
// sitemapMaxBytes of uncompressed data and returns at most sitemapMaxURLs locations.
func parseSitemap(body []byte) (*sitemap, error) { return parseSitemapLimit(body, sitemapMaxBytes) }

func parseSitemapLimit(body []byte, limit int64) (*sitemap, error) {
	var r io.Reader = bytes.NewReader(body)
	if len(body) >= 2 && body[0] == 0x1f && body[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("sitemap gzip: %w", err)
		}
		defer zr.Close()
		r = zr
	}
	lr := &io.LimitedReader{R: r, N: limit + 1}
	br := bufio.NewReader(lr)
	head, _ := br.Peek(512)
	trimmed := bytes.TrimLeft(head, " \t\r\n\ufeff\xef\xbb\xbf")
	var sm *sitemap
	var err error
	if len(trimmed) > 0 && trimmed[0] == '<' {
		sm, err = parseSitemapXML(br)
	} else {
		sm, err = parseSitemapText(br)
	}
	if lr.N <= 0 {
		return sm, fmt.Errorf("sitemap larger than %d bytes", limit)
	}
	return sm, err
}

func parseSitemapXML(r io.Reader) (*sitemap, error) {
	d := xml.NewDecoder(r)
	d.Strict = false
	d.CharsetReader = charsetReader
	sm := &sitemap{}
	var root string
	var inLoc bool
	var parent string // "url" or "sitemap": the element a <loc> belongs to
	var loc strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			if root == "" {
				return nil, errNotSitemap
			}
			// A broken tail should not throw away the locations read before it.
			return sm, fmt.Errorf("sitemap xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := strings.ToLower(t.Name.Local)
			if root == "" {
				root = name
				if root != "urlset" && root != "sitemapindex" {
					return nil, errNotSitemap
				}
				continue
			}
			switch name {
			case "url", "sitemap":
				parent = name
			case "loc":
				if parent != "" {
					inLoc = true
					loc.Reset()
				}
			}
		case xml.CharData:
			if inLoc && loc.Len() < 8<<10 {
				loc.Write(t)
			}
		case xml.EndElement:
			switch strings.ToLower(t.Name.Local) {
			case "loc":
				if inLoc {
					inLoc = false
					u := strings.TrimSpace(loc.String())
					if u == "" {
						break
					}
					if parent == "sitemap" && root == "sitemapindex" {
						sm.children = append(sm.children, u)
					} else if parent == "url" && root == "urlset" {
						sm.urls = append(sm.urls, u)
					}
					if len(sm.urls)+len(sm.children) >= sitemapMaxURLs {
						return sm, nil
					}
				}
			case "url", "sitemap":
				parent = ""
			}
		}
	}
	if root == "" {
		return nil, errNotSitemap
	}
	return sm, nil
}

func parseSitemapText(r io.Reader) (*sitemap, error) {
	sm := &sitemap{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "http://") && !strings.HasPrefix(line, "https://") {
			return nil, errNotSitemap
		}
		sm.urls = append(sm.urls, line)
		if len(sm.urls) >= sitemapMaxURLs {
			break
		}
	}
	if len(sm.urls) == 0 {
		return nil, errNotSitemap
	}
	return sm, sc.Err()
}

// looksLikeSitemap says whether a seed URL names a sitemap rather than a page.
func looksLikeSitemap(u *url.URL) bool {
	p := strings.ToLower(u.Path)
	base := p[strings.LastIndexByte(p, '/')+1:]
	return strings.Contains(base, "sitemap") &&
		(strings.HasSuffix(base, ".xml") || strings.HasSuffix(base, ".xml.gz") || strings.HasSuffix(base, ".txt"))
}

// sitemapSource is a sitemap to read and whether robots.txt must be asked first: sitemaps that
// robots.txt itself lists, and the one the user gave, are allowed by definition.
type sitemapSource struct {
	url         string
	checkRobots bool
}

// readSitemaps reads sitemaps breadth first, following sitemap indexes up to sitemapMaxDepth levels
// and sitemapMaxFiles files, and hands each file's page URLs to emit. The first root's failure is
// returned when required is set (a sitemap seed that cannot be read is the user's problem to hear
// about); other failures are logged, since a missing /sitemap.xml is normal.
func (r *run) readSitemaps(ctx context.Context, roots []sitemapSource, required bool, emit func(urls []string) error) error {
	type item struct {
		sitemapSource
		depth int
	}
	queue := make([]item, 0, len(roots))
	seen := map[string]bool{}
	for _, s := range roots {
		if n, err := Normalize(s.url); err == nil && !seen[n] {
			seen[n] = true
			queue = append(queue, item{sitemapSource{n, s.checkRobots}, 0})
		}
	}
	for files := 0; len(queue) > 0 && files < sitemapMaxFiles; files++ {
		it := queue[0]
		queue = queue[1:]
		sm, err := r.fetchSitemap(ctx, it.url, it.checkRobots)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if required && files == 0 {
				return fmt.Errorf("sitemap %s: %w", it.url, err)
			}
			r.log.Debug("sitemap not read", "url", it.url, "err", err)
			if sm == nil {
				continue
			}
		}
		if len(sm.urls) > 0 {
			if err := emit(sm.urls); err != nil {
				return err
			}
		}
		if it.depth+1 > sitemapMaxDepth {
			continue
		}
		for _, c := range sm.children {
			if n, err := Normalize(c); err == nil && !seen[n] {
				seen[n] = true
				// Children are on the sitemap's own terms; the robots check would only block them
				// on a host whose robots.txt lists the index itself.
				queue = append(queue, item{sitemapSource{n, it.checkRobots}, it.depth + 1})
			}
		}
	}
	return nil
}

// fetchSitemap fetches and parses one sitemap, politely, with the sitemap size cap.
func (r *run) fetchSitemap(ctx context.Context, u string, checkRobots bool) (*sitemap, error) {
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") {
		return nil, fmt.Errorf("sitemap %q: not an http(s) URL", u)
	}
	h := r.hosts.get(hostKey(u))
	if checkRobots && !r.c.opts.IgnoreRobots {
		rules, err := r.robots(ctx, h)
		if err != nil {
			return nil, err
		}
		if ok, reason := rules.allowed(pu); !ok {
			return nil, fmt.Errorf("sitemap %s: %s", u, reason)
		}
	}
	target := u
	for hop := 0; ; hop++ {
		resp, err := r.get(ctx, r.hosts.get(hostKey(target)), request{url: target, maxBytes: sitemapMaxBytes})
		if err != nil {
			return nil, err
		}
		if isRedirect(resp.status) && hop < r.c.opts.MaxRedirects {
			if target, err = resolveLocation(target, resp.header.Get("Location")); err != nil {
				return nil, err
			}
			continue
		}
		if resp.status != 200 {
			return nil, fmt.Errorf("http %d", resp.status)
		}
		return parseSitemap(resp.body)
	}
}

// charsetReader lets the XML decoder read sitemaps that declare an encoding other than UTF-8. Their
// locations are URLs, ASCII in practice, so Latin-1 is decoded properly and anything else is read
// as if it were UTF-8 rather than refused.
func charsetReader(label string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "iso-8859-1", "latin1", "latin-1", "l1", "windows-1252", "cp1252", "us-ascii", "ascii":
		return &latin1Reader{r: input}, nil
	}
	return input, nil
}

type latin1Reader struct {
	r   io.Reader
	buf []byte
}

func (l *latin1Reader) Read(p []byte) (int, error) {
	// Each input byte becomes at most two output bytes, so read half of p.
	n := len(p) / 2
	if n == 0 {
		n = 1
		if len(p) == 0 {
			return 0, nil
		}
	}
	if cap(l.buf) < n {
		l.buf = make([]byte, n)
	}
	m, err := l.r.Read(l.buf[:n])
	out := 0
	for _, b := range l.buf[:m] {
		if b < utf8.RuneSelf {
			p[out] = b
			out++
			continue
		}
		if out+2 > len(p) {
			// Only possible when len(p) == 1; keep the byte for the next call by faking ASCII.
			p[out] = '?'
			out++
			continue
		}
		out += utf8.EncodeRune(p[out:], rune(b))
	}
	return out, err
}
