package agent

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"panther"
)

func TestFinishAnswer(t *testing.T) {
	book := newCiteBook()
	for _, l := range []string{"https://a.org/x", "https://a.org/y", "https://a.org/z"} {
		book.number(panther.Citation{URL: l, Title: l, Anchor: "s"})
	}
	cases := []struct {
		name, in, want string
		cited          int
	}{
		{"no citations", "Plain answer.", "Plain answer.", 0},
		{"valid kept, bogus removed", "One [1]. Two [7].", "One [1]. Two.\n\nSources:\n[1] https://a.org/x#s", 1},
		{"bogus mid-sentence", "One [9] and two [2].", "One and two [2].\n\nSources:\n[2] https://a.org/y#s", 1},
		{"group keeps the valid", "Both [1, 7, 3].", "Both [1, 3].\n\nSources:\n[1] https://a.org/x#s\n[3] https://a.org/z#s", 2},
		{"adjacent", "Both [3][1][0].", "Both [3][1].\n\nSources:\n[1] https://a.org/x#s\n[3] https://a.org/z#s", 2},
		{"repeated once in sources", "A [2]. B [2].", "A [2]. B [2].\n\nSources:\n[2] https://a.org/y#s", 1},
		{"line starting with a bogus one", "[8] Nothing.", "Nothing.", 0},
		{"index expressions are not citations", "Use a[1] or arr[7].", "Use a[1] or arr[7].", 0},
		{"inline code left alone", "Call `f[9]` and `[9]` [1].", "Call `f[9]` and `[9]` [1].\n\nSources:\n[1] https://a.org/x#s", 1},
		{"fenced code left alone", "Example [1]:\n```\nx = [7]\n```\nDone [7].", "Example [1]:\n```\nx = [7]\n```\nDone.\n\nSources:\n[1] https://a.org/x#s", 1},
		{"markdown link left alone", "See [7](https://e.org).", "See [7](https://e.org).", 0},
		{"empty", "  ", "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, cites := finishAnswer(tc.in, book)
			if got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
			if len(cites) != tc.cited {
				t.Errorf("%d citations, want %d", len(cites), tc.cited)
			}
		})
	}
}

func TestCiteBookRender(t *testing.T) {
	book := newCiteBook()
	a := panther.Citation{URL: "https://a.org/p", Title: "P", Heading: "P > Q", Anchor: "q"}
	b := panther.Citation{URL: "https://a.org/r", Title: "R"}
	got := book.render(ToolResult{Content: "first " + CiteMark(0) + " then " + CiteMark(1), Citations: []panther.Citation{a, b}})
	if want := "first [1] P — P > Q (https://a.org/p#q) then [2] R (https://a.org/r)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// The same source again keeps its number; an unmarked one is listed after the content.
	c := panther.Citation{URL: "https://a.org/s", Title: "S", Anchor: "t"}
	got = book.render(ToolResult{Content: "again " + CiteMark(0), Citations: []panther.Citation{a, c}})
	if want := "again [1] P — P > Q (https://a.org/p#q)\n\nSources of this result:\n[3] S (https://a.org/s#t)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func callTool(t *testing.T, tool Tool, args string) (ToolResult, error) {
	t.Helper()
	return tool.Run(context.Background(), json.RawMessage(args))
}

func TestKBSearch(t *testing.T) {
	k := openKB(t)
	tool := KBSearch(k.Service)
	if s := tool.Spec(); s.Name != "kb_search" || !json.Valid(s.Parameters) {
		t.Errorf("spec = %+v", s)
	}
	cases := []struct {
		name, args string
		wantErr    string
		wantHits   int
		wantIn     string
	}{
		{"empty query", `{"query":"  "}`, "kb_search: query is empty", 0, ""},
		{"no query", `{}`, "kb_search: query is empty", 0, ""},
		{"negative k", `{"query":"x","k":-1}`, "kb_search: k must be between 1 and 20", 0, ""},
		{"k of the wrong type", `{"query":"x","k":"three"}`, `kb_search: argument "k" must be of type int`, 0, ""},
		{"not an object", `[1]`, "kb_search: arguments are not a JSON object", 0, ""},
		{"one page matches", `{"query":"partial index"}`, "", 1, "WHERE predicate"},
		{"k caps the hits", `{"query":"VACUUM OR pg_dump OR partial","k":1}`, "", 1, ""},
		{"k above the maximum is capped", `{"query":"VACUUM","k":500}`, "", 1, "dead tuples"},
		{"nothing found", `{"query":"zebrafish"}`, "", 0, `No passages found for "zebrafish"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := callTool(t, tool, tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, panther.ErrInvalid) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Citations) != tc.wantHits {
				t.Errorf("%d citations, want %d: %s", len(res.Citations), tc.wantHits, res.Content)
			}
			if !strings.Contains(res.Content, tc.wantIn) {
				t.Errorf("content %q lacks %q", res.Content, tc.wantIn)
			}
			if strings.Count(res.Content, "⟦cite:") != len(res.Citations) {
				t.Errorf("content %q should mark each citation once", res.Content)
			}
		})
	}
}

func TestKBSearchLongPassage(t *testing.T) {
	long := "# Long\n\n" + strings.Repeat("Filler words about nothing in particular. ", 60) + "The needle sits here. " + strings.Repeat("More filler text. ", 60)
	k := openKB(t, pageSpec{"https://docs.example.org/long.html", "Long", []panther.Section{{Heading: []string{"Long"}, Level: 1, Anchor: "long", Markdown: long}}})
	res, err := callTool(t, KBSearch(k), `{"query":"needle"}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Content) > KBPassageChars+400 || !strings.Contains(res.Content, "needle") || !strings.Contains(res.Content, "kb_read https://docs.example.org/long.html#long") {
		t.Errorf("content (%d bytes):\n%s", len(res.Content), res.Content)
	}
}

func TestKBRead(t *testing.T) {
	bigURL := "https://docs.example.org/big.html"
	var big []panther.Section
	for _, a := range []string{"one", "two", "three"} {
		big = append(big, panther.Section{Heading: []string{"Big", a}, Level: 2, Anchor: a, Markdown: "## " + a + "\n\n" + strings.Repeat("Lorem ipsum dolor sit amet. ", 400)})
	}
	k := openKB(t, pageSpec{bigURL, "Big", big})
	cases := []struct {
		name, args string
		plain      bool // a Reader without chunks
		wantErr    error
		wantIn     []string
		wantOut    []string
		wantLink   string
	}{
		{"whole page", `{"url":"` + indexesURL + `"}`, false, nil, []string{"Indexes speed up", "WHERE predicate"}, nil, indexesURL},
		{"one section", `{"url":"` + partialLink + `"}`, false, nil, []string{"WHERE predicate"}, []string{"speed up"}, partialLink},
		{"unknown section", `{"url":"` + indexesURL + `#nope"}`, false, nil, []string{"no section #nope", "speed up", "WHERE predicate"}, nil, indexesURL},
		{"section without chunks", `{"url":"` + partialLink + `"}`, true, nil, []string{"whole page follows", "speed up"}, nil, indexesURL},
		{"trailing slash forgiven", `{"url":"` + vacuumURL + `/"}`, false, nil, []string{"dead tuples"}, nil, vacuumURL},
		{"big page trimmed", `{"url":"` + bigURL + `"}`, false, nil, []string{"[trimmed: showing about 20000", bigURL + "#three"}, nil, bigURL},
		{"not stored", `{"url":"https://docs.example.org/nope.html"}`, false, panther.ErrNotFound, nil, nil, ""},
		{"empty url", `{"url":""}`, false, panther.ErrInvalid, nil, nil, ""},
		{"relative url", `{"url":"vacuum.html"}`, false, panther.ErrInvalid, nil, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r Reader = k
			if tc.plain {
				r = documentsOnly{k.Service}
			}
			res, err := callTool(t, KBRead(r), tc.args)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.HasPrefix(err.Error(), "kb_read: ") {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.wantIn {
				if !strings.Contains(res.Content, s) {
					t.Errorf("content lacks %q:\n%.600s", s, res.Content)
				}
			}
			for _, s := range tc.wantOut {
				if strings.Contains(res.Content, s) {
					t.Errorf("content has %q", s)
				}
			}
			if len(res.Content) > KBReadChars+2000 {
				t.Errorf("content of %d bytes", len(res.Content))
			}
			if len(res.Citations) != 1 || res.Citations[0].Link() != tc.wantLink || res.Citations[0].ContentHash == "" {
				t.Errorf("citations = %+v, want one of %s", res.Citations, tc.wantLink)
			}
		})
	}
}

// documentsOnly hides every method but Document, for a Reader that cannot give chunks.
type documentsOnly struct{ r Reader }

func (d documentsOnly) Document(ctx context.Context, url string) (panther.Document, error) {
	return d.r.Document(ctx, url)
}
