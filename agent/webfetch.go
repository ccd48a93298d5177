package agent

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"panther"
	"panther/extract"
	"panther/internal/httpx"
	"panther/internal/netguard"
)

// Defaults of the web_fetch tool.
const (
	WebFetchDefaultMaxBytes = 5 << 20
	WebFetchDefaultTimeout  = 30 * time.Second
	WebFetchMaxRedirects    = 10
	webFetchUserAgent       = "panther-web-fetch/1"
	// webFetchChars bounds the page text of a result, below MaxToolResultChars so that the loop's own
	// cut never has to act and the note saying what was left out survives.
	webFetchChars = MaxToolResultChars - 2_000
)

// WebFetchOptions configure the web_fetch tool. Zero values take the defaults.
type WebFetchOptions struct {
	// Client makes the requests. Nil means a client of netguard's default policy, which refuses
	// loopback, private and metadata addresses. A client given here should be a netguard one too.
	Client *http.Client
	// MaxBytes bounds the body read from a page (WebFetchDefaultMaxBytes).
	MaxBytes int64
	// Timeout bounds one fetch, body included (WebFetchDefaultTimeout).
	Timeout time.Duration
	// UserAgent is sent with each request.
	UserAgent string
}

type webFetch struct{ opts WebFetchOptions }

// errFetchTimeout ends a fetch that took longer than WebFetchOptions.Timeout.
var errFetchTimeout = errors.New("web_fetch time-out")

// WebFetch returns the web_fetch tool: one http(s) page, read as markdown, with its citation.
//
// A body larger than MaxBytes is cut there and what it holds is still returned, with a note: HTML
// parses fine when cut, and the start of a long page is usually what was wanted, where an error
// would leave the model with nothing.
func WebFetch(opts WebFetchOptions) Tool {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = WebFetchDefaultMaxBytes
	}
	if opts.Timeout <= 0 {
		opts.Timeout = WebFetchDefaultTimeout
	}
	if opts.UserAgent == "" {
		opts.UserAgent = webFetchUserAgent
	}
	if opts.Client == nil {
		opts.Client = netguard.Policy{}.Client(opts.Timeout, WebFetchMaxRedirects)
	}
	return webFetch{opts: opts}
}

func (webFetch) Spec() panther.ToolSpec {
	return panther.ToolSpec{
		Name: "web_fetch",
		Description: "Fetch one web page (http or https) and read it as markdown. The result starts with a " +
			"numbered source line \"[n] title (url)\" to cite as [n]. Reads HTML, markdown and plain text, " +
			"not PDFs or images. Prefer kb_search for documentation already in the knowledge base.",
		Parameters: json.RawMessage(`{"type":"object","properties":{` +
			`"url":{"type":"string","description":"the absolute http(s) URL of the page"}` +
			`},"required":["url"]}`),
	}
}

// fetchable are the media types extract.Extract reads, plus the ones it decides on by extension or
// content (no type, octet-stream).
var fetchable = map[string]bool{
	"": true, "application/octet-stream": true,
	"text/html": true, "application/xhtml+xml": true,
	"text/markdown": true, "text/x-markdown": true,
	"text/plain": true,
}

func (t webFetch) Run(ctx context.Context, args json.RawMessage) (ToolResult, error) {
	var a struct {
		URL string `json:"url"`
	}
	if err := decodeArgs("web_fetch", args, &a); err != nil {
		return ToolResult{}, err
	}
	raw := strings.TrimSpace(a.URL)
	if raw == "" {
		return ToolResult{}, panther.Invalidf("web_fetch: url is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// The parser's message without the URL, which might hold a password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return ToolResult{}, panther.Invalidf("web_fetch: url is not a valid URL: %v", err)
	}
	if err := netguard.CheckURL(u); err != nil {
		return ToolResult{}, panther.Invalidf("web_fetch %s: %v", u.Redacted(), err)
	}
	fragment := u.Fragment
	u.Fragment, u.RawFragment = "", ""
	shown := u.String()

	ctx, cancel := context.WithTimeoutCause(ctx, t.opts.Timeout, errFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, shown, nil)
	if err != nil {
		return ToolResult{}, panther.Invalidf("web_fetch %s: %v", shown, err)
	}
	req.Header.Set("User-Agent", t.opts.UserAgent)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,text/markdown;q=0.9,text/plain;q=0.8,*/*;q=0.1")
	resp, err := t.opts.Client.Do(req)
	if err != nil {
		return ToolResult{}, fetchError(ctx, shown, t.opts.Timeout, err)
	}
	defer resp.Body.Close()

	final := stripFragment(resp.Request.URL)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := fmt.Sprintf("web_fetch %s: the server answered %s", shown, httpx.CleanText(resp.Status))
		if ra := resp.Header.Get("Retry-After"); ra != "" && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
			msg += "; it asks to retry after " + httpx.CleanText(ra)
			if _, err := strconv.Atoi(strings.TrimSpace(ra)); err == nil {
				msg += " seconds"
			}
		}
		return ToolResult{}, errors.New(msg)
	}
	ctype := resp.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ctype)
	if err != nil {
		mt, _, _ = strings.Cut(ctype, ";") // a type with broken parameters is still its type
		mt = strings.TrimSpace(mt)
	}
	if !strings.Contains(mt, "/") {
		// A Content-Type that is no media type ("html", "%%%") says nothing: read it as untyped,
		// by extension or content, as browsers do.
		ctype, mt = "", ""
	}
	if !fetchable[strings.ToLower(mt)] {
		// Refused before the body is read: a PDF or a video is not worth downloading to refuse.
		return ToolResult{}, unsupportedType(shown, ctype)
	}
	decoded, err := decodeContent(resp)
	if err != nil {
		return ToolResult{}, fmt.Errorf("web_fetch %s: %w", shown, err)
	}
	// The limit applies to the decoded bytes, so that a gzip bomb expands no further than a page.
	body, err := io.ReadAll(io.LimitReader(decoded, t.opts.MaxBytes+1))
	if err != nil {
		if isDecodeError(err) {
			return ToolResult{}, fmt.Errorf("web_fetch %s: the body does not decode as its Content-Encoding says: %w", shown, err)
		}
		return ToolResult{}, fetchError(ctx, shown, t.opts.Timeout, err)
	}
	if kind := binaryKind(body[:min(len(body), 512)]); kind != "" {
		// An image or an archive labelled text/html would come back as a page of garbage.
		labelled := ""
		if mt != "" && mt != "application/octet-stream" {
			labelled = ", although its content type says " + httpx.CleanText(ctype)
		}
		return ToolResult{}, fmt.Errorf("web_fetch %s: the body is %s, not a page%s; web_fetch reads HTML, markdown and plain text pages", shown, kind, labelled)
	}
	var notes []string
	if int64(len(body)) > t.opts.MaxBytes {
		body = body[:t.opts.MaxBytes]
		notes = append(notes, fmt.Sprintf("Note: the page is larger than %s; only its first %s were read.", byteSize(t.opts.MaxBytes), byteSize(t.opts.MaxBytes)))
	}
	fetched := time.Now().UTC()
	res, err := extract.Extract(final, ctype, body)
	if err != nil {
		if errors.Is(err, extract.ErrUnsupported) {
			return ToolResult{}, unsupportedType(shown, ctype)
		}
		return ToolResult{}, fmt.Errorf("web_fetch %s: reading the page: %w", shown, err)
	}

	sum := sha256.Sum256(body)
	cite := panther.Citation{URL: final.String(), Title: strings.TrimSpace(res.Title), FetchedAt: fetched, ContentHash: hex.EncodeToString(sum[:])}
	if fragment != "" {
		// Cite the section the URL pointed at, when the page has it.
		for _, s := range res.Sections {
			if s.Anchor == fragment {
				cite.Anchor = fragment
				cite.Heading = panther.HeadingPath(s.Heading)
				break
			}
		}
	}
	if final.String() != shown {
		notes = append([]string{"Note: " + shown + " redirected here."}, notes...)
	}
	text := strings.TrimSpace(res.Markdown)
	if text == "" {
		text = "(the page has no text)"
	}
	if len(text) > webFetchChars {
		text = trimText(text, webFetchChars, fmt.Sprintf("[trimmed: showing about %d of %d characters of the page]", webFetchChars, len(text)))
	}

	var b strings.Builder
	b.WriteString(CiteMark(0))
	b.WriteString("\n")
	for _, n := range notes {
		b.WriteString(n)
		b.WriteString("\n")
	}
	b.WriteString("\n")
	b.WriteString(text)
	return ToolResult{Content: b.String(), Citations: []panther.Citation{cite}}, nil
}

// decodeContent undoes a Content-Encoding the transport left in place: net/http decodes gzip only
// when it asked for gzip itself, and some servers send gzip or deflate unasked, which read raw would
// be garbage. Other encodings (br, zstd) have no decoder in the standard library and are refused.
func decodeContent(resp *http.Response) (io.Reader, error) {
	enc := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding")))
	switch enc {
	case "", "identity":
		return resp.Body, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(resp.Body)
		if errors.Is(err, io.EOF) {
			return strings.NewReader(""), nil
		}
		if err != nil {
			return nil, fmt.Errorf("the body does not decode as its Content-Encoding (%s) says: %w", enc, err)
		}
		return zr, nil
	case "deflate":
		// zlib-wrapped as the RFC says, or raw deflate as some servers send: the header tells.
		br := bufio.NewReader(resp.Body)
		if h, err := br.Peek(2); err == nil && h[0]&0x0f == 8 && (uint16(h[0])<<8|uint16(h[1]))%31 == 0 {
			zr, err := zlib.NewReader(br)
			if err != nil {
				return nil, fmt.Errorf("the body does not decode as its Content-Encoding (%s) says: %w", enc, err)
			}
			return zr, nil
		}
		return flate.NewReader(br), nil
	}
	return nil, fmt.Errorf("content encoding %q is not supported (only gzip and deflate are)", httpx.CleanText(enc))
}

func isDecodeError(err error) bool {
	var ferr flate.CorruptInputError
	return errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, zlib.ErrHeader) ||
		errors.Is(err, zlib.ErrChecksum) || errors.As(err, &ferr)
}

// binaryKind names what the first bytes of a body are when they are plainly not text (an image,
// audio, video, a font, a PDF, an archive, or bytes full of control characters), else "". The same
// test as the crawler's (crawl's binary), kept apart since the packages share no helper.
func binaryKind(peek []byte) string {
	if len(peek) == 0 {
		return ""
	}
	mt, _, _ := mime.ParseMediaType(http.DetectContentType(peek))
	switch {
	case strings.HasPrefix(mt, "image/"), strings.HasPrefix(mt, "audio/"), strings.HasPrefix(mt, "video/"),
		strings.HasPrefix(mt, "font/"), mt == "application/pdf", mt == "application/zip", mt == "application/x-gzip",
		mt == "application/wasm", mt == "application/x-rar-compressed", mt == "application/vnd.ms-fontobject",
		mt == "application/ogg":
		return "binary data (" + mt + ")"
	case mt != "application/octet-stream":
		return ""
	}
	ctl := 0
	for _, b := range peek {
		if b < 0x09 || (b > 0x0d && b < 0x20 && b != 0x1b) {
			ctl++
		}
	}
	if ctl*16 > len(peek) {
		return "binary data"
	}
	return ""
}

// fetchError words a failed request for the model: the guard's refusal as it is, with what would
// allow it; a time-out as one; otherwise the cause without net/http's repetition of the URL.
func fetchError(ctx context.Context, shown string, timeout time.Duration, err error) error {
	var be *netguard.BlockedError
	if errors.As(err, &be) {
		return fmt.Errorf("web_fetch %s: %w (allow it in the config's [web] allow list)", shown, be)
	}
	var ne net.Error
	if context.Cause(ctx) == errFetchTimeout || (ctx.Err() == nil && errors.As(err, &ne) && ne.Timeout()) {
		// The client's own Timeout (as long as ours) may fire first; the model hears the same.
		return fmt.Errorf("web_fetch %s: no complete response within %s: %w", shown, timeout, panther.ErrUnavailable)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var cverr *tls.CertificateVerificationError
	if errors.As(err, &cverr) {
		return fmt.Errorf("web_fetch %s: the site's TLS certificate is not trusted: %w", shown, err)
	}
	if errors.Is(err, http.ErrSchemeMismatch) {
		return fmt.Errorf("web_fetch %s: the server does not speak TLS (try http://): %w", shown, err)
	}
	return fmt.Errorf("web_fetch %s: %w", shown, err)
}

func unsupportedType(shown, ctype string) error {
	if ctype == "" {
		ctype = "(none given)"
	}
	return fmt.Errorf("web_fetch %s: content type %s is not supported: web_fetch reads HTML, markdown and plain text pages, not PDFs, images or other files", shown, ctype)
}

func stripFragment(u *url.URL) *url.URL {
	c := *u
	c.Fragment, c.RawFragment = "", ""
	return &c
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
