package telemetry

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"panther"
	"panther/agent"
	"panther/crawl"
)

// datagram is one DogStatsD metric line: name:value|type|#tag,tag (other |fields ignored).
type datagram struct {
	name, typ string
	value     float64
	tags      []string
}

func parseDatagrams(t *testing.T, packet string) []datagram {
	t.Helper()
	var out []datagram
	for _, line := range strings.Split(strings.TrimSpace(packet), "\n") {
		fields := strings.Split(line, "|")
		name, v, ok := strings.Cut(fields[0], ":")
		if !ok || len(fields) < 2 {
			t.Fatalf("malformed datagram %q", line)
		}
		d := datagram{name: name, typ: fields[1]}
		// A client may pack several values of one distribution into one line (v1:v2:...).
		for _, s := range strings.Split(v, ":") {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("datagram %q: value %q: %v", line, s, err)
			}
			d.value += f
		}
		for _, f := range fields[2:] {
			if tags, ok := strings.CutPrefix(f, "#"); ok {
				d.tags = strings.Split(tags, ",")
			}
		}
		out = append(out, d)
	}
	return out
}

// TestDogStatsD receives the datagrams on a real UDP socket on loopback and checks names, values,
// types and tags.
func TestDogStatsD(t *testing.T) {
	// The client adds tags of its own from these; the test wants only the configured ones.
	for _, v := range []string{"DD_ENV", "DD_SERVICE", "DD_VERSION", "DD_ENTITY_ID"} {
		t.Setenv(v, "")
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	const secret = "sk-live-0123456789abcdef"
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, env("DD_TAGS", "env:test,team:docs"), MetricsOptions{
		StatsdAddr: conn.LocalAddr().String(),
		Role:       RoleServer,
		Owner:      "alice",
		Tags:       []string{"site:lab"},
		Redactor:   NewRedactor(secret),
		StoreSize:  func(context.Context) (int64, error) { return 12345, nil },
		QueueDepth: func(context.Context) (int64, error) { return 0, errors.New("down") },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	ctx := context.Background()
	model, err := m.InstrumentModel("zai", openAI(t, chatServer(t)))
	if err != nil {
		t.Fatal(err)
	}
	msgs := []panther.Message{{Role: panther.RoleUser, Content: "hello"}}
	for _, name := range []string{"glm-4.6", secret} {
		if _, err := model.Complete(ctx, panther.ModelRequest{Model: name, Messages: msgs}, nil); err != nil {
			t.Fatal(err)
		}
	}
	m.Subagent(agent.SubagentReport{Result: agent.Result{StoppedBy: agent.StoppedAnswer}})
	m.Subagent(agent.SubagentReport{Result: agent.Result{StoppedBy: agent.StoppedAnswer}})
	m.CrawlSummary(crawl.Summary{New: 7, Failed: map[string]int{"http 404": 2}}, nil)
	svc, _ := openKB(t)
	s, err := m.InstrumentSearcher(svc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Search(ctx, panther.Query{Text: "anything", Mode: panther.ModeLexical}); err != nil {
		t.Fatal(err)
	}
	reportCtx, stop := context.WithCancel(ctx)
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		m.Report(reportCtx, time.Hour)
	}()
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}

	global := []string{"role:server", "owner:alice", "site:lab", "env:test", "team:docs"}
	type key struct{ name, typ, tags string }
	want := []struct {
		name, typ string
		value     float64 // -1: any
		tags      []string
	}{
		{"panther.llm.requests", "c", 1, []string{"provider:zai", "model:glm-4.6"}},
		{"panther.llm.requests", "c", 1, []string{"provider:zai", "model:other"}},
		{"panther.llm.tokens", "c", 12, []string{"provider:zai", "model:glm-4.6", "direction:input"}},
		{"panther.llm.tokens", "c", 5, []string{"provider:zai", "model:glm-4.6", "direction:output"}},
		{"panther.llm.request.duration", "d", -1, []string{"provider:zai", "model:glm-4.6"}},
		{"panther.subagents", "c", 2, []string{"outcome:answer"}},
		{"panther.crawl.pages", "c", 7, []string{"outcome:new"}},
		{"panther.crawl.pages", "c", 2, []string{"outcome:failed", "reason:http-4xx"}},
		{"panther.crawl.runs", "c", 1, []string{"state:done"}},
		{"panther.kb.search.duration", "d", -1, []string{"mode:lexical"}},
		{"panther.store.size_bytes", "g", 12345, nil},
		{"panther.telemetry.sample_errors", "c", -1, []string{"gauge:queue_depth"}},
	}
	tagKey := func(tags []string) string {
		tags = slices.Clone(tags)
		slices.Sort(tags)
		return strings.Join(tags, ",")
	}
	got := map[key]float64{}
	var seen []string
	complete := func() bool {
		for _, w := range want {
			v, ok := got[key{w.name, w.typ, tagKey(append(slices.Clone(w.tags), global...))}]
			if !ok || (w.value >= 0 && v < w.value) {
				return false
			}
		}
		return true
	}
	// The client sends on its own schedule (counts are aggregated for up to 2s); read until every
	// expected metric came, with a deadline only so that a broken client cannot hang the test.
	if err := conn.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	for !complete() {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("reading datagrams: %v; got so far:\n%s", err, strings.Join(seen, "\n"))
		}
		packet := string(buf[:n])
		if strings.Contains(packet, secret) {
			t.Fatalf("a secret reached DogStatsD: %q", packet)
		}
		for _, d := range parseDatagrams(t, packet) {
			seen = append(seen, d.name+"|"+d.typ+"|"+strings.Join(d.tags, ","))
			if !strings.HasPrefix(d.name, "panther.") {
				t.Errorf("metric %q outside the panther. namespace", d.name)
			}
			got[key{d.name, d.typ, tagKey(d.tags)}] += d.value
		}
	}
	stop()
	<-reported
	for _, w := range want {
		k := key{w.name, w.typ, tagKey(append(slices.Clone(w.tags), global...))}
		if w.value >= 0 && got[k] != w.value {
			t.Errorf("%s %v = %v, want %v", w.name, w.tags, got[k], w.value)
		}
	}
}

// TestDogStatsDOff checks that without an address nothing is dialled and Report returns at once.
func TestDogStatsDOff(t *testing.T) {
	m, err := NewMetrics(nil, nil, MetricsOptions{StoreSize: func(context.Context) (int64, error) { return 1, nil }})
	if err != nil {
		t.Fatal(err)
	}
	m.Report(context.Background(), time.Hour) // must return: nothing to send to
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}
