package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"panther"
)

// sessionCols are the columns scanSession reads, in its order.
const sessionCols = `id, coalesce(parent_id, ''), agent, model, title, created_at, updated_at,
	input_tokens, output_tokens, steps, stopped_by, status`

func scanSession(r pgx.Row) (panther.Session, error) {
	var s panther.Session
	err := r.Scan(&s.ID, &s.ParentID, &s.Agent, &s.Model, &s.Title, &s.Created, &s.Updated,
		&s.Usage.InputTokens, &s.Usage.OutputTokens, &s.Steps, &s.StoppedBy, &s.Status)
	s.Created, s.Updated = s.Created.UTC(), s.Updated.UTC()
	return s, err
}

// micro drops what the store cannot keep, so that what a write returns equals what a read will.
func micro(t time.Time) time.Time { return time.UnixMicro(t.UnixMicro()).UTC() }

func checkSessionCounts(id string, u panther.Usage, steps int) error {
	if u.InputTokens < 0 || u.OutputTokens < 0 {
		return panther.Invalidf("session %s: negative token usage %+v", id, u)
	}
	if steps < 0 || steps > 1<<30 {
		return panther.Invalidf("session %s: steps %d out of range", id, steps)
	}
	return nil
}

// CreateSession stores a new session; see panther.SessionStore.
func (db *DB) CreateSession(ctx context.Context, s panther.Session) (panther.Session, error) {
	if s.ID == "" {
		s.ID = panther.NewSessionID()
	} else if err := panther.ValidSessionID(s.ID); err != nil {
		return panther.Session{}, fmt.Errorf("create session: %w", err)
	}
	if s.ParentID != "" {
		if err := panther.ValidSessionID(s.ParentID); err != nil {
			return panther.Session{}, fmt.Errorf("create session %s: parent: %w", s.ID, err)
		}
	}
	if s.Status == "" {
		s.Status = panther.SessionRunning
	}
	if !s.Status.Valid() {
		return panther.Session{}, panther.Invalidf("create session %s: unknown status %q", s.ID, s.Status)
	}
	if err := checkSessionCounts(s.ID, s.Usage, s.Steps); err != nil {
		return panther.Session{}, err
	}
	if s.Created.IsZero() {
		s.Created = time.Now()
	}
	if s.Updated.IsZero() {
		s.Updated = s.Created
	}
	s.Created, s.Updated = micro(s.Created), micro(s.Updated)
	s.Title = panther.SessionTitle(text(s.Title))
	s.Agent, s.Model, s.StoppedBy = text(s.Agent), text(s.Model), text(s.StoppedBy)
	var parent any
	if s.ParentID != "" {
		parent = s.ParentID
	}
	err := retry(ctx, func() error {
		tag, err := db.pool.Exec(ctx, `INSERT INTO sessions (id, parent_id, agent, model, title, created_at, updated_at,
			input_tokens, output_tokens, steps, stopped_by, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (id) DO NOTHING`,
			s.ID, parent, s.Agent, s.Model, s.Title, s.Created, s.Updated,
			s.Usage.InputTokens, s.Usage.OutputTokens, s.Steps, s.StoppedBy, string(s.Status))
		switch {
		case isForeignKey(err, "sessions_parent_fk"):
			return fmt.Errorf("parent: %w", panther.SessionNotFound(s.ParentID))
		case err != nil:
			return err
		case tag.RowsAffected() == 0:
			return fmt.Errorf("id already taken: %w", panther.ErrConflict)
		}
		return nil
	})
	if err != nil {
		return panther.Session{}, fmt.Errorf("create session %s: %w", s.ID, err)
	}
	return s, nil
}

// storedCall is how a tool call is kept: the arguments as the model wrote them, byte for byte, so
// that even arguments that are not valid JSON are recorded as the model sent them.
type storedCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

func encodeCalls(calls []panther.ToolCall) (string, error) {
	if len(calls) == 0 {
		return "", nil
	}
	out := make([]storedCall, len(calls))
	for i, c := range calls {
		out[i] = storedCall{ID: c.ID, Name: c.Name, Arguments: string(c.Arguments)}
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func decodeCalls(s string) ([]panther.ToolCall, error) {
	if s == "" {
		return nil, nil
	}
	var in []storedCall
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, err
	}
	out := make([]panther.ToolCall, len(in))
	for i, c := range in {
		out[i] = panther.ToolCall{ID: c.ID, Name: c.Name}
		if c.Arguments != "" {
			out[i].Arguments = json.RawMessage(c.Arguments)
		}
	}
	return out, nil
}

func encodeCitations(cs []panther.Citation) (string, error) {
	if len(cs) == 0 {
		return "", nil
	}
	b, err := json.Marshal(cs)
	return string(b), err
}

func decodeCitations(s string) ([]panther.Citation, error) {
	if s == "" {
		return nil, nil
	}
	var out []panther.Citation
	err := json.Unmarshal([]byte(s), &out)
	return out, err
}

// AppendSessionMessages adds msgs to a session in one transaction; see panther.SessionStore.
// Updating the session row first locks it, so concurrent appenders to one session queue there and
// each numbers its batch after the last one committed.
func (db *DB) AppendSessionMessages(ctx context.Context, id string, msgs []panther.SessionMessage) error {
	if err := panther.ValidSessionID(id); err != nil {
		return fmt.Errorf("append to session: %w", err)
	}
	type row struct {
		calls, cites string
		created      time.Time
	}
	rows := make([]row, len(msgs))
	now := time.Now().UTC()
	for i, m := range msgs {
		switch m.Role {
		case panther.RoleUser, panther.RoleAssistant, panther.RoleTool:
		default:
			return panther.Invalidf("append to session %s: message %d: unknown role %q", id, i, m.Role)
		}
		if m.Duration < 0 {
			return panther.Invalidf("append to session %s: message %d: negative duration %s", id, i, m.Duration)
		}
		if m.Usage.InputTokens < 0 || m.Usage.OutputTokens < 0 {
			return panther.Invalidf("append to session %s: message %d: negative token usage %+v", id, i, m.Usage)
		}
		calls, err := encodeCalls(m.ToolCalls)
		if err != nil {
			return fmt.Errorf("append to session %s: message %d: tool calls: %w", id, i, err)
		}
		cites, err := encodeCitations(m.Citations)
		if err != nil {
			return fmt.Errorf("append to session %s: message %d: citations: %w", id, i, err)
		}
		created := m.Created
		if created.IsZero() {
			created = now
		}
		rows[i] = row{calls: calls, cites: cites, created: created.UTC()}
	}
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if len(msgs) == 0 {
			return sessionExists(ctx, tx, id)
		}
		tag, err := tx.Exec(ctx, `UPDATE sessions SET updated_at = greatest(updated_at, $2) WHERE id = $1`, id, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return panther.SessionNotFound(id)
		}
		// A statement of its own, after the lock: its snapshot sees every batch committed before.
		var last int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM session_messages WHERE session_id = $1`, id).Scan(&last); err != nil {
			return err
		}
		b := &pgx.Batch{}
		for i, m := range msgs {
			b.Queue(`INSERT INTO session_messages (session_id, seq, role, content, tool_calls,
				tool_call_id, is_error, input_tokens, output_tokens, duration_us, citations, created_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
				id, last+1+i, string(m.Role), text(m.Content), rows[i].calls, text(m.ToolCallID),
				m.IsError, m.Usage.InputTokens, m.Usage.OutputTokens, m.Duration.Microseconds(), rows[i].cites, rows[i].created)
		}
		br := tx.SendBatch(ctx, b)
		for i := range b.Len() {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return fmt.Errorf("message %d: %w", i, err)
			}
		}
		return br.Close()
	})
	if err != nil {
		return fmt.Errorf("append to session %s: %w", id, err)
	}
	return nil
}

func sessionExists(ctx context.Context, tx pgx.Tx, id string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM sessions WHERE id = $1`, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return panther.SessionNotFound(id)
	}
	return err
}

// UpdateSession records a session's progress; see panther.SessionStore.
func (db *DB) UpdateSession(ctx context.Context, s panther.Session) error {
	if err := panther.ValidSessionID(s.ID); err != nil {
		return fmt.Errorf("update session: %w", err)
	}
	if !s.Status.Valid() {
		return panther.Invalidf("update session %s: unknown status %q", s.ID, s.Status)
	}
	if err := checkSessionCounts(s.ID, s.Usage, s.Steps); err != nil {
		return err
	}
	if s.Updated.IsZero() {
		s.Updated = time.Now()
	}
	err := db.execOne(ctx, panther.SessionNotFound(s.ID), `UPDATE sessions SET title = $2, input_tokens = $3,
		output_tokens = $4, steps = $5, stopped_by = $6, status = $7, updated_at = $8 WHERE id = $1`,
		s.ID, panther.SessionTitle(text(s.Title)), s.Usage.InputTokens, s.Usage.OutputTokens, s.Steps,
		text(s.StoppedBy), string(s.Status), s.Updated.UTC())
	if err != nil {
		return fmt.Errorf("update session %s: %w", s.ID, err)
	}
	return nil
}

// maxAmbiguous is how many of the sessions an ambiguous prefix matches the error names.
const maxAmbiguous = 5

// Session returns a session by ID or unique ID prefix; see panther.SessionStore.
func (db *DB) Session(ctx context.Context, id string) (panther.Session, error) {
	if err := panther.ValidSessionID(id); err != nil {
		return panther.Session{}, err
	}
	s, err := scanSession(db.pool.QueryRow(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id = $1`, id))
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return panther.Session{}, fmt.Errorf("session %s: %w", id, unavailable(err))
	}
	if len(id) < panther.MinSessionPrefix {
		return panther.Session{}, panther.SessionNotFound(id)
	}
	// starts_with, not LIKE (which takes '_' as a wildcard); with the C collation of id it uses the
	// primary key's index.
	rows, err := db.pool.Query(ctx, `SELECT `+sessionCols+` FROM sessions WHERE starts_with(id, $1) ORDER BY id LIMIT $2`,
		id, maxAmbiguous+1)
	if err != nil {
		return panther.Session{}, fmt.Errorf("session %s: %w", id, unavailable(err))
	}
	defer rows.Close()
	var found []panther.Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return panther.Session{}, fmt.Errorf("session %s: %w", id, err)
		}
		found = append(found, s)
	}
	if err := rows.Err(); err != nil {
		return panther.Session{}, fmt.Errorf("session %s: %w", id, unavailable(err))
	}
	switch len(found) {
	case 0:
		return panther.Session{}, panther.SessionNotFound(id)
	case 1:
		return found[0], nil
	}
	ids := make([]string, 0, len(found))
	for _, s := range found[:min(len(found), maxAmbiguous)] {
		ids = append(ids, s.ID)
	}
	more := ""
	if len(found) > maxAmbiguous {
		more = ", …"
	}
	return panther.Session{}, panther.Invalidf("session id prefix %s is ambiguous: it matches %s%s; give more characters",
		id, strings.Join(ids, ", "), more)
}

// Sessions lists sessions, most recently updated first; see panther.SessionStore.
func (db *DB) Sessions(ctx context.Context, f panther.SessionFilter) ([]panther.Session, error) {
	if f.Limit < 0 {
		return nil, panther.Invalidf("list sessions: negative limit %d", f.Limit)
	}
	if f.ParentID != "" && f.TopLevelOnly {
		return nil, panther.Invalidf("list sessions: sub-agent sessions of %s cannot be top-level only", f.ParentID)
	}
	var limit any // NULL: no limit
	if f.Limit > 0 {
		limit = f.Limit
	}
	where, args := "", []any{limit}
	switch {
	case f.ParentID != "":
		if err := panther.ValidSessionID(f.ParentID); err != nil {
			return nil, fmt.Errorf("list sessions: parent: %w", err)
		}
		where, args = "WHERE parent_id = $2", append(args, f.ParentID)
	case f.TopLevelOnly:
		where = "WHERE parent_id IS NULL"
	}
	rows, err := db.pool.Query(ctx, `SELECT `+sessionCols+` FROM sessions `+where+`
		ORDER BY updated_at DESC, created_at DESC, id LIMIT $1`, args...)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", unavailable(err))
	}
	defer rows.Close()
	out := []panther.Session{}
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sessions: %w", unavailable(err))
	}
	return out, nil
}

// SessionMessages returns a session's messages in order; see panther.SessionStore.
func (db *DB) SessionMessages(ctx context.Context, id string) ([]panther.SessionMessage, error) {
	if err := panther.ValidSessionID(id); err != nil {
		return nil, fmt.Errorf("session messages: %w", err)
	}
	// One statement, so one snapshot: the session row tells an unknown session from one with no
	// messages yet (a single row of NULLs from the outer join).
	rows, err := db.pool.Query(ctx, `SELECT coalesce(m.seq, 0), coalesce(m.role, ''), coalesce(m.content, ''),
		coalesce(m.tool_calls, ''), coalesce(m.tool_call_id, ''), coalesce(m.is_error, false),
		coalesce(m.input_tokens, 0), coalesce(m.output_tokens, 0), coalesce(m.duration_us, 0),
		coalesce(m.citations, ''), m.created_at
		FROM sessions s LEFT JOIN session_messages m ON m.session_id = s.id
		WHERE s.id = $1 ORDER BY m.seq`, id)
	if err != nil {
		return nil, fmt.Errorf("session %s messages: %w", id, unavailable(err))
	}
	defer rows.Close()
	out := []panther.SessionMessage{}
	exists := false
	for rows.Next() {
		exists = true
		var m panther.SessionMessage
		var calls, cites string
		var durUS int64
		var created *time.Time
		if err := rows.Scan(&m.Seq, &m.Role, &m.Content, &calls, &m.ToolCallID, &m.IsError,
			&m.Usage.InputTokens, &m.Usage.OutputTokens, &durUS, &cites, &created); err != nil {
			return nil, fmt.Errorf("session %s messages: %w", id, err)
		}
		if m.Seq == 0 {
			continue
		}
		m.Duration = time.Duration(durUS) * time.Microsecond
		m.Created = timeVal(created)
		if m.ToolCalls, err = decodeCalls(calls); err != nil {
			return nil, fmt.Errorf("session %s message %d: tool calls: %w", id, m.Seq, err)
		}
		if m.Citations, err = decodeCitations(cites); err != nil {
			return nil, fmt.Errorf("session %s message %d: citations: %w", id, m.Seq, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("session %s messages: %w", id, unavailable(err))
	}
	if !exists {
		return nil, panther.SessionNotFound(id)
	}
	return out, nil
}

// DeleteSession removes a session with its messages and sub-agent sessions; see panther.SessionStore.
// The foreign keys cascade down the tree, children created meanwhile included.
func (db *DB) DeleteSession(ctx context.Context, id string) error {
	if err := panther.ValidSessionID(id); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	if err := db.execOne(ctx, panther.SessionNotFound(id), `DELETE FROM sessions WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete session %s: %w", id, err)
	}
	return nil
}
