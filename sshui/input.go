package sshui

import (
	"strings"
	"unicode"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// lineInput is a one-line text field: the search box and the chat prompt. Its length is bounded so
// that a paste cannot grow a session's memory without limit.
type lineInput struct {
	runes []rune
	pos   int
	max   int
}

func (l *lineInput) String() string { return string(l.runes) }

func (l *lineInput) empty() bool { return len(l.runes) == 0 }

func (l *lineInput) reset() { l.runes, l.pos = nil, 0 }

// insert puts s at the cursor, line breaks and other control characters turned into spaces (a
// pasted paragraph becomes one line), cut at the input's bound.
func (l *lineInput) insert(s string) {
	var add []rune
	for _, r := range s {
		if unicode.IsControl(r) {
			r = ' '
		}
		add = append(add, r)
	}
	if room := l.max - len(l.runes); l.max > 0 && len(add) > room {
		add = add[:max(room, 0)]
	}
	if len(add) == 0 {
		return
	}
	l.runes = append(l.runes[:l.pos], append(add, l.runes[l.pos:]...)...)
	l.pos += len(add)
}

// key edits the field with an editing key and reports whether the key was one.
func (l *lineInput) key(k tea.KeyPressMsg) bool {
	switch k.String() {
	case "backspace", "ctrl+h":
		if l.pos > 0 {
			l.runes = append(l.runes[:l.pos-1], l.runes[l.pos:]...)
			l.pos--
		}
	case "delete":
		if l.pos < len(l.runes) {
			l.runes = append(l.runes[:l.pos], l.runes[l.pos+1:]...)
		}
	case "left", "ctrl+b":
		l.pos = max(l.pos-1, 0)
	case "right", "ctrl+f":
		l.pos = min(l.pos+1, len(l.runes))
	case "home", "ctrl+a":
		l.pos = 0
	case "end", "ctrl+e":
		l.pos = len(l.runes)
	case "ctrl+u":
		l.runes = append([]rune(nil), l.runes[l.pos:]...)
		l.pos = 0
	case "ctrl+k":
		l.runes = l.runes[:l.pos]
	case "ctrl+w", "alt+backspace":
		i := l.pos
		for i > 0 && unicode.IsSpace(l.runes[i-1]) {
			i--
		}
		for i > 0 && !unicode.IsSpace(l.runes[i-1]) {
			i--
		}
		l.runes = append(l.runes[:i], l.runes[l.pos:]...)
		l.pos = i
	default:
		key := k.Key()
		if key.Text == "" || key.Mod.Contains(tea.ModCtrl) || key.Mod.Contains(tea.ModAlt) {
			return false
		}
		l.insert(key.Text)
	}
	return true
}

// render returns the part of the field that fits in width cells, scrolled so that the cursor is
// visible, and the cursor's column in it.
func (l *lineInput) render(width int) (string, int) {
	if width <= 1 {
		return "", 0
	}
	w := make([]int, len(l.runes))
	for i, r := range l.runes {
		w[i] = ansi.StringWidth(string(r))
	}
	// Start as far left as keeps the cursor, and one cell for it after the last character, in view.
	start, before := l.pos, 0
	for start > 0 && before+w[start-1] <= width-1 {
		start--
		before += w[start]
	}
	end, used := start, 0
	for end < len(l.runes) && used+w[end] <= width {
		used += w[end]
		end++
	}
	return string(l.runes[start:end]), before
}

// wrap breaks text into lines of at most width cells: at spaces where it can, inside a word where
// a word is longer than a line. Tabs become spaces so that widths are known.
func wrap(text string, width int) []string {
	if width < 1 {
		width = 1
	}
	text = strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\t", "    ")
	var out []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, " ")
		if line == "" {
			out = append(out, "")
			continue
		}
		out = append(out, strings.Split(ansi.Wrap(line, width, ""), "\n")...)
	}
	return out
}

// oneLine collapses runs of white space, line breaks included, into single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// fit cuts s (which may carry styles) to width cells, marking a cut with an ellipsis.
func fit(s string, width int) string {
	if width <= 0 {
		return ""
	}
	return ansi.Truncate(s, width, "…")
}

// clean makes text from the knowledge base, a model or an error safe to draw: control characters
// (escape sequences among them, which a crawled page or a model could use to drive the user's
// terminal) are dropped, except line breaks and tabs.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if isControl(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return -1
		}
		return r
	}, s)
}

func isControl(r rune) bool {
	return r != '\n' && r != '\t' && (r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0))
}
