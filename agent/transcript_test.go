package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"panther"
)

var updateTranscript = flag.Bool("update-transcript", false, "rewrite agent/testdata/*.golden.md")

var tT0 = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// transcriptSession is a sub-agent run with everything a transcript shows: a tool call with valid
// and one with broken arguments, a long result, a failure, a result holding a code fence, and two
// results citing the same source.
func transcriptSession() (panther.Session, []panther.SessionMessage) {
	s := panther.Session{
		ID: "0123456789abcdef", ParentID: "fedcba9876543210", Agent: "researcher", Model: "qwen3:8b",
		Title: "how do partial indexes work?", Created: tT0, Updated: tT0.Add(95 * time.Second),
		Usage: panther.Usage{InputTokens: 1400, OutputTokens: 96}, Steps: 3, StoppedBy: StoppedAnswer,
		Status: panther.SessionDone,
	}
	idx := panther.Citation{URL: "https://www.postgresql.org/docs/15/indexes-partial.html", Title: "11.8. Partial Indexes",
		Heading: "Partial Indexes", Anchor: "INDEXES-PARTIAL", FetchedAt: tT0.Add(-24 * time.Hour), ContentHash: "h1"}
	odd := panther.Citation{URL: "https://example.org/a (b)/c d.html", Title: "Odd [brackets]", FetchedAt: tT0}
	long := strings.Repeat("A partial index is built over a subset of a table's rows. ", 60)
	msgs := []panther.SessionMessage{
		{Seq: 1, Message: panther.Message{Role: panther.RoleUser, Content: "how do partial indexes work?\n\nShow an example."}, Created: tT0},
		{Seq: 2, Message: panther.Message{Role: panther.RoleAssistant, Content: "Let me search.", ToolCalls: []panther.ToolCall{
			{ID: "call_1", Name: "kb_search", Arguments: json.RawMessage(`{"query":"partial index","k":5}`)},
			{ID: "call_2", Name: "kb_read", Arguments: json.RawMessage(`{"url": "https://x`)},
		}}, Created: tT0.Add(time.Second), Duration: 1234 * time.Millisecond, Usage: panther.Usage{InputTokens: 400, OutputTokens: 30}},
		{Seq: 3, Message: panther.Message{Role: panther.RoleTool, ToolCallID: "call_1", Content: "[1] 11.8. Partial Indexes\n" + long},
			Duration: 35 * time.Millisecond, Citations: []panther.Citation{idx, odd}},
		{Seq: 4, Message: panther.Message{Role: panther.RoleTool, ToolCallID: "call_2", Content: "kb_read: arguments are not valid JSON", IsError: true},
			Duration: time.Millisecond},
		{Seq: 5, Message: panther.Message{Role: panther.RoleAssistant, ToolCalls: []panther.ToolCall{
			{ID: "call_3", Name: "kb_read", Arguments: json.RawMessage(`{"url":"https://www.postgresql.org/docs/15/indexes-partial.html#INDEXES-PARTIAL"}`)},
		}}, Duration: 800 * time.Millisecond, Usage: panther.Usage{InputTokens: 500, OutputTokens: 26}},
		{Seq: 6, Message: panther.Message{Role: panther.RoleTool, ToolCallID: "call_3", Content: "Example:\n```sql\nCREATE INDEX ON orders (id) WHERE billed IS NOT TRUE;\n```"},
			Citations: []panther.Citation{idx}},
		{Seq: 7, Message: panther.Message{Role: panther.RoleAssistant, Content: "A partial index covers only the rows that satisfy its `WHERE` clause [1].\n\nSources:\n[1] 11.8. Partial Indexes"},
			Duration: 2 * time.Second, Usage: panther.Usage{InputTokens: 500, OutputTokens: 40}},
	}
	return s, msgs
}

func TestTranscriptGolden(t *testing.T) {
	s, msgs := transcriptSession()
	var b bytes.Buffer
	if err := Transcript(&b, s, msgs); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	golden := filepath.Join("testdata", "transcript.golden.md")
	if *updateTranscript {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./agent -run TestTranscriptGolden -update-transcript)", err)
	}
	if got != string(want) {
		t.Errorf("transcript differs from %s (run with -update-transcript after checking the change):\n%s", golden, got)
	}

	// What the golden file must show, checked here so that a careless -update cannot bless its loss.
	for _, want := range []string{
		"# how do partial indexes work?",
		"sub-agent of `fedcba9876543210`",
		"- Agent: researcher", "- Model: qwen3:8b", "- Created: 2025-03-14 15:09:26 UTC",
		"- Status: done, stopped by answer", "- Steps: 3", "- Tokens: 1400 in, 96 out",
		"> how do partial indexes work?\n>\n> Show an example.",
		"**Tool call** `kb_search`", "\"query\": \"partial index\"", // arguments pretty-printed
		"_(arguments are not valid JSON)_",
		"**Failed**: `kb_read`",
		"[3505 characters in all; the session keeps the whole result]",
		"1. [11.8. Partial Indexes — Partial Indexes](<https://www.postgresql.org/docs/15/indexes-partial.html#INDEXES-PARTIAL>) — fetched 2025-03-13",
		"2. [Odd \\[brackets\\]](<https://example.org/a%20(b)/c%20d.html>)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("transcript lacks %q", want)
		}
	}
	if strings.Count(got, "<details>") != 2 || strings.Count(got, "</details>") != 2 {
		t.Errorf("want the two successful results folded, the failure not:\n%s", got)
	}
	if strings.Count(got, "\n3. ") != 0 {
		t.Errorf("a source cited by two results is listed twice")
	}
	if strings.Count(got, "A partial index is built") > 40 {
		t.Errorf("the long result is not cut")
	}
	// The result holding ``` sits in a longer fence, so it cannot close it.
	if !strings.Contains(got, "````text\nExample:\n```sql") {
		t.Errorf("a result with a code fence is not fenced safely")
	}
}

func TestTranscriptSparse(t *testing.T) {
	tests := []struct {
		name     string
		s        panther.Session
		msgs     []panther.SessionMessage
		want     []string
		dontWant []string
	}{
		{
			name: "no messages, no title",
			s:    panther.Session{ID: "abcd", Status: panther.SessionRunning},
			want: []string{"# Session abcd\n", "- Status: running\n", "_No messages._\n"},
			// Nothing to list, and no empty header lines for what is unknown.
			dontWant: []string{"## Sources", "- Agent:", "- Model:", "- Created:", "sub-agent"},
		},
		{
			name: "a result whose call is not in the session, and an empty prompt",
			s:    panther.Session{ID: "abcd", Status: panther.SessionFailed, Title: "multi\nline   title"},
			msgs: []panther.SessionMessage{
				{Message: panther.Message{Role: panther.RoleUser}},
				{Message: panther.Message{Role: panther.RoleTool, ToolCallID: "call_`x", Content: "orphan"}},
				{Message: panther.Message{Role: panther.RoleAssistant, ToolCalls: []panther.ToolCall{{ID: "c", Name: "kb_search"}}}},
			},
			want: []string{"# multi line title\n", "## You\n\n>\n", "Tool result (`call_'x`)", "```json\n{}\n```"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Transcript(&b, tt.s, tt.msgs); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("lacks %q:\n%s", w, b.String())
				}
			}
			for _, w := range tt.dontWant {
				if strings.Contains(b.String(), w) {
					t.Errorf("has %q:\n%s", w, b.String())
				}
			}
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestTranscriptWriteError(t *testing.T) {
	s, msgs := transcriptSession()
	err := Transcript(failingWriter{}, s, msgs)
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), s.ID) {
		t.Errorf("Transcript to a failing writer: %v, want the cause and the session", err)
	}
}
