package llm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"panther"
	"panther/internal/httpx"
)

// OpenAIOptions configure an OpenAI client. Only BaseURL is required; Model is required unless
// every request names its own.
type OpenAIOptions struct {
	// BaseURL is the API root, e.g. https://api.openai.com/v1, https://api.z.ai/api/coding/paas/v4 or
	// http://localhost:11434/v1 (Ollama); /chat/completions is appended to its path.
	BaseURL string
	// APIKey is sent as "Authorization: Bearer"; empty for local servers that want none. It never
	// appears in an error, a log line, String() or GoString().
	APIKey string
	// Model is used when a request names none.
	Model string
	// MaxTokens bounds an answer when a request does not; default 4096.
	MaxTokens int
	// Retries is how many times a request is repeated after a 429 (unless the quota is exhausted),
	// a 408 or 5xx, a network error or a stalled stream, as long as nothing of the answer was
	// delivered yet; 0 means the default of 4, a negative number means none.
	Retries int
	// Timeout bounds a whole Complete call, stream, retries and waits included; default 5 min.
	Timeout time.Duration
	// IdleTimeout bounds the silence between two reads of a streamed answer; default 60 s. It does
	// not apply before the response headers, since a local server may take minutes to read a long
	// prompt before it answers at all.
	IdleTimeout time.Duration
	// MaxResponseBytes bounds a response body, streamed or not; default 32 MiB.
	MaxResponseBytes int64
	// HTTPClient sends the requests; nil means one with no timeout of its own (Timeout applies).
	HTTPClient *http.Client
}

// String shows the options with the API key redacted, so that logging a configuration is safe.
func (o OpenAIOptions) String() string {
	type plain OpenAIOptions // no methods, so formatting it does not recurse
	if o.APIKey != "" {
		o.APIKey = "[redacted]"
	}
	return fmt.Sprintf("%+v", plain(o))
}

// GoString is String for %#v, which would otherwise print the key.
func (o OpenAIOptions) GoString() string { return "llm.OpenAIOptions" + o.String() }

// Defaults and bounds. The caps keep a misconfiguration from turning into an unbounded wait or an
// unbounded allocation.
const (
	openAIDefaultMaxTokens   = 4096
	openAIDefaultRetries     = 4
	openAIMaxRetries         = 20
	openAIDefaultTimeout     = 5 * time.Minute
	openAIDefaultIdle        = 60 * time.Second
	openAIDefaultMaxResponse = 32 << 20
	// openAIErrorBodyLimit bounds how much of a failed response is read for its message.
	openAIErrorBodyLimit = 64 << 10
	// openAIBackoffBase is the first wait before a retry when the server does not say; it doubles
	// with every attempt up to openAIMaxWait.
	openAIBackoffBase = 500 * time.Millisecond
	// openAIMaxWait caps one wait between attempts. A Retry-After beyond it (an exhausted daily
	// quota, say) fails at once rather than holding an agent for an hour.
	openAIMaxWait = 30 * time.Second
)

// OpenAI is a panther.Model over the OpenAI-compatible chat completions wire format: OpenAI, Z.ai's
// coding API, Ollama, vLLM, llama.cpp's server. It is safe for concurrent use.
//
// Complete streams (stream: true with usage included) when given an onEvent callback and makes a
// plain request otherwise; both yield the same ModelResponse.
type OpenAI struct {
	endpoint  string // BaseURL + /chat/completions
	shownURL  string // BaseURL with any user:password removed, for messages
	model     string
	apiKey    string
	maxTokens int
	retries   int
	timeout   time.Duration
	idle      time.Duration
	maxBody   int64
	client    *http.Client

	// Seams for tests, so that retry tests need not sleep.
	sleep       func(ctx context.Context, d time.Duration) error
	backoffBase time.Duration
	maxWait     time.Duration
}

var _ panther.Model = (*OpenAI)(nil)

// NewOpenAI validates o and returns a client. No request is made.
func NewOpenAI(o OpenAIOptions) (*OpenAI, error) {
	base := strings.TrimSpace(o.BaseURL)
	if base == "" {
		return nil, panther.Invalidf("openai model: BaseURL is required (e.g. https://api.openai.com/v1 or http://localhost:11434/v1)")
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, panther.Invalidf("openai model: BaseURL %q is not an http(s) URL", httpx.RedactURL(base))
	}
	if u.Fragment != "" || u.RawQuery != "" {
		return nil, panther.Invalidf("openai model: BaseURL %s must have neither ?query nor #fragment", u.Redacted())
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if strings.HasSuffix(u.Path, "/chat/completions") {
		return nil, panther.Invalidf("openai model: BaseURL %s should be the API root (…/v1): /chat/completions is appended to it", u.Redacted())
	}
	shown := u.Redacted()
	u.Path += "/chat/completions"

	model := strings.TrimSpace(o.Model)
	if strings.ContainsFunc(model, unicode.IsControl) {
		return nil, panther.Invalidf("openai model: Model %q contains control characters", model)
	}
	// The key itself is never echoed, not even in this message.
	if strings.ContainsFunc(o.APIKey, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return nil, panther.Invalidf("openai model: APIKey contains white space or control characters (a trailing newline from a file?)")
	}

	c := &OpenAI{
		endpoint:    u.String(),
		shownURL:    shown,
		model:       model,
		apiKey:      o.APIKey,
		maxTokens:   o.MaxTokens,
		retries:     o.Retries,
		timeout:     o.Timeout,
		idle:        o.IdleTimeout,
		maxBody:     o.MaxResponseBytes,
		client:      o.HTTPClient,
		sleep:       httpx.Sleep,
		backoffBase: openAIBackoffBase,
		maxWait:     openAIMaxWait,
	}
	switch {
	case c.maxTokens == 0:
		c.maxTokens = openAIDefaultMaxTokens
	case c.maxTokens < 0:
		return nil, panther.Invalidf("openai model: MaxTokens must be positive, got %d", c.maxTokens)
	}
	switch {
	case c.retries == 0:
		c.retries = openAIDefaultRetries
	case c.retries < 0:
		c.retries = 0
	case c.retries > openAIMaxRetries:
		return nil, panther.Invalidf("openai model: Retries must be at most %d, got %d", openAIMaxRetries, c.retries)
	}
	switch {
	case c.timeout == 0:
		c.timeout = openAIDefaultTimeout
	case c.timeout < 0:
		return nil, panther.Invalidf("openai model: Timeout must be positive, got %s", c.timeout)
	}
	switch {
	case c.idle == 0:
		c.idle = openAIDefaultIdle
	case c.idle < 0:
		return nil, panther.Invalidf("openai model: IdleTimeout must be positive, got %s", c.idle)
	}
	switch {
	case c.maxBody == 0:
		c.maxBody = openAIDefaultMaxResponse
	case c.maxBody < 0:
		return nil, panther.Invalidf("openai model: MaxResponseBytes must be positive, got %d", c.maxBody)
	}
	if c.client == nil {
		// No client-wide timeout: a streamed answer may legitimately take minutes, and Timeout and
		// IdleTimeout bound it instead.
		c.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return c, nil
}

// String describes the client for logs, without the key. Value receivers, so that formatting a
// copy of the struct cannot print the key either.
func (c OpenAI) String() string {
	if c.model == "" {
		return "openai-compatible model at " + c.shownURL
	}
	return fmt.Sprintf("openai-compatible model %q at %s", c.model, c.shownURL)
}

// GoString keeps %#v from printing the struct, key included.
func (c OpenAI) GoString() string { return c.String() }

// Complete runs one turn. With onEvent the answer is streamed: text as it arrives, each tool call
// once the turn is finished and its arguments are known to be valid JSON. onEvent runs on the
// calling goroutine, and time spent in it does not count against IdleTimeout.
func (c *OpenAI) Complete(ctx context.Context, req panther.ModelRequest, onEvent func(panther.StreamEvent)) (panther.ModelResponse, error) {
	model := strings.TrimSpace(req.Model)
	if model == "" {
		model = c.model
	}
	if model == "" {
		return panther.ModelResponse{}, panther.Invalidf("openai model at %s: no model named in the request and no default Model configured", c.shownURL)
	}
	body, err := c.encodeRequest(model, req, onEvent != nil)
	if err != nil {
		return panther.ModelResponse{}, fmt.Errorf("%s: %w", c.prefix(model), err)
	}

	timeoutErr := fmt.Errorf("%s: no complete answer within %s (Timeout): %w (%w)", c.prefix(model), c.timeout, panther.ErrUnavailable, context.DeadlineExceeded)
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout, timeoutErr)
	defer cancel()

	for attempt := 0; ; attempt++ {
		resp, retry, err := c.attempt(ctx, model, body, onEvent)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return panther.ModelResponse{}, c.ctxError(ctx, model)
		}
		if retry == nil {
			return panther.ModelResponse{}, err
		}
		if attempt >= c.retries {
			if attempt == 0 {
				return panther.ModelResponse{}, fmt.Errorf("%s: %w", c.prefix(model), err)
			}
			return panther.ModelResponse{}, fmt.Errorf("%s: gave up after %d attempts: %w", c.prefix(model), attempt+1, err)
		}
		wait := retry.after
		if wait > c.maxWait {
			return panther.ModelResponse{}, fmt.Errorf("%s: server asks to retry after %s, longer than the %s this client waits: %w", c.prefix(model), wait, c.maxWait, err)
		}
		if wait < 0 {
			wait = httpx.Backoff(c.backoffBase, c.maxWait, attempt)
		}
		if err := c.sleep(ctx, wait); err != nil {
			return panther.ModelResponse{}, c.ctxError(ctx, model)
		}
	}
}

// ctxError is the error for a call ended by its context: the caller's own cancellation as the
// context's error, or our Timeout as a time-out of kind ErrUnavailable.
func (c *OpenAI) ctxError(ctx context.Context, model string) error {
	cause := context.Cause(ctx)
	if errors.Is(cause, panther.ErrUnavailable) {
		return cause // our Timeout, already prefixed
	}
	return fmt.Errorf("%s: %w", c.prefix(model), cause)
}

// oaiRetry marks a failed attempt as worth repeating; after is the server's Retry-After, or negative
// when it gave none.
type oaiRetry struct{ after time.Duration }

// errOAIIdle is the cause an attempt is cancelled with when its stream goes silent.
var errOAIIdle = errors.New("stream idle")

// attempt makes one request. A non-nil retry means the error may go away if the request is repeated,
// which is never the case once onEvent has been called. Errors that are not retried already carry
// the prefix; retried ones get it from Complete.
func (c *OpenAI) attempt(ctx context.Context, model string, body []byte, onEvent func(panther.StreamEvent)) (panther.ModelResponse, *oaiRetry, error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	hreq, err := http.NewRequestWithContext(actx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return panther.ModelResponse{}, nil, fmt.Errorf("%s: building the request: %w", c.prefix(model), err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	if onEvent != nil {
		hreq.Header.Set("Accept", "text/event-stream")
	} else {
		hreq.Header.Set("Accept", "application/json")
	}
	hreq.Header.Set("User-Agent", "panther")
	if c.apiKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	resp, err := c.client.Do(hreq)
	if err != nil {
		return panther.ModelResponse{}, &oaiRetry{after: -1}, c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		retry, err := c.statusError(model, resp)
		return panther.ModelResponse{}, retry, err
	}

	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if onEvent == nil || mt != "text/event-stream" {
		// Also taken for a stream request some servers answer in one piece (a cached answer, a
		// proxy that buffers): the result is the same, delivered as one event.
		data, err := oaiReadLimited(resp.Body, c.maxBody)
		if errors.Is(err, errOAITooLarge) {
			return panther.ModelResponse{}, nil, fmt.Errorf("%s: response larger than %d bytes (MaxResponseBytes): %w", c.prefix(model), c.maxBody, panther.ErrUnavailable)
		}
		if err != nil {
			return panther.ModelResponse{}, &oaiRetry{after: -1}, c.transportError(ctx, err)
		}
		out, err := oaiDecodeResponse(data)
		if err != nil {
			return panther.ModelResponse{}, nil, c.answerError(model, err)
		}
		if onEvent != nil {
			if out.Message.Content != "" {
				onEvent(panther.StreamEvent{Text: out.Message.Content})
			}
			for i := range out.Message.ToolCalls {
				onEvent(panther.StreamEvent{ToolCall: &out.Message.ToolCalls[i]})
			}
		}
		return out, nil, nil
	}

	// The idle timer runs only while a read is blocked, so a slow onEvent is not mistaken for a
	// stalled server.
	timer := time.AfterFunc(c.idle, func() { cancel(errOAIIdle) })
	defer timer.Stop()
	timer.Stop()
	r := &oaiIdleReader{r: resp.Body, timer: timer, idle: c.idle}
	st := newOAIStream(onEvent)
	out, err := st.read(r, c.maxBody)
	if err == nil {
		return out, nil, nil
	}
	var retry *oaiRetry
	switch {
	case ctx.Err() != nil:
		return panther.ModelResponse{}, nil, c.ctxError(ctx, model)
	case errors.Is(context.Cause(actx), errOAIIdle):
		retry = &oaiRetry{after: -1}
		err = fmt.Errorf("stream stalled: nothing received for %s (IdleTimeout): %w", c.idle, panther.ErrUnavailable)
	case errors.Is(err, errOAITooLarge):
		err = fmt.Errorf("response larger than %d bytes (MaxResponseBytes): %w", c.maxBody, panther.ErrUnavailable)
	default:
		var se *oaiStreamError
		if errors.As(err, &se) {
			err = c.providerError(model, se.status, se.msg, se.code, se.typ)
			return panther.ModelResponse{}, nil, err
		}
		var ae *oaiAnswerError
		if errors.As(err, &ae) {
			return panther.ModelResponse{}, nil, c.answerError(model, err)
		}
		retry = &oaiRetry{after: -1}
		err = fmt.Errorf("stream broken: %s: %w", c.clean(oaiUnwrapURL(err).Error()), panther.ErrUnavailable)
	}
	if st.delivered {
		// Part of the answer is already in the caller's hands; repeating the request would
		// deliver it twice, or a different answer spliced onto it.
		return panther.ModelResponse{}, nil, fmt.Errorf("%s: not retried, part of the answer was already delivered: %w", c.prefix(model), err)
	}
	if retry == nil {
		return panther.ModelResponse{}, nil, fmt.Errorf("%s: %w", c.prefix(model), err)
	}
	return panther.ModelResponse{}, retry, err
}

// oaiIdleReader arms the idle timer around each Read.
type oaiIdleReader struct {
	r     io.Reader
	timer *time.Timer
	idle  time.Duration
}

func (r *oaiIdleReader) Read(p []byte) (int, error) {
	r.timer.Reset(r.idle)
	n, err := r.r.Read(p)
	r.timer.Stop()
	return n, err
}

// transportError describes a failure to send a request or read its response; the caller checks
// for its own cancellation first.
func (c *OpenAI) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return fmt.Errorf("network error: %s: %w", c.clean(oaiUnwrapURL(err).Error()), panther.ErrUnavailable)
}

// oaiUnwrapURL drops net/http's "Post <url>:" wrapper: the URL is in the prefix already.
func oaiUnwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// answerError reports a 2xx answer that cannot be used.
func (c *OpenAI) answerError(model string, err error) error {
	var ae *oaiAnswerError
	if errors.As(err, &ae) && ae.kind != nil {
		return fmt.Errorf("%s: %s: %w", c.prefix(model), c.clean(ae.msg), ae.kind)
	}
	return fmt.Errorf("%s: %s: %w", c.prefix(model), c.clean(err.Error()), panther.ErrUnavailable)
}

// statusError turns a non-2xx response into an error, retryable or not.
func (c *OpenAI) statusError(model string, resp *http.Response) (*oaiRetry, error) {
	raw, _ := oaiReadLimited(resp.Body, openAIErrorBodyLimit)
	msg, code, typ := oaiErrorMessage(raw)
	status := resp.StatusCode
	if (status == http.StatusTooManyRequests && code != "insufficient_quota") || status == http.StatusRequestTimeout || status >= 500 {
		if !oaiIsContextLength(code, msg) { // llama.cpp reports an overlong prompt as a 500
			return &oaiRetry{after: oaiRetryAfter(resp.Header, time.Now())}, fmt.Errorf("%s: %w", oaiDescribe(status, c.clean(msg)), panther.ErrUnavailable)
		}
	}
	return nil, c.providerError(model, status, msg, code, typ)
}

// providerError words an error the server reported, with an HTTP status or inside a stream (status
// 0), for the caller.
func (c *OpenAI) providerError(model string, status int, msg, code, typ string) error {
	clean := c.clean(msg)
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden || code == "invalid_api_key" || typ == "authentication_error":
		// The server's message is left out: OpenAI's quotes part of the key back.
		hint := "check the API key"
		if c.apiKey == "" {
			hint = "no API key is configured"
		}
		return fmt.Errorf("authentication failed for %s (%s): %s: %w", c.shownURL, oaiStatus(status), hint, panther.ErrUnavailable)
	case oaiIsContextLength(code, msg):
		return fmt.Errorf("%s: the conversation is longer than the model's context window (shorten or summarise it): %s: %w", c.prefix(model), clean, panther.ErrInvalid)
	case status == http.StatusNotFound || code == "model_not_found":
		return fmt.Errorf("model %q not found at %s (is it available there, and is BaseURL the API root, …/v1?): %s: %w", model, c.shownURL, oaiDescribe(status, clean), panther.ErrUnavailable)
	case status == http.StatusTooManyRequests && code == "insufficient_quota":
		return fmt.Errorf("%s: quota exhausted, retrying will not help: %s: %w", c.prefix(model), oaiDescribe(status, clean), panther.ErrUnavailable)
	case status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge || status == http.StatusUnprocessableEntity || typ == "invalid_request_error":
		return fmt.Errorf("%s: request refused: %s: %w", c.prefix(model), oaiDescribe(status, clean), panther.ErrInvalid)
	default:
		return fmt.Errorf("%s: %s: %w", c.prefix(model), oaiDescribe(status, clean), panther.ErrUnavailable)
	}
}

func oaiStatus(status int) string {
	if status == 0 {
		return "error event in the stream"
	}
	return fmt.Sprintf("HTTP %d", status)
}

func oaiDescribe(status int, msg string) string {
	if msg == "" {
		return oaiStatus(status)
	}
	return oaiStatus(status) + ": " + msg
}

func (c *OpenAI) prefix(model string) string {
	return fmt.Sprintf("model %q at %s", model, c.shownURL)
}

// clean makes text from the server fit for an error message: the API key redacted wherever a server
// echoes it, control characters collapsed, valid UTF-8, bounded length.
func (c *OpenAI) clean(s string) string {
	if c.apiKey != "" {
		s = strings.ReplaceAll(s, c.apiKey, "[redacted]")
	}
	return httpx.CleanText(s)
}
