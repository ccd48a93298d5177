// Package secret resolves the values of secret-bearing settings. A setting holds either the value
// itself or a reference to where the value lives, so that a configuration file can be shared,
// committed or printed without the secrets it names:
//
//	env:NAME                          the environment variable NAME
//	file:/path                        the contents of a file (one trailing newline removed), as
//	                                  OpNix and systemd credentials deliver secrets
//	op://vault/item/[section/]field   a 1Password secret reference
//
// An op:// reference is tried, in order, from: the Resolver's OPMap (reference → file OpNix writes,
// or → systemd credential name); the systemd credentials directory ($CREDENTIALS_DIRECTORY) under
// the mapped name or the reference's canonical name (OPRef.CredentialName); the 1Password CLI
// (`op read`, authenticated by OP_SERVICE_ACCOUNT_TOKEN); a 1Password Connect server. Steps that are
// not configured are skipped. A failure lists every step and why it failed.
//
// Errors and warnings name the reference and what was tried, never a value.
package secret

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
)

// maxFileBytes bounds a secret file and the op CLI's output: a key is short, and a path pointing at
// a big file by mistake should fail rather than load it.
const maxFileBytes = 64 << 10

// ErrUnresolved is wrapped by every failure to resolve a reference.
var ErrUnresolved = errors.New("secret reference not resolved")

// Resolver reads references. The zero value resolves env: and file: references from the process
// environment and tries op:// references through the op CLI found on PATH.
type Resolver struct {
	// Getenv is the environment (os.Getenv when nil). It also supplies the defaults below and the
	// environment the op CLI runs with.
	Getenv func(string) string
	// Warn, when set, hears about secret files readable by group or others.
	Warn func(msg string)

	// OPMap maps op:// references (compared without regard to case) to where their values are
	// delivered: an absolute file path (what OpNix writes), or a systemd credential name (no slash)
	// read from CredentialsDir. See LoadOPMap and ValidateOPMap.
	OPMap map[string]string
	// CredentialsDir is the systemd credentials directory; empty means Getenv("CREDENTIALS_DIRECTORY").
	CredentialsDir string
	// OPCommand is the path of the 1Password CLI; empty means "op" looked up on Getenv("PATH").
	OPCommand string
	// ConnectURL is the base URL of a 1Password Connect server (http://host:8080); empty skips
	// Connect. ConnectToken is its access token, itself a literal, env: or file: reference.
	ConnectURL   string
	ConnectToken string
	// HTTPClient talks to Connect; nil means a client with a 10 s timeout.
	HTTPClient *http.Client

	// Cache, when set, keeps resolved op:// values for the life of the process so that none is
	// fetched twice; share one per Resolver configuration. Nil fetches on every call.
	Cache *Cache
}

// IsReference reports whether s is a reference rather than a literal value.
func IsReference(s string) bool {
	return strings.HasPrefix(s, "env:") || strings.HasPrefix(s, "file:") || strings.HasPrefix(s, "op://")
}

// Resolve returns the value s stands for: the value of a reference, or s itself when it is not one.
func (r Resolver) Resolve(s string) (string, error) {
	return r.ResolveContext(context.Background(), s)
}

// ResolveContext is Resolve bounded by ctx (which the op CLI and Connect steps honour besides their
// own 10 s limits).
func (r Resolver) ResolveContext(ctx context.Context, s string) (string, error) {
	res, cached, err := r.resolve(ctx, s)
	if err != nil {
		return "", err
	}
	if !cached && r.Warn != nil {
		for _, w := range res.warnings {
			r.Warn(w)
		}
	}
	return res.value, nil
}

// resolved is one resolution: the value, where it came from (for Check) and the warnings it raised.
type resolved struct {
	value    string
	source   string
	warnings []string
}

// unresolvedError keeps the problem apart from the reference so Check can report it alone.
type unresolvedError struct {
	ref, problem string
}

func (e *unresolvedError) Error() string {
	return ErrUnresolved.Error() + ": " + e.ref + ": " + e.problem
}

func (e *unresolvedError) Unwrap() error { return ErrUnresolved }

func unresolved(ref, format string, args ...any) error {
	return &unresolvedError{ref: ref, problem: fmt.Sprintf(format, args...)}
}

// resolve reports whether the value came from the cache, whose warnings were already given.
func (r Resolver) resolve(ctx context.Context, s string) (resolved, bool, error) {
	switch {
	case strings.HasPrefix(s, "env:"):
		name := strings.TrimPrefix(s, "env:")
		if name == "" {
			return resolved{}, false, unresolved(s, "names no environment variable")
		}
		v := r.getenv(name)
		if v == "" {
			return resolved{}, false, unresolved(s, "the environment variable %s is unset or empty", name)
		}
		return resolved{value: v, source: "env"}, false, nil
	case strings.HasPrefix(s, "file:"):
		path := strings.TrimPrefix(s, "file:")
		if path == "" {
			return resolved{}, false, unresolved(s, "names no file")
		}
		v, fail, warn := readSecretFile(path)
		if fail != nil {
			return resolved{}, false, unresolved(s, "%s", fail.problem)
		}
		return resolved{value: v, source: "file", warnings: warn}, false, nil
	case strings.HasPrefix(s, "op://"):
		if r.Cache == nil {
			res, err := r.resolveOP(ctx, s)
			return res, false, err
		}
		return r.Cache.do(ctx, s, func() (resolved, error) { return r.resolveOP(ctx, s) })
	}
	return resolved{value: s, source: "literal"}, false, nil
}

func (r Resolver) getenv(name string) string {
	if r.Getenv == nil {
		return os.Getenv(name)
	}
	return r.Getenv(name)
}

// fileFailure says why a secret file gave no value; missing tells an absent file from a broken one.
type fileFailure struct {
	problem string
	missing bool
}

// readSecretFile reads one secret file. The warning names the path, which is not a secret.
func readSecretFile(path string) (string, *fileFailure, []string) {
	f, err := os.Open(path)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", &fileFailure{problem: "no such file", missing: true}, nil
		case errors.Is(err, fs.ErrPermission):
			return "", &fileFailure{problem: "permission denied"}, nil
		}
		return "", &fileFailure{problem: "cannot open the file"}, nil
	}
	defer f.Close()
	var warnings []string
	if st, err := f.Stat(); err == nil {
		if st.IsDir() {
			return "", &fileFailure{problem: "is a directory"}, nil
		}
		if st.Mode().Perm()&0o077 != 0 {
			warnings = append(warnings, fmt.Sprintf("secret file %s is readable by group or others (mode %04o); make it 0600", path, st.Mode().Perm()))
		}
	}
	buf, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return "", &fileFailure{problem: "reading failed"}, nil
	}
	if len(buf) > maxFileBytes {
		return "", &fileFailure{problem: fmt.Sprintf("is larger than %d KiB, not a secret", maxFileBytes>>10)}, nil
	}
	v := trimNewline(buf)
	if len(v) == 0 {
		return "", &fileFailure{problem: "is empty"}, nil
	}
	return string(v), nil, warnings
}

// trimNewline removes one trailing newline, which editors and `echo` add and no secret ends with.
func trimNewline(b []byte) []byte {
	return bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
}
