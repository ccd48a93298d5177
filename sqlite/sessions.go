package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"panther"
)

// sessionCols are the columns scanSession reads, in its order.
const sessionCols = `id, coalesce(parent_id, ''), agent, model, title, created_at, updated_at,
	input_tokens, output_tokens, steps, stopped_by, status`

type scanner interface{ Scan(dest ...any) error }

func scanSession(r scanner) (panther.Session, error) {
	var s panther.Session
	var created, updated sql.NullInt64
	err := r.Scan(&s.ID, &s.ParentID, &s.Agent, &s.Model, &s.Title, &created, &updated,
		&s.Usage.InputTokens, &s.Usage.OutputTokens, &s.Steps, &s.StoppedBy, &s.Status)
	s.Created, s.Updated = timeVal(created), timeVal(updated)
	return s, err
}

// micro drops what the store cannot keep, so that what a write returns equals what a read will.
func micro(t time.Time) time.Time { return time.UnixMicro(t.UnixMicro()).UTC() }

func checkSessionCounts(id string, u panther.Usage, steps int) error {
	if u.InputTokens < 0 || u.OutputTokens < 0 {
		return panther.Invalidf("session %s: negative token usage %+v", id, u)
	}
	if steps < 0 {
		return panther.Invalidf("session %s: negative steps %d", id, steps)
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
	s.Title = panther.SessionTitle(s.Title)
	var parent any
	if s.ParentID != "" {
		parent = s.ParentID
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if s.ParentID != "" {
			if err := sessionExists(ctx, tx, s.ParentID); err != nil {
				return fmt.Errorf("parent: %w", err)
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO sessions (id, parent_id, agent, model, title, created_at, updated_at,
			input_tokens, output_tokens, steps, stopped_by, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`,
			s.ID, parent, s.Agent, s.Model, s.Title, timeArg(s.Created), timeArg(s.Updated),
			s.Usage.InputTokens, s.Usage.OutputTokens, s.Steps, s.StoppedBy, string(s.Status))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("id already taken: %w", panther.ErrConflict)
		}
		return nil
	})
	if err != nil {
		return panther.Session{}, fmt.Errorf("create session %s: %w", s.ID, err)
	}
	return s, nil
}

func sessionExists(ctx context.Context, tx *sql.Tx, id string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM sessions WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return panther.SessionNotFound(id)
	}
	return err
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
func (db *DB) AppendSessionMessages(ctx context.Context, id string, msgs []panther.SessionMessage) error {
	if err := panther.ValidSessionID(id); err != nil {
		return fmt.Errorf("append to session: %w", err)
	}
	type row struct {
		calls, cites string
		created      any
	}
	rows := make([]row, len(msgs))
	now := time.Now()
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
		rows[i] = row{calls: calls, cites: cites, created: timeArg(created)}
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var last int
		err := tx.QueryRowContext(ctx, `SELECT coalesce((SELECT max(seq) FROM session_messages WHERE session_id = ?1), 0)
			FROM sessions WHERE id = ?1`, id).Scan(&last)
		if errors.Is(err, sql.ErrNoRows) {
			return panther.SessionNotFound(id)
		} else if err != nil {
			return err
		}
		if len(msgs) == 0 {
			return nil
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO session_messages (session_id, seq, role, content, tool_calls,
			tool_call_id, is_error, input_tokens, output_tokens, duration_us, citations, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i, m := range msgs {
			_, err := stmt.ExecContext(ctx, id, last+1+i, string(m.Role), m.Content, rows[i].calls, m.ToolCallID,
				m.IsError, m.Usage.InputTokens, m.Usage.OutputTokens, m.Duration.Microseconds(), rows[i].cites, rows[i].created)
			if err != nil {
				return fmt.Errorf("message %d: %w", i, err)
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE sessions SET updated_at = max(updated_at, ?) WHERE id = ?`, timeArg(now), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("append to session %s: %w", id, err)
	}
	return nil
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
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET title = ?, input_tokens = ?, output_tokens = ?, steps = ?,
			stopped_by = ?, status = ?, updated_at = ? WHERE id = ?`,
			panther.SessionTitle(s.Title), s.Usage.InputTokens, s.Usage.OutputTokens, s.Steps, s.StoppedBy,
			string(s.Status), timeArg(s.Updated), s.ID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return panther.SessionNotFound(s.ID)
		}
		return nil
	})
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
	st, err := db.readStmt(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id = ?`)
	if err != nil {
		return panther.Session{}, fmt.Errorf("session %s: %w", id, err)
	}
	s, err := scanSession(st.QueryRowContext(ctx, id))
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return panther.Session{}, fmt.Errorf("session %s: %w", id, err)
	}
	if len(id) < panther.MinSessionPrefix {
		return panther.Session{}, panther.SessionNotFound(id)
	}
	// A range, not LIKE: LIKE ignores case and takes '_' as a wildcard. Every character an ID may
	// hold sorts below 0x7f, so [id, id+"\x7f") holds exactly the IDs that start with id.
	st, err = db.readStmt(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id >= ? AND id < ? ORDER BY id LIMIT ?`)
	if err != nil {
		return panther.Session{}, fmt.Errorf("session %s: %w", id, err)
	}
	rows, err := st.QueryContext(ctx, id, id+"\x7f", maxAmbiguous+1)
	if err != nil {
		return panther.Session{}, fmt.Errorf("session %s: %w", id, err)
	}
	defer rows.Close()
	var found []panther.Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return panther.Session{}, fmt.Errorf("session %s: %w", id, err)
		}
		if strings.HasPrefix(s.ID, id) {
			found = append(found, s)
		}
	}
	if err := rows.Err(); err != nil {
		return panther.Session{}, fmt.Errorf("session %s: %w", id, err)
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
	where, args := "", []any{}
	switch {
	case f.ParentID != "":
		if err := panther.ValidSessionID(f.ParentID); err != nil {
			return nil, fmt.Errorf("list sessions: parent: %w", err)
		}
		where, args = "WHERE parent_id = ?", append(args, f.ParentID)
	case f.TopLevelOnly:
		where = "WHERE parent_id IS NULL"
	}
	limit := -1 // SQLite: no limit
	if f.Limit > 0 {
		limit = f.Limit
	}
	st, err := db.readStmt(ctx, `SELECT `+sessionCols+` FROM sessions `+where+`
		ORDER BY updated_at DESC, created_at DESC, id LIMIT ?`)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	rows, err := st.QueryContext(ctx, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
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
		return nil, fmt.Errorf("list sessions: %w", err)
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
	st, err := db.readStmt(ctx, `SELECT coalesce(m.seq, 0), coalesce(m.role, ''), coalesce(m.content, ''),
		coalesce(m.tool_calls, ''), coalesce(m.tool_call_id, ''), coalesce(m.is_error, 0),
		coalesce(m.input_tokens, 0), coalesce(m.output_tokens, 0), coalesce(m.duration_us, 0),
		coalesce(m.citations, ''), m.created_at
		FROM sessions s LEFT JOIN session_messages m ON m.session_id = s.id
		WHERE s.id = ? ORDER BY m.seq`)
	if err != nil {
		return nil, fmt.Errorf("session %s messages: %w", id, err)
	}
	rows, err := st.QueryContext(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("session %s messages: %w", id, err)
	}
	defer rows.Close()
	out := []panther.SessionMessage{}
	exists := false
	for rows.Next() {
		exists = true
		var m panther.SessionMessage
		var calls, cites string
		var durUS int64
		var created sql.NullInt64
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
		return nil, fmt.Errorf("session %s messages: %w", id, err)
	}
	if !exists {
		return nil, panther.SessionNotFound(id)
	}
	return out, nil
}

// DeleteSession removes a session with its messages and sub-agent sessions; see panther.SessionStore.
func (db *DB) DeleteSession(ctx context.Context, id string) error {
	if err := panther.ValidSessionID(id); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := sessionExists(ctx, tx, id); err != nil {
			return err
		}
		// Spelled out rather than left to ON DELETE CASCADE, so that the result does not depend on
		// the connection having foreign keys enabled.
		const tree = `WITH RECURSIVE tree(id) AS (
			SELECT ?1 UNION SELECT s.id FROM sessions s JOIN tree t ON s.parent_id = t.id)`
		if _, err := tx.ExecContext(ctx, tree+` DELETE FROM session_messages WHERE session_id IN (SELECT id FROM tree)`, id); err != nil {
			return fmt.Errorf("messages: %w", err)
		}
		_, err := tx.ExecContext(ctx, tree+` DELETE FROM sessions WHERE id IN (SELECT id FROM tree)`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete session %s: %w", id, err)
	}
	return nil
}
