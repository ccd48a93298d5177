package sqlite

import (
	"database/sql"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTerms(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   ", nil},
		{"Partial Indexes", []string{"partial", "indexes"}},
		{"how do I create a partial index?", []string{"create", "partial", "index"}},
		{"the", []string{"the"}}, // only stop words: keep them
		{"to be or not to be", []string{"to", "be", "or", "not"}},
		{"pg_dump --format=custom", []string{"pg_dump", "format", "custom"}},
		{"set work_mem in postgresql.conf", []string{"set", "work_mem", "postgresql.conf"}},
		{"new in 9.6?", []string{"new", "9.6"}},
		{"pg_catalog.pg_class", []string{"pg_catalog.pg_class"}},
		{"utf-8 encoding", []string{"utf-8", "encoding"}},
		{"-x", []string{"x"}},
		{"x- -y", []string{"x", "y"}},
		{"end. start", []string{"end", "start"}},
		{"a.", []string{"a"}},
		{`col:x`, []string{"col", "x"}},
		{`"quoted phrase"`, []string{"quoted", "phrase"}},
		{`NEAR(a b, 2)`, []string{"near", "b", "2"}},
		{`a* ^b (c OR d) AND`, []string{"b", "c", "d"}},
		{"VACUUM vacuum Vacuum", []string{"vacuum"}},
		{"don’t stop", []string{"stop"}},
		{"Ünïcödé café", []string{"ünïcödé", "café"}},
		{"cafe\u0301", []string{"cafe\u0301"}},
		{"日本語", []string{"日本語"}},
		{"🐈 🦀", nil},
		{"\x00\x01", nil},
		{"x\xffy", []string{"x", "y"}},
	}
	for _, tc := range tests {
		if got := Terms(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Terms(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTermsBounds(t *testing.T) {
	var many []string
	for i := 0; i < 100; i++ {
		many = append(many, "w"+strings.Repeat("x", i))
	}
	if got := Terms(strings.Join(many, " ")); len(got) != maxQueryTerms {
		t.Errorf("%d terms, want at most %d", len(got), maxQueryTerms)
	}
	long := Terms(strings.Repeat("é", 1000))
	if len(long) != 1 || len(long[0]) > maxTermBytes || !utf8.ValidString(long[0]) {
		t.Errorf("long term = %q, want one valid term of at most %d bytes", long, maxTermBytes)
	}
}

func TestBuildQuery(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"*", ""},
		{"Partial Indexes", `"partial" OR "indexes"`},
		{`AND OR NOT`, `"and" OR "or" OR "not"`},
		{`NEAR(`, `"near"`},
		{"9.6", `"9.6"`},
	}
	for _, tc := range tests {
		if got := BuildQuery(tc.in); got != tc.want {
			t.Errorf("BuildQuery(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// ftsTable is an in-memory FTS5 table with the production tokenizer, to run built queries against.
func ftsTable(tb testing.TB) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		tb.Fatal(err)
	}
	db.SetMaxOpenConns(1) // every connection to :memory: is a different database
	tb.Cleanup(func() { db.Close() })
	_, err = db.Exec(`CREATE VIRTUAL TABLE t USING fts5(title, heading, body, tokenize = 'porter unicode61 remove_diacritics 2');
		INSERT INTO t VALUES ('Partial Indexes', '["Indexes","Partial Indexes"]', 'Use pg_dump and work_mem in 9.6; NEAR AND OR NOT col:x "q" café 日本語');`)
	if err != nil {
		tb.Fatal(err)
	}
	return db
}

func runMatch(db *sql.DB, q string) (int, error) {
	var n int
	err := db.QueryRow(`SELECT count(*) FROM t WHERE t MATCH ? AND rank MATCH 'bm25(5, 3, 1)'`, q).Scan(&n)
	return n, err
}

// hostileQueries are user texts that would be FTS5 syntax (or break it) if passed through.
var hostileQueries = []string{
	`"`, `""`, `"""`, `*`, `a*`, `NEAR(`, `NEAR(a b`, `NEAR(a b, 2)`, `-x`, `col:x`, `title:foo`, `AND`,
	`a AND`, `AND OR NOT`, `^`, `^a`, `(`, `)`, `((a)`, `a)`, `{title heading}: x`, `+`, `:`, `🐈‍⬛ 🦀`,
	`\`, `'`, `a"b`, `"unbalanced`, `x OR`, `NOT x`, "\x00", "a\u0301", "\u200b\u200d", "ﬁ ligature",
	"İstanbul", "ß", "Ⅻ", "٣", "x\xffy", "a'", "'a", "a''b", "a.-b", "a-.b", "._.", "__", "_a_", "ǅ",
	"\U0001F1FA\U0001F1F8", "\uFEFFbom", "ᵃ", "²", "①", "a\u00ADb", "o\u0308", "ก่", "ﷺ",
}

func TestBuildQueryHostile(t *testing.T) {
	db := ftsTable(t)
	for _, q := range hostileQueries {
		m := BuildQuery(q)
		if m == "" {
			continue
		}
		if _, err := runMatch(db, m); err != nil {
			t.Errorf("BuildQuery(%q) = %s: %v", q, m, err)
		}
	}
	for _, q := range []string{"pg_dump", "work_mem", "9.6", "NEAR", "col:x", `"q"`, "cafe", "日本語", "partial index"} {
		n, err := runMatch(db, BuildQuery(q))
		if err != nil || n != 1 {
			t.Errorf("query %q (%s): %d matches, %v; want 1", q, BuildQuery(q), n, err)
		}
	}
}

func FuzzQuery(f *testing.F) {
	for _, q := range hostileQueries {
		f.Add(q)
	}
	db := ftsTable(f)
	f.Fuzz(func(t *testing.T, q string) {
		m := BuildQuery(q)
		if m == "" {
			if len(Terms(q)) != 0 {
				t.Fatalf("BuildQuery(%q) is empty but Terms = %q", q, Terms(q))
			}
			return
		}
		// Structure: quoted strings joined by OR, nothing else.
		for _, part := range strings.Split(m, " OR ") {
			if len(part) < 2 || part[0] != '"' || part[len(part)-1] != '"' ||
				strings.Contains(strings.ReplaceAll(part[1:len(part)-1], `""`, ""), `"`) {
				t.Fatalf("BuildQuery(%q) = %s: part %s is not one FTS5 string", q, m, part)
			}
		}
		if _, err := runMatch(db, m); err != nil {
			t.Fatalf("BuildQuery(%q) = %s: %v", q, m, err)
		}
		if a := joinTerms(Terms(q), " AND "); a != "" {
			if _, err := runMatch(db, a); err != nil {
				t.Fatalf("AND query for %q = %s: %v", q, a, err)
			}
		}
	})
}
