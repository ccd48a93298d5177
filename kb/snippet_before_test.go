package kb

import (
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"panther"
)

// The snippet and rerank code as it was before it was rewritten without regular expressions
// (BENCHMARKS.md, "Search cost"): the oracle the rewrite must agree with, byte for byte, and the
// "before" side of its benchmarks.

// markdownLinkBefore matches [text](target) and ![alt](target); snippets keep the text, not the target,
// which is noise when read as a line of a result list.
var markdownLinkBefore = regexp.MustCompile(`!?\[([^\]\n]*)\]\([^)\n]*\)`)

// snippetBefore is the window of a passage's words that holds the most distinct query words (then the
// most matches), with an ellipsis where the passage is cut. It is made in Go for the few hits that
// are returned, rather than by the store for every candidate it ranks: the store's snippets cost
// more than the ranking itself.
func snippetBefore(text, query string) string {
	text = markdownLinkBefore.ReplaceAllString(text, "$1")
	// Code fences are layout, not words.
	text = strings.ReplaceAll(text, "```", "")
	words := strings.Fields(text)
	if len(words) <= snippetWords {
		return strings.Join(words, " ")
	}
	terms := snippetTermsBefore(query)
	match := make([]int, len(words)) // index+1 into terms of the term a word matches, 0 for none
	for i, w := range words {
		match[i] = matchTermBefore(w, terms)
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

// snippetTermsBefore are the query's words, lower-cased, without stop words unless nothing else is left.
func snippetTermsBefore(query string) []string {
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

// matchTermBefore says which term a word of the text matches (index+1), 0 for none. A shared stem is
// enough ("indexes" matches "index", "creating" matches "create"), as in the search index.
func matchTermBefore(word string, terms []string) int {
	w := strings.ToLower(strings.TrimFunc(word, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' }))
	if w == "" {
		return 0
	}
	for i, t := range terms {
		if w == t || sharedStemBefore(w, t) {
			return i + 1
		}
	}
	return 0
}

func sharedStemBefore(a, b string) bool {
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

// numberingBefore matches the words of a heading that number it: "11.8.", "F.38.", "Chapter".
var numberingBefore = regexp.MustCompile(`^(([0-9]+|[A-Z])\.)+([0-9]+\.?)?$|^(?i:chapter|appendix|part)$`)

// rerankBefore raises the scores of passages whose headings name the query and re-sorts them, keeping
// the store's order among equals. Word matching shares the snippetBefore's stemming.
func rerankBefore(hits []panther.Hit, query string) {
	terms := snippetTermsBefore(query)
	if len(terms) == 0 {
		return
	}
	changed := false
	for i := range hits {
		h := &hits[i]
		boost := 1.0
		if coversTermsBefore(strings.Fields(h.Title+" "+h.Heading), terms) {
			boost *= 1 + headingBoost
		}
		own := h.Heading
		if j := strings.LastIndex(own, panther.HeadingSep); j >= 0 {
			own = own[j+len(panther.HeadingSep):]
		}
		if namesExactlyBefore(own, terms) || namesExactlyBefore(h.Title, terms) {
			boost *= 1 + exactHeadingBoost
		}
		if boost != 1 && h.Score > 0 {
			h.Score *= boost
			changed = true
		}
	}
	if changed {
		slices.SortStableFunc(hits, func(a, b panther.Hit) int {
			switch {
			case a.Score > b.Score:
				return -1
			case a.Score < b.Score:
				return 1
			}
			return 0
		})
	}
}

// coversTermsBefore reports whether every term matches one of words.
func coversTermsBefore(words, terms []string) bool {
	for i := range terms {
		if !slices.ContainsFunc(words, func(w string) bool { return matchTermBefore(w, terms[i:i+1]) != 0 }) {
			return false
		}
	}
	return true
}

// namesExactlyBefore reports whether a heading's words, without numberingBefore and stop words, are the query's
// terms: each word matches a term and each term a word.
func namesExactlyBefore(heading string, terms []string) bool {
	var words []string
	for _, w := range strings.Fields(heading) {
		if numberingBefore.MatchString(w) {
			continue
		}
		bare := strings.ToLower(strings.Trim(w, "().,:;`*\"'"))
		if bare == "" || stopWords[bare] {
			continue
		}
		words = append(words, bare)
	}
	if len(words) == 0 || !coversTermsBefore(words, terms) {
		return false
	}
	for _, w := range words {
		if matchTermBefore(w, terms) == 0 {
			return false
		}
	}
	return true
}
