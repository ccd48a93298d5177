package kb

import (
	"math"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer"
)

// The tokenizer package counts tokens at about 10 MB/s: its pre-tokenizer is a backtracking regexp run
// over a []rune copy of the input, and it allocates for every piece. Chunking a documentation page
// needs the count of most of its bytes, which at that speed alone would cost close to 1 ms a page. So
// kb counts cl100k_base tokens itself: the same pre-tokenizer pattern hand-written over the bytes and
// the same byte-pair merges, with ranks read out of the package's codec (cl100k's rank of a token is its
// id). TestFastCountMatchesTokenizer and FuzzFastCount check it against the package.

// cl100kRanks maps every cl100k_base token to its rank, rebuilt once by decoding each id.
var cl100kRanks = sync.OnceValues(func() (map[string]uint32, error) {
	c, err := tokenizer.Get(tokenizer.Cl100kBase)
	if err != nil {
		return nil, err
	}
	const vocabSize = 100256 // ids 0..100255; the special tokens above are never produced by Count
	ranks := make(map[string]uint32, vocabSize)
	id := []uint{0}
	for i := range uint(vocabSize) {
		id[0] = i
		s, err := c.Decode(id)
		if err != nil {
			continue // a hole in the id space
		}
		ranks[s] = uint32(i)
	}
	return ranks, nil
})

// maxScanPiece is the longest piece merged here; longer ones (long runs of letters or spaces) go to
// the package, whose heap-based merge is O(n log n) where this scan is O(n²).
const maxScanPiece = 256

// fastCount returns the cl100k_base token count of s, exactly as the tokenizer package's Count does.
// ok is false when it cannot (the vocabulary failed to load, or s is not valid UTF-8, which the
// package's pre-tokenizer turns into U+FFFD first).
func fastCount(s string) (n int, ok bool) {
	ranks, err := cl100kRanks()
	if err != nil || !utf8.ValidString(s) {
		return 0, false
	}
	for i := 0; i < len(s); {
		if s[i] == del {
			i++
			continue
		}
		end := nextPiece(s, i)
		piece := s[i:end]
		i = end
		if _, whole := ranks[piece]; whole {
			n++
			continue
		}
		if len(piece) > maxScanPiece {
			m, err := libraryCount(piece)
			if err != nil {
				return 0, false
			}
			n += m
			continue
		}
		n += bpeCount(ranks, piece)
	}
	return n, true
}

func libraryCount(s string) (int, error) {
	c, err := cl100k()
	if err != nil {
		return 0, err
	}
	return c.Count(s)
}

// bpeCount merges the piece's bytes pairwise, lowest rank first, until no adjacent pair forms a token,
// and returns how many tokens remain.
func bpeCount(ranks map[string]uint32, piece string) int {
	var buf [maxScanPiece + 1]struct {
		off  int
		rank uint32
	}
	parts := buf[:len(piece)+1]
	for i := range parts {
		parts[i].off = i
		parts[i].rank = math.MaxUint32
	}
	rankAt := func(i int) uint32 {
		if i+2 < len(parts) {
			if r, ok := ranks[piece[parts[i].off:parts[i+2].off]]; ok {
				return r
			}
		}
		return math.MaxUint32
	}
	for i := 0; i < len(parts)-2; i++ {
		parts[i].rank = rankAt(i)
	}
	for len(parts) > 1 {
		minRank, minIdx := uint32(math.MaxUint32), 0
		for i := 0; i < len(parts)-1; i++ {
			if parts[i].rank < minRank {
				minRank, minIdx = parts[i].rank, i
			}
		}
		if minRank == math.MaxUint32 {
			break
		}
		parts = append(parts[:minIdx+1], parts[minIdx+2:]...)
		parts[minIdx].rank = rankAt(minIdx)
		if minIdx > 0 {
			parts[minIdx-1].rank = rankAt(minIdx - 1)
		}
	}
	return len(parts) - 1
}

// nextPiece returns the end of the pre-tokenizer piece starting at i. It follows cl100k_base's pattern
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// alternative by alternative, first match wins, with \s as unicode.IsSpace (as in regexp2).
func nextPiece(s string, i int) int {
	r, size := utf8.DecodeRuneInString(s[i:])
	// 's 't 're 've 'm 'll 'd, any case.
	if r == '\'' && i+1 < len(s) {
		switch s[i+1] | 0x20 {
		case 's', 't', 'm', 'd':
			return i + 2
		}
		if i+2 < len(s) {
			a, b := s[i+1]|0x20, s[i+2]|0x20
			if a == 'r' && b == 'e' || a == 'v' && b == 'e' || a == 'l' && b == 'l' {
				return i + 3
			}
		}
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if isL(r) {
		return letterRun(s, i+size)
	}
	if r != '\r' && r != '\n' && r != del && !isN(r) && i+size < len(s) {
		if r2, _ := utf8.DecodeRuneInString(s[i+size:]); isL(r2) {
			return letterRun(s, i+size)
		}
	}
	// \p{N}{1,3}
	if isN(r) {
		j := i + size
		for k := 1; k < 3 && j < len(s); k++ {
			r2, sz := utf8.DecodeRuneInString(s[j:])
			if !isN(r2) {
				break
			}
			j += sz
		}
		return j
	}
	//  ?[^\s\p{L}\p{N}]+[\r\n]*
	j := i
	if r == ' ' {
		j += size
	}
	if j < len(s) {
		if r2, _ := utf8.DecodeRuneInString(s[j:]); isPunct(r2) {
			for j < len(s) {
				r2, sz := utf8.DecodeRuneInString(s[j:])
				if !isPunct(r2) {
					break
				}
				j += sz
			}
			for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
				j++
			}
			return j
		}
	}
	// What is left starts with white space. The package's regexp2 matches \s*[\r\n]+ as if \s* could
	// not take a newline ("\n \n" is "\n", " \n"): blanks up to the first newline, then the newlines.
	j = i
	lastStart := i
	runes := 0
	for j < len(s) {
		r2, sz := utf8.DecodeRuneInString(s[j:])
		if r2 == '\r' || r2 == '\n' {
			for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
				j++
			}
			return j
		}
		if !unicode.IsSpace(r2) {
			break
		}
		lastStart = j
		j += sz
		runes++
	}
	// \s+(?!\S): the whole run at the end of the text, else all but its last character; \s+ for one.
	if j == len(s) || runes == 1 {
		return j
	}
	return lastStart
}

func letterRun(s string, j int) int {
	for j < len(s) {
		c := s[j]
		if c < utf8.RuneSelf {
			if !isASCIILetter(c) {
				return j
			}
			j++
			continue
		}
		r, sz := utf8.DecodeRuneInString(s[j:])
		if !unicode.IsLetter(r) {
			return j
		}
		j += sz
	}
	return j
}

func isL(r rune) bool {
	if r < utf8.RuneSelf {
		return isASCIILetter(byte(r))
	}
	return unicode.IsLetter(r)
}

func isN(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= '0' && r <= '9'
	}
	return unicode.IsNumber(r)
}

func isPunct(r rune) bool { return r != del && !unicode.IsSpace(r) && !isL(r) && !isN(r) }

// del (U+007F) is matched by no alternative of the pattern as regexp2 compiles it, so the package
// drops it without a token; fastCount does the same to agree with it.
const del = 0x7f
