package kb

import (
	"strings"
	"testing"
)

func TestSnippet(t *testing.T) {
	filler := strings.Repeat("lorem ipsum dolor sit amet ", 20)
	tests := []struct {
		name, text, query string
		want              []string
		notWant           []string
	}{
		{"short passage whole", "A *partial index* is an index.", "partial index", []string{"A *partial index* is an index."}, []string{"…"}},
		{"window around the match", filler + "the **marmot** whistles at dawn " + filler, "marmot", []string{"…", "**marmot** whistles"}, nil},
		{"most distinct terms win", "vacuum " + filler + " freeze vacuum freeze tuple " + filler, "vacuum freeze", []string{"freeze vacuum freeze"}, nil},
		{"stems match", filler + "creating indexes concurrently " + filler, "create index", []string{"creating indexes"}, nil},
		{"links keep their text only", "See [Section 11.8](https://x/indexes-partial.html#X) for more. " + filler + filler, "section", []string{"See Section 11.8 for"}, []string{"https://"}},
		{"no match: the start", filler + filler, "zebra", []string{"lorem ipsum"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := snippet(tt.text, tt.query)
			for _, w := range tt.want {
				if !strings.Contains(s, w) {
					t.Errorf("snippet %q lacks %q", s, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(s, w) {
					t.Errorf("snippet %q has %q", s, w)
				}
			}
			if n := len(strings.Fields(s)); n > snippetWords+1 {
				t.Errorf("snippet has %d words", n)
			}
		})
	}
}
