package extract

import (
	"strings"
	"testing"
)

// TestPostgresManual runs every page of the installed PostgreSQL manual through the invariants and
// checks that DocBook's navigation never reaches the markdown.
func TestPostgresManual(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	pages := loadManual(t)
	noAnchor, noLinks := 0, 0
	for _, p := range pages {
		res, err := Extract(p.url, "text/html", p.body)
		if err != nil {
			t.Fatalf("%s: %v", p.url, err)
		}
		checkHTMLInvariants(t, res)
		if strings.TrimSpace(res.Markdown) == "" || res.Title == "" {
			t.Errorf("%s: empty markdown or title", p.url.Path)
		}
		for _, nav := range []string{"Prev](", "Next](", "Up](", "Home]("} {
			if strings.Contains(res.Markdown, "["+nav) {
				t.Errorf("%s: navigation %q in markdown", p.url.Path, nav)
			}
		}
		if len(res.Sections) > 0 && res.Sections[0].Anchor == "" {
			noAnchor++
			if noAnchor < 5 {
				t.Logf("%s: first section has no anchor: %v", p.url.Path, res.Sections[0].Heading)
			}
		}
		if len(res.Links) == 0 {
			noLinks++
		}
	}
	if noLinks > len(pages)/100 {
		t.Errorf("%d pages without links", noLinks)
	}
	t.Logf("%d pages, %d without an anchor on the first section", len(pages), noAnchor)
}
