package main

import (
	"fmt"
	"math"
	"net/url"
	"os"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"panther"
	"panther/kb"
)

// benchSearchCommand measures search latency over a query set, for bench/run.sh. It is hidden because
// it is a measuring tool, not a user feature; the figures it prints go into BENCHMARKS.md.
func (a *app) benchSearchCommand() *cobra.Command {
	var qrelsPath, modeFlag string
	var k int
	var jsonOut bool
	cmd := &cobra.Command{
		Use:    "bench-search --qrels FILE",
		Short:  "Measure search latency over the queries of a qrels file",
		Hidden: true,
		Args:   exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			mode, err := panther.ParseSearchMode(modeFlag)
			if err != nil {
				return err
			}
			f, err := os.Open(qrelsPath)
			if err != nil {
				return panther.Invalidf("--qrels: %v", err)
			}
			defer f.Close()
			// Only the queries matter here, so relative relevance entries resolve against a placeholder.
			qrels, err := kb.ReadQrels(f, &url.URL{Scheme: "http", Host: "localhost", Path: "/"})
			if err != nil {
				return fmt.Errorf("%s: %w", qrelsPath, err)
			}
			db, svc, err := a.openKB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			// One pass to warm the page cache, then the measured pass.
			lat := make([]time.Duration, 0, len(qrels))
			for pass := 0; pass < 2; pass++ {
				for _, q := range qrels {
					start := time.Now()
					if _, err := svc.Search(cmd.Context(), panther.Query{Text: q.Query, K: k, Mode: mode}); err != nil {
						return fmt.Errorf("search %q: %w", q.Query, err)
					}
					if pass == 1 {
						lat = append(lat, time.Since(start))
					}
				}
			}
			if len(lat) == 0 {
				return panther.Invalidf("%s holds no queries", qrelsPath)
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			pct := func(p float64) float64 {
				i := int(math.Ceil(p*float64(len(lat)))) - 1
				return float64(lat[max(i, 0)].Microseconds()) / 1000
			}
			res := map[string]any{"queries": len(lat), "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99), "max_ms": pct(1)}
			if jsonOut {
				return a.printJSON(res)
			}
			fmt.Fprintf(a.stdout, "%d queries: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n", len(lat), pct(.5), pct(.9), pct(.99), pct(1))
			return nil
		},
	}
	cmd.Flags().StringVar(&qrelsPath, "qrels", "", "queries (JSON lines with a \"query\" field)")
	cmd.Flags().IntVar(&k, "k", 10, "hits per search")
	cmd.Flags().StringVar(&modeFlag, "mode", "", "lexical, vector or hybrid")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print one JSON document")
	return cmd
}
