package crawl

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"panther"
)

// JobState says where a background crawl stands.
type JobState string

const (
	JobQueued    JobState = "queued"
	JobRunning   JobState = "running"
	JobDone      JobState = "done"
	JobFailed    JobState = "failed"
	JobCancelled JobState = "cancelled"
)

// Ended reports whether the job will change no more.
func (s JobState) Ended() bool { return s == JobDone || s == JobFailed || s == JobCancelled }

// JobRequest is what a caller may choose about one crawl; the rest comes from ManagerOptions.Crawl.
type JobRequest struct {
	// MaxPages bounds the page fetches (0: the manager's default).
	MaxPages int `json:"max_pages,omitempty"`
	// MaxDepth bounds how far from the seed links are followed; nil: unlimited.
	MaxDepth *int `json:"max_depth,omitempty"`
	// Include and Exclude are regular expressions, as Options has them.
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
}

// Bounds of a JobRequest.
const (
	maxJobPatterns     = 20
	maxJobPatternBytes = 1000
)

// JobProgress is a running crawl's counts (see Progress).
type JobProgress struct {
	Done        int     `json:"done"`
	Queued      int     `json:"queued"`
	Failed      int     `json:"failed"`
	Skipped     int     `json:"skipped"`
	PagesPerSec float64 `json:"pages_per_sec"`
}

// JobSummary is what a finished crawl did; the field names are those of `panther crawl --json`.
type JobSummary struct {
	Fetched   int            `json:"fetched"`
	New       int            `json:"new"`
	Changed   int            `json:"changed"`
	Unchanged int            `json:"unchanged"`
	Duplicate int            `json:"duplicate"`
	Gone      int            `json:"gone"`
	Skipped   map[string]int `json:"skipped"`
	Failed    map[string]int `json:"failed"`
	Seconds   float64        `json:"seconds"`
	Resumed   bool           `json:"resumed,omitempty"`
	Truncated bool           `json:"truncated,omitempty"`
}

// Job is one background crawl of a source.
type Job struct {
	ID       string      `json:"id"`
	SourceID int64       `json:"source_id"`
	Seed     string      `json:"seed"`
	State    JobState    `json:"state"`
	Request  JobRequest  `json:"request"`
	Progress JobProgress `json:"progress"`
	// Summary is set once the crawl has run (done, failed or cancelled while running).
	Summary *JobSummary `json:"summary,omitempty"`
	Created time.Time   `json:"created_at"`
	Started time.Time   `json:"started_at,omitzero"`
	Ended   time.Time   `json:"ended_at,omitzero"`
	// Error says why a job failed; Warning what went wrong after a crawl that succeeded (AfterCrawl).
	Error   string `json:"error,omitempty"`
	Warning string `json:"warning,omitempty"`
}

// ManagerStore is what a Manager needs of a store: a crawl's, and the list of sources. Removing
// sources also needs panther.SourceRemover.
type ManagerStore interface {
	Store
	Sources(ctx context.Context) ([]panther.Source, error)
}

// ManagerOptions configure a Manager. Zero values take the defaults.
type ManagerOptions struct {
	Store ManagerStore
	Index Index
	// Crawl is every crawl's options; a JobRequest overrides MaxPages, MaxDepth (default: unlimited),
	// Include and Exclude, and the Manager sets Progress.
	Crawl Options
	// Adjust, when set, may change a crawl's options for its seed (a rate limit that protects nobody
	// on a local seed, say).
	Adjust func(seed string, o *Options)
	// Concurrency bounds the crawls running at once, over all sources (DefaultManagerConcurrency).
	Concurrency int
	// MaxQueued bounds the crawls waiting for a slot (DefaultManagerMaxQueued).
	MaxQueued int
	// KeepFinished is how many ended jobs are remembered (DefaultManagerKeepFinished).
	KeepFinished int
	// AllowFiles lets AddSource add local folders and files (file:// URLs). A server whose callers
	// are not the machine's owner leaves it off: the sources it adds are then http(s) only.
	AllowFiles bool
	// AfterCrawl, when set, is called after each crawl that ended done, before the job is marked
	// done; an error becomes the job's Warning.
	AfterCrawl func(ctx context.Context, j Job) error
	// OnJobEnd, when set, is called with every job once it has ended, whatever its state (done,
	// failed, cancelled, also while queued): where metrics count crawls.
	OnJobEnd func(j Job)
	Logger   *slog.Logger
}

// Defaults of ManagerOptions.
const (
	DefaultManagerConcurrency  = 2
	DefaultManagerMaxQueued    = 32
	DefaultManagerKeepFinished = 100
	// jobSubscriberBuffer is how many snapshots a subscriber may lag; older ones are dropped, the
	// latest is always delivered.
	jobSubscriberBuffer = 16
)

// PageTotals count the pages of every crawl the Manager ran, by final state, for metrics.
type PageTotals struct {
	Done, Failed, Skipped int64
}

// Manager runs crawls in the background: one at a time per source, a bounded number at once, each
// with its progress kept as a Job that callers can read or follow. It also adds and removes
// sources, so that a source is never removed under a crawl of it.
type Manager struct {
	opts ManagerOptions
	log  *slog.Logger
	sem  chan struct{}

	mu       sync.Mutex
	closed   bool
	jobs     map[string]*job
	order    []*job // by creation
	active   map[int64]*job
	removing map[int64]bool
	queued   int
	totals   PageTotals
	wg       sync.WaitGroup
}

type job struct {
	Job
	cancel context.CancelFunc
	subs   map[chan Job]struct{}
}

// NewManager checks opts and returns a Manager.
func NewManager(opts ManagerOptions) (*Manager, error) {
	if opts.Store == nil || opts.Index == nil {
		return nil, panther.Invalidf("crawl manager: a store and an index are required")
	}
	if opts.Concurrency < 0 || opts.MaxQueued < 0 || opts.KeepFinished < 0 {
		return nil, panther.Invalidf("crawl manager: limits must not be negative")
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = DefaultManagerConcurrency
	}
	if opts.MaxQueued == 0 {
		opts.MaxQueued = DefaultManagerMaxQueued
	}
	if opts.KeepFinished == 0 {
		opts.KeepFinished = DefaultManagerKeepFinished
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{
		opts: opts, log: log, sem: make(chan struct{}, opts.Concurrency),
		jobs: map[string]*job{}, active: map[int64]*job{}, removing: map[int64]bool{},
	}, nil
}

// AddSource checks and normalises a seed URL as the crawler will store it, and adds it as a source
// (returning the existing one for a URL already added).
func (m *Manager) AddSource(ctx context.Context, rawURL string) (panther.Source, error) {
	rawURL = strings.TrimSpace(rawURL)
	if rawURL == "" {
		return panther.Source{}, panther.Invalidf("source url is empty")
	}
	if len(rawURL) > maxURLBytes {
		return panther.Source{}, panther.Invalidf("source url is longer than %d bytes", maxURLBytes)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return panther.Source{}, panther.Invalidf("source url %q: %v", rawURL, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	case "file":
		if !m.opts.AllowFiles {
			return panther.Source{}, panther.Invalidf("source url %q: only http and https sources can be added here (crawl local folders with 'panther crawl' on the server)", rawURL)
		}
	default:
		return panther.Source{}, panther.Invalidf("source url %q: want an http or https URL", rawURL)
	}
	// The crawler stores its seed in this form, so the source added here is the one it crawls.
	seed, err := Normalize(rawURL)
	if err != nil {
		return panther.Source{}, err
	}
	src, err := m.opts.Store.AddSource(ctx, seed)
	if err != nil {
		return panther.Source{}, err
	}
	return src, nil
}

// maxURLBytes bounds a source URL.
const maxURLBytes = 4096

// Sources lists the sources, by id.
func (m *Manager) Sources(ctx context.Context) ([]panther.Source, error) {
	return m.opts.Store.Sources(ctx)
}

// Source returns the source with id, or ErrNotFound.
func (m *Manager) Source(ctx context.Context, id int64) (panther.Source, error) {
	all, err := m.opts.Store.Sources(ctx)
	if err != nil {
		return panther.Source{}, err
	}
	for _, s := range all {
		if s.ID == id {
			return s, nil
		}
	}
	return panther.Source{}, panther.NotFoundf("source %d", id)
}

// RemoveSource removes a source (with its documents when withDocuments is set). A source being
// crawled is ErrConflict: cancel the crawl first. A store that cannot remove sources is ErrUnavailable.
func (m *Manager) RemoveSource(ctx context.Context, id int64, withDocuments bool) error {
	rm, ok := m.opts.Store.(panther.SourceRemover)
	if !ok {
		return fmt.Errorf("remove source %d: this store cannot remove sources: %w", id, panther.ErrUnavailable)
	}
	m.mu.Lock()
	if j := m.active[id]; j != nil {
		m.mu.Unlock()
		return fmt.Errorf("source %d is being crawled (job %s); cancel the crawl first: %w", id, j.ID, panther.ErrConflict)
	}
	if m.removing[id] {
		m.mu.Unlock()
		return fmt.Errorf("source %d is being removed: %w", id, panther.ErrConflict)
	}
	m.removing[id] = true
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.removing, id)
		m.mu.Unlock()
	}()
	return rm.RemoveSource(ctx, id, withDocuments)
}

// compile checks a request's patterns.
func (r JobRequest) compile() (include, exclude []*regexp.Regexp, err error) {
	if r.MaxPages < 0 {
		return nil, nil, panther.Invalidf("max_pages must be 0 (the default) or more, got %d", r.MaxPages)
	}
	if r.MaxDepth != nil && *r.MaxDepth < 0 {
		return nil, nil, panther.Invalidf("max_depth must be 0 or more, got %d (leave it out for unlimited)", *r.MaxDepth)
	}
	if len(r.Include)+len(r.Exclude) > maxJobPatterns {
		return nil, nil, panther.Invalidf("at most %d include and exclude patterns, got %d", maxJobPatterns, len(r.Include)+len(r.Exclude))
	}
	comp := func(field string, exprs []string) ([]*regexp.Regexp, error) {
		var out []*regexp.Regexp
		for _, e := range exprs {
			if len(e) > maxJobPatternBytes {
				return nil, panther.Invalidf("%s pattern is longer than %d bytes", field, maxJobPatternBytes)
			}
			re, err := regexp.Compile(e)
			if err != nil {
				return nil, panther.Invalidf("%s %q is not a valid regular expression: %v", field, e, err)
			}
			out = append(out, re)
		}
		return out, nil
	}
	if include, err = comp("include", r.Include); err != nil {
		return nil, nil, err
	}
	if exclude, err = comp("exclude", r.Exclude); err != nil {
		return nil, nil, err
	}
	return include, exclude, nil
}

// Start queues a crawl of source sourceID and returns its job. The crawl runs in the background,
// not bound to ctx (which only carries values and bounds the source lookup). A crawl of the source
// already queued or running is ErrConflict; a full queue or a Manager shutting down, ErrUnavailable.
func (m *Manager) Start(ctx context.Context, sourceID int64, req JobRequest) (Job, error) {
	include, exclude, err := req.compile()
	if err != nil {
		return Job{}, err
	}
	src, err := m.Source(ctx, sourceID)
	if err != nil {
		return Job{}, err
	}
	opts := m.opts.Crawl
	opts.MaxDepth = -1
	if req.MaxDepth != nil {
		opts.MaxDepth = *req.MaxDepth
	}
	if req.MaxPages > 0 {
		opts.MaxPages = req.MaxPages
	}
	opts.Include = append(slices.Clip(opts.Include), include...)
	opts.Exclude = append(slices.Clip(opts.Exclude), exclude...)
	if m.opts.Adjust != nil {
		m.opts.Adjust(src.URL, &opts)
	}

	jobCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	j := &job{Job: Job{ID: newJobID(), SourceID: src.ID, Seed: src.URL, State: JobQueued, Request: req, Created: time.Now()},
		cancel: cancel, subs: map[chan Job]struct{}{}}
	m.mu.Lock()
	switch {
	case m.closed:
		m.mu.Unlock()
		cancel()
		return Job{}, fmt.Errorf("the crawl manager is shutting down: %w", panther.ErrUnavailable)
	case m.active[src.ID] != nil:
		prev := m.active[src.ID]
		m.mu.Unlock()
		cancel()
		return Job{}, fmt.Errorf("source %d is already being crawled (job %s, %s): %w", src.ID, prev.ID, prev.State, panther.ErrConflict)
	case m.removing[src.ID]:
		m.mu.Unlock()
		cancel()
		return Job{}, fmt.Errorf("source %d is being removed: %w", src.ID, panther.ErrConflict)
	case m.queued >= m.opts.MaxQueued:
		m.mu.Unlock()
		cancel()
		return Job{}, fmt.Errorf("%d crawls are waiting already; try again later: %w", m.queued, panther.ErrUnavailable)
	}
	m.jobs[j.ID] = j
	m.order = append(m.order, j)
	m.active[src.ID] = j
	m.queued++
	m.wg.Add(1)
	snap := j.Job
	m.mu.Unlock()
	go m.run(jobCtx, j, opts)
	return snap, nil
}

func newJobID() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// run waits for a slot and crawls.
func (m *Manager) run(ctx context.Context, j *job, opts Options) {
	defer m.wg.Done()
	defer j.cancel()
	if m.opts.OnJobEnd != nil {
		defer func() { m.opts.OnJobEnd(m.snapshot(j)) }()
	}
	cancelled := func() {
		m.update(j, func(j *Job) {
			j.State, j.Ended = JobCancelled, time.Now()
		})
	}
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		cancelled()
		return
	}
	defer func() { <-m.sem }()
	// select picks at random when a slot is free and the job was cancelled while it waited; a job
	// cancelled before it started must never be reported as started.
	if ctx.Err() != nil {
		cancelled()
		return
	}
	m.update(j, func(j *Job) {
		j.State, j.Started = JobRunning, time.Now()
	})
	var last Progress
	opts.Progress = func(p Progress) {
		m.mu.Lock()
		m.totals.Done += int64(max(p.Done-last.Done, 0))
		m.totals.Failed += int64(max(p.Failed-last.Failed, 0))
		m.totals.Skipped += int64(max(p.Skipped-last.Skipped, 0))
		m.mu.Unlock()
		last = p
		m.update(j, func(j *Job) {
			j.Progress = JobProgress{Done: p.Done, Queued: p.Queued, Failed: p.Failed, Skipped: p.Skipped, PagesPerSec: p.PagesPerSec}
		})
	}
	state, sum, runErr := m.crawl(ctx, j.Seed, opts)
	var warning string
	if state == JobDone && m.opts.AfterCrawl != nil {
		snap := m.snapshot(j)
		snap.Summary = sum
		if err := m.opts.AfterCrawl(ctx, snap); err != nil {
			warning = err.Error()
			m.log.Warn("after crawl", "job", j.ID, "seed", j.Seed, "err", err)
		}
	}
	m.update(j, func(j *Job) {
		j.State, j.Summary, j.Ended, j.Warning = state, sum, time.Now(), warning
		if runErr != nil && state == JobFailed {
			j.Error = runErr.Error()
		}
	})
	m.log.Info("crawl job ended", "job", j.ID, "seed", j.Seed, "state", state, "err", runErr)
}

// crawl runs one crawl and says how it ended.
func (m *Manager) crawl(ctx context.Context, seed string, opts Options) (JobState, *JobSummary, error) {
	c, err := New(m.opts.Store, m.opts.Index, opts)
	if err != nil {
		return JobFailed, nil, err
	}
	sum, err := c.Run(ctx, seed)
	var out *JobSummary
	if sum.Duration > 0 {
		out = &JobSummary{
			Fetched: sum.Fetched, New: sum.New, Changed: sum.Changed, Unchanged: sum.Unchanged, Duplicate: sum.Duplicate,
			Gone: sum.Gone, Skipped: sum.Skipped, Failed: sum.Failed, Seconds: sum.Duration.Seconds(),
			Resumed: sum.Resumed, Truncated: sum.Truncated,
		}
		if out.Skipped == nil {
			out.Skipped = map[string]int{}
		}
		if out.Failed == nil {
			out.Failed = map[string]int{}
		}
	}
	switch {
	case err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled):
		return JobCancelled, out, err
	case err != nil:
		return JobFailed, out, err
	case sum.New+sum.Changed+sum.Unchanged+sum.Duplicate+sum.Gone == 0 && len(sum.Failed)+len(sum.Skipped) > 0:
		// A crawl that could store nothing at all (a seed that is unreachable, answers 404 or is
		// refused by robots.txt) failed, whatever the per-page counts say.
		return JobFailed, out, fmt.Errorf("nothing could be fetched from %s (%s)", seed, sum.String())
	}
	return JobDone, out, nil
}

// update changes a job under the lock and passes the new state to its subscribers; an ended job's
// subscribers are closed, and it stops counting as its source's active job.
func (m *Manager) update(j *job, change func(*Job)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	wasQueued := j.State == JobQueued
	change(&j.Job)
	if wasQueued && j.State != JobQueued {
		m.queued--
	}
	snap := j.Job
	for ch := range j.subs {
		sendLatest(ch, snap)
	}
	if !j.State.Ended() {
		return
	}
	for ch := range j.subs {
		close(ch)
	}
	j.subs = nil
	if m.active[j.SourceID] == j {
		delete(m.active, j.SourceID)
	}
	m.forgetOld()
}

// sendLatest puts s on ch without blocking, dropping the oldest snapshot when ch is full: only
// the publisher sends, so after one receive there is room.
func sendLatest(ch chan Job, s Job) {
	for {
		select {
		case ch <- s:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

// forgetOld drops the oldest ended jobs beyond KeepFinished. Called with m.mu held.
func (m *Manager) forgetOld() {
	ended := 0
	for _, j := range m.order {
		if j.State.Ended() {
			ended++
		}
	}
	if ended <= m.opts.KeepFinished {
		return
	}
	kept := m.order[:0]
	for _, j := range m.order {
		if ended > m.opts.KeepFinished && j.State.Ended() {
			delete(m.jobs, j.ID)
			ended--
			continue
		}
		kept = append(kept, j)
	}
	clear(m.order[len(kept):])
	m.order = kept
}

func (m *Manager) snapshot(j *job) Job {
	m.mu.Lock()
	defer m.mu.Unlock()
	return j.Job
}

// Job returns a job by id, or ErrNotFound.
func (m *Manager) Job(id string) (Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return Job{}, panther.NotFoundf("crawl job %s", id)
	}
	return j.Job, nil
}

// Jobs lists the jobs the Manager remembers, newest first.
func (m *Manager) Jobs() []Job {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Job, 0, len(m.order))
	for _, j := range slices.Backward(m.order) {
		out = append(out, j.Job)
	}
	return out
}

// Running lists the jobs queued or running, oldest first.
func (m *Manager) Running() []Job {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Job
	for _, j := range m.order {
		if !j.State.Ended() {
			out = append(out, j.Job)
		}
	}
	return out
}

// Totals counts the pages of every crawl run so far, by final state.
func (m *Manager) Totals() PageTotals {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.totals
}

// Cancel stops a queued or running job; a running crawl keeps its frontier, so the next crawl of
// the source resumes it. Unknown jobs: ErrNotFound; ended ones: ErrConflict.
func (m *Manager) Cancel(id string) (Job, error) {
	m.mu.Lock()
	j, ok := m.jobs[id]
	if !ok {
		m.mu.Unlock()
		return Job{}, panther.NotFoundf("crawl job %s", id)
	}
	if j.State.Ended() {
		state := j.State
		m.mu.Unlock()
		return Job{}, fmt.Errorf("crawl job %s is %s already: %w", id, state, panther.ErrConflict)
	}
	snap := j.Job
	m.mu.Unlock()
	j.cancel()
	return snap, nil
}

// Subscribe follows a job: the channel carries its current state at once, then each change (a
// subscriber that lags misses intermediate states, never the latest), and is closed after the
// state that ends the job. Call stop when no longer reading. Unknown jobs: ErrNotFound.
func (m *Manager) Subscribe(id string) (updates <-chan Job, stop func(), err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return nil, nil, panther.NotFoundf("crawl job %s", id)
	}
	ch := make(chan Job, jobSubscriberBuffer)
	ch <- j.Job
	if j.State.Ended() {
		close(ch)
		return ch, func() {}, nil
	}
	j.subs[ch] = struct{}{}
	return ch, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, ok := j.subs[ch]; ok {
			delete(j.subs, ch)
			close(ch)
		}
	}, nil
}

// Shutdown refuses new crawls, cancels the queued and running ones (their frontiers stay, to
// resume) and waits, until ctx ends, for them to stop.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	var running []*job
	for _, j := range m.order {
		if !j.State.Ended() {
			running = append(running, j)
		}
	}
	m.mu.Unlock()
	for _, j := range running {
		j.cancel()
	}
	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("crawl manager: %d crawls still stopping: %w", len(running), ctx.Err())
	}
}
