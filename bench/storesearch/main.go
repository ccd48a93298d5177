// Command storesearch times search on several stores side by side, in one run: the manual's
// book-index queries through kb.Service in lexical, vector and hybrid mode, with the built-in
// embedder, on each store named (a SQLite file, or a postgres:// DSN). It is how BENCHMARKS.md
// compares the embedded store with PostgreSQL (exact vectors in process) and with PostgreSQL +
// pgvector (HNSW). The stores must hold the same knowledge base with the built-in embedder's vectors:
//
//	panther --db kb.db crawl http://127.0.0.1:PORT/ && panther --db kb.db --embedder builtin embed
//	panther --db kb.db export --to postgres://...
//	go run ./bench/storesearch -queries 1000 kb.db postgres://... postgres://...pgvector...
//
// Rounds alternate the stores so that a noisy neighbour costs each of them alike.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"panther"
	"panther/embed"
	"panther/kb"
	"panther/postgres"
	"panther/sqlite"
)

type store interface {
	kb.Store
	Close() error
}

type target struct {
	name  string
	db    store
	svc   *kb.Service
	times map[panther.SearchMode][]time.Duration
}

func main() {
	n := flag.Int("queries", 1000, "book-index queries per mode and store (the first ones of the file)")
	rounds := flag.Int("rounds", 3, "passes over the queries; the first is a warm-up and not counted")
	qrels := flag.String("qrels", "bench/testdata/pg15-bookindex.qrels.jsonl", "queries, one JSON object with a query field per line")
	wait := flag.Duration("wait-index", 10*time.Minute, "how long to wait for a PostgreSQL store's HNSW index")
	flag.Parse()
	if flag.NArg() == 0 {
		log.Fatal("name one or more stores: a SQLite file or a postgres:// DSN")
	}
	ctx := context.Background()
	queries, err := readQueries(*qrels, *n)
	if err != nil {
		log.Fatal(err)
	}
	emb, err := embed.NewGloVe()
	if err != nil {
		log.Fatal(err)
	}
	var targets []*target
	for _, spec := range flag.Args() {
		t, err := open(ctx, spec, emb, *wait)
		if err != nil {
			log.Fatalf("%s: %v", spec, err)
		}
		defer t.db.Close()
		targets = append(targets, t)
	}
	modes := []panther.SearchMode{panther.ModeLexical, panther.ModeVector, panther.ModeHybrid}
	for r := range *rounds {
		for _, q := range queries {
			for _, mode := range modes {
				for _, t := range targets {
					start := time.Now()
					if _, err := t.svc.Search(ctx, panther.Query{Text: q, K: 10, Mode: mode}); err != nil {
						log.Fatalf("%s: %s search %q: %v", t.name, mode, q, err)
					}
					if r > 0 {
						t.times[mode] = append(t.times[mode], time.Since(start))
					}
				}
			}
		}
	}
	fmt.Printf("%d queries × %d rounds (after one warm-up), k = 10, embedder %s\n\n", len(queries), *rounds-1, emb.Model())
	fmt.Println("| store | mode | mean | p50 | p95 | p99 |")
	fmt.Println("|---|---|---:|---:|---:|---:|")
	for _, t := range targets {
		for _, mode := range modes {
			d := t.times[mode]
			slices.Sort(d)
			var sum time.Duration
			for _, x := range d {
				sum += x
			}
			pct := func(p float64) string { return ms(d[min(len(d)-1, int(p*float64(len(d))))]) }
			fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", t.name, mode, ms(sum/time.Duration(len(d))), pct(0.5), pct(0.95), pct(0.99))
		}
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func open(ctx context.Context, spec string, emb *embed.GloVe, wait time.Duration) (*target, error) {
	t := &target{times: map[panther.SearchMode][]time.Duration{}}
	if strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://") {
		db, err := postgres.OpenWith(ctx, spec, postgres.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return nil, err
		}
		t.db, t.name = db, "postgres "+db.Where()+", vectors by "+db.VectorSearch()
		if strings.Contains(db.VectorSearch(), "HNSW") {
			if err := waitIndex(ctx, db, emb, wait); err != nil {
				db.Close()
				return nil, err
			}
		}
	} else {
		db, err := sqlite.Open(ctx, spec)
		if err != nil {
			return nil, err
		}
		t.db, t.name = db, "sqlite "+spec
	}
	svc, err := kb.New(t.db, kb.Options{Embedder: emb})
	if err != nil {
		t.db.Close()
		return nil, err
	}
	with, all, err := svc.Coverage(ctx)
	if err != nil || with == 0 || with != all {
		t.db.Close()
		return nil, fmt.Errorf("vectors of %s for %d of %d passages (%v): embed the store first", emb.Model(), with, all, err)
	}
	t.svc = svc
	return t, nil
}

// waitIndex searches until the model's HNSW index is built, so that the timed searches use it.
func waitIndex(ctx context.Context, db *postgres.DB, emb *embed.GloVe, wait time.Duration) error {
	q, err := emb.Embed(ctx, []string{"vacuum"})
	if err != nil {
		return err
	}
	start := time.Now()
	for {
		if _, err := db.SearchVectors(ctx, emb.Model(), q[0], 1, panther.Filter{}); err != nil {
			return err
		}
		ready, err := db.VectorIndexReady(ctx, emb.Model())
		if err != nil || ready {
			log.Printf("%s: HNSW index ready after %s", db.Where(), time.Since(start).Round(time.Second))
			return err
		}
		if time.Since(start) > wait {
			return fmt.Errorf("the HNSW index of %s was not ready after %s", emb.Model(), wait)
		}
		time.Sleep(time.Second)
	}
}

func readQueries(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var qs []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() && len(qs) < n {
		var l struct{ Query string }
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		qs = append(qs, l.Query)
	}
	return qs, sc.Err()
}
