package httpapi

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"panther"
	"panther/agent"
	"panther/crawl"
	"panther/kb"
)

func writeJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// errorJSON is every error's body.
type errorJSON struct {
	Error string `json:"error"`
	Kind  string `json:"kind"`
}

func writeError(w http.ResponseWriter, code int, kind, msg string) {
	_ = writeJSON(w, code, errorJSON{Error: msg, Kind: kind})
}

// decodeBody reads one JSON object into v. Unknown fields are an error naming them, so that a
// misspelt option is not silently ignored. An empty body leaves v as it is when emptyOK.
func decodeBody(r *http.Request, v any, emptyOK bool) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return panther.Invalidf("the request body must be JSON (Content-Type application/json), not %q", ct)
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return fmt.Errorf("the request body is larger than %d bytes: %w", mbe.Limit, errTooLarge)
	case errors.Is(err, io.EOF) && emptyOK:
		return nil
	case errors.Is(err, io.EOF):
		return panther.Invalidf("the request body is empty; send a JSON object")
	case err != nil:
		return panther.Invalidf("the request body is not the JSON object expected: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return panther.Invalidf("the request body must hold one JSON object and nothing after it")
	}
	return nil
}

// query returns a query parameter, bounded.
func query(r *http.Request, name string, maxBytes int) (string, error) {
	v := r.URL.Query().Get(name)
	if len(v) > maxBytes {
		return "", panther.Invalidf("parameter %s is longer than %d bytes", name, maxBytes)
	}
	return v, nil
}

// intParam reads an integer parameter between lo and hi, def when absent.
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, panther.Invalidf("parameter %s=%.20q: want a whole number from %d to %d", name, v, lo, hi)
	}
	return n, nil
}

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, panther.Invalidf("parameter %s=%.20q: want true or false", name, v)
	}
	return b, nil
}

func pathID(r *http.Request) (int64, error) {
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, panther.Invalidf("source id %.20q: want a positive whole number", v)
	}
	return id, nil
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyTimeout bounds the readiness check, so that a stuck store fails the probe instead of
// hanging it.
const readyTimeout = 2 * time.Second

func (s *server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.opts.Ready(ctx); err != nil {
		s.log.Warn("not ready", "err", err)
		return fmt.Errorf("the store does not answer: %w", panther.ErrUnavailable)
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

//go:embed openapi.json
var openapiDoc []byte

func (s *server) openapi(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openapiDoc)
	return err
}

// searchHitJSON and searchJSON are the JSON of `panther search --json`.
type searchHitJSON struct {
	URL         string    `json:"url"`
	Title       string    `json:"title"`
	Heading     string    `json:"heading"`
	Anchor      string    `json:"anchor"`
	Snippet     string    `json:"snippet"`
	Score       float64   `json:"score"`
	FetchedAt   time.Time `json:"fetched_at"`
	ContentHash string    `json:"content_hash"`
	Found       string    `json:"found,omitempty"`
}

type searchJSON struct {
	Query string          `json:"query"`
	Mode  string          `json:"mode"`
	Hits  []searchHitJSON `json:"hits"`
}

func (s *server) search(w http.ResponseWriter, r *http.Request) error {
	text, err := query(r, "q", MaxQueryBytes)
	if err != nil {
		return err
	}
	k, err := intParam(r, "k", panther.DefaultK, 1, MaxK)
	if err != nil {
		return err
	}
	modeParam, err := query(r, "mode", 20)
	if err != nil {
		return err
	}
	mode, err := panther.ParseSearchMode(modeParam)
	if err != nil {
		return err
	}
	q := panther.Query{Text: text, K: k, Mode: mode}
	if q.URLPrefix, err = query(r, "prefix", MaxURLBytes); err != nil {
		return err
	}
	if since, err := query(r, "since", 40); err != nil {
		return err
	} else if since != "" {
		if q.FetchedAfter, err = parseSince(since, time.Now()); err != nil {
			return err
		}
	}
	if src, err := query(r, "source", MaxURLBytes); err != nil {
		return err
	} else if src != "" {
		if q.SourceID, err = s.sourceID(r.Context(), src); err != nil {
			return err
		}
	}
	if err := q.Validate(); err != nil {
		return err
	}
	if q.Mode == "" {
		q.Mode = s.opts.Search.DefaultMode()
	}
	start := time.Now()
	hits, err := s.opts.Search.Search(r.Context(), q)
	if err != nil {
		return err
	}
	s.metrics.searchLatency.WithLabelValues(string(q.Mode)).Observe(time.Since(start).Seconds())
	out := searchJSON{Query: q.Text, Mode: string(q.Mode), Hits: make([]searchHitJSON, len(hits))}
	for i, h := range hits {
		out.Hits[i] = searchHitJSON{
			URL: h.URL, Title: h.Title, Heading: h.Heading, Anchor: h.Anchor, Snippet: h.Snippet,
			Score: h.Score, FetchedAt: h.FetchedAt, ContentHash: h.ContentHash, Found: h.Found,
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// sourceID finds a source by its id or its seed URL.
func (s *server) sourceID(ctx context.Context, v string) (int64, error) {
	if id, err := strconv.ParseInt(v, 10, 64); err == nil && id > 0 {
		return id, nil
	}
	all, err := s.opts.Sources.Sources(ctx)
	if err != nil {
		return 0, err
	}
	want := strings.TrimSuffix(v, "/")
	for _, src := range all {
		if strings.TrimSuffix(src.URL, "/") == want {
			return src.ID, nil
		}
	}
	return 0, panther.NotFoundf("no source %s (GET /v1/sources lists them)", v)
}

// parseSince reads since: an RFC 3339 time, a date, or an age counted back from now (36h, 7d).
func parseSince(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, panther.Invalidf("parameter since=%q: want a date (2026-11-01), an RFC 3339 time or an age (36h, 7d)", v)
}

func (s *server) documents(w http.ResponseWriter, r *http.Request) error {
	var f panther.DocFilter
	var err error
	if f.URLPrefix, err = query(r, "prefix", MaxURLBytes); err != nil {
		return err
	}
	if f.Limit, err = intParam(r, "limit", 100, 1, MaxListLimit); err != nil {
		return err
	}
	if f.Offset, err = intParam(r, "offset", 0, 0, 1<<30); err != nil {
		return err
	}
	if f.IncludeGone, err = boolParam(r, "gone"); err != nil {
		return err
	}
	if src, err := query(r, "source", MaxURLBytes); err != nil {
		return err
	} else if src != "" {
		if f.SourceID, err = s.sourceID(r.Context(), src); err != nil {
			return err
		}
	}
	docs, err := s.opts.Documents.Documents(r.Context(), f)
	if err != nil {
		return err
	}
	if docs == nil {
		docs = []panther.Document{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"documents": docs})
}

// docURL reads the url parameter; a #anchor in it (or an anchor parameter) names one section.
func docURL(r *http.Request) (page, anchor string, err error) {
	raw, err := query(r, "url", MaxURLBytes)
	if err != nil {
		return "", "", err
	}
	if strings.TrimSpace(raw) == "" {
		return "", "", panther.Invalidf("parameter url is missing: name the document, e.g. ?url=https://docs.example.org/page.html")
	}
	page, anchor, _ = strings.Cut(raw, "#")
	if a, err := query(r, "anchor", 1000); err != nil {
		return "", "", err
	} else if a != "" {
		anchor = a
	}
	return page, anchor, nil
}

func (s *server) document(w http.ResponseWriter, r *http.Request) error {
	page, anchor, err := docURL(r)
	if err != nil {
		return err
	}
	doc, err := s.opts.Documents.Document(r.Context(), page)
	if err != nil {
		return err
	}
	if anchor != "" {
		chunks, err := s.opts.Documents.Chunks(r.Context(), doc.ID)
		if err != nil {
			return err
		}
		section := kb.SectionMarkdown(chunks, anchor)
		if section == "" {
			return panther.NotFoundf("%s has no section #%s", page, anchor)
		}
		doc.Markdown = section
	}
	if wantsMarkdown(r) {
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		_, err := io.WriteString(w, doc.Markdown)
		return err
	}
	return writeJSON(w, http.StatusOK, doc)
}

// wantsMarkdown reports whether the Accept header prefers markdown to JSON.
func wantsMarkdown(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part))
		switch mt {
		case "text/markdown", "text/x-markdown", "text/plain":
			return true
		case "application/json":
			return false
		}
	}
	return false
}

func (s *server) deleteDocument(w http.ResponseWriter, r *http.Request) error {
	if s.opts.DocumentRemover == nil {
		return fmt.Errorf("this store cannot delete documents: %w", panther.ErrUnavailable)
	}
	page, anchor, err := docURL(r)
	if err != nil {
		return err
	}
	if anchor != "" {
		return panther.Invalidf("a whole document is deleted, not a section: leave out #%s", anchor)
	}
	if err := s.opts.DocumentRemover.DeleteDocument(r.Context(), page); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) sources(w http.ResponseWriter, r *http.Request) error {
	all, err := s.opts.Sources.Sources(r.Context())
	if err != nil {
		return err
	}
	if all == nil {
		all = []panther.Source{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"sources": all})
}

// addSourceJSON is POST /v1/sources: the seed and, to crawl it at once, crawl with the crawl's options.
type addSourceJSON struct {
	URL   string `json:"url"`
	Crawl bool   `json:"crawl"`
	crawl.JobRequest
}

func (s *server) addSource(w http.ResponseWriter, r *http.Request) error {
	var in addSourceJSON
	if err := decodeBody(r, &in, false); err != nil {
		return err
	}
	if len(in.URL) > MaxURLBytes {
		return panther.Invalidf("url is longer than %d bytes", MaxURLBytes)
	}
	src, err := s.opts.Sources.AddSource(r.Context(), in.URL)
	if err != nil {
		return err
	}
	out := map[string]any{"source": src}
	if in.Crawl {
		job, err := s.opts.Crawls.Start(r.Context(), src.ID, in.JobRequest)
		if err != nil {
			return fmt.Errorf("source %d added, but its crawl could not start: %w", src.ID, err)
		}
		out["job"] = job
	} else if !isZeroRequest(in.JobRequest) {
		return panther.Invalidf("crawl options were given without crawl: true")
	}
	return writeJSON(w, http.StatusCreated, out)
}

func isZeroRequest(r crawl.JobRequest) bool {
	return r.MaxPages == 0 && r.MaxDepth == nil && len(r.Include) == 0 && len(r.Exclude) == 0
}

func (s *server) removeSource(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	withDocs, err := boolParam(r, "documents")
	if err != nil {
		return err
	}
	if err := s.opts.Sources.RemoveSource(r.Context(), id, withDocs); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) startCrawl(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var req crawl.JobRequest
	if err := decodeBody(r, &req, true); err != nil {
		return err
	}
	job, err := s.opts.Crawls.Start(r.Context(), id, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, map[string]any{"job": job})
}

func (s *server) crawls(w http.ResponseWriter, r *http.Request) error {
	jobs := s.opts.Crawls.Jobs()
	if jobs == nil {
		jobs = []crawl.Job{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"crawls": jobs})
}

func (s *server) crawlJob(w http.ResponseWriter, r *http.Request) error {
	job, err := s.opts.Crawls.Job(r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"job": job})
}

func (s *server) cancelCrawl(w http.ResponseWriter, r *http.Request) error {
	job, err := s.opts.Crawls.Cancel(r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, map[string]any{"job": job})
}

// promptJSON is the body that starts or continues a session.
type promptJSON struct {
	Agent  string `json:"agent,omitempty"`
	Prompt string `json:"prompt"`
}

func (p promptJSON) check() error {
	if strings.TrimSpace(p.Prompt) == "" {
		return panther.Invalidf("prompt is empty")
	}
	if len(p.Prompt) > MaxPromptBytes {
		return panther.Invalidf("prompt is longer than %d bytes", MaxPromptBytes)
	}
	if len(p.Agent) > 100 {
		return panther.Invalidf("agent name is longer than 100 bytes")
	}
	return nil
}

func (s *server) startSession(w http.ResponseWriter, r *http.Request) error {
	var in promptJSON
	if err := decodeBody(r, &in, false); err != nil {
		return err
	}
	if err := in.check(); err != nil {
		return err
	}
	sess, err := s.opts.Sessions.Start(r.Context(), agent.AskRequest{Agent: in.Agent, Prompt: in.Prompt})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, map[string]any{"session": sess})
}

func (s *server) continueSession(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := panther.ValidSessionID(id); err != nil {
		return err
	}
	var in promptJSON
	if err := decodeBody(r, &in, false); err != nil {
		return err
	}
	if err := in.check(); err != nil {
		return err
	}
	sess, err := s.opts.Sessions.Start(r.Context(), agent.AskRequest{Agent: in.Agent, Prompt: in.Prompt, Continue: id})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, map[string]any{"session": sess})
}

func (s *server) listSessions(w http.ResponseWriter, r *http.Request) error {
	limit, err := intParam(r, "limit", 20, 1, MaxListLimit)
	if err != nil {
		return err
	}
	all, err := boolParam(r, "all")
	if err != nil {
		return err
	}
	list, err := s.opts.SessionStore.Sessions(r.Context(), panther.SessionFilter{Limit: limit, TopLevelOnly: !all})
	if err != nil {
		return err
	}
	if list == nil {
		list = []panther.Session{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"sessions": list})
}

func (s *server) getSession(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := panther.ValidSessionID(id); err != nil {
		return err
	}
	sess, err := s.opts.SessionStore.Session(r.Context(), id)
	if err != nil {
		return err
	}
	msgs, err := s.opts.SessionStore.SessionMessages(r.Context(), sess.ID)
	if err != nil {
		return err
	}
	if msgs == nil {
		msgs = []panther.SessionMessage{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"session": sess, "messages": msgs, "running": s.opts.Sessions.IsRunning(sess.ID)})
}

func (s *server) cancelSession(w http.ResponseWriter, r *http.Request) error {
	id, err := s.opts.Sessions.Cancel(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, map[string]any{"session_id": id, "status": "cancelling"})
}

func (s *server) agents(w http.ResponseWriter, r *http.Request) error {
	list := slices.Clone(s.opts.Agents())
	if list == nil {
		list = []AgentInfo{}
	}
	slices.SortFunc(list, func(a, b AgentInfo) int { return strings.Compare(a.Name, b.Name) })
	return writeJSON(w, http.StatusOK, map[string]any{"agents": list})
}

// statusJSON is GET /v1/status: what `panther status --json` shows, and what runs.
type statusJSON struct {
	Stats       panther.Stats `json:"stats"`
	Embedder    embedderJSON  `json:"embedder"`
	DefaultMode string        `json:"default_mode"`
	Crawls      struct {
		Running []crawl.Job `json:"running"`
	} `json:"crawls"`
	Sessions struct {
		Running []panther.Session `json:"running"`
	} `json:"sessions"`
}

type embedderJSON struct {
	Model            string          `json:"model"`
	Dimensions       int             `json:"dimensions,omitempty"`
	Vectors          int             `json:"vectors"`
	SearchableChunks int             `json:"searchable_chunks"`
	Backfill         *BackfillStatus `json:"backfill,omitempty"`
}

func (s *server) status(w http.ResponseWriter, r *http.Request) error {
	var out statusJSON
	var err error
	if out.Stats, err = s.opts.Stats.Stats(r.Context()); err != nil {
		return err
	}
	out.DefaultMode = string(s.opts.Search.DefaultMode())
	out.Embedder.Model = "none"
	if e := s.opts.Embedding; e != nil && e.Embedder() != nil {
		out.Embedder.Model, out.Embedder.Dimensions = e.Embedder().Model(), e.Embedder().Dimensions()
		if out.Embedder.Vectors, out.Embedder.SearchableChunks, err = e.Coverage(r.Context()); err != nil {
			return err
		}
	}
	if s.opts.Backfill != nil {
		b := s.opts.Backfill.BackfillStatus()
		out.Embedder.Backfill = &b
	}
	out.Crawls.Running = s.opts.Crawls.Running()
	if out.Crawls.Running == nil {
		out.Crawls.Running = []crawl.Job{}
	}
	out.Sessions.Running = s.opts.Sessions.Running()
	if out.Sessions.Running == nil {
		out.Sessions.Running = []panther.Session{}
	}
	return writeJSON(w, http.StatusOK, out)
}

// sortedStrings returns ss sorted, for messages that list names.
func sortedStrings(ss []string) []string {
	slices.Sort(ss)
	return ss
}
