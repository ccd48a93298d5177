package httpapi

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"panther"
	"panther/crawl"
)

// openAPIDoc is the part of the OpenAPI document the conformance test reads.
type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas   map[string]map[string]any `json:"schemas"`
		Responses map[string]map[string]any `json:"responses"`
	} `json:"components"`
}

type openAPIOp struct {
	Scope     string                    `json:"x-scope"`
	Responses map[string]map[string]any `json:"responses"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(openapiDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	return doc
}

var httpMethods = []string{"get", "put", "post", "delete", "patch", "head", "options"}

// TestOpenAPIMatchesRoutes compares the registered routes with the document's operations, both ways,
// and each route's scope with the operation's x-scope.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	documented := map[string]openAPIOp{}
	for path, item := range doc.Paths {
		for _, m := range httpMethods {
			raw, ok := item[m]
			if !ok {
				continue
			}
			var op openAPIOp
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", m, path, err)
			}
			documented[strings.ToUpper(m)+" "+path] = op
		}
	}
	registered := map[string]route{}
	for _, rt := range routes() {
		registered[rt.method+" "+rt.path] = rt
	}
	for key, rt := range registered {
		op, ok := documented[key]
		if !ok {
			t.Errorf("route %s is not in openapi.json", key)
			continue
		}
		want := rt.scope.String()
		if rt.scope == scopeNone {
			want = ""
		}
		if op.Scope != want {
			t.Errorf("%s: openapi x-scope %q, the route needs %q", key, op.Scope, want)
		}
	}
	for key := range documented {
		if _, ok := registered[key]; !ok {
			t.Errorf("openapi.json documents %s, which no route serves", key)
		}
	}
}

// TestOpenAPIResponsesMatchHandlers calls every documented operation for real and checks the answer
// against the documented response: its status is one the operation lists, and a JSON body has the
// schema's required fields (recursively) with the documented types.
func TestOpenAPIResponsesMatchHandlers(t *testing.T) {
	doc := loadOpenAPI(t)
	f := newFixture(t, fixtureOptions{})
	q := url.QueryEscape

	// A site whose pages never answer, for a crawl that is still running when it is cancelled.
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(stuck.Close)
	var created struct {
		Source panther.Source `json:"source"`
		Job    crawl.Job      `json:"job"`
	}
	f.mustJSON(201, "POST", "/v1/sources", map[string]any{"url": f.site.URL + "/index.html", "crawl": true}, Token{}, &created)
	f.events("/v1/crawls/"+created.Job.ID+"/events", Token{}, nil)
	var stuckSrc struct {
		Source panther.Source `json:"source"`
	}
	f.mustJSON(201, "POST", "/v1/sources", map[string]any{"url": stuck.URL + "/docs/"}, Token{}, &stuckSrc)
	var session struct {
		Session panther.Session `json:"session"`
	}
	f.mustJSON(202, "POST", "/v1/sessions", map[string]any{"prompt": "what does the widget server need?"}, Token{}, &session)
	f.events("/v1/sessions/"+session.Session.ID+"/events", Token{}, nil)
	sid := session.Session.ID

	type sample struct {
		path string
		body any
		want int
		// before runs first and may return the path to use.
		before func() string
	}
	var stuckJob string
	samples := map[string]sample{
		"GET /healthz":                    {path: "/healthz", want: 200},
		"GET /readyz":                     {path: "/readyz", want: 200},
		"GET /metrics":                    {path: "/metrics", want: 200},
		"GET /v1/openapi.json":            {path: "/v1/openapi.json", want: 200},
		"GET /v1/search":                  {path: "/v1/search?q=gizmo", want: 200},
		"GET /v1/documents":               {path: "/v1/documents", want: 200},
		"GET /v1/document":                {path: "/v1/document?url=" + q(installURL), want: 200},
		"GET /v1/sources":                 {path: "/v1/sources", want: 200},
		"POST /v1/sources":                {path: "/v1/sources", body: map[string]any{"url": f.site.URL + "/guide/", "crawl": true}, want: 201},
		"POST /v1/sources/{id}/crawl":     {path: fmt.Sprintf("/v1/sources/%d/crawl", stuckSrc.Source.ID), body: map[string]any{"max_pages": 1}, want: 202},
		"GET /v1/crawls":                  {path: "/v1/crawls", want: 200},
		"GET /v1/crawls/{id}":             {path: "/v1/crawls/" + created.Job.ID, want: 200},
		"GET /v1/crawls/{id}/events":      {path: "/v1/crawls/" + created.Job.ID + "/events", want: 200},
		"POST /v1/sessions":               {path: "/v1/sessions", body: map[string]any{"prompt": "what is tuning?"}, want: 202},
		"GET /v1/sessions":                {path: "/v1/sessions", want: 200},
		"GET /v1/sessions/{id}":           {path: "/v1/sessions/" + sid, want: 200},
		"GET /v1/sessions/{id}/events":    {path: "/v1/sessions/" + sid + "/events", want: 200},
		"POST /v1/sessions/{id}/messages": {path: "/v1/sessions/" + sid + "/messages", body: map[string]any{"prompt": "a slow follow-up"}, want: 202},
		"POST /v1/sessions/{id}/cancel":   {path: "/v1/sessions/" + sid + "/cancel", want: 202},
		"GET /v1/agents":                  {path: "/v1/agents", want: 200},
		"GET /v1/status":                  {path: "/v1/status", want: 200},
		"POST /v1/crawls/{id}/cancel": {want: 202, before: func() string {
			return "/v1/crawls/" + stuckJob + "/cancel"
		}},
		"DELETE /v1/document":     {path: "/v1/document?url=" + q(tuningURL), want: 204},
		"DELETE /v1/sources/{id}": {path: fmt.Sprintf("/v1/sources/%d?documents=true", created.Source.ID), want: 204},
	}
	// The order: what changes state last, each after what it depends on.
	order := func(key string) int {
		switch key {
		case "POST /v1/sessions/{id}/messages":
			return 1
		case "POST /v1/sessions/{id}/cancel":
			return 2
		case "POST /v1/sources/{id}/crawl":
			return 3
		case "POST /v1/crawls/{id}/cancel":
			return 4
		case "DELETE /v1/document", "DELETE /v1/sources/{id}":
			return 5
		}
		return 0
	}
	var keys []string
	for path, item := range doc.Paths {
		for _, m := range httpMethods {
			if _, ok := item[m]; ok {
				keys = append(keys, strings.ToUpper(m)+" "+path)
			}
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if order(keys[i]) != order(keys[j]) {
			return order(keys[i]) < order(keys[j])
		}
		return keys[i] < keys[j]
	})
	for _, key := range keys {
		s, ok := samples[key]
		if !ok {
			t.Errorf("no sample request for the documented %s: add one", key)
			continue
		}
		method, docPath, _ := strings.Cut(key, " ")
		var op openAPIOp
		json.Unmarshal(doc.Paths[docPath][strings.ToLower(method)], &op)
		path := s.path
		if s.before != nil {
			path = s.before()
		}
		resp, body := f.do(method, path, s.body, Token{})
		if resp.StatusCode != s.want {
			t.Errorf("%s (%s): %d %s, want %d", key, path, resp.StatusCode, body, s.want)
			continue
		}
		if key == "POST /v1/sources/{id}/crawl" {
			var j struct {
				Job crawl.Job `json:"job"`
			}
			json.Unmarshal(body, &j)
			stuckJob = j.Job.ID
		}
		code := fmt.Sprint(resp.StatusCode)
		spec, ok := op.Responses[code]
		if !ok {
			t.Errorf("%s answered %s, which the document does not list", key, code)
			continue
		}
		content, _ := spec["content"].(map[string]any)
		if len(content) == 0 {
			if len(body) != 0 {
				t.Errorf("%s: documented without a body, answered %q", key, body)
			}
			continue
		}
		ct := resp.Header.Get("Content-Type")
		var media map[string]any
		for name, m := range content {
			if strings.HasPrefix(ct, name) {
				media, _ = m.(map[string]any)
			}
		}
		if media == nil {
			t.Errorf("%s: answered %s, documented %v", key, ct, content)
			continue
		}
		if !strings.HasPrefix(ct, "application/json") {
			continue
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		schema, _ := media["schema"].(map[string]any)
		checkSchema(t, doc, schema, v, key)
	}

	// Cancelling answers 202 at once and the run stops soon after; the second cancel below must meet
	// a session that has stopped (on a loaded machine it once still ran).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, body := f.do("GET", "/v1/sessions/"+sid, nil, Token{})
		var s struct{ Running *bool }
		if err := json.Unmarshal(body, &s); err != nil || s.Running == nil {
			t.Fatalf("GET /v1/sessions/%s: %v, no running field in %s", sid, err, body)
		}
		if !*s.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s still running 10 s after it was cancelled: %s", sid, body)
		}
	}

	// The error body, on a real error of every kind the handlers map.
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/v1/search", 400},
		{"GET", "/v1/crawls/nope", 404},
		{"POST", "/v1/sessions/" + sid + "/cancel", 409},
	} {
		resp, body := f.do(c.method, c.path, nil, Token{})
		if resp.StatusCode != c.code {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.code)
			continue
		}
		var v any
		json.Unmarshal(body, &v)
		checkSchema(t, doc, doc.Components.Schemas["Error"], v, c.method+" "+c.path)
	}
}

// checkSchema checks v against the parts of a JSON schema the document uses: $ref, type,
// required, properties, items, additionalProperties and enum.
func checkSchema(t *testing.T, doc openAPIDoc, schema map[string]any, v any, where string) {
	t.Helper()
	if ref, ok := schema["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		s, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("%s: unknown schema %s", where, ref)
			return
		}
		checkSchema(t, doc, s, v, where+"("+name+")")
		return
	}
	typ, _ := schema["type"].(string)
	ok := true
	switch typ {
	case "object":
		_, ok = v.(map[string]any)
	case "array":
		_, ok = v.([]any)
	case "string":
		_, ok = v.(string)
	case "boolean":
		_, ok = v.(bool)
	case "number":
		_, ok = v.(float64)
	case "integer":
		n, isNum := v.(float64)
		ok = isNum && n == math.Trunc(n)
	}
	if !ok {
		t.Errorf("%s: %v is not of type %s", where, v, typ)
		return
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.Contains(enum, v) {
		t.Errorf("%s: %v is not one of %v", where, v, enum)
	}
	switch x := v.(type) {
	case map[string]any:
		if req, ok := schema["required"].([]any); ok {
			for _, r := range req {
				if _, ok := x[r.(string)]; !ok {
					t.Errorf("%s: the required field %q is missing", where, r)
				}
			}
		}
		props, _ := schema["properties"].(map[string]any)
		for name, val := range x {
			if ps, ok := props[name].(map[string]any); ok {
				checkSchema(t, doc, ps, val, where+"."+name)
			} else if ap, ok := schema["additionalProperties"].(map[string]any); ok {
				checkSchema(t, doc, ap, val, where+"."+name)
			} else if props != nil {
				t.Errorf("%s: field %q is not documented", where, name)
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, e := range x {
				checkSchema(t, doc, items, e, fmt.Sprintf("%s[%d]", where, i))
			}
		}
	}
}
