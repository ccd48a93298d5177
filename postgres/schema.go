package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"panther"
)

// migration brings the schema from version i to i+1 (its index plus one). Append only: never edit a
// migration that has shipped.
type migration struct {
	name string
	sql  string
}

var migrations = []migration{
	{"initial schema", `
-- english, stemmed, without its stop-word list: the query side drops stop words itself unless they
-- are all a query has, and then they must be in the index to be found.
CREATE TEXT SEARCH DICTIONARY panther_english_stem (TEMPLATE = snowball, Language = english);
CREATE TEXT SEARCH CONFIGURATION panther_english (COPY = pg_catalog.english);
ALTER TEXT SEARCH CONFIGURATION panther_english ALTER MAPPING REPLACE english_stem WITH panther_english_stem;

-- Combine the per-word tsqueries of a search into one, so that one statement serves any number of words.
CREATE AGGREGATE panther_tsquery_and(tsquery) (SFUNC = tsquery_and, STYPE = tsquery);
CREATE AGGREGATE panther_tsquery_or(tsquery) (SFUNC = tsquery_or, STYPE = tsquery);

-- What a chunk is searched by. The body is cut well below tsvector's 1 MB limit; no real chunk
-- comes near it.
CREATE FUNCTION panther_chunk_tsv(title text, heading text[], keywords text, body text) RETURNS tsvector
LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT setweight(to_tsvector('panther_english', title), 'A')
		|| setweight(to_tsvector('panther_english', array_to_string(heading, ' ')), 'B')
		|| setweight(to_tsvector('panther_english', keywords), 'C')
		|| setweight(to_tsvector('panther_english', left(body, 262144)), 'D')
$$;

-- URLs and session IDs sort and compare bytewise (COLLATE "C") whatever the database's locale, so
-- listings order as in the embedded store and prefix lookups can use the btree indexes.
CREATE TABLE sources (
	id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	url           text COLLATE "C" NOT NULL UNIQUE,
	created_at    timestamptz NOT NULL,
	last_crawl_at timestamptz
);

CREATE TABLE documents (
	id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	source_id     bigint CONSTRAINT documents_source_fk REFERENCES sources(id) ON DELETE SET NULL,
	url           text COLLATE "C" NOT NULL UNIQUE,
	title         text NOT NULL DEFAULT '',
	markdown      text NOT NULL DEFAULT '',
	etag          text NOT NULL DEFAULT '',
	last_modified text NOT NULL DEFAULT '',
	content_hash  text NOT NULL DEFAULT '',
	fetched_at    timestamptz,
	status        text NOT NULL DEFAULT 'current' CHECK (status IN ('current', 'gone')),
	gone_at       timestamptz,
	links         text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX documents_content_hash ON documents (content_hash);
CREATE INDEX documents_source_url ON documents (source_id, url);

CREATE TABLE chunks (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	doc_id     bigint NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
	ordinal    integer NOT NULL,
	heading    text[] NOT NULL DEFAULT '{}',
	anchor     text NOT NULL DEFAULT '',
	text       text NOT NULL,
	tokens     integer NOT NULL DEFAULT 0,
	navigation boolean NOT NULL DEFAULT false, -- a list of links, kept but not searched
	keywords   text NOT NULL DEFAULT '',
	tsv        tsvector NOT NULL
);
CREATE INDEX chunks_doc_ordinal ON chunks (doc_id, ordinal);
-- Navigation chunks are never searched, so they stay out of the index.
CREATE INDEX chunks_tsv ON chunks USING gin (tsv) WHERE NOT navigation;

CREATE TABLE frontier (
	seq       bigint GENERATED ALWAYS AS IDENTITY, -- enqueue order
	source_id bigint NOT NULL CONSTRAINT frontier_source_fk REFERENCES sources(id) ON DELETE CASCADE,
	url       text COLLATE "C" NOT NULL,
	depth     integer NOT NULL CHECK (depth >= 0),
	state     text NOT NULL CHECK (state IN ('queued', 'done', 'skipped', 'failed')),
	reason    text NOT NULL DEFAULT '',
	PRIMARY KEY (source_id, url)
);
CREATE INDEX frontier_order ON frontier (source_id, depth, seq);

-- epoch moves with every PutVectors of the model, so that a process holding the model's vectors in
-- memory knows when to reload them, whoever wrote.
CREATE TABLE embedders (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	model      text NOT NULL,
	dims       integer NOT NULL CHECK (dims > 0),
	created_at timestamptz NOT NULL DEFAULT now(),
	epoch      bigint NOT NULL DEFAULT 0,
	UNIQUE (model, dims)
);

-- One row per chunk and model; vectors go with their chunk.
CREATE TABLE vectors (
	embedder_id bigint NOT NULL REFERENCES embedders(id) ON DELETE CASCADE,
	chunk_id    bigint NOT NULL CONSTRAINT vectors_chunk_fk REFERENCES chunks(id) ON DELETE CASCADE,
	vec         real[] NOT NULL,
	PRIMARY KEY (embedder_id, chunk_id)
);
CREATE INDEX vectors_chunk ON vectors (chunk_id);

CREATE TABLE sessions (
	id            text COLLATE "C" PRIMARY KEY,
	parent_id     text COLLATE "C" CONSTRAINT sessions_parent_fk REFERENCES sessions(id) ON DELETE CASCADE, -- NULL at top level
	agent         text NOT NULL DEFAULT '',
	model         text NOT NULL DEFAULT '',
	title         text NOT NULL DEFAULT '',
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL,
	input_tokens  bigint NOT NULL DEFAULT 0,
	output_tokens bigint NOT NULL DEFAULT 0,
	steps         integer NOT NULL DEFAULT 0,
	stopped_by    text NOT NULL DEFAULT '',
	status        text NOT NULL CHECK (status IN ('running', 'done', 'failed', 'cancelled'))
);
CREATE INDEX sessions_updated ON sessions (updated_at);
CREATE INDEX sessions_parent ON sessions (parent_id, updated_at);

CREATE TABLE session_messages (
	session_id    text COLLATE "C" NOT NULL CONSTRAINT session_messages_session_fk REFERENCES sessions(id) ON DELETE CASCADE,
	seq           integer NOT NULL,
	role          text NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
	content       text NOT NULL DEFAULT '',
	tool_calls    text NOT NULL DEFAULT '', -- JSON array of {id, name, arguments (the raw text)}
	tool_call_id  text NOT NULL DEFAULT '',
	is_error      boolean NOT NULL DEFAULT false,
	input_tokens  bigint NOT NULL DEFAULT 0,
	output_tokens bigint NOT NULL DEFAULT 0,
	duration_us   bigint NOT NULL DEFAULT 0,
	citations     text NOT NULL DEFAULT '', -- JSON array of panther.Citation
	created_at    timestamptz NOT NULL,
	PRIMARY KEY (session_id, seq)
);
`},
}

// SchemaVersion is the schema version this binary writes.
var SchemaVersion = len(migrations)

// migrationLock is the first key of the advisory lock migrations hold; the second is a hash of the
// schema, so that stores in different schemas of one database migrate independently.
const migrationLock = 0x70616e74 // "pant"

// Migrate applies the migrations the database lacks, each in its own transaction that also records
// it in schema_migrations. Every transaction first takes a transaction-scoped advisory lock and
// then reads the version, so processes starting at once apply each migration exactly once: the
// others wait, then find it done. Running it again on an up-to-date schema changes nothing.
func (db *DB) Migrate(ctx context.Context) error {
	for {
		done, err := db.migrateOne(ctx)
		if err != nil {
			return unavailable(err)
		}
		if done {
			db.enablePgvector(ctx)
			return nil
		}
	}
}

// enablePgvector installs the vector extension where the server offers it and panther may create it.
// Vector search works without it (exactly, in process), so a refusal is said, not returned.
func (db *DB) enablePgvector(ctx context.Context) {
	var available, installed bool
	err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector'),
		EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')`).Scan(&available, &installed)
	if err != nil || !available || installed {
		return
	}
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		// Under the migration lock: two processes creating it at once would collide on its catalog row.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))`, migrationLock); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS vector`)
		return err
	})
	if err != nil {
		db.log.Warn("postgres: pgvector is available but could not be installed (a superuser can run CREATE EXTENSION vector); vector search is exact, in process",
			"database", db.where, "err", err)
		return
	}
	db.log.Info("postgres: installed the pgvector extension", "database", db.where)
}

func (db *DB) migrateOne(ctx context.Context) (done bool, err error) {
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		// A migration may outlast the pool's statement timeout, and so may waiting for another
		// process's; the caller's context bounds both instead.
		if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))`, migrationLock); err != nil {
			return fmt.Errorf("migrate: take the migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("migrate: create schema_migrations: %w", err)
		}
		v, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		switch {
		case v > len(migrations):
			return newerSchema(v)
		case v == len(migrations):
			done = true
			return nil
		}
		m := migrations[v]
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("migrate to version %d (%s): %w", v+1, m.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, v+1, m.name); err != nil {
			return fmt.Errorf("migrate to version %d: record it: %w", v+1, err)
		}
		return nil
	})
	return done, err
}

func newerSchema(v int) error {
	return fmt.Errorf("schema version %d is newer than this binary knows (%d): upgrade panther", v, len(migrations))
}

// schemaVersion reads the highest applied migration; 0 for a database panther never touched.
func schemaVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	// Two statements: a statement naming a table that does not exist fails when it is parsed.
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// SchemaVersionOf returns the version of the schema in the database: 0 when panther never
// migrated it, SchemaVersion when it is up to date.
func (db *DB) SchemaVersionOf(ctx context.Context) (int, error) {
	v, err := schemaVersion(ctx, db.pool)
	return v, unavailable(err)
}

// checkSchema refuses a database whose schema is not the one this binary writes.
func (db *DB) checkSchema(ctx context.Context) error {
	v, err := db.SchemaVersionOf(ctx)
	switch {
	case err != nil:
		return err
	case v > len(migrations):
		return newerSchema(v)
	case v < len(migrations):
		return fmt.Errorf("schema version %d, this binary needs %d: run panther migrate: %w", v, len(migrations), panther.ErrUnavailable)
	}
	return nil
}
