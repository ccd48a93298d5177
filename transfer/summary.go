package transfer

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"math"
	"slices"
	"time"

	"panther"
)

// Summary is what verification compares: counts per kind and, per kind, a hash over every field a
// copy carries. Store ids are left out (each store numbers its own rows): documents are known by
// URL, chunks by their place in their document, sources by URL, sessions by ID. The hashes do not
// depend on the order rows are read in, so two stores that number rows differently agree.
type Summary struct {
	Sources   int `json:"sources"`
	Documents int `json:"documents"`
	Gone      int `json:"gone"`
	Chunks    int `json:"chunks"`
	Sessions  int `json:"sessions"`
	Messages  int `json:"messages"`
	// Vectors are per model and length, ordered by model, then length.
	Vectors []VectorSummary `json:"vectors"`
	// SourcesHash covers each source's URL and times.
	SourcesHash string `json:"sources_hash"`
	// DocumentsHash covers each document's URL, source URL, title, markdown, validators (content
	// hash included), times, status, links, and its chunks in order with every field.
	DocumentsHash string `json:"documents_hash"`
	// SessionsHash covers each session's fields and its messages in order with every field.
	SessionsHash string `json:"sessions_hash"`
}

// VectorSummary counts and hashes one vector set: each vector with its document URL and the
// chunk's place in it.
type VectorSummary struct {
	Model   string `json:"model"`
	Dims    int    `json:"dimensions"`
	Vectors int    `json:"vectors"`
	Hash    string `json:"hash"`
}

// Compare lists every difference between a source's summary and its copy's.
func Compare(src, dst Summary) []string {
	out := []string{}
	count := func(what string, a, b int) {
		if a != b {
			out = append(out, fmt.Sprintf("%s: %d in the source, %d in the destination", what, a, b))
		}
	}
	sum := func(what, a, b string) {
		if a != b {
			out = append(out, fmt.Sprintf("%s hash: %s in the source, %s in the destination", what, short(a), short(b)))
		}
	}
	count("sources", src.Sources, dst.Sources)
	count("documents", src.Documents, dst.Documents)
	count("gone documents", src.Gone, dst.Gone)
	count("chunks", src.Chunks, dst.Chunks)
	count("sessions", src.Sessions, dst.Sessions)
	count("session messages", src.Messages, dst.Messages)
	sum("sources", src.SourcesHash, dst.SourcesHash)
	sum("documents", src.DocumentsHash, dst.DocumentsHash)
	sum("sessions", src.SessionsHash, dst.SessionsHash)
	dstSets := map[setKey]VectorSummary{}
	for _, v := range dst.Vectors {
		dstSets[setKey{v.Model, v.Dims}] = v
	}
	for _, a := range src.Vectors {
		k := setKey{a.Model, a.Dims}
		b, ok := dstSets[k]
		delete(dstSets, k)
		if !ok && a.Vectors > 0 {
			out = append(out, fmt.Sprintf("vectors of %s/%d: %d in the source, none in the destination", a.Model, a.Dims, a.Vectors))
		}
		if !ok {
			continue
		}
		count(fmt.Sprintf("vectors of %s/%d", a.Model, a.Dims), a.Vectors, b.Vectors)
		sum(fmt.Sprintf("vectors of %s/%d", a.Model, a.Dims), a.Hash, b.Hash)
	}
	for _, b := range dst.Vectors {
		if _, extra := dstSets[setKey{b.Model, b.Dims}]; extra && b.Vectors > 0 {
			out = append(out, fmt.Sprintf("vectors of %s/%d: none in the source, %d in the destination", b.Model, b.Dims, b.Vectors))
		}
	}
	return out
}

// short shortens a hash for a message; the summaries printed beside it carry it whole.
func short(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

type setKey struct {
	model string
	dims  int
}

// keys restricts a summary to some sources, documents, sessions and vector sets; nil means all.
type keys struct {
	source   func(url string) bool
	document func(ctx context.Context, url string) (bool, error)
	session  func(id string) bool
	set      func(setKey) bool
}

// summarize reads everything s holds (or what only lets through) in batches, as Copy does.
func summarize(ctx context.Context, s Store, only *keys) (Summary, error) {
	var sum Summary
	sources, err := s.Sources(ctx)
	if err != nil {
		return sum, err
	}
	sourceURL := make(map[int64]string, len(sources))
	var srcSet multiset
	for _, src := range sources {
		sourceURL[src.ID] = src.URL
		if only != nil && !only.source(src.URL) {
			continue
		}
		h := newItem()
		h.str(src.URL)
		h.time(src.CreatedAt)
		h.time(src.LastCrawlAt)
		srcSet.add(h)
	}
	sum.Sources, sum.SourcesHash = srcSet.n, srcSet.sum()

	if err := summarizeDocuments(ctx, s, only, sourceURL, &sum); err != nil {
		return sum, err
	}

	sessions, err := s.Sessions(ctx, panther.SessionFilter{})
	if err != nil {
		return sum, err
	}
	var sessSet multiset
	for _, se := range sessions {
		if only != nil && !only.session(se.ID) {
			continue
		}
		msgs, err := s.SessionMessages(ctx, se.ID)
		if err != nil {
			return sum, err
		}
		sessSet.add(sessionItem(se, msgs))
		sum.Messages += len(msgs)
	}
	sum.Sessions, sum.SessionsHash = sessSet.n, sessSet.sum()
	return sum, nil
}

func summarizeDocuments(ctx context.Context, s Store, only *keys, sourceURL map[int64]string, sum *Summary) error {
	sets, err := s.VectorSets(ctx)
	if err != nil {
		return err
	}
	if only != nil {
		sets = slices.DeleteFunc(sets, func(v panther.VectorSet) bool { return !only.set(setKey{v.Model, v.Dims}) })
	}
	vecSets := make([]multiset, len(sets))
	var docSet multiset
	var after int64
	for {
		docs, err := s.ExportDocuments(ctx, after, DefaultBatchSize)
		if err != nil {
			return err
		}
		if len(docs) == 0 {
			break
		}
		after = docs[len(docs)-1].ID
		if only != nil {
			kept := docs[:0]
			for _, d := range docs {
				ok, err := only.document(ctx, d.URL)
				if err != nil {
					return err
				}
				if ok {
					kept = append(kept, d)
				}
			}
			docs = kept
		}
		if len(docs) == 0 {
			continue
		}
		ids := make([]int64, len(docs))
		for i, d := range docs {
			ids[i] = d.ID
		}
		chunks, err := s.ExportChunks(ctx, ids)
		if err != nil {
			return err
		}
		byDoc := groupChunks(chunks)
		// Where each chunk is: its document's URL and its place in the document.
		type place struct {
			url string
			pos int
		}
		at := make(map[int64]place, len(chunks))
		for _, d := range docs {
			docSet.add(documentItem(d, sourceURL[d.SourceID], byDoc[d.ID]))
			if d.Status == panther.DocGone {
				sum.Gone++
			} else {
				sum.Documents++
			}
			sum.Chunks += len(byDoc[d.ID])
			for i, ch := range byDoc[d.ID] {
				at[ch.ID] = place{d.URL, i}
			}
		}
		chunkIDs := make([]int64, len(chunks))
		for i, ch := range chunks {
			chunkIDs[i] = ch.ID
		}
		for i, set := range sets {
			err := inBatches(chunkIDs, func(part []int64) error {
				vecs, err := s.ExportVectors(ctx, set, part)
				if err != nil {
					return err
				}
				for _, v := range vecs {
					h := newItem()
					h.str(at[v.ChunkID].url)
					h.int(int64(at[v.ChunkID].pos))
					h.int(int64(len(v.Vector)))
					for _, x := range v.Vector {
						h.int(int64(math.Float32bits(x)))
					}
					vecSets[i].add(h)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	sum.DocumentsHash = docSet.sum()
	sum.Vectors = make([]VectorSummary, len(sets))
	for i, set := range sets {
		sum.Vectors[i] = VectorSummary{Model: set.Model, Dims: set.Dims, Vectors: vecSets[i].n, Hash: vecSets[i].sum()}
	}
	slices.SortFunc(sum.Vectors, func(a, b VectorSummary) int {
		return cmp.Or(cmp.Compare(a.Model, b.Model), cmp.Compare(a.Dims, b.Dims))
	})
	return nil
}

func documentItem(d panther.ExportedDocument, sourceURL string, chunks []panther.Chunk) *item {
	h := newItem()
	h.str(d.URL)
	h.str(sourceURL)
	h.str(d.Title)
	h.str(d.Markdown)
	h.str(d.ETag)
	h.str(d.LastModified)
	h.str(d.ContentHash)
	h.time(d.FetchedAt)
	h.str(string(d.Status))
	h.time(d.GoneAt)
	h.strs(d.Links)
	h.int(int64(len(chunks)))
	for _, c := range chunks {
		// Each chunk hashed on its own first, so the document's hash is over its chunks' hashes in order.
		ch := newItem()
		ch.int(int64(c.Ordinal))
		ch.strs(c.Heading)
		ch.str(c.Anchor)
		ch.str(c.Text)
		ch.int(int64(c.Tokens))
		ch.bool(c.Navigation)
		ch.str(c.Keywords)
		h.h.Write(ch.h.Sum(nil))
	}
	return h
}

func sessionItem(s panther.Session, msgs []panther.SessionMessage) *item {
	h := newItem()
	h.str(s.ID)
	h.str(s.ParentID)
	h.str(s.Agent)
	h.str(s.Model)
	h.str(s.Title)
	h.time(s.Created)
	h.time(s.Updated)
	h.int(int64(s.Usage.InputTokens))
	h.int(int64(s.Usage.OutputTokens))
	h.int(int64(s.Steps))
	h.str(s.StoppedBy)
	h.str(string(s.Status))
	h.int(int64(len(msgs)))
	for _, m := range msgs {
		h.int(int64(m.Seq))
		h.str(string(m.Role))
		h.str(m.Content)
		h.int(int64(len(m.ToolCalls)))
		for _, tc := range m.ToolCalls {
			h.str(tc.ID)
			h.str(tc.Name)
			h.str(string(tc.Arguments))
		}
		h.str(m.ToolCallID)
		h.bool(m.IsError)
		h.time(m.Created)
		h.int(int64(m.Duration / time.Microsecond))
		h.int(int64(m.Usage.InputTokens))
		h.int(int64(m.Usage.OutputTokens))
		h.int(int64(len(m.Citations)))
		for _, c := range m.Citations {
			h.str(c.URL)
			h.str(c.Title)
			h.str(c.Heading)
			h.str(c.Anchor)
			h.time(c.FetchedAt)
			h.str(c.ContentHash)
		}
	}
	return h
}

// item hashes one row's fields, each length-prefixed so that no two different rows write the same bytes.
type item struct{ h hash.Hash }

func newItem() *item { return &item{h: sha256.New()} }

func (it *item) int(n int64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	it.h.Write(b[:])
}

func (it *item) str(s string) {
	it.int(int64(len(s)))
	it.h.Write([]byte(s))
}

func (it *item) strs(ss []string) {
	it.int(int64(len(ss)))
	for _, s := range ss {
		it.str(s)
	}
}

func (it *item) bool(b bool) {
	if b {
		it.int(1)
	} else {
		it.int(0)
	}
}

// time hashes t to the microsecond, which both stores keep; the zero time is not any instant.
func (it *item) time(t time.Time) {
	if t.IsZero() {
		it.int(0)
		return
	}
	it.int(1)
	it.int(t.UnixMicro())
}

// multiset combines item hashes regardless of their order: each lane is a sum modulo 2^64 of the
// items' SHA-256 words. It detects accidental differences (a lost, extra or altered row), which is
// its job here, not deliberate collisions.
type multiset struct {
	lanes [4]uint64
	n     int
}

func (m *multiset) add(it *item) {
	s := it.h.Sum(nil)
	for i := range m.lanes {
		m.lanes[i] += binary.BigEndian.Uint64(s[8*i:])
	}
	m.n++
}

func (m *multiset) sum() string {
	var b [40]byte
	for i, l := range m.lanes {
		binary.BigEndian.PutUint64(b[8*i:], l)
	}
	binary.BigEndian.PutUint64(b[32:], uint64(m.n))
	s := sha256.Sum256(b[:])
	return hex.EncodeToString(s[:])
}
