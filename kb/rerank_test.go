package kb

import (
	"testing"

	"panther"
)

func TestRerank(t *testing.T) {
	hit := func(url, title, heading string, score float64) panther.Hit {
		return panther.Hit{Citation: panther.Citation{URL: url, Title: title, Heading: heading}, Score: score}
	}
	tests := []struct {
		name  string
		query string
		hits  []panther.Hit
		first string
	}{
		{"exact heading beats a stronger body match", "partial index",
			[]panther.Hit{hit("body", "11.2. Index Types", "11.2. Index Types > 11.2.1. B-Tree", 10), hit("exact", "11.8. Partial Indexes", "11.8. Partial Indexes", 7)}, "exact"},
		{"plural and numbering do not matter", "schema",
			[]panther.Hit{hit("drop", "DROP SCHEMA", "DROP SCHEMA", 10.2), hit("ddl", "5.9. Schemas", "5.9. Schemas", 10.1)}, "ddl"},
		{"all words in headings beats one", "vacuum freeze",
			[]panther.Hit{hit("one", "VACUUM", "VACUUM > Parameters", 10), hit("both", "25.1. Routine Vacuuming", "25.1. Routine Vacuuming > 25.1.5. Preventing Transaction ID Wraparound Failures > Freeze", 8)}, "both"},
		{"no heading match keeps the order", "zebra",
			[]panther.Hit{hit("a", "A", "A", 3), hit("b", "B", "B", 2)}, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rerank(tt.hits, tt.query)
			if tt.hits[0].URL != tt.first {
				t.Errorf("first %s (scores %v, %v), want %s", tt.hits[0].URL, tt.hits[0].Score, tt.hits[1].Score, tt.first)
			}
		})
	}
}

func TestNamesExactly(t *testing.T) {
	tests := []struct {
		heading, query string
		want           bool
	}{
		{"11.8. Partial Indexes", "partial index", true},
		{"Chapter 11. Indexes", "indexes", true},
		{"F.38. postgres_fdw", "postgres_fdw", true},
		{"DROP SCHEMA", "schema", false},
		{"5.9. Schemas", "schema drop", false},
		{"", "x", false},
	}
	for _, tt := range tests {
		terms := snippetTerms(tt.query)
		if got := newMatcher(terms).namesExactly(tt.heading, make([]bool, len(terms))); got != tt.want {
			t.Errorf("namesExactly(%q, %q) = %v, want %v", tt.heading, tt.query, got, tt.want)
		}
	}
}

func TestIsNumbering(t *testing.T) {
	for _, w := range []string{"11.8.", "11.8", "F.38.", "F.38", "A.", "1.", "Chapter", "CHAPTER", "appendix", "Part",
		"11", "A", "AB.", "F.A", "1..2", ".", "", "a.", "1.a", "x11.", "11.8.x", "Chapters", "Ⅰ.", "１."} {
		if got, want := isNumbering(w), numberingBefore.MatchString(w); got != want {
			t.Errorf("isNumbering(%q) = %v, want %v", w, got, want)
		}
	}
}

// FuzzRerank holds rerank's heading tests to the regexp-based code they replaced.
func FuzzRerank(f *testing.F) {
	f.Add("11.8. Partial Indexes", "Chapter 11. Indexes > 11.8. Partial Indexes", "partial index")
	f.Add("F.38. postgres_fdw", "Appendix F. Additional Supplied Modules > F.38. postgres_fdw", "postgres_fdw")
	f.Add("DROP SCHEMA", "DROP SCHEMA > Parameters", "the schema")
	f.Add("Ünïcödé (Café)", "«Café» > `x`", "café ünïcödé \xff")
	f.Fuzz(func(t *testing.T, title, heading, query string) {
		if got, want := isNumbering(title), numberingBefore.MatchString(title); got != want {
			t.Fatalf("isNumbering(%q) = %v, want %v", title, got, want)
		}
		hits := func() []panther.Hit {
			return []panther.Hit{
				{Citation: panther.Citation{URL: "a", Title: "Other", Heading: "Other > Page"}, Score: 10},
				{Citation: panther.Citation{URL: "b", Title: title, Heading: heading}, Score: 7},
				{Citation: panther.Citation{URL: "c", Title: heading, Heading: title}, Score: 5},
			}
		}
		got, want := hits(), hits()
		rerank(got, query)
		rerankBefore(want, query)
		for i := range got {
			if got[i].URL != want[i].URL || got[i].Score != want[i].Score {
				t.Fatalf("rerank(%q, %q, %q): %v, want %v", title, heading, query, got, want)
			}
		}
	})
}
