package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"panther"
)

// Session semantics the suite pins down beyond the interface comments:
//   - generated IDs are 16 lowercase hex digits;
//   - message durations round-trip at microsecond precision, tool-call arguments byte for byte (even
//     when they are not valid JSON);
//   - SessionMessages of a session with no messages is empty, not nil and not an error;
//   - listing the sub-agent sessions of an unknown session is empty, not an error.
func runSessions(t *testing.T, open func(t *testing.T) panther.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s panther.Store)
	}{
		{"CreateGet", testSessionCreateGet},
		{"Prefix", testSessionPrefix},
		{"Messages", testSessionMessages},
		{"Update", testSessionUpdate},
		{"List", testSessionList},
		{"SubAgents", testSessionSubAgents},
		{"Delete", testSessionDelete},
		{"NotFound", testSessionNotFound},
		{"Invalid", testSessionInvalid},
		{"ConcurrentAppends", testSessionConcurrentAppends},
	}
	for _, tc := range tests {
		t.Run("Session"+tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func createSession(t *testing.T, s panther.Store, in panther.Session) panther.Session {
	t.Helper()
	got, err := s.CreateSession(ctx(t), in)
	if err != nil {
		t.Fatalf("CreateSession(%+v): %v", in, err)
	}
	return got
}

func getSession(t *testing.T, s panther.Store, id string) panther.Session {
	t.Helper()
	got, err := s.Session(ctx(t), id)
	if err != nil {
		t.Fatalf("Session(%s): %v", id, err)
	}
	return got
}

func sameSession(a, b panther.Session) bool {
	return a.ID == b.ID && a.ParentID == b.ParentID && a.Agent == b.Agent && a.Model == b.Model &&
		a.Title == b.Title && a.Created.Equal(b.Created) && a.Updated.Equal(b.Updated) && a.Usage == b.Usage &&
		a.Steps == b.Steps && a.StoppedBy == b.StoppedBy && a.Status == b.Status
}

var hexID = regexp.MustCompile(`^[0-9a-f]{16}$`)

func testSessionCreateGet(t *testing.T, s panther.Store) {
	before := time.Now().Add(-time.Second)
	gen := createSession(t, s, panther.Session{Agent: "general", Model: "qwen3", Title: "  how do\n partial\tindexes work?  "})
	if !hexID.MatchString(gen.ID) {
		t.Errorf("generated id %q, want 16 hex digits", gen.ID)
	}
	if gen.Status != panther.SessionRunning {
		t.Errorf("status %q, want running by default", gen.Status)
	}
	if gen.Created.Before(before) || !gen.Updated.Equal(gen.Created) {
		t.Errorf("times created %v updated %v, want now and equal", gen.Created, gen.Updated)
	}
	if gen.Title != "how do partial indexes work?" {
		t.Errorf("title %q, want the prompt on one line", gen.Title)
	}
	if got := getSession(t, s, gen.ID); !sameSession(got, gen) {
		t.Errorf("Session = %+v, want what CreateSession returned, %+v", got, gen)
	}
	if other := createSession(t, s, panther.Session{}); other.ID == gen.ID {
		t.Errorf("two sessions got the same id %s", gen.ID)
	}

	full := panther.Session{
		ID: "run-1_A", Agent: "researcher", Model: "claude", Title: strings.Repeat("long title ", 40),
		Created: t0, Updated: t0.Add(time.Minute), Usage: panther.Usage{InputTokens: 7, OutputTokens: 3},
		Steps: 2, StoppedBy: "answer", Status: panther.SessionDone,
	}
	got := createSession(t, s, full)
	if r := []rune(got.Title); len(r) > panther.MaxSessionTitle || !strings.HasPrefix(got.Title, "long title long") || strings.Contains(got.Title, "  ") {
		t.Errorf("title %q: want at most %d characters, spaces collapsed", got.Title, panther.MaxSessionTitle)
	}
	want := full
	want.Title = panther.SessionTitle(full.Title)
	if !sameSession(got, want) {
		t.Errorf("CreateSession = %+v, want %+v", got, want)
	}
	if read := getSession(t, s, "run-1_A"); !sameSession(read, want) {
		t.Errorf("Session = %+v, want %+v", read, want)
	}
	if _, err := s.CreateSession(ctx(t), panther.Session{ID: "run-1_A"}); !errors.Is(err, panther.ErrConflict) {
		t.Errorf("CreateSession with a taken id: %v, want ErrConflict", err)
	}
}

func testSessionPrefix(t *testing.T, s panther.Store) {
	for _, id := range []string{"abcd1111", "abcd2222", "abce3333", "ab_x"} {
		createSession(t, s, panther.Session{ID: id, Created: t0})
	}
	tests := []struct {
		give, want string
		kind       error
	}{
		{"abcd1111", "abcd1111", nil},
		{"abcd1", "abcd1111", nil},
		{"abce", "abce3333", nil},
		{"ab_x", "ab_x", nil},                  // exact beats prefix, even when short
		{"abc", "", panther.ErrNotFound},       // too short to be a prefix
		{"abcd", "", panther.ErrInvalid},       // ambiguous
		{"ABCD1", "", panther.ErrNotFound},     // case matters
		{"ab%x", "", panther.ErrInvalid},       // not an id
		{"abcd11111", "", panther.ErrNotFound}, // longer than any id
	}
	for _, tt := range tests {
		got, err := s.Session(ctx(t), tt.give)
		if tt.kind == nil {
			if err != nil || got.ID != tt.want {
				t.Errorf("Session(%q) = %q, %v; want %q", tt.give, got.ID, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, tt.kind) {
			t.Errorf("Session(%q) = %q, %v; want %v", tt.give, got.ID, err, tt.kind)
		}
	}
	_, err := s.Session(ctx(t), "abcd")
	if err == nil || !strings.Contains(err.Error(), "ambiguous") || !strings.Contains(err.Error(), "abcd1111") || !strings.Contains(err.Error(), "abcd2222") {
		t.Errorf("ambiguous prefix: %v, want a message saying so and naming the matches", err)
	}
	if _, err := s.Session(ctx(t), "abc"); err == nil || !strings.Contains(err.Error(), "session abc not found") {
		t.Errorf("unknown id: %v, want \"session abc not found\"", err)
	}
}

// sampleMessages is a conversation with every field set somewhere.
func sampleMessages() []panther.SessionMessage {
	cite := panther.Citation{URL: "https://example.org/idx", Title: "Indexes", Heading: "Indexes > Partial",
		Anchor: "partial", FetchedAt: t0, ContentHash: "h1"}
	return []panther.SessionMessage{
		{Message: panther.Message{Role: panther.RoleUser, Content: "how do partial indexes work?"}, Created: t0},
		{Message: panther.Message{Role: panther.RoleAssistant, Content: "Let me look.", ToolCalls: []panther.ToolCall{
			{ID: "call_1", Name: "kb_search", Arguments: json.RawMessage("{\n  \"query\": \"partial index\"\n}")},
			{ID: "call_2", Name: "kb_read", Arguments: json.RawMessage(`{"url": "broken`)},
		}}, Created: t0.Add(time.Second), Duration: 1234567 * time.Microsecond, Usage: panther.Usage{InputTokens: 100, OutputTokens: 12}},
		{Message: panther.Message{Role: panther.RoleTool, ToolCallID: "call_1", Content: "[1] Indexes — Partial\nA partial index…"},
			Created: t0.Add(2 * time.Second), Duration: 35 * time.Millisecond, Citations: []panther.Citation{cite}},
		{Message: panther.Message{Role: panther.RoleTool, ToolCallID: "call_2", Content: "kb_read: bad arguments", IsError: true},
			Created: t0.Add(2 * time.Second)},
		{Message: panther.Message{Role: panther.RoleAssistant, Content: "A partial index covers some rows [1]."},
			Created: t0.Add(3 * time.Second), Duration: time.Second, Usage: panther.Usage{InputTokens: 300, OutputTokens: 20}},
	}
}

func messages(t *testing.T, s panther.Store, id string) []panther.SessionMessage {
	t.Helper()
	got, err := s.SessionMessages(ctx(t), id)
	if err != nil {
		t.Fatalf("SessionMessages(%s): %v", id, err)
	}
	return got
}

func sameMessage(a, b panther.SessionMessage) bool {
	if len(a.ToolCalls) != len(b.ToolCalls) || len(a.Citations) != len(b.Citations) {
		return false
	}
	for i := range a.ToolCalls {
		x, y := a.ToolCalls[i], b.ToolCalls[i]
		if x.ID != y.ID || x.Name != y.Name || string(x.Arguments) != string(y.Arguments) {
			return false
		}
	}
	for i := range a.Citations {
		x, y := a.Citations[i], b.Citations[i]
		if !x.FetchedAt.Equal(y.FetchedAt) {
			return false
		}
		x.FetchedAt, y.FetchedAt = time.Time{}, time.Time{}
		if x != y {
			return false
		}
	}
	return a.Seq == b.Seq && a.Role == b.Role && a.Content == b.Content && a.ToolCallID == b.ToolCallID &&
		a.IsError == b.IsError && a.Created.Equal(b.Created) && a.Duration == b.Duration && a.Usage == b.Usage
}

func testSessionMessages(t *testing.T, s panther.Store) {
	sess := createSession(t, s, panther.Session{Created: t0})
	if got := messages(t, s, sess.ID); got == nil || len(got) != 0 {
		t.Errorf("messages of a new session = %#v, want empty and not nil", got)
	}
	in := sampleMessages()
	for i := range in {
		in[i].Seq = 99 // ignored
	}
	if err := s.AppendSessionMessages(ctx(t), sess.ID, in[:3]); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendSessionMessages(ctx(t), sess.ID, nil); err != nil {
		t.Errorf("appending nothing: %v", err)
	}
	if err := s.AppendSessionMessages(ctx(t), sess.ID, in[3:]); err != nil {
		t.Fatal(err)
	}
	got := messages(t, s, sess.ID)
	if len(got) != len(in) {
		t.Fatalf("%d messages, want %d", len(got), len(in))
	}
	for i := range in {
		want := in[i]
		want.Seq = i + 1
		if !sameMessage(got[i], want) {
			t.Errorf("message %d =\n%+v\nwant\n%+v", i, got[i], want)
		}
	}
	if up := getSession(t, s, sess.ID); !up.Updated.After(sess.Updated) {
		t.Errorf("appending left updated at %v", up.Updated)
	}

	// A message without a time gets now.
	before := time.Now().Add(-time.Second)
	if err := s.AppendSessionMessages(ctx(t), sess.ID, []panther.SessionMessage{{Message: panther.Message{Role: panther.RoleUser, Content: "and then?"}}}); err != nil {
		t.Fatal(err)
	}
	got = messages(t, s, sess.ID)
	if last := got[len(got)-1]; last.Seq != len(in)+1 || last.Created.Before(before) {
		t.Errorf("last message seq %d created %v, want seq %d and now", last.Seq, last.Created, len(in)+1)
	}

	// A batch with one bad message adds nothing.
	bad := []panther.SessionMessage{{Message: panther.Message{Role: panther.RoleUser, Content: "fine"}}, {Message: panther.Message{Role: "system"}}}
	if err := s.AppendSessionMessages(ctx(t), sess.ID, bad); !errors.Is(err, panther.ErrInvalid) {
		t.Errorf("append with an unknown role: %v, want ErrInvalid", err)
	}
	if n := len(messages(t, s, sess.ID)); n != len(in)+1 {
		t.Errorf("a rejected batch changed the message count to %d", n)
	}
	// Sessions do not share numbering.
	other := createSession(t, s, panther.Session{})
	if err := s.AppendSessionMessages(ctx(t), other.ID, in[:1]); err != nil {
		t.Fatal(err)
	}
	if got := messages(t, s, other.ID); len(got) != 1 || got[0].Seq != 1 {
		t.Errorf("another session's messages: %+v, want one with seq 1", got)
	}
}

func testSessionUpdate(t *testing.T, s panther.Store) {
	sess := createSession(t, s, panther.Session{Agent: "general", Model: "m1", Title: "first", Created: t0})
	up := sess
	up.Title = "a\nsecond   title"
	up.Usage = panther.Usage{InputTokens: 400, OutputTokens: 32}
	up.Steps = 3
	up.StoppedBy = "tokens"
	up.Status = panther.SessionDone
	up.Updated = t0.Add(time.Hour)
	// Fixed at creation: these are ignored.
	up.Agent, up.Model, up.ParentID, up.Created = "other", "m2", "", t0.Add(time.Hour)
	if err := s.UpdateSession(ctx(t), up); err != nil {
		t.Fatal(err)
	}
	want := sess
	want.Title, want.Usage, want.Steps, want.StoppedBy, want.Status, want.Updated = "a second title", up.Usage, 3, "tokens", panther.SessionDone, up.Updated
	if got := getSession(t, s, sess.ID); !sameSession(got, want) {
		t.Errorf("after UpdateSession: %+v, want %+v", got, want)
	}
	before := time.Now().Add(-time.Second)
	up.Updated = time.Time{}
	up.Status = panther.SessionFailed
	if err := s.UpdateSession(ctx(t), up); err != nil {
		t.Fatal(err)
	}
	if got := getSession(t, s, sess.ID); got.Updated.Before(before) || got.Status != panther.SessionFailed {
		t.Errorf("update without a time: updated %v status %s, want now and failed", got.Updated, got.Status)
	}
	up.Status = "exploded"
	if err := s.UpdateSession(ctx(t), up); !errors.Is(err, panther.ErrInvalid) {
		t.Errorf("UpdateSession with an unknown status: %v, want ErrInvalid", err)
	}
}

func testSessionList(t *testing.T, s panther.Store) {
	if got, err := s.Sessions(ctx(t), panther.SessionFilter{}); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Sessions of an empty store = %#v, %v; want empty and not nil", got, err)
	}
	var ids []string
	for i := 0; i < 5; i++ {
		// Created in one order, updated in another: the listing follows Updated.
		ss := createSession(t, s, panther.Session{Created: t0.Add(time.Duration(i) * time.Minute), Updated: t0.Add(time.Duration(10-i) * time.Minute)})
		ids = append(ids, ss.ID)
	}
	list, err := s.Sessions(ctx(t), panther.SessionFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if got := sessionIDs(list); !reflect.DeepEqual(got, ids) {
		t.Errorf("Sessions = %v, want most recently updated first %v", got, ids)
	}
	// Touching the oldest brings it to the top.
	if err := s.AppendSessionMessages(ctx(t), ids[4], []panther.SessionMessage{{Message: panther.Message{Role: panther.RoleUser, Content: "x"}}}); err != nil {
		t.Fatal(err)
	}
	list, err = s.Sessions(ctx(t), panther.SessionFilter{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := sessionIDs(list); !reflect.DeepEqual(got, []string{ids[4], ids[0]}) {
		t.Errorf("Sessions(limit 2) after appending to the oldest = %v, want %v", got, []string{ids[4], ids[0]})
	}
}

func sessionIDs(ss []panther.Session) []string {
	out := []string{}
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

func testSessionSubAgents(t *testing.T, s panther.Store) {
	parent := createSession(t, s, panther.Session{Agent: "general", Created: t0})
	a := createSession(t, s, panther.Session{ParentID: parent.ID, Agent: "researcher", Created: t0.Add(time.Second)})
	b := createSession(t, s, panther.Session{ParentID: parent.ID, Agent: "researcher", Created: t0.Add(2 * time.Second)})
	grandchild := createSession(t, s, panther.Session{ParentID: a.ID, Created: t0.Add(3 * time.Second)})
	other := createSession(t, s, panther.Session{Created: t0.Add(-time.Hour)})
	if got := getSession(t, s, a.ID); got.ParentID != parent.ID {
		t.Errorf("sub-agent session's parent = %q, want %s", got.ParentID, parent.ID)
	}
	tests := []struct {
		f    panther.SessionFilter
		want []string
	}{
		{panther.SessionFilter{}, []string{grandchild.ID, b.ID, a.ID, parent.ID, other.ID}},
		{panther.SessionFilter{TopLevelOnly: true}, []string{parent.ID, other.ID}},
		{panther.SessionFilter{ParentID: parent.ID}, []string{b.ID, a.ID}},
		{panther.SessionFilter{ParentID: a.ID}, []string{grandchild.ID}},
		{panther.SessionFilter{ParentID: "0000000000000000"}, []string{}},
	}
	for _, tt := range tests {
		got, err := s.Sessions(ctx(t), tt.f)
		if err != nil {
			t.Errorf("Sessions(%+v): %v", tt.f, err)
			continue
		}
		if ids := sessionIDs(got); !reflect.DeepEqual(ids, tt.want) {
			t.Errorf("Sessions(%+v) = %v, want %v", tt.f, ids, tt.want)
		}
	}
	_, err := s.CreateSession(ctx(t), panther.Session{ParentID: "ffffffffffffffff"})
	if !errors.Is(err, panther.ErrNotFound) || !strings.Contains(err.Error(), "ffffffffffffffff") {
		t.Errorf("CreateSession with an unknown parent: %v, want ErrNotFound naming it", err)
	}
}

func testSessionDelete(t *testing.T, s panther.Store) {
	parent := createSession(t, s, panther.Session{})
	child := createSession(t, s, panther.Session{ParentID: parent.ID})
	grandchild := createSession(t, s, panther.Session{ParentID: child.ID})
	keep := createSession(t, s, panther.Session{})
	for _, id := range []string{parent.ID, child.ID, grandchild.ID, keep.ID} {
		if err := s.AppendSessionMessages(ctx(t), id, sampleMessages()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteSession(ctx(t), parent.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{parent.ID, child.ID, grandchild.ID} {
		if _, err := s.Session(ctx(t), id); !errors.Is(err, panther.ErrNotFound) {
			t.Errorf("Session(%s) after deleting its tree: %v, want ErrNotFound", id, err)
		}
		if _, err := s.SessionMessages(ctx(t), id); !errors.Is(err, panther.ErrNotFound) {
			t.Errorf("SessionMessages(%s) after deleting its tree: %v, want ErrNotFound", id, err)
		}
	}
	if got := messages(t, s, keep.ID); len(got) != len(sampleMessages()) {
		t.Errorf("deleting another tree took messages of %s: %d left", keep.ID, len(got))
	}
	if list, _ := s.Sessions(ctx(t), panther.SessionFilter{}); !reflect.DeepEqual(sessionIDs(list), []string{keep.ID}) {
		t.Errorf("after delete, sessions %v, want only %s", sessionIDs(list), keep.ID)
	}
	// A new session may take a deleted one's id, and starts numbering again.
	again := createSession(t, s, panther.Session{ID: child.ID})
	if err := s.AppendSessionMessages(ctx(t), again.ID, sampleMessages()[:1]); err != nil {
		t.Fatal(err)
	}
	if got := messages(t, s, again.ID); len(got) != 1 || got[0].Seq != 1 {
		t.Errorf("a re-created session's messages: %+v", got)
	}
}

func testSessionNotFound(t *testing.T, s panther.Store) {
	const id = "feedfacefeedface"
	msg := []panther.SessionMessage{{Message: panther.Message{Role: panther.RoleUser, Content: "x"}}}
	calls := map[string]func() error{
		"SessionMessages": func() error { _, err := s.SessionMessages(ctx(t), id); return err },
		"Append":          func() error { return s.AppendSessionMessages(ctx(t), id, msg) },
		"Append nothing":  func() error { return s.AppendSessionMessages(ctx(t), id, nil) },
		"Update":          func() error { return s.UpdateSession(ctx(t), panther.Session{ID: id, Status: panther.SessionDone}) },
		"Delete":          func() error { return s.DeleteSession(ctx(t), id) },
	}
	if _, err := s.Session(ctx(t), id); !errors.Is(err, panther.ErrNotFound) || !strings.Contains(err.Error(), id) {
		t.Errorf("Session: %v, want ErrNotFound naming the session", err)
	}
	// Session finds a session by a prefix of its id; the calls that take an exact id must not.
	createSession(t, s, panther.Session{ID: id + "00"})
	for name, call := range calls {
		err := call()
		if !errors.Is(err, panther.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
			continue
		}
		if !strings.Contains(err.Error(), id) {
			t.Errorf("%s: error %q does not name the session", name, err)
		}
	}
}

func testSessionInvalid(t *testing.T, s panther.Store) {
	sess := createSession(t, s, panther.Session{})
	calls := map[string]func() error{
		"create with a bad id": func() error { _, err := s.CreateSession(ctx(t), panther.Session{ID: "a b"}); return err },
		"create with a long id": func() error {
			_, err := s.CreateSession(ctx(t), panther.Session{ID: strings.Repeat("a", 65)})
			return err
		},
		"create with a bad status": func() error { _, err := s.CreateSession(ctx(t), panther.Session{Status: "paused"}); return err },
		"create with bad steps":    func() error { _, err := s.CreateSession(ctx(t), panther.Session{Steps: -1}); return err },
		"create with a bad parent": func() error { _, err := s.CreateSession(ctx(t), panther.Session{ParentID: "../x"}); return err },
		"get empty id":             func() error { _, err := s.Session(ctx(t), ""); return err },
		"messages of a bad id":     func() error { _, err := s.SessionMessages(ctx(t), "a/b"); return err },
		"append to empty id":       func() error { return s.AppendSessionMessages(ctx(t), "", nil) },
		"append a bad duration": func() error {
			return s.AppendSessionMessages(ctx(t), sess.ID, []panther.SessionMessage{{Message: panther.Message{Role: panther.RoleTool}, Duration: -time.Second}})
		},
		"update empty status": func() error { return s.UpdateSession(ctx(t), panther.Session{ID: sess.ID}) },
		"update bad usage": func() error {
			return s.UpdateSession(ctx(t), panther.Session{ID: sess.ID, Status: panther.SessionDone, Usage: panther.Usage{InputTokens: -5}})
		},
		"list negative limit": func() error { _, err := s.Sessions(ctx(t), panther.SessionFilter{Limit: -1}); return err },
		"list parent and toplevel": func() error {
			_, err := s.Sessions(ctx(t), panther.SessionFilter{ParentID: sess.ID, TopLevelOnly: true})
			return err
		},
		"delete empty id": func() error { return s.DeleteSession(ctx(t), "") },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, panther.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if list, _ := s.Sessions(ctx(t), panther.SessionFilter{}); len(list) != 1 {
		t.Errorf("rejected creates stored sessions: %v", sessionIDs(list))
	}
}

// testSessionConcurrentAppends has sub-agents write to one session at once: every batch must land
// whole and in one piece, numbered without gaps or repeats.
func testSessionConcurrentAppends(t *testing.T, s panther.Store) {
	const writers, batches, perBatch = 6, 10, 3
	sess := createSession(t, s, panther.Session{})
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < batches; b++ {
				batch := make([]panther.SessionMessage, perBatch)
				for i := range batch {
					batch[i] = panther.SessionMessage{Message: panther.Message{Role: panther.RoleTool, Content: fmt.Sprintf("w%d b%d m%d", w, b, i)}}
				}
				if err := s.AppendSessionMessages(ctx(t), sess.ID, batch); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := messages(t, s, sess.ID)
	if len(got) != writers*batches*perBatch {
		t.Fatalf("%d messages, want %d", len(got), writers*batches*perBatch)
	}
	for i := 0; i < len(got); i += perBatch {
		prefix, _, _ := strings.Cut(got[i].Content, " m")
		for j := 0; j < perBatch; j++ {
			m := got[i+j]
			if m.Seq != i+j+1 {
				t.Fatalf("message %d has seq %d", i+j, m.Seq)
			}
			if want := fmt.Sprintf("%s m%d", prefix, j); m.Content != want {
				t.Fatalf("message seq %d is %q, want %q: a batch was interleaved", m.Seq, m.Content, want)
			}
		}
	}
}
