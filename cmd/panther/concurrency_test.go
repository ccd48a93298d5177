package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"panther"
	"panther/sqlite"
)

// lockErrorRE matches what SQLite says when a lock was not had in time: none of it may reach a user.
var lockErrorRE = regexp.MustCompile(`(?i)database is locked|database table is locked|SQLITE_BUSY|SQLITE_LOCKED|\((5|6|261|262|517)\)`)

// relProc is one panther process of the concurrency test, as it ended.
type relProc struct {
	args           []string
	code           int
	stdout, stderr string
}

// TestManyWritersAndReadersAtOnce runs, on one new SQLite file at once: two crawls of different
// sites, searches in a loop, agent sessions ('panther ask' with a fake model), all as separate
// processes, and in the test's own process goroutines that store pages and sessions and search.
// Every write must land, and no process may fail or say "database is locked". (AgentDB 1.6.1 lost
// five of six concurrent writes.)
func TestManyWritersAndReadersAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a dozen processes")
	}
	bin := buildPanther(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "shared.db")

	// Two sites whose pages differ (the crawler stores a page whose content it already has from
	// another URL as a duplicate, not as a document).
	const pages = 150
	srvA, srvB := httptest.NewServer(relLabelledSite("alpha", pages)), httptest.NewServer(relLabelledSite("beta", pages))
	defer srvA.Close()
	defer srvB.Close()

	model := &fakeModel{script: func(req chatRequest) reply {
		if req.Messages[len(req.Messages)-1].Role == "user" {
			return reply{calls: [][2]string{{"kb_search", `{"query":"widgets page"}`}}}
		}
		return reply{text: "Widgets are described on many pages [1]."}
	}}
	modelSrv := httptest.NewServer(model)
	defer modelSrv.Close()
	cfg := filepath.Join(dir, "config.toml")
	cfgSrc := fmt.Sprintf("model = \"fake/test-model\"\n\n[providers.fake]\nwire = \"openai\"\nbase_url = %q\napi_key = \"env:FAKE_KEY\"\nretries = 0\n", modelSrv.URL+"/v1")
	if err := os.WriteFile(cfg, []byte(cfgSrc), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "HOME="+dir, "PANTHER_EMBEDDER=none", "PANTHER_CONFIG="+cfg, "FAKE_KEY=sk-never-shown")

	var (
		mu    sync.Mutex
		procs []relProc
	)
	runProc := func(args ...string) relProc {
		cmd := exec.Command(bin, append([]string{"--db", db}, args...)...)
		cmd.Env = env
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		p := relProc{args: args, stdout: out.String(), stderr: errOut.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
		} else if err != nil {
			p.code, p.stderr = -1, err.Error()
		}
		mu.Lock()
		procs = append(procs, p)
		mu.Unlock()
		return p
	}

	// Everything starts at once, on a file that does not exist yet: the processes race to create it
	// and to migrate its schema too.
	start := make(chan struct{})
	var writers, readers sync.WaitGroup
	var crawlsDone atomic.Bool
	for _, srv := range []*httptest.Server{srvA, srvB} {
		writers.Go(func() {
			<-start
			runProc("crawl", srv.URL+"/p/0.html", "--concurrency", "2", "--json")
		})
	}
	const asks = 6
	sessionIDs := make(chan string, asks)
	for i := range 2 {
		writers.Go(func() {
			<-start
			for j := range asks / 2 {
				p := runProc("ask", "--json", fmt.Sprintf("question %d-%d: what are widgets?", i, j))
				var res struct {
					Session string `json:"session"`
				}
				if json.Unmarshal([]byte(p.stdout), &res) == nil && res.Session != "" {
					sessionIDs <- res.Session
				}
			}
		})
	}
	var searches atomic.Int32
	for range 2 {
		readers.Go(func() {
			<-start
			for !crawlsDone.Load() || searches.Load() < 10 {
				runProc("search", "--json", "widgets page")
				searches.Add(1)
			}
		})
	}

	// In this process: a store of its own on the same file, writing pages of a third source and
	// sessions from several goroutines while searching.
	const inProcWriters, inProcPages = 4, 25
	var inProcErrs []error
	var inProcMu sync.Mutex
	fail := func(err error) {
		inProcMu.Lock()
		inProcErrs = append(inProcErrs, err)
		inProcMu.Unlock()
	}
	var inProcSessions []string
	writers.Go(func() {
		<-start
		// Opened after the start, beside the processes that create the file.
		st, err := sqlite.Open(context.Background(), db)
		if err != nil {
			fail(err)
			return
		}
		defer st.Close()
		src, err := st.AddSource(context.Background(), "https://c.example/")
		if err != nil {
			fail(err)
			return
		}
		var wg sync.WaitGroup
		for w := range inProcWriters {
			wg.Go(func() {
				ctx := context.Background()
				for i := range inProcPages {
					url := fmt.Sprintf("https://c.example/w%d/p%d.html", w, i)
					doc := panther.Document{SourceID: src.ID, URL: url, Title: "C page", Markdown: "# C page\n\nwidgets of source C",
						Validators: panther.Validators{ContentHash: url}, FetchedAt: time.Now()}
					chunks := []panther.Chunk{{Heading: []string{"C page"}, Anchor: "c", Text: fmt.Sprintf("widgets of source C, writer %d page %d", w, i), Tokens: 8}}
					if _, err := st.PutDocument(ctx, doc, chunks); err != nil {
						fail(err)
					}
					if i%5 == 0 {
						s, err := st.CreateSession(ctx, panther.Session{Agent: "general", Title: url, Status: panther.SessionDone})
						if err == nil {
							err = st.AppendSessionMessages(ctx, s.ID, []panther.SessionMessage{{Message: panther.Message{Role: panther.RoleUser, Content: url}}})
						}
						if err != nil {
							fail(err)
						} else {
							inProcMu.Lock()
							inProcSessions = append(inProcSessions, s.ID)
							inProcMu.Unlock()
						}
					}
					if _, err := st.SearchLexical(ctx, panther.Query{Text: "widgets", K: 5}); err != nil {
						fail(err)
					}
				}
			})
		}
		wg.Wait()
	})

	close(start)
	writers.Wait()
	crawlsDone.Store(true)
	readers.Wait()
	close(sessionIDs)

	for _, p := range procs {
		if p.code != 0 {
			t.Errorf("panther %s: exit %d\n%s", strings.Join(p.args, " "), p.code, p.stderr)
		}
		if lockErrorRE.MatchString(p.stderr) || lockErrorRE.MatchString(p.stdout) {
			t.Errorf("panther %s let a lock error through:\n%s%s", strings.Join(p.args, " "), p.stdout, p.stderr)
		}
	}
	for _, err := range inProcErrs {
		t.Errorf("in-process writer: %v", err)
	}
	t.Logf("%d processes (%d searches), %d in-process page writes", len(procs), searches.Load(), inProcWriters*inProcPages)

	// Every write landed.
	conn := openSQL(t, db)
	count := func(q string, args ...any) int {
		var n int
		if err := conn.QueryRow(q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	for name, want := range map[string]int{srvA.URL + "/%": pages, srvB.URL + "/%": pages, "https://c.example/%": inProcWriters * inProcPages} {
		if got := count(`SELECT count(*) FROM documents WHERE url LIKE ? AND status = 'current'`, name); got != want {
			t.Errorf("%d documents under %s, want %d", got, strings.TrimSuffix(name, "%"), want)
		}
	}
	n := 0
	for id := range sessionIDs {
		n++
		if got := count(`SELECT count(*) FROM session_messages WHERE session_id = ?`, id); got != 4 {
			t.Errorf("session %s has %d messages, want 4 (question, tool call, tool result, answer)", id, got)
		}
		if got := count(`SELECT count(*) FROM sessions WHERE id = ? AND status = 'done'`, id); got != 1 {
			t.Errorf("session %s is not stored as done", id)
		}
	}
	if n != asks {
		t.Errorf("%d of %d asks reported a session", n, asks)
	}
	for _, id := range inProcSessions {
		if got := count(`SELECT count(*) FROM session_messages WHERE session_id = ?`, id); got != 1 {
			t.Errorf("in-process session %s has %d messages, want 1", id, got)
		}
	}
	if got, want := len(inProcSessions), inProcWriters*inProcPages/5; got != want {
		t.Errorf("%d in-process sessions stored, want %d", got, want)
	}
	checkStore(t, db)
}

// relLabelledSite serves pages /p/0.html to /p/(n-1).html, each linking to the next ten, 15 ms a
// page, with label in their text so that two such sites have no page in common.
func relLabelledSite(label string, n int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/p/"), ".html"))
		if err != nil || i < 0 || i >= n {
			http.NotFound(w, r)
			return
		}
		time.Sleep(15 * time.Millisecond)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<html><head><title>%s page %d</title></head><body><h1>%s page %d</h1><p>The %s site tells of widgets on page %d.</p>", label, i, label, i, label, i)
		for j := i + 1; j <= i+10 && j < n; j++ {
			fmt.Fprintf(w, `<a href="/p/%d.html">next %d</a> `, j, j)
		}
		fmt.Fprint(w, "</body></html>")
	})
}
