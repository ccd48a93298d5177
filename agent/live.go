package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"panther"
)

// EventDone is the last event of a live run: its Status, Answer and StoppedBy are set, with the
// answer's Citations, the run's Usage and, for a failed run, Err.
const EventDone = "done"

// LiveEvent is an Event of a run that Live keeps, numbered so that a subscriber that reconnects can
// ask for what it missed.
type LiveEvent struct {
	// Seq numbers a run's events from 1.
	Seq       int64  `json:"seq"`
	SessionID string `json:"session_id"`
	Event
	// Status, Answer and StoppedBy are set on the done event.
	Status    panther.SessionStatus `json:"status,omitempty"`
	Answer    string                `json:"answer,omitempty"`
	StoppedBy string                `json:"stopped_by,omitempty"`
}

// LiveOptions bound a Live. Zero values take the defaults.
type LiveOptions struct {
	// MaxRunning bounds the sessions running at once (DefaultLiveMaxRunning); Start refuses more with
	// ErrUnavailable rather than queueing work nobody may wait for.
	MaxRunning int
	// BufferEvents is how many of a run's latest events are kept for replay (DefaultLiveBuffer).
	BufferEvents int
	// KeepFinished is how many finished runs keep their events, so that a subscriber arriving just
	// after the end still sees the whole run (DefaultLiveKeepFinished). Older ones answer from the store.
	KeepFinished int
}

// Defaults of LiveOptions.
const (
	DefaultLiveMaxRunning   = 16
	DefaultLiveBuffer       = 1000
	DefaultLiveKeepFinished = 64
	// liveSubscriberSlack is how many events a subscriber may fall behind the run before it is
	// dropped: a slow reader must never hold the run up.
	liveSubscriberSlack = 256
)

// LiveStats count a Live's runs, for metrics.
type LiveStats struct {
	Running int
	// Finished counts the runs that ended since the Live was made, by status.
	Finished map[panther.SessionStatus]int64
}

// Live runs sessions in the background for a long-lived server, on top of Sessions: Start returns
// as soon as the session is stored, the run goes on under a context of its own (not the request's),
// and anyone may follow it with Subscribe, cancel it with Cancel, or list it with Running.
// Shutdown cancels every run and waits until each has saved.
type Live struct {
	sessions *Sessions
	opts     LiveOptions

	mu     sync.Mutex
	closed bool
	// runs are the runs not yet ended, some perhaps without a stored session yet.
	runs map[*liveRun]struct{}
	// byID holds running runs and the KeepFinished latest finished ones, by session ID.
	byID     map[string]*liveRun
	finished []*liveRun
	counts   map[panther.SessionStatus]int64
	wg       sync.WaitGroup
}

// NewLive returns a Live running sessions through s.
func NewLive(s *Sessions, opts LiveOptions) (*Live, error) {
	if s == nil || s.Runtime == nil || s.Store == nil {
		return nil, panther.Invalidf("live sessions: a Sessions with a Runtime and a Store is required")
	}
	if opts.MaxRunning < 0 || opts.BufferEvents < 0 || opts.KeepFinished < 0 {
		return nil, panther.Invalidf("live sessions: limits must not be negative")
	}
	if opts.MaxRunning == 0 {
		opts.MaxRunning = DefaultLiveMaxRunning
	}
	if opts.BufferEvents == 0 {
		opts.BufferEvents = DefaultLiveBuffer
	}
	if opts.KeepFinished == 0 {
		opts.KeepFinished = DefaultLiveKeepFinished
	}
	return &Live{
		sessions: s, opts: opts,
		runs: map[*liveRun]struct{}{}, byID: map[string]*liveRun{}, counts: map[panther.SessionStatus]int64{},
	}, nil
}

// liveRun is one run's state and its subscribers.
type liveRun struct {
	buffer int
	cancel context.CancelFunc

	mu      sync.Mutex
	session panther.Session // ID empty until stored
	events  []LiveEvent
	seq     int64
	subs    map[chan LiveEvent]struct{}
	ended   bool
	// settled is set once the run's session is saved, just before its done event goes out, so that
	// a follow-up sent on seeing done is not refused as running.
	settled bool
}

// publish numbers e, keeps it and passes it to every subscriber that keeps up; one that does not is
// dropped (its channel closed without a done event), never waited for.
func (r *liveRun) publish(e LiveEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	e.Seq = r.seq
	e.SessionID = r.session.ID
	r.events = append(r.events, e)
	if len(r.events) > 2*r.buffer {
		// Trimming by halves keeps appends amortised O(1).
		r.events = append([]LiveEvent(nil), r.events[len(r.events)-r.buffer:]...)
	}
	for ch := range r.subs {
		select {
		case ch <- e:
		default:
			delete(r.subs, ch)
			close(ch)
		}
	}
}

// Start runs req in the background and returns its session as soon as it is stored. The run does
// not end with ctx, which only carries values (and bounds the lookup of a continued session); use
// Cancel or Shutdown. A second prompt to a session that is running is ErrConflict; more than
// MaxRunning runs at once, or a Live shutting down, ErrUnavailable. req.OnSession and req.OnEvent,
// when set, are called as with Sessions.Ask.
func (l *Live) Start(ctx context.Context, req AskRequest) (panther.Session, error) {
	if strings.TrimSpace(req.Prompt) == "" {
		return panther.Session{}, panther.Invalidf("the prompt is empty")
	}
	r := &liveRun{buffer: l.opts.BufferEvents, subs: map[chan LiveEvent]struct{}{}}
	if req.Continue != "" {
		// Resolved first so that a prefix and the full ID are the same session to the conflict check.
		s, err := l.sessions.Store.Session(ctx, req.Continue)
		if err != nil {
			return panther.Session{}, err
		}
		req.Continue = s.ID
		r.session = s
	}
	// The cancel func exists before the run is listed, so that Shutdown can always call it.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		cancel()
		return panther.Session{}, fmt.Errorf("live sessions are shutting down: %w", panther.ErrUnavailable)
	case len(l.runs) >= l.opts.MaxRunning:
		l.mu.Unlock()
		cancel()
		return panther.Session{}, fmt.Errorf("%d sessions are running, the most this server runs at once; try again later: %w", len(l.runs), panther.ErrUnavailable)
	}
	if id := r.session.ID; id != "" {
		if prev := l.byID[id]; prev != nil && !prev.isSettled() {
			l.mu.Unlock()
			cancel()
			return panther.Session{}, fmt.Errorf("session %s is running; wait for it to end or cancel it: %w", id, panther.ErrConflict)
		}
		l.byID[id] = r
	}
	l.runs[r] = struct{}{}
	l.wg.Add(1)
	l.mu.Unlock()

	started := make(chan panther.Session, 1)
	failed := make(chan error, 1)
	onSession, onEvent := req.OnSession, req.OnEvent
	req.OnSession = func(s panther.Session) {
		l.register(r, s)
		started <- s
		if onSession != nil {
			onSession(s)
		}
	}
	req.OnEvent = func(e Event) {
		r.publish(LiveEvent{Event: e})
		if onEvent != nil {
			onEvent(e)
		}
	}
	go func() {
		defer l.wg.Done()
		defer cancel()
		sess, res, err := l.sessions.Ask(runCtx, req)
		if !l.finish(r, sess, res, err) {
			failed <- err
		}
	}()
	select {
	case s := <-started:
		return s, nil
	case err := <-failed:
		return panther.Session{}, err
	}
}

// register records that r's session is stored.
func (l *Live) register(r *liveRun, s panther.Session) {
	r.mu.Lock()
	r.session = s
	r.mu.Unlock()
	l.mu.Lock()
	l.byID[s.ID] = r
	l.mu.Unlock()
}

func (r *liveRun) isSettled() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.settled || r.ended
}

func (r *liveRun) isEnded() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ended
}

// finish ends r: the done event, subscribers closed, the run moved to the finished ones. It reports
// whether the run had a stored session (a run that failed before storing one has nothing to show).
func (l *Live) finish(r *liveRun, sess panther.Session, res Result, runErr error) bool {
	stored := sess.ID != ""
	if stored {
		done := LiveEvent{
			Event:  Event{Kind: EventDone, RunID: sess.ID, Agent: sess.Agent, Citations: res.Citations, Usage: &res.Usage, Step: res.Steps},
			Status: sess.Status, Answer: res.Answer, StoppedBy: res.StoppedBy,
		}
		if runErr != nil && sess.Status == panther.SessionFailed {
			done.Err = runErr.Error()
		}
		r.mu.Lock()
		r.session = sess
		r.settled = true
		r.mu.Unlock()
		r.publish(done)
	}
	r.mu.Lock()
	r.ended = true
	for ch := range r.subs {
		close(ch)
	}
	r.subs = nil
	r.mu.Unlock()

	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.runs, r)
	if !stored {
		if id := r.session.ID; id != "" && l.byID[id] == r {
			delete(l.byID, id)
		}
		return false
	}
	l.counts[sess.Status]++
	l.finished = append(l.finished, r)
	for len(l.finished) > l.opts.KeepFinished {
		old := l.finished[0]
		l.finished = l.finished[1:]
		if l.byID[old.session.ID] == old {
			delete(l.byID, old.session.ID)
		}
	}
	return true
}

// lookup finds the run of a session by its ID or a unique prefix, resolving prefixes through the
// store. It returns the stored session when Live has no run of it.
func (l *Live) lookup(ctx context.Context, id string) (*liveRun, panther.Session, error) {
	if err := panther.ValidSessionID(id); err != nil {
		return nil, panther.Session{}, err
	}
	l.mu.Lock()
	r := l.byID[id]
	l.mu.Unlock()
	if r != nil {
		return r, panther.Session{}, nil
	}
	s, err := l.sessions.Store.Session(ctx, id)
	if err != nil {
		return nil, panther.Session{}, err
	}
	l.mu.Lock()
	r = l.byID[s.ID]
	l.mu.Unlock()
	return r, s, nil
}

// Subscribe follows a session's run: the channel first replays the kept events numbered after
// after (0: all kept), then carries new ones, and is closed after the done event. A subscriber
// that falls too far behind has its channel closed without a done event; it may subscribe again
// with the last Seq it saw. For a session Live no longer keeps, the channel holds one done event
// made from the stored session. Call stop when no longer reading. Unknown sessions: ErrNotFound.
func (l *Live) Subscribe(ctx context.Context, id string, after int64) (events <-chan LiveEvent, stop func(), err error) {
	r, stored, err := l.lookup(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if r == nil {
		done, err := l.storedDone(ctx, stored)
		if err != nil {
			return nil, nil, err
		}
		ch := make(chan LiveEvent, 1)
		ch <- done
		close(ch)
		return ch, func() {}, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var replay []LiveEvent
	for _, e := range r.events {
		if e.Seq > after {
			replay = append(replay, e)
		}
	}
	ch := make(chan LiveEvent, len(replay)+liveSubscriberSlack)
	for _, e := range replay {
		ch <- e
	}
	if r.ended {
		close(ch)
		return ch, func() {}, nil
	}
	r.subs[ch] = struct{}{}
	stop = func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, ok := r.subs[ch]; ok {
			delete(r.subs, ch)
			close(ch)
		}
	}
	return ch, stop, nil
}

// storedDone describes a session Live does not run as a done event: its status and last answer.
func (l *Live) storedDone(ctx context.Context, s panther.Session) (LiveEvent, error) {
	msgs, err := l.sessions.Store.SessionMessages(ctx, s.ID)
	if err != nil {
		return LiveEvent{}, err
	}
	e := LiveEvent{
		Seq: 1, SessionID: s.ID,
		Event:  Event{Kind: EventDone, RunID: s.ID, Agent: s.Agent, Usage: &s.Usage, Step: s.Steps},
		Status: s.Status, StoppedBy: s.StoppedBy,
	}
	for _, m := range slices.Backward(msgs) {
		if m.Role == panther.RoleAssistant && m.Content != "" {
			e.Answer = m.Content
			break
		}
	}
	return e, nil
}

// Cancel stops a running session and returns its full ID; the run saves what it did, with status
// cancelled, shortly after. Unknown sessions: ErrNotFound; sessions not running: ErrConflict.
func (l *Live) Cancel(ctx context.Context, id string) (string, error) {
	r, stored, err := l.lookup(ctx, id)
	if err != nil {
		return "", err
	}
	if r == nil || r.isEnded() {
		if r != nil {
			stored = r.snapshot()
		}
		return "", fmt.Errorf("session %s is not running (it is %s): %w", stored.ID, stored.Status, panther.ErrConflict)
	}
	r.cancel()
	return r.snapshot().ID, nil
}

func (r *liveRun) snapshot() panther.Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.session
}

// Running lists the sessions running now, oldest first.
func (l *Live) Running() []panther.Session {
	l.mu.Lock()
	runs := make([]*liveRun, 0, len(l.runs))
	for r := range l.runs {
		runs = append(runs, r)
	}
	l.mu.Unlock()
	out := make([]panther.Session, 0, len(runs))
	for _, r := range runs {
		if s := r.snapshot(); s.ID != "" {
			s.Status = panther.SessionRunning
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b panther.Session) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// IsRunning reports whether Live runs the session with exactly this ID now.
func (l *Live) IsRunning(id string) bool {
	l.mu.Lock()
	r := l.byID[id]
	l.mu.Unlock()
	return r != nil && !r.isSettled()
}

// Stats counts the runs, for metrics.
func (l *Live) Stats() LiveStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := LiveStats{Running: len(l.runs), Finished: make(map[panther.SessionStatus]int64, len(l.counts))}
	for k, v := range l.counts {
		st.Finished[k] = v
	}
	return st
}

// Shutdown refuses new runs, cancels the running ones and waits, until ctx ends, for each to save.
func (l *Live) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	runs := make([]*liveRun, 0, len(l.runs))
	for r := range l.runs {
		runs = append(runs, r)
	}
	l.mu.Unlock()
	for _, r := range runs {
		r.cancel()
	}
	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("live sessions: %d still saving: %w", len(runs), ctx.Err())
	}
}
