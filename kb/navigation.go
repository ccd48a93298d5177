package kb

import (
	"strings"
	"unicode"
)

// A chunk is navigation when at least navMinLinks links carry at least navLinkShare of its words'
// letters: a table of contents is nearly all link text, a book index about half (each term is
// followed by the links to where it is discussed), prose with cross-references a few percent.
const (
	navMinLinks  = 5
	navLinkShare = 0.4
)

// isNavigation reports whether markdown text is a list of links rather than content. Headings and
// fenced code do not count either way.
func isNavigation(text string) bool {
	var links, letters, linkLetters int
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimLeft(line, " \t>")
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			inFence = !inFence
			continue
		}
		if inFence || strings.HasPrefix(trimmed, "#") {
			continue
		}
		l, all, inLinks := countLinkLetters(line)
		links += l
		letters += all
		linkLetters += inLinks
	}
	return links >= navMinLinks && letters > 0 && float64(linkLetters) >= navLinkShare*float64(letters)
}

// countLinkLetters counts a line's markdown links, its visible letters and digits, and how many of
// those are link text. Link targets are not visible text and are skipped.
func countLinkLetters(line string) (links, letters, linkLetters int) {
	depth := 0 // nesting of '[' brackets, so that link text is told from plain text
	for i := 0; i < len(line); i++ {
		switch ch := line[i]; {
		case ch == '[':
			depth++
		case ch == ']' && depth > 0:
			depth--
			if i+1 < len(line) && line[i+1] == '(' {
				if end := strings.IndexByte(line[i+1:], ')'); end >= 0 {
					links++
					i += end + 1
				}
			}
		default:
			r := rune(ch)
			if ch >= 0x80 {
				// Multi-byte runes: count each once, at its first byte.
				if ch&0xC0 == 0x80 {
					continue
				}
				r = 'x'
			}
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				letters++
				if depth > 0 {
					linkLetters++
				}
			}
		}
	}
	return links, letters, linkLetters
}
