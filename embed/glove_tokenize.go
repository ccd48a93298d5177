package embed

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// gloveSegmentMaxRank bounds the words an unknown compound may be split into to the 60,000 most
// frequent: a split into two common words (table+space, auto+vacuum) is nearly always what the author
// meant, one into rare words (names, abbreviations) nearly always an accident of spelling.
const gloveSegmentMaxRank = 60000

// gloveWords calls emit with the vocabulary index of each word of text, in order. Words are found
// the way the search index finds them (sqlite.Terms): runs of letters, digits, marks and '_', with a
// '.', '-' or apostrophe kept between two of them. Each is looked up whole, lower-cased ("e-mail",
// "read-only", "postgresql"); one GloVe does not know is split at its joiners, underscores, camelCase
// and letter/digit boundaries (pg_dump → pg dump, HTTPServer → http server, int4 → int), and a part still
// unknown is split into two or three known words if it can be (autovacuum → auto vacuum). URLs and
// markdown link targets are skipped: their host and path words say where a page is, not what it means.
func gloveWords(t *gloveTable, text string, emit func(int32)) {
	z := gloveTokenizer{t: t, emit: emit, buf: make([]byte, 0, 64)}
	i := 0
	for i < len(text) {
		r, size := utf8.DecodeRuneInString(text[i:])
		if !gloveIsWordRune(r) {
			if r == ']' && strings.HasPrefix(text[i:], "](") {
				i = gloveURLEnd(text, i+2)
				continue
			}
			i += size
			continue
		}
		start := i
		i += size
		for i < len(text) {
			r, size := utf8.DecodeRuneInString(text[i:])
			if gloveIsWordRune(r) {
				i += size
				continue
			}
			if gloveIsJoiner(r) {
				if r2, size2 := utf8.DecodeRuneInString(text[i+size:]); gloveIsWordRune(r2) {
					i += size + size2
					continue
				}
			}
			break
		}
		tok := text[start:i]
		switch {
		case strings.HasPrefix(text[i:], "://"): // a scheme: http, https, ftp, postgresql, ...
			i = gloveURLEnd(text, i)
			continue
		case len(tok) > 4 && strings.EqualFold(tok[:4], "www."):
			i = gloveURLEnd(text, i)
			continue
		case strings.EqualFold(tok, "mailto") && strings.HasPrefix(text[i:], ":"):
			i = gloveURLEnd(text, i)
			continue
		}
		z.token(tok)
	}
}

func gloveIsWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsNumber(r) || unicode.Is(unicode.Mn, r)
}

func gloveIsJoiner(r rune) bool { return r == '.' || r == '-' || r == '\'' || r == '’' }

// gloveURLEnd returns where the URL (or markdown link target) starting at i ends: at white space or
// at a character that closes or quotes it in markdown or HTML.
func gloveURLEnd(text string, i int) int {
	for i < len(text) {
		switch c := text[i]; c {
		case ' ', '\t', '\n', '\r', '\f', '\v', ')', '<', '>', '"', '`', ']':
			return i
		}
		i++
	}
	return i
}

type gloveTokenizer struct {
	t    *gloveTable
	emit func(int32)
	buf  []byte // the lower-cased lookup key, reused so that lookups do not allocate
}

func (z *gloveTokenizer) token(tok string) {
	tok = strings.Trim(tok, "_") // markdown emphasis: _word_, __word__
	if tok == "" || z.lookup(tok) || z.clitic(tok) {
		return
	}
	z.parts(tok)
}

// lookup emits s if the vocabulary has it (lower-cased) and reports whether it did.
func (z *gloveTokenizer) lookup(s string) bool {
	z.buf = gloveLower(s, z.buf[:0])
	if idx, ok := z.t.index[string(z.buf)]; ok {
		z.emit(idx)
		return true
	}
	return false
}

// clitic handles English contractions, which GloVe's tokenizer split off ("do" "n't", "it" "'s") and
// which therefore are not in the vocabulary whole: the negation becomes "not", the other clitics
// (possessive 's, 're, 've, 'll, 'd, 'm) are dropped as the near-stop-words they are.
func (z *gloveTokenizer) clitic(tok string) bool {
	k := strings.LastIndexAny(tok, "'’")
	if k <= 0 {
		return false
	}
	stem := tok[:k]
	_, size := utf8.DecodeRuneInString(tok[k:])
	switch suffix := strings.ToLower(tok[k+size:]); suffix {
	case "t":
		if !strings.HasSuffix(stem, "n") && !strings.HasSuffix(stem, "N") {
			return false
		}
		stem = stem[:len(stem)-1]
		switch strings.ToLower(stem) {
		case "ca":
			stem = "can"
		case "wo":
			stem = "will"
		case "sha":
			stem = "shall"
		}
		if stem != "" {
			z.token(stem)
		}
		z.lookup("not")
		return true
	case "s", "re", "ve", "ll", "d", "m":
		z.token(stem)
		return true
	}
	return false
}

// parts splits an unknown token at joiners, underscores, camelCase humps and letter/digit boundaries
// and looks each part up; a token with no such boundary goes straight to compound splitting.
func (z *gloveTokenizer) parts(tok string) {
	const (
		other = iota
		lower
		upper
		digit
	)
	class := func(r rune) int {
		switch {
		case unicode.IsUpper(r):
			return upper
		case unicode.IsLower(r):
			return lower
		case unicode.IsDigit(r) || unicode.IsNumber(r):
			return digit
		}
		return other
	}
	start := 0
	prev := other
	split := false
	flush := func(end int) {
		if end > start {
			if p := tok[start:end]; !z.lookup(p) {
				z.segment()
			}
		}
	}
	for i, r := range tok {
		if r == '_' || gloveIsJoiner(r) {
			flush(i)
			start = i + utf8.RuneLen(r)
			prev = other
			split = true
			continue
		}
		c := class(r)
		cut := false
		switch {
		case c == other && unicode.Is(unicode.Mn, r):
			c = prev // a combining mark belongs to the letter before it
		case (c == digit) != (prev == digit) && prev != other && c != other:
			cut = true
		case prev == lower && c == upper:
			cut = true
		case prev == upper && c == lower && i > start:
			// HTTPServer: the hump starts at the last capital of a run.
			last, size := utf8.DecodeLastRuneInString(tok[:i])
			if i-size > start && unicode.IsUpper(last) {
				flush(i - size)
				start = i - size
				split = true
			}
		}
		if cut && i > start {
			flush(i)
			start = i
			split = true
		}
		prev = c
	}
	if !split {
		z.buf = gloveLower(tok, z.buf[:0])
		z.segment()
		return
	}
	flush(len(tok))
}

// segment splits the key in z.buf, an unknown word, into two or three frequent known words of at
// least three letters, preferring two, and among equals the split whose rarest word is most frequent
// (time+stamp over times+tamp). Only plain lower-case ASCII keys of 6 to 32 letters are tried: the
// vocabulary has nothing else to offer, and the cost stays bounded.
func (z *gloveTokenizer) segment() {
	key := z.buf
	n := len(key)
	if n < 6 || n > 32 {
		return
	}
	for _, c := range key {
		if c < 'a' || c > 'z' {
			return
		}
	}
	idx := z.t.index
	known := func(s []byte) (int32, int32, bool) {
		i, ok := idx[string(s)]
		if !ok || z.t.ranks[i] >= gloveSegmentMaxRank {
			return 0, 0, false
		}
		return i, z.t.ranks[i], true
	}
	best, bestRank := [3]int32{-1, -1, -1}, int32(-1)
	for j := 3; j <= n-3; j++ {
		a, ra, ok := known(key[:j])
		if !ok {
			continue
		}
		b, rb, ok := known(key[j:])
		if !ok {
			continue
		}
		if r := max(ra, rb); bestRank < 0 || r < bestRank {
			best, bestRank = [3]int32{a, b, -1}, r
		}
	}
	if bestRank < 0 {
		for i := 3; i <= n-6; i++ {
			a, ra, ok := known(key[:i])
			if !ok {
				continue
			}
			for j := i + 3; j <= n-3; j++ {
				b, rb, ok := known(key[i:j])
				if !ok {
					continue
				}
				c, rc, ok := known(key[j:])
				if !ok {
					continue
				}
				if r := max(ra, rb, rc); bestRank < 0 || r < bestRank {
					best, bestRank = [3]int32{a, b, c}, r
				}
			}
		}
	}
	for _, w := range best {
		if w >= 0 {
			z.emit(w)
		}
	}
}

// gloveLower appends s's lookup key to dst: lower case, the typographic apostrophe as ', and Latin
// letters with diacritics (precomposed or not) as their base letter, since the vocabulary is ASCII
// ("café" → "cafe").
func gloveLower(s string, dst []byte) []byte {
	n0 := len(dst)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return gloveLowerSlow(s, dst[:n0])
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func gloveLowerSlow(s string, dst []byte) []byte {
	for _, r := range s {
		r = unicode.ToLower(r)
		if r == '’' {
			r = '\''
		}
		if unicode.Is(unicode.Mn, r) {
			continue // decomposed accents: "cafe\u0301" is café, whose key is "cafe"
		}
		if r >= 0xC0 && r <= 0x17F {
			if f := gloveFold[r]; f != "" {
				dst = append(dst, f...)
				continue
			}
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// gloveFold maps the lower-case Latin-1 and Latin Extended-A letters to ASCII.
var gloveFold = func() map[rune]string {
	m := map[rune]string{'ß': "ss", 'æ': "ae", 'œ': "oe", 'ø': "o", 'ł': "l", 'đ': "d", 'ı': "i", 'ŀ': "l", 'ĳ': "ij"}
	for base, letters := range map[string]string{
		"a": "àáâãäåāăą", "c": "çćĉċč", "d": "ď", "e": "èéêëēĕėęě", "g": "ĝğġģ", "h": "ĥħ",
		"i": "ìíîïĩīĭį", "j": "ĵ", "k": "ķ", "l": "ĺļľ", "n": "ñńņňŉ", "o": "òóôõöōŏő",
		"r": "ŕŗř", "s": "śŝşš", "t": "ţťŧ", "u": "ùúûüũūŭůűų", "w": "ŵ", "y": "ýÿŷ", "z": "źżž",
	} {
		for _, r := range letters {
			m[r] = base
		}
	}
	return m
}()
