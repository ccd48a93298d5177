package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"panther"
	"panther/agent"
	"panther/crawl"
)

// sseWriter writes server-sent events, each under its own write deadline: the server's
// WriteTimeout would otherwise cut every stream that outlives it.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

// openStream takes a stream slot and starts the event stream; release frees the slot. No free slot
// is ErrUnavailable, answered before anything is written.
func (s *server) openStream(w http.ResponseWriter, r *http.Request) (sw *sseWriter, release func(), err error) {
	select {
	case s.streamSlots <- struct{}{}:
	default:
		return nil, nil, fmt.Errorf("%d event streams are open, the most this server keeps; try again later: %w", cap(s.streamSlots), panther.ErrUnavailable)
	}
	rc := http.NewResponseController(w)
	// The request was read in full; a read deadline left from the server's ReadTimeout would end
	// the stream (the server cancels a request whose connection fails to read).
	_ = rc.SetReadDeadline(time.Time{})
	sw = &sseWriter{w: w, rc: rc, timeout: s.opts.StreamWriteTimeout}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	_ = rc.SetWriteDeadline(time.Now().Add(sw.timeout))
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		<-s.streamSlots
		return nil, nil, fmt.Errorf("start event stream: %w", err)
	}
	return sw, func() { <-s.streamSlots }, nil
}

// event writes one event: its type, id (omitted when empty) and JSON data on one line.
func (sw *sseWriter) event(kind, id string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	var msg strings.Builder
	if id != "" {
		fmt.Fprintf(&msg, "id: %s\n", id)
	}
	fmt.Fprintf(&msg, "event: %s\ndata: %s\n\n", kind, b)
	return sw.write(msg.String())
}

func (sw *sseWriter) comment(text string) error { return sw.write(": " + text + "\n\n") }

func (sw *sseWriter) write(s string) error {
	_ = sw.rc.SetWriteDeadline(time.Now().Add(sw.timeout))
	if _, err := fmt.Fprint(sw.w, s); err != nil {
		return err
	}
	return sw.rc.Flush()
}

// pump writes what ch carries until it is closed, the client leaves or a write fails, with a
// heartbeat comment when nothing else is written.
func pump[T any](s *server, r *http.Request, sw *sseWriter, ch <-chan T, write func(T) error) (last T, got bool) {
	tick := time.NewTicker(s.opts.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case v, ok := <-ch:
			if !ok {
				return last, got
			}
			last, got = v, true
			if err := write(v); err != nil {
				return last, got
			}
		case <-tick.C:
			if err := sw.comment("ping"); err != nil {
				return last, got
			}
		case <-r.Context().Done():
			return last, got
		}
	}
}

// sessionEvents streams a session's run: text pieces, tool_start and tool_end, subagent_start and
// subagent_end, step, and done. Each event's id is its number; a client that reconnects with
// Last-Event-ID (or ?after=N) gets what came after.
func (s *server) sessionEvents(w http.ResponseWriter, r *http.Request) error {
	after := int64(0)
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("after")
	}
	if v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return panther.Invalidf("Last-Event-ID or after %.20q: want the number of the last event seen", v)
		}
		after = n
	}
	ch, stop, err := s.opts.Sessions.Subscribe(r.Context(), r.PathValue("id"), after)
	if err != nil {
		return err
	}
	defer stop()
	sw, release, err := s.openStream(w, r)
	if err != nil {
		return err
	}
	defer release()
	last, got := pump(s, r, sw, ch, func(e agent.LiveEvent) error {
		return sw.event(e.Kind, strconv.FormatInt(e.Seq, 10), e)
	})
	if r.Context().Err() == nil && (!got || last.Kind != agent.EventDone) {
		// The channel closed without a done event: this client fell too far behind the run.
		_ = sw.event("error", "", errorJSON{Kind: "unavailable", Error: "this stream fell behind the run and was dropped; reconnect with Last-Event-ID to go on"})
	}
	return nil
}

// crawlEvents streams a crawl job's state: progress events as it goes and a done event with the
// final state.
func (s *server) crawlEvents(w http.ResponseWriter, r *http.Request) error {
	ch, stop, err := s.opts.Crawls.Subscribe(r.PathValue("id"))
	if err != nil {
		return err
	}
	defer stop()
	sw, release, err := s.openStream(w, r)
	if err != nil {
		return err
	}
	defer release()
	pump(s, r, sw, ch, func(j crawl.Job) error {
		kind := "progress"
		if j.State.Ended() {
			kind = "done"
		}
		return sw.event(kind, "", map[string]any{"job": j})
	})
	return nil
}
