package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"panther"
)

// runRemovers checks DocumentRemover and SourceRemover on stores that implement them: what is removed
// leaves search (words and vectors) and nothing else is lost.
func runRemovers(t *testing.T, open func(t *testing.T) panther.Store) {
	t.Run("RemoveDocument", func(t *testing.T) {
		s := open(t)
		r, ok := s.(panther.DocumentRemover)
		if !ok {
			t.Skip("the store does not implement panther.DocumentRemover")
		}
		testRemoveDocument(t, s, r)
	})
	t.Run("RemoveSource", func(t *testing.T) {
		s := open(t)
		r, ok := s.(panther.SourceRemover)
		if !ok {
			t.Skip("the store does not implement panther.SourceRemover")
		}
		testRemoveSource(t, s, r)
	})
}

// embedEverything gives every chunk waiting for a vector one, when the store keeps vectors; it
// returns nil for a store that does not.
func embedEverything(t *testing.T, s panther.Store) panther.VectorIndex {
	t.Helper()
	v, ok := s.(panther.VectorIndex)
	if !ok {
		return nil
	}
	r := rand.New(rand.NewPCG(1, 2))
	todo, err := v.ChunksToEmbed(ctx(t), testModel, 1000)
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]panther.ChunkVector, len(todo))
	for i, c := range todo {
		batch[i] = panther.ChunkVector{ChunkID: c.ID, Vector: randomUnit(r, 16)}
	}
	if err := v.PutVectors(ctx(t), testModel, batch); err != nil {
		t.Fatal(err)
	}
	return v
}

// vectorURLs are the pages whose chunks a vector search over everything finds.
func vectorURLs(t *testing.T, v panther.VectorIndex) []string {
	t.Helper()
	hits, err := v.SearchVectors(ctx(t), testModel, randomUnit(rand.New(rand.NewPCG(9, 9)), 16), 100, panther.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	urls := hitURLs(hits)
	slices.Sort(urls)
	return urls
}

func wantCoverage(t *testing.T, v panther.VectorIndex, with, all int, when string) {
	t.Helper()
	w, a, err := v.VectorCoverage(ctx(t), testModel)
	if err != nil || w != with || a != all {
		t.Errorf("%s: coverage %d of %d (%v), want %d of %d", when, w, a, err, with, all)
	}
}

func testRemoveDocument(t *testing.T, s panther.Store, r panther.DocumentRemover) {
	gone := doc("https://r.example/gone", "Removed page", 0)
	kept := doc("https://r.example/kept", "Kept page", 0)
	goneID := put(t, s, gone, chunksOf("the okapi grazes quietly", "an okapi sleeps"))
	put(t, s, kept, chunksOf("the okapi is kept", "a pangolin rolls"))
	v := embedEverything(t, s)

	if err := r.DeleteDocument(ctx(t), gone.URL); err != nil {
		t.Fatal(err)
	}
	if got := hitURLs(search(t, s, "okapi", 10)); !slices.Equal(got, []string{kept.URL}) {
		t.Errorf("search after delete finds %v, want only %s", got, kept.URL)
	}
	if hits := search(t, s, "grazes", 10); len(hits) != 0 {
		t.Errorf("a word only the removed page had is still found: %v", hitURLs(hits))
	}
	if hits := search(t, s, "pangolin", 10); len(hits) != 1 {
		t.Errorf("the kept page's other passage: %d hits, want 1", len(hits))
	}
	if _, err := s.Document(ctx(t), gone.URL); !errors.Is(err, panther.ErrNotFound) {
		t.Errorf("Document after delete: %v, want ErrNotFound", err)
	}
	if cs, err := s.Chunks(ctx(t), goneID); err != nil || len(cs) != 0 {
		t.Errorf("Chunks after delete = %d, %v; want none", len(cs), err)
	}
	if d, err := s.Document(ctx(t), kept.URL); err != nil || d.Chunks != 2 || d.Markdown != kept.Markdown {
		t.Errorf("the kept page: %+v, %v", d, err)
	}
	if v != nil {
		wantCoverage(t, v, 2, 2, "after delete")
		if got := vectorURLs(t, v); !slices.Equal(got, []string{kept.URL}) {
			t.Errorf("vector search after delete finds %v, want only %s", got, kept.URL)
		}
	}
	if err := r.DeleteDocument(ctx(t), gone.URL); !errors.Is(err, panther.ErrNotFound) {
		t.Errorf("deleting twice: %v, want ErrNotFound", err)
	}
	if err := r.DeleteDocument(ctx(t), ""); !errors.Is(err, panther.ErrInvalid) {
		t.Errorf("deleting an empty URL: %v, want ErrInvalid", err)
	}
}

func testRemoveSource(t *testing.T, s panther.Store, r panther.SourceRemover) {
	add := func(url string) panther.Source {
		t.Helper()
		src, err := s.AddSource(ctx(t), url)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Enqueue(ctx(t), src.ID, []panther.FrontierEntry{{URL: url, Depth: 0}, {URL: url + "x", Depth: 1}}); err != nil {
			t.Fatal(err)
		}
		return src
	}
	keepDocs, dropDocs, other := add("https://keep.example/"), add("https://drop.example/"), add("https://other.example/")
	for i, src := range []panther.Source{keepDocs, dropDocs, other} {
		for j := range 2 {
			d := doc(fmt.Sprintf("%s%d", src.URL, j), fmt.Sprintf("Page %d.%d", i, j), src.ID)
			put(t, s, d, chunksOf(fmt.Sprintf("the tapir%d wanders", i), "a common quokka"))
		}
	}
	orphan := doc("https://orphan.example/", "Orphan", 0)
	put(t, s, orphan, chunksOf("a lone quokka"))
	// A gone page of the source is removed with it as well.
	if err := s.MarkGone(ctx(t), dropDocs.URL+"1", t0); err != nil {
		t.Fatal(err)
	}
	v := embedEverything(t, s)

	// Without its documents: the source and its frontier go, its pages stay searchable, sourceless.
	if err := r.RemoveSource(ctx(t), keepDocs.ID, false); err != nil {
		t.Fatal(err)
	}
	d, err := s.Document(ctx(t), keepDocs.URL+"0")
	if err != nil || d.SourceID != 0 {
		t.Errorf("a page of a source removed without its documents: %+v, %v; want it kept with no source", d, err)
	}
	if hits := search(t, s, "tapir0", 10); len(hits) != 2 {
		t.Errorf("its pages are no longer all found: %v", hitURLs(hits))
	}
	if f, err := s.Frontier(ctx(t), keepDocs.ID); err != nil || len(f) != 0 {
		t.Errorf("frontier of the removed source: %v, %v; want empty", f, err)
	}

	// With its documents: pages, passages and vectors go too.
	if err := r.RemoveSource(ctx(t), dropDocs.ID, true); err != nil {
		t.Fatal(err)
	}
	if hits := search(t, s, "tapir1", 10); len(hits) != 0 {
		t.Errorf("pages of a source removed with its documents are still found: %v", hitURLs(hits))
	}
	for j := range 2 {
		if _, err := s.DocumentMeta(ctx(t), fmt.Sprintf("%s%d", dropDocs.URL, j)); !errors.Is(err, panther.ErrNotFound) {
			t.Errorf("page %d of the removed source: %v, want ErrNotFound", j, err)
		}
	}
	// Nothing else is lost.
	sources, err := s.Sources(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(sources) != 1 || sources[0].ID != other.ID {
		t.Errorf("sources after removals: %+v, want only %s", sources, other.URL)
	}
	if f, err := s.Frontier(ctx(t), other.ID); err != nil || len(f) != 2 {
		t.Errorf("another source's frontier: %v, %v; want its 2 entries", f, err)
	}
	want := []string{keepDocs.URL + "0", keepDocs.URL + "1", orphan.URL, other.URL + "0", other.URL + "1"}
	got := hitURLs(search(t, s, "quokka", 20))
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("search after removals finds %v, want %v", got, want)
	}
	if docs, err := s.Documents(ctx(t), panther.DocFilter{IncludeGone: true}); err != nil || len(docs) != len(want) {
		t.Errorf("documents after removals: %d, %v; want %d", len(docs), err, len(want))
	}
	if v != nil {
		wantCoverage(t, v, 2*len(want)-1, 2*len(want)-1, "after removals")
		if got := vectorURLs(t, v); !slices.Equal(got, want) {
			t.Errorf("vector search after removals finds %v, want %v", got, want)
		}
	}
	if st, err := s.Stats(ctx(t)); err != nil || st.Sources != 1 || st.Documents != len(want) || st.Gone != 0 {
		t.Errorf("stats after removals: %+v, %v", st, err)
	}

	if err := r.RemoveSource(ctx(t), dropDocs.ID, true); !errors.Is(err, panther.ErrNotFound) {
		t.Errorf("removing a source twice: %v, want ErrNotFound", err)
	}
	// The URL can be added again, as a new source with an empty frontier.
	again, err := s.AddSource(ctx(t), dropDocs.URL)
	if err != nil {
		t.Fatalf("adding a removed source again: %v", err)
	}
	if f, err := s.Frontier(ctx(t), again.ID); err != nil || len(f) != 0 {
		t.Errorf("the frontier of a source added again: %v, %v; want empty", f, err)
	}
}
