package storetest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"panther"
)

// runVectors checks a store's VectorIndex, when it has one.
func runVectors(t *testing.T, open func(t *testing.T) panther.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s panther.Store, v panther.VectorIndex)
	}{
		{"BruteForce", testVectorsBruteForce},
		{"Lifecycle", testVectorsLifecycle},
		{"Invalid", testVectorsInvalid},
	}
	for _, tc := range tests {
		t.Run("Vectors"+tc.name, func(t *testing.T) {
			s := open(t)
			v, ok := s.(panther.VectorIndex)
			if !ok {
				t.Skip("the store keeps no vectors")
			}
			tc.fn(t, s, v)
		})
	}
}

const testModel = "test:random-16"

func randomUnit(r *rand.Rand, dims int) []float32 {
	v := make([]float32, dims)
	var sum float64
	for i := range v {
		v[i] = float32(r.NormFloat64())
		sum += float64(v[i]) * float64(v[i])
	}
	for i := range v {
		v[i] /= float32(math.Sqrt(sum))
	}
	return v
}

func cosine(a, b []float32) float64 {
	var d, na, nb float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return d / math.Sqrt(na*nb)
}

// testVectorsBruteForce compares the store's ranking with a brute-force one over 40 pages × 5 chunks.
func testVectorsBruteForce(t *testing.T, s panther.Store, v panther.VectorIndex) {
	r := rand.New(rand.NewPCG(7, 11))
	const dims = 16
	want := map[int64][]float32{}
	for p := range 40 {
		put(t, s, doc(fmt.Sprintf("https://v.example/%d", p), fmt.Sprintf("Page %d", p), 0), chunksOf("a", "b", "c", "d", "e"))
	}
	todo, err := v.ChunksToEmbed(ctx(t), testModel, 1000)
	if err != nil || len(todo) != 200 {
		t.Fatalf("ChunksToEmbed: %d chunks, %v; want 200", len(todo), err)
	}
	var batch []panther.ChunkVector
	for _, c := range todo {
		vec := randomUnit(r, dims)
		// Scale some vectors: cosine must not care about length.
		if c.ID%3 == 0 {
			for i := range vec {
				vec[i] *= 7
			}
		}
		want[c.ID] = vec
		batch = append(batch, panther.ChunkVector{ChunkID: c.ID, Vector: vec})
	}
	if err := v.PutVectors(ctx(t), testModel, batch); err != nil {
		t.Fatal(err)
	}
	for q := range 10 {
		query := randomUnit(r, dims)
		hits, err := v.SearchVectors(ctx(t), testModel, query, 10, panther.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		type pair struct {
			id  int64
			sim float64
		}
		var all []pair
		for id, vec := range want {
			all = append(all, pair{id, cosine(vec, query)})
		}
		slices.SortFunc(all, func(a, b pair) int {
			if a.sim > b.sim {
				return -1
			}
			return 1
		})
		if len(hits) != 10 {
			t.Fatalf("query %d: %d hits, want 10", q, len(hits))
		}
		for i, h := range hits {
			if h.ChunkID != all[i].id || math.Abs(h.Score-all[i].sim) > 1e-4 {
				t.Fatalf("query %d rank %d: chunk %d score %.5f, brute force chunk %d %.5f", q, i, h.ChunkID, h.Score, all[i].id, all[i].sim)
			}
			if h.URL == "" || h.Anchor == "" || h.FetchedAt.IsZero() {
				t.Errorf("hit without its citation: %+v", h)
			}
		}
	}
}

// testVectorsLifecycle: coverage, replaced and gone pages, and a second model kept apart.
func testVectorsLifecycle(t *testing.T, s panther.Store, v panther.VectorIndex) {
	r := rand.New(rand.NewPCG(3, 5))
	d := doc("https://v.example/life", "Life", 0)
	put(t, s, d, chunksOf("one", "two"))
	put(t, s, doc("https://v.example/nav", "Nav", 0), []panther.Chunk{{Text: "links", Navigation: true}})
	if with, all, err := v.VectorCoverage(ctx(t), testModel); err != nil || with != 0 || all != 2 {
		t.Fatalf("coverage before: %d of %d, %v; want 0 of 2 (navigation chunks are not searchable)", with, all, err)
	}
	embedAll := func(model string) int {
		todo, err := v.ChunksToEmbed(ctx(t), model, 100)
		if err != nil {
			t.Fatal(err)
		}
		var batch []panther.ChunkVector
		for _, c := range todo {
			batch = append(batch, panther.ChunkVector{ChunkID: c.ID, Vector: randomUnit(r, 16)})
		}
		if err := v.PutVectors(ctx(t), model, batch); err != nil {
			t.Fatal(err)
		}
		return len(todo)
	}
	if n := embedAll(testModel); n != 2 {
		t.Fatalf("embedded %d chunks, want 2", n)
	}
	if with, all, _ := v.VectorCoverage(ctx(t), testModel); with != 2 || all != 2 {
		t.Fatalf("coverage after: %d of %d", with, all)
	}
	if with, _, _ := v.VectorCoverage(ctx(t), "test:other"); with != 0 {
		t.Fatalf("another model's coverage is %d, want 0", with)
	}
	// A changed page has new chunks, which need vectors again; the old ones went with their chunks.
	d.ContentHash = "changed"
	put(t, s, d, chunksOf("one", "two", "three"))
	if with, all, _ := v.VectorCoverage(ctx(t), testModel); with != 0 || all != 3 {
		t.Fatalf("coverage after a change: %d of %d, want 0 of 3", with, all)
	}
	if n := embedAll(testModel); n != 3 {
		t.Fatalf("embedded %d chunks after the change, want 3", n)
	}
	hits, err := v.SearchVectors(ctx(t), testModel, randomUnit(r, 16), 10, panther.Filter{})
	if err != nil || len(hits) != 3 {
		t.Fatalf("search: %d hits, %v; want 3", len(hits), err)
	}
	if err := s.MarkGone(ctx(t), d.URL, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if hits, err := v.SearchVectors(ctx(t), testModel, randomUnit(r, 16), 10, panther.Filter{}); err != nil || len(hits) != 0 {
		t.Fatalf("a gone page's chunks are still found: %d hits, %v", len(hits), err)
	}
	if hits, err := v.SearchVectors(ctx(t), "test:never-used", randomUnit(r, 16), 10, panther.Filter{}); err != nil || len(hits) != 0 {
		t.Fatalf("a model without vectors: %d hits, %v", len(hits), err)
	}
}

func testVectorsInvalid(t *testing.T, s panther.Store, v panther.VectorIndex) {
	put(t, s, doc("https://v.example/inv", "Inv", 0), chunksOf("x"))
	todo, err := v.ChunksToEmbed(ctx(t), testModel, 10)
	if err != nil || len(todo) != 1 {
		t.Fatal(todo, err)
	}
	id := todo[0].ID
	tests := []struct {
		name  string
		model string
		vecs  []panther.ChunkVector
	}{
		{"empty model", "", []panther.ChunkVector{{ChunkID: id, Vector: []float32{1, 0}}}},
		{"zero dimensions", testModel, []panther.ChunkVector{{ChunkID: id, Vector: nil}}},
		{"mixed dimensions", testModel, []panther.ChunkVector{{ChunkID: id, Vector: []float32{1, 0}}, {ChunkID: id, Vector: []float32{1, 0, 0}}}},
		{"NaN", testModel, []panther.ChunkVector{{ChunkID: id, Vector: []float32{float32(math.NaN()), 0}}}},
	}
	for _, tt := range tests {
		if err := v.PutVectors(ctx(t), tt.model, tt.vecs); !errors.Is(err, panther.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tt.name, err)
		}
	}
	if err := v.PutVectors(ctx(t), testModel, []panther.ChunkVector{{ChunkID: id, Vector: []float32{1, 0}}, {ChunkID: 987654, Vector: []float32{0, 1}}}); err != nil {
		t.Fatalf("a vector for a chunk that is gone must be skipped, not fail the batch: %v", err)
	}
	if _, err := v.SearchVectors(ctx(t), testModel, []float32{1, 0, 0}, 5, panther.Filter{}); !errors.Is(err, panther.ErrInvalid) {
		t.Errorf("query of the wrong length: %v, want ErrInvalid", err)
	}
	if _, err := v.SearchVectors(ctx(t), testModel, []float32{1, 0}, 0, panther.Filter{}); !errors.Is(err, panther.ErrInvalid) {
		t.Errorf("k 0: %v, want ErrInvalid", err)
	}
}

// testSearchFilter checks that both kinds of search honour a filter.
func testSearchFilter(t *testing.T, s panther.Store) {
	a, err := s.AddSource(ctx(t), "https://a.example/")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.AddSource(ctx(t), "https://b.example/")
	if err != nil {
		t.Fatal(err)
	}
	old := doc("https://a.example/guide/old", "Old", a.ID)
	put(t, s, old, chunksOf("quokka facts"))
	recent := doc("https://a.example/ref/new", "New", a.ID)
	recent.FetchedAt = t0.Add(48 * time.Hour)
	put(t, s, recent, chunksOf("quokka facts"))
	other := doc("https://b.example/guide/other", "Other", b.ID)
	put(t, s, other, chunksOf("quokka facts"))
	tests := []struct {
		name string
		f    panther.Filter
		want []string
	}{
		{"none", panther.Filter{}, []string{old.URL, recent.URL, other.URL}},
		{"source", panther.Filter{SourceID: b.ID}, []string{other.URL}},
		{"prefix", panther.Filter{URLPrefix: "https://a.example/guide/"}, []string{old.URL}},
		{"fetched after", panther.Filter{FetchedAfter: t0.Add(time.Hour)}, []string{recent.URL}},
		{"all three", panther.Filter{SourceID: a.ID, URLPrefix: "https://a.example/", FetchedAfter: t0.Add(time.Hour)}, []string{recent.URL}},
	}
	v, hasVectors := s.(panther.VectorIndex)
	if hasVectors {
		todo, err := v.ChunksToEmbed(ctx(t), testModel, 10)
		if err != nil {
			t.Fatal(err)
		}
		var batch []panther.ChunkVector
		for _, c := range todo {
			batch = append(batch, panther.ChunkVector{ChunkID: c.ID, Vector: []float32{1, 0, 0}})
		}
		if err := v.PutVectors(ctx(t), testModel, batch); err != nil {
			t.Fatal(err)
		}
	}
	urls := func(hits []panther.Hit) []string {
		var out []string
		for _, h := range hits {
			out = append(out, h.URL)
		}
		slices.Sort(out)
		return out
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := slices.Sorted(slices.Values(tt.want))
			hits, err := s.SearchLexical(ctx(t), panther.Query{Text: "quokka", K: 10, Filter: tt.f})
			if err != nil || fmt.Sprint(urls(hits)) != fmt.Sprint(want) {
				t.Errorf("lexical: %v, %v; want %v", urls(hits), err, want)
			}
			if hasVectors {
				hits, err := v.SearchVectors(ctx(t), testModel, []float32{1, 0, 0}, 10, tt.f)
				if err != nil || fmt.Sprint(urls(hits)) != fmt.Sprint(want) {
					t.Errorf("vector: %v, %v; want %v", urls(hits), err, want)
				}
			}
		})
	}
}
