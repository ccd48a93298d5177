package jobs

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"panther"
)

// TestWorkerProcessesE2E is the end-to-end check of issue 6 with real processes: two
// `panther worker` processes on one PostgreSQL database crawl the PostgreSQL manual from a loopback
// server; one is killed (SIGKILL) halfway; the other finishes, taking over the killed one's jobs
// after the lease, and every page is present exactly once and searchable.
//
// It needs the command line to offer, on a postgres:// --db:
//
//	panther --db DSN worker --concurrency N --lease DURATION
//
// working jobs.NewCluster(ctx, DSN, Options{Store: the postgres store, KB: kb.Service over it,
// Workers: N, RescueAfter: lease, ...}) until SIGINT/SIGTERM (then Stop, exit 0). The crawl is
// enqueued here through the package, as `panther crawl` on a postgres:// --db would.
func TestWorkerProcessesE2E(t *testing.T) {
	docs := os.Getenv("PANTHER_TEST_PGDOCS")
	if docs == "" {
		t.Skip("PANTHER_TEST_PGDOCS is not set (the PostgreSQL manual's HTML folder)")
	}
	if _, err := os.Stat(filepath.Join(docs, "index.html")); err != nil {
		t.Fatalf("PANTHER_TEST_PGDOCS=%s: %v", docs, err)
	}
	e := newEnv(t)
	bin := filepath.Join(t.TempDir(), "panther")
	build := exec.Command("go", "build", "-o", bin, "panther/cmd/panther")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build panther: %v\n%s", err, out)
	}
	help, _ := exec.Command(bin, "worker", "--help").CombinedOutput()
	if !bytes.Contains(help, []byte("panther worker")) || !bytes.Contains(help, []byte("--lease")) {
		t.Skip("this build has no 'panther worker --lease' yet (cmd wiring of package jobs)")
	}

	srv := httptest.NewServer(http.FileServer(http.Dir(docs)))
	t.Cleanup(srv.Close)
	start := func(name string) *exec.Cmd {
		cmd := exec.Command(bin, "--db", e.dsn, "worker", "--concurrency", "4", "--lease", "5s")
		log, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				out, _ := os.ReadFile(log.Name())
				t.Logf("%s's output:\n%s", name, out)
			}
		})
		return cmd
	}
	w1, w2 := start("worker1"), start("worker2")

	client := startWorker(t, e, testOptions("client", 0))
	zero := 0.0
	st, err := client.EnqueueSeed(t.Context(), srv.URL+"/index.html", CrawlRequest{HostRate: &zero})
	if err != nil {
		t.Fatal(err)
	}
	const pages = 1100 // the manual has 1,171 pages; fewer means the crawl lost some
	deadline := time.Now().Add(3 * time.Minute)
	for {
		cur, err := client.CrawlStatus(t.Context(), st.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cur.Done >= pages/2 {
			break
		}
		if cur.Finished() || time.Now().After(deadline) {
			t.Fatalf("the crawl did not get halfway: %+v", cur)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := w1.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	final := follow(t, client.Cluster, st.ID, 3*time.Minute, nil)
	if final.State != RunDone || final.Queued != 0 || final.Failed != 0 || final.Done < pages {
		t.Fatalf("final status %+v, want done with every page", final)
	}

	// Every page done in the crawl is stored once, and nothing else is.
	ctx := t.Context()
	docsStored, err := e.kb.Documents(ctx, panther.DocFilter{URLPrefix: srv.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	var doneURLs int
	if err := e.admin.QueryRow(ctx, `SELECT count(*) FROM crawl_urls WHERE run_id = $1 AND state = 'done' AND reason IN ('new', 'unchanged', 'changed')`, st.ID).Scan(&doneURLs); err != nil {
		t.Fatal(err)
	}
	if len(docsStored) != doneURLs {
		t.Errorf("%d documents stored for %d pages done", len(docsStored), doneURLs)
	}
	var dupes int
	if err := e.admin.QueryRow(ctx, `SELECT count(*) FROM (SELECT doc_id, ordinal FROM chunks GROUP BY 1, 2 HAVING count(*) > 1) x`).Scan(&dupes); err != nil || dupes != 0 {
		t.Errorf("%d chunks stored twice (err %v)", dupes, err)
	}
	hits, err := e.kb.Search(ctx, panther.Query{Text: "CREATE INDEX CONCURRENTLY", K: 5})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, h := range hits {
		found = found || strings.HasSuffix(h.URL, "/sql-createindex.html")
	}
	if !found {
		t.Errorf("search for CREATE INDEX CONCURRENTLY: %v, want sql-createindex.html", hits)
	}

	// The survivor stops cleanly on SIGTERM.
	if err := w2.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w2.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the surviving worker exited with %v on SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("the surviving worker did not exit within 30s of SIGTERM")
	}
}
