package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"panther/sqlite"
)

// The reliability tests of issue 8 that run the real binary: kill -9 at random points of a crawl and
// of a re-embed, a read-only knowledge base, and a full disk. RELIABILITY.md lists what each tried
// and what held.

// relSeed is the seed of the pseudo-random kill delays: $PANTHER_TEST_SEED to repeat a run, else
// the clock. Every test that uses it logs it.
func relSeed(t *testing.T) uint64 {
	t.Helper()
	if v := os.Getenv("PANTHER_TEST_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("PANTHER_TEST_SEED=%q is not a number", v)
		}
		return s
	}
	return uint64(time.Now().UnixNano())
}

// relDoc is one stored page as two knowledge bases are compared by: what was fetched (its content
// hash), its state, and a hash of each of its passages and of each passage's vector.
type relDoc struct {
	status, contentHash string
	chunks              []string // hash of ordinal, heading, anchor, text, navigation and keywords
	vectors             []string // hash of the passage's vector, "" for none, by passage
}

// relSnapshot is a knowledge base's documents by URL and its vector count.
type relSnapshot struct {
	docs    map[string]relDoc
	vectors int
}

// snapshotKB reads path with its own connection, closed before it returns, so that the test holds
// nothing open while the binary runs.
func snapshotKB(t *testing.T, path string) relSnapshot {
	t.Helper()
	conn, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	snap := relSnapshot{docs: map[string]relDoc{}}
	rows, err := conn.Query(`SELECT d.url, d.status, d.content_hash, c.ordinal, c.heading, c.anchor, c.text, c.navigation, c.keywords,
			(SELECT v.vec FROM vectors v WHERE v.chunk_id = c.id)
		FROM documents d LEFT JOIN chunks c ON c.doc_id = d.id
		ORDER BY d.url, c.ordinal`)
	if err != nil {
		t.Fatalf("snapshot of %s: %v", path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var url, status, hash string
		var ordinal, navigation sql.NullInt64
		var heading, anchor, text, keywords sql.NullString
		var vec []byte
		if err := rows.Scan(&url, &status, &hash, &ordinal, &heading, &anchor, &text, &navigation, &keywords, &vec); err != nil {
			t.Fatal(err)
		}
		d := snap.docs[url]
		d.status, d.contentHash = status, hash
		if ordinal.Valid {
			h := sha256.Sum256(fmt.Appendf(nil, "%d\x00%s\x00%s\x00%s\x00%d\x00%s", ordinal.Int64, heading.String, anchor.String, text.String, navigation.Int64, keywords.String))
			d.chunks = append(d.chunks, hex.EncodeToString(h[:8]))
			vh := ""
			if vec != nil {
				s := sha256.Sum256(vec)
				vh = hex.EncodeToString(s[:8])
			}
			d.vectors = append(d.vectors, vh)
		}
		snap.docs[url] = d
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(`SELECT count(*) FROM vectors`).Scan(&snap.vectors); err != nil {
		t.Fatal(err)
	}
	return snap
}

// diff lists how got differs from want, at most a few lines of it.
func (want relSnapshot) diff(got relSnapshot) []string {
	var out []string
	if want.vectors != got.vectors {
		out = append(out, fmt.Sprintf("%d vectors, want %d", got.vectors, want.vectors))
	}
	if len(got.docs) != len(want.docs) {
		out = append(out, fmt.Sprintf("%d documents, want %d", len(got.docs), len(want.docs)))
	}
	for url, w := range want.docs {
		g, ok := got.docs[url]
		switch {
		case !ok:
			out = append(out, "missing "+url)
		case g.status != w.status || g.contentHash != w.contentHash:
			out = append(out, fmt.Sprintf("%s: %s %s, want %s %s", url, g.status, g.contentHash, w.status, w.contentHash))
		case !slices.Equal(g.chunks, w.chunks):
			out = append(out, fmt.Sprintf("%s: passages %v, want %v", url, g.chunks, w.chunks))
		case !slices.Equal(g.vectors, w.vectors):
			out = append(out, fmt.Sprintf("%s: vectors %v, want %v", url, g.vectors, w.vectors))
		}
	}
	for url := range got.docs {
		if _, ok := want.docs[url]; !ok {
			out = append(out, "unexpected "+url)
		}
	}
	slices.Sort(out)
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("and %d more", len(out)-10))
	}
	return out
}

// checkStore opens path as panther does and runs its full check: the file (quick_check) and the
// full-text index against the passages it should hold. Then PRAGMA integrity_check, the slower and
// more thorough one.
func checkStore(t *testing.T, path string) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open after the kill: %v", err)
	}
	err = db.Check(context.Background())
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var res string
	if err := conn.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil || res != "ok" {
		t.Fatalf("integrity_check of %s: %q %v", path, res, err)
	}
}

// runUntilKilled starts bin and sends it SIGKILL after delay. It reports whether the kill found the
// process still running; a process that ended on its own before must have succeeded.
func runUntilKilled(t *testing.T, bin string, env []string, delay time.Duration, args ...string) (killed bool) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("panther %s ended before the kill, failing: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return false
	case <-timer.C:
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	err := <-done
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	if err != nil {
		t.Fatalf("panther %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return false // it ended on its own just before the signal
}

// mustRun runs bin to its end and fails the test unless it succeeds.
func mustRun(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("panther %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestKill9CrawlTwentyTimes kills a crawl with SIGKILL twenty times in a row at pseudo-random
// moments, checks the database after each kill, lets a last run finish, and compares the knowledge
// base with one built by a crawl that was never interrupted: the same pages with the same content
// hashes, the same passages.
func TestKill9CrawlTwentyTimes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it twenty times")
	}
	bin := buildPanther(t)
	seed := relSeed(t)
	t.Logf("seed %d (PANTHER_TEST_SEED=%d repeats the kill delays)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	// 800 pages at 15 ms each over two connections: about 130 pages a second, so that twenty runs of
	// a few hundred milliseconds each (about 300 pages in all here) are all killed before the crawl
	// is done, on a faster machine too.
	site := &slowSite{hits: map[int]int{}, n: 800}
	srv := httptest.NewServer(site)
	defer srv.Close()
	dir := t.TempDir()
	env := append(os.Environ(), "HOME="+dir, "PANTHER_EMBEDDER=none", "PANTHER_CONFIG=")
	seedURL := srv.URL + "/p/0.html"

	ref := filepath.Join(dir, "reference.db")
	mustRun(t, bin, env, "--db", ref, "crawl", seedURL, "--concurrency", "8", "--quiet")
	want := snapshotKB(t, ref)
	if len(want.docs) != site.n {
		t.Fatalf("the reference crawl stored %d pages, want %d", len(want.docs), site.n)
	}

	db := filepath.Join(dir, "killed.db")
	args := []string{"--db", db, "crawl", seedURL, "--concurrency", "2", "--quiet"}
	kills := 0
	for i := range 20 {
		before, _ := site.served()
		delay := 40*time.Millisecond + time.Duration(rng.Int64N(int64(360*time.Millisecond)))
		killed := runUntilKilled(t, bin, env, delay, args...)
		after, _ := site.served()
		t.Logf("run %2d: killed=%v after %v, %d pages served during the run", i+1, killed, delay.Round(time.Millisecond), after-before)
		if killed {
			kills++
		}
		if _, err := os.Stat(db); err == nil {
			checkStore(t, db)
		}
	}
	if kills < 15 {
		t.Errorf("only %d of 20 runs were killed mid-way; the site is too small or too fast for the delays", kills)
	}
	mustRun(t, bin, env, args...)
	checkStore(t, db)
	if d := want.diff(snapshotKB(t, db)); len(d) > 0 {
		t.Errorf("after %d kills and a last run, the knowledge base differs from an uninterrupted crawl's:\n%s", kills, strings.Join(d, "\n"))
	}
}

// TestKill9EmbedTwentyTimes does the same to 'panther embed' with an OpenAI-compatible embeddings
// server: twenty kills, a check after each, then the vectors must be those of an uninterrupted run.
func TestKill9EmbedTwentyTimes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it twenty times")
	}
	bin := buildPanther(t)
	seed := relSeed(t)
	t.Logf("seed %d (PANTHER_TEST_SEED=%d repeats the kill delays)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	dir := t.TempDir()

	// 960 pages of 8 sections: 7,680 passages, 30 batches of 256.
	const passages = 960 * 8
	pages := relWidgetSite(t, dir, 960)
	base := filepath.Join(dir, "base.db")
	mustRun(t, bin, append(os.Environ(), "HOME="+dir, "PANTHER_EMBEDDER=none", "PANTHER_CONFIG="), "--db", base, "crawl", pages, "--quiet")
	ref, killed := filepath.Join(dir, "reference.db"), filepath.Join(dir, "killed.db")
	for _, dst := range []string{ref, killed} {
		copyFile(t, base, dst)
	}

	// The fake's vectors depend only on the text, so two servers answer alike: a quick one for the
	// runs that must finish, a slow one for those that are killed.
	quick := httptest.NewServer(&fakeEmbeddings{})
	defer quick.Close()
	// Each batch takes 150 ms at the slow server: a run killed after 40 to 400 ms gets through two
	// batches at most (about 20 of the 30 in all here), so that every kill lands while there is work
	// left, on a faster machine too.
	fake := &fakeEmbeddings{delay: 150 * time.Millisecond}
	slow := httptest.NewServer(fake)
	defer slow.Close()
	envFor := func(srv *httptest.Server) []string {
		return append(os.Environ(), "HOME="+dir, "PANTHER_CONFIG=", "PANTHER_EMBEDDER=openai", "PANTHER_EMBED_URL="+srv.URL+"/v1",
			"PANTHER_EMBED_MODEL=fake-8", "PANTHER_EMBED_DIMS=8", "PANTHER_EMBED_API_KEY=sk-test-secret")
	}
	mustRun(t, bin, envFor(quick), "--db", ref, "embed", "--quiet")
	want := snapshotKB(t, ref)
	if want.vectors != passages {
		t.Fatalf("the reference run stored %d vectors, want %d", want.vectors, passages)
	}

	kills := 0
	for i := range 20 {
		before := fake.inputs.Load()
		delay := 40*time.Millisecond + time.Duration(rng.Int64N(int64(360*time.Millisecond)))
		k := runUntilKilled(t, bin, envFor(slow), delay, "--db", killed, "embed", "--quiet")
		t.Logf("run %2d: killed=%v after %v, %d passages embedded by the server during the run", i+1, k, delay.Round(time.Millisecond), fake.inputs.Load()-before)
		if k {
			kills++
		}
		checkStore(t, killed)
	}
	if kills < 15 {
		t.Errorf("only %d of 20 runs were killed mid-way", kills)
	}
	out := mustRun(t, bin, envFor(quick), "--db", killed, "embed", "--quiet")
	if !strings.Contains(out, fmt.Sprintf("%d of %d passages have vectors", passages, passages)) {
		t.Errorf("the last run: %s", out)
	}
	checkStore(t, killed)
	if d := want.diff(snapshotKB(t, killed)); len(d) > 0 {
		t.Errorf("after %d kills and a last run, the knowledge base differs from an uninterrupted embed's:\n%s", kills, strings.Join(d, "\n"))
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// relWidgetSite writes n markdown pages of 8 sections each into a new folder in parent and returns it.
func relWidgetSite(t *testing.T, parent string, n int) string {
	t.Helper()
	dir := filepath.Join(parent, "site")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		var b strings.Builder
		fmt.Fprintf(&b, "# Widget %d\n", i)
		for s := 1; s <= 8; s++ {
			fmt.Fprintf(&b, "\n## Part %d of widget %d\n\nWidget %d, part %d, has %d gears and a %d mm shaft.\n", s, i, i, s, i*s, i+s)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("w%04d.md", i)), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runAs runs bin to its end as the user uid (when not -1) and returns its exit code and output.
func runAs(t *testing.T, bin string, env []string, uid int, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	if uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	}
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("panther %s: %v", strings.Join(args, " "), err)
	}
	return code, out.String(), errOut.String()
}

// TestReadOnlyKnowledgeBase makes the database file (and its folder) read-only: searching still
// works, a crawl fails with one line naming the file, and nothing stored is lost. Root ignores file
// modes, so as root the binary runs as nobody.
func TestReadOnlyKnowledgeBase(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	uid := -1
	if os.Geteuid() == 0 {
		uid = 65534 // nobody
	}
	// Outside t.TempDir, whose folders are private to the user running the test.
	top, err := os.MkdirTemp("", "panther-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
		os.RemoveAll(top)
	})
	if err := os.Chmod(top, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(top, "panther")
	copyFile(t, buildPanther(t), bin)
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	site := relWidgetSite(t, top, 20)
	home := filepath.Join(top, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "HOME="+home, "PANTHER_EMBEDDER=none", "PANTHER_CONFIG=")

	for _, tc := range []struct {
		name    string
		dirMode os.FileMode
	}{
		{"file and folder read-only", 0o555},
		// SQLite may create its -wal and -shm files beside the file then.
		{"file read-only, folder writable", 0o777},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kbDir := filepath.Join(top, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.MkdirAll(kbDir, 0o755); err != nil {
				t.Fatal(err)
			}
			db := filepath.Join(kbDir, "kb.db")
			mustRun(t, bin, env, "--db", db, "crawl", filepath.Join(site, "w0000.md"), "--quiet")
			mustRun(t, bin, env, "--db", db, "crawl", filepath.Join(site, "w0001.md"), "--quiet")
			before := snapshotKB(t, db)
			if len(before.docs) != 2 {
				t.Fatalf("%d documents stored, want 2", len(before.docs))
			}
			if err := os.Chmod(db, 0o444); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(kbDir, tc.dirMode); err != nil {
				t.Fatal(err)
			}

			code, out, errOut := runAs(t, bin, env, uid, "--db", db, "search", "--json", "widget 1 part 3 gears")
			if code != 0 || !strings.Contains(out, "w0001.md") {
				t.Errorf("search of a read-only knowledge base: exit %d\n%s%s", code, out, errOut)
			}
			code, _, errOut = runAs(t, bin, env, uid, "--db", db, "status")
			if code != 0 {
				t.Errorf("status of a read-only knowledge base: exit %d: %s", code, errOut)
			}
			code, _, errOut = runAs(t, bin, env, uid, "--db", db, "crawl", site, "--quiet")
			if code != 1 || !strings.Contains(errOut, "database "+db+" is read-only") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("crawl into a read-only knowledge base: exit %d, stderr %q; want exit 1 and one line naming %s as read-only", code, errOut, db)
			}

			if err := os.Chmod(kbDir, 0o755); err != nil {
				t.Fatal(err)
			}
			checkStore(t, db)
			if d := before.diff(snapshotKB(t, db)); len(d) > 0 {
				t.Errorf("the read-only knowledge base changed:\n%s", strings.Join(d, "\n"))
			}
		})
	}
}

// TestFullDisk crawls into a knowledge base on a 2 MiB tmpfs until it is full: the crawl fails with
// a clear error, every page stored before is intact after it and after another failed attempt, and
// once there is room again the same crawl finishes. Mounting needs root (CAP_SYS_ADMIN); without it
// the test is skipped, and sqlite's TestFullDatabase covers the store's part with max_page_count.
func TestFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	mnt := filepath.Join(t.TempDir(), "small")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("cannot mount a small tmpfs (%v); sqlite's TestFullDatabase covers a full database", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	bin := buildPanther(t)
	site := relWidgetSite(t, t.TempDir(), 400)
	dir := t.TempDir()
	env := append(os.Environ(), "HOME="+dir, "PANTHER_EMBEDDER=none", "PANTHER_CONFIG=")
	db := filepath.Join(mnt, "kb.db")

	code, _, errOut := runAs(t, bin, env, -1, "--db", db, "crawl", site, "--quiet")
	if code != 1 || !strings.Contains(errOut, "database or disk is full") || !strings.Contains(errOut, db) {
		t.Fatalf("crawl onto a full disk: exit %d, stderr %q; want exit 1 and an error naming %s as full", code, errOut, db)
	}
	if strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("the error is not one line: %q", errOut)
	}
	checkStore(t, db)
	stored := snapshotKB(t, db)
	t.Logf("%d pages stored before the disk was full", len(stored.docs))
	if len(stored.docs) == 0 || len(stored.docs) >= 400 {
		t.Fatalf("%d pages stored: the disk should be full part way", len(stored.docs))
	}

	// Another attempt on the full disk fails the same way and loses nothing.
	code, _, errOut = runAs(t, bin, env, -1, "--db", db, "crawl", site, "--quiet")
	if code != 1 || !strings.Contains(errOut, "full") {
		t.Errorf("second crawl onto a full disk: exit %d, %q", code, errOut)
	}
	checkStore(t, db)
	again := snapshotKB(t, db)
	for url, d := range stored.docs {
		if g, ok := again.docs[url]; !ok || !slices.Equal(g.chunks, d.chunks) || g.contentHash != d.contentHash {
			t.Errorf("%s changed or was lost by a failed crawl", url)
		}
	}
	code, out, errOut := runAs(t, bin, env, -1, "--db", db, "search", "--json", "widget part gears")
	if code != 0 || !strings.Contains(out, `"url"`) {
		t.Errorf("search of a full knowledge base: exit %d\n%s%s", code, out, errOut)
	}

	// Room again: the same crawl goes on and finishes.
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", syscall.MS_REMOUNT, "size=64m"); err != nil {
		t.Fatalf("grow the tmpfs: %v", err)
	}
	mustRun(t, bin, env, "--db", db, "crawl", site, "--quiet")
	checkStore(t, db)
	if n := len(snapshotKB(t, db).docs); n != 400 {
		t.Errorf("after freeing space the crawl stored %d pages, want 400", n)
	}
}
