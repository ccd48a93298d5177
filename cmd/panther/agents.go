package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"panther/agent"
	"panther/crawl"
	"panther/internal/netguard"
	"panther/kb"
)

// agentDirs are where agent definitions are read from, later ones overriding earlier ones by name:
// the config's [agents] dirs, else the user's then the project's.
func (a *app) agentDirs() ([]string, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	if len(cfg.Agents.Dirs) > 0 {
		return cfg.Agents.Dirs, nil
	}
	var dirs []string
	configHome := a.getenv("XDG_CONFIG_HOME")
	if configHome == "" {
		if home := a.getenv("HOME"); home != "" {
			configHome = filepath.Join(home, ".config")
		}
	}
	if configHome != "" {
		dirs = append(dirs, filepath.Join(configHome, "panther", "agents"))
	}
	return append(dirs, filepath.Join(".panther", "agents")), nil
}

func (a *app) agentDefinitions() (map[string]agent.Definition, error) {
	dirs, err := a.agentDirs()
	if err != nil {
		return nil, err
	}
	return agent.LoadDefinitions(dirs...)
}

// webPolicy is the [web] policy every request made on an agent's behalf goes through.
func (a *app) webPolicy() (netguard.Policy, error) {
	cfg, err := a.config()
	if err != nil {
		return netguard.Policy{}, err
	}
	return netguard.ParsePolicy(cfg.Web.Allow)
}

// agentRuntime wires the agents to this process's tools, models and limits.
func (a *app) agentRuntime(db kbStore, svc *kb.Service, ms *models) (*agent.Runtime, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	defs, err := a.agentDefinitions()
	if err != nil {
		return nil, err
	}
	policy, err := a.webPolicy()
	if err != nil {
		return nil, err
	}
	tools := []agent.Tool{
		agent.KBSearch(svc),
		agent.KBRead(svc),
		agent.WebFetch(agent.WebFetchOptions{Client: policy.Client(agent.WebFetchDefaultTimeout, agent.WebFetchMaxRedirects), UserAgent: crawl.DefaultUserAgent()}),
		agent.Crawl(&siteCrawler{db: db, svc: svc, transport: policy.Transport()}),
	}
	byName := make(map[string]agent.Tool, len(tools))
	for _, t := range tools {
		byName[t.Spec().Name] = t
	}
	ac := cfg.Agents
	return &agent.Runtime{
		Definitions:  defs,
		Tools:        byName,
		Model:        ms.Resolve,
		MaxSubagents: ac.MaxSubagents,
		MaxDepth:     ac.MaxDepth,
		Budget:       agent.Budget{MaxSteps: ac.MaxSteps, MaxTokens: ac.MaxTokens, MaxDuration: ac.Timeout},
	}, nil
}

var knownTools = []string{"kb_search", "kb_read", "web_fetch", "crawl", "task"}

func (a *app) agentsCommand() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "agents",
		Short: "List the agents 'panther ask --agent' can run, with their tools",
		Long: `List the agents: the built-in general and researcher, then the markdown definitions in
~/.config/panther/agents and ./.panther/agents (or the config's [agents] dirs), later ones overriding
earlier ones by name. A definition is a markdown file whose body is the system prompt, with YAML front
matter as OpenCode uses for its agents:

  ---
  description: Reviews SQL for performance problems   # required
  mode: all              # primary, subagent or all
  model: zai/glm-4.6     # provider/model from the config file; default the config's model
  temperature: 0.2
  steps: 15              # model calls per run
  tools:                 # which tools it may see
    "*": false
    kb_search: true
    kb_read: true
  permission:            # allow, deny or ask (ask is denied when no person can approve)
    web_fetch: deny
  ---
  You review SQL...

Tools: kb_search, kb_read, web_fetch, crawl and task (sub-agents).`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			defs, err := a.agentDefinitions()
			if err != nil {
				return err
			}
			out := agentInfos(defs)
			if jsonOut {
				return a.printJSON(out)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tMODE\tMODEL\tTOOLS\tDESCRIPTION")
			for _, j := range out {
				model := j.Model
				if model == "" {
					model = "(default)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", j.Name, j.Mode, model, strings.Join(j.Tools, ","), trimForDisplay(oneLine(j.Description), 70))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print one JSON document")
	return cmd
}
