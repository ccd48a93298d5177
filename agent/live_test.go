package agent

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"panther"
	"panther/sqlite"
)

// newLive returns a Live over a real store whose only agent, "talker", answers at once (in two
// streamed pieces), or, when the prompt says "slow", only when the test ends or cancels the run.
func newLive(t *testing.T, opts LiveOptions) (*Live, *sqlite.DB) {
	t.Helper()
	script, release := blockingScript()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "live.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	_, model := newFakeModel(t, script)
	defs := map[string]Definition{"talker": mustDef(t, "talker", "---\ndescription: talks\nmode: primary\n---\nYou talk.")}
	l, err := NewLive(&Sessions{Runtime: &Runtime{Definitions: defs, Model: resolver(model, nil)}, Store: db}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := l.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return l, db
}

// blockingScript answers prompts with "slow" in them only once release is called, and anything
// else at once. Register release as a cleanup after the fake server's, so that it runs before the
// server's Close, which waits for the blocked handlers.
func blockingScript() (script func(n int, req wireRequest) turn, release func()) {
	ch := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	return func(n int, req wireRequest) turn {
		if strings.Contains(lastPrompt(req), "slow") {
			<-ch
		}
		return turn{Text: "Hello from the talker.", In: 5, Out: 3}
	}, release
}

func lastPrompt(r wireRequest) string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if m := r.Messages[i]; m.Role == "user" && m.Content != nil {
			return *m.Content
		}
	}
	return ""
}

// drain reads a subscription to its end.
func drain(t *testing.T, ch <-chan LiveEvent) []LiveEvent {
	t.Helper()
	var out []LiveEvent
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, e)
		case <-timeout:
			t.Fatalf("the subscription did not end; got %d events", len(out))
		}
	}
}

func textOf(events []LiveEvent) string {
	var b strings.Builder
	for _, e := range events {
		if e.Kind == EventText {
			b.WriteString(e.Text)
		}
	}
	return b.String()
}

func TestLiveRunsInTheBackgroundAndReplays(t *testing.T) {
	l, db := newLive(t, LiveOptions{})
	reqCtx, cancelReq := context.WithCancel(t.Context())
	sess, err := l.Start(reqCtx, AskRequest{Agent: "talker", Prompt: "say hello"})
	// The request ending must not end the run.
	cancelReq()
	if err != nil {
		t.Fatal(err)
	}
	if sess.ID == "" || sess.Agent != "talker" || sess.Status != panther.SessionRunning {
		t.Fatalf("Start returned %+v", sess)
	}
	ch, stop, err := l.Subscribe(t.Context(), sess.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	events := drain(t, ch)
	if len(events) < 2 {
		t.Fatalf("events %+v", events)
	}
	last := events[len(events)-1]
	if last.Kind != EventDone || last.Status != panther.SessionDone || !strings.Contains(last.Answer, "Hello from the talker.") || last.StoppedBy != StoppedAnswer {
		t.Errorf("last event %+v: want done with the answer", last)
	}
	if got := textOf(events); got != "Hello from the talker." {
		t.Errorf("streamed text %q", got)
	}
	for i, e := range events {
		if e.Seq != int64(i+1) || e.SessionID != sess.ID {
			t.Errorf("event %d: seq %d session %q", i, e.Seq, e.SessionID)
		}
	}
	stored, err := db.Session(t.Context(), sess.ID)
	if err != nil || stored.Status != panther.SessionDone {
		t.Errorf("stored session %+v, %v", stored, err)
	}

	// A late subscriber gets the whole run again; one that saw some events gets the rest.
	again, _, err := l.Subscribe(t.Context(), sess.ID[:6], 0)
	if err != nil {
		t.Fatal(err)
	}
	if replay := drain(t, again); len(replay) != len(events) || replay[len(replay)-1].Kind != EventDone {
		t.Errorf("replay after the end: %d events, want %d ending with done", len(replay), len(events))
	}
	rest, _, err := l.Subscribe(t.Context(), sess.ID, events[0].Seq)
	if err != nil {
		t.Fatal(err)
	}
	if got := drain(t, rest); len(got) != len(events)-1 || got[0].Seq != 2 {
		t.Errorf("replay after seq 1: %d events starting at %+v", len(got), got)
	}
	if len(l.Running()) != 0 || l.Stats().Finished[panther.SessionDone] != 1 {
		t.Errorf("running %v, stats %+v", l.Running(), l.Stats())
	}
}

func TestLiveConflictCancelAndErrors(t *testing.T) {
	l, db := newLive(t, LiveOptions{MaxRunning: 2})
	ctx := t.Context()
	sess, err := l.Start(ctx, AskRequest{Agent: "talker", Prompt: "be slow"})
	if err != nil {
		t.Fatal(err)
	}
	if run := l.Running(); len(run) != 1 || run[0].ID != sess.ID || !l.IsRunning(sess.ID) {
		t.Fatalf("Running() = %+v", run)
	}
	tests := []struct {
		name string
		req  AskRequest
		want error
	}{
		{"a second prompt to the running session", AskRequest{Continue: sess.ID, Prompt: "more"}, panther.ErrConflict},
		{"the same by prefix", AskRequest{Continue: sess.ID[:5], Prompt: "more"}, panther.ErrConflict},
		{"an unknown agent", AskRequest{Agent: "nobody", Prompt: "hi"}, panther.ErrNotFound},
		{"an unknown session", AskRequest{Continue: "ffffffff00000000", Prompt: "hi"}, panther.ErrNotFound},
		{"an empty prompt", AskRequest{Agent: "talker", Prompt: "  "}, panther.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := l.Start(ctx, tt.req); !errors.Is(err, tt.want) {
				t.Errorf("Start: %v, want %v", err, tt.want)
			}
		})
	}
	second, err := l.Start(ctx, AskRequest{Agent: "talker", Prompt: "slow too"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Start(ctx, AskRequest{Agent: "talker", Prompt: "a third"}); !errors.Is(err, panther.ErrUnavailable) {
		t.Errorf("a run over MaxRunning: %v, want ErrUnavailable", err)
	}

	ch, stop, err := l.Subscribe(ctx, sess.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if id, err := l.Cancel(ctx, sess.ID[:6]); err != nil || id != sess.ID {
		t.Fatalf("Cancel = %q, %v", id, err)
	}
	events := drain(t, ch)
	if last := events[len(events)-1]; last.Kind != EventDone || last.Status != panther.SessionCancelled {
		t.Errorf("last event after cancel %+v", last)
	}
	if s, err := db.Session(ctx, sess.ID); err != nil || s.Status != panther.SessionCancelled {
		t.Errorf("stored after cancel: %+v, %v", s, err)
	}
	if _, err := l.Cancel(ctx, sess.ID); !errors.Is(err, panther.ErrConflict) {
		t.Errorf("cancelling a finished session: %v, want ErrConflict", err)
	}
	if _, err := l.Cancel(ctx, "ffffffff00000000"); !errors.Is(err, panther.ErrNotFound) {
		t.Errorf("cancelling an unknown session: %v, want ErrNotFound", err)
	}
	if _, _, err := l.Subscribe(ctx, "no/such id", 0); !errors.Is(err, panther.ErrInvalid) {
		t.Errorf("subscribing to a malformed id: %v, want ErrInvalid", err)
	}

	// The cancelled session may be continued; the continuation answers at once.
	cont, err := l.Start(ctx, AskRequest{Continue: sess.ID, Prompt: "now answer"})
	if err != nil || cont.ID != sess.ID {
		t.Fatalf("continue after cancel: %+v, %v", cont, err)
	}
	ch, _, err = l.Subscribe(ctx, sess.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if events := drain(t, ch); events[len(events)-1].Status != panther.SessionDone {
		t.Errorf("continued run ended %+v", events[len(events)-1])
	}

	// Shutdown cancels what runs and waits until it is saved.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if s, err := db.Session(ctx, second.ID); err != nil || s.Status != panther.SessionCancelled {
		t.Errorf("a session running at shutdown is stored as %+v, %v; want cancelled", s, err)
	}
	if _, err := l.Start(ctx, AskRequest{Agent: "talker", Prompt: "after"}); !errors.Is(err, panther.ErrUnavailable) {
		t.Errorf("Start after Shutdown: %v, want ErrUnavailable", err)
	}
}

func TestLiveAnswersForSessionsItDoesNotRun(t *testing.T) {
	l, db := newLive(t, LiveOptions{})
	ctx := t.Context()
	s, err := db.CreateSession(ctx, panther.Session{Agent: "talker", Title: "old", Status: panther.SessionDone, StoppedBy: StoppedAnswer})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.AppendSessionMessages(ctx, s.ID, []panther.SessionMessage{
		{Message: panther.Message{Role: panther.RoleUser, Content: "q"}},
		{Message: panther.Message{Role: panther.RoleAssistant, Content: "the stored answer"}},
	}); err != nil {
		t.Fatal(err)
	}
	ch, _, err := l.Subscribe(ctx, s.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	events := drain(t, ch)
	if len(events) != 1 || events[0].Kind != EventDone || events[0].Status != panther.SessionDone || events[0].Answer != "the stored answer" {
		t.Errorf("events for a stored session: %+v", events)
	}
	if _, err := l.Cancel(ctx, s.ID); !errors.Is(err, panther.ErrConflict) {
		t.Errorf("cancelling a stored session: %v, want ErrConflict", err)
	}
}

func TestLiveDropsSlowSubscribersAndBoundsItsBuffer(t *testing.T) {
	r := &liveRun{buffer: 10, subs: map[chan LiveEvent]struct{}{}}
	r.session.ID = "abcd"
	slow := make(chan LiveEvent, 3)
	r.subs[slow] = struct{}{}
	for i := range 50 {
		r.publish(LiveEvent{Event: Event{Kind: EventText, Text: string(rune('a' + i%26))}})
	}
	got := 0
	for range slow {
		got++
	}
	if got != 3 {
		t.Errorf("the slow subscriber got %d events before being dropped, want its 3 buffered", got)
	}
	if len(r.subs) != 0 {
		t.Errorf("the slow subscriber is still subscribed")
	}
	if len(r.events) < 10 || len(r.events) > 20 || r.events[len(r.events)-1].Seq != 50 {
		t.Errorf("kept %d events ending at seq %d; want between 10 and 20 ending at 50", len(r.events), r.events[len(r.events)-1].Seq)
	}
}

// A follow-up sent the moment the done event arrives continues the session: done means the run has
// let go of it.
func TestLiveFollowUpOnDoneIsAccepted(t *testing.T) {
	l, _ := newLive(t, LiveOptions{})
	sess, err := l.Start(t.Context(), AskRequest{Agent: "talker", Prompt: "say hello"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		ch, stop, err := l.Subscribe(t.Context(), sess.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		for e := range ch {
			if e.Kind == EventDone {
				break
			}
		}
		stop()
		if _, err := l.Start(t.Context(), AskRequest{Continue: sess.ID, Prompt: "again"}); err != nil {
			t.Fatalf("follow-up %d right after done: %v", i, err)
		}
	}
}
