package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"panther/crawl"
	"panther/secret"
	"panther/telemetry"
)

// telemetryConfig is the [telemetry] table: logs, and metrics for a Datadog agent.
type telemetryConfig struct {
	// LogLevel is debug, info, warn or error (default info for serve, warn for the rest).
	LogLevel string `toml:"log_level,omitempty,omitzero"`
	// LogFormat is auto (JSON under systemd, text otherwise), text or json.
	LogFormat string `toml:"log_format,omitempty,omitzero"`
	// StatsdAddr is the Datadog agent's DogStatsD address: "127.0.0.1:8125" or
	// "unix:///var/run/datadog/dsd.socket". Empty sends nothing.
	StatsdAddr string `toml:"statsd_addr,omitempty,omitzero"`
	// Role and Owner tag every DogStatsD metric (role:workstation|server, owner:NAME); Tags add more,
	// as do DD_TAGS from the environment.
	Role  string   `toml:"role,omitempty,omitzero"`
	Owner string   `toml:"owner,omitempty,omitzero"`
	Tags  []string `toml:"tags,omitempty,omitzero"`
}

func (c telemetryConfig) validate() error {
	if _, err := telemetry.ParseLevel(c.LogLevel); err != nil {
		return fmt.Errorf("telemetry.log_level: %w", err)
	}
	switch c.LogFormat {
	case "", "auto", "text", "json":
	default:
		return fmt.Errorf("telemetry.log_format %q: want auto, text or json", c.LogFormat)
	}
	switch c.Role {
	case "", telemetry.RoleWorkstation, telemetry.RoleServer:
	default:
		return fmt.Errorf("telemetry.role %q: want %s or %s", c.Role, telemetry.RoleWorkstation, telemetry.RoleServer)
	}
	return nil
}

// redactor holds every secret value this process resolved, so that no log line shows one.
func (a *app) redactor() *telemetry.Redactor {
	if a.redact == nil {
		a.redact = telemetry.NewRedactor()
	}
	return a.redact
}

// resolveSecret resolves a secret-bearing setting and registers its value with the log redactor.
// isKey says the setting is a secret even when written as a plain value (an API key, a token); a
// base URL given as a plain value is not.
func (a *app) resolveSecret(ctx context.Context, value string, isKey bool) (string, error) {
	v, err := a.resolver().ResolveContext(ctx, value)
	if err != nil {
		return "", err
	}
	if isKey || secret.IsReference(value) {
		a.redactor().Add(v)
	}
	return v, nil
}

// logger is the process's structured logger, from the [telemetry] table; fallback is the level
// when the table names none.
func (a *app) logger(fallback string) (*slog.Logger, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	level := cfg.Telemetry.LogLevel
	if level == "" {
		level = fallback
	}
	return telemetry.NewLogger(a.stderr, a.getenv, telemetry.LogOptions{Level: level, Format: cfg.Telemetry.LogFormat, Redactor: a.redactor()})
}

// metrics builds the process's metrics on reg (nil: DogStatsD only) from the [telemetry] table.
func (a *app) metrics(reg *prometheus.Registry, storeSize func(context.Context) (int64, error), log *slog.Logger) (*telemetry.Metrics, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	t := cfg.Telemetry
	return telemetry.NewMetrics(reg, a.getenv, telemetry.MetricsOptions{
		StatsdAddr: t.StatsdAddr, Role: t.Role, Owner: t.Owner, Tags: t.Tags,
		StoreSize: storeSize, Redactor: a.redactor(), Logger: log,
	})
}

// reportCrawl sends a command-line crawl's outcome to the Datadog agent, when one is configured; a
// failure to do so is only a warning, since the crawl itself is done.
func (a *app) reportCrawl(sum crawl.Summary, runErr error) {
	cfg, err := a.config()
	if err != nil || cfg.Telemetry.StatsdAddr == "" {
		return
	}
	m, err := a.metrics(nil, nil, nil)
	if err != nil {
		fmt.Fprintf(a.stderr, "panther: warning: metrics: %s\n", oneLine(err.Error()))
		return
	}
	m.CrawlSummary(sum, runErr)
	if err := m.Close(); err != nil {
		fmt.Fprintf(a.stderr, "panther: warning: metrics: %s\n", oneLine(err.Error()))
	}
}
