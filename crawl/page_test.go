package crawl

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"panther"
)

// countGate records the slots a PageFetcher asks for, without waiting.
type countGate struct {
	mu     sync.Mutex
	waits  map[string][]time.Duration
	paused map[string]time.Duration
}

func (g *countGate) Wait(_ context.Context, host string, interval time.Duration) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.waits[host] = append(g.waits[host], interval)
	return nil
}

func (g *countGate) Pause(_ context.Context, host string, d time.Duration) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.paused[host] = d
	return nil
}

func TestNewPlan(t *testing.T) {
	for _, tc := range []struct {
		seed    string
		want    Plan
		invalid bool
	}{
		{seed: "HTTPS://Docs.Example.org:443/manual/intro.html#x", want: Plan{Seed: "https://docs.example.org/manual/intro.html", Scope: []string{"https://docs.example.org/manual/"}, MaxDepth: -1}},
		{seed: "https://example.org/sitemap.xml", want: Plan{Seed: "https://example.org/sitemap.xml", Sitemap: true, Scope: []string{"https://example.org/"}, MaxDepth: -1}},
		{seed: "/usr/share/doc", invalid: true},
		{seed: "file:///usr/share/doc/", invalid: true},
		{seed: "ftp://example.org/", invalid: true},
	} {
		got, err := NewPlan(tc.seed)
		if tc.invalid {
			if !errors.Is(err, panther.ErrInvalid) {
				t.Errorf("NewPlan(%q) = %+v, %v; want ErrInvalid", tc.seed, got, err)
			}
			continue
		}
		if err != nil || got.Seed != tc.want.Seed || got.Sitemap != tc.want.Sitemap || !slices.Equal(got.Scope, tc.want.Scope) || got.MaxDepth != -1 {
			t.Errorf("NewPlan(%q) = %+v, %v; want %+v", tc.seed, got, err, tc.want)
		}
	}
	if err := (Plan{Seed: "https://x/", Scope: []string{"https://x/"}, Include: []string{"("}}).Check(); !errors.Is(err, panther.ErrInvalid) {
		t.Errorf("a plan with a bad pattern: %v, want ErrInvalid", err)
	}
}

// TestPageFetcher fetches single pages as a distributed crawl does: every request asks the gate
// for a slot (robots.txt and redirect hops too) at the plan's rate or the Crawl-delay when longer,
// a redirect target is fetched only when claimed, robots.txt is read once and obeyed, links come
// back filtered, and a Retry-After pauses the host.
func TestPageFetcher(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		n := hits[r.URL.Path]
		mu.Unlock()
		switch r.URL.Path {
		case "/robots.txt":
			fmt.Fprintf(w, "User-agent: *\nCrawl-delay: 2\nDisallow: /docs/private/\nSitemap: http://%s/docs/sitemap-docs.xml\n", r.Host)
		case "/docs/sitemap-docs.xml":
			fmt.Fprintf(w, `<urlset><url><loc>http://%s/docs/a.html</loc></url><url><loc>https://elsewhere.example/x</loc></url></urlset>`, r.Host)
		case "/docs/old.html":
			http.Redirect(w, r, "/docs/a.html", http.StatusMovedPermanently)
		case "/docs/busy.html":
			if n == 1 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			fmt.Fprint(w, `<html><head><title>Busy</title></head><body><main><h1>Busy</h1><p>Fine now.</p></main></body></html>`)
		case "/docs/a.html":
			fmt.Fprint(w, `<html><head><title>A</title></head><body><main><h1>A</h1><p>Page a.</p>
				<a href="b.html">b</a> <a href="/other/c.html">out of scope</a> <a href="private/p.html">private</a></main></body></html>`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	gate := &countGate{waits: map[string][]time.Duration{}, paused: map[string]time.Duration{}}
	index := newMemIndex()
	p, err := NewPageFetcher(index, gate, Options{RetryBackoff: time.Millisecond, MaxRetryWait: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := NewPlan(srv.URL + "/docs/a.html")
	if err != nil {
		t.Fatal(err)
	}
	plan.HostRate = 10
	ctx := t.Context()
	claimed := map[string]bool{}
	claim := func(_ context.Context, u string, _ int) (bool, error) {
		if claimed[u] {
			return false, nil
		}
		claimed[u] = true
		return true, nil
	}
	fetch := func(path string) *PageResult {
		t.Helper()
		res, err := p.Fetch(ctx, PageTask{Plan: plan, SourceID: 1, URL: srv.URL + path, Depth: 1, Claim: claim})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	states := func(res *PageResult) []string {
		var out []string
		for _, f := range res.Finished {
			out = append(out, fmt.Sprintf("%s %s %s", f.URL[len(srv.URL):], f.State, f.Reason))
		}
		return out
	}

	res := fetch("/docs/old.html")
	if got, want := states(res), []string{"/docs/old.html skipped redirect", "/docs/a.html done new"}; !slices.Equal(got, want) || !res.Fetched {
		t.Errorf("redirect: %v, want %v", got, want)
	}
	if got := res.Links; len(got) != 2 || got[0].URL != srv.URL+"/docs/b.html" || got[0].Depth != 2 || got[1].URL != srv.URL+"/docs/private/p.html" {
		t.Errorf("links %+v, want b.html and private/p.html at depth 2 (robots is the page's own business)", got)
	}
	// The target is claimed now: another redirect to it leaves it to its owner.
	if got := states(fetch("/docs/old.html")); !slices.Equal(got, []string{"/docs/old.html skipped redirect-duplicate"}) {
		t.Errorf("second redirect: %v", got)
	}
	if got := states(fetch("/docs/private/p.html")); !slices.Equal(got, []string{"/docs/private/p.html skipped robots"}) {
		t.Errorf("disallowed page: %v", got)
	}
	if got := states(fetch("/docs/busy.html")); !slices.Equal(got, []string{"/docs/busy.html done new"}) {
		t.Errorf("a page that answered 503 first: %v", got)
	}
	if gate.paused[srv.URL] != time.Second {
		t.Errorf("pauses %v, want the host paused 1s by Retry-After", gate.paused)
	}
	if got := states(fetch("/docs/nothere.html")); !slices.Equal(got, []string{"/docs/nothere.html failed http 404"}) {
		t.Errorf("missing page: %v", got)
	}
	mu.Lock()
	if hits["/robots.txt"] != 1 || hits["/docs/private/p.html"] != 0 || hits["/docs/a.html"] != 1 {
		t.Errorf("requests %v: want robots.txt read once, the private page never, a.html once", hits)
	}
	requests := 0
	for _, n := range hits {
		requests += n
	}
	mu.Unlock()
	waits := gate.waits[srv.URL]
	if len(waits) != requests {
		t.Errorf("%d slots asked for %d requests", len(waits), requests)
	}
	// The first slot (robots.txt itself) goes at the plan's rate; later ones at the Crawl-delay.
	if len(waits) < 2 || waits[0] != 100*time.Millisecond || waits[len(waits)-1] != 2*time.Second {
		t.Errorf("slot intervals %v, want 100ms first, then the 2s Crawl-delay", waits)
	}

	// Discovery reads the sitemap robots.txt names; its off-site URL is out of scope.
	var found []string
	if err := p.Discover(ctx, plan, func(links []panther.FrontierEntry, widen []string) error {
		for _, l := range links {
			found = append(found, fmt.Sprintf("%s@%d", l.URL[len(srv.URL):], l.Depth))
		}
		if len(widen) != 0 {
			t.Errorf("a site seed's sitemap widened the scope: %v", widen)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(found, []string{"/docs/a.html@1"}) {
		t.Errorf("discovered %v, want a.html at depth 1", found)
	}
	// A sitemap seed takes its URLs' hosts into scope (the off-site one too) at depth 0.
	smPlan, err := NewPlan(srv.URL + "/docs/sitemap-docs.xml")
	if err != nil {
		t.Fatal(err)
	}
	var widened []string
	found = nil
	if err := p.Discover(ctx, smPlan, func(links []panther.FrontierEntry, widen []string) error {
		for _, l := range links {
			found = append(found, fmt.Sprintf("%s@%d", l.URL, l.Depth))
		}
		widened = append(widened, widen...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 || !slices.Equal(widened, []string{"https://elsewhere.example/"}) {
		t.Errorf("sitemap seed: links %v, widened %v", found, widened)
	}
	missing, _ := NewPlan(srv.URL + "/docs/gone-sitemap.xml")
	if err := p.Discover(ctx, missing, func([]panther.FrontierEntry, []string) error { return nil }); err == nil {
		t.Error("a sitemap seed that is not there: no error")
	}
}
