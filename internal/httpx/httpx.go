// Package httpx holds the small helpers every client of a remote HTTP API in panther shares: retry
// backoff, a cancellable sleep, and making server text and URLs safe to put in an error.
package httpx

import (
	"context"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// Backoff is the wait before retry attempt+1 when the server gave no Retry-After: exponential
// with "equal jitter" (half fixed, half random) so that sub-agents throttled together do not return
// together.
func Backoff(base, maxWait time.Duration, attempt int) time.Duration {
	d := base << min(attempt, 20)
	if d <= 0 || d > maxWait {
		d = maxWait
	}
	half := d / 2
	return half + rand.N(half+1)
}

// Sleep waits d, or until ctx ends (returning its cause).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// CleanText makes server text fit for an error message: control characters and runs of white space
// collapsed, valid UTF-8, bounded length.
func CleanText(s string) string {
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

// RedactURL hides a password in a URL; an unparsable one is not echoed at all.
func RedactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}
