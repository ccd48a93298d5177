// Command colly is the baseline panther's crawler is measured against: the
// pipeline a Go user would assemble from the two best-known libraries —
// gocolly/colly for crawling and JohannesKaufmann/html-to-markdown for
// conversion — with the settings such a user would pick (async, a parallelism
// limit, same host, path prefix). It has no main-content step, no storage
// beyond one markdown file per page, and no incremental re-crawl.
//
//	colly -out /tmp/md -parallelism 8 http://127.0.0.1:8080/index.html
//
// It lives in its own module so that the product module does not carry colly's
// dependency tree.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/JohannesKaufmann/html-to-markdown/v2/converter"
	"github.com/JohannesKaufmann/html-to-markdown/v2/plugin/base"
	"github.com/JohannesKaufmann/html-to-markdown/v2/plugin/commonmark"
	"github.com/JohannesKaufmann/html-to-markdown/v2/plugin/table"
	"github.com/gocolly/colly/v2"
)

// Summary is what -json prints; bench/run.sh reads pages and seconds.
type Summary struct {
	Seed        string  `json:"seed"`
	Pages       int64   `json:"pages"`
	Fetches     int64   `json:"fetches"`
	Errors      int64   `json:"errors"`
	Bytes       int64   `json:"bytes"`
	Markdown    int64   `json:"markdown_bytes"`
	Seconds     float64 `json:"seconds"`
	PagesPerSec float64 `json:"pages_per_sec"`
	Parallelism int     `json:"parallelism"`
	Reparse     bool    `json:"reparse"`
}

func main() {
	out := flag.String("out", "", "folder for the markdown files (required)")
	parallelism := flag.Int("parallelism", 8, "concurrent requests (colly LimitRule)")
	maxPages := flag.Int("max-pages", 0, "stop after this many requests (0: no limit)")
	reparse := flag.Bool("reparse", false, "convert from the raw body (a second HTML parse) instead of colly's parsed DOM")
	asJSON := flag.Bool("json", false, "print the summary as one JSON object")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: colly [flags] START_URL\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	seed, err := url.Parse(flag.Arg(0))
	if err != nil || seed.Host == "" {
		log.Fatalf("colly: bad start URL %q", flag.Arg(0))
	}
	// Scope is the seed's folder, as "crawl the docs under /docs/15/" means.
	prefix := seed.Path
	if !strings.HasSuffix(prefix, "/") {
		prefix = strings.TrimSuffix(path.Dir(prefix), "/") + "/"
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}

	c := colly.NewCollector(
		colly.AllowedDomains(seed.Hostname()),
		colly.Async(true),
		colly.MaxRequests(uint32(*maxPages)),
	)
	if err := c.Limit(&colly.LimitRule{DomainGlob: "*", Parallelism: *parallelism}); err != nil {
		log.Fatal(err)
	}
	// Keep-alive connections per host must cover the parallelism, or the
	// baseline would pay for new TCP connections that a user would not.
	c.WithTransport(&http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConns:        *parallelism * 2,
		MaxIdleConnsPerHost: *parallelism * 2,
		IdleConnTimeout:     90 * time.Second,
	})

	conv := converter.NewConverter(converter.WithPlugins(
		base.NewBasePlugin(),
		commonmark.NewCommonmarkPlugin(),
		table.NewTablePlugin(),
	))

	var pages, fetches, errs, inBytes, mdBytes atomic.Int64
	// colly's visited check is a read then a write under separate locks,
	// so two goroutines can both fetch the same URL. Pages counts each URL
	// once, so that pages/s is not flattered; fetches shows the waste.
	var saved sync.Map
	save := func(u *url.URL, md []byte) {
		if _, dup := saved.LoadOrStore(u.String(), true); dup {
			return
		}
		name := fileName(*out, u)
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			log.Print(err)
			errs.Add(1)
			return
		}
		if err := os.WriteFile(name, md, 0o644); err != nil {
			log.Print(err)
			errs.Add(1)
			return
		}
		pages.Add(1)
		mdBytes.Add(int64(len(md)))
	}

	// Callbacks run in registration order, so links are collected before
	// the converter may rewrite the shared DOM.
	c.OnHTML("a[href]", func(e *colly.HTMLElement) {
		abs := e.Request.AbsoluteURL(e.Attr("href"))
		if abs == "" {
			return
		}
		u, err := url.Parse(abs)
		if err != nil || u.Host != seed.Host || !strings.HasPrefix(u.Path, prefix) {
			return
		}
		// colly treats page#a and page#b as two URLs and would fetch the
		// page once per anchor; any user notices and strips the fragment.
		u.Fragment = ""
		u.RawFragment = ""
		e.Request.Visit(u.String()) // AlreadyVisited and out-of-scope errors are expected
	})
	if !*reparse {
		c.OnHTML("html", func(e *colly.HTMLElement) {
			md, err := conv.ConvertNode(e.DOM.Nodes[0], converter.WithDomain(e.Request.URL.String()))
			if err != nil {
				log.Printf("%s: %v", e.Request.URL, err)
				errs.Add(1)
				return
			}
			save(e.Request.URL, md)
		})
	}
	c.OnResponse(func(r *colly.Response) {
		fetches.Add(1)
		inBytes.Add(int64(len(r.Body)))
		if !*reparse || !strings.Contains(r.Headers.Get("Content-Type"), "html") {
			return
		}
		md, err := conv.ConvertString(string(r.Body), converter.WithDomain(r.Request.URL.String()))
		if err != nil {
			log.Printf("%s: %v", r.Request.URL, err)
			errs.Add(1)
			return
		}
		save(r.Request.URL, []byte(md))
	})
	c.OnError(func(r *colly.Response, err error) {
		log.Printf("%s: %v", r.Request.URL, err)
		errs.Add(1)
	})

	start := time.Now()
	if err := c.Visit(seed.String()); err != nil {
		log.Fatal(err)
	}
	c.Wait()
	secs := time.Since(start).Seconds()

	s := Summary{
		Seed: seed.String(), Pages: pages.Load(), Fetches: fetches.Load(), Errors: errs.Load(),
		Bytes: inBytes.Load(), Markdown: mdBytes.Load(), Seconds: secs,
		PagesPerSec: float64(pages.Load()) / secs, Parallelism: *parallelism, Reparse: *reparse,
	}
	if *asJSON {
		json.NewEncoder(os.Stdout).Encode(s)
		return
	}
	fmt.Printf("pages %d  fetches %d  errors %d  seconds %.2f  pages/s %.0f\n", s.Pages, s.Fetches, s.Errors, s.Seconds, s.PagesPerSec)
}

// fileName maps a URL to out/<path>.md; "/" and "/docs/" become index.md so
// that the folder layout mirrors the site.
func fileName(out string, u *url.URL) string {
	p := u.Path
	if p == "" || strings.HasSuffix(p, "/") {
		p += "index.html"
	}
	p = path.Clean("/" + p)
	if u.RawQuery != "" {
		p += "_" + url.PathEscape(u.RawQuery)
	}
	return filepath.Join(out, filepath.FromSlash(p)) + ".md"
}
