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

func TestStripLinkTargets(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"no links here", "no links here"},
		{"see [Section 11.8](https://x/#X) now", "see Section 11.8 now"},
		{"![alt text](img.png)", "alt text"},
		{"!![a](b)", "!a"},
		{"[a [b](c)", "a [b"},
		{"[a\n[b](c)", "[a\nb"},
		{"[a](b\n[c](d)", "[a](b\nc"},
		{"[a] (b)", "[a] (b)"},
		{"[a](b [c](d)", "a"},
		{"[](x)[y]()", "y"},
		{"[[[[", "[[[["},
		{"日本[語](x)!", "日本語!"},
	} {
		if got := stripLinkTargets(tc.in); got != tc.want {
			t.Errorf("stripLinkTargets(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if want := markdownLinkBefore.ReplaceAllString(tc.in, "$1"); tc.want != want {
			t.Errorf("case %q: the regexp gives %q", tc.in, want)
		}
	}
}

// FuzzSnippet holds the snippet to the regexp-based code it replaced, byte for byte.
func FuzzSnippet(f *testing.F) {
	filler := strings.Repeat("lorem ipsum dolor sit amet ", 10)
	f.Add(filler+"See [Section 11.8](https://x/#X) for **Partial** indexes, ![i](p.png) "+filler, "partial index")
	f.Add("```sql\nCREATE INDEX\n```\n"+filler+"[a [b](c) [d\n[e](f)", "create")
	f.Add(filler+"Ünïcödé CAFÉ «café» (VACUUM) work_mem; "+filler, "café vacuum work_mem")
	f.Add("\xff\xfe [x](\xff) "+filler, "\xff x")
	f.Fuzz(func(t *testing.T, text, query string) {
		if got, want := snippet(text, query), snippetBefore(text, query); got != want {
			t.Fatalf("snippet(%q, %q)\n got %q\nwant %q", text, query, got, want)
		}
	})
}
