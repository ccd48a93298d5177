package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"panther"
	"panther/agent"
	"panther/kb"
)

// howToConfigure is printed with extractive answers.
const howToConfigure = `no model is configured, so these are the best passages rather than an answer. To have an agent ` +
	`answer, name a provider and a model in the config file (see config.example.toml: a [providers.NAME] table ` +
	`with wire = "openai" or "anthropic", base_url and api_key, and model = "NAME/MODEL"), or pass ` +
	`--model NAME/MODEL for a configured provider.`

type askJSON struct {
	Question   string             `json:"question"`
	Answer     string             `json:"answer"`
	Citations  []panther.Citation `json:"citations"`
	Extractive bool               `json:"extractive"`
	Session    string             `json:"session,omitempty"`
	Agent      string             `json:"agent,omitempty"`
	StoppedBy  string             `json:"stopped_by,omitempty"`
	Usage      *panther.Usage     `json:"usage,omitempty"`
}

type askFlags struct {
	k         int
	jsonOut   bool
	agentName string
	model     string
	continued string
	quiet     bool
}

func (a *app) askCommand() *cobra.Command {
	var f askFlags
	cmd := &cobra.Command{
		Use:   "ask QUESTION...",
		Short: "Answer a question from the knowledge base, with numbered citations",
		Long: `Ask an agent a question. The general agent searches the knowledge base, reads what it needs,
may hand independent parts to sub-agents running in parallel, and answers with citations [n], listed
as url#anchor at the end. Each question is kept as a session: 'panther sessions list' shows them and
--continue ID asks a follow-up in the same conversation.

The model comes from the config file (model = "provider/model" and a [providers.NAME] table; see
config.example.toml), --model or $PANTHER_MODEL. Agents are the built-in general and researcher
(which may also fetch web pages and crawl sites into the knowledge base) and the markdown definitions
in ~/.config/panther/agents and ./.panther/agents ('panther agents' lists them).
A tool a definition marks "ask" runs only after you answer y on the terminal; with no terminal
(a script, --json) it is refused. With no model configured, ask still answers: with the best
passages, cited.`,
		Example: `  panther ask "how do I create a partial index?"
  panther ask --model ollama/qwen3 "why does VACUUM matter?"
  panther ask --agent researcher "how does Go's net/http handle HTTP/2?"
  panther ask --continue 3f2a "and for a unique index?"`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Errorf("ask expects a QUESTION (see 'panther ask --help')")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runAsk(cmd, strings.Join(args, " "), f)
		},
	}
	a.addAgentFlags(cmd, &f)
	return cmd
}

// runCommand is ask for any agent and any task, the long form.
func (a *app) runCommand() *cobra.Command {
	var f askFlags
	cmd := &cobra.Command{
		Use:   "run [--agent NAME] TASK...",
		Short: "Run an agent on a task, showing its tool calls and sub-agents as they happen",
		Long: `Run an agent (default general; 'panther agents' lists them) on a task. Its tool calls and
its sub-agents, which may run in parallel, are shown on stderr as they start and end; the answer,
with its citations, goes to stdout. The run is kept as a session ('panther sessions list') and
--continue ID gives the same agent a follow-up. 'panther ask QUESTION' is the short form for the
general agent. See 'panther ask --help' for models and permissions.`,
		Example: `  panther run --agent researcher "find how Go's net/http configures HTTP/2 and crawl the docs you used"
  panther run --agent sqlreview --model zai/glm-4.6 "review the partial-index advice in chapter 11"`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Errorf("run expects a TASK (see 'panther run --help')")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runAsk(cmd, strings.Join(args, " "), f)
		},
	}
	a.addAgentFlags(cmd, &f)
	return cmd
}

func (a *app) addAgentFlags(cmd *cobra.Command, f *askFlags) {
	cmd.Flags().IntVar(&f.k, "k", 5, "passages in an extractive answer")
	cmd.Flags().BoolVar(&f.jsonOut, "json", false, "print one JSON document")
	cmd.Flags().StringVar(&f.agentName, "agent", "", "the agent that answers (default general, or the continued session's)")
	cmd.Flags().StringVar(&f.model, "model", "", "the model, as provider/model of the config file (default: the agent's, else the config's model)")
	cmd.Flags().StringVarP(&f.continued, "continue", "c", "", "continue the session with this ID (or a unique prefix of it)")
	cmd.Flags().BoolVar(&f.quiet, "quiet", false, "do not show the agent's tool calls and sub-agents on stderr")
}

func (a *app) runAsk(cmd *cobra.Command, question string, f askFlags) error {
	ctx := cmd.Context()
	ms, err := a.models(f.model)
	if err != nil {
		return err
	}
	db, svc, err := a.openKB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	rt, err := a.agentRuntime(db, svc, ms)
	if err != nil {
		return err
	}
	if !f.jsonOut {
		rt.Approve = a.stdinApprover()
	}
	name := f.agentName
	if name == "" && f.continued == "" {
		name = agent.DefaultAgent
	}
	if f.continued == "" {
		def, ok := rt.Definitions[name]
		if !ok {
			return panther.NotFoundf("agent %q (see 'panther agents')", name)
		}
		if def.Model == "" && !ms.configured() {
			return a.extractiveAnswer(cmd, svc, question, f.k, f.jsonOut)
		}
	}
	var onEvent func(agent.Event)
	if !f.quiet && !f.jsonOut {
		onEvent = func(e agent.Event) { a.showEvent(e) }
	}
	sessions := &agent.Sessions{Runtime: rt, Store: db}
	sess, res, err := sessions.Ask(ctx, agent.AskRequest{Agent: name, Prompt: question, Continue: f.continued, OnEvent: onEvent})
	if err != nil {
		if sess.ID != "" {
			return fmt.Errorf("ask (session %s): %w", sess.ID, err)
		}
		return fmt.Errorf("ask: %w", err)
	}
	if f.jsonOut {
		return a.printJSON(askJSON{Question: question, Answer: res.Answer, Citations: res.Citations, Session: sess.ID, Agent: sess.Agent, StoppedBy: res.StoppedBy, Usage: &res.Usage})
	}
	if _, err := fmt.Fprintln(a.stdout, strings.TrimRight(res.Answer, "\n")); err != nil {
		return err
	}
	if !f.quiet {
		fmt.Fprintf(a.stderr, "panther: session %s (%d steps, %d tokens); follow up with: panther ask --continue %s QUESTION\n",
			sess.ID, res.Steps, res.Usage.InputTokens+res.Usage.OutputTokens, sess.ID)
	}
	return nil
}

// showEvent tells a person on stderr what the agent is doing.
func (a *app) showEvent(e agent.Event) {
	indent := ""
	if e.ParentRunID != "" {
		indent = "  "
	}
	switch e.Kind {
	case agent.EventToolStart:
		if e.Tool != "task" {
			fmt.Fprintf(a.stderr, "panther: %s%s %s\n", indent, e.Tool, trimForDisplay(oneLine(e.Text), 160))
		}
	case agent.EventSubagentStart:
		fmt.Fprintf(a.stderr, "panther: %s→ sub-agent %s: %s\n", indent, e.Agent, trimForDisplay(oneLine(e.Description), 160))
	case agent.EventSubagentEnd:
		status := "done"
		if e.Err != "" {
			status = "failed: " + trimForDisplay(oneLine(e.Err), 160)
		}
		fmt.Fprintf(a.stderr, "panther: %s← sub-agent %s %s\n", indent, e.Agent, status)
	}
}

func trimForDisplay(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// extractiveAnswer answers without a model: the best passages, numbered and cited.
func (a *app) extractiveAnswer(cmd *cobra.Command, svc *kb.Service, question string, k int, jsonOut bool) error {
	q := panther.Query{Text: question, K: k}
	if err := q.Validate(); err != nil {
		return err
	}
	hits, err := svc.Search(cmd.Context(), q)
	if err != nil {
		return fmt.Errorf("ask: %w", err)
	}
	var b strings.Builder
	cites := make([]panther.Citation, len(hits))
	for i, h := range hits {
		cites[i] = h.Citation
		fmt.Fprintf(&b, "[%d] %s\n    %s\n\n", i+1, h.Heading, oneLine(h.Snippet))
	}
	if len(hits) == 0 {
		b.WriteString("The knowledge base has no passage about this.\n\n")
	} else {
		b.WriteString("Sources:\n")
		for i, c := range cites {
			fmt.Fprintf(&b, "[%d] %s\n", i+1, c.Link())
		}
	}
	if jsonOut {
		return a.printJSON(askJSON{Question: question, Answer: b.String(), Citations: cites, Extractive: true})
	}
	fmt.Fprintf(a.stderr, "panther: %s\n", howToConfigure)
	_, err = fmt.Fprint(a.stdout, b.String())
	return err
}
