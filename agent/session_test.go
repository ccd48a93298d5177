package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"panther"
	"panther/sqlite"
)

func TestSessionsKeepNestedSubagentsAndFailures(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, model := newFakeModel(t, func(n int, req wireRequest) turn {
		m := depthRE.FindStringSubmatch(promptOf(req))
		if m == nil {
			return turn{Text: "no depth"}
		}
		d, _ := strconv.Atoi(m[1])
		if stepOf(req) == 1 && d < 2 {
			return turn{Calls: []call{{ID: "t", Name: "task", Args: taskArgs("helper", fmt.Sprintf("depth %d", d+1), fmt.Sprintf("level %d", d+1))}}, In: 10, Out: 1}
		}
		return turn{Text: fmt.Sprintf("done at depth %d", d), In: 10, Out: 1}
	})
	defs := map[string]Definition{
		"lead":   mustDef(t, "lead", "---\ndescription: leads\nmode: primary\n---\nYou lead."),
		"helper": mustDef(t, "helper", "---\ndescription: helps\nmode: all\n---\nYou help."),
	}
	s := &Sessions{Runtime: &Runtime{Definitions: defs, Model: resolver(model, nil), MaxDepth: 2}, Store: db}
	var early string
	sess, res, err := s.Ask(ctx, AskRequest{Agent: "lead", Prompt: "depth 0", OnSession: func(p panther.Session) { early = p.ID }})
	if err != nil {
		t.Fatal(err)
	}
	if early != sess.ID || res.Answer != "done at depth 0" || sess.Status != panther.SessionDone {
		t.Fatalf("session %+v (announced %q), answer %q", sess, early, res.Answer)
	}
	// The sub-sub-agent finishes before its parent sub-agent is stored: it must still be kept, under it.
	chain := map[int]panther.Session{0: sess}
	all, err := db.Sessions(ctx, panther.SessionFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range all {
		if x.ParentID == "" {
			continue
		}
		d, _ := strconv.Atoi(strings.TrimPrefix(x.Title, "level "))
		chain[d] = x
	}
	if len(all) != 3 || chain[1].ParentID != sess.ID || chain[2].ParentID != chain[1].ID {
		t.Fatalf("sessions %+v: want lead → level 1 → level 2", all)
	}
	msgs, err := db.SessionMessages(ctx, chain[2].ID)
	if err != nil || len(msgs) != 2 || msgs[1].Content != "done at depth 2" || msgs[1].Usage.InputTokens != 10 {
		t.Fatalf("level 2 messages %+v, %v", msgs, err)
	}

	// A model that fails for good leaves a failed session holding the prompt.
	broken := &Sessions{Runtime: &Runtime{Definitions: defs, Model: func(string) (panther.Model, string, error) { return failingModel{}, "broken", nil }}, Store: db}
	failed, _, err := broken.Ask(ctx, AskRequest{Agent: "lead", Prompt: "this will fail"})
	if err == nil {
		t.Fatal("a crashing model did not fail the run")
	}
	got, err := db.Session(ctx, failed.ID)
	if err != nil || got.Status != panther.SessionFailed {
		t.Fatalf("failed session %+v, %v", got, err)
	}
	if msgs, _ := db.SessionMessages(ctx, failed.ID); len(msgs) == 0 || msgs[0].Content != "this will fail" {
		t.Errorf("the failed session lost its prompt: %+v", msgs)
	}
}

// failingModel fails every call as a server that is down for good would.
type failingModel struct{}

func (failingModel) Complete(context.Context, panther.ModelRequest, func(panther.StreamEvent)) (panther.ModelResponse, error) {
	return panther.ModelResponse{}, fmt.Errorf("model server: %w", panther.ErrUnavailable)
}
