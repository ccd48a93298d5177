package panther

import (
	"context"
	"encoding/json"
)

// The conversation types every model client speaks, whatever its wire format (OpenAI-compatible
// chat completions, Anthropic messages). The agent runtime builds requests from these and never sees
// a provider's JSON.

// Role says who speaks a message.
type Role string

const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	// RoleTool messages carry a tool's result back to the model, answering one ToolCall.
	RoleTool Role = "tool"
)

// Message is one turn of a conversation. The system prompt is not a message: see ModelRequest.
type Message struct {
	Role    Role   `json:"role"`
	Content string `json:"content,omitempty"`
	// ToolCalls are the tools an assistant message asks to run, possibly several in one turn.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolCallID names the call a tool message answers; IsError marks a failed tool run.
	ToolCallID string `json:"tool_call_id,omitempty"`
	IsError    bool   `json:"is_error,omitempty"`
}

// ToolCall is a model's request to run a tool.
type ToolCall struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
	// Malformed holds what the model sent as arguments when it was not a JSON object (Arguments is
	// then {}): the call is answered with an error the model can correct, not run.
	Malformed string `json:"malformed,omitempty"`
}

// ToolSpec describes a tool the model may call; Parameters is a JSON Schema object.
type ToolSpec struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
}

// ModelRequest is one call to a model.
type ModelRequest struct {
	Model    string     `json:"model"`
	System   string     `json:"system,omitempty"`
	Messages []Message  `json:"messages"`
	Tools    []ToolSpec `json:"tools,omitempty"`
	// Temperature is nil for the provider's default.
	Temperature *float64 `json:"temperature,omitempty"`
	// MaxTokens bounds the answer; 0 means the client's default.
	MaxTokens int `json:"max_tokens,omitempty"`
}

// Usage counts tokens, as the provider reports them.
type Usage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
}

// StopReason says why a model stopped.
type StopReason string

const (
	StopEnd       StopReason = "end"        // a final answer
	StopToolCalls StopReason = "tool_calls" // it wants tools run
	StopMaxTokens StopReason = "max_tokens" // cut by MaxTokens
	StopOther     StopReason = "other"      // content filter, provider-specific
)

// ModelResponse is the assistant's whole turn.
type ModelResponse struct {
	Message    Message    `json:"message"`
	StopReason StopReason `json:"stop_reason"`
	Usage      Usage      `json:"usage"`
}

// StreamEvent is a piece of a response as it arrives: text, or a tool call once its arguments are
// complete.
type StreamEvent struct {
	Text     string    `json:"text,omitempty"`
	ToolCall *ToolCall `json:"tool_call,omitempty"`
}

// Model is a language model behind some wire format.
type Model interface {
	// Complete runs one turn. When onEvent is not nil the response is streamed and onEvent is called
	// for each piece, in order, before Complete returns the whole turn.
	Complete(ctx context.Context, req ModelRequest, onEvent func(StreamEvent)) (ModelResponse, error)
}
