package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"panther"
	"panther/kb"
)

func (a *app) docsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "docs",
		Short: "List the stored documents or show one as clean markdown",
	}
	cmd.AddCommand(a.docsListCommand(), a.docsShowCommand())
	return cmd
}

func (a *app) docsListCommand() *cobra.Command {
	var f panther.DocFilter
	var jsonOut bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List stored documents (URL, title, chunks, fetched)",
		Example: "  panther docs list --prefix https://www.postgresql.org/docs/15/ --limit 20",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.Limit < 0 || f.Offset < 0 {
				return panther.Invalidf("--limit and --offset must not be negative")
			}
			db, svc, err := a.openKB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			docs, err := svc.Documents(cmd.Context(), f)
			if err != nil {
				return fmt.Errorf("list documents: %w", err)
			}
			if jsonOut {
				if docs == nil {
					docs = []panther.Document{}
				}
				return a.printJSON(map[string]any{"documents": docs})
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "URL\tTITLE\tCHUNKS\tSTATUS\tFETCHED")
			for _, d := range docs {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", d.URL, truncate(d.Title, 60), d.Chunks, d.Status, d.FetchedAt.Local().Format("2006-01-02 15:04"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&f.URLPrefix, "prefix", "", "only documents whose URL starts with this")
	cmd.Flags().BoolVar(&f.IncludeGone, "gone", false, "include documents whose origin no longer serves them")
	cmd.Flags().IntVar(&f.Limit, "limit", 0, "at most this many documents (0: all)")
	cmd.Flags().IntVar(&f.Offset, "offset", 0, "skip this many documents first")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print one JSON document")
	return cmd
}

func (a *app) docsShowCommand() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "show URL",
		Short: "Print one stored document as clean markdown (URL#anchor: just that section)",
		Args:  exactArgs(1, "one URL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			pageURL, anchor, _ := strings.Cut(args[0], "#")
			db, svc, err := a.openKB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			doc, err := svc.Document(cmd.Context(), pageURL)
			if err != nil {
				return err
			}
			if anchor != "" {
				chunks, err := db.Chunks(cmd.Context(), doc.ID)
				if err != nil {
					return fmt.Errorf("read %s: %w", pageURL, err)
				}
				section := kb.SectionMarkdown(chunks, anchor)
				if section == "" {
					return panther.NotFoundf("%s has no section #%s", pageURL, anchor)
				}
				doc.Markdown = section
			}
			if jsonOut {
				return a.printJSON(doc)
			}
			_, err = fmt.Fprintln(a.stdout, strings.TrimRight(doc.Markdown, "\n"))
			return err
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the document (metadata and markdown) as one JSON document")
	return cmd
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
