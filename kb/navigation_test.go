package kb

import (
	"strings"
	"testing"

	"panther"
)

func TestIsNavigation(t *testing.T) {
	tests := []struct {
		name string
		text string
		want bool
	}{
		{"table of contents", "# Chapter 11\n\n- [11.1. Introduction](a.html)\n- [11.2. Index Types](b.html)\n  - [11.2.1. B-Tree](b.html#x)\n- [11.3. Multicolumn](c.html)\n- [11.4. Ordering](d.html)\n", true},
		{"settings that each name a related one", "- `PGSSLMODE` behaves the same as the [sslmode](a.html) connection parameter.\n- `PGREQUIREPEER` behaves the same as the [requirepeer](b.html) connection parameter.\n- `PGAPPNAME` behaves the same as the [application_name](c.html) connection parameter.\n- `PGOPTIONS` behaves the same as the [options](d.html) connection parameter.\n- `PGHOST` behaves the same as the [host](e.html) connection parameter.\n", false},
		{"book index with long terms", "### A\n\n**autovacuum_analyze_scale_factor configuration parameter, [Automatic Vacuuming](a.html)**\n\n**autovacuum_analyze_threshold configuration parameter, [Automatic Vacuuming](a.html)**\n\n**autovacuum_freeze_max_age configuration parameter, [Automatic Vacuuming](a.html)**\n\n**autovacuum_max_workers configuration parameter, [Automatic Vacuuming](a.html)**\n\n**autovacuum_naptime configuration parameter, [Automatic Vacuuming](a.html)**\n", true},
		{"release notes with a commit link per item", "- Export all the server's global variables using markers on Windows (Robert Haas) [§](https://x/c/1)\n- Add new protocol message for compression (Someone Else) [§](https://x/c/2)\n- Improve the planner's estimates for joins (Tom Lane) [§](https://x/c/3)\n- Remove support for old platforms (Andres Freund) [§](https://x/c/4)\n- Allow more options in the build system (Peter E) [§](https://x/c/5)\n", false},
		{"book index", "### A\n\n**abbrev, [Network Address Functions](f.html)**\n\n**ABORT, [ABORT](abort.html)**\n\n**abs, [Mathematical Functions](m.html)**\n\n**ACL, [Privileges](p.html)**\n\n**acos, [Mathematical Functions](m.html)**\n", true},
		{"prose with cross-references", "# Partial Indexes\n\nA *partial index* is built over a subset of a table; see [Section 11.2](a.html) and [Section 11.3](b.html). It saves space [1](c.html) and time [2](d.html) and work, as [Example 11.1](e.html) shows for a log table whose rows mostly come from one subnet of the organization.\n", false},
		{"too few links", "- [One](a.html)\n- [Two](b.html)\n", false},
		{"links inside code do not count", "```\n[a](b) [a](b) [a](b) [a](b) [a](b) [a](b)\n```\nplain words here\n", false},
		{"command list with descriptions", "- [ABORT](a.html) — abort the current transaction right now\n- [ALTER TABLE](b.html) — change the definition of a table in place\n- [ANALYZE](c.html) — collect statistics about a database table\n- [BEGIN](d.html) — start a transaction block for statements\n- [CALL](e.html) — invoke a stored procedure with arguments\n", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isNavigation(tt.text); got != tt.want {
				t.Errorf("isNavigation = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestChunkMarksNavigation(t *testing.T) {
	var toc strings.Builder
	toc.WriteString("# Contents\n\n")
	for i := 0; i < 8; i++ {
		toc.WriteString("- [Section](s.html)\n")
	}
	chunks := Chunk([]panther.Section{{Heading: []string{"Contents"}, Level: 1, Markdown: toc.String()}}, ChunkOptions{})
	if len(chunks) != 1 || !chunks[0].Navigation {
		t.Fatalf("a table of contents was not marked navigation: %+v", chunks)
	}
}

func TestKeywords(t *testing.T) {
	tests := []struct{ text, want string }{
		{"A *partial index* is built over a subset.", "partial index\n"},
		{"**`work_mem` (`integer`)** sets the memory.", "`work_mem` (`integer`)\n"},
		{"Use `pg_dump` and *not* `pg_restore`.", "pg_dump\nnot\npg_restore\n"},
		{"- list item * 2 = x", ""},
		{"```\n*not* `emphasis` in code\n```\nafter *yes*", "yes\n"},
		{"unclosed *star and `tick", ""},
	}
	for _, tt := range tests {
		if got := keywords(tt.text); got != tt.want {
			t.Errorf("keywords(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}
