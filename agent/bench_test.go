package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"panther"
)

// instantModel answers in-process at once, so that a benchmark measures the loop and its tools and
// not a model: steps-1 turns that each call tool with args, then an answer citing [1].
type instantModel struct {
	steps int
	tool  string
	args  json.RawMessage
}

func (m instantModel) Complete(ctx context.Context, req panther.ModelRequest, _ func(panther.StreamEvent)) (panther.ModelResponse, error) {
	step := 1
	for _, msg := range req.Messages {
		if msg.Role == panther.RoleAssistant {
			step++
		}
	}
	usage := panther.Usage{InputTokens: 10, OutputTokens: 10}
	if step < m.steps {
		return panther.ModelResponse{Message: panther.Message{Role: panther.RoleAssistant, ToolCalls: []panther.ToolCall{
			{ID: fmt.Sprintf("c%d", step), Name: m.tool, Arguments: m.args},
		}}, Usage: usage, StopReason: panther.StopToolCalls}, nil
	}
	return panther.ModelResponse{Message: panther.Message{Role: panther.RoleAssistant, Content: "Done [1]."}, Usage: usage, StopReason: panther.StopEnd}, nil
}

// checkpointPages are enough pages on one subject for a search to fill its 10 hits.
func checkpointPages() []pageSpec {
	var pages []pageSpec
	for i := range 12 {
		url := fmt.Sprintf("https://docs.example.org/wal-%d.html", i)
		pages = append(pages, pageSpec{url, fmt.Sprintf("WAL %d", i), []panther.Section{{
			Heading: []string{fmt.Sprintf("WAL %d", i)}, Level: 1, Anchor: "wal",
			Markdown: fmt.Sprintf("# WAL %d\n\nA checkpoint flushes dirty pages to disk; setting %d tunes how often the checkpoint runs "+
				"and how much write-ahead log is kept between two checkpoints.", i, i),
		}}})
	}
	return pages
}

// BenchmarkLoopStep is the loop's own cost per step, the model excluded: each step is one model
// turn (in-process, instant) and one tool call. ns/step is the figure; ns/op is a whole run of
// 10 steps.
func BenchmarkLoopStep(b *testing.B) {
	const steps = 10
	k := openKB(b, checkpointPages()...)
	search := KBSearch(k)
	args := json.RawMessage(`{"query":"checkpoint","k":10}`)
	hits, err := search.Run(context.Background(), args)
	if err != nil || len(hits.Citations) != 10 {
		b.Fatalf("kb_search found %d hits, want 10 (err %v)", len(hits.Citations), err)
	}
	cases := []struct {
		name string
		tool Tool
	}{
		{"kb_search 10 hits", search},
		{"echo tool", echo},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			a := Agent{Name: "bench", Model: instantModel{steps: steps, tool: tc.tool.Spec().Name, args: args}, Tools: []Tool{tc.tool}}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				res, err := Run(context.Background(), a, "How do checkpoints work?", nil, nil)
				if err != nil || res.Steps != steps || !strings.HasPrefix(res.Answer, "Done") {
					b.Fatalf("run: %d steps, %q, %v", res.Steps, res.Answer, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*steps), "ns/step")
		})
	}
	b.Run("kb_search alone", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := search.Run(context.Background(), args); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// blockingModel is a lead that starts n sub-agents, and sub-agents that block in their model call
// until it is cancelled, saying on inside when they are in it.
type blockingModel struct {
	n      int
	inside chan<- struct{}
}

func (m blockingModel) Complete(ctx context.Context, req panther.ModelRequest, _ func(panther.StreamEvent)) (panther.ModelResponse, error) {
	if req.Model == "lead" {
		var calls []panther.ToolCall
		for _, c := range fanCalls(m.n, -1) {
			calls = append(calls, panther.ToolCall{ID: c.ID, Name: c.Name, Arguments: json.RawMessage(c.Args)})
		}
		return panther.ModelResponse{Message: panther.Message{Role: panther.RoleAssistant, ToolCalls: calls}, StopReason: panther.StopToolCalls}, nil
	}
	m.inside <- struct{}{}
	<-ctx.Done()
	return panther.ModelResponse{}, ctx.Err()
}

// BenchmarkCancelLatency is the time from cancelling a run whose 8 sub-agents are blocked in their
// model calls until the run has returned, which it does only after all 8 have (ns/cancel, and the
// slowest of the iterations as max-ns/cancel). ns/op is a whole iteration: starting the run, the
// fan-out, the cancellation.
func BenchmarkCancelLatency(b *testing.B) {
	const n = 8
	defs := func(b *testing.B) map[string]Definition {
		lead, err := ParseDefinition("lead", []byte(fanLeadDef))
		if err != nil {
			b.Fatal(err)
		}
		helper, err := ParseDefinition("helper", []byte(fanHelperDef))
		if err != nil {
			b.Fatal(err)
		}
		return map[string]Definition{"lead": lead, "helper": helper}
	}
	models := []struct {
		name  string
		model func(b *testing.B, inside chan<- struct{}) panther.Model
	}{
		{"in-process model", func(b *testing.B, inside chan<- struct{}) panther.Model { return blockingModel{n: n, inside: inside} }},
	}
	for _, wire := range wires {
		models = append(models, struct {
			name  string
			model func(b *testing.B, inside chan<- struct{}) panther.Model
		}{wire + " over HTTP", func(b *testing.B, inside chan<- struct{}) panther.Model {
			never := make(chan struct{})
			_, m := newWireFake(b, wire, -1, func(_ int, req wireReq) wireStep {
				if req.Model == "lead" {
					return wireStep{turn: turn{Calls: fanCalls(n, -1)}}
				}
				inside <- struct{}{}
				return wireStep{block: never}
			})
			return m
		}})
	}
	for _, mc := range models {
		b.Run(mc.name, func(b *testing.B) {
			inside := make(chan struct{}, n)
			rt := &Runtime{Definitions: defs(b), Model: wireResolver(mc.model(b, inside)), MaxSubagents: n, MaxParallelTools: n}
			var total, slowest time.Duration
			for b.Loop() {
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() {
					_, err := rt.Run(ctx, "lead", "go", nil, nil)
					done <- err
				}()
				for range n {
					<-inside
				}
				start := time.Now()
				cancel()
				err := <-done
				d := time.Since(start)
				if err == nil {
					b.Fatal("the run was not cancelled")
				}
				total += d
				slowest = max(slowest, d)
			}
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/cancel")
			b.ReportMetric(float64(slowest.Nanoseconds()), "max-ns/cancel")
		})
	}
}
