package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"panther/internal/pgtest"
	"panther/sqlite"
)

// storeKinds are the stores the CLI's main paths are tested on. PostgreSQL runs when
// PANTHER_TEST_POSTGRES names a test server (scripts/test.sh starts one), and is skipped otherwise,
// unless PANTHER_TEST_REQUIRE_POSTGRES=1 makes that a failure.
var storeKinds = []string{kindSQLite, kindPostgres}

// newCLIOn is newCLI with its knowledge base in a store of the kind: for PostgreSQL, a schema of
// its own on the test server, dropped when the test ends.
func newCLIOn(t *testing.T, kind string) *cli {
	t.Helper()
	c := newCLI(t)
	if kind == kindPostgres {
		c.env["PANTHER_DB"] = pgtest.FreshDSN(t)
	}
	return c
}

// openStore opens the CLI's knowledge base as its commands do, for a test to seed or inspect.
func (c *cli) openStore() kbStore {
	c.t.Helper()
	a := &app{stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string { return c.env[k] }}
	db, err := a.openStore(c.t.Context())
	if err != nil {
		c.t.Fatal(err)
	}
	return db
}

// withPassword puts a password into a postgres:// DSN. The test cluster trusts loopback
// connections, so any password connects, and the tests can look for it in the output.
func withPassword(t *testing.T, dsn, password string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String()
}

func TestMigrate(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			c := newCLIOn(t, kind)
			if kind == kindSQLite {
				c.env["PANTHER_DB"] = filepath.Join(t.TempDir(), "new", "kb.db")
			}
			latest := latestSchema(kind)

			// Nothing there yet: --check says so and changes nothing; --no-migrate refuses to start.
			var check migrateJSON
			code, out, errOut := c.run("migrate", "--check", "--json")
			if code != 1 || json.Unmarshal([]byte(out), &check) != nil || check.Before != 0 || check.Pending != latest || check.Store != kind {
				t.Fatalf("migrate --check of an empty store: exit %d, %s, stderr %q", code, out, errOut)
			}
			if !strings.Contains(errOut, "run panther migrate") {
				t.Errorf("migrate --check does not say what to do: %q", errOut)
			}
			code, _, errOut = c.run("--no-migrate", "status")
			if code != 1 || !strings.Contains(errOut, "run panther migrate") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("--no-migrate status of an unmigrated store: exit %d, stderr %q", code, errOut)
			}
			if kind == kindSQLite {
				if _, err := os.Stat(c.env["PANTHER_DB"]); !os.IsNotExist(err) {
					t.Errorf("--no-migrate created the database file (%v)", err)
				}
			}

			var res migrateJSON
			c.mustJSON(&res, "migrate", "--json")
			if res.Before != 0 || res.After == nil || *res.After != latest || res.Pending != 0 {
				t.Errorf("migrate of an empty store: %+v, want 0 → %d", res, latest)
			}
			// Idempotent: nothing left to do, and the human form says so.
			code, out, errOut = c.run("migrate")
			if code != 0 || !strings.Contains(out, "up to date") {
				t.Errorf("migrate again: exit %d, %q, %q", code, out, errOut)
			}
			c.mustJSON(&check, "migrate", "--check", "--json")
			if check.Before != latest || check.Pending != 0 {
				t.Errorf("migrate --check after migrating: %+v", check)
			}
			var st struct {
				Store, DB string
			}
			c.mustJSON(&st, "--no-migrate", "status", "--json")
			if st.Store != kind || st.DB == "" {
				t.Errorf("status after migrating: %+v", st)
			}
			if code, out, _ := c.run("status"); code != 0 || !strings.Contains(out, "database   "+kind+" ") {
				t.Errorf("status does not name the store kind: %q", out)
			}
		})
	}
}

// TestMigrateProcessesAtOnce starts several panther migrate processes on one new store: every one
// succeeds and the schema is the latest, each migration applied once.
func TestMigrateProcessesAtOnce(t *testing.T) {
	bin := buildPanther(t)
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			c := newCLIOn(t, kind)
			latest := latestSchema(kind)
			const n = 3
			outs := make([]bytes.Buffer, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					cmd := exec.Command(bin, "migrate", "--json")
					cmd.Env = append(os.Environ(), "PANTHER_DB="+c.env["PANTHER_DB"], "HOME="+c.env["HOME"])
					cmd.Stdout = &outs[i]
					cmd.Stderr = &outs[i]
					errs[i] = cmd.Run()
				})
			}
			wg.Wait()
			for i := range n {
				var res migrateJSON
				if errs[i] != nil || json.Unmarshal(outs[i].Bytes(), &res) != nil || res.After == nil || *res.After != latest {
					t.Errorf("migrate process %d: %v\n%s", i, errs[i], outs[i].String())
				}
			}
			db := c.openStore()
			defer db.Close()
			if v, err := db.SchemaVersionOf(t.Context()); err != nil || v != latest {
				t.Errorf("schema version %d (%v), want %d", v, err, latest)
			}
			if kind == kindPostgres {
				// Each migration recorded once: the version is the table's primary key, so a
				// migration applied twice would have failed a process; the count shows none is missing.
				conn, err := pgx.Connect(t.Context(), c.env["PANTHER_DB"])
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(t.Context())
				var rows, top int
				if err := conn.QueryRow(t.Context(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&rows, &top); err != nil || rows != latest || top != latest {
					t.Errorf("schema_migrations: %d rows up to version %d (%v), want %d", rows, top, err, latest)
				}
			}
		})
	}
}

// roundTripSite crawls the test site with the builtin embedder and records sessions, in c's store.
func roundTripSite(t *testing.T, c *cli) {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(copySite(t))))
	t.Cleanup(srv.Close)
	var sum crawlSummaryJSON
	c.mustJSON(&sum, "--embedder", "builtin", "crawl", srv.URL+"/index.html", "--json")
	if sum.New != 3 || sum.Embedded == 0 {
		t.Fatalf("crawl: %+v, want 3 new pages with vectors", sum)
	}
	seedSessions(t, c)
}

// TestExportImportRoundTrip copies a crawled knowledge base with vectors and sessions from SQLite
// to the middle store and back to a second SQLite file: every step verifies, and the last copy's
// hashes are the first one's.
func TestExportImportRoundTrip(t *testing.T) {
	for _, middle := range storeKinds {
		t.Run("sqlite→"+middle+"→sqlite", func(t *testing.T) {
			a := newCLI(t)
			roundTripSite(t, a)
			mid := newCLIOn(t, middle)
			if middle == kindSQLite {
				mid.env["PANTHER_DB"] = filepath.Join(t.TempDir(), "middle.db")
			}
			back := filepath.Join(t.TempDir(), "back.db")

			var out1, out2 copyJSON
			a.mustJSON(&out1, "export", "--to", mid.env["PANTHER_DB"], "--json", "--batch", "2")
			if !out1.Verified || out1.Copied.Documents != 3 || out1.Copied.Vectors == 0 || out1.Copied.Sessions != 3 || out1.Copied.Messages != 4 {
				t.Fatalf("export: %+v", out1)
			}
			mid.mustJSON(&out2, "import", "--from", a.env["PANTHER_DB"], "--merge", "--json")
			if !out2.Verified {
				t.Fatalf("merge import of the same knowledge base again: %+v", out2)
			}
			var out3 copyJSON
			mid.mustJSON(&out3, "export", "--to", back, "--json")
			if !out3.Verified {
				t.Fatalf("export back: %+v", out3)
			}
			first, last := out1.Source, out3.Destination
			if first.DocumentsHash != last.DocumentsHash || first.SessionsHash != last.SessionsHash || first.SourcesHash != last.SourcesHash ||
				len(first.Vectors) != 1 || len(last.Vectors) != 1 || first.Vectors[0] != last.Vectors[0] {
				t.Errorf("the round trip changed the knowledge base:\n%+v\n%+v", first, last)
			}

			// Searching the copies finds what searching the original finds, by words and by meaning.
			b := newCLI(t)
			b.env["PANTHER_DB"] = back
			for _, c := range []*cli{a, mid, b} {
				var res searchJSON
				c.mustJSON(&res, "--embedder", "builtin", "search", "--json", "zebra-striped quantum gizmo")
				if len(res.Hits) == 0 || !strings.HasSuffix(res.Hits[0].URL, "/guide/install.html") || res.Hits[0].Found != "both" {
					t.Errorf("search of %s: %+v", redactDSN(c.env["PANTHER_DB"]), res.Hits)
				}
			}
			code, show, _ := b.run("sessions", "show", "3f9a2c1e00000001")
			if code != 0 || !strings.Contains(show, "It indexes only the rows its WHERE clause selects [1].") {
				t.Errorf("the copied session: exit %d\n%s", code, show)
			}
		})
	}
}

func TestExportRefusesAndDetectsMismatches(t *testing.T) {
	a := newCLI(t)
	roundTripSite(t, a)

	// A destination that is not empty is refused.
	full := newCLI(t)
	roundTripSite(t, full)
	code, _, errOut := a.run("export", "--to", full.env["PANTHER_DB"])
	if code != 1 || !strings.Contains(errOut, "not empty") || !strings.Contains(errOut, "merge") {
		t.Errorf("export into a knowledge base that is not empty: exit %d, %q", code, errOut)
	}
	if code, _, errOut := a.run("export", "--to", a.env["PANTHER_DB"]); code != 2 || !strings.Contains(errOut, "both the source and the destination") {
		t.Errorf("export onto itself: exit %d, %q", code, errOut)
	}
	// A source that is no knowledge base is not copied as an empty one.
	empty := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := full.run("import", "--from", empty, "--merge"); code != 1 || !strings.Contains(errOut, "no knowledge base at "+empty) {
		t.Errorf("import from an empty file: exit %d, %q", code, errOut)
	}

	// A destination that stores something else than it was given: a trigger alters every second
	// chunk as it is written, as a faulty store or disk would.
	dst := filepath.Join(t.TempDir(), "tampered.db")
	db, err := sqlite.Open(t.Context(), dst)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`CREATE TRIGGER tamper AFTER INSERT ON chunks WHEN NEW.ordinal = 1 BEGIN
		UPDATE chunks SET text = text || ' (altered)' WHERE id = NEW.id; END`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	code, out, errOut := a.run("export", "--to", dst)
	if code != 1 || !strings.Contains(errOut, "does not match") || !strings.Contains(errOut, "documents hash") {
		t.Errorf("export into a store that alters it: exit %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, "NOT verified") || !strings.Contains(out, "≠") {
		t.Errorf("the report does not show the difference:\n%s", out)
	}
}

// TestDSNPasswordNeverPrinted runs the commands that name the store, with a password in the DSN, and
// looks for it in everything they print.
func TestDSNPasswordNeverPrinted(t *testing.T) {
	const password = "pw-Never-Shown-7"
	c := newCLIOn(t, kindPostgres)
	dsn := withPassword(t, c.env["PANTHER_DB"], password)
	c.env["PANTHER_DB"] = dsn
	file := newCLI(t)
	roundTripSite(t, file)
	cfg := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfg, []byte("db = \""+dsn+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, args := range [][]string{
		{"migrate", "--check"}, {"--no-migrate", "status"}, {"migrate"}, {"migrate", "--json"}, {"status"}, {"status", "--json"},
		{"import", "--from", file.env["PANTHER_DB"]}, {"export", "--to", filepath.Join(t.TempDir(), "copy.db"), "--json"},
		{"import", "--from", file.env["PANTHER_DB"]}, // refused: not empty
		{"export", "--to", dsn},                      // refused: itself
		{"--config", cfg, "config", "show"},
		{"--db", file.env["PANTHER_DB"], "import", "--from", withPassword(t, pgtest.FreshDSN(t), password)}, // refused: no knowledge base
		{"--db", withPassword(t, "postgres://u@127.0.0.1:1/db?connect_timeout=5", password), "status"},
		{"--db", withPassword(t, "postgres://u@127.0.0.1:1/db?connect_timeout=5", password), "migrate", "--check"},
		{"--db", "postgres://u:" + password + "@h:port/db", "status"},
	} {
		code, out, errOut := c.run(args...)
		all.WriteString(out + errOut)
		if strings.Contains(out+errOut, password) {
			t.Errorf("panther %s (exit %d) printed the password:\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
	}
	if !strings.Contains(all.String(), "xxxxx") || !strings.Contains(all.String(), "verified") {
		t.Errorf("the commands did not run as expected:\n%s", all.String())
	}
}

func TestRedactDSN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:pw@h:5432/db?sslmode=disable", "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{"postgresql://u@h/db?password=pw&sslmode=disable", "postgresql://u@h/db?password=xxxxx&sslmode=disable"},
		{"host=h password='p w' dbname=db", "host=h password=xxxxx dbname=db"},
		{"host=h password=pw", "host=h password=xxxxx"},
		{"/var/lib/panther/panther.db", "/var/lib/panther/panther.db"},
		{"postgres://u:pw@h:port/db", "(a connection URL that does not parse)"},
	}
	for _, tt := range tests {
		if got := redactDSN(tt.in); got != tt.want {
			t.Errorf("redactDSN(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
