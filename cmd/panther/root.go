package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"

	"panther"
	"panther/crawl"
	"panther/kb"
	"panther/postgres"
	"panther/secret"
	"panther/sqlite"
	"panther/telemetry"
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
	noMigrate      bool
	configFlag     string
	cfg            *fileConfig
	secrets        *secret.Resolver
	redact         *telemetry.Redactor
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
  panther --db postgres://host/panther migrate        # create or update a PostgreSQL store
  panther export --to postgres://host/panther         # copy this knowledge base there, verified

The knowledge base is one SQLite file or a PostgreSQL database: --db, or $PANTHER_DB, or the
config's db, or $XDG_DATA_HOME/panther/panther.db (~/.local/share/panther/panther.db when
XDG_DATA_HOME is unset). A postgres:// URL selects PostgreSQL, shared by every panther pointed at it;
its password can also come from $PGPASSWORD or ~/.pgpass, and is never printed. Schemas are migrated
on start ('panther migrate', and --no-migrate to refuse instead); 'panther export' and 'panther
import' move a knowledge base between stores.
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
	root.PersistentFlags().StringVar(&a.dbFlag, "db", "", "the knowledge base: a SQLite file path or a postgres:// URL (default $PANTHER_DB, else the config's db, else $XDG_DATA_HOME/panther/panther.db)")
	root.PersistentFlags().BoolVar(&a.noMigrate, "no-migrate", false, "refuse a knowledge base whose schema is behind this binary instead of migrating it (see 'panther migrate')")
	a.addEmbedderFlags(root)
	root.AddCommand(a.askCommand(), a.runCommand(), a.agentsCommand(), a.embedCommand(), a.crawlCommand(), a.searchCommand(), a.docsCommand(), a.evalCommand(), a.statusCommand(), a.benchSearchCommand())
	root.AddCommand(a.sessionsCommand(), a.configCommand(), a.secretsCommand(), a.workerCommand(), a.sourcesCommand())
	root.AddCommand(a.serveCommand())
	root.AddCommand(a.mcpCommand())
	root.AddCommand(a.migrateCommand(), a.exportCommand(), a.importCommand())
	return root
}

// Store kinds, as status and migrate name them.
const (
	kindSQLite   = "sqlite"
	kindPostgres = "postgres"
)

// dbTarget is a knowledge base to open: a SQLite file or a PostgreSQL database.
type dbTarget struct {
	kind string
	// loc is the file path or the connection string. A connection string may hold a password:
	// print display(), never loc.
	loc string
}

// parseDBTarget tells a PostgreSQL URL from a file path.
func parseDBTarget(s string) dbTarget {
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		return dbTarget{kind: kindPostgres, loc: s}
	}
	return dbTarget{kind: kindSQLite, loc: s}
}

// display names the target without its credentials.
func (t dbTarget) display() string {
	if t.kind == kindPostgres {
		return redactDSN(t.loc)
	}
	return t.loc
}

// dbTarget resolves the knowledge base: flag, then environment, then the config file, then the
// XDG default.
func (a *app) dbTarget() (dbTarget, error) {
	p := a.dbFlag
	if p == "" {
		p = a.getenv("PANTHER_DB")
	}
	if p == "" {
		cfg, err := a.config()
		if err != nil {
			return dbTarget{}, err
		}
		p = cfg.DB
	}
	if p == "" {
		dir, err := a.dataDir()
		if err != nil {
			return dbTarget{}, fmt.Errorf("no --db given and %w", err)
		}
		p = filepath.Join(dir, "panther.db")
	}
	return parseDBTarget(p), nil
}

// dataDir is where panther keeps its files by default: $XDG_DATA_HOME/panther.
func (a *app) dataDir() (string, error) {
	dataHome := a.getenv("XDG_DATA_HOME")
	if dataHome == "" {
		home := a.getenv("HOME")
		if home == "" {
			h, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("no home directory for panther's data: %w", err)
			}
			home = h
		}
		dataHome = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(dataHome, "panther"), nil
}

var passwordField = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)`)

// redactDSN keeps passwords in connection strings out of output: the URL's user password, a
// password query parameter, or a key=value string's password field.
func redactDSN(dsn string) string {
	if !strings.Contains(dsn, "://") {
		return passwordField.ReplaceAllString(dsn, "${1}xxxxx")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "(a connection URL that does not parse)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// kbStore is what the commands need of a store; the sqlite and postgres stores are both.
type kbStore interface {
	panther.Store
	panther.VectorIndex
	panther.DocumentRemover
	panther.SourceRemover
	panther.Exporter
	panther.Importer
	// Optimize tidies the indexes after a bulk write (a crawl, an import).
	Optimize(ctx context.Context) error
	SchemaVersionOf(ctx context.Context) (int, error)
}

var (
	_ kbStore = (*sqlite.DB)(nil)
	_ kbStore = (*postgres.DB)(nil)
)

// describeStore names an open store's kind and where it is, without credentials.
func describeStore(s kbStore) (kind, where string) {
	switch db := s.(type) {
	case *sqlite.DB:
		return kindSQLite, db.Path()
	case *postgres.DB:
		return kindPostgres, db.Where()
	}
	return fmt.Sprintf("%T", s), ""
}

// latestSchema is the schema version this binary writes in a store of the kind.
func latestSchema(kind string) int {
	if kind == kindPostgres {
		return postgres.SchemaVersion
	}
	return sqlite.SchemaVersion
}

// schemaVersionAt reads a store's schema version without creating, migrating or changing it.
func schemaVersionAt(ctx context.Context, t dbTarget) (int, error) {
	if t.kind == kindPostgres {
		return postgres.SchemaVersionAt(ctx, t.loc)
	}
	return sqlite.SchemaVersionAt(ctx, t.loc)
}

// openStore opens the knowledge base, creating a SQLite file when needed and bringing the schema up
// to date unless --no-migrate.
func (a *app) openStore(ctx context.Context) (kbStore, error) {
	t, err := a.dbTarget()
	if err != nil {
		return nil, err
	}
	return a.openTarget(ctx, t, !a.noMigrate)
}

// openTarget opens t. Without migrate, a store whose schema is not the one this binary writes is
// refused with a message that says to run panther migrate.
func (a *app) openTarget(ctx context.Context, t dbTarget, migrate bool) (kbStore, error) {
	if t.kind == kindPostgres {
		// Its errors name the database as host:port/name, never with the password.
		return postgres.OpenWith(ctx, t.loc, postgres.Options{NoMigrate: !migrate, Logger: a.storeLogger()})
	}
	if !migrate {
		v, err := sqlite.SchemaVersionAt(ctx, t.loc)
		if err != nil {
			return nil, err
		}
		if v < sqlite.SchemaVersion {
			return nil, fmt.Errorf("open sqlite database %s: schema version %d, this binary needs %d: run panther migrate (--no-migrate is set): %w",
				t.loc, v, sqlite.SchemaVersion, panther.ErrUnavailable)
		}
	}
	if err := os.MkdirAll(filepath.Dir(t.loc), 0o700); err != nil {
		return nil, fmt.Errorf("create the database directory: %w", err)
	}
	return sqlite.Open(ctx, t.loc)
}

// storeLogger takes what a store has to say once (how PostgreSQL vectors are searched): warnings
// only, so that commands print nothing unasked.
func (a *app) storeLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// openKB opens the store and the knowledge-base service over it; close the returned store when done.
func (a *app) openKB(ctx context.Context) (kbStore, *kb.Service, error) {
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
