package kb

import (
	"strings"
	"unicode"
)

// A chunk is navigation when it has at least navMinLinks links and either link text carries at
// least navLinkShare of its letters (a table of contents), or at least navEntryLines of its lines are
// entries of a list of links: a link alone ("[11.8. Partial Indexes](…)") or a back-of-book index
// entry, a term then only links ("autovacuum_naptime configuration parameter, [Automatic
// Vacuuming](…)"), whose long terms keep its link share low. Prose, and lists of settings that each
// name a related one in the middle of a sentence, are neither.
const (
	navMinLinks   = 5
	navLinkShare  = 0.4
	navEntryLines = 0.6
)

// isNavigation reports whether markdown text is a list of links rather than content. Headings and
// fenced code do not count either way.
func isNavigation(text string) bool {
	var links, letters, linkLetters, lines, entries int
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
		if l > 0 && isLinkEntry(line) {
			entries++
		}
		links += l
		letters += all
		linkLetters += inLinks
	}
	if links < navMinLinks {
		return false
	}
	return float64(linkLetters) >= navLinkShare*float64(letters) || float64(entries) >= navEntryLines*float64(lines)
}

// isLinkEntry reports whether a line is a link alone or "term, link, link…", once list markers and
// emphasis are set aside: what follows its first link holds no words outside links.
func isLinkEntry(line string) bool {
	first := markdownLink.FindStringIndex(line)
	if first == nil {
		return false
	}
	before := strings.Trim(line[:first[0]], " \t-*+>|")
	if before != "" && !strings.HasSuffix(before, ",") {
		return false
	}
	rest := markdownLink.ReplaceAllString(line[first[0]:], "")
	return !strings.ContainsFunc(rest, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) })
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

// keywords joins a passage's emphasised spans (**strong**, *emphasis*, `code`), outside fenced code,
// for the keyword index column. Documentation emphasises what it defines ("A *partial index* is …")
// and the names it documents (a parameter's `work_mem`, a variable list's **term**), which is what
// searches for a term look for. A hand-written scan: a regular expression here cost as much as
// the rest of chunking.
func keywords(text string) string {
	var sb strings.Builder
	inFence := false
	for line := range strings.Lines(text) {
		trimmed := strings.TrimLeft(line, " \t>")
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			inFence = !inFence
			continue
		}
		if inFence || strings.IndexAny(line, "*`") < 0 {
			continue
		}
		emphasised(strings.TrimRight(line, "\n"), func(span string) {
			sb.WriteString(span)
			sb.WriteByte('\n')
		})
	}
	return sb.String()
}

// emphasised calls fn with each emphasised span of one line: `code`, **strong** or *emphasis*
// (a lone * followed by a space is not emphasis: it is a list bullet or a multiplication).
func emphasised(line string, fn func(string)) {
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '`':
			if end := strings.IndexByte(line[i+1:], '`'); end > 0 {
				fn(line[i+1 : i+1+end])
				i += end + 1
			}
		case strings.HasPrefix(line[i:], "**"):
			if end := strings.Index(line[i+2:], "**"); end > 0 {
				fn(line[i+2 : i+2+end])
				i += end + 3
			}
		case line[i] == '*' && i+1 < len(line) && line[i+1] != ' ':
			if end := strings.IndexByte(line[i+1:], '*'); end > 0 {
				fn(line[i+1 : i+1+end])
				i += end + 1
			}
		}
	}
}
