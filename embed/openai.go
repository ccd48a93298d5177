package embed

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"panther"
	"panther/internal/httpx"
)

// OpenAIOptions configure an OpenAI client. Only BaseURL, Model and Dimensions are required.
type OpenAIOptions struct {
	// BaseURL is the API root, e.g. https://api.openai.com/v1 or http://localhost:11434/v1 (Ollama);
	// /embeddings is appended to its path.
	BaseURL string
	// Model is the model name the server knows. Model() records it with every vector.
	Model string
	// APIKey is sent as "Authorization: Bearer"; empty for local servers that want none. It never
	// appears in an error, a log line or String().
	APIKey string
	// Dimensions is the length of the vectors the model returns (or, with RequestDimensions, the
	// length asked for). It is required rather than probed so that a store can be created before the
	// server is reachable, and so that a model swapped behind the same name is noticed, not adopted.
	Dimensions int
	// RequestDimensions sends "dimensions" in every request, for models that can shorten their
	// vectors (OpenAI text-embedding-3-*). Most other models and servers reject the field.
	RequestDimensions bool
	// BatchSize is the number of texts per request; default 64, at most 2048 (OpenAI's limit).
	BatchSize int
	// Concurrency bounds the requests in flight across all Embed calls on the client; default 4.
	Concurrency int
	// Retries is how many times a request is repeated after a 429 (unless the quota is exhausted), a
	// 408 or 5xx (unless it says the input is too long), a time-out or a network error; 0 means the
	// default of 4, a negative number means none. A batch thus takes at most (Retries+1)×Timeout
	// plus Retries×30 s of waiting.
	Retries int
	// Timeout bounds one request, body included; default 60 s.
	Timeout time.Duration
	// MaxResponseBytes bounds a response body; default 64 MiB.
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
func (o OpenAIOptions) GoString() string { return "embed.OpenAIOptions" + o.String() }

// Defaults and bounds. The caps keep a misconfiguration from turning into an unbounded wait, an
// unbounded allocation or a flood of requests.
const (
	openAIDefaultBatchSize   = 64
	openAIMaxBatchSize       = 2048
	openAIDefaultConcurrency = 4
	openAIMaxConcurrency     = 64
	openAIDefaultRetries     = 4
	openAIMaxRetries         = 20
	openAIDefaultTimeout     = 60 * time.Second
	openAIDefaultMaxResponse = 64 << 20
	openAIMaxDimensions      = 1 << 16
	// openAIErrorBodyLimit bounds how much of a failed response is read for its message.
	openAIErrorBodyLimit = 64 << 10
	// openAIBackoffBase is the first wait before a retry when the server does not say; it doubles
	// with every attempt up to openAIMaxWait.
	openAIBackoffBase = 500 * time.Millisecond
	// openAIMaxWait caps one wait between attempts. A Retry-After beyond it (an exhausted daily
	// quota, say) fails at once rather than holding a batch for an hour.
	openAIMaxWait = 30 * time.Second
)

// OpenAI embeds texts with any server that speaks OpenAI's /v1/embeddings wire format: OpenAI,
// Ollama, llama.cpp's server, vLLM, Hugging Face TEI, Z.ai. It is safe for concurrent use.
//
// Model() is "openai:<model>", or "openai:<model>?dimensions=<n>" with RequestDimensions. The prefix
// names the wire format, not the vendor, and the server's address is deliberately left out: moving
// a model from a laptop to a GPU box must not invalidate every stored vector. Two servers that serve
// different weights under one name must therefore be given different model names.
//
// Every text must contain something other than white space: OpenAI rejects empty inputs, and a
// vector of nothing would sit at an arbitrary point of the space and be found by unrelated queries.
// Such a text is an error of kind panther.ErrInvalid naming its index, not silently replaced.
//
// Errors about the caller's input wrap panther.ErrInvalid (see also OpenAIInputTooLongError); errors
// about the server, its answers or the credentials wrap panther.ErrUnavailable; a cancelled context
// is returned as the context's error.
type OpenAI struct {
	endpoint    string // BaseURL + /embeddings
	shownURL    string // BaseURL with any user:password removed, for messages
	model       string
	apiKey      string
	dims        int
	requestDims bool
	batchSize   int
	retries     int
	timeout     time.Duration
	maxBody     int64
	client      *http.Client
	// sem holds one token per request in flight; shared by all Embed calls so that parallel
	// ingest workers together stay within Concurrency.
	sem chan struct{}

	// Seams for tests, so that retry tests need not sleep.
	sleep       func(ctx context.Context, d time.Duration) error
	backoffBase time.Duration
	maxWait     time.Duration
}

var _ panther.Embedder = (*OpenAI)(nil)

// NewOpenAI validates opts and returns a client. No request is made.
func NewOpenAI(opts OpenAIOptions) (*OpenAI, error) {
	base := strings.TrimSpace(opts.BaseURL)
	if base == "" {
		return nil, panther.Invalidf("openai embedder: BaseURL is required (e.g. https://api.openai.com/v1 or http://localhost:11434/v1)")
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, panther.Invalidf("openai embedder: BaseURL %q is not an http(s) URL", httpx.RedactURL(base))
	}
	if u.Fragment != "" {
		return nil, panther.Invalidf("openai embedder: BaseURL %s must not have a #fragment", u.Redacted())
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if strings.HasSuffix(u.Path, "/embeddings") {
		return nil, panther.Invalidf("openai embedder: BaseURL %s should be the API root (…/v1): /embeddings is appended to it", u.Redacted())
	}
	shown := u.Redacted()
	u.Path += "/embeddings"

	model := strings.TrimSpace(opts.Model)
	if model == "" {
		return nil, panther.Invalidf("openai embedder: Model is required")
	}
	if strings.ContainsFunc(model, unicode.IsControl) {
		return nil, panther.Invalidf("openai embedder: Model %q contains control characters", model)
	}
	// The key itself is never echoed, not even in this message.
	if strings.ContainsFunc(opts.APIKey, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return nil, panther.Invalidf("openai embedder: APIKey contains white space or control characters (a trailing newline from a file?)")
	}
	if opts.Dimensions <= 0 || opts.Dimensions > openAIMaxDimensions {
		return nil, panther.Invalidf("openai embedder: Dimensions must be between 1 and %d (the length of the model's vectors, e.g. 1536 for text-embedding-3-small, 768 for nomic-embed-text), got %d", openAIMaxDimensions, opts.Dimensions)
	}

	e := &OpenAI{
		endpoint:    u.String(),
		shownURL:    shown,
		model:       model,
		apiKey:      opts.APIKey,
		dims:        opts.Dimensions,
		requestDims: opts.RequestDimensions,
		batchSize:   opts.BatchSize,
		retries:     opts.Retries,
		timeout:     opts.Timeout,
		maxBody:     opts.MaxResponseBytes,
		client:      opts.HTTPClient,
		sleep:       httpx.Sleep,
		backoffBase: openAIBackoffBase,
		maxWait:     openAIMaxWait,
	}
	switch {
	case e.batchSize == 0:
		e.batchSize = openAIDefaultBatchSize
	case e.batchSize < 0 || e.batchSize > openAIMaxBatchSize:
		return nil, panther.Invalidf("openai embedder: BatchSize must be between 1 and %d, got %d", openAIMaxBatchSize, e.batchSize)
	}
	concurrency := opts.Concurrency
	switch {
	case concurrency == 0:
		concurrency = openAIDefaultConcurrency
	case concurrency < 0 || concurrency > openAIMaxConcurrency:
		return nil, panther.Invalidf("openai embedder: Concurrency must be between 1 and %d, got %d", openAIMaxConcurrency, concurrency)
	}
	e.sem = make(chan struct{}, concurrency)
	switch {
	case e.retries == 0:
		e.retries = openAIDefaultRetries
	case e.retries < 0:
		e.retries = 0
	case e.retries > openAIMaxRetries:
		return nil, panther.Invalidf("openai embedder: Retries must be at most %d, got %d", openAIMaxRetries, e.retries)
	}
	switch {
	case e.timeout == 0:
		e.timeout = openAIDefaultTimeout
	case e.timeout < 0:
		return nil, panther.Invalidf("openai embedder: Timeout must be positive, got %s", e.timeout)
	}
	switch {
	case e.maxBody == 0:
		e.maxBody = openAIDefaultMaxResponse
	case e.maxBody < 0:
		return nil, panther.Invalidf("openai embedder: MaxResponseBytes must be positive, got %d", e.maxBody)
	}
	if e.client == nil {
		// No client-wide timeout: each attempt gets its own deadline from Timeout. Enough idle
		// connections are kept for every request in flight, where the default two would make the
		// others reconnect for each batch.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = concurrency
		e.client = &http.Client{Transport: t}
	}
	return e, nil
}

// Model is "openai:<model>", with "?dimensions=<n>" when the vectors are shortened on request,
// since shortened vectors are not comparable with full-length ones of the same model.
func (e *OpenAI) Model() string {
	if e.requestDims {
		return "openai:" + e.model + "?dimensions=" + strconv.Itoa(e.dims)
	}
	return "openai:" + e.model
}

// Dimensions is the configured vector length; Embed fails rather than return another.
func (e *OpenAI) Dimensions() int { return e.dims }

// String describes the client for logs, without the key.
func (e *OpenAI) String() string {
	return fmt.Sprintf("openai-compatible embedder %q at %s (%d dimensions)", e.model, e.shownURL, e.dims)
}

// GoString keeps %#v from printing the struct, key included.
func (e *OpenAI) GoString() string { return e.String() }

// OpenAIInputTooLongError is returned when the server refuses an input as longer than the model's
// context. Index is the input's position in the texts given to Embed, so that a caller can split or
// shorten that one text and try again. It is of kind panther.ErrInvalid.
type OpenAIInputTooLongError struct {
	Model   string // as Model() returns it
	Index   int
	Message string // the server's own words
}

func (e *OpenAIInputTooLongError) Error() string {
	return fmt.Sprintf("embedding with %s: input %d is too long for the model: %s", e.Model, e.Index, e.Message)
}

func (e *OpenAIInputTooLongError) Unwrap() error { return panther.ErrInvalid }

// Embed returns one vector per text, in the order of texts. Texts are sent in batches of BatchSize,
// at most Concurrency requests at a time; the first failure cancels the rest.
func (e *OpenAI) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return [][]float32{}, nil
	}
	for i, t := range texts {
		if strings.TrimSpace(t) == "" {
			return nil, fmt.Errorf("%s: input %d is empty or only white space, which has no meaning to embed: %w", e.prefix(), i, panther.ErrInvalid)
		}
	}
	out := make([][]float32, len(texts))

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg      sync.WaitGroup
		once    sync.Once
		first   error
		stopped bool // not every batch was started
	)
	fail := func(err error) {
		once.Do(func() {
			first = err
			cancel(err)
		})
	}
schedule:
	for start := 0; start < len(texts); start += e.batchSize {
		end := min(start+e.batchSize, len(texts))
		select {
		case e.sem <- struct{}{}:
		case <-ctx.Done():
			stopped = true
			break schedule
		}
		wg.Go(func() {
			defer func() { <-e.sem }()
			if err := e.embedBatch(ctx, texts[start:end], start, out[start:end]); err != nil {
				fail(err)
			}
		})
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	if stopped {
		return nil, fmt.Errorf("%s: %w", e.prefix(), context.Cause(ctx))
	}
	return out, nil
}

// embedBatch embeds texts (which start at offset in the caller's slice) into dst. A batch the server
// finds too large is halved until it fits or a single input is left to blame: some servers bound the
// tokens of a whole request, and most do not say which input overflowed.
func (e *OpenAI) embedBatch(ctx context.Context, texts []string, offset int, dst [][]float32) error {
	vecs, err := e.post(ctx, texts)
	var tl *openAITooLarge
	if errors.As(err, &tl) {
		switch {
		case tl.index >= 0 && tl.index < len(texts):
			return &OpenAIInputTooLongError{Model: e.Model(), Index: offset + tl.index, Message: tl.msg}
		case len(texts) == 1:
			return &OpenAIInputTooLongError{Model: e.Model(), Index: offset, Message: tl.msg}
		}
		mid := len(texts) / 2
		if err := e.embedBatch(ctx, texts[:mid], offset, dst[:mid]); err != nil {
			return err
		}
		return e.embedBatch(ctx, texts[mid:], offset+mid, dst[mid:])
	}
	if err != nil {
		return err
	}
	copy(dst, vecs)
	return nil
}

// openAIRequest is the body of POST /embeddings.
type openAIRequest struct {
	Model          string   `json:"model"`
	Input          []string `json:"input"`
	Dimensions     int      `json:"dimensions,omitempty"`
	EncodingFormat string   `json:"encoding_format"`
}

// post sends one batch, retrying what may succeed later.
func (e *OpenAI) post(ctx context.Context, texts []string) ([][]float32, error) {
	req := openAIRequest{Model: e.model, Input: texts, EncodingFormat: "float"}
	if e.requestDims {
		req.Dimensions = e.dims
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%s: encoding the request: %w", e.prefix(), err)
	}
	for attempt := 0; ; attempt++ {
		vecs, retry, err := e.attempt(ctx, body, len(texts))
		if err == nil {
			return vecs, nil
		}
		if retry == nil {
			return nil, err
		}
		if attempt >= e.retries {
			if attempt == 0 {
				return nil, fmt.Errorf("%s: %w", e.prefix(), err)
			}
			return nil, fmt.Errorf("%s: gave up after %d attempts: %w", e.prefix(), attempt+1, err)
		}
		wait := retry.after
		if wait > e.maxWait {
			return nil, fmt.Errorf("%s: server asks to retry after %s, longer than the %s this client waits: %w", e.prefix(), wait, e.maxWait, err)
		}
		if wait < 0 {
			wait = e.backoff(attempt)
		}
		if err := e.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("%s: %w", e.prefix(), err)
		}
	}
}

// openAIRetry marks a failed attempt as worth repeating; after is the server's Retry-After, or
// negative when it gave none.
type openAIRetry struct{ after time.Duration }

// openAITooLarge is a refusal because of input length; index is the culprit within the batch when
// the server's message names it, else -1.
type openAITooLarge struct {
	msg   string
	index int
}

func (e *openAITooLarge) Error() string { return "input too long: " + e.msg }

// attempt makes one request. A non-nil retry means the error may go away if the request is repeated;
// errors that are not retried already carry the prefix.
func (e *OpenAI) attempt(ctx context.Context, body []byte, n int) ([][]float32, *openAIRetry, error) {
	actx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, e.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: building the request: %w", e.prefix(), err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "panther")
	if e.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+e.apiKey)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		retry, err := e.transportFailure(ctx, actx, err)
		return nil, retry, err
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return e.statusFailure(resp)
	}
	data, err := openAIReadLimited(resp.Body, e.maxBody)
	if errors.Is(err, errOpenAITooLarge) {
		return nil, nil, fmt.Errorf("%s: response larger than %d bytes (raise MaxResponseBytes or lower BatchSize): %w", e.prefix(), e.maxBody, panther.ErrUnavailable)
	}
	if err != nil {
		retry, err := e.transportFailure(ctx, actx, err)
		return nil, retry, err
	}
	vecs, err := openAIDecodeResponse(data, n, e.dims)
	if err != nil {
		var de *openAIDimensionError
		if errors.As(err, &de) && e.requestDims {
			err = fmt.Errorf("%w (the server ignored the requested dimensions)", err)
		}
		return nil, nil, fmt.Errorf("%s: %s: %w", e.prefix(), e.clean(err.Error()), panther.ErrUnavailable)
	}
	return vecs, nil, nil
}

// transportFailure classifies an error of sending a request or reading its response: the caller's
// cancellation ends everything, anything else (this attempt's time-out included) may be retried.
func (e *OpenAI) transportFailure(ctx, actx context.Context, err error) (*openAIRetry, error) {
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s: %w", e.prefix(), context.Cause(ctx))
	}
	if errors.Is(actx.Err(), context.DeadlineExceeded) {
		return &openAIRetry{after: -1}, fmt.Errorf("no response within %s (Timeout): %w", e.timeout, panther.ErrUnavailable)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is in the prefix already
	}
	return &openAIRetry{after: -1}, fmt.Errorf("network error: %s: %w", e.clean(err.Error()), panther.ErrUnavailable)
}

// statusFailure turns a non-2xx response into an error.
func (e *OpenAI) statusFailure(resp *http.Response) ([][]float32, *openAIRetry, error) {
	raw, _ := openAIReadLimited(resp.Body, openAIErrorBodyLimit)
	msg, code := openAIErrorMessage(raw)
	msg = e.clean(msg)
	status := resp.StatusCode
	describe := func() string {
		if msg == "" {
			return fmt.Sprintf("HTTP %d", status)
		}
		return fmt.Sprintf("HTTP %d: %s", status, msg)
	}

	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		// The server's message is left out: OpenAI's quotes part of the key back.
		hint := "check the API key"
		if e.apiKey == "" {
			hint = "no API key is configured"
		}
		if code != "" {
			hint += " (server code " + e.clean(code) + ")"
		}
		return nil, nil, fmt.Errorf("%s: authentication failed (HTTP %d): %s: %w", e.prefix(), status, hint, panther.ErrUnavailable)
	case status == http.StatusTooManyRequests && code == "insufficient_quota":
		return nil, nil, fmt.Errorf("%s: quota exhausted, retrying will not help: %s: %w", e.prefix(), describe(), panther.ErrUnavailable)
	case openAIIsTooLong(status, msg):
		idx := -1
		if m := openAIInputIndexRE.FindStringSubmatch(msg); m != nil {
			if i, err := strconv.Atoi(m[1]); err == nil {
				idx = i
			}
		}
		if msg == "" {
			msg = http.StatusText(status)
		}
		return nil, nil, &openAITooLarge{msg: msg, index: idx}
	case status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500:
		err := fmt.Errorf("%s: %w", describe(), panther.ErrUnavailable)
		return nil, &openAIRetry{after: openAIRetryAfter(resp.Header.Get("Retry-After"), time.Now())}, err
	case status == http.StatusNotFound:
		return nil, nil, fmt.Errorf("%s: %s (is BaseURL the API root, …/v1, and is the model available there?): %w", e.prefix(), describe(), panther.ErrUnavailable)
	default:
		return nil, nil, fmt.Errorf("%s: %s: %w", e.prefix(), describe(), panther.ErrUnavailable)
	}
}

// openAIInputIndexRE finds the input OpenAI blames: "Invalid 'input[3]': maximum context length ...".
var openAIInputIndexRE = regexp.MustCompile(`input\[(\d+)\]`)

// openAITooLongRE matches how servers say an input exceeds the model's context: OpenAI ("maximum
// context length is 8192 tokens", "max 300000 tokens per request"), Ollama ("the input length
// exceeds the context length"), llama.cpp ("input is too large to process", "exceed n_ctx"), TEI
// ("must have less than 512 tokens"), vLLM. It is kept narrow because a match on some unrelated
// 400 would make the client halve the batch and then blame an innocent input.
var openAITooLongRE = regexp.MustCompile(`(?i)context length|context size|context window|maximum context|n_ctx|input.{0,40}too (long|large)|too many tokens|must have less than \d+ tokens|tokens per request`)

func openAIIsTooLong(status int, msg string) bool {
	switch status {
	case http.StatusRequestEntityTooLarge:
		return true
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusInternalServerError:
		// llama.cpp reports an overlong input as a 500; not retrying it is the point.
		return openAITooLongRE.MatchString(msg)
	}
	return false
}

// openAIRetryAfter parses a Retry-After header (seconds or an HTTP date); negative when absent or
// unreadable, so that the caller falls back to its own backoff.
func openAIRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return -1
	}
	if s, err := strconv.ParseInt(h, 10, 64); err == nil {
		if s < 0 {
			return -1
		}
		if s > int64(24*time.Hour/time.Second) {
			return 24 * time.Hour // only ever compared with the cap; avoids overflow
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0)
	}
	return -1
}

// backoff is the wait before retry attempt+1 when the server gave no Retry-After: exponential with
// "equal jitter" (half fixed, half random) so that parallel batches throttled together do not
// return together.
func (e *OpenAI) backoff(attempt int) time.Duration {
	return httpx.Backoff(e.backoffBase, e.maxWait, attempt)
}

func (e *OpenAI) prefix() string {
	return fmt.Sprintf("embedding with %q at %s", e.model, e.shownURL)
}

// clean makes text from the server fit for an error message: the API key redacted wherever a server
// echoes it, control characters and runs of white space collapsed, valid UTF-8, bounded length.
func (e *OpenAI) clean(s string) string {
	if e.apiKey != "" {
		s = strings.ReplaceAll(s, e.apiKey, "[redacted]")
	}
	return httpx.CleanText(s)
}

var errOpenAITooLarge = errors.New("body too large")

// openAIReadLimited reads r to the end, or fails with errOpenAITooLarge past limit bytes.
func openAIReadLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return data, err
	}
	if int64(len(data)) > limit {
		return data[:limit], errOpenAITooLarge
	}
	return data, nil
}

// openAIErrorMessage digs the message and code out of an error body in whichever shape the server
// uses: OpenAI's {"error":{"message","type","code"}}, TEI's {"error":"..."}, vLLM's top-level
// {"message","code"}, FastAPI's {"detail":...}; anything else is returned as text.
func openAIErrorMessage(body []byte) (msg, code string) {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Code    json.RawMessage `json:"code"`
		Detail  json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return string(body), ""
	}
	if len(v.Error) > 0 && v.Error[0] == '{' {
		var inner struct {
			Message string          `json:"message"`
			Type    string          `json:"type"`
			Code    json.RawMessage `json:"code"`
		}
		if json.Unmarshal(v.Error, &inner) == nil {
			msg = inner.Message
			if msg == "" {
				msg = inner.Type
			}
			return msg, openAICode(inner.Code)
		}
	}
	var s string
	if len(v.Error) > 0 && json.Unmarshal(v.Error, &s) == nil && s != "" {
		return s, openAICode(v.Code)
	}
	if v.Message != "" {
		return v.Message, openAICode(v.Code)
	}
	if len(v.Detail) > 0 {
		if json.Unmarshal(v.Detail, &s) == nil {
			return s, ""
		}
		return string(v.Detail), ""
	}
	return string(body), ""
}

// openAICode renders a code that servers send as a string, a number or null.
func openAICode(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// openAIDimensionError is a vector of another length than configured.
type openAIDimensionError struct{ got, want int }

func (e *openAIDimensionError) Error() string {
	return fmt.Sprintf("server returned %d-dimensional vectors, configured %d: set dimensions to %d or choose another model", e.got, e.want, e.got)
}

// openAIDecodeResponse checks and decodes a 200 response for a batch of n inputs into n vectors of
// dims floats, placed by each item's index rather than by its position in the list. Vectors are
// slices of one allocation, capped so that appending to one cannot overwrite the next.
func openAIDecodeResponse(body []byte, n, dims int) ([][]float32, error) {
	var resp struct {
		Data *[]struct {
			Index     *int            `json:"index"`
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("response is not JSON (it begins %q)", httpx.CleanText(string(body[:min(len(body), 60)])))
		}
		return nil, fmt.Errorf("malformed response: %v", err)
	}
	if resp.Data == nil {
		if len(resp.Error) > 0 && string(resp.Error) != "null" {
			msg, _ := openAIErrorMessage(body)
			return nil, fmt.Errorf("server reported an error: %s", msg)
		}
		return nil, errors.New(`response has no "data" list`)
	}
	data := *resp.Data
	if len(data) != n {
		return nil, fmt.Errorf("server returned %d embeddings for %d inputs", len(data), n)
	}
	flat := make([]float32, n*dims)
	out := make([][]float32, n)
	for i, d := range data {
		if d.Index == nil {
			return nil, fmt.Errorf("embedding %d of the response has no index", i)
		}
		idx := *d.Index
		if idx < 0 || idx >= n {
			return nil, fmt.Errorf("embedding %d of the response has index %d, out of range for %d inputs", i, idx, n)
		}
		if out[idx] != nil {
			return nil, fmt.Errorf("index %d appears twice in the response", idx)
		}
		v := flat[idx*dims : (idx+1)*dims : (idx+1)*dims]
		got, err := openAIParseVector(d.Embedding, v)
		if err != nil {
			return nil, fmt.Errorf("embedding for input %d: %w", idx, err)
		}
		if got != dims {
			return nil, &openAIDimensionError{got: got, want: dims}
		}
		out[idx] = v
	}
	return out, nil
}

// openAIParseVector reads an "embedding" value into dst and returns how many floats it holds (which
// may differ from len(dst); only what fits is written). It takes a JSON array of numbers, or the
// base64 of little-endian float32s that encoding_format "base64" yields, since some servers answer
// that way whatever was asked. raw is assumed to be valid JSON (json.Unmarshal checked it).
//
// Hand-rolled rather than json.Unmarshal into []float32 because that takes null for 0, and a vector
// with holes in it would be stored as if it were real.
func openAIParseVector(raw json.RawMessage, dst []float32) (int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0, errors.New("no vector")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, fmt.Errorf("vector string: %v", err)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b)%4 != 0 {
			return 0, errors.New("vector is a string but not base64 of float32s")
		}
		for i := 0; i < len(b)/4; i++ {
			f := math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				return 0, fmt.Errorf("element %d is %v", i, f)
			}
			if i < len(dst) {
				dst[i] = f
			}
		}
		return len(b) / 4, nil
	}
	if raw[0] != '[' {
		return 0, fmt.Errorf("vector is not a list of numbers (it begins %q)", httpx.CleanText(string(raw[:min(len(raw), 20)])))
	}
	p := 1
	skip := func() {
		for p < len(raw) && (raw[p] == ' ' || raw[p] == '\t' || raw[p] == '\n' || raw[p] == '\r') {
			p++
		}
	}
	skip()
	if p < len(raw) && raw[p] == ']' {
		return 0, nil
	}
	for i := 0; ; i++ {
		skip()
		start := p
		for p < len(raw) && strings.IndexByte("+-.0123456789eE", raw[p]) >= 0 {
			p++
		}
		if start == p {
			r, _ := utf8.DecodeRune(raw[p:])
			return 0, fmt.Errorf("element %d is not a number (it begins %q)", i, r)
		}
		f, err := strconv.ParseFloat(string(raw[start:p]), 32)
		if err != nil && !math.IsInf(f, 0) {
			return 0, fmt.Errorf("element %d (%s) is not a number", i, raw[start:p])
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, fmt.Errorf("element %d (%s) is out of float32 range", i, raw[start:p])
		}
		if i < len(dst) {
			dst[i] = float32(f)
		}
		skip()
		if p >= len(raw) {
			return 0, errors.New("vector list is not closed")
		}
		switch raw[p] {
		case ',':
			p++
		case ']':
			return i + 1, nil
		default:
			return 0, fmt.Errorf("element %d is not a number", i)
		}
	}
}
