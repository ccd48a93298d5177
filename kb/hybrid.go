package kb

import (
	"context"
	"fmt"
	"slices"

	"panther"
)

// DefaultMode is hybrid when the service has an embedder, lexical otherwise.
func (s *Service) DefaultMode() panther.SearchMode {
	if s.embedder != nil {
		return panther.ModeHybrid
	}
	return panther.ModeLexical
}

// Embedder returns the service's embedder, nil when it has none.
func (s *Service) Embedder() panther.Embedder { return s.embedder }

// candidates ranks a pool of passages by one side or both.
func (s *Service) candidates(ctx context.Context, mode panther.SearchMode, pool panther.Query, qvec []float32) ([]panther.Hit, error) {
	var lexical, vector []panther.Hit
	if mode != panther.ModeVector {
		hits, err := s.store.SearchLexical(ctx, pool)
		if err != nil {
			return nil, err
		}
		rerank(hits, pool.Text)
		lexical = hits
	}
	if mode != panther.ModeLexical {
		hits, err := s.vectors.SearchVectors(ctx, s.embedder.Model(), qvec, pool.K, pool.Filter)
		if err != nil {
			return nil, err
		}
		vector = hits
	}
	switch mode {
	case panther.ModeLexical:
		return mark(lexical, "lexical"), nil
	case panther.ModeVector:
		return mark(vector, "vector"), nil
	}
	w := s.vectorWeight
	if len(snippetTerms(pool.Text)) < 2 {
		// One word has no meaning beyond itself for the vector side to add, while BM25 finds exactly
		// the passages that use it: a one-word query is ranked by words, vector hits following. On
		// the book index (over half of it one-word queries) this is what keeps hybrid from doing
		// worse than lexical search (BENCHMARKS.md).
		w = 0
	}
	return fuse(lexical, vector, w), nil
}

func mark(hits []panther.Hit, side string) []panther.Hit {
	for i := range hits {
		hits[i].Found = side
	}
	return hits
}

// fuse merges the two rankings by weighted score: each side's scores are scaled to [0, 1] over its
// pool (min-max), and a passage's score is (1-w)·lexical + w·vector, a side that did not find it
// counting 0. Scores rather than ranks: where one side is much stronger, as BM25 is on the names a
// manual indexes, reciprocal-rank fusion gives the weak side's top hits as much say as the strong
// side's.
func fuse(lexical, vector []panther.Hit, w float64) []panther.Hit {
	type entry struct {
		hit      panther.Hit
		lex, vec float64
		sides    int
	}
	byChunk := make(map[int64]*entry, len(lexical)+len(vector))
	var order []*entry
	add := func(hits []panther.Hit, side int) {
		lo, hi := scoreRange(hits)
		for _, h := range hits {
			norm := 1.0
			if hi > lo {
				norm = (h.Score - lo) / (hi - lo)
			}
			e := byChunk[h.ChunkID]
			if e == nil {
				e = &entry{hit: h}
				byChunk[h.ChunkID] = e
				order = append(order, e)
			}
			e.sides |= side
			if side == 1 {
				e.lex = norm
			} else {
				e.vec = norm
			}
		}
	}
	add(lexical, 1)
	add(vector, 2)
	out := make([]panther.Hit, len(order))
	for i, e := range order {
		h := e.hit
		h.Score = (1-w)*e.lex + w*e.vec
		h.Found = [...]string{"", "lexical", "vector", "both"}[e.sides]
		out[i] = h
	}
	slices.SortStableFunc(out, func(a, b panther.Hit) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return 0
	})
	return out
}

func scoreRange(hits []panther.Hit) (lo, hi float64) {
	for i, h := range hits {
		if i == 0 || h.Score < lo {
			lo = h.Score
		}
		if i == 0 || h.Score > hi {
			hi = h.Score
		}
	}
	return lo, hi
}

// embedBatch is how many passages one Embed call gets while backfilling.
const embedBatch = 256

// Backfill embeds every searchable passage that has no vector from the service's embedder, in
// batches that each commit, so that an interrupted backfill resumes where it stopped and search
// keeps working on the vectors that exist. It reports progress after each batch and returns how
// many passages it embedded.
func (s *Service) Backfill(ctx context.Context, progress func(done, total int)) (int, error) {
	if s.embedder == nil {
		return 0, nil
	}
	model := s.embedder.Model()
	with, total, err := s.vectors.VectorCoverage(ctx, model)
	if err != nil {
		return 0, err
	}
	done := 0
	for {
		chunks, err := s.vectors.ChunksToEmbed(ctx, model, embedBatch)
		if err != nil {
			return done, err
		}
		if len(chunks) == 0 {
			return done, nil
		}
		texts := make([]string, len(chunks))
		for i, c := range chunks {
			texts[i] = c.Text
		}
		vecs, err := s.embedder.Embed(ctx, texts)
		if err != nil {
			return done, fmt.Errorf("embed passages with %s: %w", model, err)
		}
		if len(vecs) != len(chunks) {
			return done, fmt.Errorf("embed passages with %s: %d vectors for %d passages", model, len(vecs), len(chunks))
		}
		batch := make([]panther.ChunkVector, len(chunks))
		for i, c := range chunks {
			batch[i] = panther.ChunkVector{ChunkID: c.ID, Vector: vecs[i]}
		}
		if err := s.vectors.PutVectors(ctx, model, batch); err != nil {
			return done, err
		}
		done += len(chunks)
		if progress != nil {
			progress(with+done, max(total, with+done))
		}
	}
}

// Coverage counts the searchable passages and those with a vector from the embedder; (0, 0) when
// the service has no embedder.
func (s *Service) Coverage(ctx context.Context) (withVector, searchable int, err error) {
	if s.embedder == nil {
		return 0, 0, nil
	}
	return s.vectors.VectorCoverage(ctx, s.embedder.Model())
}
