package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"panther"
)

// Scope is what a token may do; each scope includes the ones below it.
type Scope int

const (
	// scopeNone marks the routes anyone may call (health, readiness, the API description).
	scopeNone Scope = iota
	// ScopeRead may search, read documents, sessions, crawls and status.
	ScopeRead
	// ScopeWrite may also change the knowledge base (sources, crawls, deletions) and run agents.
	ScopeWrite
	// ScopeAdmin may do everything; no route needs more than write yet.
	ScopeAdmin
)

func (s Scope) String() string {
	switch s {
	case ScopeRead:
		return "read"
	case ScopeWrite:
		return "write"
	case ScopeAdmin:
		return "admin"
	}
	return "none"
}

// ParseScope reads a scope name: read, write or admin.
func ParseScope(s string) (Scope, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "read":
		return ScopeRead, nil
	case "write":
		return ScopeWrite, nil
	case "admin":
		return ScopeAdmin, nil
	}
	return scopeNone, panther.Invalidf("scope %q: want read, write or admin", s)
}

// MinTokenBytes is the shortest token accepted: shorter ones can be guessed.
const MinTokenBytes = 16

// Token is a bearer token the API accepts. Its Secret never appears in a log line, an error or a
// response; its Name does, so that logs say who called.
type Token struct {
	Name   string
	Secret string
	Scope  Scope
}

func (t Token) validate() error {
	if strings.TrimSpace(t.Name) == "" {
		return panther.Invalidf("a token needs a name")
	}
	if len(t.Secret) < MinTokenBytes {
		return panther.Invalidf("token %q is shorter than %d bytes", t.Name, MinTokenBytes)
	}
	if strings.ContainsAny(t.Secret, " \t\r\n") {
		return panther.Invalidf("token %q contains white space", t.Name)
	}
	if t.Scope < ScopeRead || t.Scope > ScopeAdmin {
		return panther.Invalidf("token %q has no scope (want read, write or admin)", t.Name)
	}
	return nil
}

// tokenHash is a token as the server keeps it: comparing fixed-size hashes in constant time
// tells nothing of a token's length or content by timing.
type tokenHash struct {
	name  string
	scope Scope
	sum   [sha256.Size]byte
}

// authorize lets the request through when it needs no scope, when no tokens are configured, or
// when it carries a token with the scope; otherwise it answers 401 or 403.
func (s *server) authorize(w http.ResponseWriter, r *http.Request, need Scope) (*http.Request, bool) {
	if len(s.tokens) == 0 {
		// Open: every request may do everything.
		if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
			info.scope = ScopeAdmin
		}
		return r, true
	}
	if need == scopeNone {
		return r, true
	}
	const challenge = `Bearer realm="panther"`
	scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		w.Header().Set("WWW-Authenticate", challenge)
		writeError(w, http.StatusUnauthorized, "unauthorized", "this API needs a bearer token: send 'Authorization: Bearer TOKEN'")
		return r, false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	var found *tokenHash
	// Every token is compared, so the time taken does not say which one matched.
	for i := range s.tokens {
		if subtle.ConstantTimeCompare(sum[:], s.tokens[i].sum[:]) == 1 {
			found = &s.tokens[i]
		}
	}
	if found == nil {
		w.Header().Set("WWW-Authenticate", challenge+`, error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "the bearer token is not valid")
		return r, false
	}
	if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
		info.token, info.scope = found.name, found.scope
	}
	if found.scope < need {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`%s, error="insufficient_scope", scope="%s"`, challenge, need))
		writeError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("token %q has scope %s; this needs %s", found.name, found.scope, need))
		return r, false
	}
	return r, true
}
