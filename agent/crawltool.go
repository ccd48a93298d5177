package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"panther"
)

// SiteCrawler crawls a site into the knowledge base on an agent's behalf. The implementation decides
// politeness and which addresses may be reached; the tool bounds how much one call may crawl.
type SiteCrawler interface {
	CrawlSite(ctx context.Context, seed string, maxPages int) (CrawlReport, error)
}

// CrawlReport is what an agent learns about a crawl it started.
type CrawlReport struct {
	Fetched, New, Changed, Unchanged, Failed, Skipped int
	// Truncated says the page limit stopped the crawl with pages still queued; the next crawl of the
	// same seed goes on from there.
	Truncated bool
}

// Bounds of the crawl tool: an agent grows the knowledge base a bounded step at a time.
const (
	CrawlDefaultPages = 50
	CrawlMaxPages     = 200
)

type crawlTool struct{ c SiteCrawler }

// Crawl returns the crawl tool, for agents allowed to grow the knowledge base: it crawls a
// documentation site (http or https only, never local files) into the knowledge base, where
// kb_search then finds it.
func Crawl(c SiteCrawler) Tool { return crawlTool{c: c} }

func (crawlTool) Spec() panther.ToolSpec {
	return panther.ToolSpec{
		Name: "crawl",
		Description: fmt.Sprintf("Crawl a documentation site into the knowledge base so that kb_search can find its pages. "+
			"Give the URL of the docs' root or of the section you need: the crawl stays under that path. "+
			"It fetches at most max_pages pages (default %d, at most %d); crawling the same URL again continues "+
			"where the last crawl stopped and refreshes changed pages. Search with kb_search afterwards.", CrawlDefaultPages, CrawlMaxPages),
		Parameters: json.RawMessage(fmt.Sprintf(`{"type":"object","properties":{`+
			`"url":{"type":"string","description":"http(s) URL of the site or section to crawl"},`+
			`"max_pages":{"type":"integer","minimum":1,"maximum":%d}`+
			`},"required":["url"]}`, CrawlMaxPages)),
	}
}

func (t crawlTool) Run(ctx context.Context, args json.RawMessage) (ToolResult, error) {
	var a struct {
		URL      string `json:"url"`
		MaxPages int    `json:"max_pages"`
	}
	if err := decodeArgs("crawl", args, &a); err != nil {
		return ToolResult{}, err
	}
	seed := strings.TrimSpace(a.URL)
	if seed == "" {
		return ToolResult{}, panther.Invalidf("crawl: url is empty")
	}
	u, err := url.Parse(seed)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Local paths and file:// URLs are refused: an agent must not read the host's files.
		return ToolResult{}, panther.Invalidf("crawl: %q is not an http(s) URL", seed)
	}
	if u.User != nil {
		return ToolResult{}, panther.Invalidf("crawl: URLs with credentials are refused")
	}
	switch {
	case a.MaxPages < 0:
		return ToolResult{}, panther.Invalidf("crawl: max_pages must be between 1 and %d, got %d", CrawlMaxPages, a.MaxPages)
	case a.MaxPages == 0:
		a.MaxPages = CrawlDefaultPages
	case a.MaxPages > CrawlMaxPages:
		a.MaxPages = CrawlMaxPages
	}
	rep, err := t.c.CrawlSite(ctx, u.String(), a.MaxPages)
	if err != nil {
		return ToolResult{}, fmt.Errorf("crawl %s: %w", u, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Crawled %s: %d pages fetched (%d new, %d changed, %d unchanged), %d failed, %d skipped.",
		u, rep.Fetched, rep.New, rep.Changed, rep.Unchanged, rep.Failed, rep.Skipped)
	if rep.Truncated {
		fmt.Fprintf(&b, " The page limit (%d) stopped it with pages still queued; crawl the same URL again to go on.", a.MaxPages)
	}
	if rep.New+rep.Changed+rep.Unchanged > 0 {
		b.WriteString(" Search the new pages with kb_search.")
	} else {
		b.WriteString(" Nothing was added to the knowledge base.")
	}
	return ToolResult{Content: b.String()}, nil
}
