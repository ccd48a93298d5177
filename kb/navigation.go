package kb

import (
	"regexp"
	"strings"
	"unicode"
)

// A chunk is navigation when it has at least navMinLinks links and either link text carries at least
// navLinkShare of its letters (a table of contents), or most lines hold a link, lines are
// short and link text still carries navLineLinkShare (a book index: "term, [Section](url)" per line,
// where long index terms keep the link share low). Prose with cross-references has long lines and a
// link share of a few percent; release notes that end each item with a commit link have a link share
// near zero.
const (
	navMinLinks       = 5
	navLinkShare      = 0.4
	navLineLinkShare  = 0.15
	navLinkedLines    = 0.6
	navMaxLineLetters = 100
)

// isNavigation reports whether markdown text is a list of links rather than content. Headings and
// fenced code do not count either way.
func isNavigation(text string) bool {
	var links, letters, linkLetters, lines, linkedLines int
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
		if all == 0 {
			continue
		}
		lines++
		if l > 0 {
			linkedLines++
		}
		links += l
		letters += all
		linkLetters += inLinks
	}
	if links < navMinLinks || letters == 0 {
		return false
	}
	share := float64(linkLetters) / float64(letters)
	if share >= navLinkShare {
		return true
	}
	return share >= navLineLinkShare &&
		float64(linkedLines) >= navLinkedLines*float64(lines) &&
		letters < navMaxLineLetters*lines
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

// emphasis matches the spans markdown emphasises: **strong**, *emphasis* and `code`. Documentation
// emphasises what it defines ("A *partial index* is …") and the names it documents (a parameter's
// `work_mem`, a variable list's **term**), which is what searches for a term look for.
var emphasis = regexp.MustCompile("\\*\\*([^*\\n]+)\\*\\*|\\*([^*\\s][^*\\n]*)\\*|`([^`\\n]+)`")

// keywords joins a passage's emphasised spans, outside fenced code, for the keyword index column.
func keywords(text string) string {
	var sb strings.Builder
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimLeft(line, " \t>")
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			inFence = !inFence
			continue
		}
		if inFence || strings.IndexAny(line, "*`") < 0 {
			continue
		}
		for _, m := range emphasis.FindAllStringSubmatch(line, -1) {
			for _, g := range m[1:] {
				if g != "" {
					sb.WriteString(g)
					sb.WriteByte('\n')
					break
				}
			}
		}
	}
	return sb.String()
}
