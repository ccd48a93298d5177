package extract

import (
	"encoding/json"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden outputs in testdata/golden")

// goldenURLs are where the golden pages live upstream, so that their links resolve as on the web.
var goldenURLs = map[string]string{
	"go_mem.html":  "https://go.dev/ref/mem",
	"3-tools.md":   "https://go.googlesource.com/go/+/refs/heads/master/doc/initial/3-tools.md",
	"godebug.md":   "https://go.googlesource.com/go/+/refs/heads/master/doc/godebug.md",
	"default.html": "https://www.postgresql.org/docs/15/",
}

type goldenSection struct {
	Heading []string `json:"heading"`
	Level   int      `json:"level"`
	Anchor  string   `json:"anchor,omitempty"`
	Bytes   int      `json:"bytes"`
}

type goldenSummary struct {
	Title     string          `json:"title"`
	Canonical string          `json:"canonical,omitempty"`
	Links     int             `json:"links"`
	Sections  []goldenSection `json:"sections"`
}

func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/golden/*")
	n := 0
	for _, f := range files {
		name := filepath.Base(f)
		if strings.HasSuffix(name, ".golden.md") || strings.HasSuffix(name, ".sections.json") {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			raw, ok := goldenURLs[name]
			if !ok {
				raw = "https://www.postgresql.org/docs/15/" + name
			}
			u, _ := url.Parse(raw)
			ct := map[string]string{".html": "text/html", ".md": "text/markdown"}[filepath.Ext(name)]
			res, err := Extract(u, ct, body)
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, res)
			sum := goldenSummary{Title: res.Title, Canonical: res.Canonical, Links: len(res.Links)}
			for _, s := range res.Sections {
				sum.Sections = append(sum.Sections, goldenSection{s.Heading, s.Level, s.Anchor, len(s.Markdown)})
			}
			js, _ := json.MarshalIndent(sum, "", "  ")
			js = append(js, '\n')
			base := strings.TrimSuffix(f, filepath.Ext(f))
			mdFile, jsFile := base+".golden.md", base+".sections.json"
			if *update {
				if err := os.WriteFile(mdFile, []byte(res.Markdown+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(jsFile, js, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			wantMD, err := os.ReadFile(mdFile)
			if err != nil {
				t.Fatalf("%v (run go test ./extract -update)", err)
			}
			if got := res.Markdown + "\n"; got != string(wantMD) {
				t.Errorf("markdown differs from %s; first difference near:\n%s", mdFile, firstDiff(got, string(wantMD)))
			}
			wantJS, err := os.ReadFile(jsFile)
			if err != nil {
				t.Fatal(err)
			}
			if string(js) != string(wantJS) {
				t.Errorf("sections differ from %s:\n%s", jsFile, firstDiff(string(js), string(wantJS)))
			}
		})
	}
	if n == 0 {
		t.Fatal("no golden inputs")
	}
}

func firstDiff(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-200)
	return "got:  ..." + got[lo:min(len(got), i+200)] + "\nwant: ..." + want[lo:min(len(want), i+200)]
}
