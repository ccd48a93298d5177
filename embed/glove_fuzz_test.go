package embed

import (
	"context"
	"math"
	"slices"
	"testing"
)

// FuzzGloVeEmbed checks the tokeniser and the pooling on arbitrary input: no panic, only valid
// vocabulary indices, finite vectors of length 1 (or 0 when no word is known), the same bits twice.
func FuzzGloVeEmbed(f *testing.F) {
	for _, s := range []string{
		"", "The quick brown fox", "pg_dump work_mem camelCase HTTPServer int4", "don't can't O'Brien’s",
		"[link](https://example.com/x_y) www.example.org mailto:x@y.z postgresql://u@h/db",
		"autovacuum tablespace superuser", "Café naïve ŉ ĳ", "日本語 Привет", "\xff\xfe invalid utf-8 \xc3",
		"a-'b _ __ ._. -x- ’’ ]( ](", "ABCdefGHI jkl123MNO", "](",
	} {
		f.Add(s)
	}
	g, err := NewGloVe()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		gloveWords(g.t, text, func(i int32) {
			if i < 0 || int(i) >= len(g.t.words) {
				t.Fatalf("index %d out of range", i)
			}
		})
		vs, err := g.Embed(context.Background(), []string{text, text})
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != 2 || len(vs[0]) != g.Dimensions() || !slices.Equal(vs[0], vs[1]) {
			t.Fatal("wrong shape or not deterministic")
		}
		var ss float64
		for _, x := range vs[0] {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("non-finite component in %v", vs[0])
			}
			ss += float64(x) * float64(x)
		}
		if ss != 0 && math.Abs(ss-1) > 1e-4 {
			t.Fatalf("squared length %v", ss)
		}
	})
}
