package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"panther"
)

// metrics are the API's own instruments; the crawl and session figures are read from their
// services when /metrics is scraped, so the services need no hooks for them.
type metrics struct {
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	searchLatency *prometheus.HistogramVec
	handler       http.Handler
}

func newMetrics(reg *prometheus.Registry, crawls Crawls, sessions LiveSessions) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "panther_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "panther_http_request_duration_seconds", Help: "Time to answer an HTTP request (event streams excluded), by route and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		searchLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "panther_search_duration_seconds", Help: "Time to answer a search, by ranking mode.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"mode"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.searchLatency, serviceCollector{crawls: crawls, sessions: sessions}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m, nil
}

func (m *metrics) observe(route, method string, code int, d time.Duration, stream bool) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	if !stream {
		m.latency.WithLabelValues(route, method).Observe(d.Seconds())
	}
}

var (
	crawlPagesDesc = prometheus.NewDesc("panther_crawl_pages_total",
		"Pages of background crawls by final state (done: stored, unchanged or gone).", []string{"outcome"}, nil)
	crawlsRunningDesc = prometheus.NewDesc("panther_crawls_running", "Background crawls running.", nil, nil)
	crawlsQueuedDesc  = prometheus.NewDesc("panther_crawls_queued", "Background crawls waiting for a slot.", nil, nil)
	sessionsDesc      = prometheus.NewDesc("panther_sessions_total",
		"Agent sessions run by this server that ended, by status.", []string{"status"}, nil)
	sessionsRunningDesc = prometheus.NewDesc("panther_sessions_running", "Agent sessions running.", nil, nil)
)

// serviceCollector reads the crawl manager's and the live sessions' counts at scrape time.
type serviceCollector struct {
	crawls   Crawls
	sessions LiveSessions
}

func (c serviceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{crawlPagesDesc, crawlsRunningDesc, crawlsQueuedDesc, sessionsDesc, sessionsRunningDesc} {
		ch <- d
	}
}

func (c serviceCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.crawls.Totals()
	ch <- prometheus.MustNewConstMetric(crawlPagesDesc, prometheus.CounterValue, float64(t.Done), "done")
	ch <- prometheus.MustNewConstMetric(crawlPagesDesc, prometheus.CounterValue, float64(t.Failed), "failed")
	ch <- prometheus.MustNewConstMetric(crawlPagesDesc, prometheus.CounterValue, float64(t.Skipped), "skipped")
	running, queued := 0, 0
	for _, j := range c.crawls.Running() {
		if j.Started.IsZero() {
			queued++
		} else {
			running++
		}
	}
	ch <- prometheus.MustNewConstMetric(crawlsRunningDesc, prometheus.GaugeValue, float64(running))
	ch <- prometheus.MustNewConstMetric(crawlsQueuedDesc, prometheus.GaugeValue, float64(queued))
	st := c.sessions.Stats()
	for _, status := range []panther.SessionStatus{panther.SessionDone, panther.SessionFailed, panther.SessionCancelled} {
		ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.CounterValue, float64(st.Finished[status]), string(status))
	}
	ch <- prometheus.MustNewConstMetric(sessionsRunningDesc, prometheus.GaugeValue, float64(st.Running))
}

func (s *server) metricsHandler(w http.ResponseWriter, r *http.Request) error {
	s.metrics.handler.ServeHTTP(w, r)
	return nil
}
