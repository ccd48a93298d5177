package sqlite

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"weak"
)

// A chunk's bm25 for a query of several words is the sum, word by word in query order, of each
// word's share, and a word's share depends only on the word, the chunk and the index's totals: it
// is the chunk's score for that word searched alone. So once the index holds still, the shares of a
// word can be kept, and a later query made of kept words ranked by adding them up in Go, with the
// very additions FTS5 makes: the same scores to the last bit, at a small fraction of the cost.
// Queries share their words heavily ("configuration", "function", "table"), and the common words
// are the ones that cost most to score.
//
// The shares are only as good as the index they were read from: every search first reads the two
// records FTS5 rewrites on every change of the index (its structure, whose write counter only
// grows, and its row and token totals), and a difference drops the whole cache. The search that
// sees a new version ranks in SQL, so that a stream of writes (a crawl) costs the cache nothing;
// the next one, if the index has held still, keeps the words it ranks.

// termCacheBytes bounds the shares kept per database: 16 bytes a chunk a word. The book index's
// 2,565 distinct words over the PostgreSQL manual's 9,359 chunks take 5.7 MB.
const termCacheBytes = 16 << 20

// shares are every chunk that holds a word, by id, with the word's share of its bm25.
type shares struct {
	term  string
	ids   []int64
	score []float64
}

func (s *shares) bytes() int { return 16*len(s.ids) + 64 + len(s.term) }

// termCache is one database's kept shares, least recently used first out.
type termCache struct {
	mu      sync.Mutex
	version string
	weights Weights
	byTerm  map[string]*list.Element // of *shares
	lru     list.List
	size    int
}

// termCaches holds each open DB's cache. It lives beside the DB rather than in it so that this file
// can own it; the weak key lets a DB that is no longer used take its cache with it.
var termCaches sync.Map // weak.Pointer[DB] → *termCache

func (db *DB) termCache() *termCache {
	key := weak.Make(db)
	if c, ok := termCaches.Load(key); ok {
		return c.(*termCache)
	}
	c, loaded := termCaches.LoadOrStore(key, &termCache{byTerm: map[string]*list.Element{}})
	if !loaded {
		runtime.AddCleanup(db, func(k weak.Pointer[DB]) { termCaches.Delete(k) }, key)
	}
	return c.(*termCache)
}

// lookup returns the kept shares of terms (nil where a term is missing) if the cache holds the
// shares of version and weights. Otherwise it empties the cache for them and reports false.
func (c *termCache) lookup(version string, w Weights, terms []string) ([]*shares, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if version != c.version || w != c.weights {
		c.version, c.weights = version, w
		clear(c.byTerm)
		c.lru.Init()
		c.size = 0
		return nil, false
	}
	out := make([]*shares, len(terms))
	for i, t := range terms {
		if e, ok := c.byTerm[t]; ok {
			c.lru.MoveToFront(e)
			out[i] = e.Value.(*shares)
		}
	}
	return out, true
}

// add keeps shares read under version and weights, if the cache is still for them.
func (c *termCache) add(version string, w Weights, ss []*shares) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if version != c.version || w != c.weights {
		return
	}
	for _, s := range ss {
		if _, ok := c.byTerm[s.term]; ok || s.bytes() > termCacheBytes/4 {
			continue
		}
		c.byTerm[s.term] = c.lru.PushFront(s)
		c.size += s.bytes()
	}
	for c.size > termCacheBytes {
		e := c.lru.Back()
		s := c.lru.Remove(e).(*shares)
		delete(c.byTerm, s.term)
		c.size -= s.bytes()
	}
}

// versionSQL reads the averages record (id 1: row count and token totals) and the structure record
// (id 10: segments and a write counter that only grows) of the full-text index.
const versionSQL = `SELECT block FROM chunks_fts_data WHERE id IN (1, 10) ORDER BY id`

func (s snapshot) indexVersion(ctx context.Context) (string, error) {
	rows, err := s.query(ctx, versionSQL)
	if err != nil {
		return "", fmt.Errorf("full-text index version: %w", err)
	}
	defer rows.Close()
	var v []byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return "", fmt.Errorf("full-text index version: %w", err)
		}
		v = append(v, byte(len(b)>>8), byte(len(b)))
		v = append(v, b...)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("full-text index version: %w", err)
	}
	return string(v), nil
}

const sharesSQL = `SELECT rowid, bm25(chunks_fts, ?, ?, ?, ?) FROM chunks_fts WHERE chunks_fts MATCH ?
	ORDER BY rowid`

// errUnsettled says that the kept shares are not for the index as it is now: the search is ranked
// in SQL.
var errUnsettled = errors.New("full-text index new to the search cache")

// cachedTop ranks terms from kept shares, reading and keeping the missing ones. It fails with
// errUnsettled when the index has changed since the last search.
func (s snapshot) cachedTop(ctx context.Context, terms []string, w Weights, k int, exhaustiveOR bool) ([]ranked, error) {
	c := s.db.termCache()
	version, err := s.indexVersion(ctx)
	if err != nil {
		return nil, err
	}
	lists, ok := c.lookup(version, w, terms)
	if !ok {
		return nil, errUnsettled
	}
	var read []*shares
	for i, t := range terms {
		if lists[i] == nil {
			// Read in the snapshot whose version was just read, they belong to that version.
			if lists[i], err = s.readShares(ctx, t, w); err != nil {
				return nil, err
			}
			read = append(read, lists[i])
		}
	}
	c.add(version, w, read)
	return rankShares(lists, k, exhaustiveOR), nil
}

func (s snapshot) readShares(ctx context.Context, term string, w Weights) (*shares, error) {
	rows, err := s.query(ctx, sharesSQL, w.Title, w.Heading, w.Body, w.Keywords, joinTerms([]string{term}, ""))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	sh := &shares{term: term}
	for rows.Next() {
		var id int64
		var v float64
		if err := rows.Scan(&id, &v); err != nil {
			return nil, err
		}
		sh.ids = append(sh.ids, id)
		sh.score = append(sh.score, -v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("shares of %q: %w", term, err)
	}
	sh.ids, sh.score = slices.Clip(sh.ids), slices.Clip(sh.score)
	return sh, nil
}

// summed is one chunk's score so far and how many of the query's words it holds.
type summed struct {
	id    int64
	score float64
	words int
}

var summedPool = sync.Pool{New: func() any { return new([]summed) }}

// rankShares ranks as SearchLexical does in SQL: with several words and !exhaustiveOR, the chunks
// holding all of them when at least k do, else the chunks holding any. Each chunk's shares are added
// in query order, from zero, as FTS5's bm25 adds them.
func rankShares(lists []*shares, k int, exhaustiveOR bool) []ranked {
	accp, nextp := summedPool.Get().(*[]summed), summedPool.Get().(*[]summed)
	defer summedPool.Put(accp)
	defer summedPool.Put(nextp)
	acc, next := (*accp)[:0], (*nextp)[:0]
	for _, l := range lists {
		next = next[:0]
		i, j := 0, 0
		for i < len(acc) || j < len(l.ids) {
			switch {
			case j == len(l.ids) || i < len(acc) && acc[i].id < l.ids[j]:
				next = append(next, acc[i])
				i++
			case i == len(acc) || l.ids[j] < acc[i].id:
				next = append(next, summed{l.ids[j], 0 + l.score[j], 1})
				j++
			default:
				next = append(next, summed{acc[i].id, acc[i].score + l.score[j], acc[i].words + 1})
				i++
				j++
			}
		}
		acc, next = next, acc
	}
	*accp, *nextp = acc, next
	if len(lists) > 1 && !exhaustiveOR {
		n := 0
		for _, s := range acc {
			if s.words == len(lists) {
				n++
			}
		}
		if n >= k {
			return topSummed(acc, k, len(lists))
		}
	}
	return topSummed(acc, k, 0)
}

// topSummed returns the k best chunks holding at least minWords words, by score and then id.
func topSummed(all []summed, k, minWords int) []ranked {
	better := func(a, b ranked) bool { return a.score > b.score || a.score == b.score && a.id < b.id }
	// heap holds the best k so far, the worst of them at the root.
	heap := make([]ranked, 0, k)
	down := func(i int) {
		for {
			l, w := 2*i+1, i
			if l < len(heap) && better(heap[w], heap[l]) {
				w = l
			}
			if r := l + 1; r < len(heap) && better(heap[w], heap[r]) {
				w = r
			}
			if w == i {
				return
			}
			heap[i], heap[w] = heap[w], heap[i]
			i = w
		}
	}
	for _, s := range all {
		if s.words < minWords {
			continue
		}
		r := ranked{s.id, s.score}
		switch {
		case len(heap) < k:
			heap = append(heap, r)
			for i := len(heap) - 1; i > 0; {
				p := (i - 1) / 2
				if !better(heap[p], heap[i]) {
					break
				}
				heap[p], heap[i] = heap[i], heap[p]
				i = p
			}
		case better(r, heap[0]):
			heap[0] = r
			down(0)
		}
	}
	slices.SortFunc(heap, func(a, b ranked) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	return heap
}
