package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"panther"
	"panther/sqlite"
)

// Sub-agents through both wire formats: eight at once, one of them hanging, cancellation, partial
// results, and background tasks.

var wires = []string{wireOpenAI, wireAnthropic}

// wireResolver serves model under the name after "fake/".
func wireResolver(model panther.Model) func(string) (panther.Model, string, error) {
	return func(name string) (panther.Model, string, error) {
		provider, m, _ := strings.Cut(name, "/")
		if provider != "fake" {
			return nil, "", fmt.Errorf("no provider %q", provider)
		}
		return model, m, nil
	}
}

// waitFor waits until ch is closed, failing the test shortly before its own deadline.
func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	var timeout <-chan time.Time
	if d, ok := t.Deadline(); ok {
		timer := time.NewTimer(time.Until(d) - 5*time.Second)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case <-ch:
	case <-timeout:
		t.Fatalf("%s never happened", what)
	}
}

// arrivals closes all once n requests have arrived.
type arrivals struct {
	mu  sync.Mutex
	n   int
	got int
	all chan struct{}
}

func newArrivals(n int) *arrivals { return &arrivals{n: n, all: make(chan struct{})} }

func (a *arrivals) arrive() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got++
	if a.got == a.n {
		close(a.all)
	}
}

// reportLog collects sub-agent reports.
type reportLog struct {
	mu      sync.Mutex
	reports []SubagentReport
}

func (l *reportLog) add(r SubagentReport) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reports = append(l.reports, r)
}

func (l *reportLog) all() []SubagentReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]SubagentReport(nil), l.reports...)
}

const (
	fanLeadDef   = "---\ndescription: leads\nmode: primary\nmodel: fake/lead\n---\nYou lead."
	fanHelperDef = "---\ndescription: helps\nmode: subagent\nmodel: fake/helper\ntimeout: 20s\n---\nYou help."
	hangerDef    = "---\ndescription: hangs\nmode: subagent\nmodel: fake/hanger\ntimeout: 300ms\n---\nYou hang."
)

// fanCalls are the lead's task calls t0..t(n-1) to agent, prompts "part i"; the hanger, when
// hang >= 0, gets call t<hang>.
func fanCalls(n, hang int) []call {
	var calls []call
	for i := range n {
		agent := "helper"
		if i == hang {
			agent = "hanger"
		}
		calls = append(calls, call{ID: fmt.Sprintf("t%d", i), Name: "task", Args: taskArgs(agent, fmt.Sprintf("part %d", i), "")})
	}
	return calls
}

// leadJoins answers with the results of calls t0..t(n-1), in order.
func leadJoins(n int, req wireReq) wireStep {
	parts := make([]string, n)
	for i := range n {
		r := req.Results[fmt.Sprintf("t%d", i)]
		parts[i] = r.Content
		if r.IsError {
			parts[i] = "error: " + r.Content
		}
	}
	return wireStep{turn: turn{Text: strings.Join(parts, " | ")}}
}

func TestSubagentsEightAtOnce(t *testing.T) {
	const n = 8
	for _, wire := range wires {
		t.Run(wire, func(t *testing.T) {
			// No answer leaves the server until all eight sub-agents are inside their model call:
			// with fewer running at once the barrier never opens and they run out of time.
			inside := newArrivals(n)
			_, model := newWireFake(t, wire, -1, func(_ int, req wireReq) wireStep {
				switch {
				case req.Model == "lead" && req.Step == 1:
					return wireStep{turn: turn{Calls: fanCalls(n, -1)}}
				case req.Model == "lead":
					return leadJoins(n, req)
				}
				inside.arrive()
				return wireStep{turn: turn{Text: "answer to " + req.Prompt}, block: inside.all}
			})
			var reports reportLog
			rt := &Runtime{
				Definitions: map[string]Definition{"lead": mustDef(t, "lead", fanLeadDef), "helper": mustDef(t, "helper", fanHelperDef)},
				Model:       wireResolver(model), MaxSubagents: n, MaxParallelTools: n, OnSubagent: reports.add,
			}
			res, err := rt.Run(context.Background(), "lead", "go", nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for i := range n {
				want = append(want, fmt.Sprintf("answer to part %d", i))
			}
			if res.Answer != strings.Join(want, " | ") {
				t.Errorf("answer %q", res.Answer)
			}
			if got := len(reports.all()); got != n {
				t.Errorf("%d reports, want %d", got, n)
			}
		})
	}
}

func TestSubagentHangingIsCutAtItsOwnTimeout(t *testing.T) {
	const n, hang = 8, 5
	for _, wire := range wires {
		t.Run(wire, func(t *testing.T) {
			inside := newArrivals(n)
			never := make(chan struct{})
			cut := make(chan struct{})
			var once sync.Once
			_, model := newWireFake(t, wire, -1, func(_ int, req wireReq) wireStep {
				switch {
				case req.Model == "lead" && req.Step == 1:
					return wireStep{turn: turn{Calls: fanCalls(n, hang)}}
				case req.Model == "lead":
					return leadJoins(n, req)
				case req.Model == "hanger":
					inside.arrive()
					return wireStep{block: never, gone: func() { once.Do(func() { close(cut) }) }}
				}
				// The others answer once the hanger runs too, so that it hangs beside them.
				inside.arrive()
				return wireStep{turn: turn{Text: "answer to " + req.Prompt}, block: inside.all}
			})
			var reports reportLog
			rt := &Runtime{
				Definitions: map[string]Definition{
					"lead": mustDef(t, "lead", fanLeadDef), "helper": mustDef(t, "helper", fanHelperDef), "hanger": mustDef(t, "hanger", hangerDef),
				},
				Model: wireResolver(model), MaxSubagents: n, MaxParallelTools: n, OnSubagent: reports.add,
			}
			res, err := rt.Run(context.Background(), "lead", "go", nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for i := range n {
				want = append(want, fmt.Sprintf("answer to part %d", i))
			}
			want[hang] = "(the sub-agent gave no answer)\n\n[partial result: the sub-agent stopped before it finished (time budget of 300ms reached)]"
			if res.Answer != strings.Join(want, " | ") {
				t.Errorf("answer:\n%s\nwant:\n%s", res.Answer, strings.Join(want, " | "))
			}
			reps := reports.all()
			if len(reps) != n {
				t.Fatalf("%d reports, want %d", len(reps), n)
			}
			for _, r := range reps {
				wantBy := StoppedAnswer
				if r.Agent == "hanger" {
					wantBy = StoppedTime
				}
				if r.Err != nil || r.Result.StoppedBy != wantBy {
					t.Errorf("%s report: stopped by %q, err %v; want %q", r.Agent, r.Result.StoppedBy, r.Err, wantBy)
				}
			}
			waitFor(t, cut, "the hanging model call's cancellation at the server")
		})
	}
}

func TestSubagentsCancelledWithTheirParent(t *testing.T) {
	const n = 8
	for _, wire := range wires {
		t.Run(wire, func(t *testing.T) {
			inside := newArrivals(n)
			never := make(chan struct{})
			var goneWG sync.WaitGroup
			goneWG.Add(n)
			_, model := newWireFake(t, wire, -1, func(_ int, req wireReq) wireStep {
				if req.Model == "lead" {
					return wireStep{turn: turn{Calls: fanCalls(n, -1)}}
				}
				inside.arrive()
				return wireStep{block: never, gone: goneWG.Done}
			})
			var reports reportLog
			rt := &Runtime{
				Definitions: map[string]Definition{"lead": mustDef(t, "lead", fanLeadDef), "helper": mustDef(t, "helper", fanHelperDef)},
				Model:       wireResolver(model), MaxSubagents: n, MaxParallelTools: n, OnSubagent: reports.add,
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				<-inside.all // all eight are blocked in their model calls
				cancel()
			}()
			res, err := rt.Run(ctx, "lead", "go", nil, nil)
			if !errors.Is(err, context.Canceled) || res.StoppedBy != StoppedCancelled {
				t.Fatalf("err %v, stopped by %q", err, res.StoppedBy)
			}
			reps := reports.all()
			if len(reps) != n {
				t.Fatalf("%d reports, want %d", len(reps), n)
			}
			for _, r := range reps {
				if !errors.Is(r.Err, context.Canceled) || r.Result.StoppedBy != StoppedCancelled {
					t.Errorf("report %s: err %v, stopped by %q", r.RunID, r.Err, r.Result.StoppedBy)
				}
			}
			// Each of the eight model calls sees its request cancelled at the server.
			gone := make(chan struct{})
			go func() {
				goneWG.Wait()
				close(gone)
			}()
			waitFor(t, gone, "the cancellation of all eight model calls")
		})
	}
}

// A sub-agent whose budget runs out hands its parent what it had, marked as partial, sources included.
func TestSubagentPartialResultReachesTheParent(t *testing.T) {
	for _, wire := range wires {
		t.Run(wire, func(t *testing.T) {
			k := openKB(t)
			_, model := newWireFake(t, wire, -1, func(_ int, req wireReq) wireStep {
				switch {
				case req.Model == "lead" && req.Step == 1:
					return wireStep{turn: turn{Calls: []call{{ID: "t", Name: "task", Args: taskArgs("helper", "Partial indexes?", "")}}}}
				case req.Model == "lead":
					r := req.Results["t"]
					m := resultSourceRE.FindStringSubmatch(r.Content)
					if m == nil || r.IsError {
						return wireStep{turn: turn{Text: "no source in " + r.Content}}
					}
					return wireStep{turn: turn{Text: "Partly answered [" + m[1] + "]."}}
				case req.Step == 1:
					return wireStep{turn: turn{Calls: []call{{ID: "s", Name: "kb_search", Args: `{"query":"partial index"}`}}}}
				}
				// Step 2 of 2: what it found so far, and one more search it will not be given.
				m := firstSourceRE.FindStringSubmatch(req.Results["s"].Content)
				return wireStep{turn: turn{Text: "So far: a partial index covers some rows [" + m[1] + "].", Calls: []call{{ID: "s2", Name: "kb_search", Args: `{"query":"more"}`}}}}
			})
			var reports reportLog
			rt := &Runtime{
				Definitions: map[string]Definition{
					"lead":   mustDef(t, "lead", fanLeadDef),
					"helper": mustDef(t, "helper", "---\ndescription: helps\nmode: subagent\nmodel: fake/helper\nsteps: 2\n---\nYou help."),
				},
				Tools: map[string]Tool{"kb_search": KBSearch(k)},
				Model: wireResolver(model), OnSubagent: reports.add,
			}
			res, err := rt.Run(context.Background(), "lead", "go", nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got panther.Message
			for _, m := range res.Messages {
				if m.ToolCallID == "t" {
					got = m
				}
			}
			n := resultSourceRE.FindStringSubmatch(got.Content)
			if got.IsError || n == nil ||
				!strings.HasPrefix(got.Content, "So far: a partial index covers some rows ["+n[1]+"].\n\n[partial result: the sub-agent stopped before it finished (step budget of 2 reached)]") ||
				!strings.Contains(got.Content, "["+n[1]+"] Indexes — Indexes > Partial Indexes ("+partialLink+")") {
				t.Errorf("the parent was answered:\n%s", got.Content)
			}
			if len(res.Citations) != 1 || res.Citations[0].Link() != partialLink {
				t.Errorf("the lead cites %+v", res.Citations)
			}
			if reps := reports.all(); len(reps) != 1 || reps[0].Result.StoppedBy != StoppedSteps || reps[0].Err != nil {
				t.Errorf("reports %+v", reps)
			}
		})
	}
}

var startedRE = regexp.MustCompile(`^task (\S+) started in the background`)

func bgTaskArgs(agent, prompt string) string {
	b, _ := json.Marshal(map[string]any{"agent": agent, "prompt": prompt, "background": true})
	return string(b)
}

func resultArgs(id string, wait float64) string {
	b, _ := json.Marshal(map[string]any{"id": id, "wait_seconds": wait})
	return string(b)
}

// A background task is started, found still running, collected by id, and kept as a child session
// under that id.
func TestBackgroundTaskCollectedLater(t *testing.T) {
	for _, wire := range wires {
		t.Run(wire, func(t *testing.T) {
			ctx := context.Background()
			k := openKB(t)
			db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			// The sub-agent's answer waits for the lead's third step: until then it is running.
			release := make(chan struct{})
			var once sync.Once
			var mu sync.Mutex
			var id string
			seen := map[string]wireResult{}
			_, model := newWireFake(t, wire, -1, func(_ int, req wireReq) wireStep {
				switch {
				case req.Model == "lead" && req.Step == 1:
					return wireStep{turn: turn{Calls: []call{{ID: "bg", Name: "task", Args: bgTaskArgs("helper", "Partial indexes?")}}}}
				case req.Model == "lead" && req.Step == 2:
					m := startedRE.FindStringSubmatch(req.Results["bg"].Content)
					if m == nil {
						return wireStep{turn: turn{Text: "not started: " + req.Results["bg"].Content}}
					}
					mu.Lock()
					id = m[1]
					mu.Unlock()
					return wireStep{turn: turn{Calls: []call{
						{ID: "now", Name: "task_result", Args: resultArgs(m[1], 0)},
						{ID: "nope", Name: "task_result", Args: resultArgs("nope", 0)},
						{ID: "long", Name: "task_result", Args: resultArgs(m[1], 500)},
					}}}
				case req.Model == "lead" && req.Step == 3:
					mu.Lock()
					maps.Copy(seen, req.Results)
					mu.Unlock()
					once.Do(func() { close(release) })
					return wireStep{turn: turn{Calls: []call{{ID: "wait", Name: "task_result", Args: resultArgs(id, 60)}}}}
				case req.Model == "lead":
					r := req.Results["wait"]
					mu.Lock()
					seen["wait"] = r
					mu.Unlock()
					m := resultSourceRE.FindStringSubmatch(r.Content)
					if m == nil {
						return wireStep{turn: turn{Text: "no source in " + r.Content}}
					}
					return wireStep{turn: turn{Text: "Collected [" + m[1] + "]."}}
				case req.Step == 1:
					return wireStep{turn: turn{Calls: []call{{ID: "s", Name: "kb_search", Args: `{"query":"partial index"}`}}}}
				}
				m := firstSourceRE.FindStringSubmatch(req.Results["s"].Content)
				return wireStep{turn: turn{Text: "Partial indexes cover some rows [" + m[1] + "]."}, block: release}
			})
			var reports reportLog
			s := &Sessions{Runtime: &Runtime{
				Definitions: map[string]Definition{"lead": mustDef(t, "lead", fanLeadDef), "helper": mustDef(t, "helper", fanHelperDef)},
				Tools:       map[string]Tool{"kb_search": KBSearch(k)},
				Model:       wireResolver(model), OnSubagent: reports.add,
			}, Store: db}
			sess, res, err := s.Ask(ctx, AskRequest{Agent: "lead", Prompt: "go"})
			if err != nil {
				t.Fatal(err)
			}
			if id == "" {
				t.Fatalf("no task id; answer %q", res.Answer)
			}
			checks := []struct {
				call, want string
				isErr      bool
			}{
				{"now", "task " + id + " (sub-agent helper: Partial indexes?) is still running", false},
				{"nope", `task_result: no background task "nope"; this agent's are: ` + id, true},
				{"long", "task_result: wait_seconds is 500; want 0 to 120", true},
				{"wait", "Partial indexes cover some rows [", false},
			}
			for _, c := range checks {
				if r := seen[c.call]; !strings.HasPrefix(r.Content, c.want) || r.IsError != c.isErr {
					t.Errorf("%s: the model was sent %q (error %v), want %q (error %v)", c.call, r.Content, r.IsError, c.want, c.isErr)
				}
			}
			if !strings.Contains(seen["wait"].Content, "Indexes — Indexes > Partial Indexes ("+partialLink+")") {
				t.Errorf("the collected result lacks its source:\n%s", seen["wait"].Content)
			}
			if !strings.HasPrefix(res.Answer, "Collected [") || len(res.Citations) != 1 || res.Citations[0].Link() != partialLink {
				t.Errorf("answer %q, citations %+v", res.Answer, res.Citations)
			}
			reps := reports.all()
			if len(reps) != 1 || reps[0].RunID != id || reps[0].Err != nil || reps[0].Result.StoppedBy != StoppedAnswer {
				t.Fatalf("reports %+v, want one for %s", reps, id)
			}
			child, err := db.Session(ctx, id)
			if err != nil || child.ParentID != sess.ID || child.Status != panther.SessionDone {
				t.Errorf("child session %+v, %v", child, err)
			}
		})
	}
}

// A background task still running when the run ends is cancelled, and reported, before Run returns.
func TestBackgroundTaskCancelledWhenTheRunEnds(t *testing.T) {
	cases := []struct {
		name string
		// cancelParent cancels the run while the lead waits in task_result, instead of letting
		// it answer.
		cancelParent bool
	}{
		{"the lead answers without collecting it", false},
		{"the lead is cancelled while it waits for it", true},
	}
	for _, wire := range wires {
		for _, tc := range cases {
			t.Run(wire+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				arrived, gone := make(chan struct{}), make(chan struct{})
				never := make(chan struct{})
				_, model := newWireFake(t, wire, -1, func(_ int, req wireReq) wireStep {
					switch {
					case req.Model == "lead" && req.Step == 1:
						return wireStep{turn: turn{Calls: []call{{ID: "bg", Name: "task", Args: bgTaskArgs("helper", "forever")}}}}
					case req.Model == "lead" && tc.cancelParent:
						id := startedRE.FindStringSubmatch(req.Results["bg"].Content)
						return wireStep{turn: turn{Calls: []call{{ID: "wait", Name: "task_result", Args: resultArgs(id[1], 60)}}}}
					case req.Model == "lead":
						// Once the sub-agent is inside its model call.
						return wireStep{turn: turn{Text: "Done without it."}, block: arrived}
					}
					close(arrived)
					return wireStep{block: never, gone: func() { close(gone) }}
				})
				var reports reportLog
				s := &Sessions{Runtime: &Runtime{
					Definitions: map[string]Definition{"lead": mustDef(t, "lead", fanLeadDef), "helper": mustDef(t, "helper", fanHelperDef)},
					Model:       wireResolver(model), OnSubagent: reports.add,
				}, Store: db}
				rctx, cancel := context.WithCancel(ctx)
				defer cancel()
				var log eventLog
				onEvent := log.add
				if tc.cancelParent {
					onEvent = func(e Event) {
						log.add(e)
						if e.Kind == EventToolStart && e.Tool == "task_result" {
							go func() {
								<-arrived
								cancel()
							}()
						}
					}
				}
				sess, res, err := s.Ask(rctx, AskRequest{Agent: "lead", Prompt: "go", OnEvent: onEvent})
				if tc.cancelParent {
					if !errors.Is(err, context.Canceled) || sess.Status != panther.SessionCancelled {
						t.Fatalf("err %v, session %+v", err, sess)
					}
				} else if err != nil || res.Answer != "Done without it." {
					t.Fatalf("answer %q, err %v", res.Answer, err)
				}
				// Reported before Run returned: the report is there now.
				reps := reports.all()
				if len(reps) != 1 || !errors.Is(reps[0].Err, context.Canceled) || reps[0].Result.StoppedBy != StoppedCancelled {
					t.Fatalf("reports %+v, want one cancelled", reps)
				}
				if ends := log.kinds(EventSubagentEnd); len(ends) != 1 || ends[0].RunID != reps[0].RunID || ends[0].Text != StoppedCancelled {
					t.Errorf("subagent_end events %+v", ends)
				}
				child, err := db.Session(ctx, reps[0].RunID)
				if err != nil || child.ParentID != sess.ID || child.Status != panther.SessionCancelled {
					t.Errorf("child session %+v, %v", child, err)
				}
				waitFor(t, gone, "the background model call's cancellation at the server")
			})
		}
	}
}

// A background task holds a sub-agent slot: with one slot, a foreground task waits for it.
func TestBackgroundTaskHoldsASlot(t *testing.T) {
	release := make(chan struct{})
	slotWaitHook = func() { close(release) } // the foreground task waits: let the background one end
	defer func() { slotWaitHook = nil }()
	_, model := newWireFake(t, wireOpenAI, -1, func(_ int, req wireReq) wireStep {
		switch {
		case req.Model == "lead" && req.Step == 1:
			return wireStep{turn: turn{Calls: []call{{ID: "bg", Name: "task", Args: bgTaskArgs("helper", "background part")}}}}
		case req.Model == "lead" && req.Step == 2:
			id := startedRE.FindStringSubmatch(req.Results["bg"].Content)
			return wireStep{turn: turn{Calls: []call{{ID: "fg", Name: "task", Args: taskArgs("helper", "foreground part", "")}, {ID: "wait", Name: "task_result", Args: resultArgs(id[1], 60)}}}}
		case req.Model == "lead":
			return wireStep{turn: turn{Text: req.Results["fg"].Content + " | " + req.Results["wait"].Content}}
		case req.Prompt == "background part":
			return wireStep{turn: turn{Text: "background done"}, block: release}
		}
		return wireStep{turn: turn{Text: "foreground done"}}
	})
	rt := &Runtime{
		Definitions: map[string]Definition{"lead": mustDef(t, "lead", fanLeadDef), "helper": mustDef(t, "helper", fanHelperDef)},
		Model:       wireResolver(model), MaxSubagents: 1,
	}
	res, err := rt.Run(context.Background(), "lead", "go", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer != "foreground done | background done" {
		t.Errorf("answer %q", res.Answer)
	}
}

// task_result comes and goes with task, and may not be a tool of the process.
func TestTaskResultFollowsTask(t *testing.T) {
	_, model := newWireFake(t, wireOpenAI, -1, func(_ int, req wireReq) wireStep {
		if req.Step == 1 {
			return wireStep{turn: turn{Calls: []call{{ID: "r", Name: "task_result", Args: resultArgs("x", 0)}}}}
		}
		r := req.Results["r"]
		return wireStep{turn: turn{Text: fmt.Sprintf("tools %s; %s (%v)", strings.Join(req.Tools, ","), r.Content, r.IsError)}}
	})
	cases := []struct {
		name, def string
		want      string
	}{
		{"task allowed", "---\ndescription: x\nmode: all\nmodel: fake/x\ntools:\n  \"*\": false\n  task: true\n---\nX.",
			`tools task,task_result; task_result: no background task "x"; this agent has started none: not found (true)`},
		{"task needs approval, collecting does not", "---\ndescription: x\nmode: all\nmodel: fake/x\npermission:\n  task: ask\n---\nX.",
			`tools task,task_result; task_result: no background task "x"; this agent has started none: not found (true)`},
		{"task denied", "---\ndescription: x\nmode: all\nmodel: fake/x\npermission:\n  task: deny\n---\nX.",
			"tools ; tool task_result is not permitted for agent x (true)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rt := &Runtime{Definitions: map[string]Definition{"x": mustDef(t, "x", tc.def)}, Model: wireResolver(model)}
			res, err := rt.Run(context.Background(), "x", "go", nil, nil)
			if err != nil || res.Answer != tc.want {
				t.Errorf("answer %q, err %v\nwant %q", res.Answer, err, tc.want)
			}
		})
	}
	rt := &Runtime{Definitions: map[string]Definition{"x": mustDef(t, "x", "---\ndescription: x\n---\nX.")}, Model: wireResolver(model),
		Tools: map[string]Tool{"task_result": funcTool{name: "task_result"}}}
	if _, err := rt.Run(context.Background(), "x", "go", nil, nil); !errors.Is(err, panther.ErrInvalid) || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("err = %v", err)
	}
}
