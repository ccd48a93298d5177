package llm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"panther"
	"panther/internal/httpx"
)

var (
	// errAntTruncated is a stream that ended before message_stop: worth another try if nothing of it
	// was delivered yet.
	errAntTruncated = errors.New("the stream ended before message_stop")
	errAntTooLarge  = errors.New("body too large")
)

// antReadError is a failure of the connection under a stream, as opposed to a malformed stream, so
// that the caller can tell a time-out or reset from a server bug.
type antReadError struct{ err error }

func (e *antReadError) Error() string { return e.err.Error() }
func (e *antReadError) Unwrap() error { return e.err }

// antReader reads a response body with the idle watchdog armed only during each Read.
type antReader struct {
	r     io.Reader
	watch *antWatchdog
}

func (r *antReader) Read(p []byte) (int, error) {
	if r.watch != nil {
		r.watch.arm()
	}
	n, err := r.r.Read(p)
	if r.watch != nil {
		r.watch.disarm()
	}
	if err != nil && err != io.EOF {
		err = &antReadError{err: err}
	}
	return n, err
}

// antLimitReader fails with errAntTooLarge once more than n bytes were asked for, rather than
// reporting a silent EOF that would look like a truncated stream.
type antLimitReader struct {
	r io.Reader
	n int64
}

func (l *antLimitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		var one [1]byte
		if k, err := l.r.Read(one[:]); k > 0 {
			return 0, errAntTooLarge
		} else if err != nil {
			return 0, err
		}
		return 0, nil
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// antSSE splits a server-sent event stream into events (the event field and the joined data lines).
type antSSE struct {
	r    *bufio.Reader
	line []byte
}

// next returns the next event, or io.EOF at a clean end. An event cut off by the end of the stream
// is dropped, as the SSE specification says, so that half a JSON object is never parsed.
func (s *antSSE) next() (event string, data []byte, err error) {
	var (
		dataBuf bytes.Buffer
		hasData bool
	)
	for {
		line, err := s.readLine()
		if err != nil {
			return "", nil, err
		}
		if len(line) == 0 {
			if hasData || event != "" {
				return event, dataBuf.Bytes(), nil
			}
			continue
		}
		if line[0] == ':' {
			continue // a comment, which servers send to keep a connection alive
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			event = string(value)
		case "data":
			if hasData {
				dataBuf.WriteByte('\n')
			}
			dataBuf.Write(value)
			hasData = true
		}
	}
}

// readLine returns one line without its terminator (\n or \r\n). A last line without a terminator
// is incomplete and reported as io.EOF.
func (s *antSSE) readLine() ([]byte, error) {
	s.line = s.line[:0]
	for {
		chunk, err := s.r.ReadSlice('\n')
		s.line = append(s.line, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return nil, err
		}
		line := s.line[:len(s.line)-1]
		return bytes.TrimSuffix(line, []byte("\r")), nil
	}
}

// antStreamEvent is any event of the Messages stream; Type says which fields apply.
type antStreamEvent struct {
	Type         string       `json:"type"`
	Index        *int         `json:"index"`
	Message      *antResponse `json:"message"`
	ContentBlock *antBlock    `json:"content_block"`
	Delta        *struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		PartialJSON string `json:"partial_json"`
		StopReason  string `json:"stop_reason"`
	} `json:"delta"`
	Usage *antUsage    `json:"usage"`
	Error *antAPIError `json:"error"`
}

type antStreamBlock struct {
	index   int
	kind    string // text, tool_use, or another kind that panther ignores
	text    strings.Builder
	id      string
	name    string
	input   bytes.Buffer    // the concatenated partial_json
	initial json.RawMessage // the input of content_block_start, used when no delta came
	done    bool
	call    *panther.ToolCall
}

// antParseStream reads a Messages stream to message_stop, calling emit for each text delta and for
// each tool call when its block stops, and returns the assembled turn.
func antParseStream(r io.Reader, maxBytes int64, emit func(panther.StreamEvent)) (panther.ModelResponse, error) {
	sse := &antSSE{r: bufio.NewReaderSize(&antLimitReader{r: r, n: maxBytes}, 64<<10)}
	blocks := map[int]*antStreamBlock{}
	var (
		usage      panther.Usage
		stopReason string
		started    bool
	)
	for {
		name, data, err := sse.next()
		if err == io.EOF {
			return panther.ModelResponse{}, errAntTruncated
		}
		if err != nil {
			return panther.ModelResponse{}, err
		}
		if len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		var ev antStreamEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			return panther.ModelResponse{}, fmt.Errorf("undecodable %s event: %v", httpx.CleanText(name), err)
		}
		typ := ev.Type
		if typ == "" {
			typ = name
		}
		block := func() (*antStreamBlock, error) {
			if ev.Index == nil {
				return nil, fmt.Errorf("%s event without an index", typ)
			}
			b := blocks[*ev.Index]
			if b == nil {
				return nil, fmt.Errorf("%s event for content block %d, which never started", typ, *ev.Index)
			}
			if b.done {
				return nil, fmt.Errorf("%s event for content block %d, which already stopped", typ, *ev.Index)
			}
			return b, nil
		}

		switch typ {
		case "message_start":
			started = true
			if ev.Message != nil {
				usage.InputTokens = ev.Message.Usage.input()
				usage.OutputTokens = ev.Message.Usage.OutputTokens
			}
		case "content_block_start":
			if ev.Index == nil || ev.ContentBlock == nil {
				return panther.ModelResponse{}, errors.New("content_block_start event without an index or a block")
			}
			if blocks[*ev.Index] != nil {
				return panther.ModelResponse{}, fmt.Errorf("content block %d started twice", *ev.Index)
			}
			b := &antStreamBlock{index: *ev.Index, kind: ev.ContentBlock.Type, id: ev.ContentBlock.ID, name: ev.ContentBlock.Name, initial: ev.ContentBlock.Input}
			blocks[b.index] = b
			if b.kind == "text" && ev.ContentBlock.Text != "" {
				b.text.WriteString(ev.ContentBlock.Text)
				emit(panther.StreamEvent{Text: ev.ContentBlock.Text})
			}
		case "content_block_delta":
			b, err := block()
			if err != nil {
				return panther.ModelResponse{}, err
			}
			if ev.Delta == nil {
				return panther.ModelResponse{}, fmt.Errorf("content_block_delta event for block %d without a delta", b.index)
			}
			switch ev.Delta.Type {
			case "text_delta":
				if b.kind != "text" {
					return panther.ModelResponse{}, fmt.Errorf("text delta for content block %d of type %s", b.index, httpx.CleanText(b.kind))
				}
				if ev.Delta.Text != "" {
					b.text.WriteString(ev.Delta.Text)
					emit(panther.StreamEvent{Text: ev.Delta.Text})
				}
			case "input_json_delta":
				if b.kind != "tool_use" {
					return panther.ModelResponse{}, fmt.Errorf("input JSON delta for content block %d of type %s", b.index, httpx.CleanText(b.kind))
				}
				b.input.WriteString(ev.Delta.PartialJSON)
			}
			// Thinking, signature and citation deltas have no place in panther's types.
		case "content_block_stop":
			b, err := block()
			if err != nil {
				return panther.ModelResponse{}, err
			}
			b.done = true
			if b.kind != "tool_use" {
				continue
			}
			if b.id == "" || b.name == "" {
				return panther.ModelResponse{}, fmt.Errorf("tool_use content block %d without an id or a name", b.index)
			}
			raw := b.input.Bytes()
			if len(bytes.TrimSpace(raw)) == 0 {
				raw = b.initial
			}
			args, malformed := antArguments(raw)
			b.call = &panther.ToolCall{ID: b.id, Name: b.name, Arguments: args, Malformed: malformed}
			call := *b.call // the caller may keep or change what it is given
			emit(panther.StreamEvent{ToolCall: &call})
		case "message_delta":
			if ev.Delta != nil && ev.Delta.StopReason != "" {
				stopReason = ev.Delta.StopReason
			}
			if ev.Usage != nil {
				// Counts here are cumulative. Some compatible servers report input only here.
				if ev.Usage.OutputTokens > 0 {
					usage.OutputTokens = ev.Usage.OutputTokens
				}
				if in := ev.Usage.input(); in > 0 {
					usage.InputTokens = in
				}
			}
		case "message_stop":
			if !started {
				return panther.ModelResponse{}, errors.New("message_stop without message_start")
			}
			return antAssemble(blocks, stopReason, usage)
		case "error":
			if ev.Error == nil {
				return panther.ModelResponse{}, &antAPIError{Type: "error", Message: "an error event without details"}
			}
			return panther.ModelResponse{}, ev.Error
		}
		// ping, and event types added after this was written, are ignored.
	}
}

// antAssemble builds the turn from its blocks in index order.
func antAssemble(blocks map[int]*antStreamBlock, stopReason string, usage panther.Usage) (panther.ModelResponse, error) {
	idx := make([]int, 0, len(blocks))
	for i := range blocks {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	msg := panther.Message{Role: panther.RoleAssistant}
	var text strings.Builder
	for _, i := range idx {
		b := blocks[i]
		if !b.done {
			return panther.ModelResponse{}, fmt.Errorf("content block %d never stopped", i)
		}
		switch {
		case b.kind == "text":
			text.WriteString(b.text.String())
		case b.call != nil:
			msg.ToolCalls = append(msg.ToolCalls, *b.call)
		}
	}
	msg.Content = text.String()
	return panther.ModelResponse{
		Message:    msg,
		StopReason: antStopReason(stopReason, len(msg.ToolCalls) > 0),
		Usage:      usage,
	}, nil
}
