package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestEmbedderModesAndStatus(t *testing.T) {
	site := copySite(t)
	srv := httptest.NewServer(http.FileServer(http.Dir(site)))
	defer srv.Close()
	c := newCLI(t)
	c.env["PANTHER_EMBEDDER"] = "builtin"

	var sum crawlSummaryJSON
	c.mustJSON(&sum, "crawl", srv.URL+"/index.html", "--json")
	if sum.Embedded == 0 {
		t.Fatalf("the crawl embedded no passages: %+v", sum)
	}
	var st struct {
		Embedder struct {
			Model            string
			Dimensions       int
			Vectors          int
			SearchableChunks int `json:"searchable_chunks"`
		}
		DefaultMode string `json:"default_mode"`
	}
	c.mustJSON(&st, "status", "--json")
	if st.Embedder.Model != "builtin:glove-sif-100d@1" || st.Embedder.Dimensions != 100 || st.Embedder.Vectors != st.Embedder.SearchableChunks || st.DefaultMode != "hybrid" {
		t.Fatalf("status: %+v", st)
	}
	for _, mode := range []string{"lexical", "vector", "hybrid"} {
		var res searchJSON
		c.mustJSON(&res, "search", "--json", "--mode", mode, "memory for flux buffers")
		if res.Mode != mode || len(res.Hits) == 0 || res.Hits[0].Found == "" {
			t.Errorf("search --mode %s: %+v", mode, res)
		}
	}
	if code, _, errOut := c.run("search", "--mode", "psychic", "x"); code != 2 || !strings.Contains(errOut, "psychic") {
		t.Errorf("a bad mode: exit %d, %q", code, errOut)
	}
	c.env["PANTHER_EMBEDDER"] = "none"
	if code, _, errOut := c.run("search", "--mode", "vector", "x"); code != 2 || !strings.Contains(errOut, "needs an embedder") {
		t.Errorf("vector search without an embedder: exit %d, %q", code, errOut)
	}
}

// fakeEmbeddings speaks the OpenAI /v1/embeddings wire format, slowly, and counts the inputs it
// has embedded.
type fakeEmbeddings struct {
	delay  time.Duration
	inputs atomic.Int64
}

func (f *fakeEmbeddings) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string   `json:"model"`
		Input []string `json:"input"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `{"error":{"message":"bad json"}}`, http.StatusBadRequest)
		return
	}
	time.Sleep(f.delay)
	type item struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float64 `json:"embedding"`
	}
	out := struct {
		Object string `json:"object"`
		Data   []item `json:"data"`
		Model  string `json:"model"`
	}{Object: "list", Model: req.Model}
	for i, text := range req.Input {
		v := make([]float64, 8)
		for j := range v {
			v[j] = math.Sin(float64(len(text)*(j+1)) + float64(j))
		}
		out.Data = append(out.Data, item{Object: "embedding", Index: i, Embedding: v})
	}
	f.inputs.Add(int64(len(req.Input)))
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// TestEmbedResumesAfterKill kills 'panther embed' mid-way and checks that the re-run embeds only
// what was left, and that the database is intact.
func TestEmbedResumesAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildPanther(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "kb.db")
	// 1,200 small pages of text, crawled as a local folder without an embedder.
	pages := filepath.Join(dir, "pages")
	if err := os.MkdirAll(pages, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 1200 {
		body := fmt.Sprintf("# Page %d\n\nThis page tells about widget number %d and its %d gears.\n", i, i, i*7)
		if err := os.WriteFile(filepath.Join(pages, fmt.Sprintf("p%04d.md", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "HOME="+dir, "PANTHER_EMBEDDER=none")
	crawl := exec.Command(bin, "--db", db, "crawl", pages, "--quiet")
	crawl.Env = env
	if out, err := crawl.CombinedOutput(); err != nil {
		t.Fatalf("crawl: %v\n%s", err, out)
	}

	slow := &fakeEmbeddings{delay: 300 * time.Millisecond}
	srv := httptest.NewServer(slow)
	defer srv.Close()
	embedEnv := append(os.Environ(), "HOME="+dir, "PANTHER_EMBEDDER=openai", "PANTHER_EMBED_URL="+srv.URL+"/v1",
		"PANTHER_EMBED_MODEL=fake-8", "PANTHER_EMBED_DIMS=8", "PANTHER_EMBED_API_KEY=sk-test-secret")
	cmd := exec.Command(bin, "--db", db, "embed", "--quiet")
	cmd.Env = embedEnv
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for slow.inputs.Load() < 256 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("embedding did not get going")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Let the first batch commit, then kill while a later one is in flight.
	time.Sleep(400 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	first := slow.inputs.Load()
	checkIntegrity(t, db)

	rerun := exec.Command(bin, "--db", db, "embed", "--quiet")
	rerun.Env = embedEnv
	out, err := rerun.CombinedOutput()
	if err != nil {
		t.Fatalf("re-run: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "sk-test-secret") {
		t.Fatalf("the API key leaked into the output: %s", out)
	}
	if !strings.Contains(string(out), "1200 of 1200 passages have vectors") {
		t.Fatalf("re-run output: %s", out)
	}
	total := slow.inputs.Load()
	// All 1,200 passages embedded once, plus at most the batches in flight at the kill.
	if total < 1200 || total > 1200+2*256 || total-first >= 1200 {
		t.Errorf("%d inputs embedded in all (%d before the kill), want the re-run to do only what was left", total, first)
	}
}
