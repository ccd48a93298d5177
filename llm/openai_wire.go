package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"panther"
	"panther/internal/httpx"
)

// The JSON of POST /chat/completions, as much of it as panther uses.

type oaiRequest struct {
	Model         string            `json:"model"`
	Messages      []oaiMessage      `json:"messages"`
	Tools         []oaiTool         `json:"tools,omitempty"`
	Temperature   *float64          `json:"temperature,omitempty"`
	MaxTokens     int               `json:"max_tokens"`
	Stream        bool              `json:"stream"`
	StreamOptions *oaiStreamOptions `json:"stream_options,omitempty"`
}

type oaiStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type oaiMessage struct {
	Role string `json:"role"`
	// Content is a pointer so that an assistant turn made only of tool calls sends null, which
	// every server accepts, where some chat templates render "" as an empty reply.
	Content    *string       `json:"content"`
	ToolCalls  []oaiToolCall `json:"tool_calls,omitempty"`
	ToolCallID string        `json:"tool_call_id,omitempty"`
}

type oaiToolCall struct {
	ID       string      `json:"id"`
	Type     string      `json:"type"`
	Function oaiFunction `json:"function"`
}

type oaiFunction struct {
	Name string `json:"name"`
	// Arguments is a JSON document inside a JSON string, as the wire format has it.
	Arguments string `json:"arguments"`
}

type oaiTool struct {
	Type     string      `json:"type"`
	Function oaiToolSpec `json:"function"`
}

type oaiToolSpec struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters"`
}

// oaiToolErrorPrefix marks a failed tool run in the content of its tool message: the wire format
// has no is_error field, and the model should not take an error text for the tool's answer.
const oaiToolErrorPrefix = "[tool error] "

// encodeRequest renders req for the wire. Problems in the conversation are ErrInvalid and name the
// message, since the server's own 400 would say less.
func (c *OpenAI) encodeRequest(model string, req panther.ModelRequest, stream bool) ([]byte, error) {
	out := oaiRequest{
		Model:       model,
		Messages:    make([]oaiMessage, 0, len(req.Messages)+1),
		Temperature: req.Temperature,
		MaxTokens:   req.MaxTokens,
		Stream:      stream,
	}
	if out.MaxTokens <= 0 {
		out.MaxTokens = c.maxTokens
	}
	if stream {
		out.StreamOptions = &oaiStreamOptions{IncludeUsage: true}
	}
	if req.System != "" {
		out.Messages = append(out.Messages, oaiMessage{Role: "system", Content: oaiStr(req.System)})
	}
	for i, m := range req.Messages {
		switch m.Role {
		case panther.RoleUser:
			out.Messages = append(out.Messages, oaiMessage{Role: "user", Content: oaiStr(m.Content)})
		case panther.RoleAssistant:
			om := oaiMessage{Role: "assistant"}
			if m.Content != "" || len(m.ToolCalls) == 0 {
				om.Content = oaiStr(m.Content)
			}
			for j, tc := range m.ToolCalls {
				if tc.Name == "" {
					return nil, panther.Invalidf("message %d: tool call %d has no name", i, j)
				}
				args := bytes.TrimSpace(tc.Arguments)
				if len(args) == 0 {
					args = []byte("{}")
				} else if !json.Valid(args) {
					return nil, panther.Invalidf("message %d: arguments of tool call %q are not valid JSON", i, tc.Name)
				}
				om.ToolCalls = append(om.ToolCalls, oaiToolCall{ID: tc.ID, Type: "function", Function: oaiFunction{Name: tc.Name, Arguments: string(args)}})
			}
			out.Messages = append(out.Messages, om)
		case panther.RoleTool:
			if m.ToolCallID == "" {
				return nil, panther.Invalidf("message %d: a tool result must name the call it answers (ToolCallID)", i)
			}
			content := m.Content
			if m.IsError {
				content = oaiToolErrorPrefix + content
			}
			out.Messages = append(out.Messages, oaiMessage{Role: "tool", Content: oaiStr(content), ToolCallID: m.ToolCallID})
		default:
			return nil, panther.Invalidf("message %d: unknown role %q", i, m.Role)
		}
	}
	for i, t := range req.Tools {
		if t.Name == "" {
			return nil, panther.Invalidf("tool %d has no name", i)
		}
		params := bytes.TrimSpace(t.Parameters)
		if len(params) == 0 || string(params) == "null" {
			// Several servers reject a function without a parameters object.
			params = []byte(`{"type":"object","properties":{}}`)
		} else if !json.Valid(params) {
			return nil, panther.Invalidf("tool %q: parameters are not valid JSON", t.Name)
		}
		out.Tools = append(out.Tools, oaiTool{Type: "function", Function: oaiToolSpec{Name: t.Name, Description: t.Description, Parameters: params}})
	}
	return json.Marshal(out)
}

func oaiStr(s string) *string { return &s }

type oaiUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

// oaiResponse is a non-streamed answer.
type oaiResponse struct {
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Content   *string `json:"content"`
			ToolCalls []struct {
				ID       string `json:"id"`
				Function struct {
					Name      string          `json:"name"`
					Arguments json.RawMessage `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage *oaiUsage       `json:"usage"`
	Error json.RawMessage `json:"error"`
}

// oaiAnswerError is a 2xx answer that cannot be used. kind is the panther error kind, nil meaning
// ErrUnavailable.
type oaiAnswerError struct {
	msg  string
	kind error
}

func (e *oaiAnswerError) Error() string { return e.msg }

// oaiStreamError is an error the server reported with a 2xx status: an error object inside a
// stream, or instead of an answer.
type oaiStreamError struct {
	status         int
	msg, code, typ string
}

func (e *oaiStreamError) Error() string { return "server reported an error: " + e.msg }

// oaiDecodeResponse turns a non-streamed answer into a ModelResponse.
func oaiDecodeResponse(data []byte) (panther.ModelResponse, error) {
	var r oaiResponse
	if err := json.Unmarshal(data, &r); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return panther.ModelResponse{}, &oaiAnswerError{msg: fmt.Sprintf("response is not JSON (it begins %q)", httpx.CleanText(string(data[:min(len(data), 60)])))}
		}
		return panther.ModelResponse{}, &oaiAnswerError{msg: "malformed response: " + err.Error()}
	}
	if len(r.Error) > 0 && string(r.Error) != "null" {
		msg, code, typ := oaiErrorMessage(data)
		return panther.ModelResponse{}, &oaiStreamError{msg: msg, code: code, typ: typ}
	}
	st := newOAIStream(nil)
	found := false
	for _, ch := range r.Choices {
		if ch.Index != 0 {
			continue
		}
		found = true
		if ch.Message.Content != nil {
			st.text.WriteString(*ch.Message.Content)
		}
		for _, tc := range ch.Message.ToolCalls {
			acc := st.newCall()
			acc.id = tc.ID
			acc.name = tc.Function.Name
			acc.addArgs(tc.Function.Arguments)
		}
		st.finish = ch.FinishReason
		st.sawFinish = true
	}
	if !found {
		return panther.ModelResponse{}, &oaiAnswerError{msg: "response has no choices"}
	}
	if r.Usage != nil {
		st.usage = *r.Usage
	}
	return st.result()
}

// oaiErrorMessage digs the message, code and type out of an error body in whichever shape the server
// uses: OpenAI's {"error":{"message","type","code"}}, {"error":"..."}, vLLM's top-level
// {"message","code"}, FastAPI's {"detail":...}; anything else is returned as text.
func oaiErrorMessage(body []byte) (msg, code, typ string) {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Code    json.RawMessage `json:"code"`
		Type    string          `json:"type"`
		Detail  json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return string(body), "", ""
	}
	if len(v.Error) > 0 && v.Error[0] == '{' {
		var inner struct {
			Message string          `json:"message"`
			Type    string          `json:"type"`
			Code    json.RawMessage `json:"code"`
		}
		if json.Unmarshal(v.Error, &inner) == nil {
			msg = inner.Message
			if msg == "" {
				msg = inner.Type
			}
			return msg, oaiCode(inner.Code), inner.Type
		}
	}
	var s string
	if len(v.Error) > 0 && json.Unmarshal(v.Error, &s) == nil && s != "" {
		return s, oaiCode(v.Code), v.Type
	}
	if v.Message != "" {
		return v.Message, oaiCode(v.Code), v.Type
	}
	if len(v.Detail) > 0 {
		if json.Unmarshal(v.Detail, &s) == nil {
			return s, "", ""
		}
		return string(v.Detail), "", ""
	}
	return string(body), "", ""
}

// oaiCode renders a code that servers send as a string, a number or null.
func oaiCode(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// oaiStopReason maps a finish_reason. Tool calls win over what the server says, since Ollama and
// some vLLM versions finish a tool-calling turn with "stop".
func oaiStopReason(finish string, calls int) panther.StopReason {
	switch {
	case finish == "length":
		return panther.StopMaxTokens
	case calls > 0 || finish == "tool_calls" || finish == "function_call":
		return panther.StopToolCalls
	case finish == "stop" || finish == "eos" || finish == "end_turn":
		return panther.StopEnd
	default:
		return panther.StopOther
	}
}
