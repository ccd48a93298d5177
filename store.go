package panther

import (
	"context"
	"time"
)

// The store interfaces below are implemented by every Store (sqlite, later postgres) and checked by
// the shared conformance suite in storetest. They are split by concern so that each user asks only
// for what it needs.

// DocumentStore keeps pages and their chunks.
type DocumentStore interface {
	// PutDocument stores doc with its chunks in one transaction, replacing any earlier version of the
	// same URL and all of that version's chunks, so that a reader sees either the old or the new page,
	// never a mix. It sets the status to current and returns the document's id.
	PutDocument(ctx context.Context, doc Document, chunks []Chunk) (int64, error)
	// Touch records a re-fetch that found the page unchanged: new validators and fetched_at, status
	// current again. ErrNotFound if the URL is not stored.
	Touch(ctx context.Context, url string, v Validators, fetchedAt time.Time) error
	// MarkGone flags a page that its origin no longer serves; its chunks drop out of search.
	// ErrNotFound if the URL is not stored.
	MarkGone(ctx context.Context, url string, at time.Time) error
	// Document returns one page with its markdown and links. ErrNotFound if absent.
	Document(ctx context.Context, url string) (Document, error)
	// DocumentMeta is Document without the markdown: what a re-crawl needs, cheaply.
	DocumentMeta(ctx context.Context, url string) (Document, error)
	// DocumentByHash returns a current page whose content hash is hash, or ErrNotFound.
	DocumentByHash(ctx context.Context, hash string) (Document, error)
	// Documents lists pages without their markdown or links, ordered by URL.
	Documents(ctx context.Context, f DocFilter) ([]Document, error)
	// Chunks returns a document's chunks in order.
	Chunks(ctx context.Context, docID int64) ([]Chunk, error)
	// DeleteDocument removes a page and its chunks. ErrNotFound if absent.
	DeleteDocument(ctx context.Context, url string) error
}

// DocFilter narrows a document listing. Zero values mean no restriction (Limit 0: no limit).
type DocFilter struct {
	SourceID    int64
	URLPrefix   string
	IncludeGone bool
	Limit       int
	Offset      int
}

// LexicalIndex ranks passages by words.
type LexicalIndex interface {
	// SearchLexical returns at most q.K current chunks ranked by BM25, best first, with title and
	// headings weighing more than body text. Score is larger for better hits. The query is plain
	// text: stores must treat operators and punctuation in it as words, never as syntax. Hits carry
	// the whole chunk as Text; Snippet is left to the caller, which makes it for the few hits it
	// returns instead of every candidate it ranks.
	SearchLexical(ctx context.Context, q Query) ([]Hit, error)
}

// SourceStore keeps the seeds the knowledge base is grown from.
type SourceStore interface {
	// AddSource returns the source for url, creating it if it is new.
	AddSource(ctx context.Context, url string) (Source, error)
	Sources(ctx context.Context) ([]Source, error)
	// MarkCrawled records that a crawl of the source ran to its end.
	MarkCrawled(ctx context.Context, sourceID int64, at time.Time) error
}

// FrontierStore persists a crawl run's frontier so that a killed crawl resumes without refetching
// finished pages.
type FrontierStore interface {
	// Enqueue adds the entries whose URL is not yet in the source's frontier, as queued, and returns
	// how many were added. Entries already present keep their state.
	Enqueue(ctx context.Context, sourceID int64, entries []FrontierEntry) (int, error)
	// Frontier returns every entry of the source's current run.
	Frontier(ctx context.Context, sourceID int64) ([]FrontierEntry, error)
	// Finish records an entry's final state and reason.
	Finish(ctx context.Context, sourceID int64, e FrontierEntry) error
	// ResetFrontier forgets the source's run, to start a fresh one.
	ResetFrontier(ctx context.Context, sourceID int64) error
}

// Store is everything the embedded and the shared store implement.
type Store interface {
	DocumentStore
	LexicalIndex
	SourceStore
	FrontierStore
	SessionStore
	Stats(ctx context.Context) (Stats, error)
	Close() error
}

// VectorIndex keeps passage vectors, each recorded with the model that made it, so that vectors of
// different models are never compared.
type VectorIndex interface {
	// PutVectors stores the vectors of chunks made by model; every vector has the same length.
	// Chunks that no longer exist are skipped.
	PutVectors(ctx context.Context, model string, vectors []ChunkVector) error
	// ChunksToEmbed returns up to limit searchable chunks of current documents that have no vector
	// from model, oldest first, so that embedding them in batches resumes where it stopped.
	ChunksToEmbed(ctx context.Context, model string, limit int) ([]Chunk, error)
	// SearchVectors returns the k searchable chunks of current documents whose vectors from model are
	// nearest to q by cosine similarity, best first; Score is the similarity.
	SearchVectors(ctx context.Context, model string, q []float32, k int, f Filter) ([]Hit, error)
	// VectorCoverage counts the searchable chunks of current documents, and those with a vector from model.
	VectorCoverage(ctx context.Context, model string) (withVector, searchable int, err error)
}

// ChunkVector is one chunk's vector.
type ChunkVector struct {
	ChunkID int64
	Vector  []float32
}

// SessionStore persists agent runs and their conversations.
type SessionStore interface {
	// CreateSession stores a new session and returns it as stored. An empty ID gets NewSessionID,
	// zero times get now, an empty Status gets SessionRunning; the title goes through SessionTitle.
	// An ID already taken is ErrConflict; a ParentID that is not stored is ErrNotFound.
	CreateSession(ctx context.Context, s Session) (Session, error)
	// AppendSessionMessages adds msgs to the end of session id's conversation in one transaction,
	// numbering them on from the last Seq (their own Seq is ignored; zero Created gets now), and
	// moves the session's Updated time to now. Unknown id: ErrNotFound, and nothing is added.
	AppendSessionMessages(ctx context.Context, id string, msgs []SessionMessage) error
	// UpdateSession records a session's progress: title, usage, steps, stopped_by and status, and
	// Updated (now when zero). The other fields are fixed at creation. Unknown ID: ErrNotFound.
	UpdateSession(ctx context.Context, s Session) error
	// Session returns the session whose ID is id or, failing that, the one whose ID starts with id
	// when id has at least MinSessionPrefix characters. Several matches: ErrInvalid naming them;
	// none: SessionNotFound(id).
	Session(ctx context.Context, id string) (Session, error)
	// Sessions lists sessions, most recently updated first.
	Sessions(ctx context.Context, f SessionFilter) ([]Session, error)
	// SessionMessages returns a session's messages by Seq; the ID must be exact. Unknown: ErrNotFound.
	SessionMessages(ctx context.Context, id string) ([]SessionMessage, error)
	// DeleteSession removes a session, its messages and its sub-agent sessions, recursively.
	// The ID must be exact. Unknown: ErrNotFound.
	DeleteSession(ctx context.Context, id string) error
}

// DocumentRemover deletes pages for good, as a user asks (the HTTP API's DELETE /v1/document), as
// opposed to MarkGone, which a re-crawl uses and which keeps the record. Not yet part of Store: each
// store says it implements it (var _ panther.DocumentRemover = ...), and callers type-assert.
type DocumentRemover interface {
	// DeleteDocument removes the page, its chunks, their vectors and their full-text entries in one
	// transaction. ErrNotFound if the URL is not stored.
	DeleteDocument(ctx context.Context, url string) error
}

// SourceRemover forgets a source, as a user asks.
type SourceRemover interface {
	// RemoveSource removes the source and its crawl frontier in one transaction. withDocuments
	// removes the pages crawled from it too (chunks, vectors, full-text entries); otherwise they are
	// kept, searchable, and no longer belong to a source. ErrNotFound if there is no such source.
	RemoveSource(ctx context.Context, id int64, withDocuments bool) error
}

// Exporter reads a whole knowledge base back, every stored field included, in batches of bounded
// size, so that `panther export` can move it to another store. The ordinary readers leave out what
// search and display do not need (a chunk's keywords, when a page went gone, the vectors).
type Exporter interface {
	// ExportDocuments returns up to limit documents whose id is above afterID, in id order, gone
	// ones included, each with its markdown and links.
	ExportDocuments(ctx context.Context, afterID int64, limit int) ([]ExportedDocument, error)
	// ExportChunks returns the chunks of the documents, every field set, ordered by document id,
	// then as Chunks orders them.
	ExportChunks(ctx context.Context, docIDs []int64) ([]Chunk, error)
	// VectorSets lists the vectors stored, one set per model and length, in the order the sets were
	// created: a model's last set is the one its searches use.
	VectorSets(ctx context.Context) ([]VectorSet, error)
	// ExportVectors returns the vectors of the set that belong to chunkIDs, in chunk id order.
	ExportVectors(ctx context.Context, set VectorSet, chunkIDs []int64) ([]ChunkVector, error)
}

// ExportedDocument is a stored page as an Exporter returns it.
type ExportedDocument struct {
	Document
	// GoneAt is when a gone page was found gone; zero for a current one.
	GoneAt time.Time
}

// VectorSet names the vectors one model made at one length.
type VectorSet struct {
	Model string `json:"model"`
	Dims  int    `json:"dimensions"`
	// Vectors counts the set's vectors; VectorSets fills it in, ExportVectors ignores it.
	Vectors int `json:"vectors"`
}

// Importer writes what the ordinary writers cannot give back as it was, for `panther import`.
type Importer interface {
	// ImportSource stores src under its URL with its creation and last-crawl times (a source
	// already stored under the URL takes them), and returns it with its id in this store.
	ImportSource(ctx context.Context, src Source) (Source, error)
	// AddVectorSet records a set before any of its vectors, so that a model's sets are created in
	// the exporting store's order and the same one stays the searched one. An existing set is kept.
	AddVectorSet(ctx context.Context, model string, dims int) error
}
