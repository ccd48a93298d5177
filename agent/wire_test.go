package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"panther"
)

// The loop driven through both wire formats by the real llm clients, scripted turn by turn.
func TestLoopOverBothWires(t *testing.T) {
	const (
		searchArgs = `{"query":"partial index","k":3}`
		answer     = "A partial index covers only the rows that satisfy its predicate [1]."
		wantAnswer = answer + "\n\nSources:\n[1] " + partialLink
	)
	search := call{ID: "call_s", Name: "kb_search", Args: searchArgs}
	// fine is the usual second step: the answer, after the model got the search's result.
	fine := func(req wireReq) wireStep {
		if r := req.Results["call_s"]; r.IsError || !strings.Contains(r.Content, "[1] Indexes — Indexes > Partial Indexes") {
			return wireStep{turn: turn{Text: fmt.Sprintf("the search result did not come back: %+v", req.Results)}}
		}
		return wireStep{turn: turn{Text: answer, In: 300, Out: 40}}
	}
	cases := []struct {
		name string
		// streamOnly: the case needs a stream (a message object cannot hold arguments that are not
		// JSON; a cut stream has no plain counterpart).
		streamOnly bool
		script     func(n int, req wireReq) wireStep
		wantErr    []string // the run fails with an error containing these; else it answers wantAnswer
		wantReqs   int
		// wantResult is what the model was sent for call "c" (prefix), and whether as an error.
		wantResult string
		wantIsErr  bool
		check      func(t *testing.T, reqs []wireReq)
	}{
		{
			name: "tool call, result, answer",
			script: func(n int, req wireReq) wireStep {
				if req.Step == 1 {
					return wireStep{turn: turn{Text: "Let me look.", Calls: []call{search}, In: 100, Out: 20}}
				}
				return fine(req)
			},
			wantReqs: 2,
			check: func(t *testing.T, reqs []wireReq) {
				if got := strings.Join(reqs[0].Tools, ","); got != "kb_search" || !strings.Contains(reqs[0].System, "You answer questions") {
					t.Errorf("first request: tools %s, system %q", got, reqs[0].System)
				}
			},
		},
		{
			name: "arguments of the wrong shape reach the tool, which answers with an error",
			script: func(n int, req wireReq) wireStep {
				switch req.Step {
				case 1:
					return wireStep{turn: turn{Calls: []call{{ID: "c", Name: "kb_search", Args: `{"query":42}`}}}}
				case 2:
					return wireStep{turn: turn{Text: "Retrying.", Calls: []call{search}}}
				}
				return fine(req)
			},
			wantReqs:   3,
			wantResult: `kb_search: argument "query" must be of type string, not number`,
			wantIsErr:  true,
		},
		{
			// The clients deliver the call as malformed; the loop answers it with an error the model
			// can correct, without running the tool.
			name: "arguments that are not JSON are answered with an error and the run goes on",
			script: func(n int, req wireReq) wireStep {
				switch req.Step {
				case 1:
					return wireStep{turn: turn{Calls: []call{{ID: "c", Name: "kb_search", Args: `{"query": "partial`}}}}
				case 2:
					return wireStep{turn: turn{Calls: []call{search}}}
				}
				return fine(req)
			},
			wantReqs:   3,
			wantResult: `kb_search: the arguments were not a JSON object: {"query": "partial`,
			wantIsErr:  true,
		},
		{
			name: "an unknown tool is answered with an error and the run goes on",
			script: func(n int, req wireReq) wireStep {
				switch req.Step {
				case 1:
					return wireStep{turn: turn{Calls: []call{{ID: "c", Name: "shell", Args: `{"cmd":"rm -rf /"}`}}}}
				case 2:
					return wireStep{turn: turn{Calls: []call{search}}}
				}
				return fine(req)
			},
			wantReqs:   3,
			wantResult: `unknown tool "shell"; the tools are: kb_search`,
			wantIsErr:  true,
		},
		{
			name:       "a stream cut before anything arrived is repeated",
			streamOnly: true,
			script: func(n int, req wireReq) wireStep {
				switch {
				case n == 1:
					return wireStep{turn: turn{Text: "Let me look.", Calls: []call{search}}, cut: "early"}
				case req.Step == 1:
					return wireStep{turn: turn{Text: "Let me look.", Calls: []call{search}}}
				}
				return fine(req)
			},
			wantReqs: 3,
		},
		{
			name:       "a stream cut halfway fails the run cleanly",
			streamOnly: true,
			script: func(n int, req wireReq) wireStep {
				if req.Step == 1 {
					return wireStep{turn: turn{Calls: []call{search}}}
				}
				return wireStep{turn: turn{Text: "A partial index covers only some rows."}, cut: "midway"}
			},
			wantErr:  []string{"step 2"},
			wantReqs: 2, // not repeated: part of the answer was shown already
			check: func(t *testing.T, reqs []wireReq) {
				if len(reqs[1].Results) != 1 {
					t.Errorf("step 2 was sent results %+v", reqs[1].Results)
				}
			},
		},
		{
			name: "429 with Retry-After: the client waits and repeats the request",
			script: func(n int, req wireReq) wireStep {
				switch {
				case n == 1:
					return wireStep{status: 429, retryAfter: "1"}
				case req.Step == 1:
					return wireStep{turn: turn{Calls: []call{search}}}
				}
				return fine(req)
			},
			wantReqs: 3,
			check: func(t *testing.T, reqs []wireReq) {
				if gap := reqs[1].At.Sub(reqs[0].At); gap < time.Second {
					t.Errorf("repeated %s after the 429, before its Retry-After of 1s", gap)
				}
			},
		},
	}
	for _, wire := range []string{wireOpenAI, wireAnthropic} {
		for _, stream := range []bool{false, true} {
			for _, tc := range cases {
				if tc.streamOnly && !stream {
					continue
				}
				if tc.name == "arguments that are not JSON are answered with an error and the run goes on" && wire == wireAnthropic && !stream {
					continue // a message object cannot hold them
				}
				name := fmt.Sprintf("%s/plain/%s", wire, tc.name)
				if stream {
					name = fmt.Sprintf("%s/stream/%s", wire, tc.name)
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					k := openKB(t)
					fake, model := newWireFake(t, wire, 1, tc.script)
					a := Agent{Name: "test", System: "You answer questions about databases.", Model: model, Tools: []Tool{KBSearch(k)}}
					var log eventLog
					var onEvent func(Event)
					if stream {
						onEvent = log.add // the clients stream only when someone watches
					}
					res, err := Run(context.Background(), a, "What is a partial index?", nil, onEvent)
					reqs := fake.requests()
					if len(reqs) != tc.wantReqs {
						t.Errorf("%d requests, want %d", len(reqs), tc.wantReqs)
					}
					for _, r := range reqs {
						if r.Stream != stream {
							t.Errorf("request streamed %v, want %v", r.Stream, stream)
						}
					}
					if tc.wantErr != nil {
						if err == nil {
							t.Fatalf("no error; answer %q", res.Answer)
						}
						for _, w := range tc.wantErr {
							if !strings.Contains(err.Error(), w) {
								t.Errorf("err = %v, want it to contain %q", err, w)
							}
						}
						// What the run did before the failure is kept, every call answered.
						if res.StoppedBy != "error" || res.Steps != tc.wantReqs-1 || len(res.Messages) != 1+2*res.Steps {
							t.Errorf("stopped by %q after %d steps, %d messages", res.StoppedBy, res.Steps, len(res.Messages))
						}
						if tc.check != nil {
							tc.check(t, reqs)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					if res.Answer != wantAnswer || res.StoppedBy != StoppedAnswer {
						t.Errorf("answer %q (%s), want %q", res.Answer, res.StoppedBy, wantAnswer)
					}
					if len(res.Citations) != 1 || res.Citations[0].Link() != partialLink {
						t.Errorf("citations %+v", res.Citations)
					}
					if tc.wantResult != "" {
						r, ok := reqs[1].Results["c"]
						if !ok || !strings.HasPrefix(r.Content, tc.wantResult) || r.IsError != tc.wantIsErr {
							t.Errorf("the model was sent %+v for call c, want %q (error %v)", r, tc.wantResult, tc.wantIsErr)
						}
					}
					if stream && !strings.Contains(log.text(), answer) {
						t.Errorf("streamed text %q lacks the answer", log.text())
					}
					if tc.check != nil {
						tc.check(t, reqs)
					}
				})
			}
		}
	}
}

// Usage reported by both wires adds up over the steps.
func TestLoopUsageOverBothWires(t *testing.T) {
	for _, wire := range []string{wireOpenAI, wireAnthropic} {
		t.Run(wire, func(t *testing.T) {
			_, model := newWireFake(t, wire, -1, func(n int, req wireReq) wireStep {
				if req.Step == 1 {
					return wireStep{turn: turn{Calls: []call{{ID: "e", Name: "echo", Args: `{"x":1}`}}, In: 100, Out: 20}}
				}
				if r := req.Results["e"]; r.Content != `echo {"x":1}` {
					return wireStep{turn: turn{Text: "lost: " + r.Content}}
				}
				return wireStep{turn: turn{Text: "Done.", In: 300, Out: 40}}
			})
			res, err := Run(context.Background(), Agent{Model: model, Tools: []Tool{echo}}, "go", nil, func(Event) {})
			if err != nil {
				t.Fatal(err)
			}
			if res.Answer != "Done." || res.Usage != (panther.Usage{InputTokens: 400, OutputTokens: 60}) {
				t.Errorf("answer %q, usage %+v", res.Answer, res.Usage)
			}
		})
	}
}
