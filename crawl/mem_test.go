package crawl

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"panther"
)

// memStore is an in-memory Store that also checks the crawler's ordering promise: an entry is only
// ever finished after it was enqueued.
type memStore struct {
	mu       sync.Mutex
	sources  map[string]panther.Source
	frontier map[int64][]panther.FrontierEntry
	pos      map[int64]map[string]int
	crawled  map[int64]time.Time
	enqueues int
	finishes int
	// failFinish, when set, is returned by Finish (to test fatal store errors).
	failFinish error
}

func newMemStore() *memStore {
	return &memStore{
		sources:  map[string]panther.Source{},
		frontier: map[int64][]panther.FrontierEntry{},
		pos:      map[int64]map[string]int{},
		crawled:  map[int64]time.Time{},
	}
}

var _ Store = (*memStore)(nil)

func (s *memStore) AddSource(ctx context.Context, url string) (panther.Source, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if src, ok := s.sources[url]; ok {
		return src, nil
	}
	src := panther.Source{ID: int64(len(s.sources) + 1), URL: url, CreatedAt: time.Now()}
	s.sources[url] = src
	return src, nil
}

func (s *memStore) MarkCrawled(ctx context.Context, id int64, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.crawled[id] = at
	return nil
}

func (s *memStore) Enqueue(ctx context.Context, id int64, es []panther.FrontierEntry) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enqueues++
	if s.pos[id] == nil {
		s.pos[id] = map[string]int{}
	}
	n := 0
	for _, e := range es {
		if _, ok := s.pos[id][e.URL]; ok {
			continue
		}
		e.State = panther.FrontierQueued
		e.Reason = ""
		s.pos[id][e.URL] = len(s.frontier[id])
		s.frontier[id] = append(s.frontier[id], e)
		n++
	}
	return n, nil
}

func (s *memStore) Frontier(ctx context.Context, id int64) ([]panther.FrontierEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.frontier[id]), nil
}

func (s *memStore) Finish(ctx context.Context, id int64, e panther.FrontierEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failFinish != nil {
		return s.failFinish
	}
	s.finishes++
	i, ok := s.pos[id][e.URL]
	if !ok {
		return fmt.Errorf("finish %s: not enqueued: %w", e.URL, panther.ErrNotFound)
	}
	s.frontier[id][i].State = e.State
	s.frontier[id][i].Reason = e.Reason
	return nil
}

func (s *memStore) ResetFrontier(ctx context.Context, id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.frontier, id)
	delete(s.pos, id)
	return nil
}

// entries returns the frontier of the only source, keyed by URL.
func (s *memStore) entries() map[string]panther.FrontierEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]panther.FrontierEntry{}
	for _, es := range s.frontier {
		for _, e := range es {
			out[e.URL] = e
		}
	}
	return out
}

// memIndex is an in-memory Index with the knowledge base's outcome rules.
type memIndex struct {
	mu       sync.Mutex
	docs     map[string]panther.Document
	sections map[string][]panther.Section
	byHash   map[string]string // content hash -> URL of a current document
	ingests  int
	touches  int
	gones    int
}

func newMemIndex() *memIndex {
	return &memIndex{docs: map[string]panther.Document{}, sections: map[string][]panther.Section{}, byHash: map[string]string{}}
}

var _ Index = (*memIndex)(nil)

func (x *memIndex) DocumentMeta(ctx context.Context, url string) (panther.Document, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, ok := x.docs[url]
	if !ok {
		return panther.Document{}, panther.NotFoundf("document %s", url)
	}
	d.Markdown = ""
	return d, nil
}

func (x *memIndex) Ingest(ctx context.Context, doc panther.Document, sections []panther.Section) (panther.IngestOutcome, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.ingests++
	old, had := x.docs[doc.URL]
	if had && old.ContentHash == doc.ContentHash && old.Status == panther.DocCurrent {
		return panther.IngestUnchanged, nil
	}
	if u, ok := x.byHash[doc.ContentHash]; ok && u != doc.URL && x.docs[u].Status == panther.DocCurrent && x.docs[u].ContentHash == doc.ContentHash {
		return panther.IngestDuplicate, nil
	}
	doc.Status = panther.DocCurrent
	x.docs[doc.URL] = doc
	x.byHash[doc.ContentHash] = doc.URL
	x.sections[doc.URL] = sections
	if had {
		return panther.IngestChanged, nil
	}
	return panther.IngestNew, nil
}

func (x *memIndex) Touch(ctx context.Context, url string, v panther.Validators, at time.Time) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, ok := x.docs[url]
	if !ok {
		return panther.NotFoundf("document %s", url)
	}
	x.touches++
	d.Validators = v
	d.FetchedAt = at
	d.Status = panther.DocCurrent
	x.docs[url] = d
	return nil
}

func (x *memIndex) MarkGone(ctx context.Context, url string, at time.Time) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, ok := x.docs[url]
	if !ok {
		return panther.NotFoundf("document %s", url)
	}
	x.gones++
	d.Status = panther.DocGone
	x.docs[url] = d
	return nil
}

// urls lists the current documents' URLs, sorted.
func (x *memIndex) urls() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []string
	for u, d := range x.docs {
		if d.Status == panther.DocCurrent {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out
}
