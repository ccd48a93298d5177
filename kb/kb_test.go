package kb

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"panther"
	"panther/sqlite"
)

func openService(t *testing.T, opts Options) (*Service, *sqlite.DB) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func page(url, hash, body string) (panther.Document, []panther.Section) {
	md := "# " + url + "\n\n" + body
	doc := panther.Document{URL: url, Title: url, Markdown: md, Validators: panther.Validators{ContentHash: hash}, FetchedAt: t0}
	return doc, []panther.Section{{Heading: []string{url}, Level: 1, Anchor: "top", Markdown: md}}
}

func TestIngestOutcomes(t *testing.T) {
	ctx := context.Background()
	s, db := openService(t, Options{})

	steps := []struct {
		name string
		url  string
		hash string
		body string
		want panther.IngestOutcome
	}{
		{"first fetch", "https://x.org/a", "h1", "alpha text", panther.IngestNew},
		{"same content again", "https://x.org/a", "h1", "alpha text", panther.IngestUnchanged},
		{"content changed", "https://x.org/a", "h2", "beta text", panther.IngestChanged},
		{"same content under another URL", "https://x.org/a-copy", "h2", "beta text", panther.IngestDuplicate},
		{"old content elsewhere is not a duplicate any more", "https://x.org/b", "h1", "alpha text", panther.IngestNew},
	}
	for _, st := range steps {
		doc, secs := page(st.url, st.hash, st.body)
		doc.FetchedAt = doc.FetchedAt.Add(time.Hour)
		got, err := s.Ingest(ctx, doc, secs)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got != st.want {
			t.Errorf("%s: outcome %q, want %q", st.name, got, st.want)
		}
	}

	// Duplicates store nothing; changed pages replace their chunks.
	if _, err := s.Document(ctx, "https://x.org/a-copy"); !errors.Is(err, panther.ErrNotFound) {
		t.Errorf("duplicate was stored: %v", err)
	}
	hits, err := s.Search(ctx, panther.Query{Text: "alpha"})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 1 || hits[0].URL != "https://x.org/b" {
		t.Errorf("alpha hits = %+v; the replaced version of /a must not be found", hits)
	}

	// Unchanged touches: validators and fetch time move on.
	doc, secs := page("https://x.org/b", "h1", "alpha text")
	doc.ETag, doc.FetchedAt = `"v2"`, t0.Add(48*time.Hour)
	if out, err := s.Ingest(ctx, doc, secs); err != nil || out != panther.IngestUnchanged {
		t.Fatalf("re-ingest: %q %v", out, err)
	}
	meta, err := db.DocumentMeta(ctx, "https://x.org/b")
	if err != nil || meta.ETag != `"v2"` || !meta.FetchedAt.Equal(t0.Add(48*time.Hour)) {
		t.Errorf("touch not recorded: %+v %v", meta, err)
	}

	// A gone page that comes back unchanged is current again.
	if err := s.MarkGone(ctx, "https://x.org/b", t0.Add(72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if hits, _ := s.Search(ctx, panther.Query{Text: "alpha"}); len(hits) != 0 {
		t.Errorf("gone page still searched: %+v", hits)
	}
	if out, err := s.Ingest(ctx, doc, secs); err != nil || out != panther.IngestUnchanged {
		t.Fatalf("back from gone: %q %v", out, err)
	}
	if hits, _ := s.Search(ctx, panther.Query{Text: "alpha"}); len(hits) != 1 {
		t.Errorf("page back from gone not searched: %+v", hits)
	}
}

func TestIngestInvalid(t *testing.T) {
	ctx := context.Background()
	s, _ := openService(t, Options{})
	for name, doc := range map[string]panther.Document{
		"no URL":        {Validators: panther.Validators{ContentHash: "h"}, FetchedAt: t0},
		"relative URL":  {URL: "a/b.html", Validators: panther.Validators{ContentHash: "h"}, FetchedAt: t0},
		"no hash":       {URL: "https://x.org/", FetchedAt: t0},
		"no fetch time": {URL: "https://x.org/", Validators: panther.Validators{ContentHash: "h"}},
	} {
		if _, err := s.Ingest(ctx, doc, nil); !errors.Is(err, panther.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestNewOptions(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, o := range []Options{{ChunkTokens: -1}, {ChunkTokens: 10}, {ChunkTokens: 100, OverlapTokens: 50}} {
		if _, err := New(db, o); !errors.Is(err, panther.ErrInvalid) {
			t.Errorf("New(%+v) = %v, want ErrInvalid", o, err)
		}
	}
	if _, err := New(nil, Options{}); !errors.Is(err, panther.ErrInvalid) {
		t.Errorf("nil store: %v", err)
	}
}

// multiSectionPage is a page whose every section mentions word.
func multiSectionPage(url, word string, n int) (panther.Document, []panther.Section) {
	var secs []panther.Section
	var md strings.Builder
	for i := range n {
		m := fmt.Sprintf("## Part %d\n\nThe %s appears here in part %d, and %s again.", i, word, i, word)
		md.WriteString(m + "\n\n")
		secs = append(secs, panther.Section{Heading: []string{url, fmt.Sprintf("Part %d", i)}, Level: 2, Anchor: fmt.Sprintf("part-%d", i), Markdown: m})
	}
	return panther.Document{URL: url, Title: url, Markdown: md.String(), Validators: panther.Validators{ContentHash: url}, FetchedAt: t0}, secs
}

func TestSearchDiversity(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		perPage int
		k       int
		want    map[string]int // hits per page
	}{
		{"default one per page", 0, 10, map[string]int{"https://x.org/big": 1, "https://x.org/small1": 1, "https://x.org/small2": 1}},
		{"two per page", 2, 10, map[string]int{"https://x.org/big": 2, "https://x.org/small1": 1, "https://x.org/small2": 1}},
		{"no cap", -1, 10, nil},
		// The first pool (12) holds only sections of the big page; Search must look deeper.
		{"cut at k", 2, 3, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openService(t, Options{MaxPassagesPerPage: tt.perPage})
			for _, p := range []struct {
				url string
				n   int
			}{{"https://x.org/big", 12}, {"https://x.org/small1", 1}, {"https://x.org/small2", 1}} {
				doc, secs := multiSectionPage(p.url, "walrus", p.n)
				if _, err := s.Ingest(ctx, doc, secs); err != nil {
					t.Fatal(err)
				}
			}
			hits, err := s.Search(ctx, panther.Query{Text: "walrus", K: tt.k})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for i, h := range hits {
				got[h.URL]++
				if h.Snippet == "" || h.Anchor == "" || h.Heading == "" || h.ContentHash == "" {
					t.Errorf("hit %d lacks its citation or snippet: %+v", i, h)
				}
				if i > 0 && h.Score > hits[i-1].Score {
					t.Errorf("hits out of order at %d", i)
				}
			}
			if tt.want == nil {
				if len(hits) != tt.k || (tt.perPage < 0) != (got["https://x.org/big"] > 2) {
					t.Errorf("%d hits, want %d; per page %v", len(hits), tt.k, got)
				}
				return
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("hits per page = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSearchInvalid(t *testing.T) {
	s, _ := openService(t, Options{})
	for _, q := range []panther.Query{{Text: "  "}, {Text: "x", K: -1}, {Text: "x", K: panther.MaxK + 1}} {
		if _, err := s.Search(context.Background(), q); !errors.Is(err, panther.ErrInvalid) {
			t.Errorf("Search(%+v) = %v, want ErrInvalid", q, err)
		}
	}
}

func TestDiversify(t *testing.T) {
	hits := []panther.Hit{hit("a", "1"), hit("a", "2"), hit("b", "1"), hit("a", "3"), hit("c", "1")}
	got := diversify(hits, 3, 2)
	if len(got) != 3 || got[0].Anchor != "1" || got[1].Anchor != "2" || got[2].URL != "b" {
		t.Errorf("diversify = %+v", got)
	}
}
