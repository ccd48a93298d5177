package main

import (
	"context"
	"sort"

	"panther"
	"panther/sqlite"
)

// fusedSearcher is an experimental ranking: chunk BM25 plus evidence from the rest of the page.
type fusedSearcher struct {
	db          *sqlite.DB
	pool        int
	gamma, beta float64
	perPage     int
}

func (f fusedSearcher) Search(ctx context.Context, q panther.Query) ([]panther.Hit, error) {
	pool := q
	pool.K = f.pool
	hits, err := f.db.SearchLexical(ctx, pool)
	if err != nil {
		return nil, err
	}
	best := map[int64]float64{}
	sum := map[int64]float64{}
	for _, h := range hits {
		if h.Score > best[h.DocID] {
			best[h.DocID] = h.Score
		}
		sum[h.DocID] += h.Score
	}
	for i := range hits {
		d := hits[i].DocID
		page := best[d] + f.gamma*(sum[d]-best[d])
		hits[i].Score = hits[i].Score + f.beta*page
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].Score > hits[j].Score })
	out := []panther.Hit{}
	seen := map[int64]int{}
	for _, h := range hits {
		if len(out) == q.K {
			break
		}
		if seen[h.DocID] >= f.perPage {
			continue
		}
		seen[h.DocID]++
		out = append(out, h)
	}
	return out, nil
}
