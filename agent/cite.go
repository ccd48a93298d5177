package agent

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"panther"
)

// CiteMark returns the mark a tool puts in ToolResult.Content where its i-th citation belongs; the
// loop replaces it with "[n] title — heading (url#anchor)", n being the citation's number in the run.
func CiteMark(i int) string { return fmt.Sprintf("⟦cite:%d⟧", i) }

var citeMarkRE = regexp.MustCompile(`⟦cite:(\d+)⟧`)

// citeBook numbers the distinct citations of a run, by Link, in the order tools return them.
type citeBook struct {
	byLink map[string]int
	list   []panther.Citation
}

func newCiteBook() *citeBook { return &citeBook{byLink: map[string]int{}} }

// number returns c's number, giving it the next one if it is new.
func (b *citeBook) number(c panther.Citation) int {
	if n, ok := b.byLink[c.Link()]; ok {
		return n
	}
	b.list = append(b.list, c)
	n := len(b.list)
	b.byLink[c.Link()] = n
	return n
}

// get returns citation n, if there is one.
func (b *citeBook) get(n int) (panther.Citation, bool) {
	if n < 1 || n > len(b.list) {
		return panther.Citation{}, false
	}
	return b.list[n-1], true
}

// describeCitation is how a tool result shows a source to the model.
func describeCitation(n int, c panther.Citation) string {
	title := strings.TrimSpace(c.Title)
	if title == "" {
		title = c.URL
	}
	s := fmt.Sprintf("[%d] %s", n, title)
	if h := strings.TrimSpace(c.Heading); h != "" && h != title {
		s += " — " + h
	}
	return s + " (" + c.Link() + ")"
}

// render numbers a tool result's citations and returns the content the model sees.
func (b *citeBook) render(r ToolResult) string {
	nums := make([]int, len(r.Citations))
	for i, c := range r.Citations {
		nums[i] = b.number(c)
	}
	marked := make([]bool, len(r.Citations))
	content := citeMarkRE.ReplaceAllStringFunc(r.Content, func(m string) string {
		i, err := strconv.Atoi(citeMarkRE.FindStringSubmatch(m)[1])
		if err != nil || i < 0 || i >= len(r.Citations) {
			return m
		}
		marked[i] = true
		return describeCitation(nums[i], r.Citations[i])
	})
	var rest []string
	for i, c := range r.Citations {
		if !marked[i] {
			rest = append(rest, describeCitation(nums[i], c))
		}
	}
	if len(rest) > 0 {
		if strings.TrimSpace(content) != "" {
			content = strings.TrimRight(content, "\n") + "\n\nSources of this result:\n"
		}
		content += strings.Join(rest, "\n")
	}
	return trimText(content, MaxToolResultChars, "[tool result trimmed]")
}

// citeRefRE finds references like [1] or [1, 2] in an answer.
var citeRefRE = regexp.MustCompile(`\[(\d{1,6}(?:\s*,\s*\d{1,6})*)\]`)

// finishAnswer checks an answer's citations: references to numbers no tool gave are removed (the text
// around them stays) and a "Sources:" list of the cited ones is appended. It returns the answer and the
// cited sources in the order of that list.
func finishAnswer(text string, book *citeBook) (string, []panther.Citation) {
	text = strings.TrimSpace(text)
	if text == "" {
		return "", nil
	}
	cited := map[int]bool{}
	var out strings.Builder
	fence := ""
	for _, ln := range strings.SplitAfter(text, "\n") {
		t := strings.TrimSpace(ln)
		switch {
		case fence != "":
			if strings.HasPrefix(t, fence) {
				fence = ""
			}
			out.WriteString(ln)
			continue
		case strings.HasPrefix(t, "```"):
			fence = "```"
			out.WriteString(ln)
			continue
		case strings.HasPrefix(t, "~~~"):
			fence = "~~~"
			out.WriteString(ln)
			continue
		}
		// Inline code spans (odd parts between backticks) are left alone.
		parts := strings.Split(ln, "`")
		for i := range parts {
			if i%2 == 0 {
				parts[i] = checkRefs(parts[i], book, cited)
			}
		}
		out.WriteString(strings.Join(parts, "`"))
	}
	answer := strings.TrimSpace(out.String())
	if len(cited) == 0 {
		return answer, nil
	}
	nums := make([]int, 0, len(cited))
	for n := range cited {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	cites := make([]panther.Citation, 0, len(nums))
	var src strings.Builder
	src.WriteString("\n\nSources:")
	for _, n := range nums {
		c, _ := book.get(n)
		cites = append(cites, c)
		fmt.Fprintf(&src, "\n[%d] %s", n, c.Link())
	}
	return answer + src.String(), cites
}

// checkRefs rewrites the references in s, recording the valid ones in cited.
func checkRefs(s string, book *citeBook, cited map[int]bool) string {
	locs := citeRefRE.FindAllStringSubmatchIndex(s, -1)
	if locs == nil {
		return s
	}
	var out strings.Builder
	last := 0
	for _, l := range locs {
		start, end := l[0], l[1]
		if start > 0 {
			// a[1] is an index, not a citation.
			if r, _ := utf8.DecodeLastRuneInString(s[:start]); r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) {
				continue
			}
		}
		if end < len(s) && s[end] == '(' {
			continue // a markdown link whose text is a number
		}
		var valid []string
		for _, f := range strings.Split(s[l[2]:l[3]], ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if _, ok := book.get(n); err == nil && ok {
				valid = append(valid, strconv.Itoa(n))
				cited[n] = true
			}
		}
		out.WriteString(s[last:start])
		last = end
		if len(valid) > 0 {
			out.WriteString("[" + strings.Join(valid, ", ") + "]")
			continue
		}
		// Drop the reference with the space before it: "text [7]." reads "text.".
		kept := out.String()
		if trimmed := strings.TrimRight(kept, " "); len(trimmed) < len(kept) && trimmed != "" && !strings.HasSuffix(trimmed, "\n") {
			out.Reset()
			out.WriteString(trimmed)
			if end < len(s) && s[end] != ' ' && !unicode.IsPunct(rune(s[end])) {
				out.WriteByte(' ')
			}
		} else if end < len(s) && s[end] == ' ' && (kept == "" || strings.HasSuffix(kept, "\n")) {
			last++ // a line that began with the reference does not begin with a space
		}
	}
	out.WriteString(s[last:])
	return out.String()
}

// trimText cuts s to at most max bytes at a line or word boundary, valid UTF-8, and appends note on a
// line of its own when it cut.
func trimText(s string, max int, note string) string {
	if len(s) <= max {
		return s
	}
	cut := s[:max]
	for !utf8.ValidString(cut) && len(cut) > 0 {
		cut = cut[:len(cut)-1]
	}
	if i := strings.LastIndexByte(cut, '\n'); i > max*3/4 {
		cut = cut[:i]
	} else if i := strings.LastIndexByte(cut, ' '); i > max*3/4 {
		cut = cut[:i]
	}
	cut = strings.TrimRight(cut, " \n") + "…"
	if note == "" {
		return cut
	}
	return cut + "\n\n" + note
}
