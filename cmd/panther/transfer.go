package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"panther"
	"panther/transfer"
)

// copyFlags are export's and import's shared flags.
type copyFlags struct {
	merge   bool
	batch   int
	jsonOut bool
}

func (f *copyFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.merge, "merge", false, "copy into a knowledge base that is not empty: pages of the same URL and sessions of the same ID are replaced, the rest kept")
	cmd.Flags().IntVar(&f.batch, "batch", transfer.DefaultBatchSize, "documents read and written at a time")
	cmd.Flags().BoolVar(&f.jsonOut, "json", false, "print one JSON document")
}

const copyLong = `Copy a whole knowledge base between stores, SQLite and PostgreSQL alike: sources, documents with
their chunks (text, headings, order, navigation flag, keywords), the vectors of every embedding model,
and agent sessions with their messages and sub-agent sessions. Crawl frontiers are not copied; the
next crawl of a source starts afresh. The destination is created and migrated when needed, and must be
empty unless --merge is given.

After copying, both sides are summarised (counts of sources, documents, gone documents, chunks,
sessions and messages, vectors per model; hashes over every copied field) and compared: any
difference is printed and exits 1. Stop crawls and agents writing to the source while it runs.`

func (a *app) exportCommand() *cobra.Command {
	var f copyFlags
	var to string
	cmd := &cobra.Command{
		Use:   "export --to FILE|URL",
		Short: "Copy the knowledge base (--db) into another store and verify the copy",
		Long:  copyLong,
		Example: `  panther --db ~/.local/share/panther/panther.db export --to postgres://panther@db.internal/panther
  panther --db postgres://panther@db.internal/panther export --to backup.db`,
		Args: exactArgs(0, "no arguments (the destination is --to)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usageError{fmt.Errorf("export needs --to FILE|URL, the store to copy into")}
			}
			src, err := a.dbTarget()
			if err != nil {
				return err
			}
			return a.copyStores(cmd.Context(), "export", src, parseDBTarget(to), f)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the store to copy into: a SQLite file path or a postgres:// URL")
	f.add(cmd)
	return cmd
}

func (a *app) importCommand() *cobra.Command {
	var f copyFlags
	var from string
	cmd := &cobra.Command{
		Use:   "import --from FILE|URL",
		Short: "Copy another store's knowledge base into this one (--db) and verify the copy",
		Long:  copyLong,
		Example: `  panther --db postgres://panther@db.internal/panther import --from ~/.local/share/panther/panther.db
  panther import --from postgres://panther@db.internal/panther --merge`,
		Args: exactArgs(0, "no arguments (the source is --from)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == "" {
				return usageError{fmt.Errorf("import needs --from FILE|URL, the store to copy from")}
			}
			dst, err := a.dbTarget()
			if err != nil {
				return err
			}
			return a.copyStores(cmd.Context(), "import", parseDBTarget(from), dst, f)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the store to copy from: a SQLite file path or a postgres:// URL")
	f.add(cmd)
	return cmd
}

// copyJSON is what export and import print with --json; its field names are part of the
// command-line contract.
type copyJSON struct {
	From        string           `json:"from"`
	To          string           `json:"to"`
	Merge       bool             `json:"merge"`
	Copied      transfer.Counts  `json:"copied"`
	Source      transfer.Summary `json:"source"`
	Destination transfer.Summary `json:"destination"`
	Mismatches  []string         `json:"mismatches"`
	Verified    bool             `json:"verified"`
	Seconds     float64          `json:"seconds"`
}

func (a *app) copyStores(ctx context.Context, verb string, from, to dbTarget, f copyFlags) error {
	if f.batch <= 0 || f.batch > 5000 {
		return panther.Invalidf("--batch must be between 1 and 5000, got %d", f.batch)
	}
	if sameTarget(from, to) {
		return panther.Invalidf("%s: %s is both the source and the destination", verb, from.display())
	}
	// Opening a store creates it (a SQLite file, PostgreSQL tables): a mistyped source must not
	// become an empty knowledge base that is then copied as such.
	if v, err := schemaVersionAt(ctx, from); err != nil {
		return fmt.Errorf("%s: open the source: %w", verb, err)
	} else if v == 0 {
		return panther.NotFoundf("%s: no knowledge base at %s", verb, from.display())
	}
	src, err := a.openTarget(ctx, from, !a.noMigrate)
	if err != nil {
		return fmt.Errorf("%s: open the source: %w", verb, err)
	}
	defer src.Close()
	dst, err := a.openTarget(ctx, to, !a.noMigrate)
	if err != nil {
		return fmt.Errorf("%s: open the destination: %w", verb, err)
	}
	defer dst.Close()

	opts := transfer.Options{Merge: f.merge, BatchSize: f.batch}
	var bar *progressbar.ProgressBar
	if isTerminal(a.stderr) {
		bar = progressbar.NewOptions(-1,
			progressbar.OptionSetWriter(a.stderr),
			progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		opts.Progress = func(p transfer.Progress) {
			bar.Describe(p.Phase)
			if p.Total > 0 {
				bar.ChangeMax(p.Total)
			}
			_ = bar.Set(p.Done)
		}
	}
	start := time.Now()
	rep, err := transfer.Copy(ctx, src, dst, opts)
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil && !errors.Is(err, transfer.ErrMismatch) {
		return fmt.Errorf("%s: %w", verb, err)
	}
	if err == nil {
		// A bulk write leaves the embedded store's full-text index in many segments; see runCrawl.
		if err := dst.Optimize(ctx); err != nil {
			return fmt.Errorf("%s: %w", verb, err)
		}
	}
	out := copyJSON{From: from.display(), To: to.display(), Merge: f.merge, Copied: rep.Copied, Source: rep.Source,
		Destination: rep.Destination, Mismatches: rep.Mismatches, Verified: err == nil,
		Seconds: time.Since(start).Seconds()}
	if f.jsonOut {
		if perr := a.printJSON(out); perr != nil {
			return perr
		}
	} else {
		a.printCopyReport(out)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	return nil
}

// sameTarget reports whether two targets name one store, as far as their spelling tells.
func sameTarget(a, b dbTarget) bool {
	if a.kind != b.kind {
		return false
	}
	if a.kind == kindSQLite {
		x, errA := filepath.Abs(a.loc)
		y, errB := filepath.Abs(b.loc)
		return errA == nil && errB == nil && x == y
	}
	return a.loc == b.loc
}

func (a *app) printCopyReport(r copyJSON) {
	c := r.Copied
	fmt.Fprintf(a.stdout, "copied %s → %s\n", r.From, r.To)
	fmt.Fprintf(a.stdout, "  %d sources, %d documents (%d gone), %d chunks, %d vectors, %d sessions (%d messages) in %.1fs; crawl frontiers are not copied\n\n",
		c.Sources, c.Documents+c.Gone, c.Gone, c.Chunks, c.Vectors, c.Sessions, c.Messages, r.Seconds)
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tSOURCE\tDESTINATION\t")
	row := func(name string, x, y any) {
		mark := ""
		if fmt.Sprint(x) != fmt.Sprint(y) {
			mark = "≠"
		}
		fmt.Fprintf(tw, "%s\t%v\t%v\t%s\n", name, x, y, mark)
	}
	s, d := r.Source, r.Destination
	row("sources", s.Sources, d.Sources)
	row("documents", s.Documents, d.Documents)
	row("gone", s.Gone, d.Gone)
	row("chunks", s.Chunks, d.Chunks)
	row("sessions", s.Sessions, d.Sessions)
	row("messages", s.Messages, d.Messages)
	// Hashes cut to 16 hex digits to fit a terminal; --json prints them whole.
	row("sources hash", short(s.SourcesHash), short(d.SourcesHash))
	row("documents hash", short(s.DocumentsHash), short(d.DocumentsHash))
	row("sessions hash", short(s.SessionsHash), short(d.SessionsHash))
	dv := map[string]transfer.VectorSummary{}
	for _, v := range d.Vectors {
		dv[fmt.Sprintf("%s/%d", v.Model, v.Dims)] = v
	}
	for _, v := range s.Vectors {
		name := fmt.Sprintf("%s/%d", v.Model, v.Dims)
		w := dv[name]
		row("vectors "+name, v.Vectors, w.Vectors)
		row("vectors "+name+" hash", short(v.Hash), short(w.Hash))
	}
	tw.Flush()
	if r.Verified {
		fmt.Fprintln(a.stdout, "\nverified: the copy matches its source")
		return
	}
	fmt.Fprintln(a.stdout, "\nNOT verified: the copy differs from its source:")
	for _, m := range r.Mismatches {
		fmt.Fprintf(a.stdout, "  %s\n", m)
	}
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}
