package kb

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/url"
	"strings"
	"testing"

	"panther"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-4 }

func TestScore(t *testing.T) {
	rel := func(xs ...string) map[string]bool {
		m := map[string]bool{}
		for _, x := range xs {
			m[x] = true
		}
		return m
	}
	tests := []struct {
		name     string
		ranked   []string
		relevant map[string]bool
		k        int
		want     Metrics
	}{
		{"first is relevant", []string{"a", "x", "y"}, rel("a"), 10, Metrics{Recall: 1, MRR: 1, NDCG: 1, Hit1: 1}},
		{"relevant at rank 3", []string{"x", "y", "a"}, rel("a"), 10, Metrics{Recall: 1, MRR: 1.0 / 3, NDCG: 0.5, Hit1: 0}},
		{"none relevant", []string{"x", "y"}, rel("a"), 10, Metrics{}},
		{"empty list", nil, rel("a"), 10, Metrics{}},
		// DCG = 1/log2(3) + 1/log2(5) = 1.06161; IDCG = 1 + 1/log2(3) = 1.63093.
		{"two relevant at 2 and 4", []string{"x", "a", "y", "b"}, rel("a", "b"), 10, Metrics{Recall: 1, MRR: 0.5, NDCG: 0.65092, Hit1: 0}},
		// Half the relevant set found; ideal DCG counts both.
		{"one of two at 1", []string{"a", "x"}, rel("a", "b"), 10, Metrics{Recall: 0.5, MRR: 1, NDCG: 1 / 1.63093, Hit1: 1}},
		// Recall cut at k=2 misses the rank-3 hit; MRR and nDCG look to 10.
		{"recall cut at k", []string{"x", "y", "a"}, rel("a"), 2, Metrics{Recall: 0, MRR: 1.0 / 3, NDCG: 0.5, Hit1: 0}},
		// Rank 11 is beyond MRR@10 and nDCG@10 but within recall@20.
		{"beyond 10", []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "a"}, rel("a"), 20, Metrics{Recall: 1}},
		// Ideal DCG over min(|relevant|, 10): 12 relevant, all in the top 10 → nDCG 1.
		{"more relevant than 10", []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"},
			rel("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"), 10, Metrics{Recall: 10.0 / 12, MRR: 1, NDCG: 1, Hit1: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := score(tt.ranked, tt.relevant, tt.k)
			if !near(got.Recall, tt.want.Recall) || !near(got.MRR, tt.want.MRR) || !near(got.NDCG, tt.want.NDCG) || got.Hit1 != tt.want.Hit1 {
				t.Errorf("score = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// scripted answers each query with fixed hits; it stands in for the service, not for a store.
type scripted map[string][]panther.Hit

func (s scripted) Search(_ context.Context, q panther.Query) ([]panther.Hit, error) {
	if q.Text == "fail" {
		return nil, errors.New("boom")
	}
	hits := s[q.Text]
	return hits[:min(len(hits), q.K)], nil
}

func hit(u, anchor string) panther.Hit {
	return panther.Hit{Citation: panther.Citation{URL: u, Anchor: anchor}}
}

func TestEvaluate(t *testing.T) {
	s := scripted{
		// Page list: a, b (the second passage of a folds into a). Section list: a#x, a#y, b#z.
		"q1": {hit("https://Docs.Example/a", "x"), hit("https://docs.example/a/", "y"), hit("https://docs.example:443/b", "z")},
		// Page list: c, a.
		"q2": {hit("https://docs.example/c", ""), hit("https://docs.example/a", "x")},
	}
	qrels := []Qrel{
		{Query: "q1", Relevant: []string{"https://docs.example/b"}},                               // page only
		{Query: "q2", Relevant: []string{"https://docs.example/a#x", "https://docs.example/d#w"}}, // sections
	}
	rep, err := Evaluate(context.Background(), s, qrels, 10)
	if err != nil {
		t.Fatal(err)
	}
	// q1 page: b at rank 2 → recall 1, MRR .5, nDCG 1/log2(3)=.63093, hit 0.
	// q2 page: relevant {a, d}, a at rank 2 → recall .5, MRR .5, nDCG .63093/1.63093=.38685, hit 0.
	wantPage := Metrics{Recall: 0.75, MRR: 0.5, NDCG: (0.63093 + 0.38685) / 2, Hit1: 0}
	if !near(rep.Page.Recall, wantPage.Recall) || !near(rep.Page.MRR, wantPage.MRR) || !near(rep.Page.NDCG, wantPage.NDCG) || rep.Page.Hit1 != 0 {
		t.Errorf("page = %+v, want %+v", rep.Page, wantPage)
	}
	// Only q2 has sections: list c, a#x → a#x at rank 2 of relevant {a#x, d#w}.
	if rep.SectionQueries != 1 || rep.Section == nil {
		t.Fatalf("section queries = %d, section = %v", rep.SectionQueries, rep.Section)
	}
	if !near(rep.Section.Recall, 0.5) || !near(rep.Section.MRR, 0.5) || !near(rep.Section.NDCG, 0.38685) {
		t.Errorf("section = %+v", *rep.Section)
	}
	if len(rep.PerQuery) != 2 || strings.Join(rep.PerQuery[0].Pages, " ") != "https://docs.example/a https://docs.example/b" {
		t.Errorf("per query = %+v", rep.PerQuery)
	}

	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"queries":2,"page":{"recall@10":0.75,"mrr@10":0.5,"ndcg@10":`
	if !strings.HasPrefix(string(data), want) || !strings.Contains(string(data), `"section":{"recall@10":0.5,"mrr@10":0.5,`) || strings.Contains(string(data), "per_query") {
		t.Errorf("json = %s", data)
	}

	// Recall's suffix follows k; without anchors there is no section.
	rep, err = Evaluate(context.Background(), s, qrels[:1], 5)
	if err != nil {
		t.Fatal(err)
	}
	data, _ = json.Marshal(rep)
	if !strings.HasPrefix(string(data), `{"queries":1,"page":{"recall@5":1,"mrr@10":0.5,`) || strings.Contains(string(data), "section") {
		t.Errorf("json = %s", data)
	}

	if _, err := Evaluate(context.Background(), s, []Qrel{{Query: "fail", Relevant: []string{"https://x/"}}}, 10); err == nil || !strings.Contains(err.Error(), "fail") {
		t.Errorf("search error not reported with its query: %v", err)
	}
	if _, err := Evaluate(context.Background(), s, qrels, 0); !errors.Is(err, panther.ErrInvalid) {
		t.Errorf("k=0: %v", err)
	}
}

func TestNormalizeURL(t *testing.T) {
	same := [][2]string{
		{"HTTPS://Docs.Example.ORG/a/b/", "https://docs.example.org/a/b"},
		{"https://docs.example.org", "https://docs.example.org/"},
		{"http://x.org:80/p", "http://x.org/p"},
		{"https://x.org:443/p", "https://x.org/p"},
		{"https://x.org/p#frag", "https://x.org/p"},
	}
	for _, p := range same {
		if a, b := normalizeURL(p[0]), normalizeURL(p[1]); a != b {
			t.Errorf("%q → %q, %q → %q; want equal", p[0], a, p[1], b)
		}
	}
	differ := [][2]string{
		{"https://x.org/A", "https://x.org/a"}, // paths are case-sensitive
		{"https://x.org:8443/p", "https://x.org/p"},
		{"https://x.org/p?a=1", "https://x.org/p"},
	}
	for _, p := range differ {
		if normalizeURL(p[0]) == normalizeURL(p[1]) {
			t.Errorf("%q and %q normalise equal", p[0], p[1])
		}
	}
}

func TestReadQrels(t *testing.T) {
	base, _ := url.Parse("https://www.postgresql.org/docs/15/")
	tests := []struct {
		name    string
		in      string
		base    *url.URL
		want    []Qrel
		wantErr string
	}{
		{name: "absolute", in: `{"query":"partial index","relevant":["https://x.org/a#b"]}`,
			want: []Qrel{{"partial index", []string{"https://x.org/a#b"}}}},
		{name: "relative and blank lines", base: base, in: "\n  \n" + `{"query":" vacuum ","relevant":["routine-vacuuming.html#VACUUM-BASICS","/about/"]}` + "\n\n",
			want: []Qrel{{"vacuum", []string{"https://www.postgresql.org/docs/15/routine-vacuuming.html#VACUUM-BASICS", "https://www.postgresql.org/about/"}}}},
		{name: "relative without base", in: `{"query":"q","relevant":["a.html"]}`, wantErr: "line 1: relevant entry 1 \"a.html\": relative"},
		{name: "bad json names line", in: "{\"query\":\"q\",\"relevant\":[\"https://x/\"]}\n{oops", wantErr: "line 2"},
		{name: "unknown field", in: `{"query":"q","relevent":["https://x/"]}`, wantErr: "line 1"},
		{name: "empty query", in: `{"query":"  ","relevant":["https://x/"]}`, wantErr: "empty query"},
		{name: "no relevant", in: `{"query":"q","relevant":[]}`, wantErr: "no relevant"},
		{name: "two values", in: `{"query":"q","relevant":["https://x/"]} {}`, wantErr: "more than one"},
		{name: "no host", in: `{"query":"q","relevant":["https:///a"]}`, wantErr: "no host"},
		{name: "unwritable authority", base: base, in: `{"query":"q","relevant":["//::"]}`, wantErr: "not a valid URL"},
		{name: "too long", in: `{"query":"` + strings.Repeat("x", MaxQrelLine) + `"}`, wantErr: "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadQrels(strings.NewReader(tt.in), tt.base)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, panther.ErrInvalid) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i].Query != tt.want[i].Query || strings.Join(got[i].Relevant, " ") != strings.Join(tt.want[i].Relevant, " ") {
					t.Errorf("got %+v, want %+v", got[i], tt.want[i])
				}
			}
		})
	}
}

func FuzzReadQrels(f *testing.F) {
	f.Add(`{"query":"partial index","relevant":["indexes-partial.html"]}`)
	f.Add("\n{\"query\":\"q\",\"relevant\":[\"https://x.org/a#b\",\"../c\"]}\n\n")
	base, _ := url.Parse("https://www.postgresql.org/docs/15/")
	f.Fuzz(func(t *testing.T, in string) {
		qrels, err := ReadQrels(strings.NewReader(in), base)
		if err != nil {
			if !errors.Is(err, panther.ErrInvalid) {
				t.Fatalf("error of unexpected kind: %v", err)
			}
			return
		}
		for _, q := range qrels {
			if strings.TrimSpace(q.Query) == "" || len(q.Relevant) == 0 {
				t.Fatalf("accepted %+v", q)
			}
			for _, r := range q.Relevant {
				u, err := url.Parse(r)
				if err != nil || !u.IsAbs() {
					t.Fatalf("relevant %q is not absolute: %v", r, err)
				}
			}
		}
	})
}
