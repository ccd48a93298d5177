package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
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
	Found       string    `json:"found,omitempty"`
}

type searchJSON struct {
	Query string          `json:"query"`
	Mode  string          `json:"mode"`
	Hits  []searchHitJSON `json:"hits"`
}

func (a *app) searchCommand() *cobra.Command {
	var k int
	var jsonOut bool
	var modeFlag, sourceFlag, sinceFlag string
	var filter panther.Filter
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
			mode, err := panther.ParseSearchMode(modeFlag)
			if err != nil {
				return err
			}
			if sinceFlag != "" {
				if filter.FetchedAfter, err = parseSince(sinceFlag, time.Now()); err != nil {
					return err
				}
			}
			q := panther.Query{Text: strings.Join(args, " "), K: k, Mode: mode, Filter: filter}
			if err := q.Validate(); err != nil {
				return err
			}
			db, svc, err := a.openKB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			if sourceFlag != "" {
				if q.SourceID, err = sourceID(cmd.Context(), db, sourceFlag); err != nil {
					return err
				}
			}
			if q.Mode == "" {
				q.Mode = svc.DefaultMode()
			}
			hits, err := svc.Search(cmd.Context(), q)
			if err != nil {
				return fmt.Errorf("search %q: %w", q.Text, err)
			}
			if q.Mode != panther.ModeLexical {
				// Say so when vectors cover only part of the passages: those without one can only be
				// found by their words.
				if with, total, err := svc.Coverage(cmd.Context()); err == nil && with < total {
					fmt.Fprintf(a.stderr, "panther: note: vectors cover %d of %d passages; run 'panther embed' to cover the rest\n", with, total)
				}
			}
			if jsonOut {
				out := toSearchJSON(q.Text, hits)
				out.Mode = string(q.Mode)
				return a.printJSON(out)
			}
			printHits(a.stdout, q.Text, hits)
			return nil
		},
	}
	cmd.Flags().IntVar(&k, "k", panther.DefaultK, "number of hits")
	cmd.Flags().IntVar(&a.perPage, "per-page", 0, "at most this many passages of one page (default 1; -1: no limit)")
	cmd.Flags().StringVar(&sourceFlag, "source", "", "only passages of pages crawled from this source (its seed, as given to crawl)")
	cmd.Flags().StringVar(&filter.URLPrefix, "prefix", "", "only passages of pages whose URL starts with this")
	cmd.Flags().StringVar(&sinceFlag, "since", "", "only passages of pages fetched after this: a date (2026-11-01, RFC 3339) or an age (36h, 7d)")
	cmd.Flags().StringVar(&modeFlag, "mode", "", "lexical (words), vector (meaning) or hybrid (both); default hybrid when an embedder is configured")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print one JSON document")
	return cmd
}

func toSearchJSON(query string, hits []panther.Hit) searchJSON {
	out := searchJSON{Query: query, Hits: make([]searchHitJSON, len(hits))}
	for i, h := range hits {
		out.Hits[i] = searchHitJSON{
			URL: h.URL, Title: h.Title, Heading: h.Heading, Anchor: h.Anchor, Snippet: h.Snippet,
			Score: h.Score, FetchedAt: h.FetchedAt, ContentHash: h.ContentHash, Found: h.Found,
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
		found := ""
		if h.Found != "" {
			found = ", found by " + h.Found
		}
		fmt.Fprintf(w, "%d. %s\n   %s\n   %s\n   (score %.2f%s, fetched %s)\n\n", i+1, where, h.Link(),
			oneLine(h.Snippet), h.Score, found, h.FetchedAt.Local().Format("2006-01-02 15:04"))
	}
}

// parseSince reads --since: an RFC 3339 time, a date, or an age counted back from now.
func parseSince(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", v, time.Local); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, panther.Invalidf("--since %q: want a date (2026-11-01), an RFC 3339 time or an age (36h, 7d)", v)
}

// sourceID finds the source crawled from seed.
func sourceID(ctx context.Context, db interface {
	Sources(context.Context) ([]panther.Source, error)
}, seed string) (int64, error) {
	sources, err := db.Sources(ctx)
	if err != nil {
		return 0, fmt.Errorf("list sources: %w", err)
	}
	want := []string{strings.TrimSuffix(seed, "/")}
	// Local folders are stored as file:// URLs of their absolute path.
	if !strings.Contains(seed, "://") {
		if abs, err := filepath.Abs(seed); err == nil {
			want = append(want, "file://"+filepath.ToSlash(abs))
		}
	}
	for _, s := range sources {
		if slices.Contains(want, strings.TrimSuffix(s.URL, "/")) {
			return s.ID, nil
		}
	}
	return 0, panther.NotFoundf("no source %s (crawl it first)", seed)
}
