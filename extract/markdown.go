package extract

import (
	"net/url"
	"path"
	"strconv"
	"strings"
	"unicode"

	"panther"
)

// Markdown takes a markdown page as it is and splits it into sections at its ATX and setext headings,
// leaving fenced code and HTML comments alone. Anchors are GitHub-style slugs, or the heading's own
// {#id}. The title is the front matter's title, else the first h1, else the file name.
func Markdown(pageURL *url.URL, body []byte) (*Result, error) {
	src := normalizeText(body)
	lines := strings.SplitAfter(src, "\n")

	res := &Result{Markdown: src}
	type mdHeading struct {
		line, level int
		text, id    string
	}
	var heads []mdHeading
	fm := frontMatterEnd(lines)
	fmTitle := ""
	for _, l := range lines[:fm] {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "title:"); ok && fmTitle == "" {
			fmTitle = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	var fence string // the open fence, "" outside code
	var links []string
	inComment := false
	for i := fm; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], "\r\n")
		if fence != "" {
			if isFenceClose(l, fence) {
				fence = ""
			}
			continue
		}
		if inComment {
			if strings.Contains(l, "-->") {
				inComment = false
			}
			continue
		}
		if f := fenceOpen(l); f != "" {
			fence = f
			continue
		}
		links = markdownLinks(l, links)
		t := strings.TrimLeft(l, " ")
		if len(l)-len(t) > 3 {
			continue // indented code
		}
		if strings.HasPrefix(t, "<!--") && !strings.Contains(t[4:], "-->") {
			inComment = true
			continue
		}
		if lvl, text := atxHeading(t); lvl > 0 {
			text, id := headingID(text)
			heads = append(heads, mdHeading{i, lvl, text, id})
			continue
		}
		if lvl := setextLevel(t); lvl > 0 && i > fm {
			prev := strings.TrimSpace(lines[i-1])
			if prev != "" && (i-1 == fm || strings.TrimSpace(lines[i-2]) == "") && isParagraphLine(lines[i-1]) &&
				(len(heads) == 0 || heads[len(heads)-1].line != i-1) {
				text, id := headingID(prev)
				heads = append(heads, mdHeading{i - 1, lvl, text, id})
			}
		}
	}

	p := newPage(pageURL)
	p.rawLinks = links
	res.Links = p.links()
	for _, h := range heads {
		if h.level == 1 {
			res.Title = plainMarkdown(h.text)
			break
		}
	}
	if fmTitle != "" {
		res.Title = fmTitle
	}
	if res.Title == "" {
		res.Title = fileTitle(pageURL)
	}

	// Offsets of each line, to cut sections out of src without copying lines around.
	offs := make([]int, len(lines)+1)
	for i, l := range lines {
		offs[i+1] = offs[i] + len(l)
	}
	if len(heads) == 0 || heads[0].line > 0 {
		end := len(src)
		if len(heads) > 0 {
			end = offs[heads[0].line]
		}
		if pre := strings.TrimSpace(src[:end]); pre != "" {
			res.Sections = append(res.Sections, panther.Section{Heading: []string{}, Markdown: pre})
		}
	}
	var stack []heading
	slugs := map[string]int{}
	for k, h := range heads {
		end := len(src)
		if k+1 < len(heads) {
			end = offs[heads[k+1].line]
		}
		text := plainMarkdown(h.text)
		for len(stack) > 0 && stack[len(stack)-1].level >= h.level {
			stack = stack[:len(stack)-1]
		}
		stack = append(stack, heading{h.level, text})
		pathText := make([]string, len(stack))
		for i, s := range stack {
			pathText[i] = s.text
		}
		anchor := h.id
		if anchor == "" {
			anchor = slug(text)
			if n := slugs[anchor]; n > 0 {
				slugs[anchor] = n + 1
				anchor += "-" + strconv.Itoa(n)
			} else {
				slugs[anchor] = 1
			}
		}
		res.Sections = append(res.Sections, panther.Section{
			Heading:  pathText,
			Level:    h.level,
			Anchor:   anchor,
			Markdown: strings.TrimRight(src[offs[h.line]:end], " \t\n"),
		})
	}
	return res, nil
}

// Text takes a plain-text page as one section titled after its file name.
func Text(pageURL *url.URL, body []byte) (*Result, error) {
	s := normalizeText(body)
	res := &Result{Title: fileTitle(pageURL), Markdown: s}
	if t := strings.TrimSpace(s); t != "" {
		res.Sections = []panther.Section{{Heading: []string{}, Markdown: strings.TrimRight(s, " \t\n")}}
	}
	return res, nil
}

// normalizeText makes text input valid UTF-8 with \n line ends, without a byte order mark or NULs.
func normalizeText(body []byte) string {
	if len(body) > maxInput {
		body = body[:maxInput]
	}
	s := decodeHTMLText(body)
	if strings.IndexByte(s, '\r') >= 0 {
		s = strings.ReplaceAll(s, "\r\n", "\n")
		s = strings.ReplaceAll(s, "\r", "\n")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	return s
}

// decodeHTMLText decodes a text file: BOMs honoured, otherwise UTF-8, or windows-1252 when the bytes
// are plainly not UTF-8.
func decodeHTMLText(body []byte) string {
	switch {
	case len(body) >= 3 && body[0] == 0xEF && body[1] == 0xBB && body[2] == 0xBF:
		return validUTF8(body[3:])
	case len(body) >= 2 && body[0] == 0xFF && body[1] == 0xFE:
		return decodeUTF16(body[2:], false)
	case len(body) >= 2 && body[0] == 0xFE && body[1] == 0xFF:
		return decodeUTF16(body[2:], true)
	}
	s := validUTF8(body)
	if len(s) != len(body) && !mostlyUTF8(body) {
		return decodeWindows1252(body)
	}
	return s
}

// fileTitle is the URL's file name without its extension.
func fileTitle(u *url.URL) string {
	if u == nil {
		return ""
	}
	p := u.Path
	if p == "" {
		p = u.Opaque
	}
	base := path.Base(p)
	if base == "/" || base == "." {
		return u.Host
	}
	if name := strings.TrimSuffix(base, path.Ext(base)); name != "" {
		return name
	}
	return base
}

// frontMatterEnd returns the index of the first line after a leading YAML front matter block, or 0.
func frontMatterEnd(lines []string) int {
	if len(lines) == 0 || strings.TrimRight(lines[0], "\r\n") != "---" {
		return 0
	}
	for i := 1; i < len(lines) && i < 200; i++ {
		if t := strings.TrimRight(lines[i], " \r\n"); t == "---" || t == "..." {
			return i + 1
		}
	}
	return 0
}

func fenceOpen(l string) string {
	t := strings.TrimLeft(l, " ")
	if len(l)-len(t) > 3 || len(t) < 3 || t[0] != '`' && t[0] != '~' {
		return ""
	}
	n := 0
	for n < len(t) && t[n] == t[0] {
		n++
	}
	if n < 3 || t[0] == '`' && strings.IndexByte(t[n:], '`') >= 0 {
		return ""
	}
	return t[:n]
}

func isFenceClose(l, fence string) bool {
	t := strings.TrimLeft(l, " ")
	if len(l)-len(t) > 3 {
		return false
	}
	n := 0
	for n < len(t) && t[n] == fence[0] {
		n++
	}
	return n >= len(fence) && strings.TrimSpace(t[n:]) == ""
}

// atxHeading parses "## Heading ##" (indentation already removed).
func atxHeading(t string) (int, string) {
	n := 0
	for n < len(t) && n < 7 && t[n] == '#' {
		n++
	}
	if n == 0 || n > 6 || n < len(t) && t[n] != ' ' && t[n] != '\t' {
		return 0, ""
	}
	text := strings.TrimSpace(t[n:])
	// A closing sequence of #s, when separated by a space, is not part of the heading.
	if s := strings.TrimRight(text, "#"); s != text && (s == "" || s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		text = strings.TrimSpace(s)
	}
	return n, text
}

func setextLevel(t string) int {
	t = strings.TrimRight(t, " \t")
	if t == "" {
		return 0
	}
	if allByte(t, '=') {
		return 1
	}
	if allByte(t, '-') {
		return 2
	}
	return 0
}

// isParagraphLine says whether a line could be a setext heading's text: not a list item, quote,
// heading, table row or indented code.
func isParagraphLine(l string) bool {
	l = strings.TrimRight(l, "\r\n")
	t := strings.TrimLeft(l, " ")
	if len(l)-len(t) > 3 || t == "" {
		return false
	}
	switch t[0] {
	case '>', '#', '|', '<':
		return false
	case '-', '*', '+':
		return len(t) > 1 && t[1] != ' ' && t[1] != '\t'
	}
	if t[0] >= '0' && t[0] <= '9' {
		i := 0
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
		}
		if i < len(t) && (t[i] == '.' || t[i] == ')') && (i+1 == len(t) || t[i+1] == ' ') {
			return false
		}
	}
	return true
}

// headingID splits "Heading {#id}" into the text and the id.
func headingID(text string) (string, string) {
	if !strings.HasSuffix(text, "}") {
		return text, ""
	}
	i := strings.LastIndex(text, "{#")
	if i < 0 {
		return text, ""
	}
	id := text[i+2 : len(text)-1]
	if id == "" || strings.ContainsAny(id, " \t{}") {
		return text, ""
	}
	return strings.TrimSpace(text[:i]), id
}

// plainMarkdown strips the inline markup a heading may carry: links to their text, code and emphasis
// delimiters, backslash escapes.
func plainMarkdown(s string) string {
	if !strings.ContainsAny(s, "[]`*_\\<") {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 < len(s) && isASCIIPunct(s[i+1]) {
				i++
				sb.WriteByte(s[i])
			} else {
				sb.WriteByte(c)
			}
		case '`', '*':
		case '_':
			if i > 0 && i+1 < len(s) && isAlnum(s[i-1]) && isAlnum(s[i+1]) {
				sb.WriteByte(c)
			}
		case '[':
		case ']':
			// Drop "(url)" after a link's text.
			if i+1 < len(s) && s[i+1] == '(' {
				if j := strings.IndexByte(s[i:min(len(s), i+512)], ')'); j > 0 {
					i += j
				}
			}
		case '<':
			// Searches stop after a short window: a tag is short, and a long heading full of
			// unclosed brackets must not cost quadratic time.
			if j := strings.IndexByte(s[i:min(len(s), i+256)], '>'); j > 0 && !strings.ContainsAny(s[i:i+j], " ") {
				i += j // an inline tag or autolink
			} else {
				sb.WriteByte(c)
			}
		default:
			sb.WriteByte(c)
		}
	}
	return collapseSpace(sb.String())
}

// slug is GitHub's heading anchor: lower case, punctuation dropped, spaces as hyphens.
func slug(s string) string {
	var sb strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-':
			sb.WriteRune(r)
		case r == ' ':
			sb.WriteByte('-')
		}
	}
	return sb.String()
}

// markdownLinks appends the destinations of a line's inline links and images ("](url)"), autolinks
// ("<https://...>") and link reference definitions ("[x]: url").
func markdownLinks(l string, links []string) []string {
	if t := strings.TrimLeft(l, " "); strings.HasPrefix(t, "[") {
		if i := strings.Index(t, "]:"); i > 0 {
			if f := strings.Fields(t[i+2:]); len(f) > 0 {
				links = append(links, strings.Trim(f[0], "<>"))
			}
		}
	}
	for rest := l; ; {
		i := strings.Index(rest, "](")
		j := strings.Index(rest, "<http")
		switch {
		case i < 0 && j < 0:
			return links
		case i >= 0 && (j < 0 || i < j):
			rest = rest[i+2:]
			end := strings.IndexAny(rest, ") \t")
			if end < 0 {
				end = len(rest)
			}
			links = append(links, strings.Trim(rest[:end], "<>"))
			rest = rest[end:]
		default:
			rest = rest[j+1:]
			end := strings.IndexAny(rest, "> ")
			if end < 0 {
				return links
			}
			links = append(links, rest[:end])
			rest = rest[end:]
		}
	}
}
