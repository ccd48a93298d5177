// Package kb is the knowledge-base service: it cuts extracted pages into chunks, stores them
// (recognising unchanged pages and duplicates so that re-crawls cost no re-indexing), searches them with
// per-page diversity, and measures search quality against relevance judgements (qrels) for `panther eval`.
package kb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"panther"
)

// Store is what the service needs of a store.
type Store interface {
	panther.DocumentStore
	panther.LexicalIndex
}

// Options tune the service. Zero values take the defaults.
type Options struct {
	// ChunkTokens bounds a chunk, in cl100k_base tokens (DefaultChunkTokens; see there for why).
	ChunkTokens int
	// OverlapTokens is repeated between the parts of a split section (DefaultOverlapTokens); negative
	// means none.
	OverlapTokens int
	// MaxPassagesPerPage caps how many hits of one page a search returns (DefaultMaxPassagesPerPage);
	// negative means no cap.
	MaxPassagesPerPage int
	// KeepEmptySections: see ChunkOptions.
	KeepEmptySections bool
	// Embedder makes the vectors of vector and hybrid search; nil means lexical search only. The
	// store must then also be a panther.VectorIndex.
	Embedder panther.Embedder
	// VectorWeight is the vector side's share of a hybrid score, 0 to 1 (DefaultVectorWeight).
	VectorWeight float64
}

// DefaultVectorWeight is the largest weight measured (BENCHMARKS.md) at which hybrid search with
// the built-in embedder is no worse than lexical search on the book index, and better on the
// paraphrase set.
const DefaultVectorWeight = 0.1

// DefaultMaxPassagesPerPage gives each page one passage, its best: ten hits from ten pages find the
// right page more often than ten hits from fewer pages (on the PostgreSQL manual's book index,
// page-level Recall@10 0.929 against 0.914 with two per page), at some cost at section level (0.859
// against 0.886), where the page's other sections are one kb_read away. See BENCHMARKS.md.
const DefaultMaxPassagesPerPage = 1

// candidatePoolFactor is how many more passages than asked for Search takes from the store, so that
// after capping passages per page there are still K left; maxCandidates bounds the first pool, and
// candidatePoolFactor*maxCandidates the deepest.
const (
	candidatePoolFactor = 4
	maxCandidates       = 400
)

// Service is the knowledge base over one store. It is safe for concurrent use.
type Service struct {
	store    Store
	chunking ChunkOptions
	perPage  int
	// embedder and vectors are nil for a lexical-only service.
	embedder     panther.Embedder
	vectors      panther.VectorIndex
	vectorWeight float64
}

// New returns a service over store.
func New(store Store, opts Options) (*Service, error) {
	if store == nil {
		return nil, panther.Invalidf("kb: nil store")
	}
	if opts.ChunkTokens < 0 {
		return nil, panther.Invalidf("kb: chunk tokens must not be negative, got %d", opts.ChunkTokens)
	}
	if opts.ChunkTokens > 0 && opts.ChunkTokens < minChunkTokens {
		return nil, panther.Invalidf("kb: chunk tokens must be at least %d, got %d", minChunkTokens, opts.ChunkTokens)
	}
	co := ChunkOptions{MaxTokens: opts.ChunkTokens, OverlapTokens: opts.OverlapTokens, KeepEmptySections: opts.KeepEmptySections}.normalized()
	if opts.OverlapTokens > co.MaxTokens/4 {
		return nil, panther.Invalidf("kb: overlap of %d tokens is more than a quarter of the chunk size %d", opts.OverlapTokens, co.MaxTokens)
	}
	// Load the vocabulary now, so that a broken tokenizer fails at start-up rather than on the first
	// page, and the first ingest does not pay for it.
	if _, err := cl100kRanks(); err != nil {
		return nil, fmt.Errorf("kb: load cl100k_base tokenizer: %w", err)
	}
	perPage := opts.MaxPassagesPerPage
	if perPage == 0 {
		perPage = DefaultMaxPassagesPerPage
	}
	svc := &Service{store: store, chunking: co, perPage: perPage, embedder: opts.Embedder, vectorWeight: opts.VectorWeight}
	if svc.vectorWeight == 0 {
		svc.vectorWeight = DefaultVectorWeight
	}
	if svc.vectorWeight < 0 || svc.vectorWeight > 1 {
		return nil, panther.Invalidf("kb: vector weight must be between 0 and 1, got %g", opts.VectorWeight)
	}
	if opts.Embedder != nil {
		vi, ok := store.(panther.VectorIndex)
		if !ok {
			return nil, panther.Invalidf("kb: an embedder needs a store that keeps vectors")
		}
		svc.vectors = vi
	}
	return svc, nil
}

// Ingest stores a fetched page and its sections. A page whose content is already stored under another
// URL is a duplicate and stores nothing; a page stored with the same content is only touched (new
// validators and fetch time, no re-indexing); otherwise the page's chunks replace its old ones.
func (s *Service) Ingest(ctx context.Context, doc panther.Document, sections []panther.Section) (panther.IngestOutcome, error) {
	if err := validateDoc(doc); err != nil {
		return "", err
	}
	prev, err := s.store.DocumentMeta(ctx, doc.URL)
	known := err == nil
	if err != nil && !errors.Is(err, panther.ErrNotFound) {
		return "", fmt.Errorf("ingest %s: look up stored page: %w", doc.URL, err)
	}
	// A gone page that comes back unchanged is also only touched: Touch makes it current again.
	if known && prev.ContentHash == doc.ContentHash {
		if err := s.store.Touch(ctx, doc.URL, doc.Validators, doc.FetchedAt); err != nil {
			return "", fmt.Errorf("ingest %s: touch unchanged page: %w", doc.URL, err)
		}
		return panther.IngestUnchanged, nil
	}
	dup, err := s.store.DocumentByHash(ctx, doc.ContentHash)
	switch {
	case err == nil && dup.URL != doc.URL:
		return panther.IngestDuplicate, nil
	case err != nil && !errors.Is(err, panther.ErrNotFound):
		return "", fmt.Errorf("ingest %s: look up content hash: %w", doc.URL, err)
	}
	chunks := Chunk(sections, s.chunking)
	if _, err := s.store.PutDocument(ctx, doc, chunks); err != nil {
		return "", fmt.Errorf("ingest %s: store %d chunks: %w", doc.URL, len(chunks), err)
	}
	if known {
		return panther.IngestChanged, nil
	}
	return panther.IngestNew, nil
}

func validateDoc(doc panther.Document) error {
	if doc.URL == "" {
		return panther.Invalidf("ingest: document without URL")
	}
	if strings.ContainsAny(doc.URL, " \t\r\n") || !strings.Contains(doc.URL, ":") {
		return panther.Invalidf("ingest %q: URL is not absolute", doc.URL)
	}
	if doc.ContentHash == "" {
		return panther.Invalidf("ingest %s: no content hash", doc.URL)
	}
	if doc.FetchedAt.IsZero() {
		return panther.Invalidf("ingest %s: no fetch time", doc.URL)
	}
	return nil
}

// Search returns up to q.K passages, best first, at most MaxPassagesPerPage of them from one page.
func (s *Service) Search(ctx context.Context, q panther.Query) ([]panther.Hit, error) {
	if err := q.Validate(); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	mode := q.Mode
	if mode == "" {
		mode = s.DefaultMode()
	}
	if mode != panther.ModeLexical && s.embedder == nil {
		return nil, panther.Invalidf("search: %s search needs an embedder, and none is configured", mode)
	}
	var qvec []float32
	if mode != panther.ModeLexical {
		vecs, err := s.embedder.Embed(ctx, []string{q.Text})
		if err != nil {
			return nil, fmt.Errorf("search %q: embed the query: %w", q.Text, err)
		}
		qvec = vecs[0]
	}
	pool := q
	if s.perPage > 0 {
		pool.K = min(q.K*candidatePoolFactor, max(maxCandidates, q.K), panther.MaxK)
	}
	var out []panther.Hit
	for {
		hits, err := s.candidates(ctx, mode, pool, qvec)
		if err != nil {
			return nil, fmt.Errorf("search %q: %w", q.Text, err)
		}
		out = diversify(hits, q.K, s.perPage)
		// One page with many matching sections can fill the whole pool; look deeper (once or twice,
		// up to the bound) before returning fewer hits than asked for.
		bound := min(max(maxCandidates, q.K)*candidatePoolFactor, panther.MaxK)
		if len(out) == q.K || len(hits) < pool.K || pool.K >= bound {
			break
		}
		pool.K = min(pool.K*candidatePoolFactor, bound)
	}
	for i := range out {
		if out[i].Snippet == "" {
			out[i].Snippet = snippet(out[i].Text, q.Text)
		}
	}
	return out, nil
}

// diversify keeps hits in rank order, dropping those of a page that already has perPage hits, and
// cuts at k. perPage <= 0 keeps all.
func diversify(hits []panther.Hit, k, perPage int) []panther.Hit {
	out := make([]panther.Hit, 0, min(k, len(hits)))
	seen := make(map[string]int)
	for _, h := range hits {
		if len(out) == k {
			break
		}
		if perPage > 0 {
			if seen[h.URL] >= perPage {
				continue
			}
			seen[h.URL]++
		}
		out = append(out, h)
	}
	return out
}

// DocumentMeta returns a stored page without its markdown.
func (s *Service) DocumentMeta(ctx context.Context, url string) (panther.Document, error) {
	d, err := s.store.DocumentMeta(ctx, url)
	if err != nil {
		return panther.Document{}, fmt.Errorf("document %s: %w", url, err)
	}
	return d, nil
}

// Touch records a re-fetch that found the page unchanged.
func (s *Service) Touch(ctx context.Context, url string, v panther.Validators, fetchedAt time.Time) error {
	if err := s.store.Touch(ctx, url, v, fetchedAt); err != nil {
		return fmt.Errorf("touch %s: %w", url, err)
	}
	return nil
}

// MarkGone records that a page's origin no longer serves it; its passages leave search.
func (s *Service) MarkGone(ctx context.Context, url string, at time.Time) error {
	if err := s.store.MarkGone(ctx, url, at); err != nil {
		return fmt.Errorf("mark gone %s: %w", url, err)
	}
	return nil
}

// Document returns a stored page with its markdown and links.
func (s *Service) Document(ctx context.Context, url string) (panther.Document, error) {
	d, err := s.store.Document(ctx, url)
	if err != nil {
		return panther.Document{}, fmt.Errorf("document %s: %w", url, err)
	}
	return d, nil
}

// Documents lists stored pages.
func (s *Service) Documents(ctx context.Context, f panther.DocFilter) ([]panther.Document, error) {
	ds, err := s.store.Documents(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list documents: %w", err)
	}
	return ds, nil
}

// Chunks returns a document's passages in order, for reading one section back (SectionMarkdown).
func (s *Service) Chunks(ctx context.Context, docID int64) ([]panther.Chunk, error) {
	c, err := s.store.Chunks(ctx, docID)
	if err != nil {
		return nil, fmt.Errorf("chunks of document %d: %w", docID, err)
	}
	return c, nil
}
