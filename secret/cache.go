package secret

import (
	"context"
	"strings"
	"sync"
)

// Cache keeps resolved op:// values for the life of the process. The zero value is ready to use
// and safe for concurrent use; callers asking for a reference that is being fetched wait for that
// fetch instead of starting another. Failures are not kept, so a later call tries again.
type Cache struct {
	mu sync.Mutex
	m  map[string]*cacheEntry
}

type cacheEntry struct {
	done chan struct{}
	res  resolved
	err  error
}

// do returns the cached resolution of ref, or runs fetch once for all concurrent callers. The
// boolean reports a value that an earlier call produced.
func (c *Cache) do(ctx context.Context, ref string, fetch func() (resolved, error)) (resolved, bool, error) {
	// References are case-insensitive, so differently cased spellings share one entry.
	key := strings.ToLower(ref)
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[string]*cacheEntry)
	}
	if e, ok := c.m[key]; ok {
		c.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			return resolved{}, false, unresolved(ref, "gave up waiting for another lookup of it: %v", ctx.Err())
		}
		return e.res, e.err == nil, e.err
	}
	e := &cacheEntry{done: make(chan struct{})}
	c.m[key] = e
	c.mu.Unlock()

	e.res, e.err = fetch()
	if e.err != nil {
		c.mu.Lock()
		delete(c.m, key)
		c.mu.Unlock()
	}
	close(e.done)
	return e.res, false, e.err
}
