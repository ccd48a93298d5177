package crawl

import (
	"maps"
	"strings"
	"sync"

	"panther"
)

type entryState uint8

const (
	// stPending entries are admitted (so no other page admits them again) but not yet persisted;
	// they join a queue only once the store has them, so that a page is never finished in the store
	// before its entry exists there.
	stPending entryState = iota
	stQueued
	stInflight
	stFinished
	// stBeyond entries are links refused for MaxDepth: counted as skipped, never queued, but
	// admitted after all if a shallower page links to them.
	stBeyond
	// stRefused entries are links refused for good by the other admission limits.
	stRefused
)

type entry struct {
	url   string
	depth int
	state entryState
}

// hostQueue is one host's share of the frontier. Per-host queues let a worker pass over a host that
// is at its concurrency cap instead of blocking behind it.
type hostQueue struct {
	key      string
	q        []*entry
	head     int
	inflight int
	limit    int // 0: none beyond the global one
}

func (h *hostQueue) pop() *entry {
	for h.head < len(h.q) {
		e := h.q[h.head]
		h.q[h.head] = nil
		h.head++
		if e.state == stQueued {
			return e
		}
	}
	return nil
}

func (h *hostQueue) push(e *entry) {
	if h.head > 0 && h.head == len(h.q) {
		h.q, h.head = h.q[:0], 0
	} else if h.head > 1024 && h.head > len(h.q)/2 {
		// Compact now and then so a long crawl does not keep every popped slot alive.
		n := copy(h.q, h.q[h.head:])
		clear(h.q[n:])
		h.q, h.head = h.q[:n], 0
	}
	h.q = append(h.q, e)
}

// hostKey is scheme://host of a normalised URL; all local files share one key.
func hostKey(u string) string {
	if strings.HasPrefix(u, "file:") {
		return "file"
	}
	i := strings.Index(u, "://")
	if i < 0 {
		return u
	}
	if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
		return u[:i+3+j]
	}
	return u
}

// endReason says why the frontier stopped handing out work.
type endReason uint8

const (
	endNone endReason = iota
	endDrained
	endMaxPages
	endStopped
)

// frontier is the in-memory half of a run's frontier: what has been seen, what is queued where, and
// how much of the page budget is used. One mutex guards it; the work done under it is map lookups
// and slice appends, small next to a fetch.
type frontier struct {
	mu        sync.Mutex
	cond      *sync.Cond
	seen      map[string]*entry
	hosts     map[string]*hostQueue
	order     []*hostQueue
	rr        int
	hostLimit int

	queued   int // entries in state stQueued
	pages    int // page tasks in flight
	setup    int // seeding and sitemap discovery tasks still adding entries
	budget   int // MaxPages, 0 = unlimited
	used     int // pages fetched or reserved, resumed ones included
	end      endReason
	onBudget func() // called once when the budget is spent and no page is in flight

	sum Summary
	// done, failed, skipped feed Progress; they are Summary's counts without the map walks.
	done, failed, skipped int

	limits linkLimits
	// variants counts the admitted URLs with a query, per URL without its query.
	variants map[string]int
}

// linkLimits bound what links found in pages may enter the frontier, so that a spider trap (an
// endless calendar, a query that grows on every page, a path that nests forever) ends even when
// MaxPages does not bound the crawl. Zero or negative fields mean no limit.
type linkLimits struct {
	maxDepth    int // MaxDepth; negative: none
	maxURL      int
	maxVariants int
}

func newFrontier(budget, hostLimit int) *frontier {
	f := &frontier{
		seen:      make(map[string]*entry),
		hosts:     make(map[string]*hostQueue),
		hostLimit: hostLimit,
		budget:    budget,
		sum:       Summary{Skipped: map[string]int{}, Failed: map[string]int{}},
		limits:    linkLimits{maxDepth: -1},
		variants:  make(map[string]int),
	}
	f.cond = sync.NewCond(&f.mu)
	return f
}

func (f *frontier) hostQueueLocked(key string) *hostQueue {
	hq := f.hosts[key]
	if hq == nil {
		hq = &hostQueue{key: key, limit: f.hostLimit}
		if key == "file" {
			hq.limit = 0
		}
		f.hosts[key] = hq
		f.order = append(f.order, hq)
	}
	return hq
}

// load restores a persisted frontier: every entry is seen, the queued ones are queued again, and the
// finished ones that cost a fetch count against the budget.
func (f *frontier) load(entries []panther.FrontierEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fe := range entries {
		if _, ok := f.seen[fe.URL]; ok {
			continue
		}
		e := &entry{url: fe.URL, depth: fe.Depth, state: stFinished}
		f.seen[fe.URL] = e
		f.countVariantLocked(fe.URL)
		switch {
		case fe.State == panther.FrontierQueued:
			e.state = stQueued
			f.hostQueueLocked(hostKey(e.url)).push(e)
			f.queued++
		case costsFetch(fe):
			f.used++
		}
	}
}

// costsFetch says whether a finished entry used a page fetch. Entries skipped before any request
// (robots), those whose fetch is counted on their redirect target, and those never reached do not.
func costsFetch(fe panther.FrontierEntry) bool {
	if fe.State == panther.FrontierQueued {
		return false
	}
	switch fe.Reason {
	case reasonRobots, reasonRobotsUnavailable, reasonRedirect, reasonMaxPages, reasonSitemap:
		return false
	}
	return true
}

// admit marks the URLs not seen before as seen and returns their entries, still pending. Links
// found in pages that break a linkLimits bound are refused instead: counted in the summary as
// skipped, and remembered so that they are counted once, but never stored, since a trap can hand
// out more of them than the crawl is worth.
func (f *frontier) admit(links []link) []*entry {
	if len(links) == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*entry
	for _, l := range links {
		e, ok := f.seen[l.url]
		if ok && e.state != stBeyond {
			continue
		}
		reason := ""
		if l.page {
			reason = f.refuseLocked(l)
		}
		if ok {
			// Refused before for depth, found again: within MaxDepth now, or refused for good.
			if reason == reasonMaxDepth {
				continue
			}
			f.uncountLocked(reasonMaxDepth)
		}
		if reason != "" {
			st := stRefused
			if reason == reasonMaxDepth {
				st = stBeyond
			}
			f.seen[l.url] = &entry{url: l.url, depth: l.depth, state: st}
			f.skipped++
			f.sum.Skipped[reason]++
			continue
		}
		e = &entry{url: l.url, depth: l.depth, state: stPending}
		f.seen[l.url] = e
		f.countVariantLocked(l.url)
		out = append(out, e)
	}
	return out
}

// refuseLocked returns why a link found in a page is not admitted, or "".
func (f *frontier) refuseLocked(l link) string {
	lim := f.limits
	if lim.maxURL > 0 && len(l.url) > lim.maxURL {
		return reasonURLTooLong
	}
	if lim.maxVariants > 0 {
		if base, q, ok := strings.Cut(l.url, "?"); ok && q != "" && f.variants[base] >= lim.maxVariants {
			return reasonQueryVariants
		}
	}
	if lim.maxDepth >= 0 && l.depth > lim.maxDepth {
		return reasonMaxDepth
	}
	return ""
}

func (f *frontier) uncountLocked(reason string) {
	f.skipped--
	if f.sum.Skipped[reason]--; f.sum.Skipped[reason] <= 0 {
		delete(f.sum.Skipped, reason)
	}
}

func (f *frontier) countVariantLocked(url string) {
	if base, q, ok := strings.Cut(url, "?"); ok && q != "" {
		f.variants[base]++
	}
}

// push queues admitted entries once the store has them.
func (f *frontier) push(es []*entry) {
	if len(es) == 0 {
		return
	}
	f.mu.Lock()
	for _, e := range es {
		if e.state != stPending {
			continue
		}
		e.state = stQueued
		f.hostQueueLocked(hostKey(e.url)).push(e)
		f.queued++
	}
	f.mu.Unlock()
	f.cond.Broadcast()
}

// claim takes url for a redirect chain that reached it: a URL never seen becomes a new in-flight
// entry (fresh is true: the store does not have it yet); a queued one is taken off its queue. It
// returns nil when the URL is pending, in flight or finished elsewhere.
func (f *frontier) claim(url string, depth int) (e *entry, fresh bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e = f.seen[url]
	switch {
	case e == nil || e.state == stBeyond:
		// A redirect target refused as a link for its depth is still the page this chain reached.
		if e != nil {
			f.uncountLocked(reasonMaxDepth)
		}
		e = &entry{url: url, depth: depth, state: stInflight}
		f.seen[url] = e
		f.countVariantLocked(url)
		return e, true
	case e.state == stQueued:
		e.state = stInflight
		f.queued--
		return e, false
	}
	return nil, false
}

// next hands out the next entry to fetch, reserving a page of the budget, or reports why there is
// none: the queue drained, the budget is spent, or the run stopped.
func (f *frontier) next() (*entry, *hostQueue, endReason) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		if f.end != endNone {
			return nil, nil, f.end
		}
		if f.queued == 0 && f.pages == 0 && f.setup == 0 {
			f.finishLocked(endDrained)
			return nil, nil, f.end
		}
		if f.budget > 0 && f.used >= f.budget {
			if f.pages == 0 {
				f.finishLocked(endMaxPages)
				return nil, nil, f.end
			}
		} else if f.queued > 0 {
			n := len(f.order)
			for i := 0; i < n; i++ {
				hq := f.order[(f.rr+i)%n]
				if hq.limit > 0 && hq.inflight >= hq.limit {
					continue
				}
				if e := hq.pop(); e != nil {
					f.rr = (f.rr + i + 1) % n
					e.state = stInflight
					f.queued--
					hq.inflight++
					f.pages++
					f.used++
					return e, hq, endNone
				}
			}
		}
		f.cond.Wait()
	}
}

func (f *frontier) finishLocked(r endReason) {
	f.end = r
	if r == endMaxPages {
		f.sum.Truncated = f.queued > 0 || f.setup > 0
		if f.onBudget != nil {
			f.onBudget()
		}
	}
	f.cond.Broadcast()
}

// stop makes every waiting and future next return endStopped.
func (f *frontier) stop() {
	f.mu.Lock()
	if f.end == endNone {
		f.end = endStopped
	}
	f.mu.Unlock()
	f.cond.Broadcast()
}

// release gives back a page reserved for an entry that turned out to need no fetch.
func (f *frontier) release() {
	f.mu.Lock()
	f.used--
	f.mu.Unlock()
	f.cond.Broadcast()
}

// finished records final states: the counts, and the host slot of the dispatched entry.
func (f *frontier) finished(hq *hostQueue, fins []finish, fetched bool) {
	f.mu.Lock()
	for _, fn := range fins {
		fn.e.state = stFinished
		f.countLocked(fn)
	}
	if fetched {
		f.sum.Fetched++
	}
	if hq != nil {
		hq.inflight--
		f.pages--
	}
	f.mu.Unlock()
	f.cond.Broadcast()
}

// abandon returns a dispatched entry's host slot without recording anything: the run is stopping
// and the entry stays queued in the store.
func (f *frontier) abandon(hq *hostQueue) {
	f.mu.Lock()
	hq.inflight--
	f.pages--
	f.mu.Unlock()
	f.cond.Broadcast()
}

func (f *frontier) countLocked(fn finish) {
	switch fn.state {
	case panther.FrontierDone:
		f.done++
		switch fn.reason {
		case string(panther.IngestNew):
			f.sum.New++
		case string(panther.IngestChanged):
			f.sum.Changed++
		case string(panther.IngestUnchanged):
			f.sum.Unchanged++
		case string(panther.IngestDuplicate):
			f.sum.Duplicate++
		case reasonGone:
			f.sum.Gone++
		}
	case panther.FrontierSkipped:
		f.skipped++
		f.sum.Skipped[fn.reason]++
	case panther.FrontierFailed:
		f.failed++
		f.sum.Failed[fn.reason]++
	}
}

func (f *frontier) setupStart() {
	f.mu.Lock()
	f.setup++
	f.mu.Unlock()
}

func (f *frontier) setupDone() {
	f.mu.Lock()
	f.setup--
	f.mu.Unlock()
	f.cond.Broadcast()
}

// leftovers returns the entries still queued, in queue order.
func (f *frontier) leftovers() []*entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*entry
	for _, hq := range f.order {
		for _, e := range hq.q[hq.head:] {
			if e != nil && e.state == stQueued {
				out = append(out, e)
			}
		}
	}
	return out
}

func (f *frontier) progress() (done, queued, failed, skipped, fetched int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done, f.queued, f.failed, f.skipped, f.sum.Fetched
}

func (f *frontier) summary() Summary {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sum
	s.Skipped = maps.Clone(f.sum.Skipped)
	s.Failed = maps.Clone(f.sum.Failed)
	return s
}
