//go:build !tsnet

package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestTailscaleNeedsTheTsnetBuild(t *testing.T) {
	a := &app{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	// Even a complete setup is refused, before any secret is resolved.
	_, err := a.openTailnet(context.Background(), tailscaleConfig{AuthKey: "env:TS_AUTHKEY"}, t.TempDir(), ":7777", ":2222", 1, nil)
	if !errors.Is(err, errNoTsnet) || !strings.Contains(err.Error(), "build with -tags tsnet") {
		t.Fatalf("got %v, want the error naming the tsnet build", err)
	}
}
