package sshui

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"panther"
	"panther/agent"
)

// driver runs a model as a tea.Program does: commands in goroutines, their messages back through
// Update one at a time, without a terminal.
type driver struct {
	t    *testing.T
	m    *model
	msgs chan tea.Msg
}

func newDriver(t *testing.T, d deps) *driver {
	m := newModel(d, 80, 24)
	t.Cleanup(m.close)
	return &driver{t: t, m: m, msgs: make(chan tea.Msg, 64)}
}

func (d *driver) do(cmd tea.Cmd) {
	if cmd != nil {
		go func() { d.msgs <- cmd() }()
	}
}

func (d *driver) update(msg tea.Msg) {
	switch msg := msg.(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			d.do(c)
		}
	case tea.QuitMsg:
	default:
		_, cmd := d.m.Update(msg)
		d.do(cmd)
	}
}

// keys sends key presses: runes as typed text, and names in angle brackets: <enter>, <ctrl+c>.
func (d *driver) keys(s string) {
	for s != "" {
		if name, rest, ok := strings.Cut(s[1:], ">"); s[0] == '<' && ok {
			d.update(namedKey(d.t, name))
			s = rest
			continue
		}
		r := []rune(s)[0]
		k := tea.KeyPressMsg{Code: r, Text: string(r)}
		if r == ' ' {
			k.Code = tea.KeySpace
		}
		d.update(k)
		s = s[len(string(r)):]
	}
}

func namedKey(t *testing.T, name string) tea.KeyPressMsg {
	switch name {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "pgdown":
		return tea.KeyPressMsg{Code: tea.KeyPgDown}
	case "pgup":
		return tea.KeyPressMsg{Code: tea.KeyPgUp}
	case "backspace":
		return tea.KeyPressMsg{Code: tea.KeyBackspace}
	case "ctrl+c", "ctrl+d", "ctrl+n", "ctrl+w", "ctrl+a", "ctrl+u":
		return tea.KeyPressMsg{Code: rune(name[len(name)-1]), Mod: tea.ModCtrl}
	}
	t.Fatalf("no key %q", name)
	return tea.KeyPressMsg{}
}

// quitted reports whether the model ended the session.
func (d *driver) quitted() bool {
	select {
	case <-d.m.done:
		return true
	default:
		return false
	}
}

func (d *driver) view() string { return ansi.Strip(d.m.View().Content) }

// until processes messages until the view satisfies ok, failing after a generous deadline (a bound
// on a hang, not a performance assertion).
func (d *driver) until(what string, ok func(view string) bool) {
	d.t.Helper()
	deadline := time.After(30 * time.Second)
	for !ok(d.view()) {
		select {
		case msg := <-d.msgs:
			d.update(msg)
		case <-deadline:
			d.t.Fatalf("never %s; the screen:\n%s", what, d.view())
		}
	}
}

func (d *driver) untilShows(want ...string) {
	d.t.Helper()
	d.until("showed "+strings.Join(want, ", "), func(v string) bool {
		for _, w := range want {
			if !strings.Contains(v, w) {
				return false
			}
		}
		return true
	})
}

func TestModelSearch(t *testing.T) {
	k := openKB(t,
		pageSpec{"https://docs.example.org/brin.html", "BRIN Indexes", []panther.Section{
			{Heading: []string{"BRIN Indexes"}, Level: 1, Anchor: "brin", Markdown: "# BRIN Indexes\n\nA BRIN index stores summaries of block ranges, a small index for a large table."},
		}})
	d := newDriver(t, deps{searcher: k, reader: k})

	// q is a letter while typing a query, not a way out.
	d.keys("q")
	if d.quitted() || d.m.search.input.String() != "q" {
		t.Fatalf("q in the query box: quit %v, input %q", d.quitted(), d.m.search.input.String())
	}
	d.keys("<backspace>index large table<enter>")
	d.untilShows("2 passages for \"index large table\"", "Indexes", "BRIN Indexes", "https://docs.example.org/brin.html#brin")
	if d.m.search.focus != focusList || d.m.search.sel != 0 {
		t.Fatalf("after a search: focus %v, selection %d", d.m.search.focus, d.m.search.sel)
	}
	// Arrows move the selection, and stop at the ends.
	d.keys("<down><down><down>")
	if d.m.search.sel != 1 {
		t.Fatalf("selection %d after three downs in two hits", d.m.search.sel)
	}
	d.keys("<up><up>")
	if d.m.search.sel != 0 {
		t.Fatalf("selection %d after two ups", d.m.search.sel)
	}
	first := d.m.search.hits[0]
	d.keys("<enter>")
	d.until("opened the section", func(string) bool { return !d.m.search.docBusy && d.m.search.docText != "" })
	if d.m.search.focus != focusReader {
		t.Fatalf("focus %v after enter on a hit", d.m.search.focus)
	}
	v := d.view()
	if !strings.Contains(v, where(first.Citation)) || !strings.Contains(v, first.Link()) || !strings.Contains(v, "esc back") {
		t.Fatalf("the reader does not name the section it shows:\n%s", v)
	}
	// The reader shows the section the hit belongs to, not the whole page.
	for _, h := range d.m.search.hits {
		if h.URL == indexesURL && h.Anchor == "partial-indexes" && strings.Contains(d.m.search.docText, "speed up queries") {
			t.Errorf("the reader shows the whole page for one section:\n%s", d.m.search.docText)
		}
	}
	// Esc goes back to the hits, / to the query box; ctrl-c clears the box, then quits.
	d.keys("<esc>")
	if d.m.search.focus != focusList {
		t.Fatalf("focus %v after esc in the reader", d.m.search.focus)
	}
	d.keys("/")
	if d.m.search.focus != focusInput {
		t.Fatalf("focus %v after /", d.m.search.focus)
	}
	d.keys("<ctrl+c>")
	if d.quitted() || !d.m.search.input.empty() {
		t.Fatalf("ctrl-c with a query typed: quit %v, input %q", d.quitted(), d.m.search.input.String())
	}
	d.keys("<ctrl+c>")
	if !d.quitted() {
		t.Fatal("ctrl-c on an empty query box did not quit")
	}
}

func TestModelSearchNoHitsAndErrors(t *testing.T) {
	k := openKB(t)
	d := newDriver(t, deps{searcher: k, reader: k})
	d.keys("zebra<enter>")
	d.untilShows(`no passages match "zebra"`)
	if d.m.search.focus != focusInput {
		t.Errorf("focus left the query box with nothing to choose")
	}
	// A closed store fails the search: the error is shown, the session goes on.
	k.db.Close()
	d.keys("<ctrl+c>index<enter>")
	d.untilShows(`search "index"`)
	if d.quitted() {
		t.Fatal("a failed search ended the session")
	}
}

func TestModelReaderScrolls(t *testing.T) {
	var long []string
	for i := range 60 {
		long = append(long, "Paragraph "+strings.Repeat("x", i%7)+" number "+string(rune('A'+i%26))+" of the long section.")
	}
	k := openKB(t, pageSpec{"https://docs.example.org/long.html", "Long", []panther.Section{
		{Heading: []string{"Long"}, Level: 1, Anchor: "long", Markdown: "# Long\n\nzyzzyva\n\n" + strings.Join(long, "\n\n")},
	}})
	d := newDriver(t, deps{searcher: k, reader: k})
	d.keys("zyzzyva<enter>")
	d.untilShows("Long")
	d.keys("<enter>")
	d.until("opened the section", func(string) bool { return !d.m.search.docBusy && d.m.search.docText != "" })
	d.untilShows("lines 1–20 of")
	d.keys("<pgdown>")
	if d.m.search.docTop != 19 {
		t.Fatalf("pgdown scrolled to line %d, want 19 (a page less one line)", d.m.search.docTop)
	}
	d.keys("G")
	n := len(d.m.search.docLines)
	d.untilShows("of the long section.", "of "+strconv.Itoa(n))
	if d.m.search.docTop != n-d.m.readerRows() {
		t.Fatalf("end scrolled to %d, want %d", d.m.search.docTop, n-d.m.readerRows())
	}
	d.keys("g")
	if d.m.search.docTop != 0 {
		t.Fatalf("home scrolled to %d", d.m.search.docTop)
	}
	// q leaves from the reader.
	d.keys("q")
	if !d.quitted() {
		t.Fatal("q in the reader did not quit")
	}
}

func TestModelChatStreamsCancelsAndContinues(t *testing.T) {
	k := openKB(t)
	sessions, fake := newSessions(t, k, func(n int, req wireRequest) turn {
		if n == 1 {
			return turn{Text: "The first answer begins", Hold: true}
		}
		return turn{Text: "The second answer."}
	})
	d := newDriver(t, deps{searcher: k, reader: k, asker: sessions, agents: []string{"general", "researcher"}})
	d.keys("<tab>")
	if d.m.tab != tabChat {
		t.Fatal("tab did not switch to the chat")
	}
	// q is typed, not a way out, in the chat.
	d.keys("quick question<enter>")
	// The text streams in while the model's response is still open.
	d.untilShows("› quick question", "The first answer begins", "ctrl-c cancels")
	<-fake.held
	if d.m.chat.run == nil {
		t.Fatal("the run ended while the model still held its response")
	}
	// Enter does not start a second answer while one runs.
	d.keys("more<enter>")
	if !strings.Contains(d.view(), "an answer is running") {
		t.Errorf("enter during an answer said nothing:\n%s", d.view())
	}
	d.keys("<ctrl+u>")
	// Ctrl-C cancels the answer, not the session.
	d.keys("<ctrl+c>")
	d.until("ended the run", func(string) bool { return d.m.chat.run == nil })
	if d.quitted() {
		t.Fatal("ctrl-c during an answer quit the session")
	}
	d.untilShows("[stopped: cancelled]", "session ")
	all, err := k.db.Sessions(context.Background(), panther.SessionFilter{})
	if err != nil || len(all) != 1 || all[0].Status != panther.SessionCancelled {
		t.Fatalf("sessions after a cancel: %+v, %v", all, err)
	}
	// A follow-up continues the same session, with the conversation so far.
	d.keys("next one<enter>")
	d.untilShows("The second answer.")
	d.until("ended the run", func(string) bool { return d.m.chat.run == nil })
	all, err = k.db.Sessions(context.Background(), panther.SessionFilter{})
	if err != nil || len(all) != 1 || all[0].Status != panther.SessionDone {
		t.Fatalf("sessions after a follow-up: %+v, %v", all, err)
	}
	reqs := fake.requests()
	if got := reqs[len(reqs)-1].userPrompts(); len(got) != 2 || got[0] != "quick question" || got[1] != "next one" {
		t.Fatalf("the follow-up's conversation: %q", got)
	}
	// ctrl-n starts a new conversation with a chosen agent.
	d.keys("<ctrl+n><down><enter>")
	if d.m.chat.agent != "researcher" || d.m.chat.session != "" || len(d.m.chat.entries) != 0 {
		t.Fatalf("after picking an agent: agent %q, session %q, %d entries", d.m.chat.agent, d.m.chat.session, len(d.m.chat.entries))
	}
	d.untilShows("new conversation with researcher")
	d.keys("x")
	d.untilShows("agent researcher")
	d.keys("<ctrl+d>")
	if !d.quitted() {
		t.Fatal("ctrl-d did not quit")
	}
}

func TestModelChatShowsToolsAndSubagents(t *testing.T) {
	d := newDriver(t, deps{asker: &agent.Sessions{}, agents: []string{"general"}})
	d.m.tab = tabChat
	r := &run{id: 7, ch: make(chan tea.Msg), cancel: func() {}}
	d.m.chat.run = r
	feed := func(evs ...agent.Event) {
		msgs := make([]tea.Msg, len(evs))
		for i, e := range evs {
			msgs[i] = eventMsg{e}
		}
		// The returned command waits for more of the run: not needed here.
		d.m.Update(runMsgs{id: 7, msgs: msgs})
	}
	feed(
		agent.Event{Kind: agent.EventText, Text: "Let me look.", RunID: "top"},
		agent.Event{Kind: agent.EventToolStart, Tool: "kb_search", ToolCallID: "1", Text: `{"query":"vacuum"}`, RunID: "top"},
		agent.Event{Kind: agent.EventToolStart, Tool: "task", ToolCallID: "2", RunID: "top"},
		agent.Event{Kind: agent.EventSubagentStart, Agent: "researcher", Description: "dig into freezing", RunID: "sub", ParentRunID: "top"},
		agent.Event{Kind: agent.EventToolStart, Tool: "web_fetch", ToolCallID: "3", Text: `{"url":"https://x.example"}`, RunID: "sub", ParentRunID: "top"},
		agent.Event{Kind: agent.EventText, Text: "sub-agent text stays hidden", RunID: "sub", ParentRunID: "top"},
	)
	v := d.view()
	for _, want := range []string{"Let me look.", `⋯ kb_search {"query":"vacuum"}`, "⋯ → sub-agent researcher: dig into freezing", `⋯   web_fetch {"url":"https://x.example"}`} {
		if !strings.Contains(v, want) {
			t.Errorf("while running, the screen lacks %q:\n%s", want, v)
		}
	}
	if strings.Contains(v, "sub-agent text stays hidden") || strings.Contains(v, "⋯ task") {
		t.Errorf("the screen shows a sub-agent's text or the task tool:\n%s", v)
	}
	feed(
		agent.Event{Kind: agent.EventToolEnd, Tool: "web_fetch", ToolCallID: "3", Err: "refused: private address", RunID: "sub", ParentRunID: "top"},
		agent.Event{Kind: agent.EventSubagentEnd, Agent: "researcher", RunID: "sub", ParentRunID: "top"},
		agent.Event{Kind: agent.EventToolEnd, Tool: "task", ToolCallID: "2", RunID: "top"},
		agent.Event{Kind: agent.EventToolEnd, Tool: "kb_search", ToolCallID: "1", Elapsed: 1500 * time.Millisecond, RunID: "top"},
	)
	v = d.view()
	for _, want := range []string{`✗   web_fetch {"url":"https://x.example"}: refused: private address`, "← sub-agent researcher done", `✓ kb_search {"query":"vacuum"} (1.5s)`} {
		if !strings.Contains(v, want) {
			t.Errorf("after the tools, the screen lacks %q:\n%s", want, v)
		}
	}
	if strings.Contains(v, "⋯") {
		t.Errorf("finished tools still shown as running:\n%s", v)
	}
	// The end: the answer with its sources, and the error that ended the run.
	cite := panther.Citation{URL: vacuumURL, Title: "VACUUM", Heading: "VACUUM", Anchor: "vacuum"}
	d.m.Update(runMsgs{id: 7, msgs: []tea.Msg{doneMsg{
		sess: panther.Session{ID: "s123", Agent: "general"},
		res:  agent.Result{Answer: "VACUUM reclaims space [1].\n\nSources:\n[1] " + cite.Link() + "\n\n[stopped: step budget of 12 reached]", Citations: []panther.Citation{cite}, Steps: 12},
		err:  errors.New("save session s123: disk full"),
	}}})
	v = d.view()
	for _, want := range []string{"VACUUM reclaims space [1].", "Sources:", "[1] VACUUM", "    " + cite.Link(), "[stopped: step budget of 12 reached]",
		"error: save session s123: disk full", "session s123 · 12 steps", "agent general · session s123"} {
		if !strings.Contains(v, want) {
			t.Errorf("after the run, the screen lacks %q:\n%s", want, v)
		}
	}
	if d.m.chat.run != nil || d.m.chat.session != "s123" {
		t.Errorf("after the run: run %v, session %q", d.m.chat.run, d.m.chat.session)
	}
	// Messages of an older run are dropped.
	d.m.Update(runMsgs{id: 6, msgs: []tea.Msg{eventMsg{agent.Event{Kind: agent.EventText, Text: "stale"}}}})
	if strings.Contains(d.view(), "stale") {
		t.Error("an old run's text was shown")
	}
}

func TestModelWithoutModel(t *testing.T) {
	d := newDriver(t, deps{})
	d.keys("<tab>hello<enter>")
	if !strings.Contains(d.view(), "no agent can answer here") || d.m.chat.run != nil {
		t.Fatalf("a prompt with no model:\n%s", d.view())
	}
}

func TestModelFitsEveryWindow(t *testing.T) {
	k := openKB(t)
	d := newDriver(t, deps{searcher: k, reader: k})
	d.keys("partial index<enter>")
	d.untilShows("Partial Indexes")
	d.m.chat.add(entryUser, strings.Repeat("a long prompt ", 40))
	d.m.chat.add(entryAnswer, strings.Repeat("an even longer answer, ", 200))
	screens := map[string]func(){
		"hits": func() { d.m.tab, d.m.search.focus = tabSearch, focusList },
		"reader": func() {
			d.m.tab, d.m.search.focus = tabSearch, focusReader
			d.m.search.setDoc(strings.Repeat("words ", 2000), d.m.width)
		},
		"chat": func() { d.m.tab = tabChat },
		"picker": func() {
			d.m.tab, d.m.chat.picking = tabChat, true
			d.m.agents = []string{"general", "researcher", "third"}
		},
	}
	for _, size := range [][2]int{{80, 24}, {120, 40}, {40, 12}, {30, 8}, {20, 5}, {200, 3}} {
		for name, show := range screens {
			d.m.chat.picking = false
			show()
			d.m.Update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
			rows := strings.Split(d.m.View().Content, "\n")
			if len(rows) != size[1] {
				t.Errorf("%s at %dx%d: %d rows", name, size[0], size[1], len(rows))
			}
			for i, r := range rows {
				if w := ansi.StringWidth(r); w > size[0] {
					t.Errorf("%s at %dx%d: row %d is %d cells: %q", name, size[0], size[1], i, w, ansi.Strip(r))
				}
			}
			if c := d.m.View().Cursor; c != nil && (c.X >= size[0] || c.Y >= size[1]) {
				t.Errorf("%s at %dx%d: cursor at %d,%d", name, size[0], size[1], c.X, c.Y)
			}
		}
	}
}

func TestSplitSources(t *testing.T) {
	for _, tc := range []struct {
		name, answer, body, trailer string
		refs                        []sourceRef
	}{
		{"none", "Just text.", "Just text.", "", nil},
		{"list", "Text [1][2].\n\nSources:\n[1] https://a#x\n[2] https://b", "Text [1][2].", "", []sourceRef{{"1", "https://a#x"}, {"2", "https://b"}}},
		{"list and note", "Text [3].\n\nSources:\n[3] https://a\n\n[stopped: cancelled]", "Text [3].", "[stopped: cancelled]", []sourceRef{{"3", "https://a"}}},
		{"not a list", "Text.\n\nSources:\nsee the manual", "Text.\n\nSources:\nsee the manual", "", nil},
		{"no number", "Text.\n\nSources:\n[] https://a", "Text.\n\nSources:\n[] https://a", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, refs, trailer := splitSources(tc.answer)
			if body != tc.body || trailer != tc.trailer || len(refs) != len(tc.refs) {
				t.Fatalf("got %q, %v, %q", body, refs, trailer)
			}
			for i := range refs {
				if refs[i] != tc.refs[i] {
					t.Fatalf("ref %d: %v, want %v", i, refs[i], tc.refs[i])
				}
			}
		})
	}
}

func TestLineInput(t *testing.T) {
	for _, tc := range []struct {
		name, keys, want string
		pos              int
	}{
		{"typing", "hello", "hello", 5},
		{"backspace", "hello<backspace>", "hell", 4},
		{"delete word", "partial index<ctrl+w>", "partial ", 8},
		{"home and insert", "world<ctrl+a>hello ", "hello world", 6},
		{"bounded", strings.Repeat("x", 20), strings.Repeat("x", 10), 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, deps{})
			d.m.search.input.max = 10
			if tc.name != "bounded" {
				d.m.search.input.max = 100
			}
			d.keys(tc.keys)
			in := d.m.search.input
			if in.String() != tc.want || in.pos != tc.pos {
				t.Fatalf("input %q at %d, want %q at %d", in.String(), in.pos, tc.want, tc.pos)
			}
		})
	}
	// A paste is one line, control characters and all.
	var in lineInput
	in.insert("two\nlines\x1b[31m")
	if in.String() != "two lines [31m" {
		t.Errorf("pasted %q", in.String())
	}
	// A long line scrolls to keep the cursor in view.
	in = lineInput{runes: []rune(strings.Repeat("abcdefghij", 5))}
	in.pos = len(in.runes)
	text, col := in.render(20)
	if ansi.StringWidth(text) > 20 || col != 19 || !strings.HasSuffix(text, "j") {
		t.Errorf("render of a long line: %q, cursor %d", text, col)
	}
}

func TestCleanDropsControlSequences(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":                 "plain text",
		"tab\tand\nnewline":          "tab\tand\nnewline",
		"\x1b]52;c;ZXZpbA==\x07evil": "]52;c;ZXZpbA==evil",
		"red \x1b[31malert\x1b[0m":   "red [31malert[0m",
		"c1 \u009b2J":                "c1 2J",
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTranscriptIsBounded(t *testing.T) {
	var c chatState
	for range 3 * maxTranscriptBytes / 1000 {
		c.add(entryAnswer, strings.Repeat("x", 1000))
	}
	if c.size > maxTranscriptBytes || len(c.entries) > maxTranscriptBytes/1000 {
		t.Fatalf("transcript of %d bytes in %d entries", c.size, len(c.entries))
	}
}
