package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) statusCommand() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what the knowledge base holds: sources, documents, chunks, size",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, svc, err := a.openKB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			kind, where := describeStore(db)
			st, err := db.Stats(cmd.Context())
			if err != nil {
				return fmt.Errorf("read status: %w", err)
			}
			emb := map[string]any{"model": "none"}
			if e := svc.Embedder(); e != nil {
				with, total, err := svc.Coverage(cmd.Context())
				if err != nil {
					return fmt.Errorf("read status: %w", err)
				}
				emb = map[string]any{"model": e.Model(), "dimensions": e.Dimensions(), "vectors": with, "searchable_chunks": total}
				if m, ok := db.(interface{ VectorSearch() string }); ok {
					emb["vector_search"] = m.VectorSearch()
				}
			}
			if jsonOut {
				return a.printJSON(map[string]any{"db": where, "store": kind, "stats": st, "embedder": emb, "default_mode": svc.DefaultMode()})
			}
			fmt.Fprintf(a.stdout, "database   %s %s (%.1f MB)\nsources    %d\ndocuments  %d current, %d gone\nchunks     %d\n",
				kind, where, float64(st.SizeBytes)/(1<<20), st.Sources, st.Documents, st.Gone, st.Chunks)
			if e := svc.Embedder(); e != nil {
				how := ""
				if v, ok := emb["vector_search"]; ok {
					how = fmt.Sprintf(", searched by %s", v)
				}
				fmt.Fprintf(a.stdout, "embedder   %s, %d dimensions\nvectors    %d of %d searchable passages%s\nsearch     %s by default\n",
					e.Model(), e.Dimensions(), emb["vectors"], emb["searchable_chunks"], how, svc.DefaultMode())
			} else {
				fmt.Fprintf(a.stdout, "embedder   none (lexical search only)\n")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print one JSON document")
	return cmd
}
