package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"panther"
)

// The Messages API's JSON, as much of it as panther uses.

type antRequest struct {
	Model       string       `json:"model"`
	MaxTokens   int          `json:"max_tokens"`
	System      string       `json:"system,omitempty"`
	Messages    []antMessage `json:"messages"`
	Tools       []antTool    `json:"tools,omitempty"`
	Temperature *float64     `json:"temperature,omitempty"`
	Stream      bool         `json:"stream,omitempty"`
}

type antMessage struct {
	Role    string     `json:"role"`
	Content []antBlock `json:"content"`
}

// antBlock is any content block, in a request or a response; Type says which fields apply.
type antBlock struct {
	Type string `json:"type"`
	// text
	Text string `json:"text,omitempty"`
	// tool_use
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
	// tool_result
	ToolUseID string `json:"tool_use_id,omitempty"`
	Content   string `json:"content,omitempty"`
	IsError   bool   `json:"is_error,omitempty"`
}

type antTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type antUsage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

// input counts every token of the prompt, cached or not.
func (u antUsage) input() int {
	return u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
}

type antResponse struct {
	Type       string       `json:"type"`
	Role       string       `json:"role"`
	Content    []antBlock   `json:"content"`
	StopReason string       `json:"stop_reason"`
	Usage      antUsage     `json:"usage"`
	Error      *antAPIError `json:"error"`
}

// antAPIError is the API's {"type":"error","error":{"type","message"}}, in a body or a stream.
type antAPIError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

func (e *antAPIError) Error() string { return e.Type + ": " + e.Message }

// antBuildRequest maps a panther request onto the wire. Consecutive messages that land on the same
// role are merged, because the API insists that roles alternate, and tool results are user turns.
func antBuildRequest(req panther.ModelRequest, model string, defaultMax int, stream bool) (*antRequest, error) {
	out := &antRequest{
		Model:       model,
		MaxTokens:   req.MaxTokens,
		System:      req.System,
		Temperature: req.Temperature,
		Stream:      stream,
	}
	if out.MaxTokens <= 0 {
		out.MaxTokens = defaultMax
	}
	if len(req.Messages) == 0 {
		return nil, panther.Invalidf("the request has no messages")
	}
	for i, m := range req.Messages {
		var role string
		var blocks []antBlock
		switch m.Role {
		case panther.RoleUser:
			role = "user"
			// The API refuses empty text blocks.
			if strings.TrimSpace(m.Content) == "" {
				return nil, panther.Invalidf("message %d (user) is empty", i)
			}
			blocks = append(blocks, antBlock{Type: "text", Text: m.Content})
		case panther.RoleAssistant:
			role = "assistant"
			if strings.TrimSpace(m.Content) != "" {
				blocks = append(blocks, antBlock{Type: "text", Text: m.Content})
			}
			for j, tc := range m.ToolCalls {
				if tc.ID == "" || tc.Name == "" {
					return nil, panther.Invalidf("message %d (assistant): tool call %d has no id or name", i, j)
				}
				input, err := antToolInput(tc.Arguments)
				if err != nil {
					return nil, panther.Invalidf("message %d (assistant): tool call %d (%s): %v", i, j, tc.Name, err)
				}
				blocks = append(blocks, antBlock{Type: "tool_use", ID: tc.ID, Name: tc.Name, Input: input})
			}
			if len(blocks) == 0 {
				// A model may end a turn with nothing to say; the API refuses such a turn when it is
				// sent back, so it is dropped and the user turns around it merge.
				continue
			}
		case panther.RoleTool:
			role = "user"
			if m.ToolCallID == "" {
				return nil, panther.Invalidf("message %d (tool) names no tool call it answers", i)
			}
			blocks = append(blocks, antBlock{Type: "tool_result", ToolUseID: m.ToolCallID, Content: m.Content, IsError: m.IsError})
		default:
			return nil, panther.Invalidf("message %d has unknown role %q", i, m.Role)
		}
		if n := len(out.Messages); n > 0 && out.Messages[n-1].Role == role {
			out.Messages[n-1].Content = append(out.Messages[n-1].Content, blocks...)
			continue
		}
		out.Messages = append(out.Messages, antMessage{Role: role, Content: blocks})
	}
	if len(out.Messages) == 0 {
		return nil, panther.Invalidf("the request has no message with content")
	}
	for i, t := range req.Tools {
		if t.Name == "" {
			return nil, panther.Invalidf("tool %d has no name", i)
		}
		schema := t.Parameters
		if len(bytes.TrimSpace(schema)) == 0 || string(bytes.TrimSpace(schema)) == "null" {
			// The API requires a schema; a tool without parameters takes an empty object.
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		} else if !antIsObject(schema) {
			return nil, panther.Invalidf("tool %s: parameters are not a JSON object", t.Name)
		}
		out.Tools = append(out.Tools, antTool{Name: t.Name, Description: t.Description, InputSchema: schema})
	}
	return out, nil
}

// antToolInput checks a tool call's arguments: the API wants a JSON object, and absent arguments
// are the empty one.
func antToolInput(args json.RawMessage) (json.RawMessage, error) {
	t := bytes.TrimSpace(args)
	if len(t) == 0 || string(t) == "null" {
		return json.RawMessage("{}"), nil
	}
	if !antIsObject(t) {
		return nil, errors.New("arguments are not a JSON object")
	}
	return t, nil
}

// antIsObject says whether b is valid JSON whose value is an object.
func antIsObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

// antArguments returns a tool input the model produced, compacted, or, when it is not a JSON
// object, {} and the text as it came, so that the agent can tell the model what was wrong.
func antArguments(raw []byte) (args json.RawMessage, malformed string) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return json.RawMessage("{}"), ""
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, t); err != nil || t[0] != '{' {
		return json.RawMessage("{}"), malformedText(t)
	}
	return buf.Bytes(), ""
}

// antStopReason maps the API's stop_reason. A turn with tool calls is reported as wanting them run
// even when a compatible server says end_turn or nothing, since the calls are there to be answered.
func antStopReason(s string, hasTools bool) panther.StopReason {
	switch s {
	case "tool_use":
		return panther.StopToolCalls
	case "end_turn", "stop_sequence", "":
		if hasTools {
			return panther.StopToolCalls
		}
		return panther.StopEnd
	case "max_tokens", "model_context_window_exceeded":
		return panther.StopMaxTokens
	default: // refusal, pause_turn, whatever comes next
		return panther.StopOther
	}
}

// antDecodeResponse decodes a non-streamed answer.
func antDecodeResponse(data []byte) (panther.ModelResponse, error) {
	var r antResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return panther.ModelResponse{}, fmt.Errorf("undecodable response: %v", err)
	}
	if r.Type == "error" || r.Error != nil {
		if r.Error == nil {
			r.Error = &antAPIError{Type: "error"}
		}
		return panther.ModelResponse{}, r.Error
	}
	if r.Type != "" && r.Type != "message" {
		return panther.ModelResponse{}, fmt.Errorf("response of type %q, not a message", r.Type)
	}
	msg := panther.Message{Role: panther.RoleAssistant}
	var text strings.Builder
	for _, b := range r.Content {
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
		case "tool_use":
			if b.ID == "" || b.Name == "" {
				return panther.ModelResponse{}, errors.New("tool_use block without id or name")
			}
			args, malformed := antArguments(b.Input)
			msg.ToolCalls = append(msg.ToolCalls, panther.ToolCall{ID: b.ID, Name: b.Name, Arguments: args, Malformed: malformed})
		}
		// Thinking and server-tool blocks have no place in panther's conversation types.
	}
	msg.Content = text.String()
	return panther.ModelResponse{
		Message:    msg,
		StopReason: antStopReason(r.StopReason, len(msg.ToolCalls) > 0),
		Usage:      panther.Usage{InputTokens: r.Usage.input(), OutputTokens: r.Usage.OutputTokens},
	}, nil
}

// antErrorMessage digs the error type and message out of a failed response: Anthropic's
// {"type":"error","error":{"type","message"}}, the OpenAI-like shapes some proxies use, or text.
func antErrorMessage(body []byte) (typ, msg string) {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Type    string          `json:"type"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", string(body)
	}
	if len(v.Error) > 0 && v.Error[0] == '{' {
		var inner antAPIError
		if json.Unmarshal(v.Error, &inner) == nil {
			return inner.Type, inner.Message
		}
	}
	var s string
	if len(v.Error) > 0 && json.Unmarshal(v.Error, &s) == nil {
		return "", s
	}
	if v.Message != "" {
		return v.Type, v.Message
	}
	return "", string(body)
}

// antTooLongRE matches how the API says a prompt exceeds the context: "prompt is too long: 208154
// tokens > 200000 maximum", "input length and `max_tokens` exceed context limit: ...". It stays
// narrow so that an unrelated 400 is reported as what it is.
var antTooLongRE = regexp.MustCompile("(?i)prompt is too long|exceeds? (the )?context|context (limit|length|window)|maximum context|too many (input )?tokens")

func antIsTooLong(status int, msg string) bool {
	switch status {
	case 413:
		return true
	case 400, 422:
		return antTooLongRE.MatchString(msg)
	}
	return false
}
