// Package storetest is the conformance suite every panther.Store implementation runs, so that the
// embedded and the shared store behave the same to everything above them.
//
// An implementation's test calls Run with a function that returns a new, empty store for each
// subtest and arranges (t.Cleanup) for it to be closed:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) panther.Store { ... })
//	}
//
// Semantics the suite pins down beyond the interface comments:
//   - a document keeps its id when PutDocument replaces it; chunk ids are not stable;
//   - times round-trip at microsecond precision and compare with time.Time.Equal;
//   - Stats.Documents and Stats.Chunks count current documents and their chunks; Stats.Gone the rest;
//   - a query with no searchable words returns no hits and no error; an empty one is ErrInvalid;
//   - Finish of a URL that was never enqueued records it;
//   - Chunks of an unknown document is empty, not an error.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"panther"
)

// Run runs the whole suite as subtests, each on a fresh store from open.
func Run(t *testing.T, open func(t *testing.T) panther.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s panther.Store)
	}{
		{"PutGet", testPutGet},
		{"Replace", testReplace},
		{"AtomicReplace", testAtomicReplace},
		{"Gone", testGone},
		{"Delete", testDelete},
		{"ByHash", testByHash},
		{"Documents", testDocuments},
		{"NotFound", testNotFound},
		{"Invalid", testInvalid},
		{"Touch", testTouch},
		{"SearchRanking", testSearchRanking},
		{"SearchK", testSearchK},
		{"SearchHostile", testSearchHostile},
		{"SearchCitation", testSearchCitation},
		{"SearchFilter", testSearchFilter},
		{"Sources", testSources},
		{"Frontier", testFrontier},
		{"Stats", testStats},
		{"ConcurrentWriters", testConcurrentWriters},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
	runVectors(t, open)
	runSessions(t, open)
	runRemovers(t, open)
}

// t0 has no sub-microsecond part, so every store can round-trip it exactly.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

func ctx(t *testing.T) context.Context { return t.Context() }

func doc(url, title string, sourceID int64) panther.Document {
	return panther.Document{
		SourceID: sourceID,
		URL:      url,
		Title:    title,
		Markdown: "# " + title + "\n\nbody of " + url,
		Validators: panther.Validators{
			ETag: `"e-` + url + `"`, LastModified: "Fri, 14 Mar 2025 15:09:26 GMT", ContentHash: "hash-" + url,
		},
		FetchedAt: t0,
		Links:     []string{url + "/a", url + "/b"},
	}
}

func chunksOf(texts ...string) []panther.Chunk {
	out := make([]panther.Chunk, len(texts))
	for i, s := range texts {
		out[i] = panther.Chunk{
			Ordinal: i, Heading: []string{"Top", fmt.Sprintf("Part %d", i)}, Anchor: fmt.Sprintf("part-%d", i),
			Text: s, Tokens: len(strings.Fields(s)), DocID: 999999, // a wrong DocID is ignored
		}
	}
	return out
}

func put(t *testing.T, s panther.Store, d panther.Document, chunks []panther.Chunk) int64 {
	t.Helper()
	id, err := s.PutDocument(ctx(t), d, chunks)
	if err != nil {
		t.Fatalf("PutDocument(%s): %v", d.URL, err)
	}
	if id <= 0 {
		t.Fatalf("PutDocument(%s) returned id %d", d.URL, id)
	}
	return id
}

func search(t *testing.T, s panther.Store, text string, k int) []panther.Hit {
	t.Helper()
	hits, err := s.SearchLexical(ctx(t), panther.Query{Text: text, K: k})
	if err != nil {
		t.Fatalf("SearchLexical(%q): %v", text, err)
	}
	for i := 1; i < len(hits); i++ {
		if hits[i].Score > hits[i-1].Score {
			t.Fatalf("SearchLexical(%q): hit %d scores %v above hit %d (%v)", text, i, hits[i].Score, i-1, hits[i-1].Score)
		}
	}
	return hits
}

func hitURLs(hits []panther.Hit) []string {
	var out []string
	for _, h := range hits {
		if !slices.Contains(out, h.URL) {
			out = append(out, h.URL)
		}
	}
	return out
}

func testPutGet(t *testing.T, s panther.Store) {
	src, err := s.AddSource(ctx(t), "https://example.org/")
	if err != nil {
		t.Fatal(err)
	}
	d := doc("https://example.org/a", "Alpha", src.ID)
	id := put(t, s, d, chunksOf("first chunk about walruses", "second chunk about narwhals"))

	got, err := s.Document(ctx(t), d.URL)
	if err != nil {
		t.Fatal(err)
	}
	want := d
	want.ID, want.Status, want.Chunks = id, panther.DocCurrent, 2
	if !got.FetchedAt.Equal(want.FetchedAt) {
		t.Errorf("FetchedAt = %v, want %v", got.FetchedAt, want.FetchedAt)
	}
	got.FetchedAt = want.FetchedAt
	if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
		t.Errorf("Document:\n got %#v\nwant %#v", got, want)
	}

	meta, err := s.DocumentMeta(ctx(t), d.URL)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Markdown != "" || meta.ID != id || meta.ContentHash != d.ContentHash || meta.ETag != d.ETag || meta.Chunks != 2 {
		t.Errorf("DocumentMeta = %+v, want no markdown, id %d, validators of %s, 2 chunks", meta, id, d.URL)
	}

	cs, err := s.Chunks(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 {
		t.Fatalf("Chunks: %d, want 2", len(cs))
	}
	for i, c := range cs {
		w := chunksOf("first chunk about walruses", "second chunk about narwhals")[i]
		if c.DocID != id || c.ID <= 0 || c.Ordinal != i || c.Text != w.Text || c.Anchor != w.Anchor ||
			c.Tokens != w.Tokens || !slices.Equal(c.Heading, w.Heading) {
			t.Errorf("chunk %d = %+v, want %+v with doc id %d", i, c, w, id)
		}
	}

	// A document with no chunks is allowed: some pages have only a title.
	empty := put(t, s, doc("https://example.org/empty", "Empty", 0), nil)
	if cs, err := s.Chunks(ctx(t), empty); err != nil || len(cs) != 0 {
		t.Errorf("Chunks(empty) = %v, %v; want none", cs, err)
	}
	if cs, err := s.Chunks(ctx(t), 1<<40); err != nil || len(cs) != 0 {
		t.Errorf("Chunks(unknown) = %v, %v; want none, no error", cs, err)
	}
	// Headings round-trip exactly, separators and markup included.
	odd := []string{`A > B`, `"quoted" & <tag>`, `Ünïcödé 🐈`}
	oid := put(t, s, doc("https://example.org/odd", "Odd", 0), []panther.Chunk{{Heading: odd, Text: "odd heading"}})
	if cs, err := s.Chunks(ctx(t), oid); err != nil || len(cs) != 1 || !slices.Equal(cs[0].Heading, odd) {
		t.Errorf("Chunks(odd) = %+v, %v; want heading %q", cs, err, odd)
	}
}

func testReplace(t *testing.T, s panther.Store) {
	d := doc("https://example.org/r", "Flamingo", 0)
	id := put(t, s, d, chunksOf("the aardvark sleeps", "the aardvark eats", "the aardvark digs"))
	if hits := search(t, s, "aardvark", 10); len(hits) != 3 {
		t.Fatalf("before replace: %d hits for aardvark, want 3", len(hits))
	}
	d.Title, d.Markdown, d.ContentHash = "Replaced", "new body", "hash-2"
	id2 := put(t, s, d, chunksOf("the pangolin rolls"))
	if id2 != id {
		t.Errorf("replacement changed the document id from %d to %d", id, id2)
	}
	if hits := search(t, s, "aardvark", 10); len(hits) != 0 {
		t.Errorf("after replace: %d hits for aardvark, want 0 (old chunks must leave the index)", len(hits))
	}
	hits := search(t, s, "pangolin", 10)
	if len(hits) != 1 || hits[0].Title != "Replaced" || hits[0].DocID != id {
		t.Errorf("after replace: hits for pangolin = %+v, want one from the replaced document", hits)
	}
	// The title is indexed with each chunk, so a title change must reach the index too.
	if hits := search(t, s, "flamingo", 10); len(hits) != 0 {
		t.Errorf("old title still found: %+v", hits)
	}
	got, err := s.Document(ctx(t), d.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got.Chunks != 1 || got.Markdown != "new body" || got.ContentHash != "hash-2" {
		t.Errorf("after replace: %+v", got)
	}
	// Replacing with no chunks empties the document.
	put(t, s, d, nil)
	if hits := search(t, s, "pangolin", 10); len(hits) != 0 {
		t.Errorf("after replace with no chunks: %d hits", len(hits))
	}
}

// testAtomicReplace replaces one document over and over while readers check that they never see
// a mix of two versions, nor a version without its chunks.
func testAtomicReplace(t *testing.T, s panther.Store) {
	const url = "https://example.org/atomic"
	version := func(v int) (panther.Document, []panther.Chunk) {
		n := 2 + v%5 // chunk count varies, so a half-replaced set has a wrong count
		texts := make([]string, n)
		for i := range texts {
			texts[i] = fmt.Sprintf("quokka v%d n%d part %d", v, n, i)
		}
		d := doc(url, "Atomic", 0)
		d.Markdown = fmt.Sprintf("v%d n%d", v, n)
		return d, chunksOf(texts...)
	}
	d, cs := version(0)
	id := put(t, s, d, cs)

	// check returns an error if the texts are not exactly one version's full chunk set.
	check := func(what string, texts []string) error {
		if len(texts) == 0 {
			return fmt.Errorf("%s: no chunks", what)
		}
		var v, n int
		if _, err := fmt.Sscanf(texts[0], "quokka v%d n%d", &v, &n); err != nil {
			return fmt.Errorf("%s: unexpected text %q", what, texts[0])
		}
		prefix := fmt.Sprintf("quokka v%d n%d ", v, n)
		for _, s := range texts {
			if !strings.HasPrefix(s, prefix) {
				return fmt.Errorf("%s: mixed versions: %q beside %q", what, s, texts[0])
			}
		}
		if len(texts) != n {
			return fmt.Errorf("%s: %d chunks of version %d, want %d", what, len(texts), v, n)
		}
		return nil
	}

	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				cs, err := s.Chunks(ctx(t), id)
				if err != nil {
					errs <- err
					return
				}
				var texts []string
				for _, c := range cs {
					texts = append(texts, c.Text)
				}
				if err := check("Chunks", texts); err != nil {
					errs <- err
					return
				}
				hits, err := s.SearchLexical(ctx(t), panther.Query{Text: "quokka", K: 100})
				if err != nil {
					errs <- err
					return
				}
				texts = texts[:0]
				for _, h := range hits {
					texts = append(texts, h.Text)
				}
				if err := check("SearchLexical", texts); err != nil {
					errs <- err
					return
				}
				got, err := s.Document(ctx(t), url)
				if err != nil {
					errs <- err
					return
				}
				var v, n int
				if _, err := fmt.Sscanf(got.Markdown, "v%d n%d", &v, &n); err != nil || n != got.Chunks {
					errs <- fmt.Errorf("Document: markdown %q with %d chunks", got.Markdown, got.Chunks)
					return
				}
			}
		}()
	}
	for v := 1; v <= 200; v++ {
		d, cs := version(v)
		if _, err := s.PutDocument(ctx(t), d, cs); err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testGone(t *testing.T, s panther.Store) {
	d := doc("https://example.org/g", "Gone page", 0)
	id := put(t, s, d, chunksOf("the ocelot prowls"))
	other := put(t, s, doc("https://example.org/h", "Other page", 0), chunksOf("the ocelot sleeps"))
	if err := s.MarkGone(ctx(t), d.URL, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkGone(ctx(t), d.URL, t0.Add(2*time.Hour)); err != nil {
		t.Errorf("MarkGone twice: %v", err)
	}
	hits := search(t, s, "ocelot", 10)
	if len(hits) != 1 || hits[0].DocID != other {
		t.Errorf("after MarkGone: hits %+v, want only document %d", hits, other)
	}
	got, err := s.Document(ctx(t), d.URL)
	if err != nil {
		t.Fatalf("a gone document is kept for the record: %v", err)
	}
	if got.Status != panther.DocGone || got.Chunks != 1 {
		t.Errorf("gone document = %+v, want status gone with its chunk kept", got)
	}
	if cs, err := s.Chunks(ctx(t), id); err != nil || len(cs) != 1 {
		t.Errorf("Chunks of gone document = %v, %v; want kept", cs, err)
	}

	// Touch brings it back.
	if err := s.Touch(ctx(t), d.URL, d.Validators, t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if hits := search(t, s, "ocelot", 10); len(hits) != 2 {
		t.Errorf("after Touch of a gone document: %d hits, want 2", len(hits))
	}
	got, _ = s.Document(ctx(t), d.URL)
	if got.Status != panther.DocCurrent {
		t.Errorf("after Touch: status %q", got.Status)
	}

	// So does PutDocument.
	if err := s.MarkGone(ctx(t), d.URL, t0); err != nil {
		t.Fatal(err)
	}
	put(t, s, d, chunksOf("the ocelot returns"))
	hits = search(t, s, "ocelot returns", 10)
	if len(hits) == 0 || hits[0].DocID != id || !strings.Contains(hits[0].Text, "returns") {
		t.Errorf("after PutDocument of a gone document: hits %+v", hits)
	}
	got, _ = s.Document(ctx(t), d.URL)
	if got.Status != panther.DocCurrent {
		t.Errorf("after PutDocument: status %q", got.Status)
	}
}

func testDelete(t *testing.T, s panther.Store) {
	d := doc("https://example.org/d", "Delete me", 0)
	id := put(t, s, d, chunksOf("the capybara swims", "the capybara rests"))
	put(t, s, doc("https://example.org/e", "Keep me", 0), chunksOf("the capybara stays"))
	if err := s.DeleteDocument(ctx(t), d.URL); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Document(ctx(t), d.URL); !errors.Is(err, panther.ErrNotFound) {
		t.Errorf("Document after delete: %v, want ErrNotFound", err)
	}
	if cs, err := s.Chunks(ctx(t), id); err != nil || len(cs) != 0 {
		t.Errorf("Chunks after delete = %v, %v; want none", cs, err)
	}
	if hits := search(t, s, "capybara", 10); len(hits) != 1 {
		t.Errorf("after delete: %d hits, want 1", len(hits))
	}
	// A gone document can be deleted too, and the URL can be stored again afterwards.
	if err := s.MarkGone(ctx(t), "https://example.org/e", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDocument(ctx(t), "https://example.org/e"); err != nil {
		t.Fatal(err)
	}
	put(t, s, d, chunksOf("the capybara is back"))
	if hits := search(t, s, "capybara", 10); len(hits) != 1 {
		t.Errorf("after re-put: %d hits, want 1", len(hits))
	}
}

func testByHash(t *testing.T, s panther.Store) {
	a := doc("https://example.org/1", "One", 0)
	a.ContentHash = "same"
	b := doc("https://example.org/2", "Two", 0)
	b.ContentHash = "same"
	ida := put(t, s, a, chunksOf("x"))
	idb := put(t, s, b, chunksOf("y"))
	got, err := s.DocumentByHash(ctx(t), "same")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != ida && got.ID != idb {
		t.Errorf("DocumentByHash = %+v", got)
	}
	if err := s.MarkGone(ctx(t), a.URL, t0); err != nil {
		t.Fatal(err)
	}
	if got, err := s.DocumentByHash(ctx(t), "same"); err != nil || got.ID != idb {
		t.Errorf("DocumentByHash with one gone = %+v, %v; want document %d", got, err, idb)
	}
	if err := s.MarkGone(ctx(t), b.URL, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DocumentByHash(ctx(t), "same"); !errors.Is(err, panther.ErrNotFound) {
		t.Errorf("DocumentByHash with all gone: %v, want ErrNotFound", err)
	}
}

func testDocuments(t *testing.T, s panther.Store) {
	s1, err := s.AddSource(ctx(t), "https://one.example/")
	if err != nil {
		t.Fatal(err)
	}
	s2, err := s.AddSource(ctx(t), "https://two.example/")
	if err != nil {
		t.Fatal(err)
	}
	// Put out of order: listings are by URL.
	for _, u := range []string{"https://one.example/c", "https://one.example/a", "https://one.example/b/x", "https://one.example/b"} {
		put(t, s, doc(u, "t", s1.ID), chunksOf("one", "two"))
	}
	put(t, s, doc("https://two.example/a", "t", s2.ID), chunksOf("one"))
	put(t, s, doc("https://one.example%/a", "t", s1.ID), nil) // '%' and '_' are not wildcards
	if err := s.MarkGone(ctx(t), "https://one.example/c", t0); err != nil {
		t.Fatal(err)
	}
	urls := func(f panther.DocFilter) []string {
		t.Helper()
		ds, err := s.Documents(ctx(t), f)
		if err != nil {
			t.Fatalf("Documents(%+v): %v", f, err)
		}
		var out []string
		for _, d := range ds {
			if d.Markdown != "" || d.Links != nil {
				t.Errorf("Documents(%+v): %s listed with markdown or links", f, d.URL)
			}
			out = append(out, d.URL)
		}
		return out
	}
	tests := []struct {
		f    panther.DocFilter
		want []string
	}{
		{panther.DocFilter{}, []string{"https://one.example%/a", "https://one.example/a", "https://one.example/b", "https://one.example/b/x", "https://two.example/a"}},
		{panther.DocFilter{IncludeGone: true}, []string{"https://one.example%/a", "https://one.example/a", "https://one.example/b", "https://one.example/b/x", "https://one.example/c", "https://two.example/a"}},
		{panther.DocFilter{SourceID: s2.ID}, []string{"https://two.example/a"}},
		{panther.DocFilter{URLPrefix: "https://one.example/b"}, []string{"https://one.example/b", "https://one.example/b/x"}},
		{panther.DocFilter{URLPrefix: "https://one.example/", IncludeGone: true}, []string{"https://one.example/a", "https://one.example/b", "https://one.example/b/x", "https://one.example/c"}},
		{panther.DocFilter{URLPrefix: "https://one.example_"}, nil},
		{panther.DocFilter{SourceID: s1.ID, Limit: 2}, []string{"https://one.example%/a", "https://one.example/a"}},
		{panther.DocFilter{SourceID: s1.ID, Limit: 2, Offset: 2}, []string{"https://one.example/b", "https://one.example/b/x"}},
		{panther.DocFilter{Offset: 4}, []string{"https://two.example/a"}},
		{panther.DocFilter{SourceID: 1 << 40}, nil},
	}
	for _, tc := range tests {
		if got := urls(tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("Documents(%+v) = %q, want %q", tc.f, got, tc.want)
		}
	}
	ds, err := s.Documents(ctx(t), panther.DocFilter{URLPrefix: "https://one.example/a"})
	if err != nil || len(ds) != 1 {
		t.Fatalf("Documents: %v, %v", ds, err)
	}
	if d := ds[0]; d.Chunks != 2 || d.SourceID != s1.ID || d.ContentHash == "" || !d.FetchedAt.Equal(t0) || d.Status != panther.DocCurrent {
		t.Errorf("listed document = %+v, want chunk count, source, validators, fetched_at and status", d)
	}
}

func testNotFound(t *testing.T, s panther.Store) {
	const u = "https://example.org/missing"
	calls := map[string]func() error{
		"Document":       func() error { _, err := s.Document(ctx(t), u); return err },
		"DocumentMeta":   func() error { _, err := s.DocumentMeta(ctx(t), u); return err },
		"DocumentByHash": func() error { _, err := s.DocumentByHash(ctx(t), "no-such-hash"); return err },
		"Touch":          func() error { return s.Touch(ctx(t), u, panther.Validators{ContentHash: "h"}, t0) },
		"MarkGone":       func() error { return s.MarkGone(ctx(t), u, t0) },
		"DeleteDocument": func() error { return s.DeleteDocument(ctx(t), u) },
		"MarkCrawled":    func() error { return s.MarkCrawled(ctx(t), 1<<40, t0) },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, panther.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
			continue
		}
		if name != "DocumentByHash" && name != "MarkCrawled" && !strings.Contains(err.Error(), u) {
			t.Errorf("%s: error %q does not name the URL", name, err)
		}
	}
}

func testInvalid(t *testing.T, s panther.Store) {
	calls := map[string]func() error{
		"PutDocument empty url": func() error { _, err := s.PutDocument(ctx(t), panther.Document{}, nil); return err },
		"Touch empty url":       func() error { return s.Touch(ctx(t), "", panther.Validators{}, t0) },
		"MarkGone empty url":    func() error { return s.MarkGone(ctx(t), "", t0) },
		"Delete empty url":      func() error { return s.DeleteDocument(ctx(t), "") },
		"AddSource empty url":   func() error { _, err := s.AddSource(ctx(t), " "); return err },
		"empty query":           func() error { _, err := s.SearchLexical(ctx(t), panther.Query{Text: "  "}); return err },
		"negative K":            func() error { _, err := s.SearchLexical(ctx(t), panther.Query{Text: "x", K: -1}); return err },
		"huge K": func() error {
			_, err := s.SearchLexical(ctx(t), panther.Query{Text: "x", K: panther.MaxK + 1})
			return err
		},
		"negative limit": func() error { _, err := s.Documents(ctx(t), panther.DocFilter{Limit: -1}); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, panther.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	src, err := s.AddSource(ctx(t), "https://example.org/")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Enqueue(ctx(t), src.ID, []panther.FrontierEntry{{URL: "https://example.org/a"}, {URL: ""}})
	if !errors.Is(err, panther.ErrInvalid) {
		t.Errorf("Enqueue with an empty url: %v, want ErrInvalid", err)
	}
	if f, _ := s.Frontier(ctx(t), src.ID); len(f) != 0 {
		t.Errorf("a rejected Enqueue added %d entries", len(f))
	}
	if err := s.Finish(ctx(t), src.ID, panther.FrontierEntry{URL: "https://example.org/a", State: "bogus"}); !errors.Is(err, panther.ErrInvalid) {
		t.Errorf("Finish with an unknown state: %v, want ErrInvalid", err)
	}
}

func testTouch(t *testing.T, s panther.Store) {
	d := doc("https://example.org/t", "Touch", 0)
	put(t, s, d, chunksOf("text"))
	v := panther.Validators{ETag: `"new"`, LastModified: "Sat, 15 Mar 2025 00:00:00 GMT", ContentHash: "hash-new"}
	at := t0.Add(24 * time.Hour)
	if err := s.Touch(ctx(t), d.URL, v, at); err != nil {
		t.Fatal(err)
	}
	got, err := s.Document(ctx(t), d.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got.Validators != v || !got.FetchedAt.Equal(at) || got.Markdown != d.Markdown || got.Chunks != 1 || got.Title != d.Title {
		t.Errorf("after Touch: %+v, want validators %+v, fetched_at %v, content unchanged", got, v, at)
	}
	if got, err := s.DocumentByHash(ctx(t), "hash-new"); err != nil || got.URL != d.URL {
		t.Errorf("DocumentByHash(new hash) = %+v, %v", got, err)
	}
}

func testSearchRanking(t *testing.T, s panther.Store) {
	put(t, s, doc("https://example.org/body", "Routine maintenance", 0), chunksOf(
		"Regular upkeep of a database includes many tasks. One of them is to vacuum tables now and then, "+
			"alongside backups, monitoring, log rotation, and checking free disk space on every server."))
	put(t, s, doc("https://example.org/title", "Vacuum", 0), chunksOf(
		"This command reclaims storage occupied by dead tuples so that space can be reused."))
	put(t, s, doc("https://example.org/none", "Unrelated", 0), chunksOf("Nothing to see here at all."))
	hits := search(t, s, "vacuum", 10)
	if got := hitURLs(hits); !slices.Equal(got, []string{"https://example.org/title", "https://example.org/body"}) {
		t.Errorf("hits for vacuum = %q, want the title match before the body-only match", got)
	}
	// Case, stop words and stemming: "Vacuuming the tables" finds the same pages.
	if got := hitURLs(search(t, s, "Vacuuming the tables", 10)); len(got) < 2 {
		t.Errorf("hits for 'Vacuuming the tables' = %q, want both vacuum pages", got)
	}
	// A query made only of stop words still searches them.
	if got := hitURLs(search(t, s, "at all", 10)); !slices.Contains(got, "https://example.org/none") {
		t.Errorf("hits for 'at all' = %q, want the page that says it", got)
	}
}

func testSearchK(t *testing.T, s panther.Store) {
	for i := 0; i < 20; i++ {
		put(t, s, doc(fmt.Sprintf("https://example.org/k%02d", i), "K", 0),
			chunksOf(fmt.Sprintf("the wombat number %d", i), fmt.Sprintf("another wombat %d", i)))
	}
	for _, k := range []int{1, 5, 40} {
		if hits := search(t, s, "wombat", k); len(hits) != k {
			t.Errorf("K=%d: %d hits", k, len(hits))
		}
	}
	if hits := search(t, s, "wombat", 0); len(hits) != panther.DefaultK {
		t.Errorf("K=0: %d hits, want DefaultK (%d)", len(hits), panther.DefaultK)
	}
	if hits := search(t, s, "wombat", 100); len(hits) != 40 {
		t.Errorf("K=100: %d hits, want all 40", len(hits))
	}
}

func testSearchHostile(t *testing.T, s panther.Store) {
	put(t, s, doc("https://example.org/x", "Operators", 0), chunksOf(
		`Use pg_dump to back up; set work_mem in postgresql.conf (since 9.6). NEAR AND OR NOT are words here. `+
			`Column col:x and "quoted" text, a-b, c*d, x^y.`))
	hostile := []string{
		`"`, `""`, `"""`, `*`, `a*`, `NEAR(`, `NEAR(a b`, `NEAR(a b, 2)`, `-x`, `- x`, `col:x`, `title:foo`,
		`AND`, `OR`, `NOT`, `a AND`, `AND OR NOT`, `^`, `^a`, `(`, `)`, `((a)`, `a)`, `{title}: x`, `+`, `:`,
		`🐈‍⬛ 🦀`, `\`, `'`, `%`, `_`, `a"b`, `"unbalanced`, `x OR`, `NOT x`, `rank:1`, `bm25(1)`,
		"\x00", "tab\there", "ünïcödé", "日本語のテキスト", "\u200b", "a\u0301", "9.6", "pg_dump", "..", "-",
		strings.Repeat("(", 500), strings.Repeat("a ", 2000), strings.Repeat("x", 5000),
	}
	for _, q := range hostile {
		if _, err := s.SearchLexical(ctx(t), panther.Query{Text: q, K: 5}); err != nil {
			t.Errorf("SearchLexical(%.40q): %v", q, err)
		}
	}
	// Operator words and punctuated terms are searched as words.
	for _, q := range []string{"NEAR", "col:x", "pg_dump", "work_mem", "9.6", `"quoted"`, "AND OR"} {
		if hits := search(t, s, q, 5); len(hits) != 1 {
			t.Errorf("SearchLexical(%q): %d hits, want the page that contains it", q, len(hits))
		}
	}
}

func testSearchCitation(t *testing.T, s panther.Store) {
	d := doc("https://example.org/cite", "Citations", 0)
	id := put(t, s, d, []panther.Chunk{
		{Ordinal: 0, Heading: []string{"Guide", "Indexes", "Partial Indexes"}, Anchor: "partial",
			Text: "A partial index is built over a subset of a table; the subset is defined by a conditional expression called the predicate of the partial index. " +
				strings.Repeat("Filler words pad this chunk out so that a snippet must be shorter than the whole text. ", 5)},
	})
	hits := search(t, s, "predicate", 5)
	if len(hits) != 1 {
		t.Fatalf("%d hits, want 1", len(hits))
	}
	h := hits[0]
	if h.URL != d.URL || h.Title != d.Title || h.Heading != "Guide"+panther.HeadingSep+"Indexes"+panther.HeadingSep+"Partial Indexes" ||
		h.Anchor != "partial" || !h.FetchedAt.Equal(t0) || h.ContentHash != d.ContentHash || h.DocID != id || h.ChunkID <= 0 {
		t.Errorf("hit citation = %+v", h)
	}
	if h.Link() != d.URL+"#partial" {
		t.Errorf("Link() = %q", h.Link())
	}
	if !strings.HasPrefix(h.Text, "A partial index") || h.Score <= 0 {
		t.Errorf("hit text %.30q score %v: want the whole chunk and a positive score", h.Text, h.Score)
	}
}

func testSources(t *testing.T, s panther.Store) {
	a, err := s.AddSource(ctx(t), "https://a.example/")
	if err != nil {
		t.Fatal(err)
	}
	if a.ID <= 0 || a.URL != "https://a.example/" || a.CreatedAt.IsZero() || !a.LastCrawlAt.IsZero() {
		t.Errorf("AddSource = %+v", a)
	}
	again, err := s.AddSource(ctx(t), "https://a.example/")
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != a.ID || !again.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("AddSource twice = %+v, want %+v", again, a)
	}
	b, err := s.AddSource(ctx(t), "https://b.example/")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.MarkCrawled(ctx(t), b.ID, t0); err != nil {
		t.Fatal(err)
	}
	all, err := s.Sources(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != a.ID || all[1].ID != b.ID || !all[1].LastCrawlAt.Equal(t0) || !all[0].LastCrawlAt.IsZero() {
		t.Errorf("Sources = %+v", all)
	}
}

func testFrontier(t *testing.T, s panther.Store) {
	src, err := s.AddSource(ctx(t), "https://f.example/")
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.AddSource(ctx(t), "https://other.example/")
	if err != nil {
		t.Fatal(err)
	}
	e := func(u string, depth int) panther.FrontierEntry {
		return panther.FrontierEntry{URL: "https://f.example/" + u, Depth: depth, State: panther.FrontierDone}
	}
	n, err := s.Enqueue(ctx(t), src.ID, []panther.FrontierEntry{e("", 0), e("a", 1), e("b", 1), e("a", 1)})
	if err != nil || n != 3 {
		t.Fatalf("Enqueue = %d, %v; want 3 new (a repeated URL counts once)", n, err)
	}
	if err := s.Finish(ctx(t), src.ID, panther.FrontierEntry{URL: "https://f.example/a", State: panther.FrontierFailed, Reason: "http 500"}); err != nil {
		t.Fatal(err)
	}
	n, err = s.Enqueue(ctx(t), src.ID, []panther.FrontierEntry{e("a", 1), e("c", 2)})
	if err != nil || n != 1 {
		t.Fatalf("second Enqueue = %d, %v; want 1 new", n, err)
	}
	if n, err := s.Enqueue(ctx(t), other.ID, []panther.FrontierEntry{e("a", 0)}); err != nil || n != 1 {
		t.Fatalf("Enqueue on another source = %d, %v; frontiers are per source", n, err)
	}
	if n, err := s.Enqueue(ctx(t), src.ID, nil); err != nil || n != 0 {
		t.Errorf("Enqueue(nil) = %d, %v", n, err)
	}
	got, err := s.Frontier(ctx(t), src.ID)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b panther.FrontierEntry) int { return strings.Compare(a.URL, b.URL) })
	want := []panther.FrontierEntry{
		{URL: "https://f.example/", Depth: 0, State: panther.FrontierQueued},
		{URL: "https://f.example/a", Depth: 1, State: panther.FrontierFailed, Reason: "http 500"},
		{URL: "https://f.example/b", Depth: 1, State: panther.FrontierQueued},
		{URL: "https://f.example/c", Depth: 2, State: panther.FrontierQueued},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Frontier =\n%+v\nwant\n%+v", got, want)
	}
	// Finish of a URL never enqueued records it.
	if err := s.Finish(ctx(t), src.ID, panther.FrontierEntry{URL: "https://f.example/seed", State: panther.FrontierSkipped, Reason: "robots"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Frontier(ctx(t), src.ID); len(got) != 5 {
		t.Errorf("after Finish of a new URL: %d entries, want 5", len(got))
	}
	if err := s.ResetFrontier(ctx(t), src.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Frontier(ctx(t), src.ID); err != nil || len(got) != 0 {
		t.Errorf("after reset: %v, %v", got, err)
	}
	if got, _ := s.Frontier(ctx(t), other.ID); len(got) != 1 {
		t.Errorf("reset of one source touched another: %v", got)
	}
	if n, err := s.Enqueue(ctx(t), src.ID, []panther.FrontierEntry{e("a", 1)}); err != nil || n != 1 {
		t.Errorf("Enqueue after reset = %d, %v; want 1", n, err)
	}
}

func testStats(t *testing.T, s panther.Store) {
	st, err := s.Stats(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Sources != 0 || st.Documents != 0 || st.Gone != 0 || st.Chunks != 0 {
		t.Errorf("empty store: %+v", st)
	}
	src, _ := s.AddSource(ctx(t), "https://s.example/")
	put(t, s, doc("https://s.example/a", "a", src.ID), chunksOf("1", "2", "3"))
	put(t, s, doc("https://s.example/b", "b", src.ID), chunksOf("1", "2"))
	put(t, s, doc("https://s.example/c", "c", src.ID), chunksOf("1"))
	if err := s.MarkGone(ctx(t), "https://s.example/c", t0); err != nil {
		t.Fatal(err)
	}
	st, err = s.Stats(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := panther.Stats{Sources: 1, Documents: 2, Gone: 1, Chunks: 5, SizeBytes: st.SizeBytes}
	if st != want || st.SizeBytes <= 0 {
		t.Errorf("Stats = %+v, want %+v with a positive size", st, want)
	}
}

func testConcurrentWriters(t *testing.T, s panther.Store) {
	const writers, perWriter = 8, 50
	src, err := s.AddSource(ctx(t), "https://c.example/")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				u := fmt.Sprintf("https://c.example/w%d/%03d", w, i)
				if _, err := s.PutDocument(ctx(t), doc(u, "c", src.ID), chunksOf("lemur one", "lemur two")); err != nil {
					errs <- err
					return
				}
				// Writers also rewrite a page they share, to contend on the same rows.
				if _, err := s.PutDocument(ctx(t), doc("https://c.example/shared", "c", src.ID), chunksOf(fmt.Sprintf("lemur %d %d", w, i))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ds, err := s.Documents(ctx(t), panther.DocFilter{SourceID: src.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != writers*perWriter+1 {
		t.Errorf("%d documents, want %d", len(ds), writers*perWriter+1)
	}
	st, err := s.Stats(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Chunks != 2*writers*perWriter+1 {
		t.Errorf("%d chunks, want %d", st.Chunks, 2*writers*perWriter+1)
	}
	if hits := search(t, s, "lemur", panther.MaxK); len(hits) != 2*writers*perWriter+1 {
		t.Errorf("%d hits for lemur, want %d", len(hits), 2*writers*perWriter+1)
	}
}
