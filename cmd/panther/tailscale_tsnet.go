//go:build tsnet

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"

	"tailscale.com/tsnet"
)

// tsnetBuilt says whether this build can join a tailnet (-tags tsnet).
const tsnetBuilt = true

// listenTailnet joins the tailnet as the node o describes and listens there for HTTP and, when
// o.SSHPort is set, SSH. Joining is bounded by o.JoinTimeout; on any failure the node is closed.
//
// tsnet uploads its own logs to Tailscale's log service unless TS_NO_LOGS_NO_SUPPORT=true is in
// the environment, as tailscaled does.
func listenTailnet(ctx context.Context, o tailnetOptions) (_ *tailnetListeners, err error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The state directory holds the node's private keys.
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("tailnet: state directory: %w", err)
	}
	if fi, err := os.Stat(o.Dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("tailnet: the state directory can be read by others than its owner; it holds the node's keys", "dir", o.Dir, "mode", fi.Mode().Perm().String())
	}
	srv := &tsnet.Server{
		Dir: o.Dir, Hostname: o.Hostname, AuthKey: o.AuthKey, Ephemeral: o.Ephemeral, ControlURL: o.ControlURL,
		// What tsnet means for a person to read (a login URL, say); its backend's chatter is
		// dropped (Logf nil).
		UserLogf: func(format string, args ...any) {
			log.Info("tailnet: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
		},
	}
	defer func() {
		if err != nil {
			srv.Close()
		}
	}()
	joinCtx, cancel := context.WithTimeout(ctx, o.JoinTimeout)
	defer cancel()
	log.Info("tailnet: joining", "hostname", o.Hostname, "dir", o.Dir, "ephemeral", o.Ephemeral, "auth_key", o.AuthKey != "")
	st, err := srv.Up(joinCtx)
	if err != nil {
		if errors.Is(joinCtx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("tailnet: not joined within %s (is the auth key valid, the control server reachable, or the login URL above opened?): %w", o.JoinTimeout, err)
		}
		return nil, fmt.Errorf("tailnet: join as %s: %w", o.Hostname, err)
	}
	name := o.Hostname
	if st.Self != nil && st.Self.DNSName != "" {
		name = strings.TrimSuffix(st.Self.DNSName, ".")
	}
	l := &tailnetListeners{Name: name}
	if l.HTTP, err = srv.Listen("tcp", ":"+strconv.Itoa(o.HTTPPort)); err != nil {
		return nil, fmt.Errorf("tailnet: listen on %s:%d: %w", name, o.HTTPPort, err)
	}
	if o.SSHPort != 0 {
		if l.SSH, err = srv.Listen("tcp", ":"+strconv.Itoa(o.SSHPort)); err != nil {
			l.HTTP.Close()
			return nil, fmt.Errorf("tailnet: listen on %s:%d: %w", name, o.SSHPort, err)
		}
	}
	l.close = func() error {
		for _, ln := range []net.Listener{l.HTTP, l.SSH} {
			if ln != nil {
				ln.Close()
			}
		}
		return srv.Close()
	}
	log.Info("tailnet: joined", "name", name, "ips", st.TailscaleIPs)
	return l, nil
}
