package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"panther"
	"panther/agent"
)

// shortID is how many characters of a session ID listings show at least; any unique prefix of at
// least panther.MinSessionPrefix finds the session.
const shortID = 8

func (a *app) sessionsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "List the recorded agent runs, show one as a transcript or export it",
		Long: `Every agent run is recorded in the knowledge base as a session: the prompt, each model turn,
every tool call with its arguments and result, the tokens used and the sources the tools found.
A session is named by its ID or any unique prefix of it of at least 4 characters, as git names commits.`,
		Example: `  panther sessions list
  panther sessions show 3f9a2c1e
  panther sessions export 3f9a2c1e -o answer.md`,
	}
	cmd.AddCommand(a.sessionsListCommand(), a.sessionsShowCommand(), a.sessionsExportCommand())
	return cmd
}

func (a *app) sessionsListCommand() *cobra.Command {
	var limit int
	var all, jsonOut bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List sessions, most recently updated first",
		Long: `List sessions, most recently updated first: ID (its first 8 characters), when it was last
updated, the agent and model, status, steps, tokens (input + output) and title (the first prompt).
Sub-agent sessions (started by the task tool) are left out unless --all is given.`,
		Example: `  panther sessions list --limit 5
  panther sessions list --all --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return panther.Invalidf("--limit must not be negative, got %d", limit)
			}
			db, err := a.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			list, err := db.Sessions(cmd.Context(), panther.SessionFilter{Limit: limit, TopLevelOnly: !all})
			if err != nil {
				return err
			}
			if jsonOut {
				return a.printJSON(map[string]any{"sessions": list})
			}
			if len(list) == 0 {
				_, err := fmt.Fprintln(a.stdout, "no sessions recorded")
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			if all {
				fmt.Fprintln(tw, "ID\tPARENT\tUPDATED\tAGENT\tMODEL\tSTATUS\tSTEPS\tTOKENS\tTITLE")
			} else {
				fmt.Fprintln(tw, "ID\tUPDATED\tAGENT\tMODEL\tSTATUS\tSTEPS\tTOKENS\tTITLE")
			}
			n := abbrevLen(list)
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t", abbrev(s.ID, n))
				if all {
					fmt.Fprintf(tw, "%s\t", orDash(abbrev(s.ParentID, n)))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", s.Updated.Local().Format("2006-01-02 15:04"),
					orDash(oneLine(s.Agent)), orDash(oneLine(s.Model)), s.Status, s.Steps,
					s.Usage.InputTokens+s.Usage.OutputTokens, truncate(s.Title, 60))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many sessions (0: all)")
	cmd.Flags().BoolVar(&all, "all", false, "include sub-agent sessions")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print one JSON document")
	return cmd
}

// abbrevLen is the shortest prefix length, from shortID on, that tells the listed sessions apart,
// so that every ID a listing shows can be pasted into 'sessions show'.
func abbrevLen(list []panther.Session) int {
	longest := 0
	for _, s := range list {
		longest = max(longest, len(s.ID))
	}
	for n := shortID; n < longest; n++ {
		seen := make(map[string]bool, len(list))
		unique := true
		for _, s := range list {
			p := abbrev(s.ID, n)
			if seen[p] {
				unique = false
				break
			}
			seen[p] = true
		}
		if unique {
			return n
		}
	}
	return max(shortID, longest)
}

func abbrev(id string, n int) string {
	if len(id) > n {
		return id[:n]
	}
	return id
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// sessionJSON is what `sessions show --json` prints; its field names are part of the command-line contract.
type sessionJSON struct {
	Session  panther.Session          `json:"session"`
	Messages []panther.SessionMessage `json:"messages"`
}

// loadSession finds a session by ID or prefix and reads its messages.
func (a *app) loadSession(ctx context.Context, id string) (panther.Session, []panther.SessionMessage, error) {
	db, err := a.openStore(ctx)
	if err != nil {
		return panther.Session{}, nil, err
	}
	defer db.Close()
	s, err := db.Session(ctx, id)
	if err != nil {
		return panther.Session{}, nil, err
	}
	msgs, err := db.SessionMessages(ctx, s.ID)
	if err != nil {
		return panther.Session{}, nil, err
	}
	return s, msgs, nil
}

func (a *app) sessionsShowCommand() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Print a session as a markdown transcript",
		Long: `Print a session as a markdown transcript: who ran it with which model, the prompt, every model
turn, each tool call with its arguments and (folded, cut to 2,000 characters) its result, failures
marked, and the sources the tools found. --json prints the session and all its messages in full.`,
		Example: `  panther sessions show 3f9a2c1e
  panther sessions show 3f9a --json`,
		Args: exactArgs(1, "one session ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, msgs, err := a.loadSession(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if jsonOut {
				return a.printJSON(sessionJSON{Session: s, Messages: msgs})
			}
			return agent.Transcript(a.stdout, s, msgs)
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the session and its messages as one JSON document")
	return cmd
}

func (a *app) sessionsExportCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export ID",
		Short: "Write a session's markdown transcript to a file (or stdout)",
		Long: `Write a session's markdown transcript, as 'sessions show' prints it, to the file given with -o,
or to stdout without -o (or with -o -). The file is replaced whole: a reader never sees half of it.`,
		Example: `  panther sessions export 3f9a2c1e -o partial-indexes.md
  panther sessions export 3f9a2c1e | less`,
		Args: exactArgs(1, "one session ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, msgs, err := a.loadSession(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if output == "" || output == "-" {
				return agent.Transcript(a.stdout, s, msgs)
			}
			if err := writeFileAtomic(output, func(w io.Writer) error { return agent.Transcript(w, s, msgs) }); err != nil {
				return fmt.Errorf("export session %s: %w", s.ID, err)
			}
			fmt.Fprintf(a.stderr, "panther: wrote the transcript of session %s to %s\n", s.ID, output)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "the file to write (default stdout)")
	return cmd
}

// writeFileAtomic writes path through a temporary file in the same directory and renames it into
// place, so that a failed export never leaves a truncated file where an earlier one was. The file is
// private to its owner (0600): transcripts hold whatever the prompts and tools saw.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly once renamed
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
