// Package transfer moves a whole knowledge base from one store to another: SQLite to PostgreSQL and
// back, or between two stores of one kind. It copies the sources (with their times), every document
// with its chunks (text, heading path, anchor, order, token count, navigation flag, keywords), the
// vectors of every embedding model, and the agent sessions with their messages, sub-agent sessions
// under their parents. Crawl frontiers are not copied: they only matter while a crawl runs, and
// the next crawl of a source starts a fresh one.
//
// Copy then verifies: it summarises both stores (counts per kind, and order-independent hashes over
// every copied field, see Summary) and reports any difference as ErrMismatch. Both stores are read
// and written in batches, so memory stays bounded by a batch of documents, not by the knowledge
// base; the exception is the sessions' metadata (not their messages), which is held whole to order
// parents before their sub-agents.
//
// The copy is not one transaction: the source should not be written while it runs (a crawl adding
// pages shows up as a mismatch), and a copy that failed half-way leaves a partial destination,
// which a later copy with Options.Merge completes.
package transfer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"panther"
)

// Store is what a copy reads from and writes to; the sqlite and postgres stores are both.
type Store interface {
	panther.Store
	panther.VectorIndex
	panther.Exporter
	panther.Importer
}

// DefaultBatchSize is how many documents a copy reads and writes at a time.
const DefaultBatchSize = 100

// maxIDs bounds the ids of one export call (the stores accept up to 10,000).
const maxIDs = 5000

// ErrMismatch is returned, wrapped, when the destination's summary differs from the source's after
// a copy.
var ErrMismatch = errors.New("the copy does not match its source")

// Options tune a copy. The zero value copies into an empty destination in default batches.
type Options struct {
	// Merge copies into a destination that already holds a knowledge base: documents of the same
	// URL, sessions of the same ID (with their sub-agent sessions) and sources of the same URL are
	// replaced by the source's; everything else in the destination stays. Verification then
	// compares only what was copied. Without Merge a destination that is not empty is refused.
	Merge bool
	// BatchSize is how many documents are read and written at a time; 0 means DefaultBatchSize.
	BatchSize int
	// Progress, when set, is called after every batch.
	Progress func(Progress)
}

// Progress is how far a copy has come.
type Progress struct {
	// Phase is "documents", "sessions" or "verifying".
	Phase string
	Done  int
	// Total is what Done counts up to; 0 when unknown.
	Total int
}

// Counts are what a copy wrote.
type Counts struct {
	Sources   int `json:"sources"`
	Documents int `json:"documents"`
	Gone      int `json:"gone"`
	Chunks    int `json:"chunks"`
	Vectors   int `json:"vectors"`
	Sessions  int `json:"sessions"`
	Messages  int `json:"messages"`
}

// Report is what a copy did and what verification found.
type Report struct {
	Copied      Counts  `json:"copied"`
	Source      Summary `json:"source"`
	Destination Summary `json:"destination"`
	// Mismatches lists every difference between the two summaries; empty when the copy is exact.
	Mismatches []string `json:"mismatches"`
}

// Copy copies everything src holds into dst and verifies the copy. The report is filled in as far
// as the copy got, also when it fails; a copy that differs from its source returns ErrMismatch.
func Copy(ctx context.Context, src, dst Store, o Options) (Report, error) {
	rep := Report{Mismatches: []string{}}
	if o.BatchSize < 0 || o.BatchSize > maxIDs {
		return rep, panther.Invalidf("copy: batch size must be between 1 and %d, got %d", maxIDs, o.BatchSize)
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if !o.Merge {
		if what, err := holds(ctx, dst); err != nil {
			return rep, fmt.Errorf("copy: read the destination: %w", err)
		} else if what != "" {
			return rep, fmt.Errorf("copy: the destination is not empty (it holds %s); merge into it to replace documents of the same URL and keep the rest: %w", what, panther.ErrConflict)
		}
	}
	c := &copier{src: src, dst: dst, o: o, rep: &rep}
	if err := c.sources(ctx); err != nil {
		return rep, err
	}
	if err := c.vectorSets(ctx); err != nil {
		return rep, err
	}
	if err := c.documents(ctx); err != nil {
		return rep, err
	}
	sessions, err := c.sessions(ctx)
	if err != nil {
		return rep, err
	}
	c.progress("verifying", 0, 0)
	if rep.Source, err = summarize(ctx, src, nil); err != nil {
		return rep, fmt.Errorf("verify: summarize the source: %w", err)
	}
	var only *keys
	if o.Merge {
		only = c.sourceKeys(sessions)
	}
	if rep.Destination, err = summarize(ctx, dst, only); err != nil {
		return rep, fmt.Errorf("verify: summarize the destination: %w", err)
	}
	rep.Mismatches = Compare(rep.Source, rep.Destination)
	if len(rep.Mismatches) > 0 {
		return rep, fmt.Errorf("%w: %s", ErrMismatch, strings.Join(rep.Mismatches, "; "))
	}
	return rep, nil
}

// Summarize counts and hashes everything s holds, as Copy does to verify a copy.
func Summarize(ctx context.Context, s Store) (Summary, error) {
	return summarize(ctx, s, nil)
}

// holds says what a store holds, "" when it is empty.
func holds(ctx context.Context, s Store) (string, error) {
	st, err := s.Stats(ctx)
	if err != nil {
		return "", err
	}
	sessions, err := s.Sessions(ctx, panther.SessionFilter{Limit: 1})
	if err != nil {
		return "", err
	}
	sets, err := s.VectorSets(ctx)
	if err != nil {
		return "", err
	}
	var parts []string
	if st.Sources > 0 {
		parts = append(parts, fmt.Sprintf("%d sources", st.Sources))
	}
	if n := st.Documents + st.Gone; n > 0 {
		parts = append(parts, fmt.Sprintf("%d documents", n))
	}
	if len(sessions) > 0 {
		parts = append(parts, "sessions")
	}
	if len(sets) > 0 && len(parts) == 0 {
		parts = append(parts, "vector sets")
	}
	return strings.Join(parts, ", "), nil
}

type copier struct {
	src, dst Store
	o        Options
	rep      *Report
	// sourceIDs maps the source's source ids to the destination's.
	sourceIDs map[int64]int64
	// sets are the source's vector sets that hold vectors.
	sets []panther.VectorSet
	// srcSources are the source's source URLs, for verifying a merge.
	srcSources map[string]bool
	srcSets    map[setKey]bool
}

func (c *copier) progress(phase string, done, total int) {
	if c.o.Progress != nil {
		c.o.Progress(Progress{Phase: phase, Done: done, Total: total})
	}
}

func (c *copier) sources(ctx context.Context) error {
	list, err := c.src.Sources(ctx)
	if err != nil {
		return fmt.Errorf("copy sources: %w", err)
	}
	c.sourceIDs = make(map[int64]int64, len(list))
	c.srcSources = make(map[string]bool, len(list))
	for _, s := range list {
		out, err := c.dst.ImportSource(ctx, s)
		if err != nil {
			return fmt.Errorf("copy sources: %w", err)
		}
		c.sourceIDs[s.ID] = out.ID
		c.srcSources[s.URL] = true
		c.rep.Copied.Sources++
	}
	return nil
}

// vectorSets creates the destination's sets in the source's order, so that each model's searched
// set is the same on both sides. A model the destination already has (a merge) keeps its sets: a
// set added now would become its newest.
func (c *copier) vectorSets(ctx context.Context) error {
	sets, err := c.src.VectorSets(ctx)
	if err != nil {
		return fmt.Errorf("copy vector sets: %w", err)
	}
	have, err := c.dst.VectorSets(ctx)
	if err != nil {
		return fmt.Errorf("copy vector sets: %w", err)
	}
	haveModel := map[string]bool{}
	for _, s := range have {
		haveModel[s.Model] = true
	}
	c.srcSets = map[setKey]bool{}
	for _, s := range sets {
		c.srcSets[setKey{s.Model, s.Dims}] = true
		if !haveModel[s.Model] {
			if err := c.dst.AddVectorSet(ctx, s.Model, s.Dims); err != nil {
				return fmt.Errorf("copy vector sets: %w", err)
			}
		}
		if s.Vectors > 0 {
			c.sets = append(c.sets, s)
		}
	}
	return nil
}

func (c *copier) documents(ctx context.Context) error {
	st, err := c.src.Stats(ctx)
	if err != nil {
		return fmt.Errorf("copy documents: %w", err)
	}
	total := st.Documents + st.Gone
	var after int64
	done := 0
	for {
		docs, err := c.src.ExportDocuments(ctx, after, c.o.BatchSize)
		if err != nil {
			return fmt.Errorf("copy documents: %w", err)
		}
		if len(docs) == 0 {
			return nil
		}
		after = docs[len(docs)-1].ID
		if err := c.batch(ctx, docs); err != nil {
			return err
		}
		done += len(docs)
		c.progress("documents", done, max(total, done))
	}
}

// batch copies one batch of documents with their chunks and vectors.
func (c *copier) batch(ctx context.Context, docs []panther.ExportedDocument) error {
	ids := make([]int64, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	chunks, err := c.src.ExportChunks(ctx, ids)
	if err != nil {
		return fmt.Errorf("copy documents: %w", err)
	}
	byDoc := groupChunks(chunks)
	dstIDs := make([]int64, len(docs))
	for i, d := range docs {
		doc := d.Document
		doc.SourceID = c.sourceIDs[d.SourceID]
		id, err := c.dst.PutDocument(ctx, doc, byDoc[d.ID])
		if err != nil {
			return fmt.Errorf("copy documents: %w", err)
		}
		if d.Status == panther.DocGone {
			if err := c.dst.MarkGone(ctx, d.URL, d.GoneAt); err != nil {
				return fmt.Errorf("copy documents: %w", err)
			}
			c.rep.Copied.Gone++
		} else {
			c.rep.Copied.Documents++
		}
		c.rep.Copied.Chunks += len(byDoc[d.ID])
		dstIDs[i] = id
	}
	if len(c.sets) == 0 || len(chunks) == 0 {
		return nil
	}
	// The destination numbered the chunks anew, in the order they were given: pair them up by
	// position within each document.
	dstChunks, err := c.dst.ExportChunks(ctx, dstIDs)
	if err != nil {
		return fmt.Errorf("copy documents: read back the copied chunks: %w", err)
	}
	dstByDoc := groupChunks(dstChunks)
	chunkID := make(map[int64]int64, len(chunks))
	for i, d := range docs {
		from, to := byDoc[d.ID], dstByDoc[dstIDs[i]]
		if len(from) != len(to) {
			return fmt.Errorf("copy documents: %s: %d chunks copied, the destination holds %d", d.URL, len(from), len(to))
		}
		for j := range from {
			chunkID[from[j].ID] = to[j].ID
		}
	}
	srcChunkIDs := make([]int64, len(chunks))
	for i, ch := range chunks {
		srcChunkIDs[i] = ch.ID
	}
	for _, set := range c.sets {
		err := inBatches(srcChunkIDs, func(part []int64) error {
			vecs, err := c.src.ExportVectors(ctx, set, part)
			if err != nil || len(vecs) == 0 {
				return err
			}
			for i := range vecs {
				vecs[i].ChunkID = chunkID[vecs[i].ChunkID]
			}
			if err := c.dst.PutVectors(ctx, set.Model, vecs); err != nil {
				return err
			}
			c.rep.Copied.Vectors += len(vecs)
			return nil
		})
		if err != nil {
			return fmt.Errorf("copy vectors of %s/%d: %w", set.Model, set.Dims, err)
		}
	}
	return nil
}

// groupChunks splits chunks ordered by document into each document's, keeping their order.
func groupChunks(chunks []panther.Chunk) map[int64][]panther.Chunk {
	out := map[int64][]panther.Chunk{}
	for _, ch := range chunks {
		out[ch.DocID] = append(out[ch.DocID], ch)
	}
	return out
}

// inBatches calls fn on consecutive parts of ids of at most maxIDs each.
func inBatches(ids []int64, fn func([]int64) error) error {
	for lo := 0; lo < len(ids); lo += maxIDs {
		if err := fn(ids[lo:min(lo+maxIDs, len(ids))]); err != nil {
			return err
		}
	}
	return nil
}

// sessions copies every session, each after its parent, and returns the ids copied.
func (c *copier) sessions(ctx context.Context) (map[string]bool, error) {
	list, err := c.src.Sessions(ctx, panther.SessionFilter{})
	if err != nil {
		return nil, fmt.Errorf("copy sessions: %w", err)
	}
	byID := make(map[string]panther.Session, len(list))
	for _, s := range list {
		byID[s.ID] = s
	}
	copied := make(map[string]bool, len(list))
	var copyOne func(s panther.Session, depth int) error
	copyOne = func(s panther.Session, depth int) error {
		if copied[s.ID] {
			return nil
		}
		if depth > len(list) {
			return fmt.Errorf("session %s: its parents form a cycle", s.ID)
		}
		if p, ok := byID[s.ParentID]; ok && s.ParentID != "" {
			if err := copyOne(p, depth+1); err != nil {
				return err
			}
		}
		if err := c.session(ctx, s); err != nil {
			return err
		}
		copied[s.ID] = true
		c.progress("sessions", len(copied), len(list))
		return nil
	}
	// Least recently updated first, roughly the order the sessions were made in.
	for i := len(list) - 1; i >= 0; i-- {
		if err := copyOne(list[i], 0); err != nil {
			return nil, fmt.Errorf("copy sessions: %w", err)
		}
	}
	return copied, nil
}

func (c *copier) session(ctx context.Context, s panther.Session) error {
	msgs, err := c.src.SessionMessages(ctx, s.ID)
	if err != nil {
		return err
	}
	_, err = c.dst.CreateSession(ctx, s)
	if errors.Is(err, panther.ErrConflict) && c.o.Merge {
		if err := c.dst.DeleteSession(ctx, s.ID); err != nil {
			return err
		}
		_, err = c.dst.CreateSession(ctx, s)
	}
	if err != nil {
		return err
	}
	if len(msgs) > 0 {
		if err := c.dst.AppendSessionMessages(ctx, s.ID, msgs); err != nil {
			return err
		}
	}
	// Appending moved the session's updated time to now; this puts it (and the totals) back.
	if err := c.dst.UpdateSession(ctx, s); err != nil {
		return err
	}
	c.rep.Copied.Sessions++
	c.rep.Copied.Messages += len(msgs)
	return nil
}

// sourceKeys restricts a merge's verification to what the source holds.
func (c *copier) sourceKeys(sessions map[string]bool) *keys {
	return &keys{
		source:  func(url string) bool { return c.srcSources[url] },
		session: func(id string) bool { return sessions[id] },
		set:     func(k setKey) bool { return c.srcSets[k] },
		document: func(ctx context.Context, url string) (bool, error) {
			_, err := c.src.DocumentMeta(ctx, url)
			if errors.Is(err, panther.ErrNotFound) {
				return false, nil
			}
			return err == nil, err
		},
	}
}
