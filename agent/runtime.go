package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"panther"
)

// Approver decides an "ask" permission: whether agent may run tool with args. It may wait for a
// person; the wait counts against the run's time budget. It may be called from several goroutines
// at once.
type Approver func(ctx context.Context, agentName, tool string, args json.RawMessage) (bool, error)

// SubagentReport is a finished sub-agent, for a caller that keeps it as a child session.
type SubagentReport struct {
	ParentRunID string
	RunID       string
	Agent       string
	// Description is the parent's short description of the task; Prompt is the task itself.
	Description string
	Prompt      string
	Result      Result
	// Err is why the sub-agent failed, if it did (a cancelled one has context.Canceled).
	Err error
}

// Defaults of a Runtime.
const (
	DefaultMaxSubagents = 4
	// DefaultMaxDepth lets the top-level agent delegate and its sub-agents not: one level of
	// fan-out covers what sub-agents are for, and each further level multiplies cost and latency.
	DefaultMaxDepth = 1
	// MaxTaskPrompt bounds the prompt a parent gives a sub-agent, in bytes.
	MaxTaskPrompt = 32_000
)

// taskGrace is how long past a sub-agent's time budget the loop waits for the task tool, which
// stops its sub-agent at that budget itself; the loop's time-out is only a backstop.
const taskGrace = 30 * time.Second

// Runtime runs agents from their definitions, with the tools of this process, and gives each the
// task tool through which it starts sub-agents.
//
// Permissions come only from the definitions (and so from the caller's configuration), never from
// anything a model reads: a tool a definition denies or disables is not offered, and a call to it
// is answered with an error and not run. A sub-agent gets at most the permissions of the agent that
// started it, so that delegating cannot widen them (see permissions).
type Runtime struct {
	// Definitions are the agents by name (see LoadDefinitions).
	Definitions map[string]Definition
	// Tools are every tool of this process by name (kb_search, kb_read, web_fetch, crawl, ...); each
	// agent gets those its definition permits. "task" and "task_result" are the Runtime's own and may
	// not be among them.
	Tools map[string]Tool
	// Model resolves a definition's model ("provider/model", "" for the default) to a client and
	// the model name to send.
	Model func(name string) (panther.Model, string, error)
	// Approve decides "ask" permissions; without it they are denied.
	Approve Approver
	// MaxSubagents bounds the sub-agents running at once in one top-level run, at every depth,
	// background ones included (DefaultMaxSubagents). A top-level agent's task call waits for a free
	// slot; a sub-agent's is refused at once when none is free, since its own slot could be the one
	// it waits for.
	MaxSubagents int
	// MaxDepth bounds nesting (DefaultMaxDepth; negative for no sub-agents at all): the top-level
	// agent is at depth 0 and an agent at depth MaxDepth is not offered the task tool (nor
	// task_result).
	MaxDepth int
	// Budget is every agent's default budget; a definition's steps, max_tokens and timeout override it.
	Budget Budget
	// MaxParallelTools and ToolTimeout are passed to each agent (see Agent).
	MaxParallelTools int
	ToolTimeout      time.Duration
	// OnSubagent, when not nil, is called once for each sub-agent, as it finishes, one call at a
	// time; a background sub-agent still running when the agent that started it finishes is
	// cancelled and reported before that agent's run returns.
	OnSubagent func(SubagentReport)
}

// BudgetFor returns the budget an agent of definition d runs with: the Runtime's, overridden by the
// definition's, defaults filled in.
func (rt *Runtime) BudgetFor(d Definition) Budget {
	b := rt.Budget
	if d.Steps > 0 {
		b.MaxSteps = d.Steps
	}
	if d.MaxTokens > 0 {
		b.MaxTokens = d.MaxTokens
	}
	if d.Timeout > 0 {
		b.MaxDuration = d.Timeout
	}
	if b.MaxSteps <= 0 {
		b.MaxSteps = DefaultMaxSteps
	}
	if b.MaxTokens <= 0 {
		b.MaxTokens = DefaultMaxTokens
	}
	if b.MaxDuration <= 0 {
		b.MaxDuration = DefaultMaxDuration
	}
	return b
}

// Run runs agent agentName on prompt after history, under a new run id (Result.RunID), as Run does
// for an Agent: onEvent, if not nil, sees the run and its sub-agents' (without their text), one
// call at a time.
func (rt *Runtime) Run(ctx context.Context, agentName, prompt string, history []panther.Message, onEvent func(Event)) (Result, error) {
	return rt.RunWithID(ctx, panther.NewSessionID(), agentName, prompt, history, onEvent)
}

// RunWithID is Run under the caller's run id, for a caller that records the run (a session) before it
// starts, so that sub-agent reports can name it as their parent.
func (rt *Runtime) RunWithID(ctx context.Context, runID, agentName, prompt string, history []panther.Message, onEvent func(Event)) (Result, error) {
	if strings.TrimSpace(runID) == "" || len(runID) > panther.MaxSessionID {
		return Result{}, panther.Invalidf("run id %q: want 1 to %d characters", runID, panther.MaxSessionID)
	}
	def, ok := rt.Definitions[agentName]
	if !ok {
		return Result{}, panther.NotFoundf("agent %q; the agents are: %s", agentName, strings.Join(rt.agentNames(), ", "))
	}
	if !def.CanBePrimary() {
		return Result{}, panther.Invalidf("agent %q is a sub-agent (mode subagent): it runs only through another agent's task tool", agentName)
	}
	if rt.Model == nil {
		return Result{}, panther.Invalidf("agent runtime: no Model resolver")
	}
	for name, t := range rt.Tools {
		if t == nil {
			return Result{}, panther.Invalidf("agent runtime: tool %q is nil", name)
		}
		if name == taskToolName || name == taskResultToolName {
			return Result{}, panther.Invalidf("agent runtime: tool name %q is reserved for sub-agents", name)
		}
		if s := t.Spec().Name; s != name {
			return Result{}, panther.Invalidf("agent runtime: Tools[%q] names itself %q", name, s)
		}
	}
	n := rt.MaxSubagents
	if n <= 0 {
		n = DefaultMaxSubagents
	}
	depth := rt.MaxDepth
	if depth == 0 {
		depth = DefaultMaxDepth
	}
	tr := &tree{rt: rt, sem: make(chan struct{}, n), ledger: newCiteLedger(), onEvent: onEvent, maxDepth: depth}
	defer tr.close()
	return tr.run(ctx, def, nil, 0, runID, "", prompt, history, rt.BudgetFor(def))
}

func (rt *Runtime) agentNames() []string {
	names := make([]string, 0, len(rt.Definitions))
	for n := range rt.Definitions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// tree is what the agents of one top-level run share.
type tree struct {
	rt       *Runtime
	maxDepth int
	// sem holds a token for each sub-agent running.
	sem    chan struct{}
	ledger *citeLedger

	emitMu  sync.Mutex
	onEvent func(Event)

	reportMu sync.Mutex
	// closed is set when the top-level run has returned: a sub-agent whose task call was abandoned
	// may end later, and its caller must not hear of it after Run returned.
	closed bool
}

// emit passes an event of any agent of the tree on, never two at once.
func (tr *tree) emit(e Event) {
	if tr.onEvent == nil {
		return
	}
	tr.emitMu.Lock()
	defer tr.emitMu.Unlock()
	if !tr.closed {
		tr.onEvent(e)
	}
}

func (tr *tree) report(r SubagentReport) {
	if tr.rt.OnSubagent == nil {
		return
	}
	tr.reportMu.Lock()
	defer tr.reportMu.Unlock()
	if !tr.closed {
		tr.rt.OnSubagent(r)
	}
}

func (tr *tree) close() {
	tr.emitMu.Lock()
	tr.reportMu.Lock()
	tr.closed = true
	tr.reportMu.Unlock()
	tr.emitMu.Unlock()
}

// permissions are what one agent of a tree may do: its definition's permissions, narrowed to those
// of the agent that started it (parent, nil at the top). Without the narrowing, a page telling the
// general agent (crawl denied) to have the researcher sub-agent (crawl allowed) crawl an address
// would get the crawl done: delegation would widen what the top-level agent, and so the person who
// chose it, allowed.
type permissions struct {
	def    Definition
	parent *permissions
}

// For returns the stricter of the definition's permission for tool and its ancestors'.
func (p *permissions) For(tool string) Permission {
	perm := p.def.PermissionFor(tool)
	for a := p.parent; a != nil; a = a.parent {
		perm = stricter(perm, a.def.PermissionFor(tool))
	}
	return perm
}

// stricter orders permissions allow < ask < deny.
func stricter(a, b Permission) Permission {
	rank := func(p Permission) int {
		switch p {
		case Deny:
			return 2
		case Ask:
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// run runs one agent of the tree, at depth, with at most the permissions parent has (nil for the
// top-level agent).
func (tr *tree) run(ctx context.Context, def Definition, parent *permissions, depth int, runID, parentRunID, prompt string, history []panther.Message, b Budget) (Result, error) {
	perms := &permissions{def: def, parent: parent}
	model, modelName, err := tr.rt.Model(def.Model)
	if err != nil {
		return Result{RunID: runID}, fmt.Errorf("agent %q: model %q: %w", def.Name, def.Model, err)
	}
	if model == nil {
		return Result{RunID: runID, Model: modelName}, panther.Invalidf("agent %q: no model is configured", def.Name)
	}
	// The background sub-agents this agent starts end with its run: nobody could collect them after.
	bg := newDetached()
	stopAfter := context.AfterFunc(ctx, func() { bg.cancel(context.Cause(ctx)) })
	defer func() {
		stopAfter()
		bg.stop(errStarterEnded)
	}()
	a := Agent{
		Name: def.Name, System: def.Prompt, Model: model, ModelName: modelName,
		Tools: tr.tools(perms, depth, runID, bg), Budget: b, Temperature: def.Temperature,
		MaxParallelTools: tr.rt.MaxParallelTools, ToolTimeout: tr.rt.ToolTimeout,
		Check: tr.checker(perms, depth), ledger: tr.ledger,
	}
	var onEvent func(Event)
	if tr.onEvent != nil {
		onEvent = func(e Event) {
			if depth > 0 && e.Kind == EventText {
				return // a sub-agent's tokens would interleave with its parent's
			}
			e.Agent, e.RunID, e.ParentRunID = def.Name, runID, parentRunID
			tr.emit(e)
		}
	}
	res, err := Run(ctx, a, prompt, history, onEvent)
	res.RunID, res.Model = runID, modelName
	return res, err
}

// tools returns the tools perms permit, in name order, and the task and task_result tools when it
// may delegate.
func (tr *tree) tools(perms *permissions, depth int, runID string, bg *detached) []Tool {
	names := make([]string, 0, len(tr.rt.Tools))
	for n := range tr.rt.Tools {
		names = append(names, n)
	}
	sort.Strings(names)
	var tools []Tool
	for _, n := range names {
		if perms.For(n) != Deny {
			tools = append(tools, tr.rt.Tools[n])
		}
	}
	if depth < tr.maxDepth && perms.For(taskToolName) != Deny {
		if t := newTaskTool(tr, perms, depth, runID, bg); len(t.subs) > 0 {
			tools = append(tools, t, &taskResultTool{bg: bg})
		}
	}
	return tools
}

// checker enforces perms on each call, whatever the model asks for.
func (tr *tree) checker(perms *permissions, depth int) func(context.Context, panther.ToolCall) error {
	def := perms.def
	return func(ctx context.Context, call panther.ToolCall) error {
		name := call.Name
		if len(name) > 100 {
			name = name[:100] + "…"
		}
		if (call.Name == taskToolName || call.Name == taskResultToolName) && depth >= tr.maxDepth {
			return fmt.Errorf("tool %s is not permitted for agent %s: at depth %d it may not start sub-agents", call.Name, def.Name, depth)
		}
		perm := perms.For(call.Name)
		if call.Name == taskResultToolName {
			// Collecting a result goes with starting the task: a definition that enables task
			// (often after "*": false) need not name task_result, and approving the start is enough.
			if perm = perms.For(taskToolName); perm == Ask {
				perm = Allow
			}
		}
		switch perm {
		case Deny:
			return fmt.Errorf("tool %s is not permitted for agent %s", name, def.Name)
		case Ask:
			if tr.rt.Approve == nil {
				return fmt.Errorf("tool %s needs approval for agent %s, and no human is attached to approve it", name, def.Name)
			}
			ok, err := tr.rt.Approve(ctx, def.Name, call.Name, call.Arguments)
			if err != nil {
				return fmt.Errorf("tool %s for agent %s: approval failed: %w", name, def.Name, err)
			}
			if !ok {
				return fmt.Errorf("tool %s was not approved for agent %s", name, def.Name)
			}
		}
		return nil
	}
}
