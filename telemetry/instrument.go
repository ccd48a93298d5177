package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"panther"
	"panther/agent"
	"panther/crawl"
)

// InstrumentModel returns next counting its calls, tokens, errors and latency under provider, the
// name the configuration gives the provider (lower-case letters, digits, - and _). A nil Metrics
// returns next itself.
func (m *Metrics) InstrumentModel(provider string, next panther.Model) (panther.Model, error) {
	if next == nil {
		return nil, errors.New("telemetry: instrument model: nil model")
	}
	if !providerName.MatchString(provider) {
		return nil, fmt.Errorf("telemetry: instrument model: provider name %q: want lower-case letters, digits, - and _", provider)
	}
	if m == nil {
		return next, nil
	}
	return &instrumentedModel{m: m, provider: provider, next: next}, nil
}

type instrumentedModel struct {
	m        *Metrics
	provider string
	next     panther.Model
}

var _ panther.Model = (*instrumentedModel)(nil)

func (im *instrumentedModel) Complete(ctx context.Context, req panther.ModelRequest, onEvent func(panther.StreamEvent)) (panther.ModelResponse, error) {
	start := time.Now()
	resp, err := im.next.Complete(ctx, req, onEvent)
	m, model := im.m, im.m.modelLabel(req.Model)
	m.observe(m.llmLatency, time.Since(start), im.provider, model)
	m.add(m.llmRequests, 1, im.provider, model)
	if err != nil {
		m.add(m.llmErrors, 1, im.provider, model, errorKind(err))
	}
	// A failed call may still report what it used before it failed; the provider bills it.
	m.add(m.llmTokens, int64(resp.Usage.InputTokens), im.provider, model, "input")
	m.add(m.llmTokens, int64(resp.Usage.OutputTokens), im.provider, model, "output")
	return resp, err
}

// Searcher is what InstrumentSearcher wraps: *kb.Service is one.
type Searcher interface {
	Search(ctx context.Context, q panther.Query) ([]panther.Hit, error)
}

// modeDefaulter is a Searcher that says which mode an empty Query.Mode means.
type modeDefaulter interface {
	DefaultMode() panther.SearchMode
}

// InstrumentedSearcher times the searches of a Searcher by ranking mode. It also has DefaultMode,
// so that it can stand in for *kb.Service wherever a face needs both (httpapi.Searcher).
type InstrumentedSearcher struct {
	m    *Metrics
	next Searcher
}

// InstrumentSearcher returns next timing its searches. A nil Metrics still returns a working
// wrapper that records nothing.
func (m *Metrics) InstrumentSearcher(next Searcher) (*InstrumentedSearcher, error) {
	if next == nil {
		return nil, errors.New("telemetry: instrument searcher: nil searcher")
	}
	return &InstrumentedSearcher{m: m, next: next}, nil
}

// Search runs the wrapped search and records its latency, and its failure if it failed.
func (s *InstrumentedSearcher) Search(ctx context.Context, q panther.Query) ([]panther.Hit, error) {
	if s.m == nil {
		return s.next.Search(ctx, q)
	}
	start := time.Now()
	hits, err := s.next.Search(ctx, q)
	mode := s.modeLabel(q.Mode)
	s.m.observe(s.m.searchLatency, time.Since(start), mode)
	if err != nil {
		s.m.add(s.m.searchErrors, 1, mode, errorKind(err))
	}
	return hits, err
}

// DefaultMode is the wrapped searcher's, or empty (the service's default) when it has none.
func (s *InstrumentedSearcher) DefaultMode() panther.SearchMode {
	if d, ok := s.next.(modeDefaulter); ok {
		return d.DefaultMode()
	}
	return ""
}

func (s *InstrumentedSearcher) modeLabel(mode panther.SearchMode) string {
	if mode == "" {
		mode = s.DefaultMode()
	}
	switch mode {
	case panther.ModeLexical, panther.ModeVector, panther.ModeHybrid:
		return string(mode)
	case "":
		return "default"
	}
	return "other"
}

// InstrumentIndex returns next timing how long each fetched page takes to be stored, by outcome
// (new, changed, unchanged, duplicate, error). Put it in crawl.New or crawl.ManagerOptions.Index.
// A nil Metrics returns next itself.
func (m *Metrics) InstrumentIndex(next crawl.Index) (crawl.Index, error) {
	if next == nil {
		return nil, errors.New("telemetry: instrument index: nil index")
	}
	if m == nil {
		return next, nil
	}
	return &instrumentedIndex{Index: next, m: m}, nil
}

// instrumentedIndex embeds the Index so that the methods it does not time pass through unchanged.
type instrumentedIndex struct {
	crawl.Index
	m *Metrics
}

func (ix *instrumentedIndex) Ingest(ctx context.Context, doc panther.Document, sections []panther.Section) (panther.IngestOutcome, error) {
	start := time.Now()
	out, err := ix.Index.Ingest(ctx, doc, sections)
	label := "error"
	if err == nil {
		label = ingestLabel(out)
	}
	ix.m.observe(ix.m.indexLatency, time.Since(start), label)
	return out, err
}

func ingestLabel(o panther.IngestOutcome) string {
	switch o {
	case panther.IngestNew, panther.IngestChanged, panther.IngestUnchanged, panther.IngestDuplicate:
		return string(o)
	}
	return "other"
}

// InstrumentTransport returns next timing each crawl request from sending it to the end of its body
// (read to EOF or closed), by status class (2xx, 3xx, 4xx, 5xx, or error when no response came).
// Put it in crawl.Options.Transport around the transport the crawler would use (serve's address
// policy transport); nil next means http.DefaultTransport. A nil Metrics returns next itself.
func (m *Metrics) InstrumentTransport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if m == nil {
		return next
	}
	return &instrumentedTransport{m: m, next: next}
}

type instrumentedTransport struct {
	m    *Metrics
	next http.RoundTripper
}

func (t *instrumentedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.done("error", start)
		return resp, err
	}
	class := statusClass(resp.StatusCode)
	if resp.Body == nil || resp.Body == http.NoBody {
		t.done(class, start)
		return resp, nil
	}
	resp.Body = &timedBody{ReadCloser: resp.Body, end: func() { t.done(class, start) }}
	return resp, nil
}

func (t *instrumentedTransport) done(class string, start time.Time) {
	t.m.observe(t.m.fetchLatency, time.Since(start), class)
}

func statusClass(code int) string {
	if code >= 100 && code < 600 {
		return fmt.Sprintf("%dxx", code/100)
	}
	return "other"
}

// timedBody calls end once, at EOF, at the first read error or at Close, whichever comes first.
type timedBody struct {
	io.ReadCloser
	once sync.Once
	end  func()
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.end)
	}
	return n, err
}

func (b *timedBody) Close() error {
	b.once.Do(b.end)
	return b.ReadCloser.Close()
}

// CrawlSummary records a crawl run: its pages by outcome, and the run as done, cancelled or
// failed as err says. Call it with what crawl.Crawler.Run returned (the CLI's crawls).
func (m *Metrics) CrawlSummary(sum crawl.Summary, err error) {
	if m == nil {
		return
	}
	state := "done"
	switch {
	case errors.Is(err, context.Canceled):
		state = "cancelled"
	case err != nil:
		state = "failed"
	}
	m.add(m.crawlRuns, 1, state)
	m.crawlPageCounts(sum.New, sum.Changed, sum.Unchanged, sum.Duplicate, sum.Gone, sum.Skipped, sum.Failed)
}

// CrawlJob records a background crawl that ended, like CrawlSummary; it has the shape of
// crawl.ManagerOptions.OnJobEnd, which the Manager calls for every job that ends.
func (m *Metrics) CrawlJob(j crawl.Job) {
	if m == nil {
		return
	}
	state := "other"
	switch j.State {
	case crawl.JobDone, crawl.JobFailed, crawl.JobCancelled:
		state = string(j.State)
	}
	m.add(m.crawlRuns, 1, state)
	if s := j.Summary; s != nil {
		m.crawlPageCounts(s.New, s.Changed, s.Unchanged, s.Duplicate, s.Gone, s.Skipped, s.Failed)
	}
}

func (m *Metrics) crawlPageCounts(newN, changed, unchanged, duplicate, gone int, skipped, failed map[string]int) {
	m.add(m.crawlPages, int64(newN), "new", "")
	m.add(m.crawlPages, int64(changed), "changed", "")
	m.add(m.crawlPages, int64(unchanged), "unchanged", "")
	m.add(m.crawlPages, int64(duplicate), "duplicate", "")
	m.add(m.crawlPages, int64(gone), "gone", "")
	for reason, n := range skipped {
		m.add(m.crawlPages, int64(n), "skipped", reasonLabel(reason))
	}
	for reason, n := range failed {
		m.add(m.crawlPages, int64(n), "failed", reasonLabel(reason))
	}
}

// crawlReasons are the reasons package crawl records; an unknown one is labelled "other", so that a
// reason crawl adds later costs detail, never a label made of free text.
var crawlReasons = map[string]bool{
	"robots": true, "robots-unavailable": true, "redirect": true, "redirect-duplicate": true,
	"redirect-out-of-scope": true, "redirect-robots": true, "too-many-redirects": true,
	"excluded": true, "content-type": true, "too-large": true, "canonical": true, "noindex": true,
	"max-pages": true, "sitemap": true, "gone": true, "timeout": true, "network": true,
	"not-found": true, "extract": true, "redirect-loop": true, "tls": true, "bad-encoding": true,
	"content-encoding": true, "max-depth": true, "url-too-long": true, "query-variants": true,
}

// reasonLabel maps a crawl reason to its label; "http 404" becomes "http-4xx".
func reasonLabel(reason string) string {
	if crawlReasons[reason] {
		return reason
	}
	if code, ok := strings.CutPrefix(reason, "http "); ok && len(code) == 3 && code[0] >= '1' && code[0] <= '5' &&
		strings.Trim(code[1:], "0123456789") == "" {
		return "http-" + code[:1] + "xx"
	}
	return "other"
}

// Subagent records a finished sub-agent by outcome. It has the shape of agent.Runtime.OnSubagent;
// a caller with an OnSubagent of its own calls both.
func (m *Metrics) Subagent(r agent.SubagentReport) {
	if m == nil {
		return
	}
	m.add(m.subagents, 1, subagentOutcome(r))
}

func subagentOutcome(r agent.SubagentReport) string {
	switch {
	case errors.Is(r.Err, context.Canceled) || r.Result.StoppedBy == agent.StoppedCancelled:
		return "cancelled"
	case r.Err != nil:
		return "error"
	}
	switch r.Result.StoppedBy {
	case agent.StoppedAnswer, agent.StoppedSteps, agent.StoppedTokens, agent.StoppedTime:
		return r.Result.StoppedBy
	case "error":
		return "error"
	}
	return "other"
}
