package llm

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// antWatchdog calls its function when armed for longer than its duration without being disarmed.
type antWatchdog struct {
	t *time.Timer
	d time.Duration
}

func newAntWatchdog(d time.Duration, f func()) *antWatchdog {
	t := time.AfterFunc(d, f)
	t.Stop()
	return &antWatchdog{t: t, d: d}
}

func (w *antWatchdog) arm()    { w.t.Reset(w.d) }
func (w *antWatchdog) disarm() { w.t.Stop() }
func (w *antWatchdog) stop()   { w.t.Stop() }

// antReadLimited reads r to the end, or fails with errAntTooLarge past limit bytes.
func antReadLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return data, err
	}
	if int64(len(data)) > limit {
		return data[:limit], errAntTooLarge
	}
	return data, nil
}

// antRetryAfter parses a Retry-After header (seconds or an HTTP date); negative when absent or
// unreadable, so that the caller falls back to its own backoff.
func antRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return -1
	}
	if s, err := strconv.ParseFloat(h, 64); err == nil {
		if s < 0 {
			return -1
		}
		if s > float64(24*time.Hour/time.Second) {
			return 24 * time.Hour // only ever compared with the cap; avoids overflow
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0)
	}
	return -1
}
