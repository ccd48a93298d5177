package sshui

import (
	"context"
	"strings"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

// Bounds of one terminal session.
const (
	// maxQueryRunes and maxPromptRunes bound what can be typed or pasted into the inputs.
	maxQueryRunes  = 500
	maxPromptRunes = 8000
	// searchTimeout and readTimeout bound one search and one section read; an agent's answer is
	// bounded by the agent's own budgets.
	searchTimeout = 30 * time.Second
	readTimeout   = 30 * time.Second
	// minWidth and minHeight are the smallest window the UI draws in.
	minWidth  = 30
	minHeight = 8
)

type tab int

const (
	tabSearch tab = iota
	tabChat
)

var (
	stylePlain = lipgloss.NewStyle()
	styleBold  = lipgloss.NewStyle().Bold(true)
	styleDim   = lipgloss.NewStyle().Faint(true)
	styleTab   = lipgloss.NewStyle().Reverse(true).Bold(true)
	styleSel   = lipgloss.NewStyle().Reverse(true)
	styleError = lipgloss.NewStyle().Foreground(lipgloss.Color("1"))
	styleUser  = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("4"))
)

// shutdownMsg tells a session the server is stopping.
type shutdownMsg struct{}

// model is one terminal session's UI: a search view and a chat view.
//
// I/O happens in commands, under contexts made per operation (opContext) that end when the
// session does, so that nothing a session started outlives it.
type model struct {
	deps
	width, height int
	tab           tab
	// notice is a message for the header line (the server stopping).
	notice string

	done chan struct{}
	// mu guards closed; asks counts the agent runs in flight, so that a session that ends can wait
	// for its run to be stored.
	mu     sync.Mutex
	closed bool
	asks   sync.WaitGroup

	search searchState
	chat   chatState
}

// deps are the services a session uses.
type deps struct {
	searcher Searcher
	reader   Reader
	asker    Asker
	agents   []string
}

func newModel(d deps, width, height int) *model {
	m := &model{deps: d, width: width, height: height, done: make(chan struct{})}
	if m.width <= 0 {
		m.width = 80
	}
	if m.height <= 0 {
		m.height = 24
	}
	m.search.input.max = maxQueryRunes
	m.chat.input.max = maxPromptRunes
	m.chat.agent = defaultAgent(d.agents)
	return m
}

// close ends everything the session started. It is safe to call more than once.
func (m *model) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.closed = true
		close(m.done)
	}
}

// beginAsk counts an agent run in, unless the session has ended.
func (m *model) beginAsk() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.asks.Add(1)
	return true
}

// wait ends the session and waits, at most limit, for its agent run to finish and be stored.
func (m *model) wait(limit time.Duration) bool {
	m.close()
	done := make(chan struct{})
	go func() { m.asks.Wait(); close(done) }()
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// opContext returns a context for one operation that ends when the session does, or after
// timeout when it is positive.
func (m *model) opContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	if timeout > 0 {
		var cancelTimeout context.CancelFunc
		ctx, cancelTimeout = context.WithTimeout(ctx, timeout)
		outer := cancel
		cancel = func() { cancelTimeout(); outer() }
	}
	go func() {
		select {
		case <-m.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func (m *model) Init() tea.Cmd { return nil }

func (m *model) quit() (tea.Model, tea.Cmd) {
	m.close()
	return m, tea.Quit
}

func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.search.reflow(m.width)
		m.search.clamp(m.listRows(), m.readerRows())
		return m, nil
	case tea.KeyPressMsg:
		return m.key(msg)
	case tea.PasteMsg:
		if in := m.focusedInput(); in != nil {
			in.insert(msg.Content)
		}
		return m, nil
	case hitsMsg:
		m.search.gotHits(msg, m.listRows())
		return m, nil
	case sectionMsg:
		m.search.gotSection(msg, m.width, m.readerRows())
		return m, nil
	case runMsgs:
		return m, m.chat.events(msg)
	case shutdownMsg:
		m.notice = "the server is shutting down"
		return m.quit()
	}
	return m, nil
}

// focusedInput is the text field keys go to, if one has the focus.
func (m *model) focusedInput() *lineInput {
	switch {
	case m.tab == tabChat && !m.chat.picking:
		return &m.chat.input
	case m.tab == tabSearch && m.search.focus == focusInput:
		return &m.search.input
	}
	return nil
}

func (m *model) key(k tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	switch k.String() {
	case "ctrl+d":
		return m.quit()
	case "ctrl+c":
		// Ctrl-C stops what is running first, then clears what is typed; only then does it leave.
		if m.tab == tabChat && m.chat.run != nil {
			m.chat.cancel()
			return m, nil
		}
		if in := m.focusedInput(); in != nil && !in.empty() {
			in.reset()
			return m, nil
		}
		return m.quit()
	case "tab", "shift+tab":
		if !m.chat.picking {
			if m.tab == tabSearch {
				m.tab = tabChat
			} else {
				m.tab = tabSearch
			}
			return m, nil
		}
	}
	if m.tab == tabChat {
		return m, m.chatKey(k)
	}
	if k.String() == "q" && m.search.focus != focusInput {
		return m.quit()
	}
	return m, m.searchKey(k)
}

func (m *model) View() tea.View {
	rows, cursor := m.render()
	v := tea.NewView(strings.Join(rows, "\n"))
	v.AltScreen = true
	v.WindowTitle = "panther"
	if cursor != nil {
		v.Cursor = tea.NewCursor(cursor.X, cursor.Y)
	}
	return v
}

// render draws the screen as exactly height lines of at most width cells, and where the cursor
// goes, if anywhere.
func (m *model) render() ([]string, *tea.Position) {
	w, h := m.width, m.height
	if w < minWidth || h < minHeight {
		rows := make([]string, max(h, 1))
		rows[0] = fit("panther: window too small", w)
		return rows, nil
	}
	rows := make([]string, 0, h)
	rows = append(rows, m.header())
	var body []string
	var cursor *tea.Position
	if m.tab == tabSearch {
		body, cursor = m.searchView(w, h-2)
	} else {
		body, cursor = m.chatView(w, h-2)
	}
	for len(body) < h-2 {
		body = append(body, "")
	}
	rows = append(rows, body[:h-2]...)
	rows = append(rows, styleDim.Render(m.help()))
	for i := range rows {
		rows[i] = fit(rows[i], w)
	}
	if cursor != nil {
		cursor.Y++ // below the header
	}
	return rows, cursor
}

func (m *model) header() string {
	name := func(t tab, label string) string {
		if m.tab == t {
			return styleTab.Render(" " + label + " ")
		}
		return " " + label + " "
	}
	s := styleBold.Render("panther") + "  " + name(tabSearch, "Search") + " " + name(tabChat, "Chat")
	if m.notice != "" {
		s += "  " + styleError.Render(m.notice)
	}
	return s
}

func (m *model) help() string {
	if m.tab == tabChat {
		return m.chatHelp()
	}
	return m.searchHelp()
}
