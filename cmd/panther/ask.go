package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"panther"
	"panther/agent"
	"panther/kb"
	"panther/llm"
)

// generalSystem is the built-in general agent's prompt: answer from the knowledge base, cited.
const generalSystem = `You answer questions about the documentation in a knowledge base. Search it with kb_search ` +
	`(several searches with different words when the first finds little), read whole sections with kb_read ` +
	`when a passage is cut, and answer concisely from what you found.`

// model builds the configured model; nil when none is configured. The key of a remote model
// comes only from the environment.
func (a *app) model() (panther.Model, string, error) {
	provider := a.getenv("PANTHER_MODEL_PROVIDER")
	name := a.getenv("PANTHER_MODEL")
	switch provider {
	case "":
		return nil, "", nil
	case "openai":
		m, err := llm.NewOpenAI(llm.OpenAIOptions{BaseURL: a.getenv("PANTHER_MODEL_URL"), APIKey: a.getenv("PANTHER_MODEL_API_KEY"), Model: name})
		return m, name, err
	case "anthropic":
		m, err := llm.NewAnthropic(llm.AnthropicOptions{BaseURL: a.getenv("PANTHER_MODEL_URL"), APIKey: a.getenv("PANTHER_MODEL_API_KEY"), Model: name})
		return m, name, err
	}
	return nil, "", panther.Invalidf("PANTHER_MODEL_PROVIDER=%q: want openai or anthropic", provider)
}

// howToConfigure is printed with extractive answers.
const howToConfigure = `no model is configured, so these are the best passages rather than an answer. To have an agent ` +
	`answer, set PANTHER_MODEL_PROVIDER (openai for any OpenAI-compatible server such as Ollama or vLLM, ` +
	`or anthropic), PANTHER_MODEL (the model name), PANTHER_MODEL_URL (the server's base URL, e.g. ` +
	`http://localhost:11434/v1) and PANTHER_MODEL_API_KEY when the server needs a key.`

type askJSON struct {
	Question   string             `json:"question"`
	Answer     string             `json:"answer"`
	Citations  []panther.Citation `json:"citations"`
	Extractive bool               `json:"extractive"`
	StoppedBy  string             `json:"stopped_by,omitempty"`
	Usage      *panther.Usage     `json:"usage,omitempty"`
}

func (a *app) askCommand() *cobra.Command {
	var k int
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "ask QUESTION...",
		Short: "Answer a question from the knowledge base, with numbered citations",
		Long: `Ask the general agent a question. It searches the knowledge base, reads what it needs and
answers with citations [n], listed as url#anchor at the end. Which model answers comes from the
environment: PANTHER_MODEL_PROVIDER (openai or anthropic), PANTHER_MODEL, PANTHER_MODEL_URL and
PANTHER_MODEL_API_KEY. With no model configured, ask still answers: with the best passages, cited.`,
		Example: `  panther ask "how do I create a partial index?"
  PANTHER_MODEL_PROVIDER=openai PANTHER_MODEL=qwen3 PANTHER_MODEL_URL=http://localhost:11434/v1 panther ask "why does VACUUM matter?"`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Errorf("ask expects a QUESTION (see 'panther ask --help')")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			question := strings.Join(args, " ")
			model, modelName, err := a.model()
			if err != nil {
				return err
			}
			db, svc, err := a.openKB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			if model == nil {
				return a.extractiveAnswer(cmd, svc, question, k, jsonOut)
			}
			var onEvent func(agent.Event)
			if !jsonOut {
				onEvent = func(e agent.Event) {
					if e.Kind == agent.EventToolStart {
						fmt.Fprintf(a.stderr, "panther: %s %s\n", e.Tool, oneLine(e.Text))
					}
				}
			}
			res, err := agent.Run(cmd.Context(), agent.Agent{
				Name: "general", System: generalSystem, Model: model, ModelName: modelName,
				Tools: []agent.Tool{agent.KBSearch(svc), agent.KBRead(svc)},
			}, question, nil, onEvent)
			if err != nil {
				return fmt.Errorf("ask: %w", err)
			}
			if jsonOut {
				return a.printJSON(askJSON{Question: question, Answer: res.Answer, Citations: res.Citations, StoppedBy: res.StoppedBy, Usage: &res.Usage})
			}
			_, err = fmt.Fprintln(a.stdout, strings.TrimRight(res.Answer, "\n"))
			return err
		},
	}
	cmd.Flags().IntVar(&k, "k", 5, "passages in an extractive answer")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print one JSON document")
	return cmd
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
