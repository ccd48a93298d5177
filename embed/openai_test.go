package embed

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"panther"
	"panther/internal/httpx"
)

const openAITestKey = "sk-test-SECRET-0123456789abcdef"

// openAITestVector is the vector the fake server gives a text, so that a test can tell which input a
// returned vector belongs to.
func openAITestVector(text string, dims int) []float32 {
	h := fnv.New32a()
	h.Write([]byte(text))
	seed := float32(h.Sum32()%100000) / 1000
	v := make([]float32, dims)
	for j := range v {
		v[j] = seed + float32(j)/8
	}
	return v
}

type openAITestRequest struct {
	Model          string   `json:"model"`
	Input          []string `json:"input"`
	Dimensions     *int     `json:"dimensions"`
	EncodingFormat string   `json:"encoding_format"`
	raw            map[string]json.RawMessage
}

func openAIReadRequest(t *testing.T, r *http.Request) openAITestRequest {
	t.Helper()
	var req openAITestRequest
	if r.Method != http.MethodPost || r.URL.Path != "/v1/embeddings" {
		t.Errorf("got %s %s, want POST /v1/embeddings", r.Method, r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	dec := json.NewDecoder(r.Body)
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		t.Errorf("request body: %v", err)
		return req
	}
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, &req); err != nil {
		t.Errorf("request body: %v", err)
	}
	req.raw = raw
	return req
}

type openAITestItem struct {
	Object    string    `json:"object"`
	Index     int       `json:"index"`
	Embedding []float32 `json:"embedding"`
}

// openAIWriteVectors answers req the way a real server does, in shuffled order when asked.
func openAIWriteVectors(w http.ResponseWriter, req openAITestRequest, dims int, shuffle bool) {
	items := make([]openAITestItem, len(req.Input))
	for i, text := range req.Input {
		items[i] = openAITestItem{Object: "embedding", Index: i, Embedding: openAITestVector(text, dims)}
	}
	if shuffle {
		rand.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"object": "list",
		"data":   items,
		"model":  req.Model,
		"usage":  map[string]int{"prompt_tokens": len(req.Input), "total_tokens": len(req.Input)},
	})
}

func openAIWriteError(w http.ResponseWriter, status int, message, typ string, code any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": message, "type": typ, "code": code}})
}

func openAITexts(n int) []string {
	texts := make([]string, n)
	for i := range texts {
		texts[i] = fmt.Sprintf("passage number %d about partial indexes", i)
	}
	return texts
}

// openAISleeps records the waits between retries instead of waiting.
type openAISleeps struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *openAISleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *openAISleeps) get() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// newOpenAITest starts srv and returns a client of it; change fills in options beyond the defaults
// the tests share. Retry waits are recorded, not slept.
func newOpenAITest(t *testing.T, handler http.HandlerFunc, change func(*OpenAIOptions)) (*OpenAI, *openAISleeps) {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	opts := OpenAIOptions{BaseURL: srv.URL + "/v1", Model: "test-embed", APIKey: openAITestKey, Dimensions: 8}
	if change != nil {
		change(&opts)
	}
	e, err := NewOpenAI(opts)
	if err != nil {
		t.Fatal(err)
	}
	s := &openAISleeps{}
	e.sleep = s.sleep
	return e, s
}

func openAICheckVectors(t *testing.T, texts []string, got [][]float32, dims int) {
	t.Helper()
	if len(got) != len(texts) {
		t.Fatalf("got %d vectors for %d texts", len(got), len(texts))
	}
	for i, text := range texts {
		want := openAITestVector(text, dims)
		if len(got[i]) != dims {
			t.Fatalf("vector %d has %d dimensions, want %d", i, len(got[i]), dims)
		}
		for j := range want {
			if got[i][j] != want[j] {
				t.Fatalf("vector %d is not the vector of text %d: %v vs %v", i, i, got[i], want)
			}
		}
	}
}

// openAINoKey fails if an error text carries the API key.
func openAINoKey(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), openAITestKey) {
		t.Fatalf("error carries the API key: %v", err)
	}
}

func TestNewOpenAIValidation(t *testing.T) {
	valid := OpenAIOptions{BaseURL: "http://localhost:11434/v1", Model: "nomic-embed-text", Dimensions: 768}
	tests := []struct {
		name   string
		change func(*OpenAIOptions)
		want   string
	}{
		{"no base URL", func(o *OpenAIOptions) { o.BaseURL = " " }, "BaseURL is required"},
		{"not http", func(o *OpenAIOptions) { o.BaseURL = "ftp://example.com/v1" }, "not an http(s) URL"},
		{"no host", func(o *OpenAIOptions) { o.BaseURL = "http:///v1" }, "not an http(s) URL"},
		{"endpoint given", func(o *OpenAIOptions) { o.BaseURL = "https://api.openai.com/v1/embeddings/" }, "should be the API root"},
		{"no model", func(o *OpenAIOptions) { o.Model = "" }, "Model is required"},
		{"no dimensions", func(o *OpenAIOptions) { o.Dimensions = 0 }, "Dimensions must be between"},
		{"huge dimensions", func(o *OpenAIOptions) { o.Dimensions = 1 << 20 }, "Dimensions must be between"},
		{"negative batch", func(o *OpenAIOptions) { o.BatchSize = -1 }, "BatchSize must be between"},
		{"huge batch", func(o *OpenAIOptions) { o.BatchSize = 5000 }, "BatchSize must be between"},
		{"negative concurrency", func(o *OpenAIOptions) { o.Concurrency = -2 }, "Concurrency must be between"},
		{"too many retries", func(o *OpenAIOptions) { o.Retries = 1000 }, "Retries must be at most"},
		{"negative timeout", func(o *OpenAIOptions) { o.Timeout = -time.Second }, "Timeout must be positive"},
		{"negative max response", func(o *OpenAIOptions) { o.MaxResponseBytes = -1 }, "MaxResponseBytes must be positive"},
		{"key with newline", func(o *OpenAIOptions) { o.APIKey = openAITestKey + "\n" }, "APIKey contains white space"},
		{"password in URL", func(o *OpenAIOptions) { o.BaseURL = "ftp://user:hunter2@example.com/v1" }, "not an http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid
			tt.change(&o)
			_, err := NewOpenAI(o)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, panther.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an invalid-input error saying %q", err, tt.want)
			}
			openAINoKey(t, err)
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error carries the URL's password: %v", err)
			}
		})
	}

	e, err := NewOpenAI(valid)
	if err != nil {
		t.Fatal(err)
	}
	if e.batchSize != 64 || cap(e.sem) != 4 || e.retries != 4 || e.timeout != time.Minute || e.maxBody != 64<<20 {
		t.Errorf("defaults: batch %d, concurrency %d, retries %d, timeout %s, max body %d", e.batchSize, cap(e.sem), e.retries, e.timeout, e.maxBody)
	}
	o := valid
	o.Retries = -1
	if e, _ := NewOpenAI(o); e.retries != 0 {
		t.Errorf("Retries -1 gives %d retries, want none", e.retries)
	}
}

func TestOpenAIModelAndDimensionsField(t *testing.T) {
	for _, requestDims := range []bool{false, true} {
		t.Run(fmt.Sprint("RequestDimensions=", requestDims), func(t *testing.T) {
			var sent atomic.Bool
			e, _ := newOpenAITest(t, func(w http.ResponseWriter, r *http.Request) {
				req := openAIReadRequest(t, r)
				_, has := req.raw["dimensions"]
				sent.Store(has)
				if has && (req.Dimensions == nil || *req.Dimensions != 8) {
					t.Errorf("dimensions sent as %s, want 8", req.raw["dimensions"])
				}
				if req.Model != "test-embed" || req.EncodingFormat != "float" {
					t.Errorf("model %q, encoding_format %q", req.Model, req.EncodingFormat)
				}
				if got := r.Header.Get("Authorization"); got != "Bearer "+openAITestKey {
					t.Errorf("Authorization %q", got)
				}
				openAIWriteVectors(w, req, 8, false)
			}, func(o *OpenAIOptions) { o.RequestDimensions = requestDims })
			texts := []string{"hello"}
			got, err := e.Embed(context.Background(), texts)
			if err != nil {
				t.Fatal(err)
			}
			openAICheckVectors(t, texts, got, 8)
			if sent.Load() != requestDims {
				t.Errorf("dimensions field sent: %v, want %v", sent.Load(), requestDims)
			}
			wantModel := "openai:test-embed"
			if requestDims {
				wantModel += "?dimensions=8"
			}
			if e.Model() != wantModel || e.Dimensions() != 8 {
				t.Errorf("Model() %q, Dimensions() %d; want %q, 8", e.Model(), e.Dimensions(), wantModel)
			}
		})
	}
}

func TestOpenAINoKeyNoHeader(t *testing.T) {
	e, _ := newOpenAITest(t, func(w http.ResponseWriter, r *http.Request) {
		if h, ok := r.Header["Authorization"]; ok {
			t.Errorf("Authorization sent without a key: %q", h)
		}
		openAIWriteVectors(w, openAIReadRequest(t, r), 8, false)
	}, func(o *OpenAIOptions) { o.APIKey = "" })
	if _, err := e.Embed(context.Background(), []string{"a"}); err != nil {
		t.Fatal(err)
	}
}

func TestOpenAIBatchingAndOrder(t *testing.T) {
	tests := []struct {
		name      string
		n, batch  int
		wantCalls int
	}{
		{"one text", 1, 16, 1},
		{"exact batches", 64, 16, 4},
		{"ragged last batch", 150, 16, 10},
		{"default batch size", 130, 0, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			batch := tt.batch
			if batch == 0 {
				batch = 64
			}
			e, _ := newOpenAITest(t, func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				req := openAIReadRequest(t, r)
				if len(req.Input) > batch {
					t.Errorf("request of %d inputs, batch size %d", len(req.Input), batch)
				}
				openAIWriteVectors(w, req, 8, true)
			}, func(o *OpenAIOptions) { o.BatchSize = tt.batch })
			texts := openAITexts(tt.n)
			got, err := e.Embed(context.Background(), texts)
			if err != nil {
				t.Fatal(err)
			}
			openAICheckVectors(t, texts, got, 8)
			if int(calls.Load()) != tt.wantCalls {
				t.Errorf("%d requests, want %d", calls.Load(), tt.wantCalls)
			}
			// Vectors must not share a backing array in a way that lets one overwrite the next.
			if len(got) > 1 {
				got[0] = append(got[0], 99)
				openAICheckVectors(t, texts[1:], got[1:], 8)
			}
		})
	}
}

func TestOpenAIConcurrencyLimit(t *testing.T) {
	const limit = 3
	var inFlight, peak, calls atomic.Int32
	e, _ := newOpenAITest(t, func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		calls.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		req := openAIReadRequest(t, r)
		time.Sleep(15 * time.Millisecond)
		openAIWriteVectors(w, req, 8, true)
	}, func(o *OpenAIOptions) { o.BatchSize = 2; o.Concurrency = limit })

	// Two callers at once share the one limit.
	var wg sync.WaitGroup
	for c := range 2 {
		wg.Go(func() {
			texts := openAITexts(20 + c)
			got, err := e.Embed(context.Background(), texts)
			if err != nil {
				t.Error(err)
				return
			}
			openAICheckVectors(t, texts, got, 8)
		})
	}
	wg.Wait()
	if p := peak.Load(); p > limit {
		t.Errorf("%d requests in flight, limit %d", p, limit)
	} else if p < limit {
		t.Logf("peak concurrency %d of %d (machine too slow to fill it?)", p, limit)
	}
	if calls.Load() != 10+11 {
		t.Errorf("%d requests, want 21", calls.Load())
	}
}

func TestOpenAIRetries(t *testing.T) {
	type step struct {
		status     int
		retryAfter string
		code       any
	}
	httpDate := time.Now().Add(5 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name      string
		retries   int
		steps     []step // the answers before success; the last repeats
		wantErr   string // empty: the embedding succeeds
		wantCalls int
		checkWait func(t *testing.T, waits []time.Duration)
	}{
		{
			name: "429 with Retry-After seconds, then success", steps: []step{{429, "2", nil}, {200, "", nil}},
			wantCalls: 2,
			checkWait: func(t *testing.T, w []time.Duration) {
				if len(w) != 1 || w[0] != 2*time.Second {
					t.Errorf("waits %v, want [2s]", w)
				}
			},
		},
		{
			name: "503 with Retry-After date, then success", steps: []step{{503, httpDate, nil}, {200, "", nil}},
			wantCalls: 2,
			checkWait: func(t *testing.T, w []time.Duration) {
				if len(w) != 1 || w[0] <= 2*time.Second || w[0] > 5*time.Second {
					t.Errorf("waits %v, want about 5s", w)
				}
			},
		},
		{
			name: "500 twice without Retry-After, then success", steps: []step{{500, "", nil}, {502, "", nil}, {200, "", nil}},
			wantCalls: 3,
			checkWait: func(t *testing.T, w []time.Duration) {
				// Exponential backoff with equal jitter: [base/2, base], then [base, 2*base].
				if len(w) != 2 || w[0] < 250*time.Millisecond || w[0] > 500*time.Millisecond ||
					w[1] < 500*time.Millisecond || w[1] > time.Second {
					t.Errorf("waits %v, want one in [250ms,500ms] then one in [500ms,1s]", w)
				}
			},
		},
		{
			name: "503 until giving up", retries: 2, steps: []step{{503, "", nil}},
			wantErr: "gave up after 3 attempts: HTTP 503: overloaded", wantCalls: 3,
		},
		{
			name: "no retries", retries: -1, steps: []step{{503, "", nil}},
			wantErr: "HTTP 503: overloaded", wantCalls: 1,
		},
		{
			name: "Retry-After beyond the cap", steps: []step{{429, "3600", nil}},
			wantErr: "server asks to retry after 1h0m0s, longer than the 30s", wantCalls: 1,
		},
		{
			name: "quota exhausted is not retried", steps: []step{{429, "", "insufficient_quota"}},
			wantErr: "quota exhausted", wantCalls: 1,
		},
		{
			name: "400 is not retried", steps: []step{{400, "", "invalid_value"}},
			wantErr: "HTTP 400: overloaded", wantCalls: 1,
		},
		{
			name: "404 names the likely cause", steps: []step{{404, "", "model_not_found"}},
			wantErr: "is BaseURL the API root", wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			e, sleeps := newOpenAITest(t, func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1))
				req := openAIReadRequest(t, r)
				s := tt.steps[min(n, len(tt.steps))-1]
				if s.status == 200 {
					openAIWriteVectors(w, req, 8, true)
					return
				}
				if s.retryAfter != "" {
					w.Header().Set("Retry-After", s.retryAfter)
				}
				openAIWriteError(w, s.status, "overloaded", "server_error", s.code)
			}, func(o *OpenAIOptions) { o.Retries = tt.retries })
			texts := openAITexts(3)
			got, err := e.Embed(context.Background(), texts)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				openAICheckVectors(t, texts, got, 8)
			} else {
				if err == nil {
					t.Fatal("no error")
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), `"test-embed"`) ||
					!errors.Is(err, panther.ErrUnavailable) {
					t.Fatalf("got %q, want an unavailable error naming the model and saying %q", err, tt.wantErr)
				}
			}
			if int(calls.Load()) != tt.wantCalls {
				t.Errorf("%d requests, want %d", calls.Load(), tt.wantCalls)
			}
			if tt.checkWait != nil {
				tt.checkWait(t, sleeps.get())
			}
		})
	}
}

func TestOpenAIRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", -1},
		{"0", 0},
		{"7", 7 * time.Second},
		{" 12 ", 12 * time.Second},
		{"-3", -1},
		{"soon", -1},
		{"99999999999999999", 24 * time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := openAIRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("Retry-After %q: %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestOpenAIAuthenticationFailure(t *testing.T) {
	for _, status := range []int{401, 403} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			var calls atomic.Int32
			e, _ := newOpenAITest(t, func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				// Servers quote the key back (OpenAI masks most of it; this one does not).
				openAIWriteError(w, status, "Incorrect API key provided: "+openAITestKey, "invalid_request_error", "invalid_api_key")
			}, nil)
			_, err := e.Embed(context.Background(), []string{"x"})
			if err == nil {
				t.Fatal("no error")
			}
			openAINoKey(t, err)
			msg := err.Error()
			if !strings.Contains(msg, "authentication failed") || !strings.Contains(msg, e.shownURL) ||
				!strings.Contains(msg, "invalid_api_key") || !errors.Is(err, panther.ErrUnavailable) {
				t.Fatalf("got %q, want authentication failed at %s", msg, e.shownURL)
			}
			if calls.Load() != 1 {
				t.Errorf("%d requests; an authentication failure must not be retried", calls.Load())
			}
		})
	}
}

func TestOpenAIKeyNeverShown(t *testing.T) {
	// A server that echoes the key in every kind of failure.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("case") {
		case "400":
			openAIWriteError(w, 400, "bad key "+openAITestKey, "x", openAITestKey)
		case "html":
			w.WriteHeader(502)
			fmt.Fprintf(w, "<html>%s</html>", openAITestKey)
		default:
			fmt.Fprintf(w, "not json %s", openAITestKey)
		}
	}))
	defer srv.Close()
	for _, c := range []string{"400", "html", "200"} {
		e, err := NewOpenAI(OpenAIOptions{
			BaseURL: "http://user:hunter2@" + strings.TrimPrefix(srv.URL, "http://") + "/v1?case=" + c,
			Model:   "m", APIKey: openAITestKey, Dimensions: 4, Retries: -1,
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Embed(context.Background(), []string{"x"})
		if err == nil {
			t.Fatalf("case %s: no error", c)
		}
		openAINoKey(t, err)
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("case %s: error carries the URL's password: %v", c, err)
		}
		for _, s := range []string{e.String(), fmt.Sprint(e), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)} {
			if strings.Contains(s, openAITestKey) || strings.Contains(s, "hunter2") {
				t.Fatalf("client formats with a secret: %s", s)
			}
		}
	}
	o := OpenAIOptions{BaseURL: "http://x/v1", Model: "m", APIKey: openAITestKey, Dimensions: 4}
	for _, s := range []string{o.String(), fmt.Sprint(o), fmt.Sprintf("%+v", o), fmt.Sprintf("%#v", o), fmt.Sprintf("%v", &o)} {
		if strings.Contains(s, openAITestKey) || !strings.Contains(s, "[redacted]") {
			t.Fatalf("options format with the key: %s", s)
		}
	}
}

func openAIBase64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestOpenAIBadResponses(t *testing.T) {
	tests := []struct {
		name    string
		dims    int
		body    func(req openAITestRequest) string
		wantErr string
	}{
		{
			name: "wrong dimensions", dims: 384,
			body: func(req openAITestRequest) string {
				v := openAIJSON(make([]float32, 768))
				return fmt.Sprintf(`{"data":[{"index":0,"embedding":%s},{"index":1,"embedding":%s}]}`, v, v)
			},
			wantErr: "server returned 768-dimensional vectors, configured 384: set dimensions to 768 or choose another model",
		},
		{
			name: "too few embeddings", dims: 2,
			body:    func(openAITestRequest) string { return `{"data":[{"index":0,"embedding":[1,2]}]}` },
			wantErr: "server returned 1 embeddings for 2 inputs",
		},
		{
			name: "too many embeddings", dims: 2,
			body: func(openAITestRequest) string {
				return `{"data":[{"index":0,"embedding":[1,2]},{"index":1,"embedding":[1,2]},{"index":2,"embedding":[1,2]}]}`
			},
			wantErr: "server returned 3 embeddings for 2 inputs",
		},
		{
			name: "missing index", dims: 2,
			body:    func(openAITestRequest) string { return `{"data":[{"index":0,"embedding":[1,2]},{"embedding":[1,2]}]}` },
			wantErr: "embedding 1 of the response has no index",
		},
		{
			name: "duplicate index", dims: 2,
			body: func(openAITestRequest) string {
				return `{"data":[{"index":1,"embedding":[1,2]},{"index":1,"embedding":[1,2]}]}`
			},
			wantErr: "index 1 appears twice",
		},
		{
			name: "index out of range", dims: 2,
			body: func(openAITestRequest) string {
				return `{"data":[{"index":0,"embedding":[1,2]},{"index":2,"embedding":[1,2]}]}`
			},
			wantErr: "index 2, out of range for 2 inputs",
		},
		{
			name: "null in a vector", dims: 2,
			body: func(openAITestRequest) string {
				return `{"data":[{"index":0,"embedding":[1,null]},{"index":1,"embedding":[1,2]}]}`
			},
			wantErr: "embedding for input 0: element 1 is not a number",
		},
		{
			name: "overflowing float", dims: 2,
			body: func(openAITestRequest) string {
				return `{"data":[{"index":0,"embedding":[1,2]},{"index":1,"embedding":[1e39,2]}]}`
			},
			wantErr: "element 0 (1e39) is out of float32 range",
		},
		{
			name: "NaN in base64", dims: 2,
			body: func(openAITestRequest) string {
				return fmt.Sprintf(`{"data":[{"index":0,"embedding":"%s"},{"index":1,"embedding":[1,2]}]}`,
					openAIBase64([]float32{1, float32(math.NaN())}))
			},
			wantErr: "element 1 is NaN",
		},
		{
			name: "not JSON", dims: 2,
			body:    func(openAITestRequest) string { return "<html><body>Bad gateway</body></html>" },
			wantErr: `response is not JSON (it begins "<html><body>Bad gateway</body></html>")`,
		},
		{
			name: "truncated JSON", dims: 2,
			body:    func(openAITestRequest) string { return `{"data":[{"index":0,"embedding":[1,2]},{"ind` },
			wantErr: "response is not JSON",
		},
		{
			name: "error inside a 200", dims: 2,
			body:    func(openAITestRequest) string { return `{"error":{"message":"model is loading","type":"x"}}` },
			wantErr: "server reported an error: model is loading",
		},
		{
			name: "no data", dims: 2,
			body:    func(openAITestRequest) string { return `{"object":"list"}` },
			wantErr: `response has no "data" list`,
		},
		{
			name: "data not a list", dims: 2,
			body:    func(openAITestRequest) string { return `{"data":{"index":0}}` },
			wantErr: "malformed response",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			e, _ := newOpenAITest(t, func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				fmt.Fprint(w, tt.body(openAIReadRequest(t, r)))
			}, func(o *OpenAIOptions) { o.Dimensions = tt.dims })
			_, err := e.Embed(context.Background(), []string{"first", "second"})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), `"test-embed"`) ||
				!errors.Is(err, panther.ErrUnavailable) {
				t.Fatalf("got %q, want an unavailable error naming the model and saying %q", err, tt.wantErr)
			}
			if calls.Load() != 1 {
				t.Errorf("%d requests; a bad answer is not retried", calls.Load())
			}
		})
	}
}

func openAIJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestOpenAIRequestedDimensionsIgnored(t *testing.T) {
	e, _ := newOpenAITest(t, func(w http.ResponseWriter, r *http.Request) {
		openAIWriteVectors(w, openAIReadRequest(t, r), 16, false)
	}, func(o *OpenAIOptions) { o.RequestDimensions = true })
	_, err := e.Embed(context.Background(), []string{"x"})
	if err == nil || !strings.Contains(err.Error(), "server returned 16-dimensional vectors, configured 8") ||
		!strings.Contains(err.Error(), "ignored the requested dimensions") {
		t.Fatalf("got %v", err)
	}
}

func TestOpenAIBase64Vectors(t *testing.T) {
	e, _ := newOpenAITest(t, func(w http.ResponseWriter, r *http.Request) {
		req := openAIReadRequest(t, r)
		var items []string
		for i := len(req.Input) - 1; i >= 0; i-- {
			items = append(items, fmt.Sprintf(`{"object":"embedding","index":%d,"embedding":"%s"}`, i, openAIBase64(openAITestVector(req.Input[i], 8))))
		}
		fmt.Fprintf(w, `{"object":"list","data":[%s],"model":"m"}`, strings.Join(items, ","))
	}, nil)
	texts := openAITexts(5)
	got, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	openAICheckVectors(t, texts, got, 8)
}

func TestOpenAIOversizeResponse(t *testing.T) {
	e, _ := newOpenAITest(t, func(w http.ResponseWriter, r *http.Request) {
		openAIWriteVectors(w, openAIReadRequest(t, r), 8, false)
	}, func(o *OpenAIOptions) { o.MaxResponseBytes = 300 })
	_, err := e.Embed(context.Background(), openAITexts(10))
	if err == nil || !strings.Contains(err.Error(), "response larger than 300 bytes") || !errors.Is(err, panther.ErrUnavailable) {
		t.Fatalf("got %v, want a too-large response error", err)
	}
}

// openAIBlock is a handler that answers only when the client gives up.
func openAIBlock(calls *atomic.Int32) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		// Until the body is read the server does not notice the client hanging up.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
}

func TestOpenAITimeout(t *testing.T) {
	for _, retries := range []int{-1, 1} {
		t.Run(fmt.Sprint("retries ", retries), func(t *testing.T) {
			var calls atomic.Int32
			e, _ := newOpenAITest(t, openAIBlock(&calls), func(o *OpenAIOptions) {
				o.Timeout = 100 * time.Millisecond
				o.Retries = retries
			})
			start := time.Now()
			_, err := e.Embed(context.Background(), []string{"x"})
			if err == nil || !strings.Contains(err.Error(), "no response within 100ms (Timeout)") || !errors.Is(err, panther.ErrUnavailable) {
				t.Fatalf("got %v, want a time-out", err)
			}
			if time.Since(start) > 3*time.Second {
				t.Errorf("took %s", time.Since(start))
			}
			if want := max(retries, 0) + 1; int(calls.Load()) != want {
				t.Errorf("%d requests, want %d", calls.Load(), want)
			}
		})
	}
}

func TestOpenAICancel(t *testing.T) {
	t.Run("during a request", func(t *testing.T) {
		var calls atomic.Int32
		e, _ := newOpenAITest(t, openAIBlock(&calls), func(o *OpenAIOptions) { o.BatchSize = 1; o.Concurrency = 2 })
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		_, err := e.Embed(ctx, openAITexts(10))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("returned %s after the cancel", d)
		}
		if calls.Load() > 2 {
			t.Errorf("%d requests after cancelling; no new batch should start", calls.Load())
		}
	})
	t.Run("while waiting to retry", func(t *testing.T) {
		var calls atomic.Int32
		e, _ := newOpenAITest(t, func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.Header().Set("Retry-After", "20")
			openAIWriteError(w, 503, "busy", "server_error", nil)
		}, nil)
		e.sleep = httpx.Sleep // the real one
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		_, err := e.Embed(ctx, []string{"x"})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("returned after %s", d)
		}
		if calls.Load() != 1 {
			t.Errorf("%d requests", calls.Load())
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		var calls atomic.Int32
		e, _ := newOpenAITest(t, openAIBlock(&calls), nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := e.Embed(ctx, []string{"x"}); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestOpenAIEmptyInput(t *testing.T) {
	var calls atomic.Int32
	e, _ := newOpenAITest(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		openAIWriteVectors(w, openAIReadRequest(t, r), 8, false)
	}, nil)
	got, err := e.Embed(context.Background(), nil)
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("no texts: %v, %v; want an empty result", got, err)
	}
	for _, blank := range []string{"", " ", "\n\t"} {
		_, err := e.Embed(context.Background(), []string{"fine", blank, "fine"})
		if !errors.Is(err, panther.ErrInvalid) || !strings.Contains(err.Error(), "input 1 is empty") {
			t.Fatalf("text %q: got %v, want an invalid-input error naming input 1", blank, err)
		}
	}
	if calls.Load() != 0 {
		t.Errorf("%d requests for invalid input", calls.Load())
	}
}

func TestOpenAITooLong(t *testing.T) {
	isLong := func(s string) bool { return strings.HasPrefix(s, "LONG") }
	texts := openAITexts(40)
	texts[27] = "LONG " + texts[27]
	tests := []struct {
		name    string
		texts   []string
		batch   int
		handler func(t *testing.T, w http.ResponseWriter, req openAITestRequest)
		// wantIndex is the input to blame, or -1 when the embedding succeeds.
		wantIndex int
		maxCalls  int
	}{
		{
			name: "OpenAI names the input", texts: texts, batch: 16, wantIndex: 27, maxCalls: 3,
			handler: func(t *testing.T, w http.ResponseWriter, req openAITestRequest) {
				for i, s := range req.Input {
					if isLong(s) {
						openAIWriteError(w, 400, fmt.Sprintf("Invalid 'input[%d]': maximum context length is 8192 tokens.", i), "invalid_request_error", nil)
						return
					}
				}
				openAIWriteVectors(w, req, 8, true)
			},
		},
		{
			name: "Ollama does not, so the batch is halved", texts: texts, batch: 16, wantIndex: 27, maxCalls: 3 + 2*4,
			handler: func(t *testing.T, w http.ResponseWriter, req openAITestRequest) {
				for _, s := range req.Input {
					if isLong(s) {
						w.WriteHeader(400)
						fmt.Fprint(w, `{"error":"the input length exceeds the context length"}`)
						return
					}
				}
				openAIWriteVectors(w, req, 8, true)
			},
		},
		{
			name: "llama.cpp answers 500, not retried", texts: texts, batch: 64, wantIndex: 27, maxCalls: 1 + 2*6,
			handler: func(t *testing.T, w http.ResponseWriter, req openAITestRequest) {
				for _, s := range req.Input {
					if isLong(s) {
						openAIWriteError(w, 500, "input is too large to process. increase the physical batch size", "server_error", 500)
						return
					}
				}
				openAIWriteVectors(w, req, 8, true)
			},
		},
		{
			name: "a per-request token cap is met by smaller batches", texts: openAITexts(40), batch: 40, wantIndex: -1, maxCalls: 1 + 2 + 4 + 8,
			handler: func(t *testing.T, w http.ResponseWriter, req openAITestRequest) {
				if len(req.Input) > 5 {
					openAIWriteError(w, 400, "Requested 400000 tokens, max 300000 tokens per request", "max_tokens_per_request", nil)
					return
				}
				openAIWriteVectors(w, req, 8, true)
			},
		},
		{
			name: "413 from a proxy", texts: openAITexts(8), batch: 8, wantIndex: -1, maxCalls: 3,
			handler: func(t *testing.T, w http.ResponseWriter, req openAITestRequest) {
				if len(req.Input) > 4 {
					w.WriteHeader(413)
					fmt.Fprint(w, "<html>Request Entity Too Large</html>")
					return
				}
				openAIWriteVectors(w, req, 8, true)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			e, sleeps := newOpenAITest(t, func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				tt.handler(t, w, openAIReadRequest(t, r))
			}, func(o *OpenAIOptions) { o.BatchSize = tt.batch; o.Concurrency = 1 })
			got, err := e.Embed(context.Background(), tt.texts)
			if tt.wantIndex < 0 {
				if err != nil {
					t.Fatal(err)
				}
				openAICheckVectors(t, tt.texts, got, 8)
			} else {
				var tl *OpenAIInputTooLongError
				if !errors.As(err, &tl) || tl.Index != tt.wantIndex || !errors.Is(err, panther.ErrInvalid) ||
					!strings.Contains(err.Error(), fmt.Sprintf("input %d is too long", tt.wantIndex)) ||
					!strings.Contains(err.Error(), "openai:test-embed") {
					t.Fatalf("got %v, want input %d blamed", err, tt.wantIndex)
				}
			}
			if int(calls.Load()) > tt.maxCalls {
				t.Errorf("%d requests, want at most %d", calls.Load(), tt.maxCalls)
			}
			if w := sleeps.get(); len(w) != 0 {
				t.Errorf("retried a too-long input: waits %v", w)
			}
		})
	}
}

func TestOpenAIErrorMessageShapes(t *testing.T) {
	tests := []struct{ body, msg, code string }{
		{`{"error":{"message":"bad","type":"invalid_request_error","code":"invalid_api_key"}}`, "bad", "invalid_api_key"},
		{`{"error":{"message":"bad","type":"t","code":400}}`, "bad", "400"},
		{`{"error":{"type":"only_type","code":null}}`, "only_type", ""},
		{`{"error":"Input validation error","error_type":"Validation"}`, "Input validation error", ""},
		{`{"object":"error","message":"vllm says","type":"BadRequestError","code":400}`, "vllm says", "400"},
		{`{"detail":"Not Found"}`, "Not Found", ""},
		{`{"detail":[{"msg":"field required"}]}`, `[{"msg":"field required"}]`, ""},
		{`plain text`, "plain text", ""},
	}
	for _, tt := range tests {
		msg, code := openAIErrorMessage([]byte(tt.body))
		if msg != tt.msg || code != tt.code {
			t.Errorf("%s: got %q, %q; want %q, %q", tt.body, msg, code, tt.msg, tt.code)
		}
	}
}

func TestOpenAIClean(t *testing.T) {
	got := httpx.CleanText("a\n\n\tb \x00 c\xff" + strings.Repeat("x", 400))
	if !strings.HasPrefix(got, "a b c\uFFFDx") || !strings.HasSuffix(got, "…") || len([]rune(got)) != len("a b c")+1+296+1 {
		t.Errorf("got %q", got)
	}
}

// FuzzOpenAIResponse feeds the response decoder arbitrary bodies: it must never panic, and whatever
// it accepts must be exactly n finite vectors of dims floats.
func FuzzOpenAIResponse(f *testing.F) {
	f.Add([]byte(`{"object":"list","data":[{"object":"embedding","index":1,"embedding":[0.5,-1e-3,2]},{"object":"embedding","index":0,"embedding":[1,2,3]}],"model":"m","usage":{"prompt_tokens":2,"total_tokens":2}}`), 2, 3)
	f.Add([]byte(`{"data":[{"index":0,"embedding":"AACAPwAAAEAAAEBA"}]}`), 1, 3)
	f.Add([]byte(`{"data":[{"index":0,"embedding":[1,null,3]}]}`), 1, 3)
	f.Add([]byte(`{"error":{"message":"x"}}`), 1, 3)
	f.Add([]byte(`[]`), 0, 1)
	f.Fuzz(func(t *testing.T, body []byte, n, dims int) {
		if n < 0 || n > 64 || dims <= 0 || dims > 64 {
			return
		}
		vecs, err := openAIDecodeResponse(body, n, dims)
		if err != nil {
			if vecs != nil {
				t.Fatal("vectors returned with an error")
			}
			return
		}
		if len(vecs) != n {
			t.Fatalf("%d vectors for %d inputs", len(vecs), n)
		}
		for i, v := range vecs {
			if len(v) != dims || cap(v) != dims {
				t.Fatalf("vector %d: len %d cap %d, want %d", i, len(v), cap(v), dims)
			}
			for _, x := range v {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					t.Fatalf("vector %d holds %v", i, x)
				}
			}
		}
	})
}

func TestOpenAIIsTooLong(t *testing.T) {
	tests := []struct {
		status int
		msg    string
		want   bool
	}{
		{400, "This model's maximum context length is 8192 tokens, however you requested 8610 tokens", true},
		{400, "Invalid 'input[3]': maximum context length is 8192 tokens.", true},
		{400, "the input length exceeds the context length", true},
		{500, "input is too large to process. increase the physical batch size", true},
		{400, "Illegal param: prefill 744 tokens exceed n_ctx_per_seq", true},
		{413, "", true},
		{422, "Input validation error: `inputs` must have less than 512 tokens. Given: 600", true},
		{400, "Requested 400000 tokens, max 300000 tokens per request", true},
		{400, "This model does not support specifying dimensions.", false},
		{400, "dimensions value too large", false},
		{500, "CUDA out of memory", false},
		{503, "context length exceeded", false}, // a 503 is worth retrying whatever it says
	}
	for _, tt := range tests {
		if got := openAIIsTooLong(tt.status, tt.msg); got != tt.want {
			t.Errorf("%d %q: %v, want %v", tt.status, tt.msg, got, tt.want)
		}
	}
}
