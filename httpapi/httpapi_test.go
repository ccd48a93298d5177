package httpapi

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"panther"
	"panther/agent"
	"panther/crawl"
)

// errorOf decodes an error body.
func errorOf(t *testing.T, b []byte) errorJSON {
	t.Helper()
	var e errorJSON
	if err := json.Unmarshal(b, &e); err != nil || e.Error == "" || e.Kind == "" {
		t.Fatalf("not an error body: %s (%v)", b, err)
	}
	return e
}

func TestReadRoutes(t *testing.T) {
	f := newFixture(t, fixtureOptions{tokens: []Token{readToken, writeToken}})
	q := url.QueryEscape
	tests := []struct {
		name     string
		method   string
		path     string
		header   []string
		want     int
		kind     string // for errors
		contains string // in the body
	}{
		{"health", "GET", "/healthz", nil, 200, "", `"ok"`},
		{"ready", "GET", "/readyz", nil, 200, "", `"ready"`},
		{"openapi", "GET", "/v1/openapi.json", nil, 200, "", `"openapi": "3.1.0"`},
		{"metrics", "GET", "/metrics", nil, 200, "", "panther_crawl_pages_total"},
		{"search", "GET", "/v1/search?q=gizmo", nil, 200, "", `"url":"` + installURL + `"`},
		{"search says the mode", "GET", "/v1/search?q=gizmo&k=1", nil, 200, "", `"mode":"lexical"`},
		{"search by prefix", "GET", "/v1/search?q=gizmo&prefix=" + q("https://docs.example.org/tun"), nil, 200, "", `"hits":[]`},
		{"search by source id", "GET", "/v1/search?q=gizmo&source=1", nil, 200, "", installURL},
		{"search by source URL", "GET", "/v1/search?q=gizmo&source=" + q("https://docs.example.org"), nil, 200, "", installURL},
		{"search since a date", "GET", "/v1/search?q=gizmo&since=2026-10-01", nil, 200, "", installURL},
		{"search without q", "GET", "/v1/search", nil, 400, "invalid", "empty query"},
		{"search with k over 50", "GET", "/v1/search?q=x&k=51", nil, 400, "invalid", "k="},
		{"search with a bad mode", "GET", "/v1/search?q=x&mode=psychic", nil, 400, "invalid", "psychic"},
		{"vector search without an embedder", "GET", "/v1/search?q=x&mode=vector", nil, 400, "invalid", "embedder"},
		{"search an unknown source", "GET", "/v1/search?q=x&source=" + q("https://nowhere.example/"), nil, 404, "not_found", "nowhere"},
		{"search with a bad since", "GET", "/v1/search?q=x&since=soonish", nil, 400, "invalid", "since"},
		{"search with a long query", "GET", "/v1/search?q=" + strings.Repeat("a", MaxQueryBytes+1), nil, 400, "invalid", "longer than"},
		{"documents", "GET", "/v1/documents", nil, 200, "", tuningURL},
		{"documents limited", "GET", "/v1/documents?limit=1", nil, 200, "", installURL},
		{"documents with limit 0", "GET", "/v1/documents?limit=0", nil, 400, "invalid", "limit"},
		{"documents of an unknown source", "GET", "/v1/documents?source=" + q("https://nowhere.example/"), nil, 404, "not_found", "nowhere"},
		{"document as JSON", "GET", "/v1/document?url=" + q(installURL), nil, 200, "", `"markdown":"# Installing`},
		{"document as markdown", "GET", "/v1/document?url=" + q(installURL), []string{"Accept", "text/markdown"}, 200, "", "# Installing\n\nThe widget"},
		{"a section by #anchor", "GET", "/v1/document?url=" + q(installURL+"#top"), nil, 200, "", "zebra-striped"},
		{"a section by anchor=", "GET", "/v1/document?url=" + q(installURL) + "&anchor=top", nil, 200, "", "zebra-striped"},
		{"a missing section", "GET", "/v1/document?url=" + q(installURL+"#nowhere"), nil, 404, "not_found", "#nowhere"},
		{"a document not stored", "GET", "/v1/document?url=" + q("https://docs.example.org/no.html"), nil, 404, "not_found", "no.html"},
		{"a document without url", "GET", "/v1/document", nil, 400, "invalid", "url is missing"},
		{"sources", "GET", "/v1/sources", nil, 200, "", `"url":"https://docs.example.org/"`},
		{"crawls", "GET", "/v1/crawls", nil, 200, "", `"crawls":[]`},
		{"an unknown crawl", "GET", "/v1/crawls/nope", nil, 404, "not_found", "nope"},
		{"sessions", "GET", "/v1/sessions?all=true", nil, 200, "", `"sessions":[]`},
		{"sessions with a bad limit", "GET", "/v1/sessions?limit=-1", nil, 400, "invalid", "limit"},
		{"an unknown session", "GET", "/v1/sessions/ffffffff00000000", nil, 404, "not_found", "ffffffff00000000"},
		{"a malformed session id", "GET", "/v1/sessions/bad!id", nil, 400, "invalid", "bad!id"},
		{"events of an unknown session", "GET", "/v1/sessions/ffffffff00000000/events", nil, 404, "not_found", "ffffffff"},
		{"events of an unknown crawl", "GET", "/v1/crawls/nope/events", nil, 404, "not_found", "nope"},
		{"agents", "GET", "/v1/agents", nil, 200, "", `"name":"general"`},
		{"status", "GET", "/v1/status", nil, 200, "", `"documents":2`},
		{"status with backfill", "GET", "/v1/status", nil, 200, "", `"backfill":{"running":false,"done":3`},
		{"an unknown route", "GET", "/v1/nothing", nil, 404, "not_found", "no route"},
		{"a wrong method", "PUT", "/v1/search", nil, 405, "invalid", "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := f.do(tt.method, tt.path, nil, readToken, tt.header...)
			if resp.StatusCode != tt.want {
				t.Fatalf("%s %s: %d %s, want %d", tt.method, tt.path, resp.StatusCode, b, tt.want)
			}
			if tt.kind != "" {
				if e := errorOf(t, b); e.Kind != tt.kind {
					t.Errorf("kind %q, want %q", e.Kind, tt.kind)
				}
			}
			if !strings.Contains(string(b), tt.contains) {
				t.Errorf("body does not contain %q:\n%.600s", tt.contains, b)
			}
		})
	}
	if resp, _ := f.do("PUT", "/v1/search", nil, readToken); !strings.Contains(resp.Header.Get("Allow"), "GET") {
		t.Errorf("405 without Allow: %v", resp.Header)
	}
	if resp, b := f.do("GET", "/v1/document?url="+q(installURL), nil, readToken, "Accept", "text/markdown"); !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/markdown") || strings.HasPrefix(string(b), "{") {
		t.Errorf("markdown asked for, got %s: %.100s", resp.Header.Get("Content-Type"), b)
	}
}

func TestDocumentsAndSourcesCanBeRemoved(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	q := url.QueryEscape
	f.mustJSON(204, "DELETE", "/v1/document?url="+q(tuningURL), nil, Token{}, nil)
	resp, b := f.do("DELETE", "/v1/document?url="+q(tuningURL), nil, Token{})
	if resp.StatusCode != 404 || errorOf(t, b).Kind != "not_found" {
		t.Errorf("deleting twice: %d %s", resp.StatusCode, b)
	}
	if resp, b := f.do("DELETE", "/v1/document?url="+q(installURL+"#top"), nil, Token{}); resp.StatusCode != 400 {
		t.Errorf("deleting a section: %d %s", resp.StatusCode, b)
	}
	var res searchJSON
	f.mustJSON(200, "GET", "/v1/search?q=capacitor", nil, Token{}, &res)
	if len(res.Hits) != 0 {
		t.Errorf("a deleted document is still found: %+v", res.Hits)
	}

	tests := []struct {
		path string
		want int
	}{
		{"/v1/sources/abc", 400},
		{"/v1/sources/0", 400},
		{"/v1/sources/9999", 404},
		{"/v1/sources/1?documents=maybe", 400},
		{"/v1/sources/1?documents=true", 204},
		{"/v1/sources/1", 404},
	}
	for _, tt := range tests {
		if resp, b := f.do("DELETE", tt.path, nil, Token{}); resp.StatusCode != tt.want {
			t.Errorf("DELETE %s: %d %s, want %d", tt.path, resp.StatusCode, b, tt.want)
		}
	}
	f.mustJSON(200, "GET", "/v1/search?q=gizmo", nil, Token{}, &res)
	if len(res.Hits) != 0 {
		t.Errorf("documents of a removed source are still found: %+v", res.Hits)
	}
}

func TestSourcesAndCrawls(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	seed := f.site.URL + "/index.html"
	bad := []struct {
		name string
		body any
		kind string
		want string
	}{
		{"no body", "", "invalid", "empty"},
		{"not JSON", "url=x", "invalid", "JSON"},
		{"an unknown field", map[string]any{"url": seed, "crawl_now": true}, "invalid", "crawl_now"},
		{"two objects", `{"url":"http://a.example/"} {}`, "invalid", "one JSON object"},
		{"no url", map[string]any{}, "invalid", "empty"},
		{"ftp", map[string]any{"url": "ftp://a.example/"}, "invalid", "http"},
		{"a local folder", map[string]any{"url": "file:///etc/"}, "invalid", "http and https"},
		{"crawl options without crawl", map[string]any{"url": seed, "max_pages": 3}, "invalid", "crawl: true"},
		{"a bad pattern", map[string]any{"url": seed, "crawl": true, "include": []string{"(["}}, "invalid", "regular expression"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := f.do("POST", "/v1/sources", tt.body, Token{})
			if resp.StatusCode != 400 {
				t.Fatalf("%d %s", resp.StatusCode, b)
			}
			if e := errorOf(t, b); e.Kind != tt.kind || !strings.Contains(e.Error, tt.want) {
				t.Errorf("error %+v, want kind %s mentioning %q", e, tt.kind, tt.want)
			}
		})
	}
	if resp, b := f.do("POST", "/v1/sources", "{}", Token{}, "Content-Type", "text/plain"); resp.StatusCode != 400 || !strings.Contains(string(b), "Content-Type") {
		t.Errorf("a text/plain body: %d %s", resp.StatusCode, b)
	}

	var created struct {
		Source panther.Source `json:"source"`
		Job    *crawl.Job     `json:"job"`
	}
	f.mustJSON(201, "POST", "/v1/sources", map[string]any{"url": seed, "crawl": true, "max_pages": 10}, Token{}, &created)
	if created.Source.URL != seed || created.Job == nil || created.Job.SourceID != created.Source.ID || created.Job.Request.MaxPages != 10 {
		t.Fatalf("created %+v", created)
	}
	// The crawl's events: progress, then done with the summary.
	events := f.events("/v1/crawls/"+created.Job.ID+"/events", Token{}, nil)
	last := events[len(events)-1]
	var final struct {
		Job crawl.Job `json:"job"`
	}
	if err := json.Unmarshal([]byte(last.data), &final); err != nil || last.kind != "done" {
		t.Fatalf("last crawl event %+v: %v", last, err)
	}
	if final.Job.State != crawl.JobDone || final.Job.Summary == nil || final.Job.Summary.New != 3 {
		t.Fatalf("final job %+v, summary %+v", final.Job, final.Job.Summary)
	}
	for _, e := range events[:len(events)-1] {
		if e.kind != "progress" {
			t.Errorf("event %q before done, want progress", e.kind)
		}
	}
	var res searchJSON
	f.mustJSON(200, "GET", "/v1/search?q=flux+capacitor", nil, Token{}, &res)
	if len(res.Hits) == 0 || !strings.HasPrefix(res.Hits[0].URL, f.site.URL) {
		t.Errorf("the crawled site is not searchable: %+v", res.Hits)
	}

	// Crawl again through the source's route, with a conflict while it is queued or running.
	var job struct {
		Job crawl.Job `json:"job"`
	}
	path := fmt.Sprintf("/v1/sources/%d/crawl", created.Source.ID)
	f.mustJSON(202, "POST", path, nil, Token{}, &job)
	newest, pages := job.Job.ID, 6
	resp, b := f.do("POST", path, map[string]any{}, Token{})
	switch resp.StatusCode {
	case 409:
	case 202:
		// The first re-crawl had ended already: this one runs too, and is the newest.
		var second struct {
			Job crawl.Job `json:"job"`
		}
		if err := json.Unmarshal(b, &second); err != nil {
			t.Fatal(err)
		}
		f.events("/v1/crawls/"+second.Job.ID+"/events", Token{}, nil)
		newest, pages = second.Job.ID, 9
	default:
		t.Errorf("a second crawl at once: %d %s, want 409 (or 202 when the first ended already)", resp.StatusCode, b)
	}
	f.events("/v1/crawls/"+job.Job.ID+"/events", Token{}, nil)
	var got struct {
		Job crawl.Job `json:"job"`
	}
	f.mustJSON(200, "GET", "/v1/crawls/"+job.Job.ID, nil, Token{}, &got)
	if got.Job.State != crawl.JobDone || got.Job.Summary.Unchanged != 3 {
		t.Errorf("the re-crawl %+v %+v, want done with 3 unchanged", got.Job, got.Job.Summary)
	}
	if resp, b := f.do("POST", "/v1/crawls/"+job.Job.ID+"/cancel", nil, Token{}); resp.StatusCode != 409 {
		t.Errorf("cancelling an ended crawl: %d %s", resp.StatusCode, b)
	}
	if resp, _ := f.do("POST", "/v1/crawls/nope/cancel", nil, Token{}); resp.StatusCode != 404 {
		t.Errorf("cancelling an unknown crawl: %d", resp.StatusCode)
	}
	if resp, _ := f.do("POST", "/v1/sources/9999/crawl", nil, Token{}); resp.StatusCode != 404 {
		t.Errorf("crawling an unknown source: %d", resp.StatusCode)
	}
	var list struct {
		Crawls []crawl.Job `json:"crawls"`
	}
	f.mustJSON(200, "GET", "/v1/crawls", nil, Token{}, &list)
	if len(list.Crawls) < 2 || list.Crawls[0].ID != newest {
		t.Errorf("crawls %+v, want the newest first", list.Crawls)
	}
	resp, b = f.do("GET", "/metrics", nil, Token{})
	if want := fmt.Sprintf(`panther_crawl_pages_total{outcome="done"} %d`, pages); resp.StatusCode != 200 || !strings.Contains(string(b), want) {
		t.Errorf("metrics do not count the %d crawled pages:\n%s", pages, grepLines(string(b), "panther_crawl"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestSessionsRunAndStream(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, tt := range []struct {
		body any
		want int
		kind string
	}{
		{map[string]any{"prompt": ""}, 400, "invalid"},
		{map[string]any{"prompt": strings.Repeat("x", MaxPromptBytes+1)}, 400, "invalid"},
		{map[string]any{"agent": "nobody", "prompt": "hi"}, 404, "not_found"},
		{map[string]any{"prompt": "hi", "model": "x"}, 400, "invalid"},
	} {
		resp, b := f.do("POST", "/v1/sessions", tt.body, Token{})
		if resp.StatusCode != tt.want || errorOf(t, b).Kind != tt.kind {
			t.Errorf("POST /v1/sessions %v: %d %s, want %d %s", tt.body, resp.StatusCode, b, tt.want, tt.kind)
		}
	}

	var started struct {
		Session panther.Session `json:"session"`
	}
	f.mustJSON(202, "POST", "/v1/sessions", map[string]any{"prompt": "what does the widget server need?"}, Token{}, &started)
	id := started.Session.ID
	if id == "" || started.Session.Agent != "general" || started.Session.Status != panther.SessionRunning {
		t.Fatalf("started %+v", started.Session)
	}
	events := f.events("/v1/sessions/"+id+"/events", Token{}, nil)
	kinds := map[string]int{}
	var text strings.Builder
	for i, e := range events {
		kinds[e.kind]++
		var le agent.LiveEvent
		if err := json.Unmarshal([]byte(e.data), &le); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if le.Kind != e.kind || e.id != fmt.Sprint(le.Seq) || le.SessionID != id {
			t.Errorf("event %d: %+v under event %q id %q", i, le, e.kind, e.id)
		}
		if le.Kind == agent.EventText {
			text.WriteString(le.Text)
		}
	}
	if kinds["tool_start"] != 1 || kinds["tool_end"] != 1 || kinds["step"] != 2 || kinds["text"] < 2 || kinds["done"] != 1 {
		t.Errorf("event kinds %v", kinds)
	}
	if text.String() != "It needs a zebra-striped quantum gizmo [1]." {
		t.Errorf("streamed text %q", text.String())
	}
	var done agent.LiveEvent
	json.Unmarshal([]byte(events[len(events)-1].data), &done)
	if done.Kind != "done" || done.Status != panther.SessionDone || !strings.Contains(done.Answer, installURL) || len(done.Citations) != 1 || done.Citations[0].URL != installURL {
		t.Errorf("done event %+v", done)
	}
	// Reconnecting with Last-Event-ID gives the rest only.
	rest := f.events("/v1/sessions/"+id+"/events", Token{}, nil, "Last-Event-ID", events[len(events)-2].id)
	if len(rest) != 1 || rest[0].kind != "done" {
		t.Errorf("after Last-Event-ID: %+v", rest)
	}
	if resp, b := f.do("GET", "/v1/sessions/"+id+"/events?after=x", nil, Token{}); resp.StatusCode != 400 {
		t.Errorf("a bad after: %d %s", resp.StatusCode, b)
	}

	var detail struct {
		Session  panther.Session          `json:"session"`
		Messages []panther.SessionMessage `json:"messages"`
		Running  bool                     `json:"running"`
	}
	f.mustJSON(200, "GET", "/v1/sessions/"+id[:6], nil, Token{}, &detail)
	if detail.Session.ID != id || detail.Session.Status != panther.SessionDone || len(detail.Messages) != 4 || detail.Running {
		t.Errorf("session %+v with %d messages, running %v", detail.Session, len(detail.Messages), detail.Running)
	}
	if resp, b := f.do("POST", "/v1/sessions/"+id+"/cancel", nil, Token{}); resp.StatusCode != 409 {
		t.Errorf("cancelling a finished session: %d %s", resp.StatusCode, b)
	}

	// A follow-up that is slow: a second one conflicts, cancel ends it, its status says so.
	f.mustJSON(202, "POST", "/v1/sessions/"+id+"/messages", map[string]any{"prompt": "slow follow-up"}, Token{}, &started)
	if resp, b := f.do("POST", "/v1/sessions/"+id+"/messages", map[string]any{"prompt": "another"}, Token{}); resp.StatusCode != 409 || errorOf(t, b).Kind != "conflict" {
		t.Errorf("a second prompt while running: %d %s", resp.StatusCode, b)
	}
	var status statusJSON
	f.mustJSON(200, "GET", "/v1/status", nil, Token{}, &status)
	if len(status.Sessions.Running) != 1 || status.Sessions.Running[0].ID != id {
		t.Errorf("status shows running sessions %+v", status.Sessions.Running)
	}
	var cancelled map[string]string
	f.mustJSON(202, "POST", "/v1/sessions/"+id[:8]+"/cancel", nil, Token{}, &cancelled)
	if cancelled["session_id"] != id {
		t.Errorf("cancel answered %v", cancelled)
	}
	events = f.events("/v1/sessions/"+id+"/events", Token{}, nil)
	json.Unmarshal([]byte(events[len(events)-1].data), &done)
	if done.Status != panther.SessionCancelled {
		t.Errorf("the cancelled run ended %+v", done)
	}
	var list struct {
		Sessions []panther.Session `json:"sessions"`
	}
	f.mustJSON(200, "GET", "/v1/sessions?limit=5", nil, Token{}, &list)
	if len(list.Sessions) != 1 || list.Sessions[0].Status != panther.SessionCancelled {
		t.Errorf("sessions %+v", list.Sessions)
	}
	f.mustJSON(200, "GET", "/v1/search?q=gizmo", nil, Token{}, nil)
	_, b := f.do("GET", "/metrics", nil, Token{})
	for _, want := range []string{`panther_sessions_total{status="done"} 1`, `panther_sessions_total{status="cancelled"} 1`, `panther_sessions_running 0`,
		`panther_http_requests_total{code="202",method="POST",route="/v1/sessions"} 1`, `panther_search_duration_seconds_count{mode="lexical"}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestAuthByScope(t *testing.T) {
	f := newFixture(t, fixtureOptions{tokens: []Token{readToken, writeToken, adminToken}})
	bogus := Token{Name: "bogus", Secret: "not-a-token-at-all-0000"}
	q := url.QueryEscape
	tests := []struct {
		method, path string
		tok          Token
		want         int
	}{
		{"GET", "/v1/search?q=gizmo", Token{}, 401},
		{"GET", "/v1/search?q=gizmo", bogus, 401},
		{"GET", "/v1/search?q=gizmo", readToken, 200},
		{"GET", "/v1/search?q=gizmo", adminToken, 200},
		{"GET", "/metrics", Token{}, 401},
		{"GET", "/metrics", readToken, 200},
		{"GET", "/healthz", Token{}, 200},
		{"GET", "/readyz", Token{}, 200},
		{"GET", "/v1/openapi.json", Token{}, 200},
		{"DELETE", "/v1/document?url=" + q(tuningURL), readToken, 403},
		{"DELETE", "/v1/document?url=" + q(tuningURL), writeToken, 204},
		{"POST", "/v1/sessions", readToken, 403},
		{"DELETE", "/v1/sources/1", Token{}, 401},
		{"DELETE", "/v1/sources/1", readToken, 403},
		{"DELETE", "/v1/sources/1", adminToken, 204},
	}
	for _, tt := range tests {
		resp, b := f.do(tt.method, tt.path, nil, tt.tok)
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s with %q: %d %s, want %d", tt.method, tt.path, tt.tok.Name, resp.StatusCode, b, tt.want)
			continue
		}
		switch tt.want {
		case 401:
			if e := errorOf(t, b); e.Kind != "unauthorized" || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s: %+v, WWW-Authenticate %q", tt.method, tt.path, e, resp.Header.Get("WWW-Authenticate"))
			}
		case 403:
			if e := errorOf(t, b); e.Kind != "forbidden" || !strings.Contains(e.Error, "needs write") {
				t.Errorf("%s %s: %+v", tt.method, tt.path, e)
			}
		}
	}
	// The scheme is case-insensitive; the token is not.
	req, _ := http.NewRequest("GET", f.srv.URL+"/v1/sources", nil)
	req.Header.Set("Authorization", "bearer "+readToken.Secret)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("lower-case scheme: %v %v", resp, err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.ToUpper(readToken.Secret))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("a token in other case: %v %v", resp, err)
	}
	logs := f.logs.String()
	for _, tok := range []Token{readToken, writeToken, adminToken, bogus} {
		if strings.Contains(logs, tok.Secret) {
			t.Errorf("the log shows the token %s", tok.Name)
		}
	}
	if !strings.Contains(logs, "caller=writer") {
		t.Errorf("the log does not name the token used:\n%s", logs)
	}

	// Public metrics.
	pub := newFixture(t, fixtureOptions{tokens: []Token{readToken}, public: true})
	if resp, _ := pub.do("GET", "/metrics", nil, Token{}); resp.StatusCode != 200 {
		t.Errorf("public metrics: %d", resp.StatusCode)
	}
	if resp, _ := pub.do("GET", "/v1/sources", nil, Token{}); resp.StatusCode != 401 {
		t.Errorf("with public metrics, the API still needs a token: %d", resp.StatusCode)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	if _, err := New(Options{}); err == nil || !strings.Contains(err.Error(), "Search") {
		t.Errorf("New without services: %v", err)
	}
	f := newFixture(t, fixtureOptions{})
	_ = f
	for _, tok := range []Token{
		{Name: "short", Secret: "short", Scope: ScopeRead},
		{Name: "", Secret: "long-enough-token-000", Scope: ScopeRead},
		{Name: "noscope", Secret: "long-enough-token-000"},
		{Name: "space", Secret: "long enough token 000", Scope: ScopeRead},
	} {
		if err := tok.validate(); err == nil {
			t.Errorf("token %+v accepted", tok)
		}
	}
	for in, want := range map[string]Scope{"read": ScopeRead, "Write": ScopeWrite, " admin ": ScopeAdmin} {
		if got, err := ParseScope(in); err != nil || got != want {
			t.Errorf("ParseScope(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseScope("root"); err == nil {
		t.Error("ParseScope(root) accepted")
	}
}

func TestBodyLimit(t *testing.T) {
	f := newFixture(t, fixtureOptions{maxBody: 1024})
	big := `{"url":"https://a.example/` + strings.Repeat("x", 2000) + `"}`
	resp, b := f.do("POST", "/v1/sources", big, Token{})
	if resp.StatusCode != 413 || errorOf(t, b).Kind != "invalid" {
		t.Errorf("a body over the limit: %d %s", resp.StatusCode, b)
	}
	// Without a Content-Length the limit applies while reading.
	req, _ := http.NewRequest("POST", f.srv.URL+"/v1/sessions", strings.NewReader(`{"prompt":"`+strings.Repeat("x", 2000)+`"}`))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 413 {
		t.Errorf("a chunked body over the limit: %d", r2.StatusCode)
	}
	if resp, b := f.do("POST", "/v1/sources", map[string]any{"url": f.site.URL + "/"}, Token{}); resp.StatusCode != 201 {
		t.Errorf("a body under the limit: %d %s", resp.StatusCode, b)
	}
}

func TestStreamsAreBounded(t *testing.T) {
	f := newFixture(t, fixtureOptions{maxStreams: 1})
	var started struct {
		Session panther.Session `json:"session"`
	}
	f.mustJSON(202, "POST", "/v1/sessions", map[string]any{"prompt": "a slow question"}, Token{}, &started)
	path := "/v1/sessions/" + started.Session.ID + "/events"
	// The stream's headers arrive once it holds its slot.
	first, err := http.Get(f.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Body.Close()
	if first.StatusCode != 200 {
		t.Fatalf("first stream: %d", first.StatusCode)
	}
	resp, b := f.do("GET", path, nil, Token{})
	if resp.StatusCode != 503 || errorOf(t, b).Kind != "unavailable" {
		t.Errorf("a stream over the bound: %d %s", resp.StatusCode, b)
	}
	// An idle stream gets heartbeats.
	rd := bufio.NewReader(first.Body)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("the first stream ended before a heartbeat: %v", err)
		}
		if line == ": ping\n" {
			break
		}
	}
	f.release()
	all, err := io.ReadAll(rd)
	if err != nil || !strings.Contains(string(all), "event: done") {
		t.Errorf("the first stream: %v\n%s", err, all)
	}
	// Its slot is free again.
	if events := f.events(path, Token{}, nil); len(events) == 0 || events[len(events)-1].kind != "done" {
		t.Errorf("a stream after the first ended: %+v", events)
	}
}

func TestMountsUIAndMCP(t *testing.T) {
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<p>ui %s</p>", r.URL.Path)
	})
	mcp := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "mcp %s", r.Method)
	})
	f := newFixture(t, fixtureOptions{tokens: []Token{readToken}, ui: page, mcp: mcp})
	tests := []struct {
		method, path string
		tok          Token
		want         int
		body         string
	}{
		{"GET", "/", Token{}, 200, "<p>ui /</p>"},
		{"GET", "/app.js", Token{}, 200, "<p>ui /app.js</p>"},
		{"GET", "/v1/nothing", readToken, 404, `"kind":"not_found"`},
		{"GET", "/v1/search?q=gizmo", Token{}, 401, `"kind":"unauthorized"`},
		{"POST", "/mcp", Token{}, 401, `"kind":"unauthorized"`},
		{"POST", "/mcp", readToken, 200, "mcp POST"},
		{"GET", "/mcp", readToken, 200, "mcp GET"},
	}
	for _, tt := range tests {
		resp, b := f.do(tt.method, tt.path, nil, tt.tok)
		if resp.StatusCode != tt.want || !strings.Contains(string(b), tt.body) {
			t.Errorf("%s %s: %d %s, want %d with %q", tt.method, tt.path, resp.StatusCode, b, tt.want, tt.body)
		}
	}
}

// Write-scope tokens get the MCP server with its write tools, read-scope ones the read-only one; with
// no tokens the API is open, and so is the write MCP server.
func TestMCPByScope(t *testing.T) {
	handler := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "%s %s", name, r.Method) })
	}
	withTokens := newFixture(t, fixtureOptions{tokens: []Token{readToken, writeToken, adminToken}, mcp: handler("read-only"), mcpWrite: handler("write")})
	open := newFixture(t, fixtureOptions{mcp: handler("read-only"), mcpWrite: handler("write")})
	readOnly := newFixture(t, fixtureOptions{tokens: []Token{readToken, writeToken}, mcp: handler("read-only")})
	tests := []struct {
		name string
		f    *fixture
		tok  Token
		want int
		body string
	}{
		{"no token", withTokens, Token{}, 401, `"kind":"unauthorized"`},
		{"read token", withTokens, readToken, 200, "read-only POST"},
		{"write token", withTokens, writeToken, 200, "write POST"},
		{"admin token", withTokens, adminToken, 200, "write POST"},
		{"open API", open, Token{}, 200, "write POST"},
		{"write token without a write server", readOnly, writeToken, 200, "read-only POST"},
	}
	for _, tt := range tests {
		resp, b := tt.f.do("POST", "/mcp", nil, tt.tok)
		if resp.StatusCode != tt.want || !strings.Contains(string(b), tt.body) {
			t.Errorf("%s: %d %s, want %d with %q", tt.name, resp.StatusCode, b, tt.want, tt.body)
		}
	}
	if _, err := New(Options{MCPWrite: handler("write")}); err == nil || !strings.Contains(err.Error(), "MCPWrite needs MCP") {
		t.Errorf("New with MCPWrite and no MCP: %v", err)
	}
}

// TestStreamsOutliveTheServerTimeouts runs a stream well past the server's read and write timeouts,
// which would cut it if it did not extend its own deadlines.
func TestStreamsOutliveTheServerTimeouts(t *testing.T) {
	const timeout = 100 * time.Millisecond
	f := newFixture(t, fixtureOptions{serverTimeouts: timeout})
	var started struct {
		Session panther.Session `json:"session"`
	}
	f.mustJSON(202, "POST", "/v1/sessions", map[string]any{"prompt": "a slow question"}, Token{}, &started)
	resp, err := http.Get(f.srv.URL + "/v1/sessions/" + started.Session.ID + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Heartbeats come every 50ms: 10 of them take five times the timeouts.
	rd := bufio.NewReader(resp.Body)
	for pings := 0; pings < 10; {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream ended after %d heartbeats: %v", pings, err)
		}
		if line == ": ping\n" {
			pings++
		}
	}
	f.release()
	rest, err := io.ReadAll(rd)
	if err != nil || !strings.Contains(string(rest), "event: done") {
		t.Errorf("after the timeouts: %v\n%s", err, rest)
	}
}
