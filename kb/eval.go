package kb

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"

	"panther"
)

// Qrel is one judged query: the pages ("URL") or sections ("URL#anchor") that answer it.
type Qrel struct {
	Query    string   `json:"query"`
	Relevant []string `json:"relevant"`
}

// MaxQrelLine bounds one line of a qrels file, so that a corrupt file cannot make ReadQrels buffer
// without end.
const MaxQrelLine = 1 << 20

// ReadQrels reads JSON lines {"query": "...", "relevant": ["...", ...]}. Relative entries are resolved
// against base. Blank lines are skipped; anything else wrong is an error naming the line.
func ReadQrels(r io.Reader, base *url.URL) ([]Qrel, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), MaxQrelLine)
	var out []Qrel
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		q, err := parseQrel(text, base)
		if err != nil {
			return nil, panther.Invalidf("qrels line %d: %v", line, err)
		}
		out = append(out, q)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, panther.Invalidf("qrels line %d: longer than %d bytes", line+1, MaxQrelLine)
		}
		return nil, fmt.Errorf("read qrels after line %d: %w", line, err)
	}
	return out, nil
}

func parseQrel(text []byte, base *url.URL) (Qrel, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	// Unknown fields are refused so that a misspelt "relevant" is an error, not a query with no answer.
	dec.DisallowUnknownFields()
	var q Qrel
	if err := dec.Decode(&q); err != nil {
		return Qrel{}, fmt.Errorf("not a JSON object {\"query\", \"relevant\"}: %v", err)
	}
	if dec.More() {
		return Qrel{}, errors.New("more than one JSON value on the line")
	}
	q.Query = strings.TrimSpace(q.Query)
	if q.Query == "" {
		return Qrel{}, errors.New("empty query")
	}
	if len(q.Relevant) == 0 {
		return Qrel{}, fmt.Errorf("query %q has no relevant entries", q.Query)
	}
	for i, rel := range q.Relevant {
		abs, err := resolveRelevant(rel, base)
		if err != nil {
			return Qrel{}, fmt.Errorf("relevant entry %d %q: %v", i+1, rel, err)
		}
		q.Relevant[i] = abs
	}
	return q, nil
}

func resolveRelevant(rel string, base *url.URL) (string, error) {
	rel = strings.TrimSpace(rel)
	if rel == "" {
		return "", errors.New("empty")
	}
	u, err := url.Parse(rel)
	if err != nil {
		return "", err
	}
	if !u.IsAbs() {
		if base == nil {
			return "", errors.New("relative, and no base URL was given")
		}
		u = base.ResolveReference(u)
	}
	if u.Scheme != "file" && u.Host == "" {
		return "", errors.New("no host")
	}
	// url.Parse takes some authorities it cannot read back once written ("//::" becomes "https://::",
	// an invalid port; found by FuzzReadQrels): such an entry could never equal a hit's URL.
	abs := u.String()
	if _, err := url.Parse(abs); err != nil {
		return "", fmt.Errorf("resolves to %q, which is not a valid URL: %v", abs, err)
	}
	return abs, nil
}

// Searcher is what Evaluate measures.
type Searcher interface {
	Search(ctx context.Context, q panther.Query) ([]panther.Hit, error)
}

// Metrics are averages over queries. Recall is at the report's K; MRR and NDCG at 10; Hit1 is the
// share of queries whose first result is relevant.
type Metrics struct {
	Recall float64 `json:"recall"`
	MRR    float64 `json:"mrr"`
	NDCG   float64 `json:"ndcg"`
	Hit1   float64 `json:"hit1"`
}

// QueryResult is one query's scores, for finding the queries that pull an average down.
type QueryResult struct {
	Query string `json:"query"`
	// Pages and Sections are the ranked lists that were scored.
	Pages    []string `json:"pages"`
	Page     Metrics  `json:"page"`
	Sections []string `json:"sections,omitempty"`
	// Section is nil when the qrel names no section.
	Section *Metrics `json:"section,omitempty"`
}

// Report is the result of an evaluation.
type Report struct {
	K       int
	Queries int
	Page    Metrics
	// Section is nil when no qrel names a section (URL#anchor); it averages over the SectionQueries
	// qrels that do.
	Section        *Metrics
	SectionQueries int
	// PerQuery is left out of the report's JSON, which `panther eval` compares across runs; marshal it
	// on its own to debug.
	PerQuery []QueryResult
}

// metricsCutoff is the depth of MRR and nDCG, fixed so that runs with different K compare.
const metricsCutoff = 10

// MarshalJSON writes {"queries":N,"page":{"recall@K":..,"mrr@10":..,"ndcg@10":..,"hit@1":..},"section":{..}}
// in that order, section only when there is one.
func (r Report) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"queries":`)
	b.WriteString(strconv.Itoa(r.Queries))
	b.WriteString(`,"page":`)
	writeMetrics(&b, r.Page, r.K)
	if r.Section != nil {
		b.WriteString(`,"section":`)
		writeMetrics(&b, *r.Section, r.K)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeMetrics(b *bytes.Buffer, m Metrics, k int) {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	fmt.Fprintf(b, `{"recall@%d":%s,"mrr@%d":%s,"ndcg@%d":%s,"hit@1":%s}`,
		k, f(m.Recall), metricsCutoff, f(m.MRR), metricsCutoff, f(m.NDCG), f(m.Hit1))
}

// Evaluate searches every qrel's query and scores the results at page and at section level.
//
// Page level: the ranked list is the hits' distinct page URLs (fragment dropped) in rank order; the
// relevant set is the distinct pages of the qrel's entries. Section level, only for qrels with
// URL#anchor entries: the list is the hits' distinct URL#anchor, the relevant set those entries.
// Recall is taken over the first k of a list, MRR and nDCG (binary gains) over the first 10, so
// the search asks for max(k, 10) hits. URLs compare after normalisation (see normalizeURL); fragments
// compare exactly.
func Evaluate(ctx context.Context, s Searcher, qrels []Qrel, k int) (Report, error) {
	if k <= 0 || k > panther.MaxK {
		return Report{}, panther.Invalidf("eval: k must be between 1 and %d, got %d", panther.MaxK, k)
	}
	if len(qrels) == 0 {
		return Report{}, panther.Invalidf("eval: no qrels")
	}
	rep := Report{K: k, Queries: len(qrels)}
	var sec Metrics
	for i, qr := range qrels {
		hits, err := s.Search(ctx, panther.Query{Text: qr.Query, K: max(k, metricsCutoff)})
		if err != nil {
			return Report{}, fmt.Errorf("eval query %d %q: %w", i+1, qr.Query, err)
		}
		res := scoreQuery(qr, hits, k)
		rep.Page = addMetrics(rep.Page, res.Page)
		if res.Section != nil {
			sec = addMetrics(sec, *res.Section)
			rep.SectionQueries++
		}
		rep.PerQuery = append(rep.PerQuery, res)
	}
	rep.Page = scaleMetrics(rep.Page, len(qrels))
	if rep.SectionQueries > 0 {
		m := scaleMetrics(sec, rep.SectionQueries)
		rep.Section = &m
	}
	return rep, nil
}

func scoreQuery(qr Qrel, hits []panther.Hit, k int) QueryResult {
	res := QueryResult{Query: qr.Query}
	relPages := map[string]bool{}
	relSections := map[string]bool{}
	for _, r := range qr.Relevant {
		page, frag, _ := strings.Cut(r, "#")
		page = normalizeURL(page)
		relPages[page] = true
		if frag != "" {
			relSections[page+"#"+frag] = true
		}
	}
	seenPage := map[string]bool{}
	seenSection := map[string]bool{}
	for _, h := range hits {
		page, frag, _ := strings.Cut(h.URL, "#")
		page = normalizeURL(page)
		if frag == "" {
			frag = h.Anchor
		}
		if !seenPage[page] {
			seenPage[page] = true
			res.Pages = append(res.Pages, page)
		}
		sec := page
		if frag != "" {
			sec += "#" + frag
		}
		if !seenSection[sec] {
			seenSection[sec] = true
			res.Sections = append(res.Sections, sec)
		}
	}
	res.Page = score(res.Pages, relPages, k)
	if len(relSections) > 0 {
		m := score(res.Sections, relSections, k)
		res.Section = &m
	} else {
		res.Sections = nil
	}
	return res
}

// score computes one query's metrics of a ranked list against a relevant set.
func score(ranked []string, relevant map[string]bool, k int) Metrics {
	var m Metrics
	if len(relevant) == 0 {
		return m
	}
	found := 0
	for i, x := range ranked {
		if !relevant[x] {
			continue
		}
		if i < k {
			found++
		}
		if i < metricsCutoff {
			if m.MRR == 0 {
				m.MRR = 1 / float64(i+1)
			}
			m.NDCG += 1 / math.Log2(float64(i+2))
		}
		if i == 0 {
			m.Hit1 = 1
		}
	}
	m.Recall = float64(found) / float64(len(relevant))
	ideal := 0.0
	for i := range min(len(relevant), metricsCutoff) {
		ideal += 1 / math.Log2(float64(i+2))
	}
	m.NDCG /= ideal
	return m
}

func addMetrics(a, b Metrics) Metrics {
	return Metrics{a.Recall + b.Recall, a.MRR + b.MRR, a.NDCG + b.NDCG, a.Hit1 + b.Hit1}
}

func scaleMetrics(a Metrics, n int) Metrics {
	d := float64(n)
	return Metrics{a.Recall / d, a.MRR / d, a.NDCG / d, a.Hit1 / d}
}

// normalizeURL makes the spellings of one page compare equal: scheme and host in lower case, default
// ports dropped, an empty path as "/", a trailing slash dropped from other paths. A string that does
// not parse is compared as it is.
func normalizeURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return raw
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	if p := u.Port(); u.Scheme == "http" && p == "80" || u.Scheme == "https" && p == "443" {
		u.Host = strings.TrimSuffix(u.Host, ":"+p)
	}
	u.Fragment, u.RawFragment = "", ""
	switch {
	case u.Path == "" && u.Host != "":
		u.Path = "/"
	case len(u.Path) > 1 && strings.HasSuffix(u.Path, "/"):
		u.Path = strings.TrimRight(u.Path, "/")
		if u.Path == "" {
			u.Path = "/"
		}
	}
	u.RawPath = ""
	return u.String()
}
