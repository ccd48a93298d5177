package sshui

import (
	"context"
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"

	"panther"
	"panther/kb"
)

// maxSectionBytes bounds the text the reader holds for one section or page.
const maxSectionBytes = 1 << 20

type searchFocus int

const (
	focusInput searchFocus = iota
	focusList
	focusReader
)

// searchState is the search view: the query box, the ranked hits and the section reader.
type searchState struct {
	input lineInput
	focus searchFocus

	// seq numbers searches so that the answer to a superseded one is dropped.
	seq    int
	busy   bool
	cancel context.CancelFunc
	err    string
	query  string // the query hits answer
	hits   []panther.Hit
	sel    int
	top    int // first hit shown

	docSeq    int
	docBusy   bool
	docCancel context.CancelFunc
	docErr    string
	doc       panther.Hit
	docText   string
	docLines  []string // docText wrapped to docWidth
	docWidth  int
	docTop    int
}

type hitsMsg struct {
	seq   int
	query string
	hits  []panther.Hit
	err   error
}

type sectionMsg struct {
	seq  int
	text string
	err  error
}

// Rows of the list and of the reader's text: the body less its two first lines.
func (m *model) listRows() int   { return max(m.height-4, 1) }
func (m *model) readerRows() int { return max(m.height-4, 1) }

// hitRows is how many lines one hit takes in the list.
const hitRows = 3

func (m *model) searchKey(k tea.KeyPressMsg) tea.Cmd {
	s := &m.search
	key := k.String()
	switch s.focus {
	case focusInput:
		switch key {
		case "enter":
			if q := strings.TrimSpace(s.input.String()); q != "" {
				return m.startSearch(q)
			}
		case "down", "esc":
			if len(s.hits) > 0 {
				s.focus = focusList
			}
		default:
			s.input.key(k)
		}
	case focusList:
		per := max(m.listRows()/hitRows, 1)
		switch key {
		case "up", "k":
			s.sel--
		case "down", "j":
			s.sel++
		case "pgup":
			s.sel -= per
		case "pgdown", "space":
			s.sel += per
		case "home", "g":
			s.sel = 0
		case "end", "G":
			s.sel = len(s.hits) - 1
		case "enter", "right", "l":
			if s.sel < len(s.hits) {
				return m.openSection(s.hits[s.sel])
			}
		case "/", "esc":
			s.focus = focusInput
		}
		s.clamp(m.listRows(), m.readerRows())
	case focusReader:
		rows := m.readerRows()
		switch key {
		case "up", "k":
			s.docTop--
		case "down", "j", "enter":
			s.docTop++
		case "pgup", "b":
			s.docTop -= rows - 1
		case "pgdown", "space", "f":
			s.docTop += rows - 1
		case "home", "g":
			s.docTop = 0
		case "end", "G":
			s.docTop = len(s.docLines)
		case "esc", "backspace", "left", "h":
			if s.docCancel != nil {
				s.docCancel()
			}
			s.docSeq++ // whatever is still loading is no longer wanted
			s.docBusy = false
			s.focus = focusList
		}
		s.clamp(m.listRows(), rows)
	}
	return nil
}

func (m *model) startSearch(text string) tea.Cmd {
	s := &m.search
	q := panther.Query{Text: text, K: panther.DefaultK}
	if err := q.Validate(); err != nil {
		s.err = err.Error()
		return nil
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.seq++
	s.busy, s.err = true, ""
	ctx, cancel := m.opContext(searchTimeout)
	s.cancel = cancel
	seq, searcher := s.seq, m.searcher
	return func() tea.Msg {
		defer cancel()
		hits, err := searcher.Search(ctx, q)
		if err != nil {
			err = fmt.Errorf("search %q: %w", q.Text, err)
		}
		return hitsMsg{seq: seq, query: q.Text, hits: hits, err: err}
	}
}

func (s *searchState) gotHits(msg hitsMsg, listRows int) {
	if msg.seq != s.seq {
		return
	}
	s.busy = false
	if msg.err != nil {
		s.err = clean(msg.err.Error())
		return
	}
	hits := make([]panther.Hit, len(msg.hits))
	for i, h := range msg.hits {
		h.Title, h.Heading, h.Snippet, h.Text = clean(h.Title), clean(h.Heading), clean(h.Snippet), clean(h.Text)
		h.URL, h.Anchor = clean(h.URL), clean(h.Anchor)
		hits[i] = h
	}
	s.query, s.hits, s.sel, s.top = msg.query, hits, 0, 0
	if len(s.hits) > 0 {
		s.focus = focusList
	}
}

func (m *model) openSection(h panther.Hit) tea.Cmd {
	s := &m.search
	if s.docCancel != nil {
		s.docCancel()
	}
	s.docSeq++
	s.focus, s.doc, s.docTop, s.docErr = focusReader, h, 0, ""
	if m.reader == nil {
		s.setDoc(h.Text, m.width)
		return nil
	}
	s.docBusy = true
	s.setDoc("", m.width)
	ctx, cancel := m.opContext(readTimeout)
	s.docCancel = cancel
	seq, reader := s.docSeq, m.reader
	return func() tea.Msg {
		defer cancel()
		text, err := readSection(ctx, reader, h)
		return sectionMsg{seq: seq, text: text, err: err}
	}
}

// readSection returns the markdown of the section a hit is in, or of its whole page when the
// section cannot be told apart.
func readSection(ctx context.Context, r Reader, h panther.Hit) (string, error) {
	if h.Anchor != "" {
		docID := h.DocID
		if docID == 0 {
			doc, err := r.Document(ctx, h.URL)
			if err != nil {
				return "", fmt.Errorf("read %s: %w", h.URL, err)
			}
			docID = doc.ID
		}
		chunks, err := r.Chunks(ctx, docID)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", h.Link(), err)
		}
		if sec := kb.SectionMarkdown(chunks, h.Anchor); sec != "" {
			return sec, nil
		}
	}
	doc, err := r.Document(ctx, h.URL)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", h.URL, err)
	}
	return doc.Markdown, nil
}

func (s *searchState) gotSection(msg sectionMsg, width, rows int) {
	if msg.seq != s.docSeq {
		return
	}
	s.docBusy = false
	if msg.err != nil {
		s.docErr = clean(msg.err.Error())
		// The passage the search returned is better than nothing.
		s.setDoc(s.doc.Text, width)
		return
	}
	s.setDoc(msg.text, width)
	s.clamp(0, rows)
}

func (s *searchState) setDoc(text string, width int) {
	if len(text) > maxSectionBytes {
		text = strings.ToValidUTF8(text[:maxSectionBytes], "") + "\n\n[cut: the section is longer than the reader shows]"
	}
	s.docText = strings.TrimSpace(clean(text))
	s.docWidth = 0
	s.reflow(width)
}

// reflow wraps the reader's text to the window's width.
func (s *searchState) reflow(width int) {
	if s.docWidth == width && s.docLines != nil {
		return
	}
	s.docWidth = width
	s.docLines = wrap(s.docText, max(width-1, 1))
}

// clamp keeps the selection and the scroll positions in range, the selected hit on screen.
func (s *searchState) clamp(listRows, readerRows int) {
	s.sel = min(max(s.sel, 0), max(len(s.hits)-1, 0))
	if listRows > 0 {
		per := max(listRows/hitRows, 1)
		if s.sel < s.top {
			s.top = s.sel
		}
		if s.sel >= s.top+per {
			s.top = s.sel - per + 1
		}
		s.top = min(max(s.top, 0), max(len(s.hits)-per, 0))
	}
	if readerRows > 0 {
		s.docTop = min(max(s.docTop, 0), max(len(s.docLines)-readerRows, 0))
	}
}

// where names a hit's page and section as the CLI does: "Title — Heading".
func where(c panther.Citation) string {
	s := c.Title
	if s == "" {
		s = c.URL
	}
	if c.Heading != "" && c.Heading != c.Title {
		s += " — " + c.Heading
	}
	return s
}

func (m *model) searchView(w, h int) ([]string, *tea.Position) {
	s := &m.search
	if s.focus == focusReader {
		return m.readerView(w, h), nil
	}
	const prompt = "Search › "
	text, col := s.input.render(w - len(prompt))
	rows := []string{styleBold.Render(prompt) + text}
	var cursor *tea.Position
	if s.focus == focusInput {
		cursor = &tea.Position{X: len(prompt) + col, Y: 0}
	}
	switch {
	case s.busy:
		rows = append(rows, styleDim.Render("searching…"))
	case s.err != "":
		rows = append(rows, styleError.Render(oneLine(s.err)))
	case s.query != "" && len(s.hits) == 0:
		rows = append(rows, fmt.Sprintf("no passages match %q", s.query))
	case s.query != "":
		noun := "passages"
		if len(s.hits) == 1 {
			noun = "passage"
		}
		rows = append(rows, styleDim.Render(fmt.Sprintf("%d %s for %q", len(s.hits), noun, s.query)))
	default:
		rows = append(rows, styleDim.Render("type words to search the knowledge base and press enter"))
	}
	per := max((h-2)/hitRows, 1)
	for i := s.top; i < len(s.hits) && i < s.top+per; i++ {
		hit := s.hits[i]
		mark := "  "
		title := fmt.Sprintf("%d. %s", i+1, where(hit.Citation))
		if i == s.sel && s.focus == focusList {
			mark = styleSel.Render("▌") + " "
			title = styleSel.Render(fit(title, w-2))
		} else {
			title = styleBold.Render(fit(title, w-2))
		}
		rows = append(rows,
			mark+title,
			mark+fit(oneLine(hit.Snippet), w-2),
			mark+styleDim.Render(fit(hit.Link(), w-2)))
	}
	return rows, cursor
}

func (m *model) readerView(w, h int) []string {
	s := &m.search
	rows := []string{styleBold.Render(where(s.doc.Citation)), styleDim.Render(s.doc.Link())}
	switch {
	case s.docBusy:
		rows = append(rows, styleDim.Render("reading…"))
	case s.docErr != "":
		rows = append(rows, styleError.Render(oneLine(s.docErr)))
	}
	room := h - len(rows)
	for i := s.docTop; i < len(s.docLines) && room > 0; i++ {
		rows = append(rows, s.docLines[i])
		room--
	}
	return rows
}

func (m *model) searchHelp() string {
	s := &m.search
	switch s.focus {
	case focusList:
		return "↑↓ choose · enter read · / new search · tab chat · q quit"
	case focusReader:
		pos := ""
		if n := len(s.docLines); n > 0 {
			pos = fmt.Sprintf(" · lines %d–%d of %d", s.docTop+1, min(s.docTop+m.readerRows(), n), n)
		}
		return "↑↓ pgup pgdn scroll · esc back · q quit" + pos
	}
	return "enter search · tab chat · ctrl-d quit"
}
