package llm

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"panther"
)

// FuzzAnthropicStream feeds arbitrary bytes to the stream parser: it must never panic, and whatever
// it accepts must be a coherent turn, since the agent acts on tool calls without checking them again.
func FuzzAnthropicStream(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "anthropic", "*.sse"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var text int
		var calls []panther.ToolCall
		resp, err := antParseStream(bytes.NewReader(data), 1<<20, func(ev panther.StreamEvent) {
			text += len(ev.Text)
			if ev.ToolCall != nil {
				calls = append(calls, *ev.ToolCall)
			}
		})
		if err != nil {
			return
		}
		if text != len(resp.Message.Content) {
			t.Errorf("events carried %d bytes of text, the turn %d", text, len(resp.Message.Content))
		}
		if len(calls) != len(resp.Message.ToolCalls) {
			t.Errorf("%d tool calls delivered, %d in the turn", len(calls), len(resp.Message.ToolCalls))
		}
		for _, c := range resp.Message.ToolCalls {
			var v map[string]any
			if c.ID == "" || c.Name == "" || json.Unmarshal(c.Arguments, &v) != nil || v == nil {
				t.Errorf("incoherent tool call %+v", c)
			}
		}
		if len(resp.Message.ToolCalls) > 0 && resp.StopReason != panther.StopToolCalls &&
			resp.StopReason != panther.StopMaxTokens && resp.StopReason != panther.StopOther {
			t.Errorf("stop reason %q for a turn with tool calls", resp.StopReason)
		}
	})
}
