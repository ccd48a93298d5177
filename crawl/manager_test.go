package crawl

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"panther"
	"panther/kb"
	"panther/sqlite"
)

// newTestManager returns a Manager over a real store and knowledge base.
func newTestManager(t *testing.T, opts ManagerOptions) (*Manager, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "panther.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := kb.New(db, kb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts.Store, opts.Index = db, svc
	if opts.Crawl.Logger == nil {
		opts.Crawl = testOptions(t)
		opts.Crawl.Retries = -1
	}
	m, err := NewManager(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return m, db
}

// follow reads a job's updates to the end and returns them.
func follow(t *testing.T, m *Manager, id string) []Job {
	t.Helper()
	ch, stop, err := m.Subscribe(id)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	var out []Job
	timeout := time.After(20 * time.Second)
	for {
		select {
		case j, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, j)
		case <-timeout:
			t.Fatalf("job %s did not end; updates so far: %+v", id, out)
		}
	}
}

// slowSite serves a /slow/ page that answers only when released (or when the request is
// abandoned); arrived receives a value each time a request for it comes in.
func slowSite(t *testing.T) (s *testSite, arrived <-chan struct{}, release func()) {
	s = newSite(t)
	ch := make(chan struct{})
	in := make(chan struct{}, 16)
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	s.handle("/slow/", func(w http.ResponseWriter, r *http.Request) {
		select {
		case in <- struct{}{}:
		default:
		}
		select {
		case <-ch:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, htmlPage("slow", "", "/slow/a"))
	})
	return s, in, release
}

func TestManagerCrawlsInTheBackground(t *testing.T) {
	s := newSite(t)
	s.page("/docs/", "/docs/a", "/docs/b")
	s.page("/docs/a", "/docs/b")
	s.page("/docs/b")
	var after atomic.Pointer[Job]
	m, db := newTestManager(t, ManagerOptions{AfterCrawl: func(ctx context.Context, j Job) error {
		after.Store(&j)
		return errors.New("optimize failed on purpose")
	}})
	ctx := t.Context()
	src, err := m.AddSource(ctx, strings.Replace(s.url("/docs/"), "http://", "HTTP://", 1))
	if err != nil {
		t.Fatal(err)
	}
	if src.URL != s.url("/docs/") {
		t.Errorf("source URL %q, want it normalised to %q", src.URL, s.url("/docs/"))
	}
	job, err := m.Start(ctx, src.ID, JobRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if job.ID == "" || job.SourceID != src.ID || job.Seed != src.URL || job.State.Ended() {
		t.Fatalf("Start = %+v", job)
	}
	updates := follow(t, m, job.ID)
	last := updates[len(updates)-1]
	if last.State != JobDone || last.Summary == nil || last.Summary.Fetched != 3 || last.Summary.New != 3 || last.Started.IsZero() || last.Ended.IsZero() {
		t.Fatalf("last update %+v", last)
	}
	if last.Progress.Done != 3 || last.Warning != "optimize failed on purpose" || last.Error != "" {
		t.Errorf("progress %+v, warning %q, error %q", last.Progress, last.Warning, last.Error)
	}
	if a := after.Load(); a == nil || a.ID != job.ID || a.Summary == nil || a.Summary.New != 3 {
		t.Errorf("AfterCrawl saw %+v", a)
	}
	if docs, err := db.Documents(ctx, panther.DocFilter{SourceID: src.ID}); err != nil || len(docs) != 3 {
		t.Errorf("stored %d documents of the source, %v", len(docs), err)
	}
	if got := m.Totals(); got.Done != 3 {
		t.Errorf("totals %+v, want 3 done", got)
	}
	if got, err := m.Job(job.ID); err != nil || got.State != JobDone {
		t.Errorf("Job = %+v, %v", got, err)
	}
	if jobs := m.Jobs(); len(jobs) != 1 || len(m.Running()) != 0 {
		t.Errorf("jobs %+v, running %+v", jobs, m.Running())
	}
	// A second crawl of the source may start once the first ended; a subscriber of an ended job
	// gets its last state.
	again, err := m.Start(ctx, src.ID, JobRequest{MaxPages: 1})
	if err != nil {
		t.Fatal(err)
	}
	if final := follow(t, m, again.ID); final[len(final)-1].Summary.Fetched != 1 {
		t.Errorf("max_pages 1: %+v", final[len(final)-1].Summary)
	}
	if ended := follow(t, m, job.ID); len(ended) != 1 || ended[0].State != JobDone {
		t.Errorf("following an ended job: %+v", ended)
	}
}

func TestManagerOneCrawlPerSourceAndCancel(t *testing.T) {
	s, arrived, release := slowSite(t)
	s.page("/fast/")
	m, db := newTestManager(t, ManagerOptions{Concurrency: 1})
	ctx := t.Context()
	slow, err := m.AddSource(ctx, s.url("/slow/"))
	if err != nil {
		t.Fatal(err)
	}
	fast, err := m.AddSource(ctx, s.url("/fast/"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := m.Start(ctx, slow.ID, JobRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(ctx, slow.ID, JobRequest{}); !errors.Is(err, panther.ErrConflict) {
		t.Errorf("a second crawl of a source being crawled: %v, want ErrConflict", err)
	}
	if err := m.RemoveSource(ctx, slow.ID, true); !errors.Is(err, panther.ErrConflict) {
		t.Errorf("removing a source being crawled: %v, want ErrConflict", err)
	}
	// With one slot, the other source's crawl waits behind the first.
	queued, err := m.Start(ctx, fast.ID, JobRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Job(queued.ID); got.State != JobQueued || len(m.Running()) != 2 {
		t.Errorf("second job %+v, running %d; want it queued", got, len(m.Running()))
	}
	if _, err := m.Cancel(queued.ID); err != nil {
		t.Fatal(err)
	}
	if ended := follow(t, m, queued.ID); ended[len(ended)-1].State != JobCancelled || !ended[len(ended)-1].Started.IsZero() {
		t.Errorf("a cancelled queued job: %+v", ended[len(ended)-1])
	}
	// Cancelling the running crawl, once it waits for its seed, leaves its frontier to resume.
	<-arrived
	if _, err := m.Cancel(first.ID); err != nil {
		t.Fatal(err)
	}
	if ended := follow(t, m, first.ID); ended[len(ended)-1].State != JobCancelled {
		t.Errorf("a cancelled running job: %+v", ended[len(ended)-1])
	}
	if f, err := db.Frontier(ctx, slow.ID); err != nil || len(f) == 0 || f[0].State != panther.FrontierQueued {
		t.Errorf("frontier after cancel: %+v, %v; want the seed still queued", f, err)
	}
	if _, err := m.Cancel(first.ID); !errors.Is(err, panther.ErrConflict) {
		t.Errorf("cancelling an ended job: %v, want ErrConflict", err)
	}
	release()
	resumed, err := m.Start(ctx, slow.ID, JobRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if ended := follow(t, m, resumed.ID); ended[len(ended)-1].State != JobDone || !ended[len(ended)-1].Summary.Resumed {
		t.Errorf("the next crawl: %+v; want it done, resumed", ended[len(ended)-1])
	}
	if err := m.RemoveSource(ctx, slow.ID, true); err != nil {
		t.Errorf("removing the source once idle: %v", err)
	}
	if _, err := m.Source(ctx, slow.ID); !errors.Is(err, panther.ErrNotFound) {
		t.Errorf("the removed source: %v, want ErrNotFound", err)
	}
}

func TestManagerErrorsAndShutdown(t *testing.T) {
	s, _, _ := slowSite(t)
	m, _ := newTestManager(t, ManagerOptions{})
	ctx := t.Context()
	for _, tt := range []struct {
		url  string
		want error
	}{
		{"", panther.ErrInvalid},
		{"ftp://example.org/", panther.ErrInvalid},
		{"file:///etc/", panther.ErrInvalid},
		{"/usr/share/doc", panther.ErrInvalid},
		{"https://", panther.ErrInvalid},
	} {
		if _, err := m.AddSource(ctx, tt.url); !errors.Is(err, tt.want) {
			t.Errorf("AddSource(%q): %v, want %v", tt.url, err, tt.want)
		}
	}
	missing, err := m.AddSource(ctx, s.url("/missing/"))
	if err != nil {
		t.Fatal(err)
	}
	depth := -2
	for name, req := range map[string]JobRequest{
		"bad include":    {Include: []string{"(["}},
		"negative pages": {MaxPages: -1},
		"negative depth": {MaxDepth: &depth},
	} {
		if _, err := m.Start(ctx, missing.ID, req); !errors.Is(err, panther.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := m.Start(ctx, 9999, JobRequest{}); !errors.Is(err, panther.ErrNotFound) {
		t.Errorf("an unknown source: %v, want ErrNotFound", err)
	}
	if _, err := m.Job("nope"); !errors.Is(err, panther.ErrNotFound) {
		t.Errorf("an unknown job: %v, want ErrNotFound", err)
	}
	if _, _, err := m.Subscribe("nope"); !errors.Is(err, panther.ErrNotFound) {
		t.Errorf("following an unknown job: %v, want ErrNotFound", err)
	}
	// A seed that answers 404 is a failed crawl that says why.
	failed, err := m.Start(ctx, missing.ID, JobRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if last := follow(t, m, failed.ID); last[len(last)-1].State != JobFailed || !strings.Contains(last[len(last)-1].Error, "nothing could be fetched") {
		t.Errorf("crawl of a missing seed: %+v", last[len(last)-1])
	}
	if m.Totals().Failed != 1 {
		t.Errorf("totals %+v, want 1 failed page", m.Totals())
	}

	slow, err := m.AddSource(ctx, s.url("/slow/"))
	if err != nil {
		t.Fatal(err)
	}
	running, err := m.Start(ctx, slow.ID, JobRequest{})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := m.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if j, _ := m.Job(running.ID); j.State != JobCancelled {
		t.Errorf("a crawl running at shutdown ended %s, want cancelled", j.State)
	}
	if _, err := m.Start(ctx, missing.ID, JobRequest{}); !errors.Is(err, panther.ErrUnavailable) {
		t.Errorf("Start after Shutdown: %v, want ErrUnavailable", err)
	}
}

func TestManagerAllowsFilesWhenAsked(t *testing.T) {
	m, _ := newTestManager(t, ManagerOptions{AllowFiles: true})
	dir := t.TempDir()
	src, err := m.AddSource(t.Context(), "file://"+filepath.ToSlash(dir)+"/")
	if err != nil || !strings.HasPrefix(src.URL, "file://") {
		t.Errorf("AddSource(file://) with AllowFiles: %+v, %v", src, err)
	}
}

// TestManagerOnJobEnd: every job that ends is reported once, in its final state, whether it was done,
// failed, or cancelled while it waited for a slot.
func TestManagerOnJobEnd(t *testing.T) {
	s, arrived, release := slowSite(t)
	s.page("/fast/")
	var mu sync.Mutex
	ended := map[string]JobState{}
	calls := 0
	m, _ := newTestManager(t, ManagerOptions{Concurrency: 1, OnJobEnd: func(j Job) {
		mu.Lock()
		defer mu.Unlock()
		ended[j.ID] = j.State
		calls++
	}})
	ctx := t.Context()
	slow, err := m.AddSource(ctx, s.url("/slow/"))
	if err != nil {
		t.Fatal(err)
	}
	fast, err := m.AddSource(ctx, s.url("/fast/"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := m.Start(ctx, slow.ID, JobRequest{})
	if err != nil {
		t.Fatal(err)
	}
	queued, err := m.Start(ctx, fast.ID, JobRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Cancel(queued.ID); err != nil {
		t.Fatal(err)
	}
	follow(t, m, queued.ID)
	<-arrived
	release()
	follow(t, m, first.ID)
	again, err := m.Start(ctx, fast.ID, JobRequest{})
	if err != nil {
		t.Fatal(err)
	}
	follow(t, m, again.ID)
	m.wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	want := map[string]JobState{first.ID: JobDone, queued.ID: JobCancelled, again.ID: JobDone}
	if calls != 3 || len(ended) != 3 {
		t.Fatalf("OnJobEnd called %d times for %v, want once for each of %v", calls, ended, want)
	}
	for id, st := range want {
		if ended[id] != st {
			t.Errorf("job %s ended %s, want %s", id, ended[id], st)
		}
	}
}
