package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"panther"
)

// searchHitJSON is one hit of `search --json`; its field names are part of the command-line contract.
type searchHitJSON struct {
	URL         string    `json:"url"`
	Title       string    `json:"title"`
	Heading     string    `json:"heading"`
	Anchor      string    `json:"anchor"`
	Snippet     string    `json:"snippet"`
	Score       float64   `json:"score"`
	FetchedAt   time.Time `json:"fetched_at"`
	ContentHash string    `json:"content_hash"`
}

type searchJSON struct {
	Query string          `json:"query"`
	Hits  []searchHitJSON `json:"hits"`
}

func (a *app) searchCommand() *cobra.Command {
	var k int
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "search QUERY...",
		Short: "Search the knowledge base; every passage comes with its citation",
		Long: `Search the knowledge base for passages that answer QUERY (plain words; quotes and operators
are taken as words). Each hit names the page, the section (heading path) and its url#anchor link,
when the page was fetched, and a snippet of the passage.`,
		Example: `  panther search "partial index on a boolean column"
  panther search --k 3 --json vacuum freeze`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Errorf("search expects a QUERY (see 'panther search --help')")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			q := panther.Query{Text: strings.Join(args, " "), K: k}
			if err := q.Validate(); err != nil {
				return err
			}
			db, svc, err := a.openKB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			hits, err := svc.Search(cmd.Context(), q)
			if err != nil {
				return fmt.Errorf("search %q: %w", q.Text, err)
			}
			if jsonOut {
				return a.printJSON(toSearchJSON(q.Text, hits))
			}
			printHits(a.stdout, q.Text, hits)
			return nil
		},
	}
	cmd.Flags().IntVar(&k, "k", panther.DefaultK, "number of hits")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print one JSON document")
	return cmd
}

func toSearchJSON(query string, hits []panther.Hit) searchJSON {
	out := searchJSON{Query: query, Hits: make([]searchHitJSON, len(hits))}
	for i, h := range hits {
		out.Hits[i] = searchHitJSON{
			URL: h.URL, Title: h.Title, Heading: h.Heading, Anchor: h.Anchor, Snippet: h.Snippet,
			Score: h.Score, FetchedAt: h.FetchedAt, ContentHash: h.ContentHash,
		}
	}
	return out
}

func printHits(w io.Writer, query string, hits []panther.Hit) {
	if len(hits) == 0 {
		fmt.Fprintf(w, "no passages match %q\n", query)
		return
	}
	for i, h := range hits {
		where := h.Title
		if h.Heading != "" && h.Heading != h.Title {
			where += " — " + h.Heading
		}
		fmt.Fprintf(w, "%d. %s\n   %s\n   %s\n   (score %.2f, fetched %s)\n\n", i+1, where, h.Link(),
			oneLine(h.Snippet), h.Score, h.FetchedAt.Local().Format("2006-01-02 15:04"))
	}
}
