package llm

import (
	"context"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// Helpers both clients use for talking to a provider over HTTP.

// backoff is the wait before retry attempt+1 when the server gave no Retry-After: exponential
// with "equal jitter" (half fixed, half random) so that sub-agents throttled together do not return
// together.
func backoff(base, maxWait time.Duration, attempt int) time.Duration {
	d := base << min(attempt, 20)
	if d <= 0 || d > maxWait {
		d = maxWait
	}
	half := d / 2
	return half + rand.N(half+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// cleanText makes server text fit for an error message: control characters and runs of white space
// collapsed, valid UTF-8, bounded length.
func cleanText(s string) string {
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

func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}
