package transfer_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"panther"
	"panther/internal/pgtest"
	"panther/postgres"
	"panther/sqlite"
	"panther/transfer"
)

// kinds opens an empty store of each kind; PostgreSQL only when a test server is configured (or
// required, and then missing it fails).
var kinds = []struct {
	name string
	open func(t *testing.T) transfer.Store
}{
	{"sqlite", openSQLite},
	{"postgres", openPostgres},
}

func openSQLite(t *testing.T) transfer.Store {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "kb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openPostgres(t *testing.T) transfer.Store {
	t.Helper()
	db, err := postgres.OpenWith(t.Context(), pgtest.FreshDSN(t), postgres.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 123456000, time.UTC)

// fill stores a small knowledge base using every field a copy must carry: sources with times, a
// page without a source, a gone page, navigation chunks and keywords, two models' vectors (one at two
// lengths), and a session with a sub-agent, tool calls and citations.
func fill(t *testing.T, s transfer.Store) {
	t.Helper()
	ctx := t.Context()
	src, err := s.ImportSource(ctx, panther.Source{URL: "https://docs.example/", CreatedAt: t0, LastCrawlAt: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddSource(ctx, "https://other.example/"); err != nil {
		t.Fatal(err)
	}
	page := func(url string, source int64, n int) []panther.Chunk {
		t.Helper()
		var chunks []panther.Chunk
		for i := range n {
			chunks = append(chunks, panther.Chunk{Ordinal: i, Heading: []string{"Guide", url[len(url)-6:]}, Anchor: "s" + string(rune('a'+i)),
				Text: "passage " + string(rune('a'+i)) + " of " + url, Tokens: 5 + i, Keywords: "kw" + string(rune('a'+i)), Navigation: i == n-1 && n > 2})
		}
		_, err := s.PutDocument(ctx, panther.Document{SourceID: source, URL: url, Title: "Title of " + url, Markdown: "# " + url + "\n\nbody",
			Validators: panther.Validators{ETag: `"e1"`, LastModified: "Mon, 02 Jan 2026 15:04:05 GMT", ContentHash: "hash-" + url},
			FetchedAt:  t0.Add(time.Minute), Links: []string{"https://docs.example/a", "https://docs.example/b"}}, chunks)
		if err != nil {
			t.Fatal(err)
		}
		return chunks
	}
	page("https://docs.example/guide/one.html", src.ID, 3)
	page("https://docs.example/guide/two.html", src.ID, 2)
	page("https://docs.example/guide/old.html", src.ID, 1)
	page("file:///notes/loose.md", 0, 4)
	if err := s.MarkGone(ctx, "https://docs.example/guide/old.html", t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Vectors for every chunk, from two models; model-a also once at another length, before.
	if err := s.AddVectorSet(ctx, "model-a", 2); err != nil {
		t.Fatal(err)
	}
	docs, err := s.ExportDocuments(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, d := range docs {
		ids = append(ids, d.ID)
	}
	chunks, err := s.ExportChunks(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	var a, b []panther.ChunkVector
	for i, c := range chunks {
		a = append(a, panther.ChunkVector{ChunkID: c.ID, Vector: []float32{float32(i) + 0.5, 1, -2.25}})
		b = append(b, panther.ChunkVector{ChunkID: c.ID, Vector: []float32{1, float32(i) / 3}})
	}
	if err := s.PutVectors(ctx, "model-a", a); err != nil {
		t.Fatal(err)
	}
	if err := s.PutVectors(ctx, "model-b", b[:5]); err != nil {
		t.Fatal(err)
	}

	top, err := s.CreateSession(ctx, panther.Session{ID: "top0000000000001", Agent: "general", Model: "m", Title: "how?", Created: t0})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := s.CreateSession(ctx, panther.Session{ID: "sub0000000000001", ParentID: top.ID, Agent: "researcher", Model: "m", Title: "look", Created: t0.Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	msgs := []panther.SessionMessage{
		{Message: panther.Message{Role: panther.RoleUser, Content: "how?"}, Created: t0},
		{Message: panther.Message{Role: panther.RoleAssistant, ToolCalls: []panther.ToolCall{{ID: "c1", Name: "kb_search", Arguments: json.RawMessage(`{"query": "x"}`)}}},
			Created: t0.Add(time.Second), Duration: 1500 * time.Microsecond, Usage: panther.Usage{InputTokens: 10, OutputTokens: 2}},
		{Message: panther.Message{Role: panther.RoleTool, ToolCallID: "c1", Content: "[1] passage", IsError: true}, Created: t0.Add(2 * time.Second),
			Citations: []panther.Citation{{URL: "https://docs.example/guide/one.html", Title: "One", Heading: "Guide > one", Anchor: "sa", FetchedAt: t0, ContentHash: "h"}}},
	}
	if err := s.AppendSessionMessages(ctx, top.ID, msgs); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendSessionMessages(ctx, sub.ID, msgs[:1]); err != nil {
		t.Fatal(err)
	}
	top.Status, top.Steps, top.Usage, top.StoppedBy, top.Updated = panther.SessionDone, 2, panther.Usage{InputTokens: 10, OutputTokens: 2}, "answer", t0.Add(time.Minute)
	if err := s.UpdateSession(ctx, top); err != nil {
		t.Fatal(err)
	}
	sub.Status, sub.Updated = panther.SessionFailed, t0.Add(30*time.Second)
	if err := s.UpdateSession(ctx, sub); err != nil {
		t.Fatal(err)
	}
}

func TestCopyBetweenStoreKinds(t *testing.T) {
	for _, from := range kinds {
		for _, to := range kinds {
			t.Run(from.name+"→"+to.name, func(t *testing.T) {
				src, dst := from.open(t), to.open(t)
				fill(t, src)
				var phases []string
				rep, err := transfer.Copy(t.Context(), src, dst, transfer.Options{BatchSize: 2, Progress: func(p transfer.Progress) {
					if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
						phases = append(phases, p.Phase)
					}
				}})
				if err != nil {
					t.Fatalf("copy: %v\nreport %+v", err, rep)
				}
				want := transfer.Counts{Sources: 2, Documents: 3, Gone: 1, Chunks: 10, Vectors: 15, Sessions: 2, Messages: 4}
				if rep.Copied != want {
					t.Errorf("copied %+v, want %+v", rep.Copied, want)
				}
				if !slices.Equal(phases, []string{"documents", "sessions", "verifying"}) {
					t.Errorf("progress phases %v", phases)
				}
				if rep.Source.DocumentsHash == "" || rep.Source.DocumentsHash != rep.Destination.DocumentsHash || len(rep.Source.Vectors) != 3 {
					t.Errorf("summaries: %+v vs %+v", rep.Source, rep.Destination)
				}
				checkCopy(t, src, dst)
			})
		}
	}
}

// checkCopy reads the copy back through the ordinary store methods, as search and the CLI do.
func checkCopy(t *testing.T, src, dst transfer.Store) {
	t.Helper()
	ctx := t.Context()
	d, err := dst.Document(ctx, "https://docs.example/guide/one.html")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(d.Markdown, "# https://docs.example/guide/one.html") || len(d.Links) != 2 || d.ETag != `"e1"` || !d.FetchedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("copied document %+v", d)
	}
	if gone, err := dst.Document(ctx, "https://docs.example/guide/old.html"); err != nil || gone.Status != panther.DocGone {
		t.Errorf("gone document: %+v, %v", gone, err)
	}
	hits, err := dst.SearchLexical(ctx, panther.Query{Text: "passage b", K: 10})
	if err != nil || len(hits) == 0 {
		t.Errorf("lexical search of the copy: %v, %v", hits, err)
	}
	// model-a's searched set is still the 3-dimension one, with every searchable current chunk.
	with, searchable, err := dst.VectorCoverage(ctx, "model-a")
	if err != nil || with != searchable || searchable == 0 {
		t.Errorf("model-a coverage %d of %d, %v", with, searchable, err)
	}
	srcHits, err := src.SearchVectors(ctx, "model-a", []float32{3.5, 1, -2.25}, 3, panther.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	dstHits, err := dst.SearchVectors(ctx, "model-a", []float32{3.5, 1, -2.25}, 3, panther.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(srcHits) != len(dstHits) || len(dstHits) == 0 {
		t.Fatalf("vector search: %d hits in the source, %d in the copy", len(srcHits), len(dstHits))
	}
	for i := range srcHits {
		if srcHits[i].URL != dstHits[i].URL || srcHits[i].Text != dstHits[i].Text {
			t.Errorf("vector hit %d: %s %q in the source, %s %q in the copy", i, srcHits[i].URL, srcHits[i].Text, dstHits[i].URL, dstHits[i].Text)
		}
	}
	sub, err := dst.Session(ctx, "sub0000000000001")
	if err != nil || sub.ParentID != "top0000000000001" || sub.Status != panther.SessionFailed || !sub.Updated.Equal(t0.Add(30*time.Second)) {
		t.Errorf("copied sub-agent session %+v, %v", sub, err)
	}
	msgs, err := dst.SessionMessages(ctx, "top0000000000001")
	if err != nil || len(msgs) != 3 || string(msgs[1].ToolCalls[0].Arguments) != `{"query": "x"}` || len(msgs[2].Citations) != 1 {
		t.Errorf("copied messages %+v, %v", msgs, err)
	}
}

func TestCopyRefusesANonEmptyDestinationUnlessMerging(t *testing.T) {
	ctx := t.Context()
	src, dst := openSQLite(t), openSQLite(t)
	fill(t, src)
	// The destination has a page of its own, and another version of one of the source's.
	if _, err := dst.PutDocument(ctx, panther.Document{URL: "https://mine.example/kept"}, []panther.Chunk{{Text: "kept"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.PutDocument(ctx, panther.Document{URL: "https://docs.example/guide/two.html", Title: "stale"}, []panther.Chunk{{Text: "stale"}}); err != nil {
		t.Fatal(err)
	}
	_, err := transfer.Copy(ctx, src, dst, transfer.Options{})
	if !errors.Is(err, panther.ErrConflict) || !strings.Contains(err.Error(), "2 documents") {
		t.Fatalf("copy into a non-empty store: %v, want a conflict naming what it holds", err)
	}
	rep, err := transfer.Copy(ctx, src, dst, transfer.Options{Merge: true})
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	if rep.Destination.Documents != 3 || len(rep.Mismatches) != 0 {
		t.Errorf("merge verified %+v", rep.Destination)
	}
	if d, err := dst.Document(ctx, "https://docs.example/guide/two.html"); err != nil || d.Title == "stale" {
		t.Errorf("the source's page did not replace the destination's: %+v, %v", d, err)
	}
	if _, err := dst.Document(ctx, "https://mine.example/kept"); err != nil {
		t.Errorf("merge lost the destination's own page: %v", err)
	}
	// Merging again replaces everything with itself: sessions of the same ID included.
	if _, err := transfer.Copy(ctx, src, dst, transfer.Options{Merge: true}); err != nil {
		t.Fatalf("second merge: %v", err)
	}
}

// tamper is the real destination store with one write altered, as a faulty copy would be.
type tamper struct {
	transfer.Store
	alter func(*panther.Document, []panther.Chunk)
}

func (t tamper) PutDocument(ctx context.Context, d panther.Document, chunks []panther.Chunk) (int64, error) {
	chunks = slices.Clone(chunks)
	t.alter(&d, chunks)
	return t.Store.PutDocument(ctx, d, chunks)
}

func TestCopyDetectsADifferentCopy(t *testing.T) {
	tests := []struct {
		name  string
		alter func(*panther.Document, []panther.Chunk)
		want  string
	}{
		{"a chunk's text", func(d *panther.Document, c []panther.Chunk) {
			if strings.HasSuffix(d.URL, "two.html") {
				c[1].Text += "!"
			}
		}, "documents hash"},
		{"a chunk lost", func(d *panther.Document, c []panther.Chunk) {
			if strings.HasSuffix(d.URL, "two.html") {
				c[1] = c[0]
			}
		}, "documents hash"},
		{"a keyword", func(d *panther.Document, c []panther.Chunk) { c[0].Keywords = "" }, "documents hash"},
		{"the content hash", func(d *panther.Document, c []panther.Chunk) { d.ContentHash = "x" }, "documents hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := openSQLite(t), openSQLite(t)
			fill(t, src)
			rep, err := transfer.Copy(t.Context(), src, tamper{dst, tt.alter}, transfer.Options{})
			if !errors.Is(err, transfer.ErrMismatch) {
				t.Fatalf("copy of an altered destination: %v, want a mismatch", err)
			}
			if len(rep.Mismatches) == 0 || !strings.Contains(strings.Join(rep.Mismatches, "\n"), tt.want) {
				t.Errorf("mismatches %q, want one about %s", rep.Mismatches, tt.want)
			}
		})
	}
}

func TestSummaryNoticesEveryKindOfChange(t *testing.T) {
	ctx := t.Context()
	src, dst := openSQLite(t), openSQLite(t)
	fill(t, src)
	if _, err := transfer.Copy(ctx, src, dst, transfer.Options{}); err != nil {
		t.Fatal(err)
	}
	before, err := transfer.Summarize(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	changes := []struct {
		name   string
		change func(*testing.T, transfer.Store)
		want   string
	}{
		{"a vector", func(t *testing.T, s transfer.Store) {
			vecs, err := s.ChunksToEmbed(ctx, "model-b", 1)
			if err != nil || len(vecs) != 1 {
				t.Fatalf("a chunk without a model-b vector: %v, %v", vecs, err)
			}
			if err := s.PutVectors(ctx, "model-b", []panther.ChunkVector{{ChunkID: vecs[0].ID, Vector: []float32{0, 1}}}); err != nil {
				t.Fatal(err)
			}
		}, "vectors of model-b/2: 5 in the source, 6 in the destination"},
		{"a message", func(t *testing.T, s transfer.Store) {
			if err := s.AppendSessionMessages(ctx, "sub0000000000001", []panther.SessionMessage{{Message: panther.Message{Role: panther.RoleAssistant, Content: "more"}}}); err != nil {
				t.Fatal(err)
			}
		}, "session messages"},
		{"a gone page", func(t *testing.T, s transfer.Store) {
			if err := s.MarkGone(ctx, "file:///notes/loose.md", t0); err != nil {
				t.Fatal(err)
			}
		}, "gone documents: 1 in the source, 2"},
		{"a source's crawl time", func(t *testing.T, s transfer.Store) {
			list, _ := s.Sources(ctx)
			if err := s.MarkCrawled(ctx, list[0].ID, t0.Add(48*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}, "sources hash"},
	}
	for _, c := range changes {
		c.change(t, dst)
		after, err := transfer.Summarize(ctx, dst)
		if err != nil {
			t.Fatal(err)
		}
		diff := transfer.Compare(before, after)
		if !strings.Contains(strings.Join(diff, "\n"), c.want) {
			t.Errorf("after changing %s: differences %q, want one about %q", c.name, diff, c.want)
		}
		before = after
	}
}
