// Package agent is panther's agent runtime: the loop that lets a model call tools until it answers or
// a budget runs out, the knowledge-base tools (kb_search, kb_read), and the numbering and checking of
// the citations an answer rests on.
//
// Agents are defined in markdown files with YAML front matter (Definition, LoadDefinitions), the
// shape OpenCode uses; a Runtime runs them with the tools their permissions allow and gives them the
// task tool, through which an agent starts sub-agents that run in parallel, bounded, each with its
// own budget, and whose cited sources the parent may cite in turn. A task may run in the background:
// the call returns the sub-agent's id at once and the task_result tool collects its result later;
// background sub-agents still running when the agent that started them finishes are cancelled.
//
// The loop sees only panther's conversation types (panther.Model), never a provider's wire format.
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

// Tool is something an agent may call.
type Tool interface {
	// Spec names and describes the tool for the model.
	Spec() panther.ToolSpec
	// Run runs the tool. An error means the tool failed: the loop reports it to the model as an
	// error result and goes on, it does not end the run.
	Run(ctx context.Context, args json.RawMessage) (ToolResult, error)
}

// ToolResult is what a tool run returns.
//
// Content may place each of its citations with CiteMark(i) (i indexing Citations); the loop replaces
// the mark with the citation's number and description, "[n] title — heading (url#anchor)", so that the
// model can cite it as [n]. Citations without a mark in Content are listed after it.
type ToolResult struct {
	Content   string
	Citations []panther.Citation
}

// Budget bounds a run. Zero values take the defaults.
type Budget struct {
	// MaxSteps bounds the number of model calls (DefaultMaxSteps).
	MaxSteps int
	// MaxTokens bounds the tokens used over all steps, input and output (DefaultMaxTokens).
	MaxTokens int
	// MaxDuration bounds the wall time of the run, tools included (DefaultMaxDuration).
	MaxDuration time.Duration
}

// Defaults.
const (
	DefaultMaxSteps         = 12
	DefaultMaxTokens        = 200_000
	DefaultMaxDuration      = 5 * time.Minute
	DefaultMaxParallelTools = 4
	DefaultToolTimeout      = 2 * time.Minute
	// MaxToolResultChars bounds what one tool run puts into the conversation.
	MaxToolResultChars = 60_000
)

// Agent is a model with a system prompt, tools and budgets.
type Agent struct {
	Name string
	// System is the agent's own system prompt; the loop appends how to cite.
	System string
	Model  panther.Model
	// ModelName is passed in every request; empty means the client's default.
	ModelName string
	Tools     []Tool
	Budget    Budget
	// Temperature is nil for the provider's default.
	Temperature *float64
	// MaxParallelTools bounds how many tool calls of one turn run at once (DefaultMaxParallelTools).
	MaxParallelTools int
	// ToolTimeout bounds one tool run (DefaultToolTimeout).
	ToolTimeout time.Duration
	// Check, when not nil, is asked before each tool call, even one to a tool the agent does not have;
	// an error answers the call instead of running it. The Runtime enforces permissions with it.
	Check func(ctx context.Context, call panther.ToolCall) error

	// ledger, when not nil, numbers citations for a whole tree of agents (see Runtime), so that a
	// sub-agent's [n] mean the same source in its parent's run.
	ledger *citeLedger
}

// Event kinds.
const (
	EventText      = "text"       // a piece of the model's text, as it streams
	EventToolStart = "tool_start" // a tool call begins; Text holds its arguments
	EventToolEnd   = "tool_end"   // a tool call ended; Err is set when it failed
	EventStep      = "step"       // a model call ended; Step is its number
	// EventSubagentStart and EventSubagentEnd frame a sub-agent started by the task tool: Agent,
	// Description, RunID (the sub-agent's) and ParentRunID are set; Err is set when it failed.
	EventSubagentStart = "subagent_start"
	EventSubagentEnd   = "subagent_end"
)

// Event is something that happened during a run, for a live view of it.
type Event struct {
	Kind       string `json:"kind"`
	Text       string `json:"text,omitempty"`
	Tool       string `json:"tool,omitempty"`
	ToolCallID string `json:"tool_call_id,omitempty"`
	Err        string `json:"err,omitempty"`
	Step       int    `json:"step,omitempty"`
	// Agent and RunID name the run the event belongs to when a Runtime runs it; a sub-agent's
	// events carry its own RunID and ParentRunID.
	Agent       string `json:"agent,omitempty"`
	RunID       string `json:"run_id,omitempty"`
	ParentRunID string `json:"parent_run_id,omitempty"`
	// Description is a sub-agent's task, as its parent described it.
	Description string `json:"description,omitempty"`
	// Elapsed is how long the model call (step) or the tool run (tool_end) took; Usage is a step's
	// tokens. A session records them with each message.
	Elapsed time.Duration  `json:"elapsed,omitempty"`
	Usage   *panther.Usage `json:"usage,omitempty"`
	// Citations are the sources a tool run returned (tool_end).
	Citations []panther.Citation `json:"citations,omitempty"`
}

// Why a run stopped.
const (
	StoppedAnswer    = "answer"
	StoppedSteps     = "steps"
	StoppedTokens    = "tokens"
	StoppedTime      = "time"
	StoppedCancelled = "cancelled"
)

// Result is a finished run.
type Result struct {
	// Answer is the final text, with references to unknown sources removed, a "Sources:" list of the
	// cited ones, and, when a budget stopped the run, a last line saying which.
	Answer string `json:"answer"`
	// Citations are the sources the answer cites, in the order of its Sources list.
	Citations []panther.Citation `json:"citations"`
	// Messages is the conversation: history, the prompt, and every turn of this run.
	Messages  []panther.Message `json:"messages"`
	Usage     panther.Usage     `json:"usage"`
	Steps     int               `json:"steps"`
	StoppedBy string            `json:"stopped_by"`
	// Model is the model name the run sent (empty: the client's default).
	Model string `json:"model,omitempty"`
	// RunID identifies a run started by a Runtime (empty for Run).
	RunID string `json:"run_id,omitempty"`

	// body is Answer without its Sources list and note the line saying why the run stopped early,
	// for a parent agent that gets the sources as citations of its own.
	body, note string
}

// citeInstructions are appended to every system prompt.
const citeInstructions = `Tool results mark each source with a number, as "[n] title — heading (url#anchor)". ` +
	`Base your answer on those sources and cite each claim with its number in square brackets, like [1] or [2][3], ` +
	`right after the claim. Cite only numbers that tool results gave you. Do not write a list of sources ` +
	`at the end: it is added for you. If the sources do not answer the question, say so.`

// errTimeBudget is the cause the run's context ends with when MaxDuration passes.
var errTimeBudget = errors.New("time budget reached")

// Run runs agent a on prompt after history until the model answers without calling a tool or a budget
// runs out. onEvent, if not nil, sees the run as it happens; calls to it never overlap.
//
// A run stopped by a budget returns its Result and a nil error. A run cancelled through ctx returns
// what it has, StoppedBy "cancelled", and ctx.Err(). Other failures (the model failing for good)
// return what the run has so far and the error.
func Run(ctx context.Context, a Agent, prompt string, history []panther.Message, onEvent func(Event)) (Result, error) {
	if a.Model == nil {
		return Result{}, panther.Invalidf("agent %q: no model", a.Name)
	}
	if strings.TrimSpace(prompt) == "" {
		return Result{}, panther.Invalidf("agent %q: empty prompt", a.Name)
	}
	b := a.Budget
	if b.MaxSteps <= 0 {
		b.MaxSteps = DefaultMaxSteps
	}
	if b.MaxTokens <= 0 {
		b.MaxTokens = DefaultMaxTokens
	}
	if b.MaxDuration <= 0 {
		b.MaxDuration = DefaultMaxDuration
	}
	parallel := a.MaxParallelTools
	if parallel <= 0 {
		parallel = DefaultMaxParallelTools
	}
	toolTimeout := a.ToolTimeout
	if toolTimeout <= 0 {
		toolTimeout = DefaultToolTimeout
	}
	tools := make(map[string]Tool, len(a.Tools))
	specs := make([]panther.ToolSpec, 0, len(a.Tools))
	for _, t := range a.Tools {
		s := t.Spec()
		if s.Name == "" {
			return Result{}, panther.Invalidf("agent %q: a tool has no name", a.Name)
		}
		if _, dup := tools[s.Name]; dup {
			return Result{}, panther.Invalidf("agent %q: two tools are named %q", a.Name, s.Name)
		}
		tools[s.Name] = t
		specs = append(specs, s)
	}

	var mu sync.Mutex
	emit := func(e Event) {
		if onEvent == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		onEvent(e)
	}

	rctx, cancel := context.WithTimeoutCause(ctx, b.MaxDuration, errTimeBudget)
	defer cancel()

	system := citeInstructions
	if s := strings.TrimSpace(a.System); s != "" {
		system = s + "\n\n" + citeInstructions
	}
	res := Result{Model: a.ModelName, Messages: append(append(make([]panther.Message, 0, len(history)+8), history...), panther.Message{Role: panther.RoleUser, Content: prompt})}
	book := a.ledger
	if book == nil {
		book = newCiteLedger()
	}
	var lastText string

	// stop ends the run for a budget or a cancellation.
	stop := func(why string) (Result, error) {
		res.StoppedBy = why
		var line string
		switch why {
		case StoppedSteps:
			line = fmt.Sprintf("[stopped: step budget of %d reached]", b.MaxSteps)
		case StoppedTokens:
			line = fmt.Sprintf("[stopped: token budget of %d reached, %d used]", b.MaxTokens, res.Usage.InputTokens+res.Usage.OutputTokens)
		case StoppedTime:
			line = fmt.Sprintf("[stopped: time budget of %s reached]", b.MaxDuration)
		case StoppedCancelled:
			line = "[stopped: cancelled]"
		}
		res.Answer, res.body, res.Citations = book.finish(lastText)
		res.note = line
		if res.Answer != "" {
			res.Answer += "\n\n"
		}
		res.Answer += line
		if why == StoppedCancelled {
			return res, ctx.Err()
		}
		return res, nil
	}
	// ended says why the run's context is done, if it is.
	ended := func() string {
		switch {
		case ctx.Err() != nil:
			return StoppedCancelled
		case rctx.Err() != nil:
			return StoppedTime
		}
		return ""
	}

	for {
		if why := ended(); why != "" {
			return stop(why)
		}
		req := panther.ModelRequest{Model: a.ModelName, System: system, Messages: res.Messages, Tools: specs, Temperature: a.Temperature}
		// Stream only when someone watches: a plain request is simpler for every server.
		var stream func(panther.StreamEvent)
		if onEvent != nil {
			stream = func(ev panther.StreamEvent) {
				if ev.Text != "" {
					emit(Event{Kind: EventText, Text: ev.Text})
				}
			}
		}
		callStart := time.Now()
		resp, err := a.Model.Complete(rctx, req, stream)
		if err != nil {
			if why := ended(); why != "" {
				return stop(why)
			}
			res.StoppedBy = "error"
			res.Answer, res.body, res.Citations = book.finish(lastText)
			return res, fmt.Errorf("agent %q, step %d: %w", a.Name, res.Steps+1, err)
		}
		res.Steps++
		res.Usage.InputTokens += resp.Usage.InputTokens
		res.Usage.OutputTokens += resp.Usage.OutputTokens
		stepUsage := resp.Usage
		emit(Event{Kind: EventStep, Step: res.Steps, Elapsed: time.Since(callStart), Usage: &stepUsage})

		msg := resp.Message
		msg.Role = panther.RoleAssistant
		msg.ToolCallID, msg.IsError = "", false
		for i := range msg.ToolCalls {
			if msg.ToolCalls[i].ID == "" {
				msg.ToolCalls[i].ID = fmt.Sprintf("call_%d_%d", res.Steps, i+1)
			}
		}
		res.Messages = append(res.Messages, msg)
		if strings.TrimSpace(msg.Content) != "" {
			lastText = msg.Content
		}
		if len(msg.ToolCalls) == 0 {
			res.StoppedBy = StoppedAnswer
			res.Answer, res.body, res.Citations = book.finish(msg.Content)
			if resp.StopReason == panther.StopMaxTokens {
				res.note = "[cut: the answer reached the model's output limit]"
				res.Answer = strings.TrimSpace(res.Answer + "\n\n" + res.note)
			}
			return res, nil
		}

		// A turn whose tools cannot be followed by another step is not run; its calls are answered
		// so that the conversation stays well formed for a follow-up.
		why := ""
		switch {
		case res.Steps >= b.MaxSteps:
			why = StoppedSteps
		case res.Usage.InputTokens+res.Usage.OutputTokens >= b.MaxTokens:
			why = StoppedTokens
		}
		if why != "" {
			for _, tc := range msg.ToolCalls {
				res.Messages = append(res.Messages, panther.Message{Role: panther.RoleTool, ToolCallID: tc.ID, IsError: true, Content: "not run: the " + budgetName(why) + " budget ran out"})
			}
			return stop(why)
		}

		outs := runTools(rctx, tools, a.Check, msg.ToolCalls, parallel, toolTimeout, emit)
		for i, tc := range msg.ToolCalls {
			o := outs[i]
			m := panther.Message{Role: panther.RoleTool, ToolCallID: tc.ID}
			if o.err != nil {
				m.IsError = true
				m.Content = o.err.Error()
			} else {
				m.Content = book.render(o.res)
			}
			res.Messages = append(res.Messages, m)
		}
	}
}

func budgetName(why string) string {
	switch why {
	case StoppedSteps:
		return "step"
	case StoppedTokens:
		return "token"
	}
	return why
}

type toolOutcome struct {
	res ToolResult
	err error
}

// runTools runs one turn's calls, at most parallel at once, and returns their outcomes in call order.
func runTools(ctx context.Context, tools map[string]Tool, check func(context.Context, panther.ToolCall) error, calls []panther.ToolCall, parallel int, timeout time.Duration, emit func(Event)) []toolOutcome {
	outs := make([]toolOutcome, len(calls))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, tc := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				outs[i].err = fmt.Errorf("%s: not run: %w", tc.Name, context.Cause(ctx))
				emit(Event{Kind: EventToolEnd, Tool: tc.Name, ToolCallID: tc.ID, Err: outs[i].err.Error()})
				return
			}
			defer func() { <-sem }()
			emit(Event{Kind: EventToolStart, Tool: tc.Name, ToolCallID: tc.ID, Text: string(tc.Arguments)})
			start := time.Now()
			outs[i] = runTool(ctx, tools, check, tc, timeout)
			ev := Event{Kind: EventToolEnd, Tool: tc.Name, ToolCallID: tc.ID, Elapsed: time.Since(start)}
			if outs[i].err != nil {
				ev.Err = outs[i].err.Error()
			} else {
				ev.Citations = outs[i].res.Citations
			}
			emit(ev)
		}()
	}
	wg.Wait()
	return outs
}

// ownTimeout is implemented by a tool that needs another time-out than the agent's ToolTimeout: the
// task tool, whose sub-agents have time budgets of their own.
type ownTimeout interface {
	RunTimeout() time.Duration
}

// abandonGrace is how long a tool whose time is up may take to return before the loop stops
// waiting for it. A tool that ignores its context would otherwise hang the run for good.
var abandonGrace = 10 * time.Second

// runTool checks and runs one call with its own time-out, turning a refusal, an unknown name or a
// panic into an error.
func runTool(ctx context.Context, tools map[string]Tool, check func(context.Context, panther.ToolCall) error, tc panther.ToolCall, timeout time.Duration) (out toolOutcome) {
	defer func() {
		if p := recover(); p != nil {
			out = toolOutcome{err: fmt.Errorf("%s: the tool crashed: %v", tc.Name, p)}
		}
	}()
	args := tc.Arguments
	if len(strings.TrimSpace(string(args))) == 0 {
		args = json.RawMessage("{}")
	}
	if check != nil {
		// Before the time-out starts: an approval may wait for a person, bounded by the run.
		if err := check(ctx, panther.ToolCall{ID: tc.ID, Name: tc.Name, Arguments: args}); err != nil {
			return toolOutcome{err: err}
		}
	}
	if tc.Malformed != "" {
		return toolOutcome{err: panther.Invalidf("%s: the arguments were not a JSON object: %s; call it again with a JSON object that matches its parameters", tc.Name, tc.Malformed)}
	}
	t, ok := tools[tc.Name]
	if !ok {
		names := make([]string, 0, len(tools))
		for n := range tools {
			names = append(names, n)
		}
		sort.Strings(names)
		avail := "none"
		if len(names) > 0 {
			avail = strings.Join(names, ", ")
		}
		return toolOutcome{err: fmt.Errorf("unknown tool %q; the tools are: %s", tc.Name, avail)}
	}
	if ot, ok := t.(ownTimeout); ok && ot.RunTimeout() > 0 {
		timeout = ot.RunTimeout()
	}
	tctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%s: no result within %s", tc.Name, timeout))
	defer cancel()
	done := make(chan toolOutcome, 1) // buffered: an abandoned tool still finishes without blocking
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- toolOutcome{err: fmt.Errorf("%s: the tool crashed: %v", tc.Name, p)}
			}
		}()
		res, err := t.Run(tctx, args)
		done <- toolOutcome{res: res, err: err}
	}()
	select {
	case out = <-done:
	case <-tctx.Done():
		grace := time.NewTimer(abandonGrace)
		defer grace.Stop()
		select {
		case out = <-done:
		case <-grace.C:
			return toolOutcome{err: fmt.Errorf("%w; the tool did not stop within %s of that, so its result is abandoned", context.Cause(tctx), abandonGrace)}
		}
	}
	if out.err != nil {
		if tctx.Err() != nil && ctx.Err() == nil {
			// Our own time-out: say so rather than "context deadline exceeded".
			return toolOutcome{err: fmt.Errorf("%w (%v)", context.Cause(tctx), out.err)}
		}
		return toolOutcome{err: out.err}
	}
	return out
}

// citeLedger is a citeBook that several agents of one tree may share: sub-agents number their
// sources in their parent's book, so the numbers they answer with are the parent's too.
type citeLedger struct {
	mu   sync.Mutex
	book *citeBook
}

func newCiteLedger() *citeLedger { return &citeLedger{book: newCiteBook()} }

func (l *citeLedger) render(r ToolResult) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.book.render(r)
}

// finish checks text's citations (see finishAnswer); body is the answer without its Sources list.
func (l *citeLedger) finish(text string) (answer, body string, cites []panther.Citation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	answer, cites = finishAnswer(text, l.book)
	body = answer
	if len(cites) > 0 {
		var src strings.Builder
		src.WriteString("\n\nSources:")
		for _, c := range cites {
			fmt.Fprintf(&src, "\n[%d] %s", l.book.byLink[c.Link()], c.Link())
		}
		// Should the list's format change, the body keeps it: a repeated list, nothing lost.
		body = strings.TrimSuffix(answer, src.String())
	}
	return answer, body, cites
}
