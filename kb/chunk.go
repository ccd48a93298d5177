package kb

import (
	"strings"
	"unicode/utf8"

	"panther"
)

// Chunk size defaults, in cl100k_base tokens.
//
// 400 tokens keeps a passage within the 512-token window of the small embedding models an offline
// setup can run (their WordPiece counts run 10-25% above cl100k on English) and makes ten hits about
// 4k tokens of an agent's context. Most documentation sections are smaller and stay whole, so the limit
// mostly decides how reference pages with long parameter lists are cut. The overlap of 60 (15%) carries
// the sentence or two before a cut into the next part, so that a passage starting mid-argument still
// has its subject.
const (
	DefaultChunkTokens   = 400
	DefaultOverlapTokens = 60
	// minChunkTokens keeps a chunk big enough to hold a heading line and some text after it.
	minChunkTokens = 32
)

// ChunkOptions bound the chunks Chunk makes.
type ChunkOptions struct {
	// MaxTokens is the largest chunk, heading line included. 0 means DefaultChunkTokens.
	MaxTokens int
	// OverlapTokens is how much of the end of a part of a split section is repeated at the start of
	// the next part. 0 means DefaultOverlapTokens; negative means none. It is capped at MaxTokens/4.
	OverlapTokens int
	// KeepEmptySections makes a section that has only its heading a chunk of its own. By default it
	// is put in front of the next section's first chunk when that section is nested under it (see
	// Chunk for why).
	KeepEmptySections bool
}

func (o ChunkOptions) normalized() ChunkOptions {
	if o.MaxTokens == 0 {
		o.MaxTokens = DefaultChunkTokens
	}
	o.MaxTokens = max(o.MaxTokens, minChunkTokens)
	switch {
	case o.OverlapTokens == 0:
		o.OverlapTokens = DefaultOverlapTokens
	case o.OverlapTokens < 0:
		o.OverlapTokens = 0
	}
	o.OverlapTokens = min(o.OverlapTokens, o.MaxTokens/4)
	return o
}

// estimateMarginPct is how much of the limit a section's estimate may reach for the section to be kept
// whole without tokenizing it. estimateTokens overestimates documentation by 10-40%, but synthetic
// digit and hex runs reach 4% under; 90% covers that with room to spare (TestEstimateIsConservative).
const estimateMarginPct = 90

// sepTokens is what "\n\n" between two blocks costs.
const sepTokens = 1

// Chunk cuts a page's sections into the passages the knowledge base indexes.
//
// Each section is one chunk whose text starts with the section's heading line, so that a passage
// read alone says what it is about. A section over opts.MaxTokens is cut at blank lines, never inside
// a fenced code block; each part repeats the heading line and starts with the last OverlapTokens of
// the part before. A single block larger than the limit is cut further: a code block at line
// boundaries, each part fenced again with the original fence and info string; a table between rows,
// each part repeating the header; prose at line, then sentence, then token boundaries. All parts keep
// the section's heading path and anchor.
//
// A section with nothing but its heading is put in front of the next section when that one is nested
// under it ("## Indexes" then "### Partial Indexes"), because as a chunk of its own it is a passage
// with no content that BM25, which favours short passages, ranks above the sections that answer the
// query; its heading words still count towards the next chunk. A heading-only section that nothing is
// nested under is kept as its own chunk, so its anchor can still be cited.
//
// Tokens is exact (cl100k_base) for sections that were tokenized, and for the others (those that
// estimateTokens puts clearly under the limit, most of them) the estimate, which runs high: tokenizing
// every section would cost more than the rest of ingest together.
func Chunk(sections []panther.Section, opts ChunkOptions) []panther.Chunk {
	opts = opts.normalized()
	c := chunker{opts: opts}
	for i := range sections {
		s := &sections[i]
		var next *panther.Section
		if i+1 < len(sections) {
			next = &sections[i+1]
		}
		c.section(s, next)
	}
	if c.pending != "" {
		// Heading-only sections at the very end whose merge target vanished: keep them.
		c.emit(c.pendingSec.Heading, c.pendingSec.Anchor, strings.TrimSuffix(c.pending, "\n\n"), estimateTokens(c.pending))
	}
	return c.out
}

type chunker struct {
	opts ChunkOptions
	out  []panther.Chunk
	// pending holds heading lines of empty sections waiting to be put in front of the next section.
	pending    string
	pendingSec panther.Section
}

func (c *chunker) emit(heading []string, anchor, text string, tokens int) {
	c.out = append(c.out, panther.Chunk{
		Ordinal:    len(c.out),
		Heading:    heading,
		Anchor:     anchor,
		Text:       text,
		Tokens:     tokens,
		Navigation: isNavigation(text),
		Keywords:   keywords(text),
	})
}

func (c *chunker) section(s, next *panther.Section) {
	md := trimBlankEdges(s.Markdown)
	head, body := splitHeadingLine(md)
	if head == "" && len(s.Heading) > 0 {
		head = syntheticHeading(s)
	}
	if head == "" && strings.TrimSpace(body) == "" {
		return
	}
	if strings.TrimSpace(body) == "" {
		if !c.opts.KeepEmptySections && next != nil && nestedUnder(next, s) {
			if c.pending == "" {
				c.pendingSec = *s
			}
			c.pending += head + "\n\n"
			return
		}
		c.flushPending(s)
		text := c.pending + head
		c.pending = ""
		c.emit(s.Heading, s.Anchor, text, estimateTokens(text))
		return
	}
	c.flushPending(s)

	prefix := c.pending
	c.pending = ""
	text := md
	if prefix != "" || head != md[:min(len(head), len(md))] {
		text = joinNonEmpty(strings.TrimSuffix(prefix, "\n\n"), head, body)
	}
	if est := estimateTokens(text); est <= c.opts.MaxTokens*estimateMarginPct/100 {
		c.emit(s.Heading, s.Anchor, text, est)
		return
	}
	c.split(s, text, prefix, head, body)
}

// flushPending keeps pending heading-only sections as chunks of their own when s turns out not to be
// nested under them after all (can happen only with inconsistent levels).
func (c *chunker) flushPending(s *panther.Section) {
	if c.pending == "" || nestedUnder(s, &c.pendingSec) {
		return
	}
	c.emit(c.pendingSec.Heading, c.pendingSec.Anchor, strings.TrimSuffix(c.pending, "\n\n"), estimateTokens(c.pending))
	c.pending = ""
}

func nestedUnder(child, parent *panther.Section) bool {
	if len(child.Heading) > len(parent.Heading) {
		return true
	}
	return parent.Level > 0 && child.Level > parent.Level
}

// split cuts a section over the limit into parts. prefix is the heading lines of empty parent sections,
// which only the first part carries.
func (c *chunker) split(s *panther.Section, text, prefix, head, body string) {
	maxTok := c.opts.MaxTokens
	headTok := 0
	if head != "" {
		headTok = countTokens(head)
	}
	repeatHead := head != "" && headTok <= maxTok/4
	budget := maxTok
	if repeatHead {
		budget = maxTok - headTok - sepTokens
	}

	var units []unit
	if prefix != "" {
		for _, line := range strings.Split(strings.TrimSuffix(prefix, "\n\n"), "\n\n") {
			u := unit{text: line, kind: kindHeading, tokens: countTokens(line)}
			units = append(units, u)
			// Only the first part carries them, but every block must fit in the first part.
			budget -= u.tokens + sepTokens
		}
		budget = max(budget, minChunkTokens/2)
	}
	if head != "" {
		units = append(units, unit{text: head, kind: kindHeading, tokens: headTok})
	}
	for _, b := range splitBlocks(body) {
		// Small blocks are packed by their (high) estimate: exact counts for every paragraph cost
		// more than the rest of ingest, and only make the parts a little fuller.
		if est := estimateTokens(b.text); est <= budget/4 {
			b.tokens = est
		} else {
			b.tokens = countTokens(b.text)
		}
		if b.tokens <= budget {
			units = append(units, b)
			continue
		}
		units = append(units, explode(b, budget)...)
	}

	total := 0
	for i, u := range units {
		total += u.tokens
		if i > 0 {
			total += sepTokens
		}
	}
	if total <= maxTok {
		// The estimate was too high: the section fits after all.
		c.emit(s.Heading, s.Anchor, text, total)
		return
	}

	var cur []unit
	curTok, fresh := 0, 0
	add := func(u unit) {
		if len(cur) > 0 {
			curTok += sepTokens
		}
		cur = append(cur, u)
		curTok += u.tokens
	}
	for _, u := range units {
		if len(cur) > 0 && curTok+sepTokens+u.tokens > maxTok && fresh > 0 {
			c.emit(s.Heading, s.Anchor, joinUnits(cur), curTok)
			prev := cur
			cur, curTok, fresh = nil, 0, 0
			if repeatHead {
				add(unit{text: head, kind: kindHeading, tokens: headTok})
			}
			for _, o := range c.overlap(prev, maxTok-curTok-sepTokens-u.tokens-sepTokens) {
				add(o)
			}
		}
		add(u)
		fresh++
	}
	if fresh > 0 {
		c.emit(s.Heading, s.Anchor, joinUnits(cur), curTok)
	}
}

// overlap returns the end of a finished part to start the next one with: whole trailing blocks while
// they fit in the overlap, else the last sentences of a trailing prose block. Headings are not
// repeated (the part gets its own heading line) and code is only taken whole, so the overlap is
// always valid markdown. room is what the next part can spare besides its heading and first block.
func (c *chunker) overlap(prev []unit, room int) []unit {
	limit := min(c.opts.OverlapTokens, room)
	if limit <= 0 {
		return nil
	}
	start, sum := len(prev), 0
	for i := len(prev) - 1; i >= 0; i-- {
		u := prev[i]
		if u.kind == kindHeading || sum+u.tokens+sepTokens > limit {
			break
		}
		sum += u.tokens + sepTokens
		start = i
	}
	if start < len(prev) {
		return prev[start:]
	}
	last := prev[len(prev)-1]
	if last.kind != kindProse {
		return nil
	}
	tail, n := tailText(last.text, last.tokens, limit)
	if tail == "" {
		return nil
	}
	return []unit{{text: tail, kind: kindProse, tokens: n}}
}

// tailText returns the shortest run of whole trailing sentences of s (n tokens) that reaches about
// limit tokens without passing it, or trailing words if no sentence end is near.
func tailText(s string, n, limit int) (string, int) {
	if n <= 0 {
		return "", 0
	}
	// Bytes per token are roughly uniform within one block; aim a little short and re-count.
	for frac := 0.9; frac > 0.3; frac -= 0.2 {
		from := len(s) - int(float64(len(s))*frac*float64(limit)/float64(n))
		from = max(from, 1)
		cut := nextSentenceStart(s, from)
		if cut < 0 || len(s)-cut < 2 {
			cut = nextWordStart(s, from)
		}
		if cut < 0 || cut >= len(s) {
			return "", 0
		}
		tail := s[cut:]
		if t := countTokens(tail); t <= limit {
			return tail, t
		}
	}
	return "", 0
}

func nextSentenceStart(s string, from int) int {
	for i := from; i < len(s); i++ {
		switch s[i] {
		case '\n':
			return i + 1
		case '.', '!', '?', ';':
			if i+1 < len(s) && s[i+1] == ' ' {
				return i + 2
			}
		}
		if s[i] == 0xE3 && strings.HasPrefix(s[i:], "。") {
			return i + len("。")
		}
	}
	return -1
}

func nextWordStart(s string, from int) int {
	if i := strings.IndexByte(s[from:], ' '); i >= 0 {
		return from + i + 1
	}
	return -1
}

type blockKind uint8

const (
	kindProse blockKind = iota
	kindHeading
	kindCode
	kindTable
)

// unit is a block of a section (a paragraph, heading line, fenced code block or table, as delimited
// by blank lines) or a piece of one too large to be a chunk, itself valid markdown.
type unit struct {
	text   string
	kind   blockKind
	tokens int
}

func joinUnits(us []unit) string {
	n := 0
	for _, u := range us {
		n += len(u.text) + 2
	}
	var b strings.Builder
	b.Grow(n)
	for i, u := range us {
		if i > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(u.text)
	}
	return b.String()
}

// splitBlocks cuts markdown at blank lines outside fenced code blocks. A fence, a heading line or a
// table also ends the paragraph before it, as in CommonMark.
func splitBlocks(md string) []unit {
	var out []unit
	start := -1 // start of the open block, -1 when none
	end := 0    // end of the open block's last line
	inFence := false
	var fenceChar byte
	fenceLen := 0
	closeBlock := func(kind blockKind) {
		if start >= 0 {
			t := strings.TrimRight(md[start:end], " \t\r\n")
			if kind == kindProse && isTable(t) {
				kind = kindTable
			}
			if t != "" {
				out = append(out, unit{text: t, kind: kind})
			}
		}
		start = -1
	}
	for pos := 0; pos < len(md); {
		lineEnd := strings.IndexByte(md[pos:], '\n')
		next := len(md)
		if lineEnd < 0 {
			lineEnd = len(md)
		} else {
			lineEnd += pos
			next = lineEnd + 1
		}
		line := md[pos:lineEnd]
		switch {
		case inFence:
			end = lineEnd
			if isClosingFence(line, fenceChar, fenceLen) {
				inFence = false
				closeBlock(kindCode)
			}
		case strings.TrimSpace(line) == "":
			closeBlock(kindProse)
		default:
			if ch, n, ok := openingFence(line); ok {
				closeBlock(kindProse)
				start, end = pos, lineEnd
				inFence, fenceChar, fenceLen = true, ch, n
				break
			}
			if isATXHeading(line) {
				closeBlock(kindProse)
				start, end = pos, lineEnd
				closeBlock(kindHeading)
				break
			}
			if start < 0 {
				start = pos
			}
			end = lineEnd
		}
		pos = next
	}
	if inFence {
		closeBlock(kindCode)
	}
	closeBlock(kindProse)
	return out
}

// openingFence recognises a CommonMark code fence: up to three spaces, then three or more backticks
// or tildes (a backtick fence's info string may not contain a backtick).
func openingFence(line string) (byte, int, bool) {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 || len(t) < 3 || (t[0] != '`' && t[0] != '~') {
		return 0, 0, false
	}
	ch := t[0]
	n := 0
	for n < len(t) && t[n] == ch {
		n++
	}
	if n < 3 || (ch == '`' && strings.IndexByte(t[n:], '`') >= 0) {
		return 0, 0, false
	}
	return ch, n, true
}

func isClosingFence(line string, ch byte, n int) bool {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 {
		return false
	}
	m := 0
	for m < len(t) && t[m] == ch {
		m++
	}
	return m >= n && strings.TrimSpace(t[m:]) == ""
}

func isATXHeading(line string) bool {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 {
		return false
	}
	n := 0
	for n < len(t) && t[n] == '#' {
		n++
	}
	return n >= 1 && n <= 6 && (n == len(t) || t[n] == ' ' || t[n] == '\t')
}

// isTable recognises a pipe table: a header row and a delimiter row of dashes, colons and pipes.
func isTable(block string) bool {
	first, rest, ok := strings.Cut(block, "\n")
	if !ok || strings.IndexByte(first, '|') < 0 {
		return false
	}
	delim, _, _ := strings.Cut(rest, "\n")
	delim = strings.TrimSpace(delim)
	if !strings.Contains(delim, "-") {
		return false
	}
	for i := 0; i < len(delim); i++ {
		switch delim[i] {
		case '|', '-', ':', ' ', '\t':
		default:
			return false
		}
	}
	return true
}

// explode cuts a block larger than budget into pieces that each fit and are valid markdown on their own.
func explode(b unit, budget int) []unit {
	switch b.kind {
	case kindCode:
		return explodeCode(b, budget)
	case kindTable:
		return explodeTable(b, budget)
	default:
		return explodeProse(b, budget)
	}
}

func explodeCode(b unit, budget int) []unit {
	lines := strings.Split(b.text, "\n")
	open := lines[0]
	ch, n, _ := openingFence(open)
	closing := strings.Repeat(string(ch), n)
	inner := lines[1:]
	if len(inner) > 0 && isClosingFence(inner[len(inner)-1], ch, n) {
		closing = strings.TrimSpace(inner[len(inner)-1])
		inner = inner[:len(inner)-1]
	}
	// Indentation of the opening fence is removed from the content lines by CommonMark, so keep
	// the fences as they were and the lines untouched.
	wrapTok := countTokens(open) + countTokens(closing) + 2
	innerBudget := max(budget-wrapTok, 8)
	groups := groupPieces(inner, "\n", innerBudget)
	out := make([]unit, 0, len(groups))
	for _, g := range groups {
		text := open + "\n" + g.text + "\n" + closing
		out = append(out, unit{text: text, kind: kindCode, tokens: g.tokens + wrapTok})
	}
	return out
}

func explodeTable(b unit, budget int) []unit {
	lines := strings.Split(b.text, "\n")
	header := lines[0] + "\n" + lines[1]
	headTok := countTokens(header) + 1
	if headTok > budget/2 {
		// A header this large would leave no room for rows; cut the table like prose.
		return explodeProse(unit{text: b.text, kind: kindProse, tokens: b.tokens}, budget)
	}
	groups := groupPieces(lines[2:], "\n", budget-headTok)
	out := make([]unit, 0, len(groups))
	for _, g := range groups {
		out = append(out, unit{text: header + "\n" + g.text, kind: kindTable, tokens: g.tokens + headTok})
	}
	return out
}

func explodeProse(b unit, budget int) []unit {
	var pieces []string
	if strings.Contains(b.text, "\n") {
		pieces = strings.Split(b.text, "\n")
		groups := groupPieces(pieces, "\n", budget)
		out := make([]unit, 0, len(groups))
		for _, g := range groups {
			out = append(out, unit{text: g.text, kind: kindProse, tokens: g.tokens})
		}
		return out
	}
	groups := groupPieces(splitSentences(b.text), "", budget)
	out := make([]unit, 0, len(groups))
	for _, g := range groups {
		out = append(out, unit{text: strings.TrimSpace(g.text), kind: kindProse, tokens: g.tokens})
	}
	return out
}

// splitSentences cuts a line after sentence ends, keeping the space with the next sentence so that
// the pieces concatenate back to the line.
func splitSentences(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		cut := -1
		switch {
		case (s[i] == '.' || s[i] == '!' || s[i] == '?' || s[i] == ';') && i+1 < len(s) && s[i+1] == ' ':
			cut = i + 1
		case s[i] == 0xE3 && strings.HasPrefix(s[i:], "。"):
			cut = i + len("。")
		}
		if cut > start {
			out = append(out, s[start:cut])
			start = cut
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

type group struct {
	text   string
	tokens int
}

// groupPieces packs consecutive pieces, joined by sep, into groups of at most budget tokens. A piece
// that alone is over budget is cut at token boundaries.
func groupPieces(pieces []string, sep string, budget int) []group {
	sepTok := 0
	if sep != "" {
		sepTok = 1
	} else {
		// Tokens merge across sentence joins (".)" + " For"), so sums of pieces can run a token or two
		// short of the group's count; the group is re-counted, and this leaves room for the difference.
		budget = max(budget-2, 1)
	}
	var out []group
	var b strings.Builder
	tok, n := 0, 0
	flush := func() {
		if n > 1 {
			tok = countTokens(b.String())
		}
		if n > 0 {
			out = append(out, group{text: b.String(), tokens: tok})
		}
		b.Reset()
		tok, n = 0, 0
	}
	for _, p := range pieces {
		pt := countTokens(p)
		if pt > budget {
			flush()
			for _, h := range hardSplit(p, budget) {
				out = append(out, group{text: h, tokens: countTokens(h)})
			}
			continue
		}
		if n > 0 && tok+sepTok+pt > budget {
			flush()
		}
		if n > 0 {
			b.WriteString(sep)
			tok += sepTok
		}
		b.WriteString(p)
		tok += pt
		n++
	}
	flush()
	return out
}

// hardSplit cuts text with no usable boundary (a minified line, a paragraph-long URL) every budget
// tokens, moving each cut back to a token that starts a word when one is near, and never into the
// middle of a UTF-8 sequence (byte-level tokens can hold part of a character).
func hardSplit(s string, budget int) []string {
	c, err := cl100k()
	if err != nil {
		return hardSplitBytes(s, budget)
	}
	_, toks, err := c.Encode(s)
	if err != nil {
		return hardSplitBytes(s, budget)
	}
	// offsets[i] is the byte offset where token i starts.
	offsets := make([]int, len(toks)+1)
	for i, t := range toks {
		offsets[i+1] = offsets[i] + len(t)
	}
	var out []string
	// The cut is made at most budget-1 tokens along so that a re-tokenization of the piece (which can
	// differ at its edges) stays within budget.
	step := max(budget-2, 1)
	for from := 0; from < len(toks); {
		to := min(from+step, len(toks))
		if to < len(toks) {
			best := to
			for j := to; j > from+step/2; j-- {
				if strings.HasPrefix(toks[j], " ") {
					best = j
					break
				}
			}
			to = best
			for to > from+1 && !utf8.RuneStart(s[offsets[to]]) {
				to--
			}
		}
		if piece := strings.TrimSpace(s[offsets[from]:offsets[to]]); piece != "" {
			out = append(out, piece)
		}
		from = to
	}
	return out
}

func hardSplitBytes(s string, budget int) []string {
	var out []string
	for len(s) > budget {
		cut := budget
		for cut > 1 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		out = append(out, s[:cut])
		s = s[cut:]
	}
	return append(out, s)
}

// trimBlankEdges drops blank lines before the first line of text and trailing whitespace, but keeps
// the first line's indentation (it may be an indented code block).
func trimBlankEdges(s string) string {
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 || strings.TrimSpace(s[:i]) != "" {
			break
		}
		s = s[i+1:]
	}
	if strings.TrimSpace(s) == "" {
		return ""
	}
	return strings.TrimRight(s, " \t\r\n")
}

// splitHeadingLine separates a leading ATX heading line (or setext heading) from the rest.
func splitHeadingLine(md string) (head, body string) {
	first, rest, _ := strings.Cut(md, "\n")
	if isATXHeading(first) {
		return strings.TrimSpace(first), trimBlankEdges(rest)
	}
	second, after, _ := strings.Cut(rest, "\n")
	if t := strings.TrimSpace(second); first != "" && len(t) >= 2 && strings.Trim(t, "=") == "" || len(t) >= 3 && strings.Trim(t, "-") == "" && strings.TrimSpace(first) != "" {
		return first + "\n" + second, trimBlankEdges(after)
	}
	return "", md
}

func syntheticHeading(s *panther.Section) string {
	level := s.Level
	if level < 1 {
		level = len(s.Heading)
	}
	level = min(max(level, 1), 6)
	return strings.Repeat("#", level) + " " + s.Heading[len(s.Heading)-1]
}

func joinNonEmpty(parts ...string) string {
	var nonEmpty []string
	for _, p := range parts {
		if p != "" {
			nonEmpty = append(nonEmpty, p)
		}
	}
	return strings.Join(nonEmpty, "\n\n")
}
