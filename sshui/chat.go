package sshui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"panther"
	"panther/agent"
)

const (
	// maxTranscriptBytes bounds the conversation a session keeps on screen; the oldest entries go
	// first (the session store keeps them all).
	maxTranscriptBytes = 512 << 10
	// maxLiveBytes bounds the streamed text of one step.
	maxLiveBytes = 256 << 10
	// runBuffer is how many events may wait for the screen before the agent waits for it.
	runBuffer = 256
	// maxStatusArgs bounds a tool's arguments shown on its status line.
	maxStatusArgs = 200
)

type entryKind int

const (
	entryUser entryKind = iota
	entryAnswer
	entryNote
	entryLink
	entryError
)

// entry is one block of the transcript, with its text wrapped for the last width drawn.
type entry struct {
	kind  entryKind
	text  string
	lines []string
	width int
}

// activity is a tool call or sub-agent still running, shown as a status line.
type activity struct {
	key, label string
}

// run is an answer in progress: the agent's events and its end come through ch, in order.
type run struct {
	id     int
	ch     chan tea.Msg
	cancel context.CancelFunc
}

type (
	eventMsg   struct{ e agent.Event }
	sessionMsg struct{ s panther.Session }
	doneMsg    struct {
		sess panther.Session
		res  agent.Result
		err  error
	}
	// runMsgs are the messages of a run that were waiting, taken together so that a fast stream of
	// tokens costs one redraw, not one each.
	runMsgs struct {
		id   int
		msgs []tea.Msg
	}
)

// next waits for the run's next messages.
func (r *run) next() tea.Msg {
	first, ok := <-r.ch
	if !ok {
		return nil
	}
	msgs := []tea.Msg{first}
	for len(msgs) < runBuffer {
		select {
		case msg, ok := <-r.ch:
			if !ok {
				return runMsgs{id: r.id, msgs: msgs}
			}
			msgs = append(msgs, msg)
		default:
			return runMsgs{id: r.id, msgs: msgs}
		}
	}
	return runMsgs{id: r.id, msgs: msgs}
}

// chatState is the chat view: a conversation with one agent, kept as one session.
type chatState struct {
	input   lineInput
	agent   string // empty: the default agent
	session string // the session a follow-up continues
	entries []*entry
	size    int
	runSeq  int
	run     *run
	live    string
	active  []activity
	// depth is how deep each run of the current answer is: 0 for the agent asked, 1 for its
	// sub-agents, and so on.
	depth map[string]int
	// scroll is how many lines the transcript is scrolled up from its end.
	scroll  int
	picking bool
	pick    int
	// status is a one-line message about the last key (cleared by the next).
	status string
}

func defaultAgent(names []string) string {
	if len(names) == 0 || slices.Contains(names, agent.DefaultAgent) {
		return agent.DefaultAgent
	}
	return names[0]
}

func (m *model) chatKey(k tea.KeyPressMsg) tea.Cmd {
	c := &m.chat
	key := k.String()
	c.status = ""
	if c.picking {
		switch key {
		case "up", "k":
			c.pick--
		case "down", "j":
			c.pick++
		case "enter":
			c.picking = false
			if c.pick >= 0 && c.pick < len(m.agents) {
				c.newConversation(m.agents[c.pick])
			}
		case "esc":
			c.picking = false
		}
		c.pick = min(max(c.pick, 0), max(len(m.agents)-1, 0))
		return nil
	}
	rows := m.transcriptRows()
	switch key {
	case "enter":
		prompt := strings.TrimSpace(c.input.String())
		switch {
		case m.asker == nil:
			c.status = "no agent can answer here: the server has no model"
		case c.run != nil:
			c.status = "an answer is running: wait for it, or ctrl-c to cancel it"
		case prompt != "":
			c.input.reset()
			return m.startRun(prompt)
		}
	case "ctrl+n":
		switch {
		case c.run != nil:
			c.status = "an answer is running: wait for it, or ctrl-c to cancel it"
		case len(m.agents) > 1:
			c.picking, c.pick = true, max(slices.Index(m.agents, c.agent), 0)
		default:
			c.newConversation(c.agent)
		}
	case "up":
		c.scroll++
	case "down":
		c.scroll--
	case "pgup":
		c.scroll += rows - 1
	case "pgdown":
		c.scroll -= rows - 1
	case "esc":
		c.scroll = 0
	default:
		c.input.key(k)
	}
	c.scroll = max(c.scroll, 0)
	return nil
}

func (c *chatState) newConversation(agentName string) {
	c.agent, c.session, c.entries, c.size, c.scroll = agentName, "", nil, 0, 0
	c.status = "new conversation with " + agentName
}

func (m *model) startRun(prompt string) tea.Cmd {
	c := &m.chat
	c.add(entryUser, prompt)
	c.scroll, c.live, c.active, c.depth = 0, "", nil, map[string]int{}
	c.runSeq++
	ctx, cancel := m.opContext(0)
	r := &run{id: c.runSeq, ch: make(chan tea.Msg, runBuffer), cancel: cancel}
	c.run = r
	req := agent.AskRequest{Prompt: prompt, Continue: c.session}
	if c.session == "" {
		req.Agent = c.agent
	}
	send := func(msg tea.Msg) {
		select {
		case r.ch <- msg:
		case <-ctx.Done():
		}
	}
	req.OnEvent = func(e agent.Event) { send(eventMsg{e}) }
	req.OnSession = func(s panther.Session) { send(sessionMsg{s}) }
	asker, done := m.asker, m.done
	ask := func() tea.Msg {
		defer close(r.ch)
		defer cancel()
		if !m.beginAsk() {
			return nil // the session ended before the run started
		}
		defer m.asks.Done()
		sess, res, err := asker.Ask(ctx, req)
		// The end goes through even after a cancel, unless nobody is left to read it.
		select {
		case r.ch <- doneMsg{sess: sess, res: res, err: err}:
		case <-done:
		}
		return nil
	}
	return tea.Batch(ask, r.next)
}

// cancel stops the running answer; its end still arrives, with what it had.
func (c *chatState) cancel() {
	if c.run != nil {
		c.run.cancel()
		c.status = "cancelling…"
	}
}

// events applies a run's messages and listens for more until it ends.
func (c *chatState) events(msg runMsgs) tea.Cmd {
	if c.run == nil || msg.id != c.run.id {
		return nil
	}
	for _, x := range msg.msgs {
		switch x := x.(type) {
		case eventMsg:
			c.event(x.e)
		case sessionMsg:
			c.session = x.s.ID
			if x.s.Agent != "" {
				c.agent = x.s.Agent
			}
		case doneMsg:
			c.finish(x)
			c.run = nil
			return nil
		}
	}
	return c.run.next
}

func (c *chatState) event(e agent.Event) {
	sub := e.ParentRunID != ""
	if c.depth == nil {
		c.depth = map[string]int{}
	}
	if !sub && e.RunID != "" {
		c.depth[e.RunID] = 0
	}
	if e.Kind == agent.EventSubagentStart {
		c.depth[e.RunID] = c.runDepth(e.ParentRunID, true) + 1
	}
	indent := strings.Repeat("  ", c.runDepth(e.RunID, sub))
	if e.Kind == agent.EventSubagentStart || e.Kind == agent.EventSubagentEnd {
		// A sub-agent's start and end are its parent's doing.
		indent = strings.Repeat("  ", c.runDepth(e.ParentRunID, true))
	}
	switch e.Kind {
	case agent.EventText:
		// A sub-agent's text is its parent's business; the user sees the answer it leads to.
		if !sub && len(c.live) < maxLiveBytes {
			c.live += clean(e.Text)
		}
	case agent.EventToolStart:
		if e.Tool == "task" {
			return // the sub-agent's own lines tell it better
		}
		if !sub {
			c.flushLive()
		}
		label := clean(e.Tool)
		if args := oneLine(clean(e.Text)); args != "" && args != "{}" {
			label += " " + trimRunes(args, maxStatusArgs)
		}
		c.active = append(c.active, activity{key: e.RunID + "\x00" + e.ToolCallID, label: indent + label})
	case agent.EventToolEnd:
		if e.Tool == "task" {
			return
		}
		label := c.done(e.RunID + "\x00" + e.ToolCallID)
		if label == "" {
			label = indent + clean(e.Tool)
		}
		if e.Err != "" {
			c.add(entryError, "✗ "+label+": "+oneLine(clean(e.Err)))
		} else {
			c.add(entryNote, fmt.Sprintf("✓ %s (%s)", label, e.Elapsed.Round(time.Millisecond)))
		}
	case agent.EventSubagentStart:
		c.active = append(c.active, activity{key: "sub\x00" + e.RunID,
			label: indent + "→ sub-agent " + clean(e.Agent) + ": " + trimRunes(oneLine(clean(e.Description)), maxStatusArgs)})
	case agent.EventSubagentEnd:
		c.done("sub\x00" + e.RunID)
		if e.Err != "" {
			c.add(entryError, indent+"← sub-agent "+clean(e.Agent)+" failed: "+oneLine(clean(e.Err)))
		} else {
			c.add(entryNote, indent+"← sub-agent "+clean(e.Agent)+" done")
		}
	}
}

// runDepth is how deep run id is; a run not seen start is the top one unless it has a parent.
func (c *chatState) runDepth(id string, hasParent bool) int {
	if d, ok := c.depth[id]; ok {
		return d
	}
	if hasParent && id != "" {
		return 1
	}
	return 0
}

// done removes a running activity and returns its label.
func (c *chatState) done(key string) string {
	for i, a := range c.active {
		if a.key == key {
			c.active = slices.Delete(c.active, i, i+1)
			return a.label
		}
	}
	return ""
}

// flushLive keeps the text streamed so far (what the model said before calling tools) as a note.
func (c *chatState) flushLive() {
	if s := strings.TrimSpace(c.live); s != "" {
		c.add(entryNote, s)
	}
	c.live = ""
}

func (c *chatState) finish(d doneMsg) {
	c.active = nil
	if d.sess.ID != "" {
		c.session = d.sess.ID
		if d.sess.Agent != "" {
			c.agent = d.sess.Agent
		}
	}
	answer := strings.TrimSpace(clean(d.res.Answer))
	if answer == "" {
		answer = strings.TrimSpace(c.live)
	}
	c.live = ""
	if answer != "" {
		body, refs, trailer := splitSources(answer)
		c.add(entryAnswer, body)
		if len(refs) > 0 {
			c.add(entryAnswer, "Sources:")
			for _, r := range refs {
				title := r.link
				for _, cite := range d.res.Citations {
					if cite.Link() == r.link {
						title = clean(where(cite))
						break
					}
				}
				c.add(entryAnswer, fmt.Sprintf("[%s] %s", r.n, title))
				c.add(entryLink, "    "+r.link)
			}
		}
		if trailer != "" {
			c.add(entryNote, trailer)
		}
	}
	switch {
	case d.err == nil:
	case errors.Is(d.err, context.Canceled):
		if !strings.Contains(answer, "[stopped: cancelled]") {
			c.add(entryNote, "[stopped: cancelled]")
		}
	default:
		c.add(entryError, "error: "+clean(d.err.Error()))
	}
	if d.sess.ID != "" {
		u := d.res.Usage
		c.add(entryNote, fmt.Sprintf("session %s · %d steps · %d tokens", d.sess.ID, d.res.Steps, u.InputTokens+u.OutputTokens))
	}
	c.status = ""
}

type sourceRef struct{ n, link string }

// splitSources cuts an answer's "Sources:" list ("[n] url#anchor" lines, see agent.Result.Answer)
// from its body, with whatever line follows the list (why a run stopped). An answer whose list
// does not parse is returned whole.
func splitSources(answer string) (body string, refs []sourceRef, trailer string) {
	const head = "\n\nSources:\n"
	i := strings.LastIndex(answer, head)
	if i < 0 {
		return answer, nil, ""
	}
	lines := strings.Split(answer[i+len(head):], "\n")
	for j, line := range lines {
		if line == "" {
			trailer = strings.TrimSpace(strings.Join(lines[j:], "\n"))
			break
		}
		n, link, ok := strings.Cut(line, "] ")
		if !ok || !strings.HasPrefix(n, "[") || strings.TrimLeft(n[1:], "0123456789") != "" || len(n) < 2 {
			return answer, nil, ""
		}
		refs = append(refs, sourceRef{n: n[1:], link: link})
	}
	return answer[:i], refs, trailer
}

func (c *chatState) add(kind entryKind, text string) {
	c.entries = append(c.entries, &entry{kind: kind, text: text})
	c.size += len(text)
	for c.size > maxTranscriptBytes && len(c.entries) > 1 {
		c.size -= len(c.entries[0].text)
		c.entries = c.entries[1:]
	}
}

// wrapped returns the entry's lines for width, styled.
func (e *entry) wrapped(width int) []string {
	if e.width == width && e.lines != nil {
		return e.lines
	}
	e.width, e.lines = width, nil
	switch e.kind {
	case entryUser:
		e.lines = append(e.lines, "")
		for i, l := range wrap(e.text, max(width-2, 1)) {
			prefix := "  "
			if i == 0 {
				prefix = "› "
			}
			e.lines = append(e.lines, styleUser.Render(prefix+l))
		}
	default:
		style := styleDim
		switch e.kind {
		case entryAnswer:
			style = stylePlain
		case entryError:
			style = styleError
		}
		for _, l := range wrap(e.text, width) {
			e.lines = append(e.lines, style.Render(l))
		}
	}
	return e.lines
}

// transcriptRows is the height of the transcript: the body less the info and input lines.
func (m *model) transcriptRows() int { return max(m.height-4, 1) }

func (m *model) chatView(w, h int) ([]string, *tea.Position) {
	c := &m.chat
	info := "agent " + c.agent
	if c.session != "" {
		info += " · session " + c.session
	}
	info += " · ctrl-n new conversation"
	if m.asker == nil {
		info = "no agent can answer here: the server has no model"
	}
	if c.status != "" {
		info = c.status
	}
	rows := []string{styleDim.Render(info)}
	tr := h - 2
	if c.picking {
		rows = append(rows, styleBold.Render("Choose the agent of a new conversation (enter choose, esc cancel):"))
		top := max(c.pick-(tr-2), 0)
		for i := top; i < len(m.agents) && len(rows) < h-1; i++ {
			line := "  " + m.agents[i]
			if i == c.pick {
				line = styleSel.Render("› " + m.agents[i])
			}
			rows = append(rows, line)
		}
		for len(rows) < h-1 {
			rows = append(rows, "")
		}
		return append(rows, ""), nil
	}
	tw := max(w-1, 1)
	var lines []string
	for _, e := range c.entries {
		lines = append(lines, e.wrapped(tw)...)
	}
	if c.run != nil {
		if live := strings.TrimSpace(c.live); live != "" {
			lines = append(lines, wrap(live, tw)...)
		}
		for _, a := range c.active {
			lines = append(lines, styleDim.Render("⋯ "+fit(a.label, tw-2)))
		}
	}
	c.scroll = min(c.scroll, max(len(lines)-tr, 0))
	start := max(len(lines)-tr-c.scroll, 0)
	end := min(start+tr, len(lines))
	rows = append(rows, lines[start:end]...)
	for len(rows) < h-1 {
		rows = append(rows, "")
	}
	text, col := c.input.render(w - 2)
	rows = append(rows, styleBold.Render("› ")+text)
	return rows, &tea.Position{X: 2 + col, Y: h - 1}
}

func (m *model) chatHelp() string {
	c := &m.chat
	scrolled := ""
	if c.scroll > 0 {
		scrolled = fmt.Sprintf(" · %d lines up, esc to follow", c.scroll)
	}
	if c.run != nil {
		return "answering… ctrl-c cancels · pgup pgdn scroll · tab search" + scrolled
	}
	return "enter send · pgup pgdn scroll · tab search · ctrl-d quit" + scrolled
}

func trimRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
