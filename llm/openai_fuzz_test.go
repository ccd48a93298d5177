package llm

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"panther"
)

// FuzzOpenAIStream feeds arbitrary bytes to the stream parser: it must not panic, must respect the
// size limit, and whatever it returns must be self-consistent.
func FuzzOpenAIStream(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "openai", "*.sse"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("data: [DONE]"))
	f.Add([]byte("event: error\ndata: {\"message\":\"x\"}\n\n"))
	f.Add([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"function\":{\"name\":\"a\",\"arguments\":{\"x\":1}}}]},\"finish_reason\":\"stop\"}]}\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var text strings.Builder
		var calls int
		st := newOAIStream(func(e panther.StreamEvent) {
			text.WriteString(e.Text)
			if e.ToolCall != nil {
				calls++
				if !json.Valid(e.ToolCall.Arguments) || e.ToolCall.Name == "" || e.ToolCall.ID == "" {
					t.Fatalf("bad tool call delivered: %+v", e.ToolCall)
				}
			}
		})
		resp, err := st.read(bytes.NewReader(data), 1<<16)
		if err != nil {
			return
		}
		if resp.Message.Content != text.String() {
			t.Fatalf("content %q, events %q", resp.Message.Content, text.String())
		}
		if len(resp.Message.ToolCalls) != calls {
			t.Fatalf("%d tool calls returned, %d delivered", len(resp.Message.ToolCalls), calls)
		}
		if calls > 0 && resp.StopReason != panther.StopToolCalls && resp.StopReason != panther.StopMaxTokens {
			t.Fatalf("tool calls with stop reason %q", resp.StopReason)
		}
	})
}
