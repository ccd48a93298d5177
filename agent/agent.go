// Package agent is panther's agent runtime: the loop that lets a model call tools until it answers or
// a budget runs out, the knowledge-base tools (kb_search, kb_read), and the numbering and checking of
// the citations an answer rests on.
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
}

// Event kinds.
const (
	EventText      = "text"       // a piece of the model's text, as it streams
	EventToolStart = "tool_start" // a tool call begins; Text holds its arguments
	EventToolEnd   = "tool_end"   // a tool call ended; Err is set when it failed
	EventStep      = "step"       // a model call ended; Step is its number
)

// Event is something that happened during a run, for a live view of it.
type Event struct {
	Kind       string `json:"kind"`
	Text       string `json:"text,omitempty"`
	Tool       string `json:"tool,omitempty"`
	ToolCallID string `json:"tool_call_id,omitempty"`
	Err        string `json:"err,omitempty"`
	Step       int    `json:"step,omitempty"`
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
	res := Result{Messages: append(append(make([]panther.Message, 0, len(history)+8), history...), panther.Message{Role: panther.RoleUser, Content: prompt})}
	book := newCiteBook()
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
		res.Answer, res.Citations = finishAnswer(lastText, book)
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
		resp, err := a.Model.Complete(rctx, req, stream)
		if err != nil {
			if why := ended(); why != "" {
				return stop(why)
			}
			res.StoppedBy = "error"
			res.Answer, res.Citations = finishAnswer(lastText, book)
			return res, fmt.Errorf("agent %q, step %d: %w", a.Name, res.Steps+1, err)
		}
		res.Steps++
		res.Usage.InputTokens += resp.Usage.InputTokens
		res.Usage.OutputTokens += resp.Usage.OutputTokens
		emit(Event{Kind: EventStep, Step: res.Steps})

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
			res.Answer, res.Citations = finishAnswer(msg.Content, book)
			if resp.StopReason == panther.StopMaxTokens {
				res.Answer = strings.TrimSpace(res.Answer + "\n\n[cut: the answer reached the model's output limit]")
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

		outs := runTools(rctx, tools, msg.ToolCalls, parallel, toolTimeout, emit)
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
func runTools(ctx context.Context, tools map[string]Tool, calls []panther.ToolCall, parallel int, timeout time.Duration, emit func(Event)) []toolOutcome {
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
			outs[i] = runTool(ctx, tools, tc, timeout)
			ev := Event{Kind: EventToolEnd, Tool: tc.Name, ToolCallID: tc.ID}
			if outs[i].err != nil {
				ev.Err = outs[i].err.Error()
			}
			emit(ev)
		}()
	}
	wg.Wait()
	return outs
}

// runTool runs one call with its own time-out, turning an unknown name or a panic into an error.
func runTool(ctx context.Context, tools map[string]Tool, tc panther.ToolCall, timeout time.Duration) (out toolOutcome) {
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
	tctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%s: no result within %s", tc.Name, timeout))
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			out = toolOutcome{err: fmt.Errorf("%s: the tool crashed: %v", tc.Name, p)}
		}
	}()
	args := tc.Arguments
	if len(strings.TrimSpace(string(args))) == 0 {
		args = json.RawMessage("{}")
	}
	res, err := t.Run(tctx, args)
	if err != nil {
		if tctx.Err() != nil && ctx.Err() == nil {
			// Our own time-out: say so rather than "context deadline exceeded".
			return toolOutcome{err: fmt.Errorf("%w (%v)", context.Cause(tctx), err)}
		}
		return toolOutcome{err: err}
	}
	return toolOutcome{res: res}
}
