package main

import (
	"strings"
	"unicode"
)

// tokens returns the lower-cased words of text (runs of letters, digits and underscores), stop
// words dropped, each lightly stemmed.
func tokens(text string) []string {
	var out []string
	f := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	for _, w := range f {
		if stopWords[w] {
			continue
		}
		out = append(out, stem(w))
	}
	return out
}

// stem strips a plural -s/-es/-ies and -ing/-ed from longer words; digits and identifiers with
// underscores are left alone.
func stem(w string) string {
	if strings.ContainsAny(w, "_0123456789") {
		return w
	}
	n := len(w)
	switch {
	case n > 4 && strings.HasSuffix(w, "ies"):
		return w[:n-3] + "y"
	case n > 4 && strings.HasSuffix(w, "sses"):
		return w[:n-2]
	case n > 4 && (strings.HasSuffix(w, "xes") || strings.HasSuffix(w, "ches") || strings.HasSuffix(w, "shes")):
		return w[:n-2]
	case n > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") && !strings.HasSuffix(w, "us") && !strings.HasSuffix(w, "is"):
		return w[:n-1]
	case n > 5 && strings.HasSuffix(w, "ing"):
		return w[:n-3]
	case n > 4 && strings.HasSuffix(w, "ed"):
		return w[:n-2]
	}
	return w
}

// stopWords is the list panther's lexical search drops (sqlite/search.go).
var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a about above after again against all am an and any are aren't as at
		be because been before being below between both but by can can't cannot could couldn't did didn't
		do does doesn't doing don't down during each few for from further had hadn't has hasn't have
		haven't having he he'd he'll he's her here here's hers herself him himself his how how's i i'd
		i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't my myself no nor
		not of off on once only or other ought our ours ourselves out over own same shan't she she'd
		she'll she's should shouldn't so some such than that that's the their theirs them themselves
		then there there's these they they'd they'll they're they've this those through to too under
		until up very was wasn't we we'd we'll we're we've were weren't what what's when when's where
		where's which while who who's whom why why's with won't would wouldn't you you'd you'll you're
		you've your yours yourself yourselves`) {
		if !strings.Contains(w, "'") {
			m[w] = true
		}
	}
	// Without apostrophes in words, "don't" splits into "don" and "t".
	for _, w := range strings.Fields("s t d ll m re ve don doesn didn isn aren wasn weren hasn haven hadn won wouldn shouldn couldn can mustn shan") {
		m[w] = true
	}
	return m
}()
