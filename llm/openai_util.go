package llm

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// oaiContextLengthRE matches how servers say a prompt exceeds the model's context: OpenAI ("This
// model's maximum context length is 128000 tokens"), vLLM ("... maximum context length ..."),
// Ollama and llama.cpp ("exceeds the context length", "exceed_context_size_error", "n_ctx"), Z.ai
// ("prompt is too long"). Narrow on purpose: a match turns a retryable 500 into a final error.
var oaiContextLengthRE = regexp.MustCompile(`(?i)maximum context length|context[ _]length|context[ _]window|exceed_context_size|context size|n_ctx|prompt is too long|too many tokens`)

func oaiIsContextLength(code, msg string) bool {
	switch code {
	case "context_length_exceeded", "exceed_context_size_error", "string_above_max_length":
		return true
	}
	return oaiContextLengthRE.MatchString(msg)
}

// oaiRetryAfter reads how long the server asks to wait: OpenAI's retry-after-ms, else Retry-After
// (seconds or an HTTP date); negative when absent or unreadable, so that the caller falls back to
// its own backoff.
func oaiRetryAfter(h http.Header, now time.Time) time.Duration {
	if ms := strings.TrimSpace(h.Get("Retry-After-Ms")); ms != "" {
		if f, err := strconv.ParseFloat(ms, 64); err == nil && f >= 0 && f < float64(24*time.Hour/time.Millisecond) {
			return time.Duration(f * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return -1
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s < 0 {
			return -1
		}
		if s > float64(24*time.Hour/time.Second) {
			return 24 * time.Hour // only ever compared with the cap; avoids overflow
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return -1
}
