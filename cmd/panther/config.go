package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"panther"
	"panther/httpapi"
	"panther/internal/netguard"
	"panther/secret"
)

// fileConfig is the TOML configuration file. Every key is optional; flags and PANTHER_* environment
// variables override what it says. Settings that carry secrets (api_key) take a value or a reference
// (env:NAME, file:/path), resolved only when the setting is used. testdata/config.example.toml
// documents every key and is checked by a test to load.
type fileConfig struct {
	DB        string                    `toml:"db,omitempty,omitzero"`
	Model     string                    `toml:"model,omitempty,omitzero"`
	Embedder  embedderConfig            `toml:"embedder,omitempty,omitzero"`
	Providers map[string]providerConfig `toml:"providers,omitempty,omitzero"`
	Agents    agentsConfig              `toml:"agents,omitempty,omitzero"`
	Web       webConfig                 `toml:"web,omitempty,omitzero"`
	Server    serverConfig              `toml:"server,omitempty,omitzero"`
	SSH       sshConfig                 `toml:"ssh,omitempty,omitzero"`
	Secrets   secretsConfig             `toml:"secrets,omitempty,omitzero"`
	Tailscale tailscaleConfig           `toml:"tailscale,omitempty,omitzero"`
	Telemetry telemetryConfig           `toml:"telemetry,omitempty,omitzero"`

	// path is where the file was read from, "" when there was none.
	path string
}

type embedderConfig struct {
	Kind         string   `toml:"kind,omitempty,omitzero"`
	URL          string   `toml:"url,omitempty,omitzero"`
	Model        string   `toml:"model,omitempty,omitzero"`
	Dimensions   int      `toml:"dimensions,omitempty,omitzero"`
	APIKey       string   `toml:"api_key,omitempty,omitzero"`
	VectorWeight *float64 `toml:"vector_weight,omitempty,omitzero"`
}

// providerConfig is one model provider: a wire format at a base URL with a key.
type providerConfig struct {
	Wire      string        `toml:"wire,omitempty,omitzero"`
	BaseURL   string        `toml:"base_url,omitempty,omitzero"`
	APIKey    string        `toml:"api_key,omitempty,omitzero"`
	MaxTokens int           `toml:"max_tokens,omitempty,omitzero"`
	Timeout   time.Duration `toml:"timeout,omitempty,omitzero"`
	Retries   *int          `toml:"retries,omitempty,omitzero"`
}

type agentsConfig struct {
	MaxSteps     int           `toml:"max_steps,omitempty,omitzero"`
	MaxTokens    int           `toml:"max_tokens,omitempty,omitzero"`
	Timeout      time.Duration `toml:"timeout,omitempty,omitzero"`
	MaxSubagents int           `toml:"max_subagents,omitempty,omitzero"`
	MaxDepth     int           `toml:"max_depth,omitempty,omitzero"`
	// Dirs replace the default places agent definitions are read from.
	Dirs []string `toml:"dirs,omitempty,omitzero"`
}

// serverConfig is `panther serve`'s [server] table.
type serverConfig struct {
	// Addr is host:port to listen on (default 127.0.0.1:7777).
	Addr string `toml:"addr,omitempty,omitzero"`
	// Tokens are the bearer tokens the HTTP API accepts; with none, serve listens on loopback only.
	Tokens []tokenConfig `toml:"tokens,omitempty,omitzero"`
	// MaxBody bounds a request body, in bytes (default 1 MiB).
	MaxBody int64 `toml:"max_body,omitempty,omitzero"`
	// MetricsPublic serves /metrics without a token.
	MetricsPublic bool `toml:"metrics_public,omitempty,omitzero"`
}

// tokenConfig is one API token: its value is a secret reference, never the token itself, so that
// the file can be shared.
type tokenConfig struct {
	Name   string   `toml:"name,omitempty,omitzero"`
	Token  string   `toml:"token,omitempty,omitzero"`
	Scopes []string `toml:"scopes,omitempty,omitzero"`
}

func (c serverConfig) validate() error {
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			return fmt.Errorf("server.addr %q: want host:port, e.g. 127.0.0.1:7777", c.Addr)
		}
	}
	if c.MaxBody < 0 {
		return fmt.Errorf("server.max_body %d: want a number of bytes, 0 for the default", c.MaxBody)
	}
	seen := map[string]bool{}
	for i, t := range c.Tokens {
		where := fmt.Sprintf("server.tokens[%d]", i)
		if strings.TrimSpace(t.Name) == "" {
			return fmt.Errorf("%s: name is missing (it names the token in logs)", where)
		}
		where += " (" + t.Name + ")"
		if seen[t.Name] {
			return fmt.Errorf("%s: another token has this name", where)
		}
		seen[t.Name] = true
		if t.Token == "" {
			return fmt.Errorf("%s: token is missing: give a reference such as \"env:PANTHER_TOKEN\" or \"file:/run/secrets/panther-token\"", where)
		}
		if !secret.IsReference(t.Token) {
			return fmt.Errorf("%s: token must be a reference (env:NAME or file:/path), not the token itself, so that this file can be shared", where)
		}
		if len(t.Scopes) == 0 {
			return fmt.Errorf("%s: scopes are missing: want one or more of read, write, admin", where)
		}
		for _, sc := range t.Scopes {
			if _, err := httpapi.ParseScope(sc); err != nil {
				return fmt.Errorf("%s: %v", where, err)
			}
		}
	}
	return nil
}

type webConfig struct {
	// Allow lists addresses (IPs or CIDR prefixes) that web_fetch and agent crawls may reach although
	// they are loopback, private or link-local, e.g. "100.64.0.0/10" for a tailnet.
	Allow []string `toml:"allow,omitempty,omitzero"`
}

// configPath says which file to read and whether its absence is an error (it is when named).
func (a *app) configPath() (path string, named bool, err error) {
	if a.configFlag != "" {
		return a.configFlag, true, nil
	}
	if p := a.getenv("PANTHER_CONFIG"); p != "" {
		return p, true, nil
	}
	dir := a.getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := a.getenv("HOME")
		if home == "" {
			// No home, no default file: running without one is fine.
			return "", false, nil
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "panther", "config.toml"), false, nil
}

// config loads the configuration file once per command.
func (a *app) config() (*fileConfig, error) {
	if a.cfg != nil {
		return a.cfg, nil
	}
	path, named, err := a.configPath()
	if err != nil {
		return nil, err
	}
	cfg := &fileConfig{}
	if path != "" {
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			if cfg, err = parseConfig(path, data); err != nil {
				return nil, err
			}
		case errors.Is(err, fs.ErrNotExist) && !named:
		case errors.Is(err, fs.ErrNotExist):
			return nil, panther.Invalidf("config file %s does not exist", path)
		default:
			return nil, fmt.Errorf("read config file: %w", err)
		}
	}
	changed, err := envOverrides(cfg, a.getenv)
	if err != nil {
		return nil, err
	}
	if changed {
		where := "the environment"
		if cfg.path != "" {
			where = cfg.path + " with the environment's PANTHER_* overrides"
		}
		if err := cfg.validate(); err != nil {
			return nil, panther.Invalidf("config (%s): %v", where, err)
		}
	}
	a.cfg = cfg
	return cfg, nil
}

var providerName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// parseConfig decodes and validates a configuration file; errors name the file, and the key and
// line where they can.
func parseConfig(path string, data []byte) (*fileConfig, error) {
	cfg := &fileConfig{path: path}
	md, err := toml.Decode(string(data), cfg)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, panther.Invalidf("config %s:%d: %s", path, perr.Position.Line, perr.Message)
		}
		return nil, panther.Invalidf("config %s: %v", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		k := undecoded[0]
		where := path
		if line := keyLine(data, k); line > 0 {
			where = fmt.Sprintf("%s:%d", path, line)
		}
		return nil, panther.Invalidf("config %s: unknown key %q", where, k.String())
	}
	if err := cfg.validate(); err != nil {
		return nil, panther.Invalidf("config %s: %v", path, err)
	}
	return cfg, nil
}

func (c *fileConfig) validate() error {
	switch c.Embedder.Kind {
	case "", "none", "builtin", "openai":
	default:
		return fmt.Errorf("embedder.kind %q: want builtin, openai or none", c.Embedder.Kind)
	}
	if w := c.Embedder.VectorWeight; w != nil && (*w < 0 || *w > 1) {
		return fmt.Errorf("embedder.vector_weight %g: want a number from 0 to 1", *w)
	}
	if c.Embedder.Dimensions < 0 {
		return fmt.Errorf("embedder.dimensions %d: want a positive number", c.Embedder.Dimensions)
	}
	if c.Embedder.URL != "" {
		if err := checkBaseURL(c.Embedder.URL); err != nil {
			return fmt.Errorf("embedder.url: %w", err)
		}
	}
	for _, name := range sortedKeys(c.Providers) {
		p := c.Providers[name]
		if !providerName.MatchString(name) {
			return fmt.Errorf("providers.%s: a provider name is lower-case letters, digits, - and _", name)
		}
		switch p.Wire {
		case "openai", "anthropic":
		case "":
			return fmt.Errorf("providers.%s.wire is missing: want openai or anthropic", name)
		default:
			return fmt.Errorf("providers.%s.wire %q: want openai or anthropic", name, p.Wire)
		}
		if p.BaseURL == "" && p.Wire == "openai" {
			return fmt.Errorf("providers.%s.base_url is missing (e.g. http://localhost:11434/v1)", name)
		}
		if p.BaseURL != "" && !secret.IsReference(p.BaseURL) {
			if err := checkBaseURL(p.BaseURL); err != nil {
				return fmt.Errorf("providers.%s.base_url: %w", name, err)
			}
		}
		if p.MaxTokens < 0 || p.Timeout < 0 || (p.Retries != nil && *p.Retries < 0) {
			return fmt.Errorf("providers.%s: max_tokens, timeout and retries cannot be negative", name)
		}
	}
	if c.Model != "" {
		if _, _, err := c.splitModel(c.Model); err != nil {
			return fmt.Errorf("model: %w", err)
		}
	}
	ag := c.Agents
	if ag.MaxSteps < 0 || ag.MaxTokens < 0 || ag.Timeout < 0 || ag.MaxSubagents < 0 || ag.MaxDepth < 0 {
		return fmt.Errorf("agents: limits cannot be negative")
	}
	if _, err := netguard.ParsePolicy(c.Web.Allow); err != nil {
		return fmt.Errorf("web.allow: %w", err)
	}
	if err := c.SSH.validate(); err != nil {
		return err
	}
	if err := c.Secrets.validate(); err != nil {
		return err
	}
	if err := c.Tailscale.validate(); err != nil {
		return err
	}
	if err := c.Telemetry.validate(); err != nil {
		return err
	}
	return c.Server.validate()
}

// splitModel splits "provider/model" and checks the provider is configured.
func (c *fileConfig) splitModel(s string) (provider, model string, err error) {
	provider, model, ok := strings.Cut(s, "/")
	if !ok || provider == "" || model == "" {
		return "", "", fmt.Errorf("%q: name a model as provider/model, e.g. zai/glm-4.6", s)
	}
	if _, ok := c.Providers[provider]; !ok {
		known := sortedKeys(c.Providers)
		if len(known) == 0 {
			return "", "", fmt.Errorf("%q: no provider %q is configured (add a [providers.%s] table to the config file)", s, provider, provider)
		}
		return "", "", fmt.Errorf("%q: no provider %q is configured (configured: %s)", s, provider, strings.Join(known, ", "))
	}
	return provider, model, nil
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	if u.User != nil {
		return fmt.Errorf("put credentials in api_key, not in the URL")
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// keyLine finds the line that defines key, for error messages: the decoder reports unknown keys
// without a position. It follows [table] headers and dotted keys; 0 when it cannot tell.
func keyLine(data []byte, key toml.Key) int {
	if len(key) == 0 {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var table []string
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(text, "[") {
			name := strings.Trim(text, "[] \t")
			if i := strings.Index(name, "#"); i >= 0 {
				name = strings.TrimSpace(strings.TrimRight(name[:i], "] \t"))
			}
			table = splitDotted(name)
			if equalKeys(table, key) {
				return line
			}
			continue
		}
		name, _, ok := strings.Cut(text, "=")
		if !ok || strings.HasPrefix(text, "#") {
			continue
		}
		full := append(append([]string{}, table...), splitDotted(strings.TrimSpace(name))...)
		if equalKeys(full, key) || (len(full) < len(key) && equalKeys(full, key[:len(full)])) {
			return line
		}
	}
	return 0
}

func splitDotted(s string) []string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return parts
}

func equalKeys(a []string, b toml.Key) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// resolver resolves secret references from the command's environment, warning on stderr about
// secret files others can read.
//
// One resolver serves the whole command, so that an op:// reference is fetched once however many
// settings name it. Its op:// sources come from the config's [secrets] table.
func (a *app) resolver() secret.Resolver {
	if a.secrets != nil {
		return *a.secrets
	}
	r := secret.Resolver{Getenv: a.getenv, Warn: func(msg string) { fmt.Fprintf(a.stderr, "panther: warning: %s\n", msg) }, Cache: &secret.Cache{}}
	if cfg, err := a.config(); err == nil {
		sc := cfg.Secrets
		r.OPMap = sc.opMap
		r.CredentialsDir = sc.CredentialsDir
		r.OPCommand = sc.OPCommand
		r.ConnectURL = sc.ConnectURL
		r.ConnectToken = sc.ConnectToken
	}
	a.secrets = &r
	return r
}

// secretsConfig says where op:// references are resolved (see package secret): a map from reference
// to the file OpNix writes it to (or a systemd credential name), the op CLI, a Connect server.
type secretsConfig struct {
	OPMap          map[string]string `toml:"op_map,omitempty,omitzero"`
	OPMapFile      string            `toml:"op_map_file,omitempty,omitzero"`
	CredentialsDir string            `toml:"credentials_dir,omitempty,omitzero"`
	OPCommand      string            `toml:"op_command,omitempty,omitzero"`
	ConnectURL     string            `toml:"connect_url,omitempty,omitzero"`
	ConnectToken   string            `toml:"connect_token,omitempty,omitzero"`

	// opMap is OPMap merged with the file's entries, the table winning.
	opMap map[string]string
}

func (c *secretsConfig) validate() error {
	merged := map[string]string{}
	if c.OPMapFile != "" {
		m, err := secret.LoadOPMap(c.OPMapFile)
		if err != nil {
			return fmt.Errorf("secrets.op_map_file: %w", err)
		}
		for k, v := range m {
			merged[k] = v
		}
	}
	for k, v := range c.OPMap {
		merged[k] = v
	}
	if err := secret.ValidateOPMap(merged); err != nil {
		return fmt.Errorf("secrets.op_map: %w", err)
	}
	if c.ConnectURL != "" {
		if err := checkBaseURL(c.ConnectURL); err != nil {
			return fmt.Errorf("secrets.connect_url: %w", err)
		}
	}
	if strings.HasPrefix(c.ConnectToken, "op://") {
		return fmt.Errorf("secrets.connect_token: the Connect token cannot itself be an op:// reference; use file: or env:")
	}
	c.opMap = merged
	return nil
}

// sshConfig is the SSH terminal interface of `panther serve`; it is off unless addr is set.
type sshConfig struct {
	Addr           string `toml:"addr,omitempty,omitzero"`
	HostKey        string `toml:"host_key,omitempty,omitzero"`
	AuthorizedKeys string `toml:"authorized_keys,omitempty,omitzero"`
	MaxSessions    int    `toml:"max_sessions,omitempty,omitzero"`
}

func (c sshConfig) validate() error {
	if c.Addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("ssh.addr %q: want host:port, e.g. 127.0.0.1:2222", c.Addr)
	}
	if c.AuthorizedKeys == "" {
		return fmt.Errorf("ssh.authorized_keys is missing: the SSH interface admits only the public keys listed in that file")
	}
	if c.MaxSessions < 0 {
		return fmt.Errorf("ssh.max_sessions %d: want a positive number, 0 for the default", c.MaxSessions)
	}
	return nil
}
