package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"panther"
)

// seedSessions records, through the store, a finished top-level run with a sub-agent, and an older
// failed run, in the CLI's database; it returns the finished run's and the sub-agent's sessions.
func seedSessions(t *testing.T, c *cli) (top, sub panther.Session) {
	t.Helper()
	db := c.openStore()
	defer db.Close()
	ctx := t.Context()
	t0 := time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)
	create := func(s panther.Session) panther.Session {
		t.Helper()
		out, err := db.CreateSession(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	create(panther.Session{ID: "1111aaaa2222bbbb", Agent: "general", Model: "qwen3", Title: "an older question",
		Created: t0.Add(-time.Hour), Status: panther.SessionFailed, StoppedBy: "time"})
	top = create(panther.Session{ID: "3f9a2c1e00000001", Agent: "general", Model: "qwen3", Title: "how do partial indexes work?", Created: t0})
	sub = create(panther.Session{ID: "3f9a2c1e00000002", ParentID: top.ID, Agent: "researcher", Model: "qwen3", Title: "find partial index docs", Created: t0.Add(time.Second)})

	cite := panther.Citation{URL: "https://www.postgresql.org/docs/15/indexes-partial.html", Title: "11.8. Partial Indexes",
		Anchor: "INDEXES-PARTIAL", FetchedAt: t0.Add(-24 * time.Hour), ContentHash: "h"}
	msgs := []panther.SessionMessage{
		{Message: panther.Message{Role: panther.RoleUser, Content: "how do partial indexes work?"}, Created: t0},
		{Message: panther.Message{Role: panther.RoleAssistant, ToolCalls: []panther.ToolCall{{ID: "call_1", Name: "kb_search", Arguments: json.RawMessage(`{"query":"partial index"}`)}}},
			Created: t0.Add(time.Second), Duration: 900 * time.Millisecond, Usage: panther.Usage{InputTokens: 100, OutputTokens: 10}},
		{Message: panther.Message{Role: panther.RoleTool, ToolCallID: "call_1", Content: "[1] 11.8. Partial Indexes\nA partial index is built over a subset of a table."},
			Created: t0.Add(2 * time.Second), Citations: []panther.Citation{cite}},
		{Message: panther.Message{Role: panther.RoleAssistant, Content: "It indexes only the rows its WHERE clause selects [1]."},
			Created: t0.Add(3 * time.Second), Usage: panther.Usage{InputTokens: 300, OutputTokens: 20}},
	}
	if err := db.AppendSessionMessages(ctx, top.ID, msgs); err != nil {
		t.Fatal(err)
	}
	top.Usage, top.Steps, top.StoppedBy, top.Status = panther.Usage{InputTokens: 400, OutputTokens: 30}, 2, "answer", panther.SessionDone
	top.Updated = t0.Add(time.Minute)
	if err := db.UpdateSession(ctx, top); err != nil {
		t.Fatal(err)
	}
	sub.Status, sub.Updated = panther.SessionDone, t0.Add(30*time.Second)
	if err := db.UpdateSession(ctx, sub); err != nil {
		t.Fatal(err)
	}
	return top, sub
}

func TestSessionsList(t *testing.T) {
	c := newCLI(t)
	if code, out, errOut := c.run("sessions", "list"); code != 0 || !strings.Contains(out, "no sessions recorded") {
		t.Errorf("list of an empty store: exit %d, %q, %q", code, out, errOut)
	}
	top, sub := seedSessions(t, c)

	code, out, errOut := c.run("sessions", "list")
	if code != 0 {
		t.Fatalf("sessions list: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("sessions list: %d lines, want a header and the 2 top-level sessions:\n%s", len(lines), out)
	}
	for _, h := range []string{"ID", "UPDATED", "AGENT", "MODEL", "STATUS", "STEPS", "TOKENS", "TITLE"} {
		if !strings.Contains(lines[0], h) {
			t.Errorf("header %q lacks %s", lines[0], h)
		}
	}
	// Newest first, short IDs, the numbers added up.
	if f := strings.Fields(lines[1]); f[0] != "3f9a2c1e" || !strings.Contains(lines[1], "general") || !strings.Contains(lines[1], "qwen3") ||
		!strings.Contains(lines[1], " done ") || !strings.Contains(lines[1], " 430 ") || !strings.Contains(lines[1], "how do partial indexes work?") {
		t.Errorf("first row %q, want the finished run with 430 tokens", lines[1])
	}
	if !strings.HasPrefix(lines[2], "1111aaaa ") || !strings.Contains(lines[2], "failed") {
		t.Errorf("second row %q, want the older failed run", lines[2])
	}
	if strings.Contains(out, "find partial index docs") {
		t.Errorf("a sub-agent session is listed without --all:\n%s", out)
	}

	code, out, _ = c.run("sessions", "list", "--all")
	if code != 0 || !strings.Contains(out, "PARENT") || !strings.Contains(out, "find partial index docs") || !strings.Contains(out, "researcher") {
		t.Errorf("list --all: exit %d, want the sub-agent session with its parent:\n%s", code, out)
	}
	// The run and its sub-agent share 8 leading characters: the listing shows enough to tell them apart.
	if !strings.Contains(out, "3f9a2c1e00000002  3f9a2c1e00000001") {
		t.Errorf("list --all does not tell the sessions apart:\n%s", out)
	}

	var res struct{ Sessions []panther.Session }
	c.mustJSON(&res, "sessions", "list", "--json", "--all", "--limit", "2")
	if len(res.Sessions) != 2 || res.Sessions[0].ID != top.ID || res.Sessions[1].ID != sub.ID {
		t.Fatalf("list --json --all --limit 2: %+v, want the run and its sub-agent", res.Sessions)
	}
	if s := res.Sessions[0]; s.Usage.InputTokens != 400 || s.Steps != 2 || s.StoppedBy != "answer" || s.Title != top.Title {
		t.Errorf("listed session %+v lacks its numbers", s)
	}
	if res.Sessions[1].ParentID != top.ID {
		t.Errorf("sub-agent session's parent_id = %q, want %s", res.Sessions[1].ParentID, top.ID)
	}
}

func TestSessionsShowAndExport(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) { testSessionsShowAndExport(t, newCLIOn(t, kind)) })
	}
}

func testSessionsShowAndExport(t *testing.T, c *cli) {
	top, _ := seedSessions(t, c)

	code, md, errOut := c.run("sessions", "show", "3f9a2c1e00000001")
	if code != 0 {
		t.Fatalf("sessions show: exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"# how do partial indexes work?", "- Agent: general", "- Model: qwen3", "- Status: done, stopped by answer",
		"- Steps: 2", "- Tokens: 400 in, 30 out", "> how do partial indexes work?", "**Tool call** `kb_search`",
		"\"query\": \"partial index\"", "<details>", "It indexes only the rows its WHERE clause selects [1].",
		"## Sources", "(<https://www.postgresql.org/docs/15/indexes-partial.html#INDEXES-PARTIAL>)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("sessions show lacks %q:\n%s", want, md)
		}
	}

	// A unique prefix finds it as well.
	if code, byPrefix, _ := c.run("sessions", "show", "1111a"); code != 0 || !strings.Contains(byPrefix, "# an older question") {
		t.Errorf("show by prefix: exit %d:\n%s", code, byPrefix)
	}

	var js sessionJSON
	c.mustJSON(&js, "sessions", "show", "--json", top.ID)
	if js.Session.ID != top.ID || len(js.Messages) != 4 || js.Messages[3].Seq != 4 {
		t.Fatalf("show --json: %+v", js)
	}
	if m := js.Messages[1]; len(m.ToolCalls) != 1 || compactJSON(m.ToolCalls[0].Arguments) != `{"query":"partial index"}` || m.Duration != 900*time.Millisecond {
		t.Errorf("show --json: the tool call turn is %+v", m)
	}
	if m := js.Messages[2]; len(m.Citations) != 1 || m.Citations[0].Anchor != "INDEXES-PARTIAL" || m.ToolCallID != "call_1" {
		t.Errorf("show --json: the tool result is %+v", m)
	}

	out := filepath.Join(t.TempDir(), "transcript.md")
	if err := os.WriteFile(out, []byte("an older export"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, errOut := c.run("sessions", "export", "3f9a2c1e00000001", "-o", out)
	if code != 0 || stdout != "" || !strings.Contains(errOut, out) {
		t.Fatalf("export -o: exit %d, stdout %q, stderr %q", code, stdout, errOut)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != md {
		t.Errorf("exported file differs from sessions show (%v):\n%s", err, b)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*.tmp")); len(left) != 0 {
		t.Errorf("export left temporary files: %v", left)
	}
	if code, stdout, _ := c.run("sessions", "export", top.ID); code != 0 || stdout != md {
		t.Errorf("export to stdout: exit %d, differs from show:\n%s", code, stdout)
	}
}

func TestSessionsErrors(t *testing.T) {
	c := newCLI(t)
	seedSessions(t, c)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"show an unknown session", []string{"sessions", "show", "deadbeef"}, 1, "session deadbeef not found"},
		{"export an unknown session", []string{"sessions", "export", "deadbeef", "-o", filepath.Join(t.TempDir(), "x.md")}, 1, "session deadbeef not found"},
		{"an ambiguous prefix", []string{"sessions", "show", "3f9a2c1e"}, 2, "ambiguous"},
		{"not an id", []string{"sessions", "show", "../etc"}, 2, "session id"},
		{"show without an id", []string{"sessions", "show"}, 2, "expects one session ID"},
		{"a negative limit", []string{"sessions", "list", "--limit", "-1"}, 2, "--limit"},
		{"export into a missing directory", []string{"sessions", "export", "1111aaaa", "-o", "/nonexistent/dir/x.md"}, 1, "/nonexistent/dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := c.run(tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.wantCode, errOut)
			}
			if !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr %q does not mention %q", errOut, tt.wantErr)
			}
			if strings.Count(strings.TrimRight(errOut, "\n"), "\n") != 0 {
				t.Errorf("error is not one line: %q", errOut)
			}
			if out != "" {
				t.Errorf("a failed command printed %q on stdout", out)
			}
		})
	}
}

func compactJSON(b []byte) string {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return "invalid JSON: " + string(b)
	}
	return out.String()
}

func TestAbbrevLen(t *testing.T) {
	tests := []struct {
		ids  []string
		want int
	}{
		{nil, shortID},
		{[]string{"0123456789abcdef"}, shortID},
		{[]string{"0123456789abcdef", "0123456799abcdef"}, 9},
		{[]string{"0123456789abcdef", "0123456789abcdee"}, 16},
		{[]string{"short", "tiny"}, shortID},
		{[]string{"abcdefgh", "abcdefghij"}, 9},
	}
	for _, tt := range tests {
		var list []panther.Session
		for _, id := range tt.ids {
			list = append(list, panther.Session{ID: id})
		}
		if got := abbrevLen(list); got != tt.want {
			t.Errorf("abbrevLen(%v) = %d, want %d", tt.ids, got, tt.want)
		}
	}
}
