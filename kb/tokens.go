package kb

import (
	"sync"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer"
)

// cl100k is loaded once: building the codec decodes a 100k-entry vocabulary, and the codec is safe for
// concurrent use (its split regexp is, and the vocabulary is only read).
var cl100k = sync.OnceValues(func() (tokenizer.Codec, error) {
	return tokenizer.Get(tokenizer.Cl100kBase)
})

// countTokens is the exact cl100k_base count. Even with fastCount it is several times slower than
// estimateTokens, so it is only called on text that estimateTokens could not clear. If the codec cannot
// be had (it is compiled in, so this would be a broken build), every byte counts as a token: cl100k never
// makes a token of less than one byte, so the chunks stay within their limit, only smaller.
func countTokens(s string) int {
	if n, ok := fastCount(s); ok {
		return n
	}
	c, err := cl100k()
	if err != nil {
		return len(s)
	}
	n, err := c.Count(s)
	if err != nil {
		return len(s)
	}
	return n
}

// estimateTokens guesses the cl100k_base token count of s from one pass over its bytes, at a small
// fraction of the cost of tokenizing. It follows the pieces cl100k's pre-tokenizer cuts text into
// (letter runs with one leading space or mark, digit groups of three, punctuation runs, whitespace
// runs) and charges long words, punctuation and non-ASCII letters more, so that it errs on the high side:
// on the Go and PostgreSQL documentation it overestimates sections by 20-45% (median 30%), CJK text by
// 2.5x, and its worst case, long digit and hex runs, is 4% under; TestEstimateIsConservative checks
// that it never falls below the real count by more than the margin Chunk allows for.
func estimateTokens(s string) int {
	n := 0
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case isASCIILetter(c) || c >= utf8.RuneSelf:
			// A letter run; a word of up to 5 letters is one token, longer ones (identifiers, rare
			// words) are charged one more token per 5 letters. A non-ASCII rune is charged per byte
			// beyond the first: accented letters are usually split, and CJK runs take about one token
			// per character but rare characters take up to three.
			ascii, upper, extra := 0, 0, 0
			for i < len(s) {
				c = s[i]
				if isASCIILetter(c) {
					if c < 'a' {
						upper++
					}
					ascii++
					i++
					continue
				}
				if c < utf8.RuneSelf {
					break
				}
				r, size := utf8.DecodeRuneInString(s[i:])
				if r == utf8.RuneError && size == 1 {
					extra++ // invalid byte: a token of its own
				} else if !isLetterRune(r) {
					if ascii == 0 && extra == 0 {
						// Symbol or punctuation outside ASCII (arrows, dashes, emoji): charge every
						// byte, they are often split into byte tokens.
						extra += size
						i += size
					}
					break
				} else {
					extra += size - 1
				}
				ascii++
				i += size
			}
			per := 5
			if upper*2 > ascii && ascii > 4 {
				// Upper-case runs other than common keywords (hex, acronyms) split finer.
				per = 3
			}
			n += 1 + (ascii-1)/per + extra
		case c >= '0' && c <= '9':
			d := 0
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				d++
				i++
			}
			n += (d + 2) / 3
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			// Whitespace runs are one token (indentation of up to ~16 spaces has its own tokens), a
			// single space before a word or mark belongs to that piece.
			w := 0
			for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
				w++
				i++
			}
			if w == 1 && c == ' ' && i < len(s) && (s[i] < '0' || s[i] > '9') {
				continue
			}
			n += 1 + w/16
		default:
			// Punctuation run: markdown and code punctuation pairs ("](", "**", "()") are usually one
			// token, so charge one per two marks.
			p := 0
			for i < len(s) && isASCIIPunct(s[i]) {
				p++
				i++
			}
			if p == 0 {
				// A control character other than whitespace (found by FuzzChunk: "\x1a" looped here
				// for ever): a token of its own.
				i++
				p = 1
			}
			n += (p + 1) / 2
		}
	}
	return n
}

func isASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

func isASCIIPunct(c byte) bool {
	return c > ' ' && c < utf8.RuneSelf && !isASCIILetter(c) && (c < '0' || c > '9')
}

// isLetterRune is a cheap stand-in for unicode.IsLetter on non-ASCII runes: general punctuation,
// arrows, box drawing, dingbats, emoji and other symbol blocks are not letters; nearly everything else
// that documentation contains outside ASCII (Latin-1 letters, Greek, Cyrillic, CJK, Hangul) is.
func isLetterRune(r rune) bool {
	switch {
	case r < 0xC0: // Latin-1 punctuation and symbols (NBSP, ©, «, ·)
		return false
	case r == 0xD7 || r == 0xF7:
		return false
	case r >= 0x2000 && r <= 0x2BFF: // general punctuation .. misc symbols and arrows
		return false
	case r >= 0x3000 && r <= 0x303F: // CJK punctuation
		return false
	case r >= 0xFF00 && r <= 0xFF0F, r >= 0xFF1A && r <= 0xFF20: // fullwidth punctuation
		return false
	case r >= 0x1F000: // emoji and pictographs
		return false
	}
	return true
}
