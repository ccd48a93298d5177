// Command tune evaluates search settings side by side on one knowledge base, so that defaults are
// chosen by measurement (see BENCHMARKS.md). It never writes to the database.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"strconv"
	"strings"

	"panther/kb"
	"panther/sqlite"
)

func main() {
	dbPath := flag.String("db", "", "knowledge base to evaluate on")
	qrelsPath := flag.String("qrels", "bench/testdata/pg15-bookindex.qrels.jsonl", "ground truth")
	base := flag.String("base", "", "base URL the qrels are relative to")
	grid := flag.String("grid", "5,3,1,2,1", "settings separated by ';', each title,heading,body,keywords,perPage")
	exhaustive := flag.Bool("or", false, "rank every chunk holding any query word, not those holding all of them first")
	pages := flag.Bool("pages", false, "evaluate the baseline instead: plain BM25 over whole pages")
	flag.Parse()
	ctx := context.Background()
	baseURL, err := url.Parse(*base)
	if err != nil {
		log.Fatal(err)
	}
	f, err := os.Open(*qrelsPath)
	if err != nil {
		log.Fatal(err)
	}
	qrels, err := kb.ReadQrels(f, baseURL)
	f.Close()
	if err != nil {
		log.Fatal(err)
	}
	db, err := sqlite.OpenWith(ctx, *dbPath, sqlite.Options{ExhaustiveOR: *exhaustive})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if *pages {
		dir, err := os.MkdirTemp("", "panther-tune")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		base, err := newPageBM25(ctx, db, dir)
		if err != nil {
			log.Fatal(err)
		}
		rep, err := kb.Evaluate(ctx, base, qrels, 10)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("plain BM25 over whole pages: page R@10 %.3f MRR@10 %.3f nDCG@10 %.3f hit@1 %.3f\n", rep.Page.Recall, rep.Page.MRR, rep.Page.NDCG, rep.Page.Hit1)
		return
	}
	fmt.Println("| title | heading | body | keywords | per page | page R@10 | page MRR | section R@10 | section MRR |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, setting := range strings.Split(*grid, ";") {
		v := parseFloats(setting)
		if err := db.SetWeights(sqlite.Weights{Title: v[0], Heading: v[1], Body: v[2], Keywords: v[3]}); err != nil {
			log.Fatal(err)
		}
		svc, err := kb.New(db, kb.Options{MaxPassagesPerPage: int(v[4])})
		if err != nil {
			log.Fatal(err)
		}
		rep, err := kb.Evaluate(ctx, svc, qrels, 10)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("| %g | %g | %g | %g | %g | %.3f | %.3f | %.3f | %.3f |\n", v[0], v[1], v[2], v[3], v[4],
			rep.Page.Recall, rep.Page.MRR, rep.Section.Recall, rep.Section.MRR)
	}
}

func parseFloats(s string) []float64 {
	parts := strings.Split(s, ",")
	if len(parts) != 5 {
		log.Fatalf("setting %q: want title,heading,body,keywords,perPage", s)
	}
	out := make([]float64, len(parts))
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			log.Fatalf("setting %q: %v", s, err)
		}
		out[i] = v
	}
	return out
}
