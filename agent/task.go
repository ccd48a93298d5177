package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"panther"
)

const taskToolName = "task"

// maxSubagentDescription bounds how much of a sub-agent's description the task tool's spec repeats.
const maxSubagentDescription = 600

// taskTool starts sub-agents for the agent of one run of a tree.
type taskTool struct {
	tr *tree
	// perms, depth and runID are the calling agent's; its sub-agents get at most perms.
	perms *permissions
	depth int
	runID string
	subs  []Definition // by name
	// bg holds the calling agent's background sub-agents.
	bg *detached
}

var (
	_ Tool       = (*taskTool)(nil)
	_ ownTimeout = (*taskTool)(nil)
)

func newTaskTool(tr *tree, perms *permissions, depth int, runID string, bg *detached) *taskTool {
	t := &taskTool{tr: tr, perms: perms, depth: depth, runID: runID, bg: bg}
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
		"questions among them. With background true the call returns at once with the task's id while the sub-agent " +
		"works; collect its result later with task_result. A sub-agent may use only tools you may use, whatever its own " +
		"definition allows. The sub-agents:")
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
			`"description":{"type":"string","description":"the task in 3 to 8 words, for display"},` +
			`"background":{"type":"boolean","description":"run detached: return the task's id at once and collect the result with task_result"}` +
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
		Background  bool   `json:"background"`
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
	// bounded by that budget. A background task waits here too: it holds a slot like any other.
	b := t.tr.rt.BudgetFor(def)
	deadline := time.Now().Add(b.MaxDuration)
	if err := t.acquire(ctx, deadline); err != nil {
		return ToolResult{}, fmt.Errorf("task %s: %w", def.Name, err)
	}
	release := func() { <-t.tr.sem }
	// A wait of under a second is not worth an odd budget in the sub-agent's "stopped" line.
	if left := time.Until(deadline); left < b.MaxDuration-time.Second {
		b.MaxDuration = left.Round(time.Second)
		if b.MaxDuration <= 0 {
			release()
			return ToolResult{}, fmt.Errorf("task %s: its time budget passed while it waited for a free slot", def.Name)
		}
	}
	job := subagentJob{def: def, runID: panther.NewSessionID(), desc: desc, prompt: a.Prompt, budget: b}

	if !a.Background {
		defer release()
		return t.runJob(ctx, job)
	}
	// The sub-agent outlives this call, so its context keeps the call's values but not its end;
	// the run that started it cancels it (detached.stop) when it ends or is cancelled.
	bctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	bj := &bgJob{id: job.runID, agent: def.Name, desc: desc, started: time.Now(), cancel: cancel, done: make(chan struct{})}
	if err := t.bg.add(bj); err != nil {
		cancel(nil)
		release()
		return ToolResult{}, fmt.Errorf("task %s: %w", def.Name, err)
	}
	go func() {
		defer t.bg.wg.Done()
		defer release()
		defer cancel(nil)
		bj.out, bj.err = t.runJob(bctx, job)
		close(bj.done)
	}()
	return ToolResult{Content: fmt.Sprintf("task %s started in the background (sub-agent %s: %s); collect its result with task_result, id %q", job.runID, def.Name, desc, job.runID)}, nil
}

// subagentJob is one sub-agent to run, its slot already taken.
type subagentJob struct {
	def                 Definition
	runID, desc, prompt string
	budget              Budget
}

// runJob runs a sub-agent, reports it, and turns its outcome into what its parent is answered.
func (t *taskTool) runJob(ctx context.Context, j subagentJob) (ToolResult, error) {
	def := j.def
	t.tr.emit(Event{Kind: EventSubagentStart, Agent: def.Name, Description: j.desc, RunID: j.runID, ParentRunID: t.runID, Text: j.prompt})
	res, err := t.runSafely(ctx, def, j.runID, j.prompt, j.budget)
	end := Event{Kind: EventSubagentEnd, Agent: def.Name, Description: j.desc, RunID: j.runID, ParentRunID: t.runID, Text: res.StoppedBy}
	if err != nil {
		end.Err = err.Error()
	}
	t.tr.emit(end)
	t.tr.report(SubagentReport{ParentRunID: t.runID, RunID: j.runID, Agent: def.Name, Description: j.desc, Prompt: j.prompt, Result: res, Err: err})
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
	switch res.StoppedBy {
	case StoppedSteps, StoppedTokens, StoppedTime:
		// Said in words the parent's model cannot miss: this is not the sub-agent's answer but
		// what it had when its budget ran out.
		why := strings.TrimSuffix(strings.TrimPrefix(res.note, "[stopped: "), "]")
		content += "\n\n[partial result: the sub-agent stopped before it finished (" + why + ")]"
	default:
		if res.note != "" {
			content += "\n\n" + res.note
		}
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
	return t.tr.run(ctx, def, t.perms, t.depth+1, runID, t.runID, prompt, nil, b)
}

const taskResultToolName = "task_result"

// MaxTaskResultWait bounds how long one task_result call waits for a background sub-agent.
const MaxTaskResultWait = 120 * time.Second

// maxListedTasks bounds how many ids an unknown-id error lists.
const maxListedTasks = 20

// errStarterEnded is the cause a background sub-agent is cancelled with when the agent that started
// it finishes first: nobody is left to collect its result.
var errStarterEnded = errors.New("the agent that started it has finished")

// detached holds the background sub-agents that one agent's run started, by id.
type detached struct {
	wg sync.WaitGroup // one count for each job's goroutine

	mu     sync.Mutex
	jobs   map[string]*bgJob
	order  []string
	closed bool
}

// bgJob is one background sub-agent.
type bgJob struct {
	id, agent, desc string
	started         time.Time
	cancel          context.CancelCauseFunc
	// done is closed once out and err hold what the task call would have answered.
	done chan struct{}
	out  ToolResult
	err  error
}

func newDetached() *detached { return &detached{jobs: map[string]*bgJob{}} }

// add registers j; on success the caller must start j's goroutine, which calls wg.Done.
func (d *detached) add(j *bgJob) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("not started: the run that would collect it has ended")
	}
	d.jobs[j.id] = j
	d.order = append(d.order, j.id)
	d.wg.Add(1)
	return nil
}

func (d *detached) get(id string) (*bgJob, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	j, ok := d.jobs[id]
	return j, ok
}

func (d *detached) ids() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.order...)
}

// cancel cancels every job still running.
func (d *detached) cancel(cause error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, j := range d.jobs {
		j.cancel(cause) // a no-op for a job already done
	}
}

// stop refuses new jobs, cancels those still running and waits for them to return. A sub-agent
// returns soon after its cancellation, its tools being abandoned after abandonGrace should they
// ignore it; stop waits twice that before it gives up on one whose model client ignores it too.
func (d *detached) stop(cause error) {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.cancel(cause)
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	grace := time.NewTimer(2 * abandonGrace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
	}
}

// taskResultTool collects the background sub-agents of the agent it belongs to.
type taskResultTool struct {
	bg *detached
}

var (
	_ Tool       = (*taskResultTool)(nil)
	_ ownTimeout = (*taskResultTool)(nil)
)

func (t *taskResultTool) Spec() panther.ToolSpec {
	return panther.ToolSpec{
		Name: taskResultToolName,
		Description: fmt.Sprintf("Collect the result of a task started with background true, by the id the task call returned. "+
			"A finished task answers as a task call would have; one still running says so. Give wait_seconds "+
			"(at most %d) to wait that long for it rather than asking again and again.", int(MaxTaskResultWait.Seconds())),
		Parameters: json.RawMessage(fmt.Sprintf(`{"type":"object","properties":{`+
			`"id":{"type":"string","description":"the id the task call returned"},`+
			`"wait_seconds":{"type":"number","minimum":0,"maximum":%d,"description":"how long to wait for a task still running; 0, the default, answers at once"}`+
			`},"required":["id"]}`, int(MaxTaskResultWait.Seconds()))),
	}
}

// RunTimeout lets a call wait as long as it may ask to, whatever the agent's ToolTimeout.
func (t *taskResultTool) RunTimeout() time.Duration { return MaxTaskResultWait + 10*time.Second }

func (t *taskResultTool) Run(ctx context.Context, args json.RawMessage) (ToolResult, error) {
	var a struct {
		ID          string  `json:"id"`
		WaitSeconds float64 `json:"wait_seconds"`
	}
	if err := decodeArgs(taskResultToolName, args, &a); err != nil {
		return ToolResult{}, err
	}
	id := strings.TrimSpace(a.ID)
	if id == "" {
		return ToolResult{}, panther.Invalidf("task_result: id is empty; give the id the task call returned")
	}
	if !(a.WaitSeconds >= 0 && a.WaitSeconds <= MaxTaskResultWait.Seconds()) {
		return ToolResult{}, panther.Invalidf("task_result: wait_seconds is %v; want 0 to %d", a.WaitSeconds, int(MaxTaskResultWait.Seconds()))
	}
	j, ok := t.bg.get(id)
	if !ok {
		known := "this agent has started none"
		if ids := t.bg.ids(); len(ids) > maxListedTasks {
			known = "this agent's are: " + strings.Join(ids[len(ids)-maxListedTasks:], ", ") + " and older ones"
		} else if len(ids) > 0 {
			known = "this agent's are: " + strings.Join(ids, ", ")
		}
		return ToolResult{}, panther.NotFoundf("task_result: no background task %q; %s", trimText(id, 100, ""), known)
	}
	if a.WaitSeconds > 0 {
		wait := time.NewTimer(time.Duration(a.WaitSeconds * float64(time.Second)))
		defer wait.Stop()
		select {
		case <-j.done:
		case <-wait.C:
		case <-ctx.Done():
			return ToolResult{}, fmt.Errorf("task_result %s: %w", id, context.Cause(ctx))
		}
	}
	select {
	case <-j.done:
		return j.out, j.err
	default:
	}
	return ToolResult{Content: fmt.Sprintf("task %s (sub-agent %s: %s) is still running, started %s ago; call task_result again later, with wait_seconds to wait for it",
		id, j.agent, j.desc, time.Since(j.started).Round(time.Second))}, nil
}
