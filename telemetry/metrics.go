// Package telemetry is panther's observability: structured logs (log/slog, text on a terminal and
// JSON under systemd, with secrets redacted), Prometheus metrics, and the same events sent to a
// Datadog agent over DogStatsD.
//
// It instruments the other packages from the outside, through the interfaces and hooks they already
// have: a panther.Model wrapper for LLM calls, a Searcher wrapper for searches, a crawl.Index wrapper
// and an http.RoundTripper wrapper for crawls, and methods shaped like crawl.ManagerOptions.AfterCrawl
// and agent.Runtime.OnSubagent. Every label comes from a fixed set (provider names checked like the
// configuration checks them, search modes, outcomes, error kinds), never from free text, so that no
// secret and no unbounded cardinality can reach a metric.
//
// A nil *Metrics is valid and records nothing, so callers need not test whether telemetry is on.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"panther"
)

// MetricsOptions configure Metrics (the [telemetry] table's statsd_addr, role, owner and tags).
// Zero values take the defaults.
type MetricsOptions struct {
	// StatsdAddr is the Datadog agent's DogStatsD address, "host:port" (UDP) or
	// "unix:///path/to/dsd.socket"; empty sends nothing.
	StatsdAddr string
	// Role tags every DogStatsD metric role:workstation or role:server; empty adds no tag.
	Role string
	// Owner tags every DogStatsD metric owner:<Owner>; empty adds no tag.
	Owner string
	// Tags are more global DogStatsD tags, "key:value" or "key". DD_TAGS, when set, adds its own.
	Tags []string
	// StoreSize returns the store's size in bytes; QueueDepth the number of background jobs waiting.
	// Each is sampled when /metrics is scraped and by Report, one call at a time, under
	// SampleTimeout. Nil leaves the gauge out.
	StoreSize  func(ctx context.Context) (int64, error)
	QueueDepth func(ctx context.Context) (int64, error)
	// SampleTimeout bounds one StoreSize or QueueDepth call (DefaultSampleTimeout).
	SampleTimeout time.Duration
	// GoRuntime also registers the Go runtime and process collectors (go_*, process_*).
	GoRuntime bool
	// Redactor, when set, keeps a model name that is a registered secret out of the labels.
	Redactor *Redactor
	// Logger receives sampling failures at warn; nil discards.
	Logger *slog.Logger
}

// Defaults of MetricsOptions and Report.
const (
	DefaultSampleTimeout  = 2 * time.Second
	DefaultReportInterval = 15 * time.Second
	// maxModelLabels bounds the distinct model names one Metrics labels; later ones become "other".
	maxModelLabels = 32
	maxModelLabel  = 100
)

// Roles a deployment may have.
const (
	RoleWorkstation = "workstation"
	RoleServer      = "server"
)

// Metrics are panther's instruments, registered on one Prometheus registry and mirrored to
// DogStatsD when an address is configured. It is safe for concurrent use.
type Metrics struct {
	dd       dogstatsd // nil without StatsdAddr
	redactor *Redactor
	log      *slog.Logger

	llmRequests, llmErrors, llmTokens counterVec
	llmLatency                        histogramVec
	searchLatency                     histogramVec
	searchErrors                      counterVec
	crawlPages, crawlRuns             counterVec
	fetchLatency, indexLatency        histogramVec
	subagents                         counterVec
	sampleErrors                      counterVec
	gauges                            *sampledGauges

	mu     sync.Mutex
	models map[string]bool // model names given a label of their own
}

// NewMetrics creates panther's instruments on reg (nil: a private registry, for a command that
// only sends to DogStatsD). getenv (os.Getenv in production; nil reads nothing) supplies DD_TAGS.
// Call Close when done, so that the last DogStatsD datagrams are sent.
func NewMetrics(reg *prometheus.Registry, getenv func(string) string, opts MetricsOptions) (*Metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if opts.SampleTimeout < 0 {
		return nil, fmt.Errorf("telemetry: sample timeout must not be negative, got %s", opts.SampleTimeout)
	}
	if opts.SampleTimeout == 0 {
		opts.SampleTimeout = DefaultSampleTimeout
	}
	tags, err := globalTags(opts, getenv)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{redactor: opts.Redactor, log: log, models: map[string]bool{}}

	llmBuckets := []float64{.25, .5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300}
	searchBuckets := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	fetchBuckets := []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	indexBuckets := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
	m.llmRequests = newCounter("panther_llm_requests_total", "llm.requests",
		"Model calls, by provider and model.", "provider", "model")
	m.llmErrors = newCounter("panther_llm_errors_total", "llm.errors",
		"Model calls that failed, by provider, model and error kind.", "provider", "model", "kind")
	m.llmTokens = newCounter("panther_llm_tokens_total", "llm.tokens",
		"Tokens the providers reported, by provider, model and direction (input or output).", "provider", "model", "direction")
	m.llmLatency = newHistogram("panther_llm_request_duration_seconds", "llm.request.duration",
		"Time a model call took, retries and streaming included, by provider and model.", llmBuckets, "provider", "model")
	// httpapi's panther_search_duration_seconds times the HTTP API's searches; this one times every
	// search of the knowledge base service, whichever face asked (agents, MCP, SSH, HTTP).
	m.searchLatency = newHistogram("panther_kb_search_duration_seconds", "kb.search.duration",
		"Time the knowledge base took to answer a search, failed ones included, by ranking mode.", searchBuckets, "mode")
	m.searchErrors = newCounter("panther_kb_search_errors_total", "kb.search.errors",
		"Searches of the knowledge base that failed, by ranking mode and error kind.", "mode", "kind")
	// httpapi's panther_crawl_pages_total counts background crawls' pages as done, failed or
	// skipped while they run; this one splits the finished crawls' pages by what happened to them.
	m.crawlPages = newCounter("panther_crawl_page_outcomes_total", "crawl.pages",
		"Pages of finished crawls by outcome (new, changed, unchanged, duplicate, gone, skipped, failed) and, for skipped and failed ones, reason.", "outcome", "reason")
	m.crawlRuns = newCounter("panther_crawl_runs_total", "crawl.runs",
		"Crawls that ended, by final state (done, failed, cancelled).", "state")
	m.fetchLatency = newHistogram("panther_crawl_fetch_duration_seconds", "crawl.fetch.duration",
		"Time from sending a crawl request (page, robots.txt, sitemap, redirect hop, retry) to the end of its body, by status class.", fetchBuckets, "class")
	m.indexLatency = newHistogram("panther_index_duration_seconds", "index.duration",
		"Time to store a fetched page in the knowledge base (chunk, store, index), by outcome.", indexBuckets, "outcome")
	m.subagents = newCounter("panther_subagents_total", "subagents",
		"Sub-agents that finished, by outcome (answer, steps, tokens, time, cancelled, error).", "outcome")
	m.sampleErrors = newCounter("panther_telemetry_sample_errors_total", "telemetry.sample_errors",
		"Failed samples of a gauge read from a service (store size, queue depth), by gauge.", "gauge")
	m.gauges = &sampledGauges{timeout: opts.SampleTimeout, m: m}
	if opts.StoreSize != nil {
		m.gauges.add("panther_store_size_bytes", "store.size_bytes", "Size of the store in bytes.", "store_size", opts.StoreSize)
	}
	if opts.QueueDepth != nil {
		m.gauges.add("panther_queue_depth", "queue.depth", "Background jobs waiting to run.", "queue_depth", opts.QueueDepth)
	}

	cs := []prometheus.Collector{
		m.llmRequests.vec, m.llmErrors.vec, m.llmTokens.vec, m.llmLatency.vec,
		m.searchLatency.vec, m.searchErrors.vec,
		m.crawlPages.vec, m.crawlRuns.vec, m.fetchLatency.vec, m.indexLatency.vec,
		m.subagents.vec, m.sampleErrors.vec, m.gauges,
	}
	if opts.GoRuntime {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("telemetry: register metrics: %w", err)
		}
	}
	if opts.StatsdAddr != "" {
		dd, err := newDogStatsD(opts.StatsdAddr, tags)
		if err != nil {
			return nil, err
		}
		m.dd = dd
	}
	return m, nil
}

// Close sends what DogStatsD still buffers and closes its client.
func (m *Metrics) Close() error {
	if m == nil || m.dd == nil {
		return nil
	}
	if err := m.dd.Close(); err != nil {
		return fmt.Errorf("telemetry: close dogstatsd client: %w", err)
	}
	return nil
}

// Flush sends what DogStatsD buffers now, for a short-lived command about to exit.
func (m *Metrics) Flush() error {
	if m == nil || m.dd == nil {
		return nil
	}
	if err := m.dd.Flush(); err != nil {
		return fmt.Errorf("telemetry: flush dogstatsd client: %w", err)
	}
	return nil
}

// Report samples the store size and queue depth every interval (DefaultReportInterval when 0) and
// sends them to DogStatsD, until ctx ends; Prometheus needs no such loop, it samples on scrape.
// Without a DogStatsD address or anything to sample it returns at once.
func (m *Metrics) Report(ctx context.Context, interval time.Duration) {
	if m == nil || m.dd == nil || len(m.gauges.gauges) == 0 {
		return
	}
	if interval <= 0 {
		interval = DefaultReportInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		m.gauges.sample(ctx, func(g *sampledGauge, v int64) {
			_ = m.dd.Gauge(g.dd, float64(v), nil, 1)
		})
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// counterVec is a Prometheus counter and its DogStatsD twin.
type counterVec struct {
	vec    *prometheus.CounterVec
	dd     string
	labels []string
}

func newCounter(name, dd, help string, labels ...string) counterVec {
	return counterVec{vec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels), dd: dd, labels: labels}
}

func (m *Metrics) add(c counterVec, n int64, values ...string) {
	if n <= 0 {
		return
	}
	c.vec.WithLabelValues(values...).Add(float64(n))
	if m.dd != nil {
		_ = m.dd.Count(c.dd, n, ddTags(c.labels, values), 1)
	}
}

// histogramVec is a Prometheus histogram and its DogStatsD twin, a distribution in seconds.
type histogramVec struct {
	vec    *prometheus.HistogramVec
	dd     string
	labels []string
}

func newHistogram(name, dd, help string, buckets []float64, labels ...string) histogramVec {
	return histogramVec{
		vec: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels),
		dd:  dd, labels: labels,
	}
}

func (m *Metrics) observe(h histogramVec, d time.Duration, values ...string) {
	h.vec.WithLabelValues(values...).Observe(d.Seconds())
	if m.dd != nil {
		_ = m.dd.Distribution(h.dd, d.Seconds(), ddTags(h.labels, values), 1)
	}
}

// ddTags pairs label names with values; an empty value adds no tag.
func ddTags(labels, values []string) []string {
	tags := make([]string, 0, len(labels))
	for i, l := range labels {
		if values[i] != "" {
			tags = append(tags, l+":"+values[i])
		}
	}
	return tags
}

// sampledGauges reads gauges from services at scrape time. It is one collector rather than
// GaugeFuncs because a sample does I/O: it needs a context with a deadline, may fail (and a failed
// sample must drop its gauge, not fail the whole scrape), and must not run twice at once when
// scrapes and Report overlap.
type sampledGauges struct {
	mu      sync.Mutex // one sampling at a time
	timeout time.Duration
	gauges  []*sampledGauge
	m       *Metrics
}

type sampledGauge struct {
	desc  *prometheus.Desc
	dd    string
	label string
	fn    func(ctx context.Context) (int64, error)
}

func (s *sampledGauges) add(name, dd, help, label string, fn func(ctx context.Context) (int64, error)) {
	s.gauges = append(s.gauges, &sampledGauge{desc: prometheus.NewDesc(name, help, nil, nil), dd: dd, label: label, fn: fn})
}

func (s *sampledGauges) Describe(ch chan<- *prometheus.Desc) {
	for _, g := range s.gauges {
		ch <- g.desc
	}
}

func (s *sampledGauges) Collect(ch chan<- prometheus.Metric) {
	s.sample(context.Background(), func(g *sampledGauge, v int64) {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(v))
	})
}

func (s *sampledGauges) sample(ctx context.Context, emit func(*sampledGauge, int64)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.gauges {
		if ctx.Err() != nil {
			return
		}
		v, err := s.call(ctx, g)
		if err != nil {
			s.m.add(s.m.sampleErrors, 1, g.label)
			s.m.log.Warn("telemetry: sample gauge", "gauge", g.label, "err", err)
			continue
		}
		emit(g, v)
	}
}

func (s *sampledGauges) call(ctx context.Context, g *sampledGauge) (v int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	defer func() {
		// A panicking sampler must not take the scrape, or the process, down with it.
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return g.fn(ctx)
}

// errorKind sorts an error into a fixed set of kinds, for labels: an error's text is never one.
func errorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, panther.ErrInvalid):
		return "invalid"
	case errors.Is(err, panther.ErrNotFound):
		return "not_found"
	case errors.Is(err, panther.ErrConflict):
		return "conflict"
	case errors.Is(err, panther.ErrUnavailable):
		return "unavailable"
	}
	return "other"
}

// providerName is how the configuration names a provider (cmd/panther checks the same).
var providerName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// modelName admits the characters model names use ("glm-4.6", "qwen2.5:7b",
// "meta-llama/Llama-3.1-8B-Instruct", "claude-sonnet-4-5@20250929").
var modelName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$`)

// modelLabel returns the label for a request's model: the name itself when it looks like a model
// name, is not a registered secret and is among the first maxModelLabels seen; "default" when the
// request names none; "other" otherwise.
func (m *Metrics) modelLabel(name string) string {
	if name == "" {
		return "default"
	}
	if len(name) > maxModelLabel || !modelName.MatchString(name) || m.redactor.IsSecret(name) {
		return "other"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.models[name] {
		return name
	}
	if len(m.models) >= maxModelLabels {
		return "other"
	}
	m.models[name] = true
	return name
}
