package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"panther/agent"
)

// terminalApprover asks the person at the terminal to decide "ask" permissions. Questions are
// asked one at a time, since parallel sub-agents may want approval together.
func terminalApprover(in io.Reader, out io.Writer) agent.Approver {
	var mu sync.Mutex
	lines := bufio.NewReader(in)
	return func(ctx context.Context, agentName, tool string, args json.RawMessage) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		if err := ctx.Err(); err != nil {
			return false, err
		}
		fmt.Fprintf(out, "panther: agent %s wants to run %s %s\nAllow? [y/N] ", agentName, tool, trimForDisplay(oneLine(string(args)), 300))
		type answer struct {
			line string
			err  error
		}
		got := make(chan answer, 1)
		go func() {
			l, err := lines.ReadString('\n')
			got <- answer{l, err}
		}()
		select {
		case <-ctx.Done():
			fmt.Fprintln(out)
			return false, ctx.Err()
		case a := <-got:
			if a.err != nil && a.line == "" {
				return false, fmt.Errorf("no answer from the terminal: %w", a.err)
			}
			switch strings.ToLower(strings.TrimSpace(a.line)) {
			case "y", "yes":
				return true, nil
			}
			return false, nil
		}
	}
}

// stdinApprover is the approver of an interactive run: nil unless both stdin and stderr are a
// terminal, so that a script is never left waiting for an answer.
func (a *app) stdinApprover() agent.Approver {
	if !isTerminal(a.stderr) || !isTerminal(os.Stdin) {
		return nil
	}
	return terminalApprover(os.Stdin, a.stderr)
}
