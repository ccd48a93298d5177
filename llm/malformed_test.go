package llm

import (
	"context"
	"strings"
	"testing"

	"panther"
)

// Arguments that are not a JSON object reach the agent as a malformed call (with {} as its
// arguments), not as a failed turn, so that the model can be told and correct itself.
func TestMalformedToolArguments(t *testing.T) {
	tests := []struct {
		name     string
		complete func(t *testing.T) (panther.ModelResponse, error)
	}{
		{"openai stream", func(t *testing.T) (panther.ModelResponse, error) {
			srv := newOAIServer(t, oaiReply{fixture: "invalid_tool_stream.sse"})
			c, _ := newOAITestClient(t, srv.URL, OpenAIOptions{Retries: 2})
			return c.Complete(context.Background(), oaiHello, func(panther.StreamEvent) {})
		}},
		{"anthropic stream", func(t *testing.T) (panther.ModelResponse, error) {
			s := newAntServer(t, antReply{file: "invalid_tool_json_stream.sse"})
			c, _ := s.client(AnthropicOptions{})
			on, _ := antCollect()
			return c.Complete(context.Background(), antHello(), on)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.complete(t)
			if err != nil {
				t.Fatalf("a malformed tool call failed the turn: %v", err)
			}
			if len(resp.Message.ToolCalls) != 1 {
				t.Fatalf("tool calls %+v, want the one malformed call", resp.Message.ToolCalls)
			}
			tc := resp.Message.ToolCalls[0]
			if tc.Name != "kb_search" || string(tc.Arguments) != "{}" || tc.Malformed == "" || !strings.Contains(tc.Malformed, "{") {
				t.Errorf("call %+v: want kb_search with {} and the text it sent in Malformed", tc)
			}
		})
	}
}

func TestMalformedTextIsBounded(t *testing.T) {
	long := strings.Repeat("é", maxMalformedChars)
	got := malformedText([]byte(long))
	if len(got) > maxMalformedChars+len("…") || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "é") {
		t.Errorf("malformedText kept %d bytes", len(got))
	}
}
