package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"panther"
	"panther/internal/httpx"
)

// AnthropicOptions configure an Anthropic client. None is required: the zero value talks to
// api.anthropic.com, though every request must then name its model.
type AnthropicOptions struct {
	// BaseURL is the API root; /v1/messages is appended. Default https://api.anthropic.com; MiniMax's
	// is https://api.minimax.io/anthropic. A trailing /v1 or /v1/messages is accepted and dropped,
	// since that is how such URLs are often copied from documentation.
	BaseURL string
	// APIKey is sent as x-api-key. It never appears in an error, a log line or String().
	APIKey string
	// Version is the anthropic-version header, default "2023-06-01". Third-party compatible endpoints
	// want it too.
	Version string
	// Model is used when a request names none.
	Model string
	// MaxTokens bounds an answer when a request does not; the API requires a bound. Default 4096.
	MaxTokens int
	// Retries is how many times a request is repeated after a 429, a 529 or other 5xx, an
	// overloaded_error, a time-out or a network error; 0 means the default of 4, negative none.
	// A stream of which anything was already handed to onEvent is never repeated, since the caller
	// cannot take back what it was given.
	Retries int
	// Timeout bounds a whole Complete call, retries and the stream included, so that an agent's turn
	// has a known worst case; default 5 minutes.
	Timeout time.Duration
	// IdleTimeout bounds the silence while waiting for the server (its response headers, or the next
	// bytes of a stream); default 60 s. The API sends pings during long pauses, so a longer silence
	// means a stalled connection. Non-streamed requests are bounded by Timeout alone, since the server
	// says nothing until the whole answer is ready.
	IdleTimeout time.Duration
	// MaxResponseBytes bounds a response body, a whole stream included; default 32 MiB.
	MaxResponseBytes int64
	// HTTPClient sends the requests; nil means one with no timeout of its own (Timeout applies).
	HTTPClient *http.Client
}

// String shows the options with the API key redacted, so that logging a configuration is safe.
func (o AnthropicOptions) String() string {
	type plain AnthropicOptions // no methods, so formatting it does not recurse
	if o.APIKey != "" {
		o.APIKey = "[redacted]"
	}
	o.BaseURL = httpx.RedactURL(o.BaseURL)
	return fmt.Sprintf("%+v", plain(o))
}

// GoString is String for %#v, which would otherwise print the key.
func (o AnthropicOptions) GoString() string { return "llm.AnthropicOptions" + o.String() }

const (
	antDefaultBaseURL   = "https://api.anthropic.com"
	antDefaultVersion   = "2023-06-01"
	antDefaultMaxTokens = 4096
	antDefaultRetries   = 4
	antMaxRetries       = 20
	antDefaultTimeout   = 5 * time.Minute
	antDefaultIdle      = 60 * time.Second
	antDefaultMaxBody   = 32 << 20
	// antErrorBodyLimit bounds how much of a failed response is read for its message.
	antErrorBodyLimit = 64 << 10
	// antBackoffBase is the first wait before a retry when the server does not say; it doubles with
	// every attempt up to antMaxWait.
	antBackoffBase = time.Second
	// antMaxWait caps one wait between attempts. A Retry-After beyond it fails at once rather than
	// holding an agent for an hour.
	antMaxWait = 30 * time.Second
)

// Anthropic is a panther.Model speaking the Anthropic Messages API (POST /v1/messages). It is safe
// for concurrent use.
//
// Tool messages become tool_result blocks of a user message, and consecutive messages that land on
// the same role are merged into one, because the API wants user and assistant turns to alternate.
// Token usage counts cached input (cache reads and writes) as input, since what a budget cares about
// is how much of the context the prompt took.
type Anthropic struct {
	endpoint  string // BaseURL + /v1/messages
	shownURL  string // BaseURL without credentials, for messages
	apiKey    string
	version   string
	model     string
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

var _ panther.Model = (*Anthropic)(nil)

// NewAnthropic validates o and returns a client. No request is made.
func NewAnthropic(o AnthropicOptions) (*Anthropic, error) {
	base := strings.TrimSpace(o.BaseURL)
	if base == "" {
		base = antDefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, panther.Invalidf("anthropic client: BaseURL %q is not an http(s) URL", httpx.RedactURL(base))
	}
	if u.Fragment != "" || u.RawQuery != "" {
		return nil, panther.Invalidf("anthropic client: BaseURL %s must have no query or #fragment", u.Redacted())
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.Path = strings.TrimSuffix(u.Path, "/messages")
	u.Path = strings.TrimSuffix(u.Path, "/v1")
	u.RawPath = ""
	shown := u.Redacted()
	u.Path += "/v1/messages"

	// The key itself is never echoed, not even in this message.
	if strings.ContainsFunc(o.APIKey, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return nil, panther.Invalidf("anthropic client: APIKey contains white space or control characters (a trailing newline from a file?)")
	}
	model := strings.TrimSpace(o.Model)
	if strings.ContainsFunc(model, unicode.IsControl) {
		return nil, panther.Invalidf("anthropic client: Model %q contains control characters", model)
	}
	version := strings.TrimSpace(o.Version)
	if version == "" {
		version = antDefaultVersion
	}
	if strings.ContainsFunc(version, unicode.IsControl) {
		return nil, panther.Invalidf("anthropic client: Version %q contains control characters", version)
	}

	c := &Anthropic{
		endpoint:    u.String(),
		shownURL:    shown,
		apiKey:      o.APIKey,
		version:     version,
		model:       model,
		maxTokens:   o.MaxTokens,
		retries:     o.Retries,
		timeout:     o.Timeout,
		idle:        o.IdleTimeout,
		maxBody:     o.MaxResponseBytes,
		client:      o.HTTPClient,
		sleep:       httpx.Sleep,
		backoffBase: antBackoffBase,
		maxWait:     antMaxWait,
	}
	switch {
	case c.maxTokens == 0:
		c.maxTokens = antDefaultMaxTokens
	case c.maxTokens < 0:
		return nil, panther.Invalidf("anthropic client: MaxTokens must be positive, got %d", c.maxTokens)
	}
	switch {
	case c.retries == 0:
		c.retries = antDefaultRetries
	case c.retries < 0:
		c.retries = 0
	case c.retries > antMaxRetries:
		return nil, panther.Invalidf("anthropic client: Retries must be at most %d, got %d", antMaxRetries, c.retries)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{{"Timeout", &c.timeout, antDefaultTimeout}, {"IdleTimeout", &c.idle, antDefaultIdle}} {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < 0:
			return nil, panther.Invalidf("anthropic client: %s must be positive, got %s", d.name, *d.v)
		}
	}
	switch {
	case c.maxBody == 0:
		c.maxBody = antDefaultMaxBody
	case c.maxBody < 0:
		return nil, panther.Invalidf("anthropic client: MaxResponseBytes must be positive, got %d", c.maxBody)
	}
	if c.client == nil {
		// No client-wide timeout: each attempt gets its own deadline, and a client-wide one would
		// cut long streams.
		c.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return c, nil
}

// String describes the client for logs, without the key.
func (c *Anthropic) String() string {
	if c.model == "" {
		return fmt.Sprintf("anthropic messages client at %s", c.shownURL)
	}
	return fmt.Sprintf("anthropic messages client %q at %s", c.model, c.shownURL)
}

// GoString keeps %#v from printing the struct, key included.
func (c *Anthropic) GoString() string { return c.String() }

// Complete runs one turn. With onEvent it streams, calling onEvent from the calling goroutine for
// each text delta as it arrives and for each tool call once its arguments are complete.
func (c *Anthropic) Complete(ctx context.Context, req panther.ModelRequest, onEvent func(panther.StreamEvent)) (panther.ModelResponse, error) {
	model := strings.TrimSpace(req.Model)
	if model == "" {
		model = c.model
	}
	if model == "" {
		return panther.ModelResponse{}, panther.Invalidf("anthropic at %s: no model named by the request or the client", c.shownURL)
	}
	prefix := fmt.Sprintf("anthropic %q at %s", model, c.shownURL)
	wire, err := antBuildRequest(req, model, c.maxTokens, onEvent != nil)
	if err != nil {
		return panther.ModelResponse{}, fmt.Errorf("%s: %w", prefix, err)
	}
	body, err := json.Marshal(wire)
	if err != nil {
		return panther.ModelResponse{}, fmt.Errorf("%s: encoding the request: %w", prefix, err)
	}

	timeoutErr := fmt.Errorf("%s: no complete answer within %s (Timeout): %w (%w)", prefix, c.timeout, panther.ErrUnavailable, context.DeadlineExceeded)
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout, timeoutErr)
	defer cancel()

	delivered := false
	emit := func(ev panther.StreamEvent) {
		delivered = true
		onEvent(ev)
	}
	for attempt := 0; ; attempt++ {
		resp, retry, err := c.attempt(ctx, body, onEvent != nil, emit)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return panther.ModelResponse{}, antCtxError(ctx, prefix)
		}
		if retry == nil || delivered {
			return panther.ModelResponse{}, fmt.Errorf("%s: %w", prefix, err)
		}
		if attempt >= c.retries {
			if attempt == 0 {
				return panther.ModelResponse{}, fmt.Errorf("%s: %w", prefix, err)
			}
			return panther.ModelResponse{}, fmt.Errorf("%s: gave up after %d attempts: %w", prefix, attempt+1, err)
		}
		wait := retry.after
		if wait > c.maxWait {
			return panther.ModelResponse{}, fmt.Errorf("%s: server asks to retry after %s, longer than the %s this client waits: %w", prefix, wait, c.maxWait, err)
		}
		if wait < 0 {
			wait = httpx.Backoff(c.backoffBase, c.maxWait, attempt)
		}
		if err := c.sleep(ctx, wait); err != nil {
			return panther.ModelResponse{}, antCtxError(ctx, prefix)
		}
	}
}

// antCtxError is the error for a call ended by its context: the caller's own cancellation as the
// context's error, or our Timeout as a time-out of kind ErrUnavailable.
func antCtxError(ctx context.Context, prefix string) error {
	cause := context.Cause(ctx)
	if errors.Is(cause, panther.ErrUnavailable) {
		return cause // our Timeout, already prefixed
	}
	return fmt.Errorf("%s: %w", prefix, cause)
}

// antRetry marks a failed attempt as worth repeating; after is the server's Retry-After, or
// negative when it gave none.
type antRetry struct{ after time.Duration }

// errAntIdle is the cause of an attempt cancelled for silence.
var errAntIdle = errors.New("idle timeout")

// attempt makes one request. A non-nil retry means the error may go away if the request is repeated
// (the caller still refuses when part of a stream was delivered).
func (c *Anthropic) attempt(ctx context.Context, body []byte, stream bool, emit func(panther.StreamEvent)) (panther.ModelResponse, *antRetry, error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return panther.ModelResponse{}, nil, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if stream {
		req.Header.Set("Accept", "text/event-stream")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	req.Header.Set("User-Agent", "panther")
	req.Header.Set("anthropic-version", c.version)
	if c.apiKey != "" {
		req.Header.Set("x-api-key", c.apiKey)
	}

	// The idle watchdog runs only while this goroutine waits on the network, so that a slow onEvent
	// is not mistaken for a silent server.
	var watch *antWatchdog
	if stream {
		watch = newAntWatchdog(c.idle, func() { cancel(errAntIdle) })
		defer watch.stop()
		watch.arm()
	}
	resp, err := c.client.Do(req)
	if watch != nil {
		watch.disarm()
	}
	if err != nil {
		retry, err := c.transportFailure(ctx, actx, err)
		return panther.ModelResponse{}, retry, err
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		retry, err := c.statusFailure(resp)
		return panther.ModelResponse{}, retry, err
	}

	// Some compatible servers ignore "stream": true and answer with one JSON document; that is a
	// complete answer, so it is accepted and replayed as events.
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if !stream || ct == "application/json" {
		data, err := antReadLimited(resp.Body, c.maxBody)
		if errors.Is(err, errAntTooLarge) {
			return panther.ModelResponse{}, nil, fmt.Errorf("response larger than %d bytes (MaxResponseBytes): %w", c.maxBody, panther.ErrUnavailable)
		}
		if err != nil {
			retry, err := c.transportFailure(ctx, actx, err)
			return panther.ModelResponse{}, retry, err
		}
		out, err := antDecodeResponse(data)
		if err != nil {
			return panther.ModelResponse{}, antRetryable(err), c.wrapAPIError(err)
		}
		if stream {
			if out.Message.Content != "" {
				emit(panther.StreamEvent{Text: out.Message.Content})
			}
			for i := range out.Message.ToolCalls {
				tc := out.Message.ToolCalls[i]
				emit(panther.StreamEvent{ToolCall: &tc})
			}
		}
		return out, nil, nil
	}

	var r = antReader{r: resp.Body, watch: watch}
	out, err := antParseStream(&r, c.maxBody, emit)
	if err != nil {
		if errors.Is(err, errAntTooLarge) {
			return panther.ModelResponse{}, nil, fmt.Errorf("stream larger than %d bytes (MaxResponseBytes): %w", c.maxBody, panther.ErrUnavailable)
		}
		var rerr *antReadError
		if errors.As(err, &rerr) {
			retry, err := c.transportFailure(ctx, actx, rerr.err)
			return panther.ModelResponse{}, retry, fmt.Errorf("stream broken: %w", err)
		}
		return panther.ModelResponse{}, antRetryable(err), c.wrapAPIError(err)
	}
	return out, nil, nil
}

// antRetryable says whether a decoding or stream error may go away on a second try: an overloaded
// server saying so in an error event, or a stream that ended early.
func antRetryable(err error) *antRetry {
	var ae *antAPIError
	if errors.As(err, &ae) && (ae.Type == "overloaded_error" || ae.Type == "api_error" || ae.Type == "rate_limit_error") {
		return &antRetry{after: -1}
	}
	if errors.Is(err, errAntTruncated) {
		return &antRetry{after: -1}
	}
	return nil
}

// wrapAPIError gives a decoding or stream error its kind and removes the key from its text.
func (c *Anthropic) wrapAPIError(err error) error {
	var ae *antAPIError
	if errors.As(err, &ae) {
		return fmt.Errorf("%s error in the response: %s: %w", c.clean(ae.Type), c.clean(ae.Message), panther.ErrUnavailable)
	}
	return fmt.Errorf("%s: %w", c.clean(err.Error()), panther.ErrUnavailable)
}

// transportFailure classifies an error of sending a request or reading its response: the caller's
// cancellation or Timeout ends everything, anything else (the idle time-out included) may be
// retried.
func (c *Anthropic) transportFailure(ctx, actx context.Context, err error) (*antRetry, error) {
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	if errors.Is(context.Cause(actx), errAntIdle) {
		return &antRetry{after: -1}, fmt.Errorf("nothing received for %s (IdleTimeout): %w", c.idle, panther.ErrUnavailable)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is in the prefix already
	}
	return &antRetry{after: -1}, fmt.Errorf("network error: %s: %w", c.clean(err.Error()), panther.ErrUnavailable)
}

// statusFailure turns a non-2xx response into an error, and says whether to try again.
func (c *Anthropic) statusFailure(resp *http.Response) (*antRetry, error) {
	raw, _ := antReadLimited(resp.Body, antErrorBodyLimit)
	typ, msg := antErrorMessage(raw)
	typ, msg = c.clean(typ), c.clean(msg)
	status := resp.StatusCode
	describe := fmt.Sprintf("HTTP %d", status)
	if typ != "" {
		describe += " " + typ
	}
	if msg != "" {
		describe += ": " + msg
	}

	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		// The server's message is left out lest it quote the key back.
		hint := "check the API key"
		if c.apiKey == "" {
			hint = "no API key is configured"
		}
		return nil, fmt.Errorf("authentication failed for %s (HTTP %d): %s: %w", c.shownURL, status, hint, panther.ErrUnavailable)
	case antIsTooLong(status, msg):
		return nil, fmt.Errorf("the conversation does not fit the model's context window (%s); shorten it or lower max_tokens: %w", describe, panther.ErrInvalid)
	case status == http.StatusTooManyRequests || status == 529 || status == http.StatusRequestTimeout ||
		status >= 500 || typ == "overloaded_error":
		return &antRetry{after: antRetryAfter(resp.Header.Get("Retry-After"), time.Now())}, fmt.Errorf("%s: %w", describe, panther.ErrUnavailable)
	case status == http.StatusNotFound:
		return nil, fmt.Errorf("%s (is BaseURL the API root, and does the server know the model?): %w", describe, panther.ErrUnavailable)
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		return nil, fmt.Errorf("request refused: %s: %w", describe, panther.ErrInvalid)
	default:
		return nil, fmt.Errorf("%s: %w", describe, panther.ErrUnavailable)
	}
}

// clean makes text from the server fit for an error message, the key redacted wherever a server
// echoes it.
func (c *Anthropic) clean(s string) string {
	if c.apiKey != "" {
		s = strings.ReplaceAll(s, c.apiKey, "[redacted]")
	}
	return httpx.CleanText(s)
}
