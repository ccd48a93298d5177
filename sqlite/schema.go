package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations bring a database from version i to i+1 (PRAGMA user_version counts how many ran).
// Append only: never edit a migration that has shipped.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE sources (
	id            INTEGER PRIMARY KEY,
	url           TEXT NOT NULL UNIQUE,
	created_at    INTEGER NOT NULL,
	last_crawl_at INTEGER
);

CREATE TABLE documents (
	id            INTEGER PRIMARY KEY,
	source_id     INTEGER REFERENCES sources(id) ON DELETE SET NULL,
	url           TEXT NOT NULL UNIQUE,
	title         TEXT NOT NULL DEFAULT '',
	markdown      TEXT NOT NULL DEFAULT '',
	etag          TEXT NOT NULL DEFAULT '',
	last_modified TEXT NOT NULL DEFAULT '',
	content_hash  TEXT NOT NULL DEFAULT '',
	fetched_at    INTEGER,
	status        TEXT NOT NULL DEFAULT 'current' CHECK (status IN ('current', 'gone')),
	gone_at       INTEGER,
	links         TEXT NOT NULL DEFAULT '' -- newline-separated; a URL never holds a raw newline
);
CREATE INDEX documents_content_hash ON documents(content_hash);
CREATE INDEX documents_source_url ON documents(source_id, url);

CREATE TABLE chunks (
	id      INTEGER PRIMARY KEY,
	doc_id  INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
	ordinal INTEGER NOT NULL,
	heading TEXT NOT NULL DEFAULT '[]', -- JSON array: lossless, and its punctuation tokenizes away in FTS
	anchor  TEXT NOT NULL DEFAULT '',
	text    TEXT NOT NULL,
	tokens  INTEGER NOT NULL DEFAULT 0,
	navigation INTEGER NOT NULL DEFAULT 0, -- 1: a list of links, kept but not searched
	keywords TEXT NOT NULL DEFAULT ''
);
CREATE INDEX chunks_doc_ordinal ON chunks(doc_id, ordinal);

-- What the full-text index holds: the chunks of current documents only, so search needs no status
-- filter and FTS5 'rebuild' reproduces exactly the index the code maintains.
CREATE VIEW chunks_fts_content AS
	SELECT c.id AS id, d.title AS title, c.heading AS heading, c.text AS body, c.keywords AS keywords
	FROM chunks c JOIN documents d ON d.id = c.doc_id
	WHERE d.status = 'current' AND c.navigation = 0;

-- External content: the text lives once, in chunks/documents; the index is kept in step by the
-- code (insert on put/touch, 'delete' with the old values before they change).
CREATE VIRTUAL TABLE chunks_fts USING fts5(
	title, heading, body, keywords,
	content = 'chunks_fts_content',
	content_rowid = 'id',
	tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TABLE frontier (
	source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
	url       TEXT NOT NULL,
	depth     INTEGER NOT NULL,
	state     TEXT NOT NULL CHECK (state IN ('queued', 'done', 'skipped', 'failed')),
	reason    TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (source_id, url)
);
`,
	// 2: passage vectors, per embedding model.
	`
CREATE TABLE embedders (
	id         INTEGER PRIMARY KEY,
	model      TEXT NOT NULL,
	dims       INTEGER NOT NULL CHECK (dims > 0),
	created_at INTEGER NOT NULL,
	UNIQUE (model, dims)
);

-- One row per chunk and model; the vector is dims little-endian float32s. Vectors go with their chunk:
-- a replaced page's chunks, and so their vectors, are deleted in the same transaction.
CREATE TABLE vectors (
	embedder_id INTEGER NOT NULL REFERENCES embedders(id) ON DELETE CASCADE,
	chunk_id    INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
	vec         BLOB NOT NULL,
	PRIMARY KEY (embedder_id, chunk_id)
) WITHOUT ROWID;
CREATE INDEX vectors_chunk ON vectors(chunk_id);

-- epoch changes with every write that changes which vectors exist, so that a process holding
-- vectors in memory for search knows when to reload them, whoever wrote.
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('vectors_epoch', 0);
CREATE TRIGGER vectors_epoch_insert AFTER INSERT ON vectors BEGIN
	UPDATE meta SET value = value + 1 WHERE key = 'vectors_epoch';
END;
CREATE TRIGGER vectors_epoch_delete AFTER DELETE ON vectors BEGIN
	UPDATE meta SET value = value + 1 WHERE key = 'vectors_epoch';
END;
`,
	// 3: agent sessions and their conversations.
	`
CREATE TABLE sessions (
	id            TEXT PRIMARY KEY,
	parent_id     TEXT REFERENCES sessions(id) ON DELETE CASCADE, -- NULL at top level
	agent         TEXT NOT NULL DEFAULT '',
	model         TEXT NOT NULL DEFAULT '',
	title         TEXT NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	input_tokens  INTEGER NOT NULL DEFAULT 0,
	output_tokens INTEGER NOT NULL DEFAULT 0,
	steps         INTEGER NOT NULL DEFAULT 0,
	stopped_by    TEXT NOT NULL DEFAULT '',
	status        TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'cancelled'))
) WITHOUT ROWID;
CREATE INDEX sessions_updated ON sessions(updated_at);
CREATE INDEX sessions_parent ON sessions(parent_id, updated_at);

CREATE TABLE session_messages (
	session_id    TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
	seq           INTEGER NOT NULL,
	role          TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
	content       TEXT NOT NULL DEFAULT '',
	tool_calls    TEXT NOT NULL DEFAULT '', -- JSON array of {id, name, arguments (the raw text)}
	tool_call_id  TEXT NOT NULL DEFAULT '',
	is_error      INTEGER NOT NULL DEFAULT 0,
	input_tokens  INTEGER NOT NULL DEFAULT 0,
	output_tokens INTEGER NOT NULL DEFAULT 0,
	duration_us   INTEGER NOT NULL DEFAULT 0,
	citations     TEXT NOT NULL DEFAULT '', -- JSON array of panther.Citation
	created_at    INTEGER NOT NULL,
	PRIMARY KEY (session_id, seq)
);
`,
}

// SchemaVersion is the schema version this binary writes.
var SchemaVersion = len(migrations)

// migrate applies the missing migrations, each in its own immediate transaction. The version is
// re-read inside the transaction, so two processes opening a new file at once apply each migration
// exactly once.
func migrate(ctx context.Context, w *sql.DB) error {
	// Touch the file so journal_mode=WAL (a DSN pragma) has taken effect before the first write.
	if err := w.PingContext(ctx); err != nil {
		return err
	}
	// Read outside a write transaction first: a schema that is up to date, which is every open but
	// the first, then costs no write lock. Otherwise every search would queue behind a busy writer
	// (or time out behind a long one) just to learn there is nothing to migrate, and a read-only
	// file could not be opened at all.
	var v int
	if err := w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if v == len(migrations) {
		return nil
	}
	for {
		done, err := migrateOne(ctx, w)
		if err != nil || done {
			return err
		}
	}
}

func migrateOne(ctx context.Context, w *sql.DB) (done bool, err error) {
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return false, fmt.Errorf("migrate: read schema version: %w", err)
	}
	switch {
	case v > len(migrations):
		return false, fmt.Errorf("schema version %d is newer than this binary knows (%d): upgrade panther", v, len(migrations))
	case v == len(migrations):
		return true, nil
	}
	if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
		return false, fmt.Errorf("migrate to version %d: %w", v+1, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
		return false, fmt.Errorf("migrate to version %d: set version: %w", v+1, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrate to version %d: commit: %w", v+1, err)
	}
	return false, nil
}
