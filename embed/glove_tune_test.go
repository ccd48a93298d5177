package embed

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// gloveTestCommonComponent recomputes what glovegen stores, independently written (no care for
// determinism), from the decoded table.
func gloveTestCommonComponent(t *gloveTable, a, zipfNorm, refLen float64) []float32 {
	d := t.dims
	total := 0.0
	for i := range t.words {
		total += 1 / (float64(t.ranks[i]+1) * zipfNorm)
	}
	mu := make([]float64, d)
	m := make([]float64, d*d)
	u := make([]float64, d)
	for i := range t.words {
		pw := 1 / (float64(t.ranks[i]+1) * zipfNorm)
		w := a / (a + pw)
		prob := pw / total
		for j := range d {
			u[j] = w * float64(t.scales[i]) * float64(int8(t.data[i*d+j]))
			mu[j] += prob * u[j]
		}
		for x := range d {
			for y := range d {
				m[x*d+y] += prob * u[x] * u[y]
			}
		}
	}
	for x := range d {
		for y := range d {
			m[x*d+y] = m[x*d+y]/refLen + (1-1/refLen)*mu[x]*mu[y]
		}
	}
	v := make([]float64, d)
	for i := range v {
		v[i] = 1
	}
	for range 500 {
		nv := make([]float64, d)
		n := 0.0
		for x := range d {
			for y := range d {
				nv[x] += m[x*d+y] * v[y]
			}
			n += nv[x] * nv[x]
		}
		for x := range d {
			v[x] = nv[x] / math.Sqrt(n)
		}
	}
	out := make([]float32, d)
	for i := range v {
		out[i] = float32(v[i])
	}
	return out
}

// gloveHeaderParams reads SIF's a, the Zipf normaliser and the reference sentence length from the file.
func gloveHeaderParams() (a, zipfNorm, refLen float64) {
	f := func(off int) float64 {
		return math.Float64frombits(binary.LittleEndian.Uint64([]byte(gloveFile[off : off+8])))
	}
	return f(20), f(28), f(36)
}

var gloveTagRE = regexp.MustCompile(`(?s)<[^>]*>`)
var gloveTitleRE = regexp.MustCompile(`(?s)<title>(.*?)</title>`)

// TestGloVeTune is the experiment behind the SIF parameters glovegen uses (-a 1e-3 -reflen 20): it
// ranks the PostgreSQL manual's pages by vector alone, for page titles (the page itself is relevant)
// and for the back-of-book index terms of bench/testdata (page level), and prints MRR@10 for several
// values of a, of the reference sentence length, and without removing the common component. It takes
// about a minute, so it runs only when PANTHER_GLOVE_TUNE is set. Measured (titles / book index):
//
//	a=1e-2 0.368/0.226, a=3e-3 0.376/0.232, a=1e-3 0.382/0.234, a=3e-4 0.379/0.236, a=1e-4 0.375/0.234
//	(refLen 20); refLen 1 or ∞ within ±0.008; without common-component removal (a=1e-3) 0.318/0.154.
func TestGloVeTune(t *testing.T) {
	if os.Getenv("PANTHER_GLOVE_TUNE") == "" {
		t.Skip("PANTHER_GLOVE_TUNE not set")
	}
	dir := os.Getenv("PANTHER_TEST_PGDOCS")
	if dir == "" {
		dir = "/usr/share/doc/postgresql-doc-15/html"
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.html"))
	if len(files) == 0 {
		t.Skip("no manual in " + dir)
	}
	var names, bodies, titles []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		s := string(b)
		title := ""
		if m := gloveTitleRE.FindStringSubmatch(s); m != nil {
			title = m[1]
		}
		s = gloveTitleRE.ReplaceAllString(s, " ")
		s = gloveTagRE.ReplaceAllString(s, " ")
		s = strings.Replace(s, title, " ", 1)
		names = append(names, filepath.Base(f))
		bodies = append(bodies, s)
		titles = append(titles, title)
	}
	type qrel struct {
		Query    string   `json:"query"`
		Relevant []string `json:"relevant"`
	}
	var qs []qrel
	qf, err := os.Open("../bench/testdata/pg15-bookindex.qrels.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer qf.Close()
	sc := bufio.NewScanner(qf)
	for sc.Scan() {
		var q qrel
		json.Unmarshal(sc.Bytes(), &q)
		qs = append(qs, q)
	}
	pos := map[string]int{}
	for i, n := range names {
		pos[n] = i
	}
	base, _ := gloveLoad()
	_, zipfNorm, _ := gloveHeaderParams()
	for _, a := range []float64{1e-2, 3e-3, 1e-3, 3e-4, 1e-4} {
		for _, refLen := range []float64{1, 20, 1e9} {
			for _, remove := range []bool{true, false} {
				if !remove && refLen != 20 {
					continue
				}
				tt := &gloveTable{dims: base.dims, words: base.words, index: base.index, ranks: base.ranks, scales: base.scales, data: base.data}
				tt.wscales = make([]float32, len(base.words))
				for i := range tt.wscales {
					p := 1 / (float64(base.ranks[i]+1) * zipfNorm)
					tt.wscales[i] = float32(a / (a + p) * float64(base.scales[i]))
				}
				tt.common = gloveTestCommonComponent(base, a, zipfNorm, refLen)
				if !remove {
					tt.common = make([]float32, base.dims)
				}
				docs := make([][]float32, len(bodies))
				for i, b := range bodies {
					docs[i] = make([]float32, 100)
					tt.embed(b, docs[i])
				}
				mrr := func(query string, rel map[int]bool) float64 {
					q := make([]float32, 100)
					tt.embed(query, q)
					type s struct {
						i int
						c float32
					}
					var ss []s
					for i, d := range docs {
						var c float32
						for j := range d {
							c += d[j] * q[j]
						}
						ss = append(ss, s{i, c})
					}
					sort.Slice(ss, func(x, y int) bool { return ss[x].c > ss[y].c })
					for r := 0; r < 10; r++ {
						if rel[ss[r].i] {
							return 1 / float64(r+1)
						}
					}
					return 0
				}
				var m1, m2 float64
				n1, n2 := 0, 0
				for i, ti := range titles {
					if ti == "" {
						continue
					}
					m1 += mrr(ti, map[int]bool{i: true})
					n1++
				}
				for _, q := range qs {
					rel := map[int]bool{}
					for _, r := range q.Relevant {
						p := strings.SplitN(r, "#", 2)[0]
						if i, ok := pos[p]; ok {
							rel[i] = true
						}
					}
					if len(rel) == 0 {
						continue
					}
					m2 += mrr(q.Query, rel)
					n2++
				}
				t.Logf("a=%g refLen=%g remove=%v  titles MRR@10 %.4f (%d)  bookindex MRR@10 %.4f (%d)\n", a, refLen, remove, m1/float64(n1), n1, m2/float64(n2), n2)
			}
		}
	}
}
