package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"unicode"
)

// Redacted replaces whatever a log line must not show.
const Redacted = "[redacted]"

// LogOptions shape a logger (the [telemetry] table's log_level and log_format).
type LogOptions struct {
	// Level is debug, info, warn or error, optionally with an offset as slog spells it ("debug-2");
	// empty means info.
	Level string
	// Format is auto, text or json; empty means auto: JSON when systemd runs the process (its
	// journal then keeps one structured record a line), text otherwise.
	Format string
	// Redactor hides registered secret values; nil still hides attributes named like secrets.
	Redactor *Redactor
}

// NewLogger returns a logger writing to w. getenv (os.Getenv in production; nil reads nothing) is
// how the automatic format learns whether systemd started the process.
func NewLogger(w io.Writer, getenv func(string) string, opts LogOptions) (*slog.Logger, error) {
	if w == nil {
		return nil, errors.New("telemetry: logger needs a writer")
	}
	level, err := ParseLevel(opts.Level)
	if err != nil {
		return nil, err
	}
	format, err := resolveFormat(opts.Format, getenv)
	if err != nil {
		return nil, err
	}
	ho := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(w, ho)
	} else {
		h = slog.NewTextHandler(w, ho)
	}
	return slog.New(NewRedactingHandler(h, opts.Redactor)), nil
}

// ParseLevel reads a log level as the configuration spells it; empty means info.
func ParseLevel(s string) (slog.Level, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "":
		return slog.LevelInfo, nil
	case "warning":
		return slog.LevelWarn, nil
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("telemetry: log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// resolveFormat settles "auto". systemd sets INVOCATION_ID for every unit it runs and JOURNAL_STREAM
// when stdout or stderr goes to the journal; either means nobody reads the lines on a terminal.
func resolveFormat(format string, getenv func(string) string) (string, error) {
	switch f := strings.ToLower(strings.TrimSpace(format)); f {
	case "text", "json":
		return f, nil
	case "", "auto":
		if getenv != nil && (getenv("JOURNAL_STREAM") != "" || getenv("INVOCATION_ID") != "") {
			return "json", nil
		}
		return "text", nil
	}
	return "", fmt.Errorf("telemetry: log format %q: want auto, text or json", format)
}

// MinSecretLen is the shortest registered secret that is also hidden inside longer text. Shorter
// ones are hidden only where a value equals them: replacing every "abc" in every line would make the
// logs unreadable and protect little.
const MinSecretLen = 6

// Redactor holds the secret values (API keys, passwords) that logs must never show. Values are
// usually known only after configuration is read, after the logger exists, so they can be added at
// any time. It is safe for concurrent use.
type Redactor struct {
	mu       sync.RWMutex
	exact    map[string]bool
	replacer *strings.Replacer // nil when no secret is long enough to look for inside text
}

// NewRedactor returns a Redactor holding secrets.
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{exact: map[string]bool{}}
	r.Add(secrets...)
	return r
}

// Add registers secret values; empty ones are ignored.
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.exact == nil {
		r.exact = map[string]bool{}
	}
	for _, s := range secrets {
		if s != "" {
			r.exact[s] = true
		}
	}
	var long []string
	for s := range r.exact {
		if len(s) >= MinSecretLen {
			long = append(long, s)
		}
	}
	// Longest first, so that a secret containing another is hidden whole.
	slices.SortFunc(long, func(a, b string) int { return len(b) - len(a) })
	r.replacer = nil
	if len(long) > 0 {
		pairs := make([]string, 0, 2*len(long))
		for _, s := range long {
			pairs = append(pairs, s, Redacted)
		}
		r.replacer = strings.NewReplacer(pairs...)
	}
}

// Redact returns s with every registered secret in it replaced by Redacted.
func (r *Redactor) Redact(s string) string {
	if r == nil || s == "" {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.exact[s] {
		return Redacted
	}
	if r.replacer == nil {
		return s
	}
	return r.replacer.Replace(s)
}

// IsSecret says whether s is a registered secret or contains one.
func (r *Redactor) IsSecret(s string) bool {
	return r.Redact(s) != s
}

func (r *Redactor) empty() bool {
	if r == nil {
		return true
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.exact) == 0
}

// NewRedactingHandler wraps h so that no record it handles shows a secret: attributes whose name
// says they hold one (token, api_key, password, secret, Authorization, ...) are replaced whole, and
// registered secret values are replaced wherever they appear (message, string values, errors).
// r may be nil. Attributes bound with WithAttrs are redacted when they are bound, so register
// secrets before binding them.
func NewRedactingHandler(h slog.Handler, r *Redactor) slog.Handler {
	return &redactingHandler{next: h, r: r}
}

type redactingHandler struct {
	next slog.Handler
	r    *Redactor
}

func (h *redactingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *redactingHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.Redact(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *redactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = h.attr(a)
	}
	return &redactingHandler{next: h.next.WithAttrs(red), r: h.r}
}

func (h *redactingHandler) WithGroup(name string) slog.Handler {
	return &redactingHandler{next: h.next.WithGroup(name), r: h.r}
}

func (h *redactingHandler) attr(a slog.Attr) slog.Attr {
	a.Value = a.Value.Resolve()
	if SensitiveName(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	switch a.Value.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(h.r.Redact(a.Value.String()))
	case slog.KindGroup:
		group := a.Value.Group()
		red := make([]slog.Attr, len(group))
		for i, g := range group {
			red[i] = h.attr(g)
		}
		a.Value = slog.GroupValue(red...)
	case slog.KindAny:
		if h.r.empty() {
			return a
		}
		// Errors, URLs with passwords and structs are formatted only to look for secrets; a value
		// holding none is passed on as it was, so that the JSON handler still renders it natively.
		var s string
		switch v := a.Value.Any().(type) {
		case error:
			s = v.Error()
		case []byte:
			s = string(v)
		default:
			s = fmt.Sprintf("%+v", v)
		}
		if red := h.r.Redact(s); red != s {
			a.Value = slog.StringValue(red)
		}
	default:
		// Numbers, times and durations can still equal a short secret (a PIN).
		if h.r.IsSecret(a.Value.String()) {
			a.Value = slog.StringValue(Redacted)
		}
	}
	return a
}

// sensitiveWords end the words of attribute names whose values are secrets. Plurals are left out
// on purpose: "input_tokens" and "keys" are counts, not credentials.
var sensitiveWords = []string{
	"token", "key", "password", "passwd", "pwd", "passphrase", "secret", "authorization",
	"cookie", "credential", "credentials", "bearer",
}

// SensitiveName says whether an attribute or tag named name holds a secret: one of its words (split
// at non-letters and at camelCase humps) is or ends with token, key, password, secret,
// authorization, cookie or credential(s). "api_key", "apiKey", "X-Api-Key", "access_token" and
// "client_secret" are; "input_tokens" and "keys" are not.
func SensitiveName(name string) bool {
	for _, w := range nameWords(name) {
		for _, s := range sensitiveWords {
			if strings.HasSuffix(w, s) {
				return true
			}
		}
	}
	return false
}

func nameWords(name string) []string {
	var words []string
	var cur []rune
	var prev rune
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	for _, c := range name {
		switch {
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			flush()
		case unicode.IsUpper(c) && unicode.IsLower(prev):
			flush()
			cur = append(cur, c)
		default:
			cur = append(cur, c)
		}
		prev = c
	}
	flush()
	return words
}
