package llm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"

	"panther"
	"panther/internal/httpx"
)

// oaiStream assembles one streamed turn from its chunks, and is also the accumulator the
// non-streamed answer is decoded into, so that both paths validate tool calls alike.
type oaiStream struct {
	emit  func(panther.StreamEvent)
	text  strings.Builder
	calls []*oaiCallAcc
	// byIndex maps a tool call's wire index to the call being assembled under it.
	byIndex map[int]*oaiCallAcc
	last    *oaiCallAcc

	finish    string
	sawFinish bool
	finalized bool
	done      bool // [DONE] seen
	usage     oaiUsage
	// delivered is set once onEvent has been given anything; from then on the request is never
	// repeated.
	delivered bool
	final     []panther.ToolCall
}

type oaiCallAcc struct {
	id, name string
	args     bytes.Buffer
}

// addArgs appends a piece of the arguments: a JSON string as the wire format says, or a whole JSON
// object as some servers send it.
func (a *oaiCallAcc) addArgs(raw json.RawMessage) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			a.args.WriteString(s)
		}
		return
	}
	a.args.Write(raw)
}

func newOAIStream(emit func(panther.StreamEvent)) *oaiStream {
	return &oaiStream{emit: emit, byIndex: map[int]*oaiCallAcc{}}
}

func (s *oaiStream) newCall() *oaiCallAcc {
	a := &oaiCallAcc{}
	s.calls = append(s.calls, a)
	s.last = a
	return a
}

// oaiChunk is one `data:` event of a stream.
type oaiChunk struct {
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Content   *string            `json:"content"`
			ToolCalls []oaiToolCallDelta `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *oaiUsage       `json:"usage"`
	Error json.RawMessage `json:"error"`
}

type oaiToolCallDelta struct {
	Index    *int   `json:"index"`
	ID       string `json:"id"`
	Function struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

// read consumes an SSE body up to [DONE] (or the end of the body after a finish_reason) and returns
// the turn. At most limit bytes are read.
func (s *oaiStream) read(r io.Reader, limit int64) (panther.ModelResponse, error) {
	lr := &io.LimitedReader{R: r, N: limit + 1}
	br := bufio.NewReaderSize(lr, 32<<10)
	var (
		event string
		data  bytes.Buffer
		has   bool // a data field was seen since the last dispatch
	)
	dispatch := func() error {
		if !has {
			event = ""
			return nil
		}
		err := s.event(event, data.Bytes())
		event, has = "", false
		data.Reset()
		return err
	}
	for {
		line, err := br.ReadBytes('\n')
		if lr.N <= 0 {
			return panther.ModelResponse{}, errOAITooLarge
		}
		if len(line) > 0 {
			line = bytes.TrimSuffix(line, []byte("\n"))
			line = bytes.TrimSuffix(line, []byte("\r"))
			var field, value []byte
			switch {
			case len(line) == 0:
				if derr := dispatch(); derr != nil {
					return panther.ModelResponse{}, derr
				}
			case line[0] == ':': // comment, a keep-alive
			case line[0] == '{':
				// A bare JSON line: some proxies write an error object without the "data:" field.
				field, value = []byte("data"), line
			default:
				field, value, _ = bytes.Cut(line, []byte(":"))
				value = bytes.TrimPrefix(value, []byte(" "))
			}
			switch string(field) {
			case "data":
				if has {
					data.WriteByte('\n')
				}
				data.Write(value)
				has = true
			case "event":
				event = string(value)
			}
			if s.done {
				return s.result()
			}
		}
		if err == io.EOF {
			// A last event without its blank line is dispatched rather than dropped, since a
			// final "data: [DONE]" often ends that way.
			if derr := dispatch(); derr != nil {
				return panther.ModelResponse{}, derr
			}
			if s.done || s.sawFinish {
				return s.result()
			}
			return panther.ModelResponse{}, fmt.Errorf("stream ended before the answer was complete: %w", io.ErrUnexpectedEOF)
		}
		if err != nil {
			return panther.ModelResponse{}, err
		}
		if s.done {
			return s.result()
		}
	}
}

// event handles one SSE event.
func (s *oaiStream) event(name string, data []byte) error {
	data = bytes.TrimSpace(data)
	if string(data) == "[DONE]" {
		s.done = true
		return nil
	}
	if name == "error" {
		msg, code, typ := oaiErrorMessage(data)
		return &oaiStreamError{msg: msg, code: code, typ: typ}
	}
	if len(data) == 0 {
		return nil
	}
	var ch oaiChunk
	if err := json.Unmarshal(data, &ch); err != nil {
		return &oaiAnswerError{msg: fmt.Sprintf("malformed stream chunk (it begins %q): %v", httpx.CleanText(string(data[:min(len(data), 60)])), err)}
	}
	if len(ch.Error) > 0 && string(ch.Error) != "null" {
		msg, code, typ := oaiErrorMessage(data)
		return &oaiStreamError{msg: msg, code: code, typ: typ}
	}
	if ch.Usage != nil {
		// Servers that report usage in every chunk send running totals, so the last one wins.
		s.usage = *ch.Usage
	}
	for _, c := range ch.Choices {
		if c.Index != 0 || s.finalized {
			continue
		}
		if c.Delta.Content != nil && *c.Delta.Content != "" {
			s.text.WriteString(*c.Delta.Content)
			if s.emit != nil {
				s.delivered = true
				s.emit(panther.StreamEvent{Text: *c.Delta.Content})
			}
		}
		for i := range c.Delta.ToolCalls {
			s.addToolDelta(&c.Delta.ToolCalls[i])
		}
		if c.FinishReason != nil && *c.FinishReason != "" {
			s.finish = *c.FinishReason
			s.sawFinish = true
			if err := s.finalize(); err != nil {
				return err
			}
		}
	}
	return nil
}

// addToolDelta files a fragment under its call. Ollama sends parallel calls all at index 0, told
// apart only by their ids, while other servers repeat or vary the id on every fragment of one call;
// so a new id at a known index starts a new call only when the arguments gathered so far are
// already a whole JSON value.
func (s *oaiStream) addToolDelta(d *oaiToolCallDelta) {
	var acc *oaiCallAcc
	if d.Index != nil {
		idx := *d.Index
		prev, ok := s.byIndex[idx]
		switch {
		case !ok:
			acc = s.newCall()
		case d.ID != "" && prev.id != "" && d.ID != prev.id && prev.args.Len() > 0 && json.Valid(prev.args.Bytes()):
			acc = s.newCall()
		default:
			acc = prev
		}
		s.byIndex[idx] = acc
	} else {
		// Without an index (Gemini's compatibility layer), an id names a new call and its absence
		// continues the last one.
		if s.last == nil || (d.ID != "" && s.last.id != "" && d.ID != s.last.id) {
			acc = s.newCall()
		} else {
			acc = s.last
		}
	}
	s.last = acc
	if acc.id == "" {
		acc.id = d.ID
	}
	if n := d.Function.Name; n != "" && n != acc.name {
		// Names normally arrive whole, once; a server that splits them gets them joined.
		acc.name += n
	}
	acc.addArgs(d.Function.Arguments)
}

// finalize checks the assembled tool calls and, when streaming, delivers them.
func (s *oaiStream) finalize() error {
	if s.finalized {
		return nil
	}
	s.finalized = true
	calls := make([]panther.ToolCall, 0, len(s.calls))
	for i, a := range s.calls {
		if a.name == "" {
			return &oaiAnswerError{msg: fmt.Sprintf("tool call %d has no function name", i)}
		}
		args := bytes.TrimSpace(a.args.Bytes())
		if len(args) == 0 {
			args = []byte("{}") // a tool without parameters, as some models call it
		}
		// Arguments that are not a JSON object (cut off by max_tokens, or simply wrong) go to the agent
		// as a malformed call, which it answers with an error the model can correct.
		malformed := ""
		var obj map[string]json.RawMessage
		if json.Unmarshal(args, &obj) != nil {
			malformed = malformedText(args)
			if s.finish == "length" {
				malformed += " (the answer was cut off by max_tokens)"
			}
			args = []byte("{}")
		}
		id := a.id
		if id == "" {
			id = "call_" + strconv.Itoa(i) + "_" + strconv.FormatUint(rand.Uint64(), 36)
		}
		calls = append(calls, panther.ToolCall{ID: id, Name: a.name, Arguments: json.RawMessage(bytes.Clone(args)), Malformed: malformed})
	}
	s.final = calls
	if s.emit != nil {
		for i := range s.final {
			s.delivered = true
			tc := s.final[i]
			s.emit(panther.StreamEvent{ToolCall: &tc})
		}
	}
	return nil
}

// result is the whole turn, once the stream is over.
func (s *oaiStream) result() (panther.ModelResponse, error) {
	if !s.sawFinish {
		s.finish = "stop" // [DONE] without a finish_reason: some servers omit it on a plain answer
	}
	if err := s.finalize(); err != nil {
		return panther.ModelResponse{}, err
	}
	msg := panther.Message{Role: panther.RoleAssistant, Content: s.text.String()}
	if len(s.final) > 0 {
		msg.ToolCalls = s.final
	}
	return panther.ModelResponse{
		Message:    msg,
		StopReason: oaiStopReason(s.finish, len(s.final)),
		Usage:      panther.Usage{InputTokens: s.usage.PromptTokens, OutputTokens: s.usage.CompletionTokens},
	}, nil
}

var errOAITooLarge = errors.New("body too large")

// oaiReadLimited reads r to the end, or fails with errOAITooLarge past limit bytes.
func oaiReadLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return data, err
	}
	if int64(len(data)) > limit {
		return data[:limit], errOAITooLarge
	}
	return data, nil
}
