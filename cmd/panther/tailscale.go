package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"panther"
	"panther/secret"
)

// `panther serve --tailscale` joins a tailnet as a node of its own (tailscale.com/tsnet, in builds
// with -tags tsnet only) and serves HTTP and SSH on that node instead of on local addresses. The
// configuration and its checks live here, in every build, so that a config file written for a
// tsnet build is accepted (and checked) by any build; only listenTailnet differs.

// Defaults for the tailnet node.
const (
	defaultTailnetHostname = "panther"
	// defaultTailnetJoinTimeout bounds joining: long enough for a first login through the URL
	// that is logged when there is no auth key, short enough that a wrong key or an unreachable
	// control server ends serve with an error rather than a hang.
	defaultTailnetJoinTimeout = 2 * time.Minute
)

// errNoTsnet is what a default build answers to --tailscale.
var errNoTsnet = errors.New("--tailscale: this panther was built without tsnet; build with -tags tsnet (go build -tags tsnet ./cmd/panther)")

// tailscaleConfig is the [tailscale] table, used by `panther serve --tailscale`.
type tailscaleConfig struct {
	// Hostname is the node's name on the tailnet (default "panther"): http://panther:7777/.
	Hostname string `toml:"hostname,omitempty,omitzero"`
	// StateDir keeps the node's identity and keys (default: "tailscale" beside the database). It
	// is created readable by its owner only.
	StateDir string `toml:"state_dir,omitempty,omitzero"`
	// AuthKey is a reference to the auth key (op://vault/item/field, env:TS_AUTHKEY,
	// file:/run/secrets/ts-key), never the key itself. It is needed only until the node has
	// joined: the state directory then holds its identity. Without one, the first join logs a
	// login URL to open.
	AuthKey string `toml:"auth_key,omitempty,omitzero"`
	// Ephemeral nodes are removed from the tailnet soon after they go offline.
	Ephemeral bool `toml:"ephemeral,omitempty,omitzero"`
	// ControlURL is the coordination server (default Tailscale's; a Headscale URL, say).
	ControlURL string `toml:"control_url,omitempty,omitzero"`
	// JoinTimeout bounds joining the tailnet at start (default 2m).
	JoinTimeout time.Duration `toml:"join_timeout,omitempty,omitzero"`
}

// A hostname is one DNS label, as MagicDNS names nodes.
var tailnetHostname = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func (c tailscaleConfig) validate() error {
	if c.Hostname != "" && !tailnetHostname.MatchString(c.Hostname) {
		return fmt.Errorf("tailscale.hostname %q: want one DNS label: lower-case letters, digits and inner hyphens, at most 63", c.Hostname)
	}
	if c.AuthKey != "" && !secret.IsReference(c.AuthKey) {
		// The value itself is not repeated: it may be a real key.
		return fmt.Errorf("tailscale.auth_key must be a reference (op://vault/item/field, env:NAME or file:/path), not the key itself, so that this file can be shared")
	}
	if c.ControlURL != "" {
		if err := checkBaseURL(c.ControlURL); err != nil {
			return fmt.Errorf("tailscale.control_url: %w", err)
		}
	}
	if c.JoinTimeout < 0 {
		return fmt.Errorf("tailscale.join_timeout %s: want a positive duration, 0 for the default (%s)", c.JoinTimeout, defaultTailnetJoinTimeout)
	}
	return nil
}

// tailnetOptions is what listenTailnet needs, references resolved and defaults applied.
type tailnetOptions struct {
	Hostname string
	// Dir is the node's state directory, an absolute path.
	Dir string
	// AuthKey is the key itself; "" joins with the identity kept in Dir, or logs a login URL.
	AuthKey    string
	Ephemeral  bool
	ControlURL string
	// HTTPPort is the tailnet port the HTTP API listens on; SSHPort the SSH interface's, 0 when
	// it is off.
	HTTPPort    int
	SSHPort     int
	JoinTimeout time.Duration
	Logger      *slog.Logger
}

func (o tailnetOptions) validate() error {
	if !tailnetHostname.MatchString(o.Hostname) {
		return panther.Invalidf("tailnet: hostname %q is not one DNS label", o.Hostname)
	}
	if !filepath.IsAbs(o.Dir) {
		return panther.Invalidf("tailnet: state directory %q is not an absolute path", o.Dir)
	}
	if o.HTTPPort < 1 || o.HTTPPort > 65535 {
		return panther.Invalidf("tailnet: HTTP port %d is out of range", o.HTTPPort)
	}
	if o.SSHPort < 0 || o.SSHPort > 65535 {
		return panther.Invalidf("tailnet: SSH port %d is out of range", o.SSHPort)
	}
	if o.SSHPort == o.HTTPPort {
		return panther.Invalidf("tailnet: HTTP and SSH cannot share port %d", o.HTTPPort)
	}
	if o.JoinTimeout <= 0 {
		return panther.Invalidf("tailnet: the join timeout must be positive, got %s", o.JoinTimeout)
	}
	return nil
}

// tailnetListeners are serve's listeners on the tailnet node. Close them, then the node, with
// Close, after the servers using them have stopped.
type tailnetListeners struct {
	HTTP net.Listener
	// SSH is nil when the SSH interface is off.
	SSH net.Listener
	// Name is the node's name on the tailnet (its MagicDNS name when the tailnet has one).
	Name  string
	close func() error
}

// Close leaves the tailnet (an ephemeral node is then removed from it soon).
func (l *tailnetListeners) Close() error {
	if l == nil || l.close == nil {
		return nil
	}
	return l.close()
}

// tailnetSetup turns the [tailscale] table and serve's addresses into options: the ports of
// httpAddr and sshAddr ("" when the SSH interface is off) are used on the tailnet, their hosts are
// not. tokens is how many API tokens are configured: a tailnet is a network others reach, so an
// open API is refused there as on any non-loopback address.
func (a *app) tailnetSetup(ctx context.Context, c tailscaleConfig, dataDir, httpAddr, sshAddr string, tokens int, log *slog.Logger) (tailnetOptions, error) {
	if err := c.validate(); err != nil {
		return tailnetOptions{}, panther.Invalidf("%v", err)
	}
	if tokens == 0 {
		return tailnetOptions{}, panther.Invalidf("refusing to serve on the tailnet without API tokens: anyone on the tailnet could read the knowledge base, " +
			"change it and run agents. Add a token to the config file: " +
			`[[server.tokens]] name = "me", token = "env:PANTHER_TOKEN", scopes = ["write"] (see config.example.toml)`)
	}
	o := tailnetOptions{
		Hostname: firstNonEmpty(c.Hostname, defaultTailnetHostname), Dir: c.StateDir,
		Ephemeral: c.Ephemeral, ControlURL: c.ControlURL, JoinTimeout: c.JoinTimeout, Logger: log,
	}
	if o.Dir == "" {
		o.Dir = filepath.Join(dataDir, "tailscale")
	}
	if abs, err := filepath.Abs(o.Dir); err == nil {
		o.Dir = abs
	}
	if o.JoinTimeout == 0 {
		o.JoinTimeout = defaultTailnetJoinTimeout
	}
	var err error
	if o.HTTPPort, err = addrPort("--addr", httpAddr); err != nil {
		return tailnetOptions{}, err
	}
	if sshAddr != "" {
		if o.SSHPort, err = addrPort("ssh address", sshAddr); err != nil {
			return tailnetOptions{}, err
		}
	}
	if c.AuthKey != "" {
		key, err := a.resolver().ResolveContext(ctx, c.AuthKey)
		if err != nil {
			return tailnetOptions{}, fmt.Errorf("tailscale.auth_key: %w", err)
		}
		if key == "" {
			return tailnetOptions{}, panther.Invalidf("tailscale.auth_key: %s resolves to an empty value", c.AuthKey)
		}
		o.AuthKey = key
	}
	if err := o.validate(); err != nil {
		return tailnetOptions{}, err
	}
	return o, nil
}

// openTailnet is what serve calls for --tailscale: the options, then the node and its listeners.
func (a *app) openTailnet(ctx context.Context, c tailscaleConfig, dataDir, httpAddr, sshAddr string, tokens int, log *slog.Logger) (*tailnetListeners, error) {
	if !tsnetBuilt {
		return nil, errNoTsnet
	}
	o, err := a.tailnetSetup(ctx, c, dataDir, httpAddr, sshAddr, tokens, log)
	if err != nil {
		return nil, err
	}
	return listenTailnet(ctx, o)
}

// addrPort is the port of a host:port address, which must be a fixed one.
func addrPort(what, addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, panther.Invalidf("%s %q: want host:port or :port", what, addr)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, panther.Invalidf("%s %q: the tailnet needs a fixed port from 1 to 65535", what, addr)
	}
	return n, nil
}

// applySSHAddrFlag lets `serve --ssh-addr` turn the SSH interface on (or move it) without a config
// file. With no [ssh] authorized_keys, the account's own ~/.ssh/authorized_keys is used: the keys
// that may already log in to this account as a shell gain nothing by reaching panther too.
func applySSHAddrFlag(cfg *fileConfig, flag string, getenv func(string) string) error {
	if flag == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(flag); err != nil {
		return panther.Invalidf("--ssh-addr %q: want host:port, e.g. :2222 or 127.0.0.1:2222", flag)
	}
	cfg.SSH.Addr = flag
	if cfg.SSH.AuthorizedKeys == "" {
		home := getenv("HOME")
		def := filepath.Join(home, ".ssh", "authorized_keys")
		if _, err := os.Stat(def); home == "" || err != nil {
			return panther.Invalidf("--ssh-addr: no authorized keys: set [ssh] authorized_keys in the config file (only the public keys listed there may log in), or create %s", def)
		}
		cfg.SSH.AuthorizedKeys = def
	}
	if err := cfg.SSH.validate(); err != nil {
		return panther.Invalidf("%v", err)
	}
	return nil
}
