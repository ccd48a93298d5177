package llm

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
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

// antBackoff is the wait before retry attempt+1 when the server gave no Retry-After: exponential
// with "equal jitter" (half fixed, half random) so that agents throttled together do not return
// together.
func antBackoff(base, maxWait time.Duration, attempt int) time.Duration {
	d := base << min(attempt, 20)
	if d <= 0 || d > maxWait {
		d = maxWait
	}
	half := d / 2
	return half + rand.N(half+1)
}

func antSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// antClean makes text from a server fit for an error message: control characters and runs of white
// space collapsed, valid UTF-8, bounded length.
func antClean(s string) string {
	const maxRunes = 300
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	space := false
	n := 0
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		if n == maxRunes {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

func antRedactURL(s string) string {
	if s == "" {
		return ""
	}
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}
