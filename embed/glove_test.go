package embed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestGloVe(t testing.TB) *GloVe {
	t.Helper()
	g, err := NewGloVe()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func gloveEmbedOne(t testing.TB, g *GloVe, text string) []float32 {
	t.Helper()
	v, err := g.Embed(context.Background(), []string{text})
	if err != nil {
		t.Fatal(err)
	}
	return v[0]
}

func gloveCos(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return dot / math.Sqrt(na*nb)
}

func gloveNorm(v []float32) float64 {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	return math.Sqrt(ss)
}

func TestGloVeLoad(t *testing.T) {
	g := newTestGloVe(t)
	tb := g.t
	if g.Dimensions() != 100 || tb.dims != 100 {
		t.Errorf("Dimensions() = %d, want 100", g.Dimensions())
	}
	if g.Model() != GloVeModel || !strings.HasPrefix(GloVeModel, "builtin:glove-sif-100d@") {
		t.Errorf("Model() = %q", g.Model())
	}
	if n := len(tb.words); n != 130000 {
		t.Errorf("%d words, want 130000", n)
	}
	if tb.words[0] != "the" || tb.ranks[0] != 0 {
		t.Errorf("first word %q rank %d, want the most frequent, \"the\"", tb.words[0], tb.ranks[0])
	}
	for i, w := range tb.words {
		if tb.index[w] != int32(i) {
			t.Fatalf("index[%q] = %d, want %d", w, tb.index[w], i)
		}
		if i > 0 && tb.ranks[i] <= tb.ranks[i-1] {
			t.Fatalf("ranks not increasing at %d", i)
		}
	}
	if n := gloveNorm(tb.common); math.Abs(n-1) > 1e-5 {
		t.Errorf("common component has length %v, want 1", n)
	}
	if len(tb.data) != len(tb.words)*tb.dims {
		t.Errorf("data is %d bytes for %d words", len(tb.data), len(tb.words))
	}
}

// TestGloVeModelPinned ties GloVeModel to the data file and the pooling: vectors stored under one model
// name must never silently change meaning. When this fails because the file or the pooling was changed
// on purpose, bump the version in GloVeModel and update the constants here.
func TestGloVeModelPinned(t *testing.T) {
	const (
		wantModel = "builtin:glove-sif-100d@1"
		wantCRC   = 0x2144df1c
	)
	if GloVeModel != wantModel {
		t.Fatalf("GloVeModel = %q: update wantModel, wantCRC and wantHead together", GloVeModel)
	}
	if got := gloveCRC(gloveFile); got != wantCRC {
		// The CRC of the whole file including its own trailing CRC: any byte changed changes it.
		t.Errorf("data file CRC %#x, want %#x: the data file changed, bump the version in GloVeModel", got, uint32(wantCRC))
	}
	wantHead := []float32{-0.01807083, 0.09660037, -0.0642659, 0.10917815, 0.05163335, -0.047517736}
	v := gloveEmbedOne(t, newTestGloVe(t), "Create an index on the work_mem setting; don't VACUUM tablespaces.")
	for i, w := range wantHead {
		if math.Abs(float64(v[i]-w)) > 1e-6 {
			t.Fatalf("embedding starts %v, want %v: the pooling or the tokeniser changed, bump the version in GloVeModel", v[:len(wantHead)], wantHead)
		}
	}
}

func TestGloVeCommonComponentMatchesFile(t *testing.T) {
	g := newTestGloVe(t)
	a, zipfNorm, refLen := gloveHeaderParams()
	if a != 1e-3 || refLen != 20 {
		t.Errorf("file made with a=%v refLen=%v, tuned values are 1e-3 and 20", a, refLen)
	}
	c := gloveTestCommonComponent(g.t, a, zipfNorm, refLen)
	if cos := gloveCos(c, g.t.common); math.Abs(cos) < 0.9999 {
		t.Errorf("recomputed common component has cosine %v with the stored one", cos)
	}
}

func TestGloVeTokens(t *testing.T) {
	g := newTestGloVe(t)
	tests := []struct {
		name, text, want string
	}{
		{"plain", "The quick brown fox", "the quick brown fox"},
		{"case", "PostgreSQL VACUUM", "postgresql vacuum"},
		{"snake case", "pg_dump work_mem", "pg dump work mem"},
		{"camel case", "camelCase HTTPServer getHTTPResponse", "camel case http server get http response"},
		{"letters and digits", "int4 float8", "int float"},
		{"whole before parts", "e-mail read-only", "e-mail read-only"},
		{"dotted", "pg_catalog.pg_class postgresql.conf", "pg catalog pg class postgresql"},
		{"compounds", "autovacuum tablespace subquery", "auto vacuum table space sub query"},
		{"no junk compounds", "hstore jsonb libpq", ""},
		{"contractions", "don't can't won't it's users' they're", "do not can not will not it users they"},
		{"typographic apostrophe", "doesn’t", "does not"},
		{"diacritics", "Café Naïve", "cafe naive"},
		{"combining marks", "Cafe\u0301 nai\u0308ve", "cafe naive"},
		{"markdown", "## Heading\n**bold** _emphasis_ __strong__ `code` > quote\n| a | b |\n|---|---|", "heading bold emphasis strong code quote"},
		{"markdown link", "see [the manual](https://www.postgresql.org/docs/15/index.html) or [that](sql-select.html#x)", "see the manual or that"},
		{"bare URLs", "visit https://example.com/path_with/words?q=table or www.example.org/index now", "visit or now"},
		{"other schemes", "postgresql://user@host/db mailto:someone@example.com", ""},
		{"numbers", "42 3.14 1,000", ""},
		{"non-English", "日本語 Привет", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			gloveWords(g.t, tt.text, func(i int32) { got = append(got, g.t.words[i]) })
			if s := strings.Join(got, " "); s != tt.want {
				t.Errorf("gloveWords(%q) = %q, want %q", tt.text, s, tt.want)
			}
		})
	}
}

func TestGloVeSemantics(t *testing.T) {
	g := newTestGloVe(t)
	tests := []struct {
		text, near, far string
	}{
		{"car", "automobile", "banana"},
		{"create an index on a table", "build an index for a relation", "the weather is sunny"},
		{"How do I back up my database?", "pg_dump dumps a database into a script file", "The planner estimates the cost of each join"},
		{"vacuum reclaims storage occupied by dead tuples", "autovacuum removes dead rows to free space", "SSL certificates protect client connections"},
		{"lock waits and deadlocks", "a transaction blocked by another transaction's lock", "floating point rounding of numeric types"},
		{"user password authentication", "clients log in with a password", "the sum of the values in a column"},
	}
	for _, tt := range tests {
		v := gloveEmbedOne(t, g, tt.text)
		near, far := gloveCos(v, gloveEmbedOne(t, g, tt.near)), gloveCos(v, gloveEmbedOne(t, g, tt.far))
		t.Logf("cos(%q, %q) = %.3f, with %q %.3f", tt.text, tt.near, near, tt.far, far)
		if near <= far {
			t.Errorf("cos(%q, %q) = %.3f is not above cos with %q = %.3f", tt.text, tt.near, near, tt.far, far)
		}
	}
}

func TestGloVeEmbedBatch(t *testing.T) {
	g := newTestGloVe(t)
	ctx := context.Background()
	texts := []string{"alpha particles", "", "the database server", "42", "Привет", "café au lait", "the database server"}
	vs, err := g.Embed(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != len(texts) {
		t.Fatalf("%d vectors for %d texts", len(vs), len(texts))
	}
	for i, v := range vs {
		if len(v) != 100 {
			t.Fatalf("vector %d has %d dimensions", i, len(v))
		}
		n := gloveNorm(v)
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("vector %d (%q) is not finite", i, texts[i])
			}
		}
		// No known word → the zero vector; anything else → unit length.
		zero := texts[i] == "" || texts[i] == "42" || texts[i] == "Привет"
		if zero && n != 0 || !zero && math.Abs(n-1) > 1e-5 {
			t.Errorf("vector %d (%q) has length %v", i, texts[i], n)
		}
		// Order: each vector is the one its text gets alone, bit for bit.
		if !slices.Equal(v, gloveEmbedOne(t, g, texts[i])) {
			t.Errorf("vector %d (%q) differs from the text embedded alone", i, texts[i])
		}
	}
	// Appending to one vector must not write into the next.
	_ = append(vs[0], 1)
	if !slices.Equal(vs[1], make([]float32, 100)) {
		t.Error("append to one vector changed the next")
	}
	if vs, err := g.Embed(ctx, nil); err != nil || len(vs) != 0 {
		t.Errorf("Embed(nil) = %v, %v", vs, err)
	}
}

func TestGloVeContext(t *testing.T) {
	g := newTestGloVe(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.Embed(ctx, []string{"x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Embed with a cancelled context: %v", err)
	}
}

func TestGloVeConcurrent(t *testing.T) {
	g := newTestGloVe(t)
	texts := make([]string, 50)
	for i := range texts {
		texts[i] = fmt.Sprintf("passage %d about indexes, vacuum and the write-ahead log of table t%d", i, i)
	}
	want, err := g.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			g2 := newTestGloVe(t) // a second instance shares the decoded table
			for range 5 {
				got, err := g2.Embed(context.Background(), texts)
				if err != nil {
					t.Error(err)
					return
				}
				for i := range got {
					if !slices.Equal(got[i], want[i]) {
						t.Errorf("text %d: concurrent result differs", i)
						return
					}
				}
			}
			g2.Similar("index", 3)
		})
	}
	wg.Wait()
}

func TestGloVeSimilar(t *testing.T) {
	g := newTestGloVe(t)
	got := g.Similar("Car", 10)
	if len(got) != 10 || slices.Contains(got, "car") || !slices.Contains(got, "vehicle") {
		t.Errorf("Similar(car) = %v", got)
	}
	if got := g.Similar("query", 3); !slices.Contains(got, "queries") {
		t.Errorf("Similar(query) = %v", got)
	}
	if got := g.Similar("xyzzyplugh", 5); got != nil {
		t.Errorf("Similar(unknown) = %v", got)
	}
	if got := g.Similar("car", 0); got != nil {
		t.Errorf("Similar(car, 0) = %v", got)
	}
}

func TestGloVeDamagedFile(t *testing.T) {
	good := gloveFile
	tests := map[string]string{
		"empty":        "",
		"short":        good[:10],
		"truncated":    good[:len(good)/2],
		"no magic":     "X" + good[1:],
		"flipped byte": good[:5000] + string(good[5000]^1) + good[5001:],
		"extra byte":   good + "x",
	}
	for name, f := range tests {
		if _, err := gloveDecode(f); !errors.Is(err, errGloVeData) {
			t.Errorf("%s: gloveDecode = %v, want errGloVeData", name, err)
		}
	}
}

// TestGloVeLoadCost logs what the first NewGloVe costs; the process-wide figures (RSS) are in the
// report of the change that added this embedder, measured with a separate binary.
func TestGloVeLoadCost(t *testing.T) {
	start := time.Now()
	tb, err := gloveDecode(gloveFile)
	if err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	t.Logf("decoded %d words in %v", len(tb.words), d)
	if d > 5*time.Second { // generous: only catches a pathological regression, not a slow CI machine
		t.Errorf("decoding took %v", d)
	}
}

// TestGloVeQuantisation compares the dequantised vectors with the package's originals. It needs the
// JSON, which is not committed: scripts/fetch-glove.sh KEEP=1 leaves it in place and prints the path
// to set in PANTHER_GLOVE_JSON.
func TestGloVeQuantisation(t *testing.T) {
	path := os.Getenv("PANTHER_GLOVE_JSON")
	if path == "" {
		t.Skip("PANTHER_GLOVE_JSON not set")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		Vectors map[string][]float64 `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &pkg); err != nil {
		t.Fatal(err)
	}
	g := newTestGloVe(t)
	tb := g.t
	worst := 1.0
	for i := 0; i < len(tb.words); i += 97 {
		orig := pkg.Vectors[tb.words[i]]
		if len(orig) != tb.dims+2 || int(orig[tb.dims+1]) != int(tb.ranks[i]) {
			t.Fatalf("%q: not in the JSON at rank %d", tb.words[i], tb.ranks[i])
		}
		o := make([]float32, tb.dims)
		q := make([]float32, tb.dims)
		for j := range o {
			o[j] = float32(orig[j])
			q[j] = tb.scales[i] * float32(int8(tb.data[i*tb.dims+j]))
			if e := math.Abs(float64(o[j] - q[j])); e > float64(tb.scales[i])*0.5001 {
				t.Fatalf("%q[%d]: error %v beyond half a step (%v)", tb.words[i], j, e, tb.scales[i]/2)
			}
		}
		worst = min(worst, gloveCos(o, q))
	}
	t.Logf("worst cosine between an original and its dequantised vector: %.6f", worst)
	if worst < 0.999 {
		t.Errorf("worst cosine %v", worst)
	}
}

// TestGloVeSingleWord recomputes one word's embedding by the definition, independently of the pooling
// loop: its dequantised vector minus the common component, normalised.
func TestGloVeSingleWord(t *testing.T) {
	g := newTestGloVe(t)
	for _, w := range []string{"database", "the", "vacuum", "zebra"} {
		i := g.t.index[w]
		want := make([]float32, g.t.dims)
		var dot float64
		for j := range want {
			want[j] = g.t.scales[i] * float32(int8(g.t.data[int(i)*g.t.dims+j]))
			dot += float64(want[j]) * float64(g.t.common[j])
		}
		for j := range want {
			want[j] -= float32(dot) * g.t.common[j]
		}
		if cos := gloveCos(gloveEmbedOne(t, g, w), want); cos < 0.99999 {
			t.Errorf("%q: cosine %v with its own vector", w, cos)
		}
	}
}
