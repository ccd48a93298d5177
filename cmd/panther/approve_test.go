package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

func TestTerminalApprover(t *testing.T) {
	tests := []struct {
		input string
		want  bool
		err   bool
	}{
		{"y\n", true, false},
		{"YES\n", true, false},
		{"n\n", false, false},
		{"\n", false, false},
		{"sure\n", false, false},
		{"", false, true},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		approve := terminalApprover(strings.NewReader(tt.input), &out)
		ok, err := approve(context.Background(), "researcher", "web_fetch", json.RawMessage(`{"url":"https://example.org/"}`))
		if ok != tt.want || (err != nil) != tt.err {
			t.Errorf("input %q: got %v, %v; want %v (error %v)", tt.input, ok, err, tt.want, tt.err)
		}
		if !strings.Contains(out.String(), "agent researcher wants to run web_fetch") || !strings.Contains(out.String(), "example.org") {
			t.Errorf("the question does not say what is asked: %q", out.String())
		}
	}

	// A cancelled run stops waiting for an answer that never comes.
	r, _ := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	approve := terminalApprover(r, io.Discard)
	done := make(chan error, 1)
	go func() {
		_, err := approve(ctx, "a", "crawl", nil)
		done <- err
	}()
	cancel()
	if err := <-done; err == nil {
		t.Error("a cancelled approval returned no error")
	}
}
