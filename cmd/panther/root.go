package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"

	"panther"
	"panther/crawl"
	"panther/kb"
	"panther/secret"
	"panther/sqlite"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes are part of the command-line contract that scripts and later issues rely on.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks a mistake in how the command was called, which exits 2 like invalid input.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// app holds what every subcommand shares: where output goes, the environment, and the global flags.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	dbFlag         string
	configFlag     string
	cfg            *fileConfig
	secrets        *secret.Resolver
	embed          embedderFlags
	perPage        int // passages per page in search results; 0 means kb's default
	cpuProfile     string
	profileFile    *os.File
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv}
	// The crawler's User-Agent names the version that is crawling.
	crawl.Version = version
	root := a.rootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "panther: %s\n", oneLine(err.Error()))
	var ue usageError
	// cobra reports an unknown subcommand only as text.
	if errors.As(err, &ue) || errors.Is(err, panther.ErrInvalid) || strings.HasPrefix(err.Error(), "unknown command") {
		return exitUsage
	}
	return exitFailure
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "panther",
		Short: "Crawl documentation into a knowledge base and search it with citations",
		Long: `panther crawls documentation sites (or local folders of HTML and markdown) into a
knowledge base, and searches it: every passage it returns cites the page and section it came from.

  panther crawl https://docs.example.org/manual/      # a site, a sitemap, or a local folder
  panther search "partial index on a boolean column"  # ranked passages with citations
  panther docs list                                   # what is stored
  panther docs show URL                               # one page as clean markdown
  panther eval --qrels queries.jsonl                  # retrieval quality against a ground truth
  panther status                                      # what is stored, and the embedder in use
  panther --embedder builtin embed                    # vectors for search by meaning (opt-in)
  panther ask "how do I create a partial index?"      # an agent's answer with [n] citations
  panther agents                                      # the agents ask can run, and their tools
  panther sessions list                               # past asks, to show, export or --continue
  panther serve                                       # HTTP API, web UI, MCP at /mcp (and SSH)
  panther mcp                                         # MCP over stdio for coding agents
  panther secrets check                               # do the config's secret references resolve?

The knowledge base is one SQLite file: --db, or $PANTHER_DB, or
$XDG_DATA_HOME/panther/panther.db (~/.local/share/panther/panther.db when XDG_DATA_HOME is unset).
Settings (model providers, the embedder, agent limits) come from a TOML file: --config, or
$PANTHER_CONFIG, or ~/.config/panther/config.toml; config.example.toml documents every key.
Listing commands take --json and then print exactly one JSON document on stdout.
Exit codes: 0 success, 1 failure, 2 bad usage or invalid input.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	root.PersistentFlags().StringVar(&a.cpuProfile, "cpuprofile", "", "write a CPU profile of the command to this file")
	_ = root.PersistentFlags().MarkHidden("cpuprofile")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error { return a.startProfile() }
	root.PersistentPostRun = func(cmd *cobra.Command, args []string) { a.stopProfile() }
	root.PersistentFlags().StringVar(&a.configFlag, "config", "", "the configuration file (default $PANTHER_CONFIG, else $XDG_CONFIG_HOME/panther/config.toml when it exists)")
	root.PersistentFlags().StringVar(&a.dbFlag, "db", "", "the knowledge base: a SQLite file path (default $PANTHER_DB, else $XDG_DATA_HOME/panther/panther.db)")
	a.addEmbedderFlags(root)
	root.AddCommand(a.askCommand(), a.runCommand(), a.agentsCommand(), a.embedCommand(), a.crawlCommand(), a.searchCommand(), a.docsCommand(), a.evalCommand(), a.statusCommand(), a.benchSearchCommand())
	root.AddCommand(a.sessionsCommand(), a.configCommand(), a.secretsCommand())
	root.AddCommand(a.serveCommand())
	root.AddCommand(a.mcpCommand())
	return root
}

// dbPath resolves the knowledge base location: flag, then environment, then the XDG default.
func (a *app) dbPath() (string, error) {
	p := a.dbFlag
	if p == "" {
		p = a.getenv("PANTHER_DB")
	}
	if p == "" {
		cfg, err := a.config()
		if err != nil {
			return "", err
		}
		p = cfg.DB
	}
	if p == "" {
		dataHome := a.getenv("XDG_DATA_HOME")
		if dataHome == "" {
			home := a.getenv("HOME")
			if home == "" {
				h, err := os.UserHomeDir()
				if err != nil {
					return "", fmt.Errorf("no --db given and no home directory to put the default database in: %w", err)
				}
				home = h
			}
			dataHome = filepath.Join(home, ".local", "share")
		}
		p = filepath.Join(dataHome, "panther", "panther.db")
	}
	if strings.HasPrefix(p, "postgres://") || strings.HasPrefix(p, "postgresql://") {
		return "", panther.Invalidf("--db %s: PostgreSQL stores are not supported by this version yet; give a SQLite file path", redactDSN(p))
	}
	return p, nil
}

// redactDSN keeps passwords in connection strings out of error messages.
func redactDSN(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	scheme := strings.Index(dsn, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return dsn
	}
	return dsn[:scheme+3] + "…" + dsn[at:]
}

// openStore opens (creating when needed) the knowledge base.
func (a *app) openStore(ctx context.Context) (*sqlite.DB, error) {
	p, err := a.dbPath()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, fmt.Errorf("create the database directory: %w", err)
	}
	db, err := sqlite.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	return db, nil
}

// openKB opens the store and the knowledge-base service over it; close the returned store when done.
func (a *app) openKB(ctx context.Context) (*sqlite.DB, *kb.Service, error) {
	db, err := a.openStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	weight, err := a.vectorWeight()
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	emb, err := a.embedder()
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	svc, err := kb.New(db, kb.Options{Embedder: emb, VectorWeight: weight, MaxPassagesPerPage: a.perPage})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, svc, nil
}

// printJSON writes v as the one JSON document a --json command prints.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// exactArgs is cobra.ExactArgs with an exit code of 2 and a message that says what is expected.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s expects %s, got %d argument(s) (see '%s --help')", cmd.CommandPath(), what, len(args), cmd.CommandPath())}
		}
		return nil
	}
}

// startProfile starts the CPU profile asked for with the hidden --cpuprofile flag, for measuring
// where a crawl or a search spends its time (BENCHMARKS.md).
func (a *app) startProfile() error {
	if a.cpuProfile == "" {
		return nil
	}
	f, err := os.Create(a.cpuProfile)
	if err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	a.profileFile = f
	return nil
}

func (a *app) stopProfile() {
	if a.profileFile == nil {
		return
	}
	pprof.StopCPUProfile()
	a.profileFile.Close()
	a.profileFile = nil
}
