package kb

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// markdownLink matches [text](target) and ![alt](target). Navigation detection uses it at ingest;
// snippets, made on every search, use stripLinkTargets, the same match without a regexp.
var markdownLink = regexp.MustCompile(`!?\[([^\]\n]*)\]\([^)\n]*\)`)

// snippetWords is the length of a snippet: about two lines of a terminal, enough to judge a hit.
const snippetWords = 30

// snippet is the window of a passage's words that holds the most distinct query words (then the
// most matches), with an ellipsis where the passage is cut. It is made in Go for the few hits that
// are returned, rather than by the store for every candidate it ranks: the store's snippets cost
// more than the ranking itself.
func snippet(text, query string) string {
	text = stripLinkTargets(text)
	// Code fences are layout, not words.
	if strings.Contains(text, "```") {
		text = strings.ReplaceAll(text, "```", "")
	}
	words := strings.Fields(text)
	if len(words) <= snippetWords {
		return strings.Join(words, " ")
	}
	terms := snippetTerms(query)
	m := newMatcher(terms)
	match := make([]int, len(words)) // index+1 into terms of the term a word matches, 0 for none
	for i, w := range words {
		match[i] = m.match(w)
	}
	best, bestDistinct, bestTotal := 0, -1, -1
	counts := make([]int, len(terms)+1)
	distinct, total := 0, 0
	add := func(i, d int) {
		m := match[i]
		if m == 0 {
			return
		}
		if d > 0 && counts[m] == 0 {
			distinct++
		}
		counts[m] += d
		total += d
		if d < 0 && counts[m] == 0 {
			distinct--
		}
	}
	for i := 0; i < len(words); i++ {
		add(i, 1)
		if i >= snippetWords {
			add(i-snippetWords, -1)
		}
		if start := i - snippetWords + 1; start >= 0 && (distinct > bestDistinct || distinct == bestDistinct && total > bestTotal) {
			best, bestDistinct, bestTotal = start, distinct, total
		}
	}
	// Start a little before the first match so that it reads in context.
	if bestTotal > 0 {
		for j := best; j < best+snippetWords; j++ {
			if match[j] != 0 {
				best = max(0, min(j-3, len(words)-snippetWords))
				break
			}
		}
	}
	out := strings.Join(words[best:best+snippetWords], " ")
	if best > 0 {
		out = "…" + out
	}
	if best+snippetWords < len(words) {
		out += "…"
	}
	return out
}

// stripLinkTargets replaces each markdown link [text](target) or image ![alt](target) with its
// text: a snippet is read as a line of a result list, where targets are noise. Neither part may
// span lines, and the text ends at its first ']' and the target at its first ')', as in the
// regular expression markdownLink, which this replaces on the search path at a small fraction of
// its cost. A '[' that opens no link is kept, and so is everything up to where its attempt failed:
// any '[' in between would fail at the same place.
func stripLinkTargets(text string) string {
	i := strings.IndexByte(text, '[')
	if i < 0 {
		return text
	}
	var b strings.Builder
	b.Grow(len(text))
	done := 0 // text[:done] is written or dropped
	for i >= 0 {
		// i is a '[' at or after done.
		end, inner, ok := linkAt(text, i)
		if !ok {
			next := strings.IndexByte(text[end:], '[')
			if next < 0 {
				break
			}
			i = end + next
			continue
		}
		start := i
		if start > done && text[start-1] == '!' {
			start--
		}
		b.WriteString(text[done:start])
		b.WriteString(inner)
		done = end
		next := strings.IndexByte(text[end:], '[')
		if next < 0 {
			break
		}
		i = end + next
	}
	if done == 0 {
		return text
	}
	b.WriteString(text[done:])
	return b.String()
}

// linkAt matches a link at text[i] == '['. On success it returns the end of the link and its
// text; otherwise where the match failed, past which the next '[' is worth trying.
func linkAt(text string, i int) (end int, inner string, ok bool) {
	j := i + 1
	for j < len(text) && text[j] != ']' && text[j] != '\n' {
		j++
	}
	if j == len(text) || text[j] != ']' || j+1 == len(text) || text[j+1] != '(' {
		return j, "", false
	}
	k := j + 2
	for k < len(text) && text[k] != ')' && text[k] != '\n' {
		k++
	}
	if k == len(text) || text[k] != ')' {
		return k, "", false
	}
	return k + 1, text[i+1 : j], true
}

// snippetTerms are the query's words, lower-cased, without stop words unless nothing else is left.
func snippetTerms(query string) []string {
	var all, kept []string
	for _, w := range strings.FieldsFunc(strings.ToLower(query), notWordRune) {
		all = append(all, w)
		if !stopWords[w] {
			kept = append(kept, w)
		}
	}
	if len(kept) == 0 {
		return all
	}
	return kept
}

// matcher says which query term a word of text matches. A shared stem is enough ("indexes" matches
// "index", "creating" matches "create"), as in the search index. It is made once per query: snippets
// and rerank ask it about every word of ten passages and forty headings.
type matcher struct {
	terms []string
	// stem is the prefix of terms[i], in bytes, that a longer or shorter word must share with it.
	stem []int
	// first holds the first byte of every term: a word that starts otherwise matches none.
	first [256]bool
	buf   []byte
}

func newMatcher(terms []string) *matcher {
	m := &matcher{terms: terms, stem: make([]int, len(terms))}
	for i, t := range terms {
		m.stem[i] = max(4, utf8.RuneCountInString(t)-2)
		if t != "" {
			m.first[t[0]] = true
		}
	}
	return m
}

// match returns the index+1 of the first term the word matches, 0 for none.
func (m *matcher) match(word string) int {
	w, ok := m.normalize(word)
	if !ok {
		return 0
	}
	for i := range m.terms {
		if m.matches(w, i) {
			return i + 1
		}
	}
	return 0
}

// normalize returns the word as terms are compared with it: lower-cased, without leading and
// trailing characters other than letters, digits and '_'. ok is false when no term can match it.
// The result is m.buf, valid until the next call.
func (m *matcher) normalize(word string) (w []byte, ok bool) {
	lo, hi := 0, len(word)
	for lo < hi && word[lo] < utf8.RuneSelf && !isWordByte(word[lo]) {
		lo++
	}
	for hi > lo && word[hi-1] < utf8.RuneSelf && !isWordByte(word[hi-1]) {
		hi--
	}
	for i := lo; i < hi; i++ {
		if word[i] >= utf8.RuneSelf {
			// Letters beyond ASCII: Unicode's rules, as matchTerm applied them.
			m.buf = append(m.buf[:0], strings.ToLower(strings.TrimFunc(word, notWordRune))...)
			return m.buf, len(m.buf) > 0
		}
	}
	if lo == hi || !m.first[lower(word[lo])] {
		return nil, false
	}
	m.buf = m.buf[:0]
	for i := lo; i < hi; i++ {
		m.buf = append(m.buf, lower(word[i]))
	}
	return m.buf, true
}

// matches reports whether a normalized word matches terms[i]: equal, or sharing its stem.
func (m *matcher) matches(w []byte, i int) bool {
	t := m.terms[i]
	if string(w) == t {
		return true
	}
	stem := m.stem[i]
	return stem <= len(w) && stem <= len(t) && string(w[:stem]) == t[:stem]
}

func notWordRune(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' }

func isWordByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields("a an and are as at be but by for if in into is it no not of on or such that the their then there these they this to was will with") {
		m[w] = true
	}
	return m
}()
