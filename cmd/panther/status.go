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
			path, err := a.dbPath()
			if err != nil {
				return err
			}
			db, err := a.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			st, err := db.Stats(cmd.Context())
			if err != nil {
				return fmt.Errorf("read status: %w", err)
			}
			if jsonOut {
				return a.printJSON(map[string]any{"db": path, "stats": st})
			}
			fmt.Fprintf(a.stdout, "database   %s (%.1f MB)\nsources    %d\ndocuments  %d current, %d gone\nchunks     %d\n",
				path, float64(st.SizeBytes)/(1<<20), st.Sources, st.Documents, st.Gone, st.Chunks)
			return nil
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print one JSON document")
	return cmd
}
