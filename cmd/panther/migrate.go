package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"panther"
)

// migrateJSON is what `migrate --json` prints; its field names are part of the command-line contract.
type migrateJSON struct {
	Store string `json:"store"`
	DB    string `json:"db"`
	// Before and After are the schema versions found and left; After is omitted by --check.
	Before int  `json:"before"`
	After  *int `json:"after,omitempty"`
	Latest int  `json:"latest"`
	// Pending is how many migrations the store still lacks.
	Pending int `json:"pending"`
}

func (a *app) migrateCommand() *cobra.Command {
	var check, jsonOut bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Bring the knowledge base's schema up to date, or --check whether it is",
		Long: `Apply the schema migrations the knowledge base (--db: a SQLite file or a PostgreSQL database)
lacks, and print its schema version before and after. Migrations are versioned and each runs in its
own transaction, so running migrate again changes nothing, and several panther processes starting at
once apply each migration exactly once. Every command migrates on start unless --no-migrate is given;
with it, a knowledge base whose schema is behind is refused until migrate has run.

--check changes nothing: it reports the version and exits 1 when migrations are pending.`,
		Example: `  panther --db postgres://panther@db.internal/panther migrate
  panther migrate --check --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			t, err := a.dbTarget()
			if err != nil {
				return err
			}
			latest := latestSchema(t.kind)
			before, err := schemaVersionAt(ctx, t)
			if err != nil {
				return err
			}
			if before > latest {
				return fmt.Errorf("%s: schema version %d is newer than this binary knows (%d): upgrade panther", t.display(), before, latest)
			}
			out := migrateJSON{Store: t.kind, DB: t.display(), Before: before, Latest: latest, Pending: latest - before}
			if check {
				if jsonOut {
					if err := a.printJSON(out); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(a.stdout, "%s %s: schema version %d of %d\n", t.kind, t.display(), before, latest)
				}
				if out.Pending > 0 {
					return fmt.Errorf("%d migration(s) pending: run panther migrate: %w", out.Pending, panther.ErrUnavailable)
				}
				return nil
			}
			db, err := a.openTarget(ctx, t, true)
			if err != nil {
				return err
			}
			defer db.Close()
			after, err := db.SchemaVersionOf(ctx)
			if err != nil {
				return err
			}
			out.After, out.Pending = &after, latest-after
			if jsonOut {
				return a.printJSON(out)
			}
			if before == after {
				fmt.Fprintf(a.stdout, "%s %s: schema version %d, up to date\n", t.kind, t.display(), after)
			} else {
				fmt.Fprintf(a.stdout, "%s %s: schema version %d → %d\n", t.kind, t.display(), before, after)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "change nothing: report the schema version, exit 1 when migrations are pending")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print one JSON document")
	return cmd
}
