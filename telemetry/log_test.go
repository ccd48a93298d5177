package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestLoggerFormat(t *testing.T) {
	tests := []struct {
		name     string
		format   string
		getenv   func(string) string
		wantJSON bool
	}{
		{"auto on a terminal", "", env(), false},
		{"auto spelled out", "auto", env(), false},
		{"auto under systemd with journal", "auto", env("JOURNAL_STREAM", "8:12345"), true},
		{"auto under systemd without journal", "", env("INVOCATION_ID", "0123456789abcdef"), true},
		{"auto with no environment at all", "", nil, false},
		{"text forced under systemd", "text", env("INVOCATION_ID", "x"), false},
		{"json forced on a terminal", "JSON", env(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := NewLogger(&buf, tt.getenv, LogOptions{Format: tt.format})
			if err != nil {
				t.Fatal(err)
			}
			log.Info("hello", "n", 1)
			line := strings.TrimSpace(buf.String())
			var rec map[string]any
			isJSON := json.Unmarshal([]byte(line), &rec) == nil
			if isJSON != tt.wantJSON {
				t.Fatalf("JSON output = %v, want %v: %s", isJSON, tt.wantJSON, line)
			}
			if !isJSON && !strings.Contains(line, "msg=hello n=1") {
				t.Fatalf("text output %q lacks msg=hello n=1", line)
			}
			if isJSON && (rec["msg"] != "hello" || rec["n"] != float64(1)) {
				t.Fatalf("JSON record %v lacks msg and n", rec)
			}
		})
	}
}

func TestLoggerLevel(t *testing.T) {
	tests := []struct {
		level   string
		logged  []string // of debug, info, warn, error
		wantErr bool
	}{
		{"", []string{"info", "warn", "error"}, false},
		{"debug", []string{"debug", "info", "warn", "error"}, false},
		{"INFO", []string{"info", "warn", "error"}, false},
		{"warn", []string{"warn", "error"}, false},
		{"warning", []string{"warn", "error"}, false},
		{" error ", []string{"error"}, false},
		{"verbose", nil, true},
		{"info+x", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := NewLogger(&buf, nil, LogOptions{Level: tt.level, Format: "text"})
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "log level") {
					t.Fatalf("err = %v, want an error naming the log level", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			log.Debug("debug")
			log.Info("info")
			log.Warn("warn")
			log.Error("error")
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				if _, msg, ok := strings.Cut(line, "msg="); ok {
					got = append(got, msg)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.logged, ",") {
				t.Fatalf("logged %v, want %v", got, tt.logged)
			}
		})
	}
}

func TestLoggerBadOptions(t *testing.T) {
	if _, err := NewLogger(&bytes.Buffer{}, nil, LogOptions{Format: "xml"}); err == nil || !strings.Contains(err.Error(), "log format") {
		t.Fatalf("format xml: err = %v, want an error naming the log format", err)
	}
	if _, err := NewLogger(nil, nil, LogOptions{}); err == nil {
		t.Fatal("nil writer: want an error")
	}
}

type secretStruct struct {
	Name string
	Key  string
}

// TestRedaction logs a registered secret in every way code is likely to, plus credentials that
// were never registered but sit in attributes named like credentials, and greps the output.
func TestRedaction(t *testing.T) {
	const secret = "sk-live-9f8e7d6c5b4a"
	const short = "4711" // a PIN: too short to hunt inside text, hidden where a value equals it
	unregistered := []string{"ghp_unregisteredTOKEN", "hunter2-pass", "Bearer abc.def.ghi", "cs-unregistered", "sess=unregistered"}
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			red := NewRedactor()
			log, err := NewLogger(&buf, nil, LogOptions{Format: format, Level: "debug", Redactor: red})
			if err != nil {
				t.Fatal(err)
			}
			// Secrets are resolved after the logger exists.
			red.Add(secret, short, "")
			u, _ := url.Parse("https://user:" + secret + "@example.com/v1")
			bound := log.With("provider_key", secret, "base", "https://example.com/?k="+secret)
			bound.Info("calling with "+secret,
				"value", secret,
				"inside", "Authorization: Bearer "+secret,
				"err", fmt.Errorf("request failed: key %s refused", secret),
				"bytes", []byte("x-"+secret),
				"url", u,
				"struct", secretStruct{Name: "n", Key: secret},
				"pin", 4711,
				"pin_text", short,
				"api_key", unregistered[0],
				"password", unregistered[1],
				"Authorization", unregistered[2],
				slog.Group("oauth", "clientSecret", unregistered[3], "scope", "read"),
				"Cookie", unregistered[4],
				"input_tokens", 1234,
				"keys", 3,
				"model", "glm-4.6",
			)
			bound.WithGroup("g").Warn("grouped", "access_token", "tok-unregistered", "v", secret)
			out := buf.String()
			for _, s := range append([]string{secret, "tok-unregistered"}, unregistered...) {
				if strings.Contains(out, s) {
					t.Errorf("output shows %q:\n%s", s, out)
				}
			}
			// Timestamps may hold the digits by chance; the attributes must not.
			for _, s := range []string{"pin=" + short, `"pin":` + short, "pin_text=" + short, `"pin_text":"` + short} {
				if strings.Contains(out, s) {
					t.Errorf("output shows the short secret as %s:\n%s", s, out)
				}
			}
			for _, keep := range []string{"1234", "glm-4.6", "read", "calling with [redacted]", "request failed: key [redacted] refused"} {
				if !strings.Contains(out, keep) {
					t.Errorf("output lost %q, which is no secret:\n%s", keep, out)
				}
			}
			if n := strings.Count(out, Redacted); n < 15 {
				t.Errorf("%d redactions, want at least 15:\n%s", n, out)
			}
		})
	}
}

func TestSensitiveName(t *testing.T) {
	tests := map[string]bool{
		"token": true, "api_key": true, "apiKey": true, "APIKey": true, "X-Api-Key": true,
		"access_token": true, "refreshToken": true, "password": true, "db.passwd": true,
		"client_secret": true, "Authorization": true, "proxy-authorization": true, "cookie": true,
		"credentials": true, "secretkey": true, "private_key": true,
		"input_tokens": false, "output_tokens": false, "keys": false, "model": false, "url": false,
		"err": false, "provider": false, "tokenizer": false, "author": false,
	}
	for name, want := range tests {
		if got := SensitiveName(name); got != want {
			t.Errorf("SensitiveName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestRedactorLongestFirst(t *testing.T) {
	r := NewRedactor("abcdef", "abcdefghij")
	if got := r.Redact("x abcdefghij y abcdef"); got != "x [redacted] y [redacted]" {
		t.Fatalf("Redact = %q", got)
	}
	var nilR *Redactor
	if got := nilR.Redact("abcdef"); got != "abcdef" {
		t.Fatalf("nil Redactor changed its input: %q", got)
	}
}

// TestRedactionKeepsTypes checks that values holding no secret reach the JSON handler as they were.
func TestRedactionKeepsTypes(t *testing.T) {
	var buf bytes.Buffer
	log, err := NewLogger(&buf, nil, LogOptions{Format: "json", Redactor: NewRedactor("sk-live-9f8e7d6c5b4a")})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("m", "d", 1500*time.Millisecond, "list", []int{1, 2}, "err", errors.New("plain"))
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["d"] != float64(1500*time.Millisecond) {
		t.Errorf("d = %v", rec["d"])
	}
	if l, ok := rec["list"].([]any); !ok || len(l) != 2 {
		t.Errorf("list = %#v, want a JSON array", rec["list"])
	}
	if rec["err"] != "plain" {
		t.Errorf("err = %v", rec["err"])
	}
}

// BenchmarkRedactingHandler measures what redaction adds to a log line with a few attributes and
// some registered secrets, against the bare JSON handler.
func BenchmarkRedactingHandler(b *testing.B) {
	red := NewRedactor("sk-live-9f8e7d6c5b4a", "op-resolved-password-1", "another-key-abcdef")
	for _, bc := range []struct {
		name string
		h    slog.Handler
	}{
		{"bare", slog.NewJSONHandler(io.Discard, nil)},
		{"redacting", NewRedactingHandler(slog.NewJSONHandler(io.Discard, nil), red)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			log := slog.New(bc.h)
			err := errors.New("fetch https://example.com/docs: connection refused")
			for b.Loop() {
				log.Info("crawl page", "url", "https://example.com/docs/page.html", "status", 200,
					"took", 15*time.Millisecond, "err", err, "input_tokens", 1234)
			}
		})
	}
}
