package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"panther"
	"panther/agent"
	"panther/mcp"
)

func (a *app) mcpCommand() *cobra.Command {
	var write, verbose bool
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve the knowledge base to MCP clients (editors, agents) over stdio",
		Long: `Serve the knowledge base over the Model Context Protocol on stdin and stdout, for MCP clients
that start panther as a subprocess. stdout carries the protocol only; logs go to stderr. The server
ends when the client closes stdin.

Tools: search (passages with their url#anchor citations), read (a page or URL#anchor section as
markdown), list_sources; ask (the general agent answers, kept as a session) when a model is
configured; with --write also add_source and crawl, which grows the knowledge base through the same
guarded network access as agents' crawls ([web] allow in the config file). Resources: every stored
page as panther://doc/URL.

A client configuration: {"command": "panther", "args": ["mcp"]}.`,
		Example: `  panther mcp
  panther --db ~/docs.db mcp --write`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			level := "warn"
			if verbose {
				level = "info"
			}
			// Logs go to stderr: stdout belongs to the protocol.
			logger, err := a.logger(level)
			if err != nil {
				return err
			}
			db, svc, err := a.openKB(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			opts := mcp.Options{AllowWrite: write, Version: version, Logger: logger}
			if write {
				policy, err := a.webPolicy()
				if err != nil {
					return err
				}
				opts.Crawler = &siteCrawler{db: db, svc: svc, transport: policy.Transport()}
			}
			ms, err := a.models("")
			if err != nil {
				return err
			}
			if ms.configured() {
				rt, err := a.agentRuntime(db, svc, ms)
				if err != nil {
					return err
				}
				opts.Asker = sessionAsker{sessions: &agent.Sessions{Runtime: rt, Store: db}}
			}
			srv, err := mcp.NewServer(svc, db, opts)
			if err != nil {
				return err
			}
			err = srv.ServeIO(ctx, cmd.InOrStdin(), a.stdout)
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				// Interrupted (SIGINT, SIGTERM): a normal way for a client to stop its server.
				return nil
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&write, "write", false, "offer the add_source and crawl tools, which grow the knowledge base (default: read-only)")
	cmd.Flags().BoolVar(&verbose, "verbose", false, "log each session's start and end on stderr")
	return cmd
}

// sessionAsker answers MCP ask calls with the general agent, each as a stored session.
type sessionAsker struct{ sessions *agent.Sessions }

func (s sessionAsker) Ask(ctx context.Context, question string) (string, []panther.Citation, error) {
	_, res, err := s.sessions.Ask(ctx, agent.AskRequest{Agent: agent.DefaultAgent, Prompt: question})
	return res.Answer, res.Citations, err
}
