package crawl

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/tls"
	"crypto/x509"
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

// fetchError is a fetch that failed; reason is what the summary counts. permanent failures (a
// certificate not trusted, a body that does not decode) would fail the same way again, so they are
// not retried.
type fetchError struct {
	reason    string
	err       error
	permanent bool
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
			retryable = errors.As(err, &fe) && !fe.permanent
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
		return nil, failure(fmt.Errorf("fetch %s: %w", req.url, err))
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
	body, err := decodeBody(hresp)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	// The limit applies to the decoded bytes: a gzip bomb of a few KB must not expand to gigabytes.
	br := bufio.NewReaderSize(io.LimitReader(body, req.maxBytes+1), 4096)
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
	if hresp.ContentLength > 0 && body == hresp.Body {
		buf.Grow(int(min(hresp.ContentLength, req.maxBytes)) + 1)
	}
	if _, err := buf.ReadFrom(br); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// Timeout ran out mid-body (a server sending a byte a second): the transport closes the
			// connection, and the read fails with "use of closed network connection", not with
			// the deadline.
			return nil, &fetchError{reason: reasonTimeout, err: fmt.Errorf("read %s: no complete body within %s: %w", req.url, opts.Timeout, err)}
		}
		return nil, failure(fmt.Errorf("read %s: %w", req.url, err))
	}
	resp.body = buf.Bytes()
	if int64(len(resp.body)) > req.maxBytes {
		if !req.truncate {
			return nil, &skipError{reason: reasonTooLarge}
		}
		resp.body = cutAtLine(resp.body, req.maxBytes)
	}
	return resp, nil
}

// cutAtLine cuts b to at most limit bytes, at the end of a line. A line cut in the middle could turn
// robots.txt's "Disallow: /private" into "Disallow: /"; RFC 9309 lets a crawler ignore what is
// beyond its limit, so the partial last line goes with it.
func cutAtLine(b []byte, limit int64) []byte {
	if int64(len(b)) <= limit {
		return b
	}
	b = b[:limit]
	return b[:bytes.LastIndexByte(b, '\n')+1]
}

func netReason(err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return reasonTimeout
	}
	return reasonNetwork
}

// failure classifies a failed request or body read. Certificate and TLS protocol errors and bodies
// that do not decode are permanent: retrying them only costs time. Everything else (time-outs,
// resets, truncated bodies) may be transient.
func failure(err error) *fetchError {
	switch {
	case isTLSError(err):
		return &fetchError{reason: reasonTLS, err: err, permanent: true}
	case isDecodeError(err):
		return &fetchError{reason: reasonBadEncoding, err: err, permanent: true}
	}
	return &fetchError{reason: netReason(err), err: err}
}

func isTLSError(err error) bool {
	var (
		verr *tls.CertificateVerificationError
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		cerr x509.CertificateInvalidError
		rerr tls.RecordHeaderError
		aerr tls.AlertError
		eerr *tls.ECHRejectionError
	)
	// ErrSchemeMismatch: an https URL answered in plain HTTP, the TLS record header being "HTTP/".
	return errors.Is(err, http.ErrSchemeMismatch) || errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr) ||
		errors.As(err, &rerr) || errors.As(err, &aerr) || errors.As(err, &eerr)
}

func isDecodeError(err error) bool {
	var ferr flate.CorruptInputError
	return errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, zlib.ErrHeader) ||
		errors.Is(err, zlib.ErrChecksum) || errors.Is(err, zlib.ErrDictionary) || errors.As(err, &ferr)
}

// decodeBody undoes a Content-Encoding the transport left in place. net/http decodes gzip only when
// it asked for it itself; a server may send gzip or deflate unasked (or to a transport that asked for
// nothing), and extracting the compressed bytes would store garbage. Encodings without a decoder in
// the standard library (br, zstd) are skipped as "content-encoding".
func decodeBody(resp *http.Response) (io.ReadCloser, error) {
	enc := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding")))
	switch enc {
	case "", "identity":
		return resp.Body, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(resp.Body)
		if errors.Is(err, io.EOF) {
			return io.NopCloser(strings.NewReader("")), nil // an empty body, labelled gzip
		}
		if err != nil {
			return nil, failure(fmt.Errorf("content-encoding %s: %w", enc, err))
		}
		return zr, nil
	case "deflate":
		// "deflate" is zlib-wrapped by the RFC, raw deflate on some servers: the zlib header says.
		br := bufio.NewReader(resp.Body)
		if h, err := br.Peek(2); err == nil && h[0]&0x0f == 8 && (uint16(h[0])<<8|uint16(h[1]))%31 == 0 {
			zr, err := zlib.NewReader(br)
			if err != nil {
				return nil, failure(fmt.Errorf("content-encoding %s: %w", enc, err))
			}
			return zr, nil
		}
		return flate.NewReader(br), nil
	}
	return nil, &skipError{reason: reasonContentEncoding}
}

// pageType decides from the Content-Type header, the URL's extension and the first bytes whether a
// response can be a page, and which type to extract it as.
func pageType(header, urlPath string, peek []byte) (string, bool) {
	mt := header
	if m, _, err := mime.ParseMediaType(header); err == nil {
		mt = m
	}
	mt = strings.ToLower(strings.TrimSpace(mt))
	if !strings.Contains(mt, "/") {
		// A Content-Type that is no media type at all ("html", "%%%") says nothing; browsers sniff
		// such responses, and so do we.
		mt, header = "", ""
	}
	if mt == "" || mt == "application/octet-stream" || mt == "binary/octet-stream" {
		if t := typeByExt(urlPath); t != "" && !binary(peek) {
			return t, true
		}
		sniffed := http.DetectContentType(peek)
		if m, _, err := mime.ParseMediaType(sniffed); err == nil && textual(m) {
			return sniffed, true
		}
		return header, false
	}
	if textual(mt) && binary(peek) {
		// An image or an archive labelled text/html (a misconfigured server, or a compressed body
		// whose Content-Encoding was lost) would be stored as pages of garbage.
		return header, false
	}
	return header, textual(mt)
}

// binary says whether the first bytes of a body are plainly not text: a known binary signature
// (image, audio, video, font, PDF, archive), or many control bytes. A stray control character in
// otherwise textual bytes does not count, since sloppy pages carry escape codes in their text.
func binary(peek []byte) bool {
	if len(peek) == 0 {
		return false
	}
	sniffed := http.DetectContentType(peek)
	mt, _, _ := mime.ParseMediaType(sniffed)
	switch {
	case strings.HasPrefix(mt, "image/"), strings.HasPrefix(mt, "audio/"), strings.HasPrefix(mt, "video/"),
		strings.HasPrefix(mt, "font/"):
		// SVG is text, but DetectContentType does not report it.
		return true
	case mt == "application/pdf", mt == "application/zip", mt == "application/x-gzip", mt == "application/wasm",
		mt == "application/x-rar-compressed", mt == "application/vnd.ms-fontobject", mt == "application/ogg":
		return true
	case mt != "application/octet-stream":
		return false
	}
	ctl := 0
	for _, b := range peek {
		if b < 0x09 || (b > 0x0d && b < 0x20 && b != 0x1b) {
			ctl++
		}
	}
	return ctl*16 > len(peek)
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
