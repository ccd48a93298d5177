package crawl

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"panther"
)

// request is one GET the crawler makes, redirects not followed.
type request struct {
	url  string
	cond *panther.Validators // validators of the stored page, for a conditional GET
	// maxBytes bounds the body; beyond it the fetch is skipped as too large, or with truncate the
	// body is cut there (robots.txt, where reading a prefix is what the RFC asks).
	maxBytes int64
	truncate bool
	// pages restricts bodies to what extraction can use; other responses are dropped unread.
	pages bool
}

type response struct {
	status int
	header http.Header
	body   []byte // read only for 2xx
	// ctype is the content type to extract with: the header's, or a sniffed one when the header
	// is missing or useless.
	ctype string
}

// skipError is a fetch that worked but whose result is not wanted ("too-large", "content-type").
type skipError struct{ reason string }

func (e *skipError) Error() string { return e.reason }

// fetchError is a fetch that failed for good; reason is what the summary counts.
type fetchError struct {
	reason string
	err    error
}

func (e *fetchError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

// get sends req to h with retries: 429, 5xx and network errors are retried with exponential backoff
// and jitter, or after the server's Retry-After, up to Retries times. It waits for the host's rate
// limiter before every attempt. The last response is returned whatever its status; an error is a
// *skipError, a *fetchError, or the context's.
func (r *run) get(ctx context.Context, h *host, req request) (*response, error) {
	opts := &r.c.opts
	for attempt := 0; ; attempt++ {
		if err := h.wait(ctx); err != nil {
			return nil, err
		}
		resp, err := r.getOnce(ctx, req)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var retryable bool
		var wait time.Duration
		switch {
		case err != nil:
			var fe *fetchError
			retryable = errors.As(err, &fe)
		case resp.status == http.StatusTooManyRequests || resp.status == http.StatusServiceUnavailable ||
			resp.status == http.StatusInternalServerError || resp.status == http.StatusBadGateway ||
			resp.status == http.StatusGatewayTimeout || resp.status == http.StatusRequestTimeout:
			retryable = true
			if d, ok := retryAfter(resp.header, time.Now()); ok {
				wait = min(d, opts.MaxRetryWait)
				if resp.status == http.StatusTooManyRequests || resp.status == http.StatusServiceUnavailable {
					h.pause(wait)
				}
			}
		}
		if !retryable || attempt >= opts.Retries {
			return resp, err
		}
		if wait == 0 {
			wait = backoff(opts.RetryBackoff, attempt, opts.MaxRetryWait)
		}
		r.log.Debug("retrying", "url", req.url, "attempt", attempt+1, "wait", wait, "err", err, "status", statusOf(resp))
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

func statusOf(r *response) int {
	if r == nil {
		return 0
	}
	return r.status
}

// backoff is base·2^attempt with "equal jitter" (half fixed, half random), so that workers that failed
// together do not retry together, capped at limit.
func backoff(base time.Duration, attempt int, limit time.Duration) time.Duration {
	d := base << min(attempt, 20)
	if d <= 0 || d > limit {
		d = limit
	}
	half := d / 2
	return half + rand.N(half+1)
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, 1<<20)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}

// getOnce is one attempt, bounded by Timeout from the request to the body's last byte.
func (r *run) getOnce(ctx context.Context, req request) (*response, error) {
	opts := &r.c.opts
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, req.url, nil)
	if err != nil {
		return nil, &skipError{reason: "bad-url"}
	}
	hreq.Header.Set("User-Agent", opts.UserAgent)
	if req.pages {
		hreq.Header.Set("Accept", "text/html,application/xhtml+xml,text/markdown;q=0.9,text/plain;q=0.8,*/*;q=0.1")
	}
	if c := req.cond; c != nil {
		if c.ETag != "" {
			hreq.Header.Set("If-None-Match", c.ETag)
		}
		if c.LastModified != "" {
			hreq.Header.Set("If-Modified-Since", c.LastModified)
		}
	}
	hresp, err := r.c.client.Do(hreq)
	if err != nil {
		return nil, &fetchError{reason: netReason(err), err: fmt.Errorf("fetch %s: %w", req.url, err)}
	}
	defer hresp.Body.Close()
	resp := &response{status: hresp.StatusCode, header: hresp.Header}
	if hresp.StatusCode < 200 || hresp.StatusCode > 299 {
		// A small error page is drained so the connection can be reused; a large one is cut off.
		_, _ = io.CopyN(io.Discard, hresp.Body, 16<<10)
		return resp, nil
	}
	if !req.truncate && hresp.ContentLength > req.maxBytes {
		return nil, &skipError{reason: reasonTooLarge}
	}
	br := bufio.NewReaderSize(io.LimitReader(hresp.Body, req.maxBytes+1), 4096)
	resp.ctype = hresp.Header.Get("Content-Type")
	if req.pages {
		// Deciding on the header and the first bytes saves downloading images and archives.
		peek, _ := br.Peek(512)
		ct, ok := pageType(resp.ctype, hreq.URL.Path, peek)
		if !ok {
			_, _ = io.CopyN(io.Discard, br, 16<<10)
			return nil, &skipError{reason: reasonContentType}
		}
		resp.ctype = ct
	}
	var buf bytes.Buffer
	if hresp.ContentLength > 0 {
		buf.Grow(int(min(hresp.ContentLength, req.maxBytes)) + 1)
	}
	if _, err := buf.ReadFrom(br); err != nil {
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, &fetchError{reason: reasonTimeout, err: fmt.Errorf("read %s: %w", req.url, err)}
		}
		return nil, &fetchError{reason: netReason(err), err: fmt.Errorf("read %s: %w", req.url, err)}
	}
	if int64(buf.Len()) > req.maxBytes {
		if !req.truncate {
			return nil, &skipError{reason: reasonTooLarge}
		}
		buf.Truncate(int(req.maxBytes))
	}
	resp.body = buf.Bytes()
	return resp, nil
}

func netReason(err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return reasonTimeout
	}
	return reasonNetwork
}

// pageType decides from the Content-Type header, the URL's extension and the first bytes whether a
// response can be a page, and which type to extract it as.
func pageType(header, urlPath string, peek []byte) (string, bool) {
	mt := header
	if m, _, err := mime.ParseMediaType(header); err == nil {
		mt = m
	}
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt == "" || mt == "application/octet-stream" || mt == "binary/octet-stream" {
		if t := typeByExt(urlPath); t != "" {
			return t, true
		}
		sniffed := http.DetectContentType(peek)
		if m, _, err := mime.ParseMediaType(sniffed); err == nil && textual(m) {
			return sniffed, true
		}
		return header, false
	}
	return header, textual(mt)
}

// textual media types are those worth reading: extraction handles the HTML, markdown and plain text
// ones, and a seed answering XML may be a sitemap.
func textual(mt string) bool {
	switch {
	case strings.HasPrefix(mt, "text/"):
		return mt != "text/css" && mt != "text/javascript" && mt != "text/csv"
	case mt == "application/xhtml+xml", mt == "application/xml", mt == "application/markdown":
		return true
	}
	return false
}

// typeByExt is the content type of a local file or an untyped response, from its extension; "" for
// extensions the crawler does not read.
func typeByExt(p string) string {
	switch strings.ToLower(path.Ext(p)) {
	case ".html", ".htm":
		return "text/html; charset=utf-8"
	case ".xhtml":
		return "application/xhtml+xml"
	case ".md", ".markdown":
		return "text/markdown; charset=utf-8"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	return ""
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// resolveLocation resolves a redirect's Location against the URL that answered it, normalised.
func resolveLocation(base, loc string) (string, error) {
	if loc == "" {
		return "", fmt.Errorf("redirect without Location")
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	l, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("redirect to %q: %w", loc, err)
	}
	n, err := normalizeURL(b.ResolveReference(l))
	if err != nil {
		return "", err
	}
	return n.String(), nil
}
