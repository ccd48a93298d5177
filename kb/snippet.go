package kb

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// snippetWords is the length of a snippet: about two lines of a terminal, enough to judge a hit.
const snippetWords = 30

// markdownLink matches [text](target) and ![alt](target); snippets keep the text, not the target,
// which is noise when read as a line of a result list.
var markdownLink = regexp.MustCompile(`!?\[([^\]\n]*)\]\([^)\n]*\)`)

// snippet is the window of a passage's words that holds the most distinct query words (then the
// most matches), with an ellipsis where the passage is cut. It is made in Go for the few hits that
// are returned, rather than by the store for every candidate it ranks: the store's snippets cost
// more than the ranking itself.
func snippet(text, query string) string {
	text = markdownLink.ReplaceAllString(text, "$1")
	// Code fences are layout, not words.
	text = strings.ReplaceAll(text, "```", "")
	words := strings.Fields(text)
	if len(words) <= snippetWords {
		return strings.Join(words, " ")
	}
	terms := snippetTerms(query)
	match := make([]int, len(words)) // index+1 into terms of the term a word matches, 0 for none
	for i, w := range words {
		match[i] = matchTerm(w, terms)
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

// snippetTerms are the query's words, lower-cased, without stop words unless nothing else is left.
func snippetTerms(query string) []string {
	var all, kept []string
	for _, w := range strings.FieldsFunc(strings.ToLower(query), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_'
	}) {
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

// matchTerm says which term a word of the text matches (index+1), 0 for none. A shared stem is
// enough ("indexes" matches "index", "creating" matches "create"), as in the search index.
func matchTerm(word string, terms []string) int {
	w := strings.ToLower(strings.TrimFunc(word, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' }))
	if w == "" {
		return 0
	}
	for i, t := range terms {
		if w == t || sharedStem(w, t) {
			return i + 1
		}
	}
	return 0
}

func sharedStem(a, b string) bool {
	n := min(len(a), len(b))
	if n < 4 {
		return false
	}
	stem := max(4, utf8.RuneCountInString(b)-2)
	if stem > len(a) || stem > len(b) {
		return false
	}
	return a[:stem] == b[:stem]
}

var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields("a an and are as at be but by for if in into is it no not of on or such that the their then there these they this to was will with") {
		m[w] = true
	}
	return m
}()
