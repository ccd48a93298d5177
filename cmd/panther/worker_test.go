package main

import (
	"strings"
	"testing"
)

func TestSourcesScheduleAndWorkerNeedsPostgres(t *testing.T) {
	c := newCLI(t)
	code, out, errOut := c.run("sources", "add", "https://docs.example.org/guide/", "--every", "0 3 * * *")
	if code != 0 || !strings.Contains(out, "source 1: https://docs.example.org/guide/") || !strings.Contains(out, `re-crawled on "0 3 * * *"`) {
		t.Fatalf("sources add: exit %d\n%s%s", code, out, errOut)
	}
	var list struct {
		Sources []struct {
			ID  int64
			URL string
		}
		Schedules []struct {
			SourceID int64 `json:"source_id"`
			Spec     string
		}
	}
	c.mustJSON(&list, "sources", "list", "--json")
	if len(list.Sources) != 1 || len(list.Schedules) != 1 || list.Schedules[0].SourceID != list.Sources[0].ID || list.Schedules[0].Spec != "0 3 * * *" {
		t.Errorf("sources list: %+v", list)
	}
	tests := []struct {
		args    []string
		code    int
		wantErr string
	}{
		{[]string{"sources", "add", "https://x.org/", "--every", "at dawn"}, 2, `--every "at dawn"`},
		{[]string{"sources", "add", "not a url"}, 2, "source"},
		{[]string{"worker"}, 2, "panther worker needs a PostgreSQL knowledge base"},
		{[]string{"worker", "--concurrency", "0"}, 2, "--concurrency must be at least 1"},
	}
	for _, tt := range tests {
		code, _, errOut := c.run(tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.wantErr) {
			t.Errorf("%v: exit %d, %q; want %d and %q", tt.args, code, errOut, tt.code, tt.wantErr)
		}
	}
}
