package extract

import (
	"strings"
)

// prefix is one level of block nesting: a blockquote's "> " or a list item's marker ("- ", "1. ")
// followed by its indentation on later lines.
type prefix struct {
	first, rest string
	used        bool
}

// mark is an open inline wrapper (emphasis, link) whose opening delimiter is written only when content
// follows, so that empty or white-space-only elements leave nothing behind.
type mark struct {
	open, close string
	flushed     bool
}

// writer builds markdown: it collapses white space, escapes text, owes block breaks until content
// follows, and writes line prefixes for nesting.
type writer struct {
	buf      []byte
	prefixes []prefix
	marks    []mark
	pending  int  // newlines owed before the next content
	space    bool // a collapsed space is owed before the next inline content
	started  bool
	// lineStart: nothing but prefixes on the current line yet, so text there needs line-start escaping.
	lineStart bool
	// inline > 0 writes everything on one line (headings, table cells); block breaks become spaces,
	// or "<br>" in table cells.
	inline int
	cell   bool
	brOwed bool
	link   int // inside a link's text, where brackets must be escaped
	limit  int
	full   bool
}

func (w *writer) reset(limit int) {
	w.buf = w.buf[:0]
	w.prefixes = w.prefixes[:0]
	w.marks = w.marks[:0]
	w.pending, w.space, w.started, w.lineStart = 0, false, false, false
	w.inline, w.cell, w.brOwed, w.link = 0, false, false, 0
	w.limit, w.full = limit, false
}

// block owes n line breaks (1: new line, 2: blank line) before the next content.
func (w *writer) block(n int) {
	if w.inline > 0 {
		if w.cell && w.started {
			w.brOwed = true
		} else {
			w.space = true
		}
		return
	}
	// Markers still open would otherwise span the break; they reopen with the next content.
	for i := len(w.marks) - 1; i >= 0; i-- {
		if w.marks[i].flushed {
			w.put(w.marks[i].close)
			w.marks[i].flushed = false
		}
	}
	if len(w.prefixes) > 0 && !w.prefixes[len(w.prefixes)-1].used {
		return // nothing written in this list item or quote yet: its marker is the break
	}
	if n > w.pending {
		w.pending = n
	}
	w.space = false
}

func (w *writer) put(s string) {
	if w.full {
		return
	}
	w.buf = append(w.buf, s...)
	if len(w.buf) > w.limit {
		w.full = true
	}
}

func (w *writer) putByte(c byte) {
	if !w.full {
		w.buf = append(w.buf, c)
	}
}

// startContent writes whatever is owed before inline content: line breaks with their prefixes, a
// collapsed space, the opening delimiters of open marks.
func (w *writer) startContent() {
	switch {
	case !w.started:
		w.started = true
		w.writePrefix()
	case w.pending > 0 && w.inline == 0:
		w.trimTrailingSpace()
		for i := 0; i < w.pending; i++ {
			w.putByte('\n')
			if i < w.pending-1 {
				w.put(w.blankPrefix())
			}
		}
		w.writePrefix()
	case w.brOwed:
		w.put("<br>")
	case w.space && !w.lineStart:
		w.putByte(' ')
	}
	w.pending, w.space, w.brOwed = 0, false, false
	for i := range w.marks {
		if !w.marks[i].flushed {
			w.put(w.marks[i].open)
			w.marks[i].flushed = true
			w.lineStart = false
		}
	}
}

func (w *writer) writePrefix() {
	for i := range w.prefixes {
		p := &w.prefixes[i]
		if !p.used {
			w.put(p.first)
			p.used = true
		} else {
			w.put(p.rest)
		}
	}
	w.lineStart = true
}

// blankPrefix is what a blank line inside the current nesting carries: "> " reduced to ">".
func (w *writer) blankPrefix() string {
	n := 0
	for _, p := range w.prefixes {
		if p.used {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	var sb strings.Builder
	for _, p := range w.prefixes[:n] {
		sb.WriteString(p.rest)
	}
	return strings.TrimRight(sb.String(), " ")
}

func (w *writer) trimTrailingSpace() {
	for len(w.buf) > 0 && (w.buf[len(w.buf)-1] == ' ' || w.buf[len(w.buf)-1] == '\t') {
		w.buf = w.buf[:len(w.buf)-1]
	}
}

// newline ends a line inside a multi-line construct (code block, table) and writes the next
// line's prefix.
func (w *writer) newline(blank bool) {
	w.putByte('\n')
	if blank {
		w.put(w.blankPrefix())
		return
	}
	for _, p := range w.prefixes {
		w.put(p.rest)
	}
}

func (w *writer) pushMark(open, close string) {
	w.marks = append(w.marks, mark{open: open, close: close})
}

func (w *writer) popMark() {
	m := w.marks[len(w.marks)-1]
	w.marks = w.marks[:len(w.marks)-1]
	if m.flushed {
		w.put(m.close)
	}
}

// raw writes s as inline content without escaping.
func (w *writer) raw(s string) {
	if s == "" {
		return
	}
	w.startContent()
	w.put(s)
	w.lineStart = false
}

// text writes HTML text: white space collapsed, markdown syntax escaped.
func (w *writer) text(s string) {
	for i := 0; i < len(s); {
		c := s[i]
		// Control characters count as white space: they have no place in markdown text.
		if c <= ' ' || c == 0x7f || c == 0xC2 && i+1 < len(s) && s[i+1] == 0xA0 {
			if c == 0xC2 {
				i++
			}
			i++
			w.space = true
			continue
		}
		j := i
		for j < len(s) && s[j] > ' ' && s[j] != 0x7f && !(s[j] == 0xC2 && j+1 < len(s) && s[j+1] == 0xA0) {
			j++
		}
		w.word(s[i:j])
		i = j
	}
}

// special marks bytes that may need escaping inside a word.
var special = func() (t [256]bool) {
	for _, c := range "\\`*_[]<&|" {
		t[c] = true
	}
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	return t
}()

func (w *writer) word(s string) {
	w.startContent()
	if w.full {
		return
	}
	if w.lineStart {
		if needsLineStartEscape(s) {
			w.putByte('\\')
		}
		w.lineStart = false
	}
	clean := true
	for i := 0; i < len(s); i++ {
		if special[s[i]] {
			clean = false
			break
		}
	}
	if clean {
		w.put(s)
		return
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !special[c] {
			w.putByte(c)
			continue
		}
		switch c {
		case '\\':
			if i+1 < len(s) && isASCIIPunct(s[i+1]) {
				w.putByte('\\')
			}
		case '`':
			w.putByte('\\')
		case '*':
			if !allByte(s, '*') {
				w.putByte('\\')
			}
		case '_':
			if !(i > 0 && i+1 < len(s) && isAlnum(s[i-1]) && isAlnum(s[i+1])) && !allByte(s, '_') {
				w.putByte('\\')
			}
		case '[':
			if w.link > 0 {
				w.putByte('\\')
			}
		case ']':
			if w.link > 0 || i+1 < len(s) && (s[i+1] == '(' || s[i+1] == ':' || s[i+1] == '[') {
				w.putByte('\\')
			}
		case '<':
			if i+1 < len(s) && (isAlpha(s[i+1]) || s[i+1] == '/' || s[i+1] == '!' || s[i+1] == '?') {
				w.putByte('\\')
			}
		case '&':
			if i+1 < len(s) && (isAlpha(s[i+1]) || s[i+1] == '#') && strings.IndexByte(s[i:min(len(s), i+32)], ';') > 0 {
				w.putByte('\\')
			}
		case '|':
			if w.cell {
				w.putByte('\\')
			}
		default: // control characters
			if c != '\t' {
				c = ' '
			}
		}
		w.putByte(c)
	}
}

// needsLineStartEscape says whether a word at the start of a line would turn the line into a heading,
// list item, quote, thematic break or fence.
func needsLineStartEscape(s string) bool {
	switch s[0] {
	case '>':
		return true
	case '#':
		return allByte(s, '#') && len(s) <= 6
	case '-', '+', '*', '=', '_':
		return len(s) == 1 || allByte(s, s[0]) || s[0] == '-' && allByte(s, '-')
	case '`', '~':
		return len(s) >= 3 && s[1] == s[0] && s[2] == s[0]
	case '|':
		return true
	}
	if s[0] >= '0' && s[0] <= '9' {
		i := 0
		for i < len(s) && i < 10 && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i < 10 && i == len(s)-1 && (s[i] == '.' || s[i] == ')')
	}
	return false
}

func allByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != c {
			return false
		}
	}
	return true
}

func isASCIIPunct(c byte) bool {
	return c >= '!' && c <= '/' || c >= ':' && c <= '@' || c >= '[' && c <= '`' || c >= '{' && c <= '~'
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isAlnum(c byte) bool { return isAlpha(c) || c >= '0' && c <= '9' || c >= 0x80 }

// codeSpan writes s as inline code, with a delimiter longer than any backtick run inside.
func (w *writer) codeSpan(s string) {
	s = collapseSpace(s)
	if s == "" {
		return
	}
	if w.cell && strings.IndexByte(s, '|') >= 0 {
		s = strings.ReplaceAll(s, "|", `\|`)
	}
	fence := strings.Repeat("`", longestRun(s, '`')+1)
	w.startContent()
	w.put(fence)
	if s[0] == '`' || s[len(s)-1] == '`' {
		w.putByte(' ')
		w.put(s)
		w.putByte(' ')
	} else {
		w.put(s)
	}
	w.put(fence)
	w.lineStart = false
}

func longestRun(s string, c byte) int {
	best, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			run++
			if run > best {
				best = run
			}
		} else {
			run = 0
		}
	}
	return best
}

// escapeHeading escapes a plain-text title for a "# " line.
func escapeHeading(t string) string {
	var w writer
	w.reset(len(t)*2 + 16)
	w.inline = 1
	w.started, w.lineStart = true, false
	w.text(t)
	return string(w.buf)
}

// suspendMarks sets the open inline marks aside while a block construct (heading, code block, table
// line) is written, so that an enclosing link or emphasis does not wrap its markup; resume restores them.
func (w *writer) suspendMarks() []mark {
	m := w.marks
	w.marks = nil
	return m
}

func (w *writer) resume(m []mark) {
	// Marks opened meanwhile have all been closed; the suspended ones reopen with the next content.
	for i := range m {
		m[i].flushed = false
	}
	w.marks = m
}
