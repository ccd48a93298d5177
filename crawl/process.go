package crawl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"panther"
	"panther/extract"
)

// process fetches one dispatched entry, following redirects, and decides what becomes of it. An
// error means the run must stop (cancelled, or the index failed); page-level trouble is a result.
func (r *run) process(ctx context.Context, e *entry) (*pageResult, error) {
	res := &pageResult{}
	if strings.HasPrefix(e.url, "file:") {
		return res, r.processFile(ctx, e, res)
	}
	opts := &r.c.opts
	cur := e
	var hops []*entry
	// final records cur's fate; the URLs the chain passed through are finished as redirects, their
	// fetch counted on cur.
	final := func(state panther.FrontierState, reason string) {
		for _, p := range hops {
			res.fins = append(res.fins, finish{p, panther.FrontierSkipped, reasonRedirect})
		}
		res.fins = append(res.fins, finish{cur, state, reason})
	}
	for hop := 0; ; hop++ {
		u, err := url.Parse(cur.url)
		if err != nil {
			final(panther.FrontierFailed, "bad-url")
			return res, nil
		}
		h := r.hosts.get(hostKey(cur.url))
		if !opts.IgnoreRobots {
			rules, err := r.robots(ctx, h)
			if err != nil {
				return nil, err
			}
			if ok, reason := rules.allowed(u); !ok {
				switch {
				case reason == reasonTLS:
					// robots.txt failed the TLS handshake, and so would the page: a failure of
					// the host, not a robots decision.
					if hop == 0 {
						r.f.release()
					}
					final(panther.FrontierFailed, reason)
				case hop == 0:
					r.f.release()
					final(panther.FrontierSkipped, reason)
				default:
					final(panther.FrontierSkipped, reasonRedirectRobots)
				}
				return res, nil
			}
		}
		res.fetched = true
		meta, known, err := r.meta(ctx, cur.url)
		if err != nil {
			return nil, err
		}
		req := request{url: cur.url, maxBytes: opts.MaxBodyBytes, pages: true}
		if known {
			v := meta.Validators
			req.cond = &v
		}
		resp, err := r.get(ctx, h, req)
		if err != nil {
			var se *skipError
			var fe *fetchError
			switch {
			case errors.As(err, &se):
				r.log.Debug("skipped", "url", cur.url, "reason", se.reason)
				final(panther.FrontierSkipped, se.reason)
			case errors.As(err, &fe):
				r.log.Warn("fetch failed", "url", cur.url, "err", err)
				final(panther.FrontierFailed, fe.reason)
			default:
				return nil, err
			}
			return res, nil
		}
		switch s := resp.status; {
		case isRedirect(s):
			if hop >= opts.MaxRedirects {
				final(panther.FrontierFailed, reasonTooManyRedirects)
				return res, nil
			}
			next, err := resolveLocation(cur.url, resp.header.Get("Location"))
			if err != nil {
				final(panther.FrontierFailed, "bad-redirect")
				return res, nil
			}
			if next == cur.url || slices.ContainsFunc(hops, func(p *entry) bool { return p.url == next }) {
				// Without this the loop ends as "redirect-duplicate" (its start is in flight), which
				// hides that the page can never be had.
				final(panther.FrontierFailed, reasonRedirectLoop)
				return res, nil
			}
			fromSeed := e.url == r.seed && r.kind == seedSite
			if !r.scope.contains(next) {
				if !fromSeed {
					final(panther.FrontierSkipped, reasonRedirectOutOfScope)
					return res, nil
				}
				// A site seed that moved (http to https, a new host, a versioned path) takes its
				// scope along.
				nu, _ := url.Parse(next)
				r.scope.add(dirPrefix(nu))
				r.log.Info("seed redirected, scope widened", "seed", r.seed, "to", next)
			} else if !fromSeed && !r.filt.allow(next) {
				final(panther.FrontierSkipped, reasonExcluded)
				return res, nil
			}
			ne, fresh := r.f.claim(next, cur.depth)
			if ne == nil {
				final(panther.FrontierSkipped, reasonRedirectDuplicate)
				return res, nil
			}
			if fresh {
				res.fresh = append(res.fresh, ne)
			}
			hops = append(hops, cur)
			cur = ne
			continue
		case s == http.StatusNotModified:
			if !known {
				final(panther.FrontierFailed, "http 304")
				return res, nil
			}
			v := meta.Validators
			if et := resp.header.Get("ETag"); et != "" {
				v.ETag = et
			}
			if lm := resp.header.Get("Last-Modified"); lm != "" {
				v.LastModified = lm
			}
			state, reason, err := r.unchanged(ctx, res, cur, meta, v)
			if err != nil {
				return nil, err
			}
			final(state, reason)
		case s == http.StatusNotFound || s == http.StatusGone:
			state, reason, err := r.gone(ctx, cur, known, s)
			if err != nil {
				return nil, err
			}
			final(state, reason)
		case s == http.StatusOK || s == http.StatusNonAuthoritativeInfo:
			v := panther.Validators{ETag: resp.header.Get("ETag"), LastModified: resp.header.Get("Last-Modified")}
			state, reason, err := r.body(ctx, res, cur, u, meta, known, resp.ctype, resp.body, v)
			if err != nil {
				return nil, err
			}
			final(state, reason)
		default:
			final(panther.FrontierFailed, "http "+strconv.Itoa(s))
		}
		return res, nil
	}
}

// meta returns what the index has for url; known is false for a page never stored.
func (r *run) meta(ctx context.Context, url string) (doc panther.Document, known bool, err error) {
	doc, err = r.c.index.DocumentMeta(ctx, url)
	if errors.Is(err, panther.ErrNotFound) {
		return panther.Document{}, false, nil
	}
	if err != nil {
		return doc, false, fmt.Errorf("crawl %s: index lookup: %w", url, err)
	}
	return doc, true, nil
}

// unchanged records a re-fetch that found the stored page as it was and follows the stored links,
// so that an unchanged site is still traversed to its end without parsing a page.
func (r *run) unchanged(ctx context.Context, res *pageResult, cur *entry, meta panther.Document, v panther.Validators) (panther.FrontierState, string, error) {
	if err := r.c.index.Touch(ctx, cur.url, v, time.Now()); errors.Is(err, panther.ErrNotFound) {
		// Deleted from the index since we looked it up; the next crawl will fetch it as new.
		return panther.FrontierFailed, "index", nil
	} else if err != nil {
		return "", "", fmt.Errorf("crawl %s: touch: %w", cur.url, err)
	}
	res.links = r.links(meta.Links, cur.depth+1)
	return panther.FrontierDone, string(panther.IngestUnchanged), nil
}

// gone handles 404/410 (or a vanished file): a stored page is marked gone, an unknown one failed.
func (r *run) gone(ctx context.Context, cur *entry, known bool, status int) (panther.FrontierState, string, error) {
	if !known {
		if status == 0 {
			return panther.FrontierFailed, reasonNotFound, nil
		}
		return panther.FrontierFailed, "http " + strconv.Itoa(status), nil
	}
	if err := r.c.index.MarkGone(ctx, cur.url, time.Now()); err != nil && !errors.Is(err, panther.ErrNotFound) {
		return "", "", fmt.Errorf("crawl %s: mark gone: %w", cur.url, err)
	}
	return panther.FrontierDone, reasonGone, nil
}

// body handles a fetched page: same bytes as stored → unchanged without extraction; otherwise extract,
// honour noindex/nofollow/canonical, and ingest.
func (r *run) body(ctx context.Context, res *pageResult, cur *entry, u *url.URL, meta panther.Document, known bool,
	ctype string, body []byte, v panther.Validators) (panther.FrontierState, string, error) {
	sum := sha256.Sum256(body)
	v.ContentHash = hex.EncodeToString(sum[:])
	if known && meta.ContentHash == v.ContentHash {
		return r.unchanged(ctx, res, cur, meta, v)
	}
	if cur.url == r.seed && r.kind == seedSite && isXML(ctype) {
		if sm, err := parseSitemap(body); err == nil {
			// The seed is a sitemap after all: its URLs are the seeds and their hosts the scope. It
			// is no page, so it gives back its page of the budget.
			r.f.release()
			res.fetched = false
			if err := r.seedSitemap(ctx, sm); err != nil {
				return "", "", err
			}
			return panther.FrontierSkipped, reasonSitemap, nil
		}
	}
	result, err := extract.Extract(u, ctype, body)
	if errors.Is(err, extract.ErrUnsupported) {
		return panther.FrontierSkipped, reasonContentType, nil
	}
	if err != nil {
		r.log.Warn("extraction failed", "url", cur.url, "err", err)
		return panther.FrontierFailed, reasonExtract, nil
	}
	var links []string
	if !result.NoFollow {
		links = result.Links
		res.links = r.links(links, cur.depth+1)
	}
	if result.NoIndex {
		return panther.FrontierSkipped, reasonNoIndex, nil
	}
	if result.Canonical != "" {
		if cn, err := Normalize(result.Canonical); err == nil && cn != cur.url && r.scope.contains(cn) && r.filt.allow(cn) {
			// Stored once, under the URL the site says is the page's own; the alias only leads there.
			res.links = append(res.links, link{url: cn, depth: cur.depth, page: true})
			return panther.FrontierSkipped, reasonCanonical, nil
		}
	}
	doc := panther.Document{
		SourceID:   r.src.ID,
		URL:        cur.url,
		Title:      result.Title,
		Markdown:   result.Markdown,
		Validators: v,
		FetchedAt:  time.Now(),
		Status:     panther.DocCurrent,
		Links:      links,
	}
	outcome, err := r.c.index.Ingest(ctx, doc, result.Sections)
	if errors.Is(err, panther.ErrInvalid) {
		r.log.Warn("index refused page", "url", cur.url, "err", err)
		return panther.FrontierFailed, "index", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("crawl %s: ingest: %w", cur.url, err)
	}
	return panther.FrontierDone, string(outcome), nil
}

func isXML(ctype string) bool {
	mt, _, _ := mime.ParseMediaType(ctype)
	return mt == "application/xml" || mt == "text/xml" || strings.HasSuffix(mt, "+xml") && mt != "application/xhtml+xml"
}

// seedSitemap queues the URLs of a site seed that turned out to be a sitemap, and of the sitemaps it
// indexes.
func (r *run) seedSitemap(ctx context.Context, sm *sitemap) error {
	if err := r.emitSitemapURLs(ctx, sm.urls, 0, true); err != nil {
		return err
	}
	var roots []sitemapSource
	for _, c := range sm.children {
		roots = append(roots, sitemapSource{url: c})
	}
	return r.readSitemaps(ctx, roots, false, func(urls []string) error {
		return r.emitSitemapURLs(ctx, urls, 0, true)
	})
}

// links turns a page's raw links into the ones to crawl: normalised, in scope, allowed by the
// filters. Deduplication and the limits on depth, URL length and query variants are the frontier's,
// at admission, so that what they refuse is counted once.
func (r *run) links(raw []string, depth int) []link {
	out := make([]link, 0, len(raw))
	for _, s := range raw {
		u, err := url.Parse(s)
		if err != nil {
			continue
		}
		n, err := normalizeURL(u)
		if err != nil {
			continue
		}
		ns := n.String()
		if !r.scope.contains(ns) || !r.filt.allow(ns) {
			continue
		}
		if n.Scheme == "file" && typeByExt(n.Path) == "" {
			continue
		}
		out = append(out, link{url: ns, depth: depth, page: true})
	}
	return out
}

// processFile reads a local file. Files have no robots.txt and no rate limit; their validators come
// from the file system (Last-Modified from the mtime, an ETag from mtime and size), so an unchanged
// file is recognised without reading it.
func (r *run) processFile(ctx context.Context, e *entry, res *pageResult) error {
	fin := func(state panther.FrontierState, reason string) {
		res.fins = append(res.fins, finish{e, state, reason})
	}
	res.fetched = true
	u, err := url.Parse(e.url)
	if err != nil {
		fin(panther.FrontierFailed, "bad-url")
		return nil
	}
	p := filepath.FromSlash(u.Path)
	meta, known, err := r.meta(ctx, e.url)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(p)
	if errors.Is(err, os.ErrNotExist) {
		state, reason, err := r.gone(ctx, e, known, 0)
		fin(state, reason)
		return err
	}
	if err != nil {
		fin(panther.FrontierFailed, "io")
		return nil
	}
	if !within(real, r.root) {
		fin(panther.FrontierSkipped, "out-of-scope")
		return nil
	}
	fi, err := os.Stat(real)
	if err != nil {
		fin(panther.FrontierFailed, "io")
		return nil
	}
	ctype := typeByExt(p)
	if !fi.Mode().IsRegular() || ctype == "" {
		fin(panther.FrontierSkipped, reasonContentType)
		return nil
	}
	v := panther.Validators{
		ETag:         fmt.Sprintf(`"%x-%x"`, fi.ModTime().UnixNano(), fi.Size()),
		LastModified: fi.ModTime().UTC().Format(http.TimeFormat),
	}
	if known && meta.ETag == v.ETag {
		v.ContentHash = meta.ContentHash
		state, reason, err := r.unchanged(ctx, res, e, meta, v)
		fin(state, reason)
		return err
	}
	if fi.Size() > r.c.opts.MaxBodyBytes {
		fin(panther.FrontierSkipped, reasonTooLarge)
		return nil
	}
	body, err := os.ReadFile(real)
	if err != nil {
		fin(panther.FrontierFailed, "io")
		return nil
	}
	if int64(len(body)) > r.c.opts.MaxBodyBytes {
		fin(panther.FrontierSkipped, reasonTooLarge)
		return nil
	}
	state, reason, err := r.body(ctx, res, e, u, meta, known, ctype, body, v)
	if err != nil {
		return err
	}
	fin(state, reason)
	return nil
}
