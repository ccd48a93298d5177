package secret

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	const value = "sk-very-secret-value"
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("key", value+"\n", 0o600)
	crlf := write("crlf", value+"\r\n", 0o600)
	open := write("open", value, 0o644)
	empty := write("empty", "", 0o600)
	big := write("big", strings.Repeat("x", maxFileBytes+1), 0o600)
	env := map[string]string{"KEY": value}

	tests := []struct {
		name     string
		ref      string
		want     string
		wantErr  string
		wantWarn bool
	}{
		{"literal", "plain-value", "plain-value", "", false},
		{"env", "env:KEY", value, "", false},
		{"env unset", "env:MISSING", "", "env:MISSING: the environment variable MISSING is unset or empty", false},
		{"env without a name", "env:", "", "names no environment variable", false},
		{"file", "file:" + good, value, "", false},
		{"file with CRLF", "file:" + crlf, value, "", false},
		{"file readable by others", "file:" + open, value, "", true},
		{"file missing", "file:" + filepath.Join(dir, "nope"), "", "no such file", false},
		{"file empty", "file:" + empty, "", "is empty", false},
		{"file too big", "file:" + big, "", "not a secret", false},
		{"file is a directory", "file:" + dir, "", "is a directory", false},
		{"op reference with nowhere to look", "op://pantherOS/zai/default/apiKey", "", "op://pantherOS/zai/default/apiKey: no mapping; no $CREDENTIALS_DIRECTORY; op CLI not installed; Connect not configured", false},
		{"malformed op reference", "op://pantherOS/zai", "", "op://pantherOS/zai: has 2 path segments", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var warned []string
			r := Resolver{Getenv: func(k string) string { return env[k] }, Warn: func(m string) { warned = append(warned, m) }}
			got, err := r.Resolve(tt.ref)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrUnresolved) {
					t.Fatalf("error = %v, want ErrUnresolved containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), value) {
					t.Fatalf("the error shows the secret: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Resolve = %q, %v; want %q", got, err, tt.want)
			}
			if (len(warned) > 0) != tt.wantWarn {
				t.Fatalf("warnings %q, want a warning: %v", warned, tt.wantWarn)
			}
			for _, w := range warned {
				if strings.Contains(w, value) {
					t.Fatalf("the warning shows the secret: %s", w)
				}
			}
		})
	}
}

func TestIsReference(t *testing.T) {
	for s, want := range map[string]bool{"env:X": true, "file:/x": true, "op://v/i/f": true, "sk-123": false, "": false, "https://x": false} {
		if got := IsReference(s); got != want {
			t.Errorf("IsReference(%q) = %v", s, got)
		}
	}
}
