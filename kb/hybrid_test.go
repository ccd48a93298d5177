package kb

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"panther"
	"panther/embed"
)

func TestFuse(t *testing.T) {
	hit := func(id int64, score float64) panther.Hit { return panther.Hit{ChunkID: id, Score: score} }
	lexical := []panther.Hit{hit(1, 20), hit(2, 10), hit(3, 5)}
	vector := []panther.Hit{hit(4, 0.9), hit(2, 0.8), hit(5, 0.1)}
	tests := []struct {
		name  string
		w     float64
		order []int64
		found map[int64]string
	}{
		{"lexical only", 0, []int64{1, 2, 3, 4, 5}, nil},
		{"vector only", 1, []int64{4, 2, 1, 3, 5}, nil},
		{"both sides lift a shared hit", 0.5, []int64{2, 1, 4, 3, 5}, map[int64]string{1: "lexical", 2: "both", 4: "vector"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fuse(lexical, vector, tt.w)
			var ids []int64
			for _, h := range got {
				ids = append(ids, h.ChunkID)
				if want, ok := tt.found[h.ChunkID]; ok && h.Found != want {
					t.Errorf("chunk %d found by %q, want %q", h.ChunkID, h.Found, want)
				}
			}
			// Ties (a side that did not find a hit scores it 0) keep the lexical side first.
			if fmt.Sprint(ids[:3]) != fmt.Sprint(tt.order[:3]) {
				t.Errorf("order %v, want %v", ids, tt.order)
			}
		})
	}
}

// TestSearchModes runs the real offline embedder end to end: backfill, then each mode.
func TestSearchModes(t *testing.T) {
	ctx := context.Background()
	glove, err := embed.NewGloVe()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := openService(t, Options{Embedder: glove})
	pages := []struct{ url, heading, text string }{
		{"https://x.org/backup", "Saving your data", "Use pg_dump to write a copy of the database to a file, and restore it later."},
		{"https://x.org/vacuum", "Housekeeping", "Vacuum reclaims storage occupied by dead tuples after rows are updated or deleted."},
		{"https://x.org/auth", "Logging in", "Clients authenticate with a password or a certificate before they may connect."},
	}
	for _, p := range pages {
		doc := panther.Document{URL: p.url, Title: p.heading, Validators: panther.Validators{ContentHash: p.url}, FetchedAt: t0}
		secs := []panther.Section{{Heading: []string{p.heading}, Level: 1, Anchor: "top", Markdown: "# " + p.heading + "\n\n" + p.text}}
		if _, err := s.Ingest(ctx, doc, secs); err != nil {
			t.Fatal(err)
		}
	}
	if with, total, _ := s.Coverage(ctx); with != 0 || total != 3 {
		t.Fatalf("coverage before backfill %d of %d", with, total)
	}
	if n, err := s.Backfill(ctx, nil); err != nil || n != 3 {
		t.Fatalf("backfill: %d, %v", n, err)
	}
	if n, err := s.Backfill(ctx, nil); err != nil || n != 0 {
		t.Fatalf("a second backfill embedded %d passages (%v); want none", n, err)
	}
	// No word of the query is on the backup page: only meaning can find it.
	q := "how do I back up my database"
	hits, err := s.Search(ctx, panther.Query{Text: "archive a backup copy", Mode: panther.ModeVector, K: 3})
	if err != nil || len(hits) == 0 || hits[0].URL != "https://x.org/backup" || hits[0].Found != "vector" {
		t.Fatalf("vector search: %+v, %v; want the backup page first", hits, err)
	}
	hits, err = s.Search(ctx, panther.Query{Text: q, Mode: panther.ModeHybrid, K: 3})
	if err != nil || len(hits) == 0 || hits[0].URL != "https://x.org/backup" {
		t.Fatalf("hybrid search: %+v, %v; want the backup page first", hits, err)
	}
	hits, err = s.Search(ctx, panther.Query{Text: "dead tuples", Mode: panther.ModeLexical, K: 3})
	if err != nil || len(hits) != 1 || hits[0].Found != "lexical" {
		t.Fatalf("lexical search: %+v, %v", hits, err)
	}
	// A one-word query is ranked by its word in hybrid mode too.
	lex, err := s.Search(ctx, panther.Query{Text: "password", Mode: panther.ModeLexical, K: 3})
	if err != nil {
		t.Fatal(err)
	}
	hyb, err := s.Search(ctx, panther.Query{Text: "password", Mode: panther.ModeHybrid, K: 3})
	if err != nil || len(hyb) == 0 || len(lex) == 0 || hyb[0].URL != lex[0].URL {
		t.Fatalf("one-word hybrid %+v, %v; want the lexical first hit %+v first", hyb, err, lex)
	}
	if s.DefaultMode() != panther.ModeHybrid {
		t.Errorf("default mode with an embedder: %s", s.DefaultMode())
	}

	plain, _ := openService(t, Options{})
	if _, err := plain.Search(ctx, panther.Query{Text: "x", Mode: panther.ModeVector}); !errors.Is(err, panther.ErrInvalid) {
		t.Errorf("vector search without an embedder: %v, want ErrInvalid", err)
	}
	if plain.DefaultMode() != panther.ModeLexical {
		t.Errorf("default mode without an embedder: %s", plain.DefaultMode())
	}
}
