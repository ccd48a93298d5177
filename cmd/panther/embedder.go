package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"panther"
	"panther/embed"
)

// defaultEmbedder is the embedder used when none is named: see BENCHMARKS.md for the measurement
// that chose it.
const defaultEmbedder = "none"

// embedderFlags name the embedder; the API key of a remote one comes only from the environment, so
// that it never shows in a process list or a shell history.
type embedderFlags struct {
	kind   string
	url    string
	model  string
	dims   int
	weight float64
}

func (a *app) addEmbedderFlags(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVar(&a.embed.kind, "embedder", "", "what turns passages into vectors: builtin (offline GloVe word vectors), openai (any OpenAI-compatible /v1/embeddings server) or none (default $PANTHER_EMBEDDER, else "+defaultEmbedder+")")
	f.StringVar(&a.embed.url, "embed-url", "", "base URL of the OpenAI-compatible server, e.g. http://localhost:11434/v1 (default $PANTHER_EMBED_URL); its API key is read from $PANTHER_EMBED_API_KEY")
	f.StringVar(&a.embed.model, "embed-model", "", "the server's embedding model (default $PANTHER_EMBED_MODEL)")
	f.IntVar(&a.embed.dims, "embed-dims", 0, "the model's vector length (default $PANTHER_EMBED_DIMS)")
	f.Float64Var(&a.embed.weight, "vector-weight", 0, "the vector side's share of a hybrid score, 0 to 1 (default 0.1)")
}

// embedder builds the configured embedder (flags, then PANTHER_EMBED* variables, then the config
// file's [embedder] table); nil when it is "none".
func (a *app) embedder() (panther.Embedder, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	ec := cfg.Embedder
	kind := firstNonEmpty(a.embed.kind, a.getenv("PANTHER_EMBEDDER"), ec.Kind, defaultEmbedder)
	switch kind {
	case "none":
		return nil, nil
	case "builtin":
		return embed.NewGloVe()
	case "openai":
		dims := a.embed.dims
		if dims == 0 {
			if v := a.getenv("PANTHER_EMBED_DIMS"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, panther.Invalidf("PANTHER_EMBED_DIMS=%q is not a number", v)
				}
				dims = n
			}
		}
		if dims == 0 {
			dims = ec.Dimensions
		}
		key := a.getenv("PANTHER_EMBED_API_KEY")
		if key == "" && ec.APIKey != "" {
			if key, err = a.resolveSecret(context.Background(), ec.APIKey, true); err != nil {
				return nil, fmt.Errorf("embedder.api_key: %w", err)
			}
		}
		return embed.NewOpenAI(embed.OpenAIOptions{
			BaseURL:    firstNonEmpty(a.embed.url, a.getenv("PANTHER_EMBED_URL"), ec.URL),
			Model:      firstNonEmpty(a.embed.model, a.getenv("PANTHER_EMBED_MODEL"), ec.Model),
			APIKey:     key,
			Dimensions: dims,
		})
	}
	return nil, panther.Invalidf("--embedder %q: want builtin, openai or none", kind)
}

// vectorWeight is --vector-weight, else the config file's, else 0 (kb's default).
func (a *app) vectorWeight() (float64, error) {
	if a.embed.weight != 0 {
		return a.embed.weight, nil
	}
	cfg, err := a.config()
	if err != nil {
		return 0, err
	}
	if w := cfg.Embedder.VectorWeight; w != nil {
		return *w, nil
	}
	return 0, nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// backfill embeds the passages without a vector, with a progress bar on a terminal.
func (a *app) backfill(cmd *cobra.Command, svc interface {
	Backfill(ctx context.Context, progress func(done, total int)) (int, error)
}, quiet bool) (int, error) {
	var bar *progressbar.ProgressBar
	var progress func(done, total int)
	if !quiet && isTerminal(a.stderr) {
		bar = progressbar.NewOptions(-1,
			progressbar.OptionSetWriter(a.stderr),
			progressbar.OptionSetDescription("embedding passages"),
			progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		progress = func(done, total int) {
			bar.ChangeMax(total)
			_ = bar.Set(done)
		}
	}
	n, err := svc.Backfill(cmd.Context(), progress)
	if bar != nil {
		_ = bar.Finish()
	}
	return n, err
}

func (a *app) embedCommand() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "embed",
		Short: "Give every passage without one a vector from the configured embedder",
		Long: `Embed the passages that have no vector from the configured embedder. Crawls do this by
themselves; run it after changing the embedder (--embedder, $PANTHER_EMBEDDER) to re-embed the whole
knowledge base. It commits batch by batch: an interrupted run goes on where it stopped, and search
keeps working meanwhile on the vectors that exist.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, svc, err := a.openKB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			if svc.Embedder() == nil {
				return panther.Invalidf("no embedder is configured (--embedder none)")
			}
			n, err := a.backfill(cmd, svc, quiet)
			if err != nil {
				return err
			}
			with, total, err := svc.Coverage(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "embedded %d passages with %s; %d of %d passages have vectors\n", n, svc.Embedder().Model(), with, total)
			return nil
		},
	}
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no progress bar")
	return cmd
}
