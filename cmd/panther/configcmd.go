package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"

	"panther"
	"panther/secret"
)

// secretSettings lists every secret-bearing setting the config file holds, by its key, with the
// value or reference it was given. Base URLs count only when they are references.
func (c *fileConfig) secretSettings() map[string]string {
	out := map[string]string{}
	add := func(key, v string, always bool) {
		if v != "" && (always || secret.IsReference(v)) {
			out[key] = v
		}
	}
	add("embedder.api_key", c.Embedder.APIKey, true)
	for _, name := range sortedKeys(c.Providers) {
		p := c.Providers[name]
		add("providers."+name+".api_key", p.APIKey, true)
		add("providers."+name+".base_url", p.BaseURL, false)
	}
	for i, t := range c.Server.Tokens {
		key := fmt.Sprintf("server.tokens[%d].token", i)
		if t.Name != "" {
			key = fmt.Sprintf("server.tokens[%s].token", t.Name)
		}
		add(key, t.Token, true)
	}
	add("secrets.connect_token", c.Secrets.ConnectToken, true)
	add("tailscale.auth_key", c.Tailscale.AuthKey, true)
	return out
}

// redacted is a copy of c safe to print: secret-bearing settings that hold values, not references,
// are replaced.
func (c *fileConfig) redacted() fileConfig {
	r := *c
	r.DB = redactDSN(r.DB)
	hide := func(v string) string {
		if v == "" || secret.IsReference(v) {
			return v
		}
		return "(redacted)"
	}
	r.Embedder.APIKey = hide(r.Embedder.APIKey)
	r.Providers = make(map[string]providerConfig, len(c.Providers))
	for name, p := range c.Providers {
		p.APIKey = hide(p.APIKey)
		r.Providers[name] = p
	}
	r.Server.Tokens = make([]tokenConfig, len(c.Server.Tokens))
	for i, t := range c.Server.Tokens {
		t.Token = hide(t.Token)
		r.Server.Tokens[i] = t
	}
	r.Secrets.ConnectToken = hide(r.Secrets.ConnectToken)
	r.Tailscale.AuthKey = hide(r.Tailscale.AuthKey)
	return r
}

func (a *app) configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check the configuration file, or show it with secrets redacted",
		Long: `The configuration file is --config, else $PANTHER_CONFIG, else
$XDG_CONFIG_HOME/panther/config.toml (~/.config/panther/config.toml). config.example.toml in the
source documents every key.`,
	}
	check := &cobra.Command{
		Use:   "check [FILE]",
		Short: "Validate a configuration file without starting anything",
		Long: `Parse and validate a configuration file (FILE, else the one panther would read): unknown
keys, bad values and malformed references are errors naming the key and, where it can, the line.
It does not resolve secret references; 'panther secrets check' does.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{fmt.Errorf("config check takes at most one FILE")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				a.configFlag = args[0]
			}
			path, _, err := a.configPath()
			if err != nil {
				return err
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if cfg.path == "" {
				fmt.Fprintf(a.stdout, "no configuration file at %s: the defaults apply\n", path)
				return nil
			}
			fmt.Fprintf(a.stdout, "%s: ok\n", cfg.path)
			return nil
		},
	}
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the configuration file's settings with secret values redacted",
		Long: `Print the settings of the configuration file as TOML. Secret-bearing settings written as
values are shown as "(redacted)"; references (env:, file:, op://) are shown as they are, since they
name where a secret is, not what it is.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if cfg.path != "" {
				fmt.Fprintf(a.stdout, "# %s\n", cfg.path)
			} else {
				fmt.Fprintln(a.stdout, "# no configuration file: the defaults apply")
			}
			r := cfg.redacted()
			return toml.NewEncoder(a.stdout).Encode(r)
		},
	}
	cmd.AddCommand(check, show)
	return cmd
}

type secretCheckJSON struct {
	Setting   string   `json:"setting"`
	Reference string   `json:"reference"`
	OK        bool     `json:"ok"`
	Source    string   `json:"source,omitempty"`
	Problem   string   `json:"problem,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
}

func (a *app) secretsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Check that every secret reference in the configuration resolves",
	}
	var jsonOut bool
	check := &cobra.Command{
		Use:   "check",
		Short: "Resolve every secret reference of the configuration and report each as ok or missing",
		Long: `Resolve every secret-bearing setting of the configuration file (API keys, tokens, and base
URLs given as references) the way start-up would — env:NAME, file:/path, op://vault/item/field
through the [secrets] table's OpNix map, systemd credentials, the op CLI or a Connect server — and
report each as ok or missing, with where it was found or what was tried. Values are never printed.
Exits 1 when any reference does not resolve.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			results := a.resolver().CheckContext(cmd.Context(), cfg.secretSettings())
			missing := 0
			out := make([]secretCheckJSON, 0, len(results))
			for _, r := range results {
				if !r.OK {
					missing++
				}
				out = append(out, secretCheckJSON{Setting: r.Setting, Reference: r.Reference, OK: r.OK, Source: r.Source, Problem: r.Problem, Warnings: r.Warnings})
			}
			if jsonOut {
				if err := a.printJSON(map[string]any{"secrets": out, "missing": missing}); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SETTING\tREFERENCE\tSTATUS\tDETAIL")
				for _, r := range out {
					status, detail := "ok", r.Source
					if !r.OK {
						status, detail = "missing", r.Problem
					}
					if len(r.Warnings) > 0 {
						detail += " (warning: " + strings.Join(r.Warnings, "; ") + ")"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Setting, r.Reference, status, oneLine(detail))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if len(out) == 0 {
					fmt.Fprintln(a.stdout, "the configuration names no secrets")
				}
			}
			if missing > 0 {
				return fmt.Errorf("%d of %d secret references did not resolve: %w", missing, len(out), panther.ErrUnavailable)
			}
			return nil
		},
	}
	check.Flags().BoolVar(&jsonOut, "json", false, "print one JSON document")
	cmd.AddCommand(check)
	return cmd
}
