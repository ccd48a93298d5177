package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"panther"
	"panther/crawl"
	"panther/jobs"
)

// postgresTarget is the --db of a command that needs the shared PostgreSQL store.
func (a *app) postgresTarget(command string) (dbTarget, error) {
	t, err := a.dbTarget()
	if err != nil {
		return dbTarget{}, err
	}
	if t.kind != kindPostgres {
		return dbTarget{}, panther.Invalidf("%s needs a PostgreSQL knowledge base (--db postgres://...); %s is a SQLite file, which one process works on", command, t.display())
	}
	return t, nil
}

// cluster opens the store and a River cluster over it with workers taking jobs (0: none, for a
// process that only enqueues or schedules).
func (a *app) cluster(ctx context.Context, t dbTarget, workers int, lease time.Duration, log *slog.Logger) (kbStore, *jobs.Cluster, error) {
	db, svc, err := a.openKB(ctx)
	if err != nil {
		return nil, nil, err
	}
	// Workers crawl what the owner's own commands enqueue, as 'panther crawl' does: with the
	// crawler's own transport, not the address guard of agents' requests.
	c, err := jobs.NewCluster(ctx, t.loc, jobs.Options{
		Store: db, KB: svc, Workers: workers, RescueAfter: lease, Logger: log,
		Crawl: crawl.Options{HostRate: defaultRemoteRate, Logger: log},
	})
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("job cluster on %s: %w", t.display(), err)
	}
	return db, c, nil
}

func (a *app) workerCommand() *cobra.Command {
	var concurrency int
	var lease time.Duration
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Take crawl and embedding jobs from a shared PostgreSQL knowledge base",
		Long: `panther worker joins the hosts that share one PostgreSQL knowledge base and takes its jobs:
page fetches, extraction and indexing of crawls, and embedding. Run it on any number of hosts: each
page is fetched once per crawl, the per-host request rate holds across all workers together, and the
jobs of a worker that dies are taken over by the others once its lease (--lease) has passed.
Scheduled re-crawls ('panther sources schedule') run once across the cluster.

SIGINT or SIGTERM stops it after the jobs in hand, or at the end of their time.`,
		Example: `  panther --db postgres://panther@db.tailnet/panther worker
  panther --db "$PANTHER_DB" worker --concurrency 16 --lease 2m`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if concurrency < 1 {
				return panther.Invalidf("--concurrency must be at least 1, got %d", concurrency)
			}
			if lease < 0 {
				return panther.Invalidf("--lease must not be negative, got %s", lease)
			}
			t, err := a.postgresTarget("panther worker")
			if err != nil {
				return err
			}
			log, err := a.logger("info")
			if err != nil {
				return err
			}
			db, c, err := a.cluster(ctx, t, concurrency, lease, log)
			if err != nil {
				return err
			}
			defer db.Close()
			defer c.Close()
			if err := c.Start(ctx); err != nil {
				return fmt.Errorf("start worker: %w", err)
			}
			log.Info("panther worker taking jobs", "db", t.display(), "concurrency", concurrency)
			<-ctx.Done()
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := c.Stop(stopCtx); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("stop worker: %w", err)
			}
			log.Info("panther worker stopped")
			return nil
		},
	}
	cmd.Flags().IntVar(&concurrency, "concurrency", 8, "jobs this worker runs at once")
	cmd.Flags().DurationVar(&lease, "lease", 0, "how long a job may run before other workers take it over from a worker presumed dead (default: the jobs package's)")
	return cmd
}

func (a *app) sourcesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sources",
		Short: "List the crawled sources and schedule their re-crawls",
	}
	var jsonOut bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the sources (seeds) of the knowledge base and their schedules",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			db, err := a.openStore(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			sources, err := db.Sources(ctx)
			if err != nil {
				return err
			}
			schedules, err := a.schedules(ctx, db)
			if err != nil {
				return err
			}
			if jsonOut {
				return a.printJSON(map[string]any{"sources": sources, "schedules": schedules})
			}
			every := map[int64]string{}
			for _, s := range schedules {
				every[s.SourceID] = s.Spec
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tURL\tLAST CRAWLED\tEVERY")
			for _, s := range sources {
				last := "never"
				if !s.LastCrawlAt.IsZero() {
					last = s.LastCrawlAt.Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.ID, s.URL, last, every[s.ID])
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&jsonOut, "json", false, "print one JSON document")
	var every string
	add := &cobra.Command{
		Use:   "add URL [--every CRON]",
		Short: "Add a source, optionally re-crawled on a schedule",
		Long: `Add a source (a site's URL) to the knowledge base without crawling it now, and with --every
give it a re-crawl schedule as a cron expression in UTC ("0 3 * * *": every day at 03:00;
"CRON_TZ=Europe/Berlin 0 3 * * *" for another zone). Schedules run inside 'panther serve' on a SQLite
knowledge base, and once across all 'panther worker' processes on a PostgreSQL one.`,
		Example: `  panther sources add https://go.dev/doc/ --every "0 3 * * *"`,
		Args:    exactArgs(1, "a URL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if every != "" {
				if _, err := jobs.ParseSpec(every); err != nil {
					return panther.Invalidf("--every %q: %v", every, err)
				}
			}
			seed, err := crawl.Normalize(args[0])
			if err != nil {
				return panther.Invalidf("source %q: %v", args[0], err)
			}
			db, err := a.openStore(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			src, err := db.AddSource(ctx, seed)
			if err != nil {
				return err
			}
			msg := fmt.Sprintf("source %d: %s", src.ID, src.URL)
			if every != "" {
				s, err := a.setSchedule(ctx, db, src.ID, every)
				if err != nil {
					return err
				}
				msg += fmt.Sprintf(", re-crawled on %q (next %s UTC)", s.Spec, s.NextRun.UTC().Format(time.DateTime))
			}
			_, err = fmt.Fprintln(a.stdout, msg)
			return err
		},
	}
	add.Flags().StringVar(&every, "every", "", "re-crawl on this cron schedule (UTC), e.g. \"0 3 * * *\"")
	cmd.AddCommand(list, add)
	return cmd
}

// schedules lists the re-crawl schedules of either store kind.
func (a *app) schedules(ctx context.Context, db kbStore) ([]jobs.Schedule, error) {
	if kind, where := describeStore(db); kind == kindSQLite {
		s, err := jobs.OpenScheduler(ctx, where, nil, a.storeLogger())
		if err != nil {
			return nil, err
		}
		defer s.Close()
		return s.Schedules(ctx)
	}
	t, err := a.postgresTarget("schedules")
	if err != nil {
		return nil, err
	}
	cdb, c, err := a.cluster(ctx, t, 0, 0, a.storeLogger())
	if err != nil {
		return nil, err
	}
	defer cdb.Close()
	defer c.Close()
	return c.Schedules(ctx)
}

func (a *app) setSchedule(ctx context.Context, db kbStore, sourceID int64, spec string) (jobs.Schedule, error) {
	if kind, where := describeStore(db); kind == kindSQLite {
		s, err := jobs.OpenScheduler(ctx, where, nil, a.storeLogger())
		if err != nil {
			return jobs.Schedule{}, err
		}
		defer s.Close()
		return s.SetSchedule(ctx, sourceID, spec, jobs.CrawlRequest{})
	}
	t, err := a.postgresTarget("schedules")
	if err != nil {
		return jobs.Schedule{}, err
	}
	cdb, c, err := a.cluster(ctx, t, 0, 0, a.storeLogger())
	if err != nil {
		return jobs.Schedule{}, err
	}
	defer cdb.Close()
	defer c.Close()
	return c.SetSchedule(ctx, sourceID, spec, jobs.CrawlRequest{})
}
