package sqlite_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"panther"
	"panther/sqlite"
)

// BenchmarkSearchVectors is issue 3's target: exact top-10 over 100,000 chunks of 384 dimensions,
// p50 under 20 ms. Setting up the store takes a while; the figure is the search alone.
func BenchmarkSearchVectors(b *testing.B) {
	const docs, perDoc, dims = 1000, 100, 384
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "vec.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	r := rand.New(rand.NewPCG(1, 2))
	chunks := make([]panther.Chunk, perDoc)
	for i := range chunks {
		chunks[i] = panther.Chunk{Ordinal: i, Text: fmt.Sprintf("passage %d", i), Anchor: fmt.Sprintf("a%d", i)}
	}
	for d := range docs {
		if _, err := db.PutDocument(ctx, panther.Document{URL: fmt.Sprintf("https://b.example/%d", d), FetchedAt: time.Now()}, chunks); err != nil {
			b.Fatal(err)
		}
	}
	const model = "bench:random-384"
	for {
		todo, err := db.ChunksToEmbed(ctx, model, 5000)
		if err != nil {
			b.Fatal(err)
		}
		if len(todo) == 0 {
			break
		}
		batch := make([]panther.ChunkVector, len(todo))
		for i, c := range todo {
			batch[i] = panther.ChunkVector{ChunkID: c.ID, Vector: randomVector(r, dims)}
		}
		if err := db.PutVectors(ctx, model, batch); err != nil {
			b.Fatal(err)
		}
	}
	// The first search loads the vectors; time the ones after.
	if _, err := db.SearchVectors(ctx, model, randomVector(r, dims), 10, panther.Filter{}); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		hits, err := db.SearchVectors(ctx, model, randomVector(r, dims), 10, panther.Filter{})
		if err != nil || len(hits) != 10 {
			b.Fatalf("%d hits, %v", len(hits), err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

func randomVector(r *rand.Rand, dims int) []float32 {
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
