package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"

	"github.com/spf13/cobra"

	"panther"
	"panther/kb"
)

func (a *app) evalCommand() *cobra.Command {
	var qrelsPath, base, perQueryPath, modeFlag string
	var k int
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "eval --qrels FILE",
		Short: "Measure retrieval quality against a ground truth (Recall@k, MRR@10, nDCG@10, Hit@1)",
		Long: `Measure how well search finds what a ground truth says is relevant.

The qrels FILE holds one JSON object per line:
  {"query": "partial index", "relevant": ["indexes-partial.html#INDEXES-PARTIAL", "https://host/page.html"]}
Relative entries are resolved against --base. Metrics are averaged over all queries at page level
(the hits' distinct page URLs in rank order, cut at k) and, for queries whose relevant entries carry
#anchors, at section level (url#anchor must match).`,
		Example: `  panther eval --qrels bench/testdata/pg15-bookindex.qrels.jsonl --base http://127.0.0.1:8080/ --json`,
		Args:    exactArgs(0, "no arguments (the ground truth comes with --qrels)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if qrelsPath == "" {
				return usageError{fmt.Errorf("eval needs --qrels FILE (see 'panther eval --help')")}
			}
			if k < 1 || k > panther.MaxK {
				return panther.Invalidf("--k must be between 1 and %d, got %d", panther.MaxK, k)
			}
			var baseURL *url.URL
			if base != "" {
				u, err := url.Parse(base)
				if err != nil || !u.IsAbs() {
					return panther.Invalidf("--base %q is not an absolute URL", base)
				}
				baseURL = u
			}
			f, err := os.Open(qrelsPath)
			if err != nil {
				return panther.Invalidf("--qrels: %v", err)
			}
			defer f.Close()
			qrels, err := kb.ReadQrels(f, baseURL)
			if err != nil {
				return fmt.Errorf("%s: %w", qrelsPath, err)
			}
			if len(qrels) == 0 {
				return panther.Invalidf("%s holds no queries", qrelsPath)
			}
			db, svc, err := a.openKB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			mode, err := panther.ParseSearchMode(modeFlag)
			if err != nil {
				return err
			}
			report, err := kb.Evaluate(cmd.Context(), modeSearcher{svc, mode}, qrels, k)
			if err != nil {
				return err
			}
			if perQueryPath != "" {
				if err := writePerQuery(perQueryPath, report); err != nil {
					return err
				}
			}
			if jsonOut {
				return a.printJSON(report)
			}
			printReport(a, report)
			return nil
		},
	}
	cmd.Flags().StringVar(&qrelsPath, "qrels", "", "the ground truth: JSON lines of {\"query\", \"relevant\": [URL or URL#anchor, ...]}")
	cmd.Flags().StringVar(&modeFlag, "mode", "", "lexical, vector or hybrid, as for search")
	cmd.Flags().IntVar(&a.perPage, "per-page", 0, "at most this many passages of one page, as for search")
	cmd.Flags().StringVar(&base, "base", "", "resolve relative URLs in the qrels against this URL")
	cmd.Flags().IntVar(&k, "k", 10, "the cut-off for Recall@k (and the number of hits asked for)")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print one JSON document")
	cmd.Flags().StringVar(&perQueryPath, "per-query", "", "also write every query's ranked lists and scores to this file (JSON lines), to find the queries that pull an average down")
	return cmd
}

func writePerQuery(path string, r kb.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--per-query: %w", err)
	}
	enc := json.NewEncoder(f)
	enc.SetEscapeHTML(false)
	for _, q := range r.PerQuery {
		if err := enc.Encode(q); err != nil {
			f.Close()
			return fmt.Errorf("--per-query %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--per-query %s: %w", path, err)
	}
	return nil
}

func printReport(a *app, r kb.Report) {
	fmt.Fprintf(a.stdout, "%d queries\n", r.Queries)
	row := func(level string, m kb.Metrics) {
		fmt.Fprintf(a.stdout, "%-8s recall@%d %.3f   mrr@10 %.3f   ndcg@10 %.3f   hit@1 %.3f\n", level, r.K, m.Recall, m.MRR, m.NDCG, m.Hit1)
	}
	row("page", r.Page)
	if r.Section != nil {
		row("section", *r.Section)
		fmt.Fprintf(a.stdout, "(section level over the %d queries whose ground truth names sections)\n", r.SectionQueries)
	}
}

// modeSearcher runs every search of an evaluation in one mode.
type modeSearcher struct {
	s    kb.Searcher
	mode panther.SearchMode
}

func (m modeSearcher) Search(ctx context.Context, q panther.Query) ([]panther.Hit, error) {
	q.Mode = m.mode
	return m.s.Search(ctx, q)
}
