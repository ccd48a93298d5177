package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"panther"
	"panther/llm"
)

// Helpers to read a wire request of the fake model.

func systemOf(r wireRequest) string {
	if len(r.Messages) > 0 && r.Messages[0].Role == "system" && r.Messages[0].Content != nil {
		return *r.Messages[0].Content
	}
	return ""
}

func promptOf(r wireRequest) string {
	for _, m := range r.Messages {
		if m.Role == "user" && m.Content != nil {
			return *m.Content
		}
	}
	return ""
}

// stepOf is the step of the conversation a request is for, from 1.
func stepOf(r wireRequest) int {
	n := 1
	for _, m := range r.Messages {
		if m.Role == "assistant" {
			n++
		}
	}
	return n
}

func toolsOf(r wireRequest) []string {
	var names []string
	for _, t := range r.Tools {
		names = append(names, t.Function.Name)
	}
	return names
}

func taskArgs(agent, prompt, desc string) string {
	b, _ := json.Marshal(map[string]string{"agent": agent, "prompt": prompt, "description": desc})
	return string(b)
}

func mustDef(t *testing.T, name, src string) Definition {
	t.Helper()
	d, err := ParseDefinition(name, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// resolver serves the fake model under the name after "fake/" ("default" for the empty name).
func resolver(model *llm.OpenAI, others map[string]panther.Model) func(string) (panther.Model, string, error) {
	return func(name string) (panther.Model, string, error) {
		if name == "" {
			return model, "default", nil
		}
		provider, m, _ := strings.Cut(name, "/")
		if provider == "fake" {
			return model, m, nil
		}
		if o, ok := others[provider]; ok {
			return o, m, nil
		}
		return nil, "", fmt.Errorf("no provider %q", provider)
	}
}

// counted is a tool that counts its runs.
func counted(name string, n *atomic.Int32) Tool {
	return funcTool{name: name, run: func(ctx context.Context, args json.RawMessage) (ToolResult, error) {
		n.Add(1)
		return ToolResult{Content: name + " ran with " + string(args)}, nil
	}}
}

// serialCheck fails the test when onEvent calls overlap.
type serialCheck struct {
	in      atomic.Bool
	overlap atomic.Bool
	log     eventLog
}

func (s *serialCheck) onEvent(e Event) {
	if !s.in.CompareAndSwap(false, true) {
		s.overlap.Store(true)
	}
	s.log.add(e)
	s.in.Store(false)
}

func TestRuntimePermissions(t *testing.T) {
	type approval struct {
		agent, tool, args string
	}
	cases := []struct {
		name     string
		agent    string // a built-in, or "asker" below
		approve  Approver
		calls    []call
		offered  []string
		want     map[string]string // call id → tool message (prefix)
		wantRuns map[string]int32
	}{
		{
			name:  "denied and invented tools are not run",
			agent: "general",
			calls: []call{
				{ID: "c1", Name: "crawl", Args: `{"url":"https://evil.example"}`},
				{ID: "c2", Name: "web_fetch", Args: `{"url":"https://evil.example"}`},
				{ID: "c3", Name: "shell", Args: `{"cmd":"rm -rf /"}`},
				{ID: "c4", Name: "kb_search", Args: `{"query":"x"}`},
			},
			offered: []string{"kb_search", "task", "task_result"},
			want: map[string]string{
				"c1": "[tool error] tool crawl is not permitted for agent general",
				"c2": "[tool error] tool web_fetch is not permitted for agent general",
				"c3": "[tool error] tool shell is not permitted for agent general",
				"c4": `kb_search ran with {"query":"x"}`,
			},
			wantRuns: map[string]int32{"crawl": 0, "web_fetch": 0, "kb_search": 1},
		},
		{
			name:     "the researcher may fetch and crawl",
			agent:    "researcher",
			calls:    []call{{ID: "c1", Name: "crawl", Args: `{}`}, {ID: "c2", Name: "web_fetch", Args: `{}`}},
			offered:  []string{"crawl", "kb_search", "web_fetch", "task", "task_result"},
			want:     map[string]string{"c1": "crawl ran", "c2": "web_fetch ran"},
			wantRuns: map[string]int32{"crawl": 1, "web_fetch": 1},
		},
		{
			name:     "ask without an approver is refused",
			agent:    "asker",
			calls:    []call{{ID: "c1", Name: "web_fetch", Args: `{"url":"https://a.example"}`}},
			offered:  []string{"crawl", "kb_search", "web_fetch", "task", "task_result"},
			want:     map[string]string{"c1": "[tool error] tool web_fetch needs approval for agent asker, and no human is attached to approve it"},
			wantRuns: map[string]int32{"web_fetch": 0},
		},
		{
			name:  "ask approved",
			agent: "asker",
			approve: func(ctx context.Context, agent, tool string, args json.RawMessage) (bool, error) {
				return true, nil
			},
			calls:    []call{{ID: "c1", Name: "web_fetch", Args: `{"url":"https://a.example"}`}},
			offered:  []string{"crawl", "kb_search", "web_fetch", "task", "task_result"},
			want:     map[string]string{"c1": "web_fetch ran"},
			wantRuns: map[string]int32{"web_fetch": 1},
		},
		{
			name:  "ask refused",
			agent: "asker",
			approve: func(ctx context.Context, agent, tool string, args json.RawMessage) (bool, error) {
				return false, nil
			},
			calls:    []call{{ID: "c1", Name: "web_fetch", Args: `{"url":"https://a.example"}`}},
			offered:  []string{"crawl", "kb_search", "web_fetch", "task", "task_result"},
			want:     map[string]string{"c1": "[tool error] tool web_fetch was not approved for agent asker"},
			wantRuns: map[string]int32{"web_fetch": 0},
		},
		{
			name:  "approver fails",
			agent: "asker",
			approve: func(ctx context.Context, agent, tool string, args json.RawMessage) (bool, error) {
				return true, errors.New("terminal closed")
			},
			calls:    []call{{ID: "c1", Name: "web_fetch", Args: `{}`}},
			offered:  []string{"crawl", "kb_search", "web_fetch", "task", "task_result"},
			want:     map[string]string{"c1": "[tool error] tool web_fetch for agent asker: approval failed: terminal closed"},
			wantRuns: map[string]int32{"web_fetch": 0},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake, model := newFakeModel(t, func(n int, req wireRequest) turn {
				if stepOf(req) == 1 {
					return turn{Calls: tc.calls}
				}
				return turn{Text: "Finished."}
			})
			defs, err := BuiltinDefinitions()
			if err != nil {
				t.Fatal(err)
			}
			defs["asker"] = mustDef(t, "asker", "---\ndescription: asks\nmode: primary\npermission:\n  web_fetch: ask\n---\nAsk first.")
			runs := map[string]*atomic.Int32{}
			tools := map[string]Tool{}
			for _, n := range []string{"kb_search", "crawl", "web_fetch"} {
				runs[n] = new(atomic.Int32)
				tools[n] = counted(n, runs[n])
			}
			var asked []approval
			var mu sync.Mutex
			approve := tc.approve
			if approve != nil {
				approve = func(ctx context.Context, agent, tool string, args json.RawMessage) (bool, error) {
					mu.Lock()
					asked = append(asked, approval{agent, tool, string(args)})
					mu.Unlock()
					return tc.approve(ctx, agent, tool, args)
				}
			}
			rt := &Runtime{Definitions: defs, Tools: tools, Model: resolver(model, nil), Approve: approve}
			res, err := rt.Run(context.Background(), tc.agent, "go", nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.StoppedBy != StoppedAnswer || res.Answer != "Finished." {
				t.Errorf("result: %q, %q", res.StoppedBy, res.Answer)
			}
			reqs := fake.requests()
			if got := toolsOf(reqs[0]); !slices.Equal(got, tc.offered) {
				t.Errorf("tools offered %v, want %v", got, tc.offered)
			}
			msgs := reqs[1].toolMessages()
			for id, want := range tc.want {
				if !strings.HasPrefix(msgs[id], want) {
					t.Errorf("%s: model got %q, want %q", id, msgs[id], want)
				}
			}
			for n, want := range tc.wantRuns {
				if got := runs[n].Load(); got != want {
					t.Errorf("%s ran %d times, want %d", n, got, want)
				}
			}
			if tc.approve != nil && (len(asked) != 1 || asked[0] != (approval{"asker", "web_fetch", tc.calls[0].Args})) {
				t.Errorf("approver asked %+v", asked)
			}
		})
	}
}

var (
	resultSourceRE = regexp.MustCompile(`Sources of this result:\n\[(\d+)\] `)
	firstSourceRE  = regexp.MustCompile(`\[(\d+)\] `)
)

// leadDef and helperDef are the agents of the task tests: a primary lead that delegates, a helper.
const (
	leadDef   = "---\ndescription: leads\nmode: primary\nmodel: fake/lead\n---\nYou lead."
	helperDef = "---\ndescription: helps with one question\nmode: subagent\nmodel: fake/helper\n---\nYou help."
)

func TestTaskParallelSubagentsAndCitations(t *testing.T) {
	k := openKB(t)
	// meet proves that the two sub-agents run at the same time: each waits for the other.
	var arrived atomic.Int32
	both := make(chan struct{})
	meet := funcTool{name: "meet", run: func(ctx context.Context, _ json.RawMessage) (ToolResult, error) {
		if arrived.Add(1) == 2 {
			close(both)
		}
		select {
		case <-both:
			return ToolResult{Content: "met"}, nil
		case <-ctx.Done():
			return ToolResult{}, errors.New("meet: the other sub-agent never came")
		}
	}}
	questions := map[string]string{"Partial indexes?": "partial index", "VACUUM?": "VACUUM dead tuples"}
	fake, model := newFakeModel(t, func(n int, req wireRequest) turn {
		switch req.Model {
		case "lead":
			if stepOf(req) == 1 {
				return turn{Text: "Delegating.", Calls: []call{
					{ID: "t1", Name: "task", Args: taskArgs("helper", "Partial indexes?", "partial indexes")},
					{ID: "t2", Name: "task", Args: taskArgs("helper", "VACUUM?", "")},
				}}
			}
			// Cite the first source each sub-agent's result lists, by the number it has there.
			var refs []string
			for _, id := range []string{"t1", "t2"} {
				if m := resultSourceRE.FindStringSubmatch(req.toolMessages()[id]); m != nil {
					refs = append(refs, "["+m[1]+"]")
				}
			}
			return turn{Text: "Partial indexes " + refs[0] + "; VACUUM " + refs[1] + "."}
		case "helper":
			if stepOf(req) == 1 {
				q, _ := json.Marshal(map[string]string{"query": questions[promptOf(req)]})
				return turn{Calls: []call{{ID: "m", Name: "meet", Args: `{}`}, {ID: "s", Name: "kb_search", Args: string(q)}}}
			}
			m := firstSourceRE.FindStringSubmatch(req.toolMessages()["s"])
			return turn{Text: "Found it [" + m[1] + "], not here [99]."}
		}
		return turn{Text: "who am I?"}
	})
	var reports []SubagentReport
	rt := &Runtime{
		Definitions: map[string]Definition{"lead": mustDef(t, "lead", leadDef), "helper": mustDef(t, "helper", helperDef)},
		Tools:       map[string]Tool{"kb_search": KBSearch(k), "meet": meet},
		Model:       resolver(model, nil),
		ToolTimeout: 20 * time.Second, // a bound for meet, should the sub-agents run one after the other
		OnSubagent:  func(r SubagentReport) { reports = append(reports, r) },
	}
	var sc serialCheck
	res, err := rt.Run(context.Background(), "lead", "Tell me about partial indexes and VACUUM.", nil, sc.onEvent)
	if err != nil {
		t.Fatal(err)
	}
	if res.RunID == "" || res.StoppedBy != StoppedAnswer {
		t.Fatalf("result = %+v", res)
	}

	// Each sub-agent ran once, from a fresh context, and reported.
	if len(reports) != 2 {
		t.Fatalf("%d reports, want 2", len(reports))
	}
	byPrompt := map[string]SubagentReport{}
	for _, r := range reports {
		byPrompt[r.Prompt] = r
		if r.ParentRunID != res.RunID || r.RunID == "" || r.RunID == res.RunID || r.Agent != "helper" || r.Err != nil || r.Result.Model != "helper" {
			t.Errorf("report = %+v", r)
		}
	}
	if d := byPrompt["Partial indexes?"].Description; d != "partial indexes" {
		t.Errorf("description %q", d)
	}
	if d := byPrompt["VACUUM?"].Description; d != "VACUUM?" {
		t.Errorf("description %q, want the prompt when none is given", d)
	}
	for _, req := range fake.requests() {
		if req.Model == "helper" && stepOf(req) == 1 {
			if len(req.Messages) != 2 || !strings.HasPrefix(systemOf(req), "You help.") {
				t.Errorf("sub-agent's first request: %d messages, system %q", len(req.Messages), systemOf(req))
			}
		}
	}

	// The lead's answer cites the sub-agents' sources, which appear in its Sources list.
	var subLinks []string
	for _, p := range []string{"Partial indexes?", "VACUUM?"} {
		r := byPrompt[p].Result
		if len(r.Citations) != 1 || strings.Contains(r.Answer, "[99]") {
			t.Fatalf("sub-agent %q: answer %q, citations %+v", p, r.Answer, r.Citations)
		}
		subLinks = append(subLinks, r.Citations[0].Link())
	}
	if subLinks[0] != partialLink {
		t.Errorf("the partial index sub-agent cited %s", subLinks[0])
	}
	var gotLinks []string
	for _, c := range res.Citations {
		gotLinks = append(gotLinks, c.Link())
		if !strings.Contains(res.Answer, "] "+c.Link()) {
			t.Errorf("answer's Sources lack %s:\n%s", c.Link(), res.Answer)
		}
	}
	slices.Sort(gotLinks)
	slices.Sort(subLinks)
	if !slices.Equal(gotLinks, subLinks) {
		t.Errorf("lead cites %v, want the sub-agents' %v\n%s", gotLinks, subLinks, res.Answer)
	}
	// What the lead's model saw: the sub-agent's answer with its source described under the same number.
	for _, m := range res.Messages {
		if m.ToolCallID != "t1" && m.ToolCallID != "t2" {
			continue
		}
		n := resultSourceRE.FindStringSubmatch(m.Content)
		if m.IsError || n == nil || !strings.HasPrefix(m.Content, "Found it ["+n[1]+"], not here.") {
			t.Errorf("task result %s does not cite its source by the number it lists:\n%s", m.ToolCallID, m.Content)
		}
		if m.ToolCallID == "t1" && (n == nil || !strings.Contains(m.Content, "["+n[1]+"] Indexes — Indexes > Partial Indexes ("+partialLink+")")) {
			t.Errorf("task result:\n%s", m.Content)
		}
	}

	// Events: framed sub-agents, their tool calls tagged with their run ids, no sub-agent text, never overlapping.
	if sc.overlap.Load() {
		t.Error("onEvent calls overlapped")
	}
	starts, ends := sc.log.kinds(EventSubagentStart), sc.log.kinds(EventSubagentEnd)
	if len(starts) != 2 || len(ends) != 2 {
		t.Fatalf("%d subagent_start, %d subagent_end events", len(starts), len(ends))
	}
	subIDs := map[string]bool{}
	for _, e := range append(starts, ends...) {
		subIDs[e.RunID] = true
		if e.Agent != "helper" || e.ParentRunID != res.RunID || e.Description == "" || e.Err != "" {
			t.Errorf("event %+v", e)
		}
	}
	if len(subIDs) != 2 || subIDs[res.RunID] {
		t.Errorf("sub-agent run ids %v", subIDs)
	}
	var subTools int
	for _, e := range sc.log.kinds(EventToolStart) {
		switch {
		case subIDs[e.RunID] && e.Agent == "helper" && e.ParentRunID == res.RunID:
			subTools++
		case e.RunID == res.RunID && e.Agent == "lead" && e.Tool == "task":
		default:
			t.Errorf("tool_start %+v", e)
		}
	}
	if subTools != 4 {
		t.Errorf("%d sub-agent tool_start events, want 4", subTools)
	}
	for _, e := range sc.log.kinds(EventText) {
		if e.RunID != res.RunID {
			t.Errorf("sub-agent text forwarded: %+v", e)
		}
	}
}

func TestTaskMaxSubagents(t *testing.T) {
	for _, limit := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			const tasks = 5
			// The first sub-agents are held until as many run as the limit allows and all the others
			// wait for a slot; a missing bound would let all of them in, and the peak show it.
			var mu sync.Mutex
			var running, peak, waiting int
			full := make(chan struct{})
			check := func() {
				if running == limit && waiting == tasks-limit {
					select {
					case <-full:
					default:
						close(full)
					}
				}
			}
			slotWaitHook = func() {
				mu.Lock()
				defer mu.Unlock()
				waiting++
				check()
			}
			defer func() { slotWaitHook = nil }()
			work := funcTool{name: "work", run: func(ctx context.Context, _ json.RawMessage) (ToolResult, error) {
				mu.Lock()
				running++
				peak = max(peak, running)
				check()
				mu.Unlock()
				defer func() {
					mu.Lock()
					running--
					mu.Unlock()
				}()
				select {
				case <-full:
					return ToolResult{Content: "worked"}, nil
				case <-ctx.Done():
					return ToolResult{}, errors.New("work: the others never queued")
				}
			}}
			var calls []call
			for i := range tasks {
				calls = append(calls, call{ID: fmt.Sprintf("t%d", i), Name: "task", Args: taskArgs("helper", fmt.Sprintf("part %d", i), "")})
			}
			fake, model := newFakeModel(t, func(n int, req wireRequest) turn {
				if stepOf(req) == 1 {
					if req.Model == "lead" {
						return turn{Calls: calls}
					}
					return turn{Calls: []call{{ID: "w", Name: "work", Args: `{}`}}}
				}
				return turn{Text: "done " + promptOf(req)}
			})
			var reports atomic.Int32
			rt := &Runtime{
				Definitions:      map[string]Definition{"lead": mustDef(t, "lead", leadDef), "helper": mustDef(t, "helper", helperDef)},
				Tools:            map[string]Tool{"work": work},
				Model:            resolver(model, nil),
				MaxSubagents:     limit,
				MaxParallelTools: 8,
				ToolTimeout:      5 * time.Second, // a bound for work, should the sub-agents not queue
				OnSubagent:       func(SubagentReport) { reports.Add(1) },
			}
			res, err := rt.Run(context.Background(), "lead", "go", nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if peak != limit {
				t.Errorf("peak of %d sub-agents at once, want %d", peak, limit)
			}
			if reports.Load() != tasks {
				t.Errorf("%d reports, want %d", reports.Load(), tasks)
			}
			msgs := fake.requests()
			last := msgs[len(msgs)-1].toolMessages()
			for i := range tasks {
				if got, want := last[fmt.Sprintf("t%d", i)], fmt.Sprintf("done part %d", i); got != want {
					t.Errorf("task %d: %q, want %q", i, got, want)
				}
			}
			if res.StoppedBy != StoppedAnswer {
				t.Errorf("stopped by %s", res.StoppedBy)
			}
		})
	}
}

// panicModel is a model whose client crashes.
type panicModel struct{}

func (panicModel) Complete(context.Context, panther.ModelRequest, func(panther.StreamEvent)) (panther.ModelResponse, error) {
	panic("model client on fire")
}

func TestTaskFailuresAreIsolated(t *testing.T) {
	hang := funcTool{name: "hang", run: func(ctx context.Context, _ json.RawMessage) (ToolResult, error) {
		<-ctx.Done()
		return ToolResult{}, ctx.Err()
	}}
	defs := map[string]Definition{
		"lead":   mustDef(t, "lead", "---\ndescription: leads\nmode: primary\nmodel: fake/lead\n---\nYou lead."),
		"good":   mustDef(t, "good", "---\ndescription: works\nmodel: fake/good\n---\nYou work."),
		"broken": mustDef(t, "broken", "---\ndescription: no model\nmodel: gone/x\n---\nYou fail."),
		"crash":  mustDef(t, "crash", "---\ndescription: crashes\nmodel: panic/x\n---\nYou crash."),
		"slow":   mustDef(t, "slow", "---\ndescription: hangs\nmodel: fake/slow\ntimeout: 300ms\n---\nYou hang."),
		"busy":   mustDef(t, "busy", "---\ndescription: never done\nmodel: fake/busy\nsteps: 1\n---\nYou loop."),
	}
	calls := []call{
		{ID: "good", Name: "task", Args: taskArgs("good", "work", "")},
		{ID: "broken", Name: "task", Args: taskArgs("broken", "fail", "")},
		{ID: "crash", Name: "task", Args: taskArgs("crash", "crash", "")},
		{ID: "slow", Name: "task", Args: taskArgs("slow", "hang", "")},
		{ID: "busy", Name: "task", Args: taskArgs("busy", "loop", "")},
		{ID: "nobody", Name: "task", Args: taskArgs("nobody", "?", "")},
		{ID: "noprompt", Name: "task", Args: taskArgs("good", " ", "")},
	}
	_, model := newFakeModel(t, func(n int, req wireRequest) turn {
		switch req.Model {
		case "lead":
			if stepOf(req) == 1 {
				return turn{Calls: calls}
			}
			return turn{Text: "Some of it worked."}
		case "good":
			return turn{Text: "Good work."}
		case "slow":
			return turn{Text: "Waiting.", Calls: []call{{ID: "h", Name: "hang", Args: `{}`}}}
		case "busy":
			return turn{Text: "Still busy.", Calls: []call{{ID: "h", Name: "hang", Args: `{}`}}}
		}
		return turn{}
	})
	var mu sync.Mutex
	reports := map[string]SubagentReport{}
	rt := &Runtime{
		Definitions:      defs,
		Tools:            map[string]Tool{"hang": hang},
		Model:            resolver(model, map[string]panther.Model{"panic": panicModel{}}),
		MaxParallelTools: 8,
		OnSubagent: func(r SubagentReport) {
			mu.Lock()
			defer mu.Unlock()
			reports[r.Agent] = r
		},
	}
	var sc serialCheck
	res, err := rt.Run(context.Background(), "lead", "go", nil, sc.onEvent)
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer != "Some of it worked." {
		t.Errorf("answer %q", res.Answer)
	}
	want := map[string]struct {
		content string
		isErr   bool
	}{
		"good":     {"Good work.", false},
		"broken":   {`task broken: the sub-agent failed: agent "broken": model "gone/x": no provider "gone"`, true},
		"crash":    {"task crash: the sub-agent failed: it crashed: model client on fire", true},
		"slow":     {"Waiting.\n\n[partial result: the sub-agent stopped before it finished (time budget of 300ms reached)]", false},
		"busy":     {"Still busy.\n\n[partial result: the sub-agent stopped before it finished (step budget of 1 reached)]", false},
		"nobody":   {`task: no sub-agent "nobody"; the sub-agents are: broken, busy, crash, good, slow: invalid input`, true},
		"noprompt": {"task: prompt is empty; give the sub-agent its whole task: invalid input", true},
	}
	got := map[string]panther.Message{}
	for _, m := range res.Messages {
		if m.Role == panther.RoleTool {
			got[m.ToolCallID] = m
		}
	}
	for id, w := range want {
		if m := got[id]; m.Content != w.content || m.IsError != w.isErr {
			t.Errorf("%s: %q (error %v), want %q (error %v)", id, m.Content, m.IsError, w.content, w.isErr)
		}
	}
	if len(reports) != 5 || reports["good"].Err != nil || reports["crash"].Err == nil || reports["slow"].Result.StoppedBy != StoppedTime {
		t.Errorf("reports = %+v", reports)
	}
	var failed int
	for _, e := range sc.log.kinds(EventSubagentEnd) {
		if e.Err != "" {
			failed++
		}
	}
	if failed != 2 || sc.overlap.Load() {
		t.Errorf("%d failed subagent_end events, want 2 (overlap %v)", failed, sc.overlap.Load())
	}
}

var depthRE = regexp.MustCompile(`depth (\d+)`)

func TestTaskDepth(t *testing.T) {
	cases := []struct {
		name         string
		maxDepth     int
		maxSubagents int
		offered      []bool // task offered at depth 0, 1, ...
		started      int
		refusal      string // what the deepest task call was answered
	}{
		{"default depth", 0, 0, []bool{true, false}, 1, "tool task is not permitted for agent helper: at depth 1 it may not start sub-agents"},
		{"depth 2", 2, 0, []bool{true, true, false}, 2, "tool task is not permitted for agent helper: at depth 2 it may not start sub-agents"},
		{"no sub-agents", -1, 0, []bool{false}, 0, "tool task is not permitted for agent lead: at depth 0 it may not start sub-agents"},
		{"a nested call finds no free slot", 2, 1, []bool{true, true}, 1, "task helper: no sub-agent slot is free"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			offered := map[int]bool{}
			refusals := map[int]string{}
			_, model := newFakeModel(t, func(n int, req wireRequest) turn {
				m := depthRE.FindStringSubmatch(promptOf(req))
				d, _ := strconv.Atoi(m[1])
				if stepOf(req) == 1 {
					mu.Lock()
					offered[d] = slices.Contains(toolsOf(req), "task")
					if slices.Contains(toolsOf(req), "task_result") != offered[d] {
						t.Errorf("depth %d: tools %v: task_result must come with task", d, toolsOf(req))
					}
					mu.Unlock()
					// Every agent delegates, offered the tool or not.
					return turn{Calls: []call{{ID: "t", Name: "task", Args: taskArgs("helper", fmt.Sprintf("depth %d", d+1), "")}}}
				}
				if c := req.toolMessages()["t"]; strings.HasPrefix(c, "[tool error]") {
					mu.Lock()
					refusals[d] = c
					mu.Unlock()
				}
				return turn{Text: fmt.Sprintf("done at depth %d", d)}
			})
			defs := map[string]Definition{
				"lead":   mustDef(t, "lead", leadDef),
				"helper": mustDef(t, "helper", "---\ndescription: helps\nmode: all\nmodel: fake/helper\n---\nYou help."),
			}
			var started atomic.Int32
			rt := &Runtime{Definitions: defs, Model: resolver(model, nil), MaxDepth: tc.maxDepth, MaxSubagents: tc.maxSubagents,
				OnSubagent: func(SubagentReport) { started.Add(1) }}
			res, err := rt.Run(context.Background(), "lead", "depth 0", nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Answer != "done at depth 0" {
				t.Errorf("answer %q", res.Answer)
			}
			for d, w := range tc.offered {
				if offered[d] != w {
					t.Errorf("depth %d: task offered %v, want %v", d, offered[d], w)
				}
			}
			if len(offered) != len(tc.offered) {
				t.Errorf("agents ran at depths %v, want %d of them", offered, len(tc.offered))
			}
			if int(started.Load()) != tc.started {
				t.Errorf("%d sub-agents ran, want %d", started.Load(), tc.started)
			}
			deepest := len(tc.offered) - 1
			if !strings.Contains(refusals[deepest], tc.refusal) {
				t.Errorf("depth %d: task answered %q, want %q", deepest, refusals[deepest], tc.refusal)
			}
		})
	}
}

func TestTaskCancelPropagates(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stopped atomic.Int32
	block := funcTool{name: "block", run: func(ctx context.Context, _ json.RawMessage) (ToolResult, error) {
		<-ctx.Done()
		stopped.Add(1)
		return ToolResult{}, ctx.Err()
	}}
	_, model := newFakeModel(t, func(n int, req wireRequest) turn {
		if req.Model == "lead" {
			return turn{Calls: []call{{ID: "t", Name: "task", Args: taskArgs("helper", "block", "")}}}
		}
		return turn{Calls: []call{{ID: "b", Name: "block", Args: `{}`}}}
	})
	var report SubagentReport
	rt := &Runtime{
		Definitions: map[string]Definition{"lead": mustDef(t, "lead", leadDef), "helper": mustDef(t, "helper", helperDef)},
		Tools:       map[string]Tool{"block": block},
		Model:       resolver(model, nil),
		OnSubagent:  func(r SubagentReport) { report = r },
	}
	var sc serialCheck
	res, err := rt.Run(ctx, "lead", "go", nil, func(e Event) {
		sc.onEvent(e)
		if e.Kind == EventToolStart && e.Tool == "block" {
			cancel() // from the parent's side, while the sub-agent's tool runs
		}
	})
	if !errors.Is(err, context.Canceled) || res.StoppedBy != StoppedCancelled {
		t.Fatalf("err = %v, stopped by %q", err, res.StoppedBy)
	}
	if stopped.Load() != 1 {
		t.Errorf("the sub-agent's tool saw %d cancellations, want 1", stopped.Load())
	}
	if !errors.Is(report.Err, context.Canceled) || report.Result.StoppedBy != StoppedCancelled {
		t.Errorf("report: err %v, stopped by %q", report.Err, report.Result.StoppedBy)
	}
	if ends := sc.log.kinds(EventSubagentEnd); len(ends) != 1 || ends[0].Err == "" {
		t.Errorf("subagent_end events %+v", ends)
	}
}

func TestRuntimeRunValidation(t *testing.T) {
	_, model := newFakeModel(t, func(int, wireRequest) turn { return turn{Text: "ok"} })
	defs := map[string]Definition{"lead": mustDef(t, "lead", leadDef), "helper": mustDef(t, "helper", helperDef)}
	cases := []struct {
		name  string
		rt    Runtime
		agent string
		kind  error
		msg   string
	}{
		{"unknown agent", Runtime{Definitions: defs, Model: resolver(model, nil)}, "boss", panther.ErrNotFound, `agent "boss"; the agents are: helper, lead`},
		{"sub-agent at top level", Runtime{Definitions: defs, Model: resolver(model, nil)}, "helper", panther.ErrInvalid, "runs only through"},
		{"no resolver", Runtime{Definitions: defs}, "lead", panther.ErrInvalid, "no Model resolver"},
		{"task among the tools", Runtime{Definitions: defs, Model: resolver(model, nil), Tools: map[string]Tool{"task": echo}}, "lead", panther.ErrInvalid, "reserved"},
		{"misnamed tool", Runtime{Definitions: defs, Model: resolver(model, nil), Tools: map[string]Tool{"say": echo}}, "lead", panther.ErrInvalid, `Tools["say"] names itself "echo"`},
		{"model not configured", Runtime{Definitions: defs, Model: func(string) (panther.Model, string, error) { return nil, "", nil }}, "lead", panther.ErrInvalid, "no model is configured"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.rt.Run(context.Background(), tc.agent, "hi", nil, nil)
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %v, want %v containing %q", err, tc.kind, tc.msg)
			}
		})
	}
	rt := Runtime{Definitions: defs, Model: resolver(model, nil)}
	res, err := rt.RunWithID(context.Background(), "session-1", "lead", "hi", nil, nil)
	if err != nil || res.RunID != "session-1" || res.Answer != "ok" {
		t.Errorf("RunWithID: %+v, %v", res, err)
	}
}

func TestRunAbandonsAToolThatIgnoresCancellation(t *testing.T) {
	defer func(g time.Duration) { abandonGrace = g }(abandonGrace)
	abandonGrace = 20 * time.Millisecond
	release := make(chan struct{})
	defer close(release)
	stubborn := funcTool{name: "stubborn", run: func(ctx context.Context, _ json.RawMessage) (ToolResult, error) {
		<-release // ignores ctx
		return ToolResult{Content: "too late"}, nil
	}}
	_, model := newFakeModel(t, func(n int, req wireRequest) turn {
		if n == 1 {
			return turn{Calls: []call{{ID: "s", Name: "stubborn", Args: `{}`}, {ID: "e", Name: "echo", Args: `{}`}}}
		}
		return turn{Text: "Moved on."}
	})
	res, err := Run(context.Background(), Agent{Model: model, Tools: []Tool{stubborn, echo}, ToolTimeout: 50 * time.Millisecond}, "go", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := res.Messages[2]; !m.IsError || m.Content != "stubborn: no result within 50ms; the tool did not stop within 20ms of that, so its result is abandoned" {
		t.Errorf("tool message %+v", m)
	}
	if res.Messages[3].Content != "echo {}" || res.Answer != "Moved on." {
		t.Errorf("result %+v", res)
	}
}
