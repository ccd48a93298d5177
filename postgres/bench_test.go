package postgres

import (
	"fmt"
	"testing"

	"panther"
)

// benchChunks is a page of n chunks with some shared and some page-specific words.
func benchChunks(page, n int) []panther.Chunk {
	cs := make([]panther.Chunk, n)
	for i := range cs {
		cs[i] = panther.Chunk{
			Ordinal: i, Heading: []string{"Chapter", fmt.Sprintf("Section %d", i)}, Anchor: fmt.Sprintf("s%d", i),
			Text: fmt.Sprintf("Section %d of page %d explains how vacuum reclaims storage and how the planner "+
				"uses statistics, with word%d and term%d for variety.", i, page, page%97, i%13),
			Keywords: "vacuum planner",
		}
	}
	return cs
}

func BenchmarkPutDocument(b *testing.B) {
	db := openFresh(b)
	ctx := b.Context()
	i := 0
	for b.Loop() {
		if _, err := db.PutDocument(ctx, panther.Document{URL: fmt.Sprintf("https://b.example/%d", i), Title: "Bench"}, benchChunks(i, 10)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkSearchLexical(b *testing.B) {
	db := openFresh(b)
	ctx := b.Context()
	for p := range 1000 {
		if _, err := db.PutDocument(ctx, panther.Document{URL: fmt.Sprintf("https://b.example/%d", p), Title: fmt.Sprintf("Page %d", p)}, benchChunks(p, 5)); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{"word42", "vacuum planner", "reclaims storage term7", "nothingmatches"} {
		b.Run(q, func(b *testing.B) {
			for b.Loop() {
				if _, err := db.SearchLexical(ctx, panther.Query{Text: q, K: 10}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
