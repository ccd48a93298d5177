package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"panther"
	"panther/agent"
	"panther/crawl"
	"panther/kb"
	"panther/llm"
	"panther/sqlite"
)

// value returns the value of the series of family name whose labels include want (name, value
// pairs): a counter's or gauge's value, a histogram's sample count.
func value(t *testing.T, reg *prometheus.Registry, name string, want ...string) (float64, bool) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(want); i += 2 {
				if labels[want[i]] != want[i+1] {
					continue series
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), true
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue(), true
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func wantValue(t *testing.T, reg *prometheus.Registry, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := value(t, reg, name, labels...)
	if !ok {
		t.Errorf("%s%v: no such series", name, labels)
		return
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func newMetrics(t *testing.T, opts MetricsOptions) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, reg
}

// chatServer answers OpenAI chat completions: 12 prompt and 5 completion tokens, or a 400 for the
// model "refused".
func chatServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model string `json:"model"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if req.Model == "refused" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":{"message":"bad request","type":"invalid_request_error"}}`)
			return
		}
		fmt.Fprint(w, `{"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":12,"completion_tokens":5}}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func openAI(t *testing.T, srv *httptest.Server) panther.Model {
	t.Helper()
	c, err := llm.NewOpenAI(llm.OpenAIOptions{BaseURL: srv.URL + "/v1", APIKey: "sk-test", Model: "glm-4.6", Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestInstrumentModel(t *testing.T) {
	const secret = "sk-live-0123456789abcdef"
	m, reg := newMetrics(t, MetricsOptions{Redactor: NewRedactor(secret)})
	model, err := m.InstrumentModel("zai", openAI(t, chatServer(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	msgs := []panther.Message{{Role: panther.RoleUser, Content: "hello"}}
	calls := []struct {
		model   string
		wantErr bool
	}{
		{"glm-4.6", false},
		{"glm-4.6", false},
		{"refused", true},
		{secret, false},            // a secret must never become a label
		{"bad model\nname", false}, // nor free text
		{"", false},                // the client's default
	}
	for _, c := range calls {
		_, err := model.Complete(ctx, panther.ModelRequest{Model: c.model, Messages: msgs}, nil)
		if (err != nil) != c.wantErr {
			t.Fatalf("model %q: err = %v, want error %v", c.model, err, c.wantErr)
		}
	}
	wantValue(t, reg, 2, "panther_llm_requests_total", "provider", "zai", "model", "glm-4.6")
	wantValue(t, reg, 1, "panther_llm_requests_total", "provider", "zai", "model", "refused")
	wantValue(t, reg, 2, "panther_llm_requests_total", "provider", "zai", "model", "other")
	wantValue(t, reg, 1, "panther_llm_requests_total", "provider", "zai", "model", "default")
	wantValue(t, reg, 1, "panther_llm_errors_total", "provider", "zai", "model", "refused", "kind", "invalid")
	wantValue(t, reg, 24, "panther_llm_tokens_total", "model", "glm-4.6", "direction", "input")
	wantValue(t, reg, 10, "panther_llm_tokens_total", "model", "glm-4.6", "direction", "output")
	wantValue(t, reg, 2, "panther_llm_request_duration_seconds", "provider", "zai", "model", "glm-4.6")
	if _, ok := value(t, reg, "panther_llm_errors_total", "model", "glm-4.6"); ok {
		t.Error("successful calls counted as errors")
	}
	assertNoSecret(t, reg, secret)

	if _, err := m.InstrumentModel("Z AI", model); err == nil || !strings.Contains(err.Error(), "provider name") {
		t.Errorf("bad provider name: err = %v, want an error naming it", err)
	}
	var off *Metrics
	if got, err := off.InstrumentModel("zai", model); err != nil || got != model {
		t.Errorf("nil Metrics: got %v, %v; want the model itself", got, err)
	}
}

// assertNoSecret renders every metric as /metrics would serve it and looks for secret.
func assertNoSecret(t *testing.T, reg *prometheus.Registry, secret string) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(buf.String(), secret) {
		t.Fatalf("a secret reached the metrics:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "panther_") {
		t.Fatal("no metrics rendered: the check above proves nothing")
	}
}

func openKB(t *testing.T) (*kb.Service, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := kb.New(db, kb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return svc, db
}

func TestInstrumentSearcher(t *testing.T) {
	svc, _ := openKB(t)
	ctx := context.Background()
	md := "# Walrus\n\nThe walrus is a large marine mammal."
	doc := panther.Document{URL: "https://example.com/walrus", Title: "Walrus", Markdown: md,
		Validators: panther.Validators{ContentHash: "h1"}, FetchedAt: time.Now()}
	if _, err := svc.Ingest(ctx, doc, []panther.Section{{Heading: []string{"Walrus"}, Level: 1, Anchor: "walrus", Markdown: md}}); err != nil {
		t.Fatal(err)
	}
	m, reg := newMetrics(t, MetricsOptions{})
	s, err := m.InstrumentSearcher(svc)
	if err != nil {
		t.Fatal(err)
	}
	if s.DefaultMode() != panther.ModeLexical {
		t.Fatalf("DefaultMode = %q, want the service's (lexical without an embedder)", s.DefaultMode())
	}
	searches := []struct {
		q       panther.Query
		wantErr bool
	}{
		{panther.Query{Text: "walrus"}, false},
		{panther.Query{Text: "walrus", Mode: panther.ModeLexical}, false},
		{panther.Query{Text: "  "}, true},
		{panther.Query{Text: "walrus", Mode: panther.ModeVector}, true}, // no embedder
	}
	for _, c := range searches {
		hits, err := s.Search(ctx, c.q)
		if (err != nil) != c.wantErr {
			t.Fatalf("search %+v: err = %v, want error %v", c.q, err, c.wantErr)
		}
		if err == nil && len(hits) != 1 {
			t.Fatalf("search %+v: %d hits, want 1", c.q, len(hits))
		}
	}
	wantValue(t, reg, 3, "panther_kb_search_duration_seconds", "mode", "lexical")
	wantValue(t, reg, 1, "panther_kb_search_duration_seconds", "mode", "vector")
	wantValue(t, reg, 1, "panther_kb_search_errors_total", "mode", "lexical", "kind", "invalid")
	if n, _ := value(t, reg, "panther_kb_search_errors_total", "mode", "vector"); n != 1 {
		t.Errorf("vector search without embedder: %v errors counted, want 1", n)
	}

	// A nil Metrics still searches.
	var off *Metrics
	s2, err := off.InstrumentSearcher(svc)
	if err != nil {
		t.Fatal(err)
	}
	if hits, err := s2.Search(ctx, panther.Query{Text: "walrus"}); err != nil || len(hits) != 1 {
		t.Fatalf("nil Metrics search: %d hits, %v", len(hits), err)
	}
}

// TestCrawlInstruments runs a real crawl of a small site through the index and transport wrappers
// and records its summary.
func TestCrawlInstruments(t *testing.T) {
	pages := map[string]string{
		"/docs/":       `<html><head><title>Docs</title></head><body><main><h1>Docs</h1><p>Start here with the guide.</p><a href="a.html">A</a> <a href="b.html">B</a> <a href="missing.html">gone</a></main></body></html>`,
		"/docs/a.html": `<html><head><title>A</title></head><body><main><h1>Alpha</h1><p>Alpha explains the first thing in detail.</p></main></body></html>`,
		"/docs/b.html": `<html><head><title>B</title></head><body><main><h1>Beta</h1><p>Beta explains the second thing in detail.</p></main></body></html>`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, body)
	}))
	defer srv.Close()

	svc, db := openKB(t)
	m, reg := newMetrics(t, MetricsOptions{})
	ix, err := m.InstrumentIndex(svc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := crawl.New(db, ix, crawl.Options{MaxDepth: -1, Transport: m.InstrumentTransport(nil)})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := c.Run(context.Background(), srv.URL+"/docs/")
	m.CrawlSummary(sum, err)
	if err != nil {
		t.Fatal(err)
	}
	if sum.New != 3 || sum.Failed["http 404"] != 1 {
		t.Fatalf("crawl: %s; want 3 new pages and one 404", sum)
	}
	wantValue(t, reg, 1, "panther_crawl_runs_total", "state", "done")
	wantValue(t, reg, 3, "panther_crawl_page_outcomes_total", "outcome", "new")
	wantValue(t, reg, 1, "panther_crawl_page_outcomes_total", "outcome", "failed", "reason", "http-4xx")
	wantValue(t, reg, 3, "panther_index_duration_seconds", "outcome", "new")
	// Three pages, and robots.txt and the missing page answered 404 (sitemap probes may add more).
	if n, _ := value(t, reg, "panther_crawl_fetch_duration_seconds", "class", "2xx"); n != 3 {
		t.Errorf("2xx fetches timed: %v, want 3", n)
	}
	if n, _ := value(t, reg, "panther_crawl_fetch_duration_seconds", "class", "4xx"); n < 2 {
		t.Errorf("4xx fetches timed: %v, want at least 2", n)
	}

	// A second crawl finds everything unchanged.
	sum, err = c.Run(context.Background(), srv.URL+"/docs/")
	m.CrawlSummary(sum, err)
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, reg, 2, "panther_crawl_runs_total", "state", "done")
	if n, _ := value(t, reg, "panther_crawl_page_outcomes_total", "outcome", "unchanged"); n != float64(sum.Unchanged) || n == 0 {
		t.Errorf("unchanged pages: %v, want %d (and some)", n, sum.Unchanged)
	}
}

func TestCrawlRunsAndReasons(t *testing.T) {
	m, reg := newMetrics(t, MetricsOptions{})
	m.CrawlSummary(crawl.Summary{Skipped: map[string]int{"robots": 2, "some new reason": 1}, Failed: map[string]int{"http 503": 4, "http 5": 1}}, errors.New("boom"))
	m.CrawlSummary(crawl.Summary{New: 1}, fmt.Errorf("run: %w", context.Canceled))
	jobs := []crawl.Job{
		{State: crawl.JobDone, Summary: &crawl.JobSummary{Changed: 2, Gone: 1}},
		{State: crawl.JobFailed},
		{State: crawl.JobCancelled, Summary: &crawl.JobSummary{Duplicate: 3}},
	}
	for _, j := range jobs {
		m.CrawlJob(j)
	}
	tests := []struct {
		want   float64
		name   string
		labels []string
	}{
		{2, "panther_crawl_runs_total", []string{"state", "failed"}},
		{2, "panther_crawl_runs_total", []string{"state", "cancelled"}},
		{1, "panther_crawl_runs_total", []string{"state", "done"}},
		{2, "panther_crawl_page_outcomes_total", []string{"outcome", "skipped", "reason", "robots"}},
		{1, "panther_crawl_page_outcomes_total", []string{"outcome", "skipped", "reason", "other"}},
		{4, "panther_crawl_page_outcomes_total", []string{"outcome", "failed", "reason", "http-5xx"}},
		{1, "panther_crawl_page_outcomes_total", []string{"outcome", "failed", "reason", "other"}},
		{1, "panther_crawl_page_outcomes_total", []string{"outcome", "new"}},
		{2, "panther_crawl_page_outcomes_total", []string{"outcome", "changed"}},
		{1, "panther_crawl_page_outcomes_total", []string{"outcome", "gone"}},
		{3, "panther_crawl_page_outcomes_total", []string{"outcome", "duplicate"}},
	}
	for _, tt := range tests {
		wantValue(t, reg, tt.want, tt.name, tt.labels...)
	}
	if n := testutil.CollectAndCount(m.crawlPages.vec); n != 8 {
		t.Errorf("%d page outcome series, want 8 (zero counts add none)", n)
	}
}

func TestSubagentOutcomes(t *testing.T) {
	m, reg := newMetrics(t, MetricsOptions{})
	reports := []agent.SubagentReport{
		{Result: agent.Result{StoppedBy: agent.StoppedAnswer}},
		{Result: agent.Result{StoppedBy: agent.StoppedAnswer}},
		{Result: agent.Result{StoppedBy: agent.StoppedSteps}},
		{Result: agent.Result{StoppedBy: agent.StoppedTokens}},
		{Result: agent.Result{StoppedBy: agent.StoppedTime}},
		{Result: agent.Result{StoppedBy: agent.StoppedCancelled}, Err: context.Canceled},
		{Result: agent.Result{StoppedBy: "error"}, Err: errors.New("model failed: secret-ish text")},
		{Result: agent.Result{StoppedBy: "something new"}},
	}
	for _, r := range reports {
		m.Subagent(r)
	}
	for outcome, want := range map[string]float64{"answer": 2, "steps": 1, "tokens": 1, "time": 1, "cancelled": 1, "error": 1, "other": 1} {
		wantValue(t, reg, want, "panther_subagents_total", "outcome", outcome)
	}
	var off *Metrics
	off.Subagent(reports[0]) // must not panic
}

func TestSampledGauges(t *testing.T) {
	var logs bytes.Buffer
	log, err := NewLogger(&logs, nil, LogOptions{Format: "text"})
	if err != nil {
		t.Fatal(err)
	}
	_, db := openKB(t)
	st, err := db.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.SizeBytes <= 0 {
		t.Fatalf("store size %d: the test needs a real size", st.SizeBytes)
	}
	calls := 0
	m, reg := newMetrics(t, MetricsOptions{
		StoreSize: func(ctx context.Context) (int64, error) {
			calls++
			if _, ok := ctx.Deadline(); !ok {
				return 0, errors.New("sampled without a deadline")
			}
			st, err := db.Stats(ctx)
			return st.SizeBytes, err
		},
		QueueDepth: func(context.Context) (int64, error) { return 0, errors.New("queue unreachable") },
		Logger:     log,
	})
	wantValue(t, reg, float64(st.SizeBytes), "panther_store_size_bytes")
	if _, ok := value(t, reg, "panther_queue_depth"); ok {
		t.Error("a failed sample still produced a queue depth")
	}
	// Each gather samples again and counts the failure (the registry may collect the counter
	// before or after the gauges in one gather, so it is read directly); the scrape never fails.
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("a failed sample failed the scrape: %v", err)
	}
	if n := testutil.ToFloat64(m.sampleErrors.vec.WithLabelValues("queue_depth")); n != 3 {
		t.Errorf("%v sample errors counted over 3 gathers, want 3", n)
	}
	if calls != 3 {
		t.Errorf("store size sampled %d times over 3 gathers, want 3", calls)
	}
	if !strings.Contains(logs.String(), "queue unreachable") {
		t.Errorf("sampling failure not logged: %q", logs.String())
	}
}

func TestNewMetricsRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name   string
		opts   MetricsOptions
		getenv func(string) string
		want   string
	}{
		{"role", MetricsOptions{Role: "laptop"}, nil, "role"},
		{"owner", MetricsOptions{Owner: "alice smith"}, nil, "owner"},
		{"tag syntax", MetricsOptions{Tags: []string{"team|docs"}}, nil, "tag"},
		{"tag starting with a digit", MetricsOptions{Tags: []string{"1team:docs"}}, nil, "tag"},
		{"credential tag", MetricsOptions{Tags: []string{"api_key:abc"}}, nil, "credential"},
		{"DD_TAGS", MetricsOptions{}, env("DD_TAGS", "env:prod bad#tag"), "DD_TAGS"},
		{"address", MetricsOptions{StatsdAddr: "localhost"}, nil, "statsd address"},
		{"port", MetricsOptions{StatsdAddr: "127.0.0.1:99999"}, nil, "port"},
		{"socket path", MetricsOptions{StatsdAddr: "unix://dsd.socket"}, nil, "absolute socket path"},
		{"sample timeout", MetricsOptions{SampleTimeout: -1}, nil, "sample timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewMetrics(prometheus.NewRegistry(), tt.getenv, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %q", err, tt.want)
			}
		})
	}
	// httpapi's names are its own: registering on the same registry must not collide with them.
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg, nil, MetricsOptions{GoRuntime: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg, nil, MetricsOptions{}); err == nil {
		t.Fatal("registering twice on one registry: want an error")
	}
}

func TestParseDDTags(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", ""},
		{"env:prod team:docs", "env:prod,team:docs"},
		{"env:prod,team:docs", "env:prod,team:docs"},
		{" env:prod ,  production\t", "env:prod,production"},
	}
	for _, tt := range tests {
		got, err := ParseDDTags(tt.in)
		if err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		if strings.Join(got, ",") != tt.want {
			t.Errorf("ParseDDTags(%q) = %v, want %s", tt.in, got, tt.want)
		}
	}
}

func TestErrorKind(t *testing.T) {
	tests := map[error]string{
		context.Canceled: "cancelled",
		fmt.Errorf("x: %w", context.DeadlineExceeded):          "timeout",
		panther.Invalidf("bad"):                                "invalid",
		panther.NotFoundf("gone"):                              "not_found",
		fmt.Errorf("x: %w", panther.ErrUnavailable):            "unavailable",
		fmt.Errorf("x: %w", panther.ErrConflict):               "conflict",
		errors.New("the key sk-123 was refused by the server"): "other",
	}
	for err, want := range tests {
		if got := errorKind(err); got != want {
			t.Errorf("errorKind(%v) = %q, want %q", err, got, want)
		}
	}
}
