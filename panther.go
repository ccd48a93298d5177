// Package panther is the domain of the panther knowledge server: the things it stores and returns
// (sources, documents, sections, chunks, hits with citations), the error kinds every face maps to its own
// status codes, and the small store interfaces the implementations plug into.
//
// It imports no other package of the project, so every other package may depend on it.
package panther

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Error kinds. Wrap them (fmt.Errorf("...: %w", panther.ErrNotFound)) so that the CLI, the HTTP API and
// the MCP server can each map a failure to their own code without knowing where it came from.
var (
	ErrNotFound    = errors.New("not found")
	ErrInvalid     = errors.New("invalid input")
	ErrConflict    = errors.New("conflict")
	ErrUnavailable = errors.New("unavailable")
)

// Invalidf returns an error of kind ErrInvalid whose message names what was wrong.
func Invalidf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalid)
}

// NotFoundf returns an error of kind ErrNotFound whose message names what was missing.
func NotFoundf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrNotFound)
}

// Source is a seed the knowledge base is grown from: a site URL, a sitemap, or a local folder/file
// (as a file:// URL).
type Source struct {
	ID        int64     `json:"id"`
	URL       string    `json:"url"`
	CreatedAt time.Time `json:"created_at"`
	// LastCrawlAt is when the last crawl of this source ran to the end; zero if none has.
	LastCrawlAt time.Time `json:"last_crawl_at,omitzero"`
}

// DocStatus says whether a stored document is still served by its origin.
type DocStatus string

const (
	DocCurrent DocStatus = "current"
	// DocGone documents answered 404/410 on a re-crawl. They are kept for the record but never searched.
	DocGone DocStatus = "gone"
)

// Validators are what a fetch learned about a page that lets the next fetch be conditional and lets
// an unchanged body be recognised without re-extracting it.
type Validators struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// ContentHash is the hex SHA-256 of the raw fetched body.
	ContentHash string `json:"content_hash"`
}

// Document is one page as stored: its clean markdown and where and when it came from.
type Document struct {
	ID       int64  `json:"id"`
	SourceID int64  `json:"source_id"`
	URL      string `json:"url"`
	Title    string `json:"title"`
	// Markdown is the whole page as clean markdown. Listings may leave it empty.
	Markdown string `json:"markdown,omitempty"`
	Validators
	FetchedAt time.Time `json:"fetched_at"`
	Status    DocStatus `json:"status"`
	// Links are the page's outgoing links (absolute, without fragments), kept so that a re-crawl that
	// finds the page unchanged can follow them without parsing the page again.
	Links  []string `json:"links,omitempty"`
	Chunks int      `json:"chunks"`
}

// IngestOutcome says what storing a fetched page did.
type IngestOutcome string

const (
	IngestNew       IngestOutcome = "new"
	IngestChanged   IngestOutcome = "changed"
	IngestUnchanged IngestOutcome = "unchanged"
	// IngestDuplicate pages have the same content as a current page stored under another URL.
	IngestDuplicate IngestOutcome = "duplicate"
)

// Section is a part of a page under one heading, as extraction finds it.
type Section struct {
	// Heading is the heading path, outermost first ("Indexes", "Partial Indexes"). Empty for text
	// before the first heading.
	Heading []string `json:"heading"`
	// Level is the heading level (1-6), 0 for text before the first heading.
	Level int `json:"level"`
	// Anchor is the id that url#anchor opens: the heading's own id, or one on a wrapping element or on
	// an <a id|name> inside it. Empty when the page gives none.
	Anchor string `json:"anchor,omitempty"`
	// Markdown is the section's own content (its heading line included), not its subsections'.
	Markdown string `json:"markdown"`
}

// HeadingSep joins heading paths for display and for citations.
const HeadingSep = " > "

// HeadingPath renders a heading path for display: "Indexes > Partial Indexes".
func HeadingPath(h []string) string { return strings.Join(h, HeadingSep) }

// Chunk is the unit the knowledge base indexes and returns: a section, or a token-bounded part of a long one.
type Chunk struct {
	ID      int64    `json:"id,omitempty"`
	DocID   int64    `json:"doc_id,omitempty"`
	Ordinal int      `json:"ordinal"`
	Heading []string `json:"heading"`
	Anchor  string   `json:"anchor,omitempty"`
	Text    string   `json:"text"`
	Tokens  int      `json:"tokens"`
	// Keywords are the words the passage emphasises (bold, italic, inline code: defined terms,
	// parameter and function names), indexed with more weight than the rest of the text.
	Keywords string `json:"-"`
	// Navigation chunks are lists of links (tables of contents, book indexes): kept with their page
	// so that it reads whole, but never returned by search, where they would outrank the sections
	// they point to by naming every topic at once.
	Navigation bool `json:"navigation,omitempty"`
}

// Citation is what every passage the knowledge base returns carries, so an answer can be checked.
type Citation struct {
	URL         string    `json:"url"`
	Title       string    `json:"title"`
	Heading     string    `json:"heading"`
	Anchor      string    `json:"anchor"`
	FetchedAt   time.Time `json:"fetched_at"`
	ContentHash string    `json:"content_hash"`
}

// Link is the address that opens the cited section: url#anchor, or the page when there is no anchor.
func (c Citation) Link() string {
	if c.Anchor == "" {
		return c.URL
	}
	return c.URL + "#" + c.Anchor
}

// Query is a search request.
type Query struct {
	Text string `json:"query"`
	// K is the number of hits wanted.
	K int `json:"k"`
	// Mode chooses lexical, vector or hybrid ranking; empty means the service's default.
	Mode SearchMode `json:"mode,omitempty"`
	Filter
}

// Filter narrows a search to some documents. Zero values mean no restriction.
type Filter struct {
	SourceID     int64     `json:"source_id,omitempty"`
	URLPrefix    string    `json:"url_prefix,omitempty"`
	FetchedAfter time.Time `json:"fetched_after,omitzero"`
}

// SearchMode says which side of the knowledge base ranks a search.
type SearchMode string

const (
	ModeLexical SearchMode = "lexical"
	ModeVector  SearchMode = "vector"
	ModeHybrid  SearchMode = "hybrid"
)

// ParseSearchMode checks a mode given by a user.
func ParseSearchMode(s string) (SearchMode, error) {
	switch m := SearchMode(strings.ToLower(strings.TrimSpace(s))); m {
	case ModeLexical, ModeVector, ModeHybrid:
		return m, nil
	case "":
		return "", nil
	}
	return "", Invalidf("search mode %q: want lexical, vector or hybrid", s)
}

// DefaultK is the number of hits a search returns when the caller does not say.
const DefaultK = 10

// MaxK bounds K so that one request cannot ask a store to rank and return the whole corpus.
const MaxK = 1000

// Validate normalises a query and says what is wrong with it.
func (q *Query) Validate() error {
	q.Text = strings.TrimSpace(q.Text)
	if q.Text == "" {
		return Invalidf("empty query")
	}
	if q.K == 0 {
		q.K = DefaultK
	}
	if q.K < 0 || q.K > MaxK {
		return Invalidf("k must be between 1 and %d, got %d", MaxK, q.K)
	}
	return nil
}

// Hit is one ranked passage.
type Hit struct {
	Citation
	ChunkID int64 `json:"chunk_id"`
	DocID   int64 `json:"doc_id"`
	// Text is the whole passage as markdown; Snippet the part of it that matched.
	Text    string  `json:"text,omitempty"`
	Snippet string  `json:"snippet"`
	Score   float64 `json:"score"`
	// Found says which side found the passage: "lexical", "vector" or "both".
	Found string `json:"found,omitempty"`
}

// FrontierState is where a URL stands in a crawl run.
type FrontierState string

const (
	FrontierQueued  FrontierState = "queued"
	FrontierDone    FrontierState = "done"
	FrontierSkipped FrontierState = "skipped"
	FrontierFailed  FrontierState = "failed"
)

// FrontierEntry is one URL of a crawl run, persisted so that a killed crawl resumes where it stopped.
type FrontierEntry struct {
	URL   string        `json:"url"`
	Depth int           `json:"depth"`
	State FrontierState `json:"state"`
	// Reason says why an entry was skipped or failed ("robots", "content-type", "http 500", ...).
	Reason string `json:"reason,omitempty"`
}

// Stats are the counts `panther status` shows.
type Stats struct {
	Sources   int   `json:"sources"`
	Documents int   `json:"documents"`
	Gone      int   `json:"gone"`
	Chunks    int   `json:"chunks"`
	SizeBytes int64 `json:"size_bytes"`
}

// Embedder turns passages and queries into vectors that are close when their meanings are.
type Embedder interface {
	// Embed returns one vector per text, in order, each of Dimensions() floats.
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	// Model names what makes the vectors, recorded with every vector so that vectors of different
	// models are never compared ("openai:text-embedding-3-small", "builtin:glove-sif-100d@1").
	Model() string
	// Dimensions is the length of every vector Embed returns.
	Dimensions() int
}

// SessionStatus says where an agent run stands.
type SessionStatus string

const (
	SessionRunning   SessionStatus = "running"
	SessionDone      SessionStatus = "done"
	SessionFailed    SessionStatus = "failed"
	SessionCancelled SessionStatus = "cancelled"
)

// Valid reports whether s is one of the known statuses.
func (s SessionStatus) Valid() bool {
	switch s {
	case SessionRunning, SessionDone, SessionFailed, SessionCancelled:
		return true
	}
	return false
}

// Session is one persisted agent run: who ran it with which model, how far it got and what it cost.
// Its conversation is kept as SessionMessages.
type Session struct {
	// ID is random and URL-safe; stores assign it when it is empty. Any unique prefix of at least
	// MinSessionPrefix characters finds the session too, as with git commits.
	ID string `json:"id"`
	// ParentID is the session of the agent that started this one as a sub-agent; empty at top level.
	ParentID string `json:"parent_id,omitempty"`
	Agent    string `json:"agent"`
	Model    string `json:"model"`
	// Title is the first prompt on one line, bounded; see SessionTitle.
	Title   string    `json:"title"`
	Created time.Time `json:"created_at"`
	Updated time.Time `json:"updated_at"`
	// Usage and Steps add up the run's model calls.
	Usage Usage `json:"usage"`
	Steps int   `json:"steps"`
	// StoppedBy says what ended the run ("answer", or the budget that ran out).
	StoppedBy string        `json:"stopped_by,omitempty"`
	Status    SessionStatus `json:"status"`
}

// SessionMessage is one message of a session's conversation, with what it cost and what it cited.
type SessionMessage struct {
	// Seq numbers a session's messages from 1 in the order they were appended; stores assign it.
	Seq int `json:"seq"`
	Message
	Created time.Time `json:"created_at"`
	// Duration is the model's time for an assistant message, the tool's for a tool message.
	Duration time.Duration `json:"duration_ns,omitempty"`
	// Usage is the model call's usage, on assistant messages.
	Usage Usage `json:"usage,omitzero"`
	// Citations are the sources a tool message contributed, so that a transcript can list them.
	Citations []Citation `json:"citations,omitempty"`
}

// SessionFilter narrows a session listing. Zero values mean no restriction (Limit 0: no limit).
type SessionFilter struct {
	Limit int
	// ParentID lists only the sub-agent sessions of that session.
	ParentID string
	// TopLevelOnly leaves sub-agent sessions out.
	TopLevelOnly bool
}

// Bounds of session identifiers and titles.
const (
	// MinSessionPrefix is the shortest ID prefix a session is looked up by.
	MinSessionPrefix = 4
	// MaxSessionID bounds the IDs a caller may choose.
	MaxSessionID = 64
	// MaxSessionTitle bounds a title, in characters.
	MaxSessionTitle = 120
)

// SessionTitle makes a session title from a prompt: one line, spaces collapsed, at most
// MaxSessionTitle characters (cut with an ellipsis). Stores apply it to every title they keep.
func SessionTitle(prompt string) string {
	t := strings.Join(strings.Fields(prompt), " ")
	r := []rune(t)
	if len(r) <= MaxSessionTitle {
		return t
	}
	return strings.TrimRight(string(r[:MaxSessionTitle-1]), " ") + "…"
}

// ValidSessionID says what is wrong with an ID (or ID prefix) given for a session, or returns nil.
// IDs are URL-safe: ASCII letters, digits, '-' and '_'.
func ValidSessionID(id string) error {
	if id == "" {
		return Invalidf("session id is empty")
	}
	if len(id) > MaxSessionID {
		return Invalidf("session id %.16q… is longer than %d characters", id, MaxSessionID)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return Invalidf("session id %q: only letters, digits, '-' and '_' are allowed", id)
		}
	}
	return nil
}

// SessionNotFound is the error for a session that does not exist: "session ID not found".
func SessionNotFound(id string) error {
	return fmt.Errorf("session %s %w", id, ErrNotFound)
}

// NewSessionID returns a random session ID: 16 lowercase hex digits (64 bits), so that IDs made on
// several hosts sharing one store do not collide and their first 8 digits are almost always unique.
func NewSessionID() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}
