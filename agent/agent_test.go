package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"panther"
	"panther/llm"
)

const partialLink = indexesURL + "#partial-indexes"

func TestRunAnswersWithCitations(t *testing.T) {
	cases := []struct {
		name     string
		stream   bool
		twoTools bool
	}{
		{"one tool, plain", false, false},
		{"one tool, streamed", true, false},
		{"two tools in one turn, plain", false, true},
		{"two tools in one turn, streamed", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := openKB(t)
			calls := []call{{ID: "call_s", Name: "kb_search", Args: `{"query":"partial index","k":3}`}}
			answer := "A partial index covers only the rows that satisfy its predicate [1]. It is always faster [7]."
			wantAnswer := "A partial index covers only the rows that satisfy its predicate [1]. It is always faster.\n\nSources:\n[1] " + partialLink
			if tc.twoTools {
				calls = append(calls, call{ID: "call_r", Name: "kb_read", Args: `{"url":"` + vacuumURL + `#vacuum"}`})
				answer = "A partial index covers only the rows that satisfy its predicate [1]. VACUUM reclaims space [2][7]."
				wantAnswer = "A partial index covers only the rows that satisfy its predicate [1]. VACUUM reclaims space [2].\n\nSources:\n[1] " + partialLink + "\n[2] " + vacuumURL + "#vacuum"
			}
			fake, model := newFakeModel(t, func(n int, req wireRequest) turn {
				if n == 1 {
					return turn{Text: "Let me look.", Calls: calls, In: 100, Out: 20}
				}
				return turn{Text: answer, In: 300, Out: 40}
			})
			var log eventLog
			onEvent := log.add
			a := Agent{Name: "test", System: "You answer questions about databases.", Model: model,
				Tools: []Tool{KBSearch(k), KBRead(k)}}
			if !tc.stream {
				// Without a callback the client makes plain requests.
				onEvent = nil
			}
			res, err := Run(context.Background(), a, "What is a partial index?", nil, onEvent)
			if err != nil {
				t.Fatal(err)
			}
			if res.StoppedBy != StoppedAnswer || res.Steps != 2 {
				t.Errorf("stopped by %q after %d steps, want answer after 2", res.StoppedBy, res.Steps)
			}
			if res.Answer != wantAnswer {
				t.Errorf("answer:\n%s\nwant:\n%s", res.Answer, wantAnswer)
			}
			if len(res.Citations) == 0 || res.Citations[0].Link() != partialLink || res.Citations[0].Title != "Indexes" || !res.Citations[0].FetchedAt.Equal(fetched) {
				t.Errorf("citations = %+v", res.Citations)
			}
			if tc.twoTools && (len(res.Citations) != 2 || res.Citations[1].Link() != vacuumURL+"#vacuum") {
				t.Errorf("citations = %+v, want the section read second", res.Citations)
			}
			if want := (panther.Usage{InputTokens: 400, OutputTokens: 60}); res.Usage != want {
				t.Errorf("usage = %+v, want %+v", res.Usage, want)
			}

			reqs := fake.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want 2", len(reqs))
			}
			if reqs[0].Stream != tc.stream {
				t.Errorf("stream = %v", reqs[0].Stream)
			}
			first := reqs[0]
			if first.Messages[0].Role != "system" || !strings.Contains(*first.Messages[0].Content, "You answer questions about databases.") || !strings.Contains(*first.Messages[0].Content, "[1]") {
				t.Errorf("system message = %+v", first.Messages[0])
			}
			if len(first.Tools) != 2 || first.Tools[0].Function.Name != "kb_search" || first.Tools[1].Function.Name != "kb_read" {
				t.Errorf("tools offered = %+v", first.Tools)
			}
			// The next request carries the assistant turn and one tool message per call, in order.
			second := reqs[1]
			var roles []string
			for _, m := range second.Messages {
				roles = append(roles, m.Role)
			}
			wantRoles := "system user assistant tool"
			if tc.twoTools {
				wantRoles += " tool"
			}
			if strings.Join(roles, " ") != wantRoles {
				t.Errorf("second request roles = %v, want %s", roles, wantRoles)
			}
			if a := second.Messages[2]; len(a.ToolCalls) != len(calls) || a.ToolCalls[0].Function.Arguments != calls[0].Args {
				t.Errorf("assistant turn sent back = %+v", a)
			}
			tm := second.toolMessages()
			got := tm["call_s"]
			wantLine := "[1] Indexes — Indexes > Partial Indexes (" + partialLink + ")"
			if !strings.Contains(got, wantLine) || !strings.Contains(got, `for "partial index"`) || !strings.Contains(got, "WHERE predicate") {
				t.Errorf("kb_search result sent to the model:\n%s\nwant it to contain %q", got, wantLine)
			}
			if tc.twoTools {
				if got := tm["call_r"]; !strings.Contains(got, "[2] VACUUM ("+vacuumURL+"#vacuum)") || !strings.Contains(got, "dead tuples") {
					t.Errorf("kb_read result sent to the model:\n%s", got)
				}
				if second.Messages[3].ToolCallID != "call_s" || second.Messages[4].ToolCallID != "call_r" {
					t.Errorf("tool messages out of call order")
				}
			}

			// The conversation returned: user, assistant, tools, assistant.
			if n := len(res.Messages); n != 3+len(calls) || res.Messages[n-1].Content != answer {
				t.Errorf("messages = %+v", res.Messages)
			}

			if !tc.stream {
				return
			}
			if got := log.text(); got != "Let me look."+answer {
				t.Errorf("streamed text = %q", got)
			}
			if n := len(log.kinds(EventStep)); n != 2 {
				t.Errorf("%d step events, want 2", n)
			}
			starts, ends := log.kinds(EventToolStart), log.kinds(EventToolEnd)
			if len(starts) != len(calls) || len(ends) != len(calls) {
				t.Fatalf("tool events: %d starts, %d ends, want %d", len(starts), len(ends), len(calls))
			}
			for _, e := range starts {
				if e.ToolCallID == "call_s" && (e.Tool != "kb_search" || e.Text != calls[0].Args) {
					t.Errorf("tool_start = %+v", e)
				}
			}
			for _, e := range ends {
				if e.Err != "" {
					t.Errorf("tool_end with error: %+v", e)
				}
			}
		})
	}
}

// echo is a tool that answers with its arguments.
var echo = funcTool{name: "echo", run: func(ctx context.Context, args json.RawMessage) (ToolResult, error) {
	return ToolResult{Content: "echo " + string(args)}, nil
}}

func TestRunBudgets(t *testing.T) {
	cases := []struct {
		name      string
		budget    Budget
		tool      Tool
		wantBy    string
		wantSteps int
		wantLine  string
	}{
		{"steps", Budget{MaxSteps: 3}, echo, StoppedSteps, 3, "[stopped: step budget of 3 reached]"},
		{"tokens", Budget{MaxTokens: 1000}, echo, StoppedTokens, 2, "[stopped: token budget of 1000 reached, 1400 used]"},
		{"time", Budget{MaxDuration: 300 * time.Millisecond}, funcTool{name: "echo", run: func(ctx context.Context, _ json.RawMessage) (ToolResult, error) {
			<-ctx.Done()
			return ToolResult{}, ctx.Err()
		}}, StoppedTime, 1, "[stopped: time budget of 300ms reached]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake, model := newFakeModel(t, func(n int, req wireRequest) turn {
				// A model that never stops calling tools.
				return turn{Text: fmt.Sprintf("Still looking (%d).", n), Calls: []call{{ID: fmt.Sprintf("c%d", n), Name: "echo", Args: `{}`}}, In: 600, Out: 100}
			})
			res, err := Run(context.Background(), Agent{Model: model, Tools: []Tool{tc.tool}, Budget: tc.budget}, "loop", nil, func(Event) {})
			if err != nil {
				t.Fatal(err)
			}
			if res.StoppedBy != tc.wantBy || res.Steps != tc.wantSteps {
				t.Errorf("stopped by %q after %d steps, want %q after %d", res.StoppedBy, res.Steps, tc.wantBy, tc.wantSteps)
			}
			if n := len(fake.requests()); n != tc.wantSteps {
				t.Errorf("%d model calls, want %d", n, tc.wantSteps)
			}
			lines := strings.Split(res.Answer, "\n")
			if last := lines[len(lines)-1]; last != tc.wantLine {
				t.Errorf("last line %q, want %q (answer %q)", last, tc.wantLine, res.Answer)
			}
			if !strings.HasPrefix(res.Answer, fmt.Sprintf("Still looking (%d).", tc.wantSteps)) {
				t.Errorf("answer %q does not keep the last text", res.Answer)
			}
			// Every call is answered, so the conversation can go on.
			last := res.Messages[len(res.Messages)-1]
			if last.Role != panther.RoleTool || !last.IsError {
				t.Errorf("last message = %+v, want an error tool result", last)
			}
		})
	}
}

func TestRunToolFailuresContinue(t *testing.T) {
	tools := []Tool{
		echo,
		funcTool{name: "fail", run: func(context.Context, json.RawMessage) (ToolResult, error) {
			return ToolResult{}, errors.New("fail: disk on fire")
		}},
		funcTool{name: "boom", run: func(context.Context, json.RawMessage) (ToolResult, error) {
			panic("nil map somewhere")
		}},
	}
	tools = append(tools, funcTool{name: "hang", run: func(ctx context.Context, _ json.RawMessage) (ToolResult, error) {
		<-ctx.Done()
		return ToolResult{}, ctx.Err()
	}})
	calls := []call{
		{ID: "c0", Name: "hang", Args: `{}`},
		{ID: "c1", Name: "fail", Args: `{}`},
		{ID: "c2", Name: "boom", Args: `{}`},
		{ID: "c3", Name: "nosuch", Args: `{"x":1}`},
		{ID: "c4", Name: "echo", Args: `{"y":2}`},
	}
	fake, model := newFakeModel(t, func(n int, req wireRequest) turn {
		if n == 1 {
			return turn{Calls: calls, In: 1, Out: 1}
		}
		return turn{Text: "Done despite the failures.", In: 1, Out: 1}
	})
	var log eventLog
	res, err := Run(context.Background(), Agent{Model: model, Tools: tools, ToolTimeout: 100 * time.Millisecond}, "go", nil, log.add)
	if err != nil {
		t.Fatal(err)
	}
	if res.StoppedBy != StoppedAnswer || res.Answer != "Done despite the failures." {
		t.Errorf("result = %q, %q", res.StoppedBy, res.Answer)
	}
	want := []struct {
		id, content string
		isErr       bool
	}{
		{"c0", "hang: no result within 100ms (context deadline exceeded)", true},
		{"c1", "fail: disk on fire", true},
		{"c2", "boom: the tool crashed: nil map somewhere", true},
		{"c3", `unknown tool "nosuch"; the tools are: boom, echo, fail, hang`, true},
		{"c4", `echo {"y":2}`, false},
	}
	msgs := res.Messages[2:]
	if len(msgs) != len(want)+1 {
		t.Fatalf("messages = %+v", res.Messages)
	}
	wire := fake.requests()[1].toolMessages()
	for i, w := range want {
		m := msgs[i]
		if m.Role != panther.RoleTool || m.ToolCallID != w.id || m.Content != w.content || m.IsError != w.isErr {
			t.Errorf("tool message %d = %+v, want %+v", i, m, w)
		}
		wantWire := w.content
		if w.isErr {
			wantWire = "[tool error] " + w.content
		}
		if wire[w.id] != wantWire {
			t.Errorf("sent %q for %s, want %q", wire[w.id], w.id, wantWire)
		}
	}
	var errs int
	for _, e := range log.kinds(EventToolEnd) {
		if e.Err != "" {
			errs++
		}
	}
	if errs != 4 {
		t.Errorf("%d tool_end events with an error, want 4", errs)
	}
}

func TestRunParallelTools(t *testing.T) {
	cases := []struct {
		name     string
		parallel int
		calls    int
		want     int
	}{
		{"default bound", 0, 6, DefaultMaxParallelTools},
		{"bound 2", 2, 6, 2},
		{"bound above the calls", 8, 3, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var running, peak atomic.Int32
			slow := funcTool{name: "slow", run: func(ctx context.Context, args json.RawMessage) (ToolResult, error) {
				n := running.Add(1)
				defer running.Add(-1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				var a struct{ I int }
				json.Unmarshal(args, &a)
				// Later calls finish first, so that call order must be restored.
				time.Sleep(time.Duration(150-10*a.I) * time.Millisecond)
				return ToolResult{Content: fmt.Sprintf("slow %d", a.I)}, nil
			}}
			var calls []call
			for i := range tc.calls {
				calls = append(calls, call{ID: fmt.Sprintf("c%d", i), Name: "slow", Args: fmt.Sprintf(`{"i":%d}`, i)})
			}
			_, model := newFakeModel(t, func(n int, req wireRequest) turn {
				if n == 1 {
					return turn{Calls: calls}
				}
				return turn{Text: "ok"}
			})
			res, err := Run(context.Background(), Agent{Model: model, Tools: []Tool{slow}, MaxParallelTools: tc.parallel}, "go", nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if p := int(peak.Load()); p != tc.want {
				t.Errorf("peak concurrency %d, want %d", p, tc.want)
			}
			for i := range tc.calls {
				m := res.Messages[2+i]
				if m.ToolCallID != fmt.Sprintf("c%d", i) || m.Content != fmt.Sprintf("slow %d", i) {
					t.Errorf("message %d = %+v", i, m)
				}
			}
		})
	}
}

func TestRunCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	block := funcTool{name: "block", run: func(ctx context.Context, _ json.RawMessage) (ToolResult, error) {
		<-ctx.Done()
		return ToolResult{}, ctx.Err()
	}}
	_, model := newFakeModel(t, func(n int, req wireRequest) turn {
		return turn{Text: "Working.", Calls: []call{{ID: "c1", Name: "block", Args: `{}`}}}
	})
	var once sync.Once
	res, err := Run(ctx, Agent{Model: model, Tools: []Tool{block}}, "go", nil, func(e Event) {
		if e.Kind == EventToolStart {
			once.Do(cancel)
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if res.StoppedBy != StoppedCancelled || !strings.HasSuffix(res.Answer, "[stopped: cancelled]") || res.Steps != 1 {
		t.Errorf("result = %+v", res)
	}
}

func TestRunCancelDuringModelCall(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	_, model := newFakeModel(t, func(n int, req wireRequest) turn {
		cancel()
		time.Sleep(50 * time.Millisecond)
		return turn{Text: "late"}
	})
	res, err := Run(ctx, Agent{Model: model}, "go", nil, nil)
	if !errors.Is(err, context.Canceled) || res.StoppedBy != StoppedCancelled {
		t.Errorf("err = %v, stopped by %q", err, res.StoppedBy)
	}
}

func TestRunHistoryAndValidation(t *testing.T) {
	fake, model := newFakeModel(t, func(n int, req wireRequest) turn { return turn{Text: "Yes."} })
	history := []panther.Message{{Role: panther.RoleUser, Content: "Hello"}, {Role: panther.RoleAssistant, Content: "Hi."}}
	res, err := Run(context.Background(), Agent{Model: model}, "Still there?", history, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Messages) != 4 || res.Messages[2].Content != "Still there?" || res.Answer != "Yes." {
		t.Errorf("result = %+v", res)
	}
	if n := len(fake.requests()[0].Messages); n != 4 { // system + 2 history + prompt
		t.Errorf("%d messages sent, want 4", n)
	}
	if history[1].Content != "Hi." || len(history) != 2 {
		t.Errorf("history modified")
	}

	for _, tc := range []struct {
		name string
		a    Agent
		p    string
	}{
		{"no model", Agent{}, "x"},
		{"empty prompt", Agent{Model: model}, "  "},
		{"duplicate tools", Agent{Model: model, Tools: []Tool{echo, echo}}, "x"},
	} {
		if _, err := Run(context.Background(), tc.a, tc.p, nil, nil); !errors.Is(err, panther.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", tc.name, err)
		}
	}
}

func TestRunModelError(t *testing.T) {
	_, model := newFakeModel(t, func(n int, req wireRequest) turn { return turn{Calls: []call{{ID: "c", Name: "", Args: `{}`}}} })
	_, err := Run(context.Background(), Agent{Model: model}, "x", nil, nil)
	if err == nil {
		t.Fatal("a broken answer should fail the run")
	}
}

func TestRunAnswerCutByOutputLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"choices":[{"index":0,"message":{"role":"assistant","content":"The answer is"},"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":3}}`)
	}))
	defer srv.Close()
	model, err := llm.NewOpenAI(llm.OpenAIOptions{BaseURL: srv.URL + "/v1", Model: "m", Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), Agent{Model: model}, "x", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "The answer is\n\n[cut: the answer reached the model's output limit]"; res.Answer != want || res.StoppedBy != StoppedAnswer {
		t.Errorf("answer %q (%s), want %q", res.Answer, res.StoppedBy, want)
	}
}
