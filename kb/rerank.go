package kb

import (
	"regexp"
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

// numbering matches the words of a heading that number it: "11.8.", "F.38.", "Chapter".
var numbering = regexp.MustCompile(`^(([0-9]+|[A-Z])\.)+([0-9]+\.?)?$|^(?i:chapter|appendix|part)$`)

// rerank raises the scores of passages whose headings name the query and re-sorts them, keeping
// the store's order among equals. Word matching shares the snippet's stemming.
func rerank(hits []panther.Hit, query string) {
	terms := snippetTerms(query)
	if len(terms) == 0 {
		return
	}
	changed := false
	for i := range hits {
		h := &hits[i]
		boost := 1.0
		if coversTerms(strings.Fields(h.Title+" "+h.Heading), terms) {
			boost *= 1 + headingBoost
		}
		own := h.Heading
		if j := strings.LastIndex(own, panther.HeadingSep); j >= 0 {
			own = own[j+len(panther.HeadingSep):]
		}
		if namesExactly(own, terms) || namesExactly(h.Title, terms) {
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

// coversTerms reports whether every term matches one of words.
func coversTerms(words, terms []string) bool {
	for i := range terms {
		if !slices.ContainsFunc(words, func(w string) bool { return matchTerm(w, terms[i:i+1]) != 0 }) {
			return false
		}
	}
	return true
}

// namesExactly reports whether a heading's words, without numbering and stop words, are the query's
// terms: each word matches a term and each term a word.
func namesExactly(heading string, terms []string) bool {
	var words []string
	for _, w := range strings.Fields(heading) {
		if numbering.MatchString(w) {
			continue
		}
		bare := strings.ToLower(strings.Trim(w, "().,:;`*\"'"))
		if bare == "" || stopWords[bare] {
			continue
		}
		words = append(words, bare)
	}
	if len(words) == 0 || !coversTerms(words, terms) {
		return false
	}
	for _, w := range words {
		if matchTerm(w, terms) == 0 {
			return false
		}
	}
	return true
}
