package agent

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// recordingCrawler stands in for the site crawler to check what the tool asks of it.
type recordingCrawler struct {
	seeds []string
	pages []int
	rep   CrawlReport
	err   error
}

func (r *recordingCrawler) CrawlSite(ctx context.Context, seed string, maxPages int) (CrawlReport, error) {
	r.seeds = append(r.seeds, seed)
	r.pages = append(r.pages, maxPages)
	return r.rep, r.err
}

func TestCrawlTool(t *testing.T) {
	tests := []struct {
		name      string
		args      string
		rep       CrawlReport
		err       error
		wantErr   string
		wantPages int
		wantText  string
	}{
		{"default page limit", `{"url":"https://docs.example.org/guide/"}`, CrawlReport{Fetched: 3, New: 3}, nil, "", CrawlDefaultPages, "3 new"},
		{"limit capped", `{"url":"https://docs.example.org/","max_pages":5000}`, CrawlReport{Fetched: 200, New: 200, Truncated: true}, nil, "", CrawlMaxPages, "crawl the same URL again"},
		{"nothing added", `{"url":"https://docs.example.org/","max_pages":2}`, CrawlReport{Failed: 1}, nil, "", 2, "Nothing was added"},
		{"local path refused", `{"url":"/etc"}`, CrawlReport{}, nil, `"/etc" is not an http(s) URL`, 0, ""},
		{"file URL refused", `{"url":"file:///etc/passwd"}`, CrawlReport{}, nil, "not an http(s) URL", 0, ""},
		{"credentials refused", `{"url":"https://u:p@x.org/"}`, CrawlReport{}, nil, "credentials", 0, ""},
		{"empty url", `{"url":"  "}`, CrawlReport{}, nil, "url is empty", 0, ""},
		{"negative limit", `{"url":"https://x.org/","max_pages":-1}`, CrawlReport{}, nil, "max_pages must be between", 0, ""},
		{"wrong type", `{"url":42}`, CrawlReport{}, nil, `argument "url" must be of type string`, 0, ""},
		{"crawler fails", `{"url":"https://x.org/"}`, CrawlReport{}, errors.New("refused to connect"), "crawl https://x.org/: refused to connect", CrawlDefaultPages, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := &recordingCrawler{rep: tt.rep, err: tt.err}
			res, err := Crawl(rc).Run(context.Background(), json.RawMessage(tt.args))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tt.wantPages == 0 && len(rc.seeds) > 0 {
				t.Fatalf("the crawler was called for invalid arguments: %v", rc.seeds)
			}
			if tt.wantPages > 0 && (len(rc.pages) != 1 || rc.pages[0] != tt.wantPages) {
				t.Fatalf("page limit passed = %v, want %d", rc.pages, tt.wantPages)
			}
			if !strings.Contains(res.Content, tt.wantText) {
				t.Fatalf("result %q does not contain %q", res.Content, tt.wantText)
			}
		})
	}
}
