package kb

import (
	"slices"
	"strings"

	"panther"
)

// Boosts for passages whose headings name what was asked for. BM25 sees headings as a few more
// words; a reader sees "11.8. Partial Indexes" answer "partial index" outright. Measured on the
// PostgreSQL manual's book index (BENCHMARKS.md), together they raised page-level MRR@10 from 0.786 to
// 0.790 and section-level MRR@10 from 0.699 to 0.714; any value from 0.3 to 3 did about as well.
const (
	// headingBoost: every query word is in the page title or the passage's heading path.
	headingBoost = 0.5
	// exactHeadingBoost: the passage's own heading, or the page title, is the query: nothing more
	// than its words, numbering and stop words aside.
	exactHeadingBoost = 0.5
)

// rerank raises the scores of passages whose headings name the query and re-sorts them, keeping
// the store's order among equals. Word matching shares the snippet's stemming.
func rerank(hits []panther.Hit, query string) {
	terms := snippetTerms(query)
	if len(terms) == 0 {
		return
	}
	m := newMatcher(terms)
	covered := make([]bool, len(terms))
	changed := false
	for i := range hits {
		h := &hits[i]
		boost := 1.0
		clear(covered)
		if n := m.cover(h.Title, covered, 0); m.cover(h.Heading, covered, n) == len(terms) {
			boost *= 1 + headingBoost
		}
		own := h.Heading
		if j := strings.LastIndex(own, panther.HeadingSep); j >= 0 {
			own = own[j+len(panther.HeadingSep):]
		}
		if m.namesExactly(own, covered) || m.namesExactly(h.Title, covered) {
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

// cover marks the terms that a word of text matches, given that n of them are marked already, and
// returns how many are marked.
func (m *matcher) cover(text string, covered []bool, n int) int {
	for word := range strings.FieldsSeq(text) {
		if n == len(m.terms) {
			break
		}
		w, ok := m.normalize(word)
		if !ok {
			continue
		}
		for i := range m.terms {
			if !covered[i] && m.matches(w, i) {
				covered[i] = true
				n++
			}
		}
	}
	return n
}

// namesExactly reports whether a heading's words, without numbering and stop words, are the query's
// terms: each word matches a term and each term a word. covered is scratch space, one per term.
func (m *matcher) namesExactly(heading string, covered []bool) bool {
	clear(covered)
	n, words := 0, 0
	for w := range strings.FieldsSeq(heading) {
		if isNumbering(w) {
			continue
		}
		bare := strings.Trim(w, "().,:;`*\"'")
		if bare == "" || stopWords[strings.ToLower(bare)] {
			continue
		}
		words++
		// Every word must match some term: the first it matches is enough to know.
		if m.match(bare) == 0 {
			return false
		}
		n = m.cover(bare, covered, n)
	}
	return words > 0 && n == len(m.terms)
}

// isNumbering reports whether a word of a heading numbers it: "11.8.", "F.38.", "3.1", "Chapter",
// "appendix", "Part". That is, one or more groups of digits or a single capital letter, each ended
// by a period, then optionally digits; or one of the three words in any case.
func isNumbering(w string) bool {
	if strings.EqualFold(w, "chapter") || strings.EqualFold(w, "appendix") || strings.EqualFold(w, "part") {
		return true
	}
	groups := 0
	i := 0
	for i < len(w) {
		j := i
		for j < len(w) && '0' <= w[j] && w[j] <= '9' {
			j++
		}
		digits := j > i
		if !digits && 'A' <= w[j] && w[j] <= 'Z' {
			j++
		}
		switch {
		case j == i:
			return false
		case j == len(w):
			// A last group without its period must be digits, after at least one full group.
			return digits && groups > 0
		case w[j] != '.':
			return false
		}
		groups++
		i = j + 1
	}
	return groups > 0
}
