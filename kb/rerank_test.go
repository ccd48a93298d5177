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
