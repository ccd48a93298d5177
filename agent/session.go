package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"panther"
)

// SessionStore is the part of the store sessions need.
type SessionStore interface {
	CreateSession(ctx context.Context, s panther.Session) (panther.Session, error)
	AppendSessionMessages(ctx context.Context, id string, msgs []panther.SessionMessage) error
	UpdateSession(ctx context.Context, s panther.Session) error
	Session(ctx context.Context, id string) (panther.Session, error)
	SessionMessages(ctx context.Context, id string) ([]panther.SessionMessage, error)
}

// Sessions runs agents as sessions kept in the store: every message, tool call and result, with
// token usage and timings, and each sub-agent as a child session. It is the one way the CLI, the
// HTTP API, MCP and the terminal UI run an agent.
type Sessions struct {
	Runtime *Runtime
	Store   SessionStore
}

// AskRequest is one prompt to an agent.
type AskRequest struct {
	// Agent names the agent; empty means the continued session's agent, else "general".
	Agent  string
	Prompt string
	// Continue, when set, is the ID (or a unique prefix) of a session to continue: the agent sees
	// its conversation so far.
	Continue string
	// OnEvent, when not nil, sees the run as it happens (see Runtime.Run).
	OnEvent func(Event)
	// OnSession, when not nil, is called once the session exists, before the agent starts, so a
	// caller can show or return its ID early.
	OnSession func(panther.Session)
}

// DefaultAgent answers when a request names none.
const DefaultAgent = "general"

// Ask runs req as a new session or a continued one and stores it, whatever the outcome: a failed
// or cancelled run is kept with what it did and its status says how it ended.
func (s *Sessions) Ask(ctx context.Context, req AskRequest) (panther.Session, Result, error) {
	if strings.TrimSpace(req.Prompt) == "" {
		return panther.Session{}, Result{}, panther.Invalidf("the prompt is empty")
	}
	var (
		sess    panther.Session
		history []panther.Message
		err     error
	)
	if req.Continue != "" {
		if sess, err = s.Store.Session(ctx, req.Continue); err != nil {
			return panther.Session{}, Result{}, err
		}
		if sess.ParentID != "" {
			return panther.Session{}, Result{}, panther.Invalidf("session %s is a sub-agent's; continue its parent %s", sess.ID, sess.ParentID)
		}
		if req.Agent != "" && req.Agent != sess.Agent {
			return panther.Session{}, Result{}, panther.Invalidf("session %s belongs to agent %q, not %q", sess.ID, sess.Agent, req.Agent)
		}
		stored, err := s.Store.SessionMessages(ctx, sess.ID)
		if err != nil {
			return panther.Session{}, Result{}, err
		}
		for _, m := range stored {
			history = append(history, m.Message)
		}
		sess.Status = panther.SessionRunning
		if err := s.Store.UpdateSession(ctx, sess); err != nil {
			return panther.Session{}, Result{}, err
		}
	} else {
		name := req.Agent
		if name == "" {
			name = DefaultAgent
		}
		def, ok := s.Runtime.Definitions[name]
		if !ok {
			return panther.Session{}, Result{}, panther.NotFoundf("agent %q; the agents are: %s", name, strings.Join(s.Runtime.agentNames(), ", "))
		}
		// Resolving the model first keeps a misconfigured model from leaving an empty session behind.
		_, modelName, err := s.Runtime.Model(def.Model)
		if err != nil {
			return panther.Session{}, Result{}, fmt.Errorf("agent %q: %w", def.Name, err)
		}
		sess, err = s.Store.CreateSession(ctx, panther.Session{Agent: def.Name, Model: modelName, Title: panther.SessionTitle(req.Prompt), Status: panther.SessionRunning})
		if err != nil {
			return panther.Session{}, Result{}, err
		}
	}
	if req.OnSession != nil {
		req.OnSession(sess)
	}

	rec := newRecorder(s.Store)
	rec.saved(sess.ID)
	rt := *s.Runtime
	rt.OnSubagent = func(r SubagentReport) {
		if s.Runtime.OnSubagent != nil {
			s.Runtime.OnSubagent(r)
		}
		rec.subagent(ctx, r)
	}
	started := time.Now()
	res, runErr := rt.RunWithID(ctx, sess.ID, sess.Agent, req.Prompt, history, func(e Event) {
		rec.event(e)
		if req.OnEvent != nil {
			req.OnEvent(e)
		}
	})
	// The run may have been cancelled; what it did is still saved.
	saveCtx := context.WithoutCancel(ctx)
	msgs := res.Messages
	if len(msgs) >= len(history) {
		msgs = msgs[len(history):]
	} else if len(msgs) == 0 {
		// A run that failed before its first step has no conversation; keep the prompt.
		msgs = []panther.Message{{Role: panther.RoleUser, Content: req.Prompt}}
	}
	sess.Usage.InputTokens += res.Usage.InputTokens
	sess.Usage.OutputTokens += res.Usage.OutputTokens
	sess.Steps += res.Steps
	sess.StoppedBy = res.StoppedBy
	if res.Model != "" {
		sess.Model = res.Model
	}
	sess.Status = statusOf(runErr)
	if err := rec.save(saveCtx, &sess, msgs, res, started); err != nil {
		return sess, res, errors.Join(runErr, fmt.Errorf("save session %s: %w", sess.ID, err))
	}
	return sess, res, runErr
}

func statusOf(err error) panther.SessionStatus {
	switch {
	case err == nil:
		return panther.SessionDone
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return panther.SessionCancelled
	}
	return panther.SessionFailed
}

// recorder collects what a run's events say about timings and sources, keyed by run, and keeps
// sub-agents' sessions, holding a report back until its parent's session is stored.
type recorder struct {
	store SessionStore

	mu        sync.Mutex
	steps     map[string][]Event          // run id → step events in order
	tools     map[string]Event            // run id + tool call id → tool_end event
	persisted map[string]bool             // run ids stored as sessions
	pending   map[string][]SubagentReport // parent run id → reports waiting for it
	errs      []error
}

func newRecorder(store SessionStore) *recorder {
	return &recorder{store: store, steps: map[string][]Event{}, tools: map[string]Event{}, persisted: map[string]bool{}, pending: map[string][]SubagentReport{}}
}

func (r *recorder) saved(runID string) {
	r.mu.Lock()
	r.persisted[runID] = true
	r.mu.Unlock()
}

func (r *recorder) event(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e.Kind {
	case EventStep:
		r.steps[e.RunID] = append(r.steps[e.RunID], e)
	case EventToolEnd:
		r.tools[e.RunID+"\x00"+e.ToolCallID] = e
	}
}

// annotate turns a run's messages into session messages with the timings, usage and sources its
// events reported.
func (r *recorder) annotate(runID string, msgs []panther.Message, now time.Time) []panther.SessionMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	steps := r.steps[runID]
	out := make([]panther.SessionMessage, len(msgs))
	step := 0
	for i, m := range msgs {
		sm := panther.SessionMessage{Message: m, Created: now}
		switch m.Role {
		case panther.RoleAssistant:
			if step < len(steps) {
				sm.Duration = steps[step].Elapsed
				if u := steps[step].Usage; u != nil {
					sm.Usage = *u
				}
				step++
			}
		case panther.RoleTool:
			if e, ok := r.tools[runID+"\x00"+m.ToolCallID]; ok {
				sm.Duration = e.Elapsed
				sm.Citations = e.Citations
			}
		}
		out[i] = sm
	}
	return out
}

func (r *recorder) save(ctx context.Context, sess *panther.Session, msgs []panther.Message, res Result, started time.Time) error {
	if err := r.store.AppendSessionMessages(ctx, sess.ID, r.annotate(res.RunID, msgs, time.Now())); err != nil {
		return err
	}
	if err := r.store.UpdateSession(ctx, *sess); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(r.errs...)
}

// subagent stores a finished sub-agent as a child session, or holds it until its parent (a
// sub-agent still running) is stored.
func (r *recorder) subagent(ctx context.Context, rep SubagentReport) {
	r.mu.Lock()
	if !r.persisted[rep.ParentRunID] {
		r.pending[rep.ParentRunID] = append(r.pending[rep.ParentRunID], rep)
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	r.storeSubagent(context.WithoutCancel(ctx), rep)
}

func (r *recorder) storeSubagent(ctx context.Context, rep SubagentReport) {
	title := rep.Description
	if title == "" {
		title = rep.Prompt
	}
	res := rep.Result
	child := panther.Session{
		ID: rep.RunID, ParentID: rep.ParentRunID, Agent: rep.Agent, Model: res.Model,
		Title: panther.SessionTitle(title), Usage: res.Usage, Steps: res.Steps, StoppedBy: res.StoppedBy,
		Status: statusOf(rep.Err),
	}
	msgs := res.Messages
	if len(msgs) == 0 {
		msgs = []panther.Message{{Role: panther.RoleUser, Content: rep.Prompt}}
	}
	var err error
	if child, err = r.store.CreateSession(ctx, child); err == nil {
		err = r.store.AppendSessionMessages(ctx, child.ID, r.annotate(rep.RunID, msgs, time.Now()))
	}
	r.mu.Lock()
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("sub-agent session %s: %w", rep.RunID, err))
		r.mu.Unlock()
		return
	}
	r.persisted[rep.RunID] = true
	waiting := r.pending[rep.RunID]
	delete(r.pending, rep.RunID)
	r.mu.Unlock()
	for _, w := range waiting {
		r.storeSubagent(ctx, w)
	}
}
