package main

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
)

// wrap puts index rows in the page skeleton DocBook emits, so that the
// inline cases exercise the same "div.index > div.indexdiv > dl" path as the
// real page.
func wrap(rows string) string {
	return `<html><body><div class="index" id="BOOKINDEX"><div class="index">` +
		`<p class="indexdiv-quicklinks"><a href="#indexdiv-A">A</a></p>` +
		`<div class="indexdiv" id="indexdiv-A"><h3>A</h3><dl>` + rows + `</dl></div></div></div></body></html>`
}

func TestParse(t *testing.T) {
	excerpt, err := os.ReadFile("testdata/bookindex-excerpt.html")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   string
		want []Qrel
	}{
		{
			name: "excerpt of the PostgreSQL 15 index",
			in:   string(excerpt),
			want: []Qrel{
				{"$", []string{"sql-expressions.html#SQL-EXPRESSIONS-PARAMETERS-POSITIONAL"}},
				{"$libdir", []string{"xfunc-c.html#XFUNC-C-DYNLOAD"}},
				{"$libdir/plugins", []string{"runtime-config-client.html#RUNTIME-CONFIG-CLIENT-PRELOAD", "sql-load.html#SQL-LOAD-DESCRIPTION"}},
				{".pgpass", []string{"libpq-pgpass.html"}},
				{"autocommit bulk-loading data", []string{"populate.html#DISABLE-AUTOCOMMIT"}},
				{"autocommit psql", []string{"app-psql.html#APP-PSQL-VARIABLES"}},
				{"auto-increment", []string{"datatype-numeric.html#DATATYPE-SERIAL"}},
				{"cluster of databases", []string{"tutorial-concepts.html", "creating-cluster.html"}},
				{"database cluster", []string{"tutorial-concepts.html", "creating-cluster.html"}},
				{"date", []string{"datatype-datetime.html", "datatype-datetime.html#id-1.5.7.13.18.5"}},
				{"date constants", []string{"datatype-datetime.html#DATATYPE-DATETIME-SPECIAL-VALUES"}},
				{"date current", []string{"functions-datetime.html#FUNCTIONS-DATETIME-CURRENT"}},
				{"date output format", []string{"datatype-datetime.html#DATATYPE-DATETIME-OUTPUT"}},
				{"DateStyle configuration parameter", []string{"runtime-config-client.html#RUNTIME-CONFIG-CLIENT-FORMAT"}},
				{"PID determining PID of server process in libpq", []string{"libpq-status.html"}},
				{"serial", []string{"datatype-numeric.html#DATATYPE-SERIAL"}},
			},
		},
		{
			name: "duplicate links within an entry are dropped",
			in:   wrap(`<dt id="e1">abs, <a class="indexterm" href="f.html#X">F</a>, <a class="indexterm" href="f.html#X">F</a>, <a class="indexterm" href="g.html">G</a></dt>`),
			want: []Qrel{{"abs", []string{"f.html#X", "g.html"}}},
		},
		{
			name: "identical queries from two entries merge",
			in: wrap(`<dt id="e1">array, <a class="indexterm" href="a.html#A">A</a></dt>` +
				`<dt id="e2">array, <a class="indexterm" href="b.html">B</a>, <a class="indexterm" href="a.html#A">A</a></dt>`),
			want: []Qrel{{"array", []string{"a.html#A", "b.html"}}},
		},
		{
			name: "entry without link and without sub-entries is skipped",
			in:   wrap(`<dt id="e1">administration tools</dt><dt id="e2">abs, <a class="indexterm" href="f.html">F</a></dt>`),
			want: []Qrel{{"abs", []string{"f.html"}}},
		},
		{
			name: "see to an entry without links of its own is skipped",
			in: wrap(`<dt id="e1">BRIN (see <a href="#e2">index</a>)</dt>` +
				`<dt id="e2">index</dt><dd><dl><dt>BRIN, <a class="indexterm" href="brin.html">BRIN</a></dt></dl></dd>`),
			want: []Qrel{{"index BRIN", []string{"brin.html"}}},
		},
		{
			name: "see to a missing id is skipped",
			in:   wrap(`<dt id="e1">BLOB (see <a href="#nowhere">large object</a>)</dt>`),
			want: nil,
		},
		{
			name: "see cycles do not loop",
			in:   wrap(`<dt id="e1">a (see <a href="#e2">b</a>)</dt><dt id="e2">b (see <a href="#e1">a</a>)</dt>`),
			want: nil,
		},
		{
			name: "line breaks and entities in terms fold to one space",
			in:   wrap("<dt id=\"e1\">&lt;@\n   operator, <a class=\"indexterm\" href=\"op.html#AT\">Ops</a></dt>"),
			want: []Qrel{{"<@ operator", []string{"op.html#AT"}}},
		},
		{
			name: "page without an index has no qrels",
			in:   `<html><body><dl><dt>abs, <a class="indexterm" href="f.html">F</a></dt></dl></body></html>`,
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestWriteKeepsOperatorsReadable(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, []Qrel{{"<@", []string{"a.html#X"}}}); err != nil {
		t.Fatal(err)
	}
	if want := `{"query":"<@","relevant":["a.html#X"]}` + "\n"; b.String() != want {
		t.Errorf("Write = %q, want %q", b.String(), want)
	}
}

// TestCommittedQrelsMatchManual guards the committed qrels against drift from
// the parser; it runs only where Debian's postgresql-doc-15 is installed.
func TestCommittedQrelsMatchManual(t *testing.T) {
	f, err := os.Open("/usr/share/doc/postgresql-doc-15/html/bookindex.html")
	if err != nil {
		t.Skip("postgresql-doc-15 not installed:", err)
	}
	defer f.Close()
	qrels, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Write(&b, qrels); err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("../testdata/pg15-bookindex.qrels.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), committed) {
		t.Errorf("bench/testdata/pg15-bookindex.qrels.jsonl is stale; regenerate with: go run ./bench/bookindex -out bench/testdata/pg15-bookindex.qrels.jsonl")
	}
	if len(qrels) < 2500 {
		t.Errorf("only %d queries from the full index, want about 3000", len(qrels))
	}
}

// FuzzParse checks the invariants the eval command relies on, whatever the
// input: every query is non-empty and unique, and every query has at least
// one relevant link, none repeated.
func FuzzParse(f *testing.F) {
	f.Add([]byte(wrap(`<dt id="e1">abs, <a class="indexterm" href="f.html">F</a></dt>`)))
	f.Fuzz(func(t *testing.T, data []byte) {
		qrels, err := Parse(bytes.NewReader(data))
		if err != nil {
			return
		}
		seen := make(map[string]bool)
		for _, q := range qrels {
			if strings.TrimSpace(q.Query) == "" {
				t.Fatalf("empty query in %q", qrels)
			}
			if seen[q.Query] {
				t.Fatalf("query %q repeated", q.Query)
			}
			seen[q.Query] = true
			if len(q.Relevant) == 0 {
				t.Fatalf("query %q has no relevant link", q.Query)
			}
			links := make(map[string]bool)
			for _, r := range q.Relevant {
				if r == "" || links[r] {
					t.Fatalf("query %q: empty or repeated link %q", q.Query, r)
				}
				links[r] = true
			}
		}
	})
}
