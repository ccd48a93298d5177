package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"panther"
)

const taskToolName = "task"

// maxSubagentDescription bounds how much of a sub-agent's description the task tool's spec repeats.
const maxSubagentDescription = 600

// taskTool starts sub-agents for the agent of one run of a tree.
type taskTool struct {
	tr *tree
	// depth and runID are the calling agent's.
	depth int
	runID string
	subs  []Definition // by name
}

var (
	_ Tool       = (*taskTool)(nil)
	_ ownTimeout = (*taskTool)(nil)
)

func newTaskTool(tr *tree, depth int, runID string) *taskTool {
	t := &taskTool{tr: tr, depth: depth, runID: runID}
	for _, d := range tr.rt.Definitions {
		if d.CanBeSubagent() {
			t.subs = append(t.subs, d)
		}
	}
	sort.Slice(t.subs, func(i, j int) bool { return t.subs[i].Name < t.subs[j].Name })
	return t
}

func (t *taskTool) Spec() panther.ToolSpec {
	var b strings.Builder
	b.WriteString("Start a sub-agent on a task of its own. It starts fresh, seeing nothing of this conversation, " +
		"so give it a complete, self-contained prompt. It answers with its findings and their numbered sources, " +
		"which you may cite as they are numbered. Several task calls in one turn run in parallel: split independent " +
		"questions among them. The sub-agents:")
	names := make([]string, len(t.subs))
	for i, d := range t.subs {
		names[i] = d.Name
		fmt.Fprintf(&b, "\n- %s: %s", d.Name, trimText(strings.Join(strings.Fields(d.Description), " "), maxSubagentDescription, ""))
	}
	enum, _ := json.Marshal(names)
	return panther.ToolSpec{
		Name:        taskToolName,
		Description: b.String(),
		Parameters: json.RawMessage(`{"type":"object","properties":{` +
			`"agent":{"type":"string","description":"which sub-agent","enum":` + string(enum) + `},` +
			`"prompt":{"type":"string","description":"the task, complete and self-contained"},` +
			`"description":{"type":"string","description":"the task in 3 to 8 words, for display"}` +
			`},"required":["agent","prompt"]}`),
	}
}

// RunTimeout gives the task tool the longest time budget of its sub-agents: the task tool stops a
// sub-agent at its budget itself.
func (t *taskTool) RunTimeout() time.Duration {
	var longest time.Duration
	for _, d := range t.subs {
		longest = max(longest, t.tr.rt.BudgetFor(d).MaxDuration)
	}
	return longest + taskGrace
}

func (t *taskTool) Run(ctx context.Context, args json.RawMessage) (ToolResult, error) {
	var a struct {
		Agent       string `json:"agent"`
		Prompt      string `json:"prompt"`
		Description string `json:"description"`
	}
	if err := decodeArgs(taskToolName, args, &a); err != nil {
		return ToolResult{}, err
	}
	a.Agent, a.Prompt = strings.TrimSpace(a.Agent), strings.TrimSpace(a.Prompt)
	var def Definition
	found := false
	for _, d := range t.subs {
		if d.Name == a.Agent {
			def, found = d, true
		}
	}
	if !found {
		names := make([]string, len(t.subs))
		for i, d := range t.subs {
			names[i] = d.Name
		}
		return ToolResult{}, panther.Invalidf("task: no sub-agent %q; the sub-agents are: %s", trimText(a.Agent, 100, ""), strings.Join(names, ", "))
	}
	if a.Prompt == "" {
		return ToolResult{}, panther.Invalidf("task: prompt is empty; give the sub-agent its whole task")
	}
	if len(a.Prompt) > MaxTaskPrompt {
		return ToolResult{}, panther.Invalidf("task: prompt has %d bytes, more than %d", len(a.Prompt), MaxTaskPrompt)
	}
	desc := panther.SessionTitle(a.Description)
	if desc == "" {
		desc = panther.SessionTitle(a.Prompt)
	}

	// The wait for a slot counts against the sub-agent's time budget, so that the whole call is
	// bounded by that budget.
	b := t.tr.rt.BudgetFor(def)
	deadline := time.Now().Add(b.MaxDuration)
	if err := t.acquire(ctx, deadline); err != nil {
		return ToolResult{}, fmt.Errorf("task %s: %w", def.Name, err)
	}
	defer func() { <-t.tr.sem }()
	// A wait of under a second is not worth an odd budget in the sub-agent's "stopped" line.
	if left := time.Until(deadline); left < b.MaxDuration-time.Second {
		b.MaxDuration = left.Round(time.Second)
		if b.MaxDuration <= 0 {
			return ToolResult{}, fmt.Errorf("task %s: its time budget passed while it waited for a free slot", def.Name)
		}
	}

	runID := panther.NewSessionID()
	t.tr.emit(Event{Kind: EventSubagentStart, Agent: def.Name, Description: desc, RunID: runID, ParentRunID: t.runID, Text: a.Prompt})
	res, err := t.runSafely(ctx, def, runID, a.Prompt, b)
	end := Event{Kind: EventSubagentEnd, Agent: def.Name, Description: desc, RunID: runID, ParentRunID: t.runID, Text: res.StoppedBy}
	if err != nil {
		end.Err = err.Error()
	}
	t.tr.emit(end)
	t.tr.report(SubagentReport{ParentRunID: t.runID, RunID: runID, Agent: def.Name, Description: desc, Prompt: a.Prompt, Result: res, Err: err})
	if err != nil {
		if ctx.Err() != nil {
			return ToolResult{}, fmt.Errorf("task %s: %w", def.Name, context.Cause(ctx))
		}
		return ToolResult{}, fmt.Errorf("task %s: the sub-agent failed: %w", def.Name, err)
	}
	content := strings.TrimSpace(res.body)
	if content == "" {
		content = "(the sub-agent gave no answer)"
	}
	if res.note != "" {
		content += "\n\n" + res.note
	}
	// The sub-agent numbered its sources in the tree's ledger, so the [n] in its answer are the
	// parent's numbers: the parent's rendering lists them under the same numbers.
	return ToolResult{Content: content, Citations: res.Citations}, nil
}

// errNoSlot refuses a nested task call when every sub-agent slot is taken.
var errNoSlot = errors.New("no sub-agent slot is free (the most that run at once are running); do this part yourself")

// slotWaitHook, when set by a test, is called when a task call starts waiting for a slot.
var slotWaitHook func()

// acquire takes a sub-agent slot. The top-level agent waits for one, until deadline; a sub-agent,
// which holds a slot itself, does not wait, since the slots it would wait for may be held by
// its own ancestors waiting for it.
func (t *taskTool) acquire(ctx context.Context, deadline time.Time) error {
	if t.depth > 0 {
		select {
		case t.tr.sem <- struct{}{}:
			return nil
		default:
			return errNoSlot
		}
	}
	select {
	case t.tr.sem <- struct{}{}:
		return nil
	default:
	}
	if slotWaitHook != nil {
		slotWaitHook()
	}
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	select {
	case t.tr.sem <- struct{}{}:
		return nil
	case <-wctx.Done():
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("no sub-agent slot came free within its time budget (%d sub-agents run at once at most)", cap(t.tr.sem))
	}
}

// runSafely runs a sub-agent, turning a panic into an error so that its siblings and parent go on.
func (t *taskTool) runSafely(ctx context.Context, def Definition, runID, prompt string, b Budget) (res Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = Result{RunID: runID, StoppedBy: "error"}, fmt.Errorf("it crashed: %v", p)
		}
	}()
	return t.tr.run(ctx, def, t.depth+1, runID, t.runID, prompt, nil, b)
}
