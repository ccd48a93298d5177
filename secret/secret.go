// Package secret resolves the values of secret-bearing settings. A setting holds either the value
// itself or a reference to where the value lives, so that a configuration file can be shared,
// committed or printed without the secrets it names:
//
//	env:NAME     the environment variable NAME
//	file:/path   the contents of a file (one trailing newline removed), as OpNix and systemd
//	             credentials deliver secrets
//
// Errors name the reference and what was tried, never a value.
package secret

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// maxFileBytes bounds a secret file: a key is short, and a path pointing at a big file by mistake
// should fail rather than load it.
const maxFileBytes = 64 << 10

// ErrUnresolved is wrapped by every failure to resolve a reference.
var ErrUnresolved = errors.New("secret reference not resolved")

// Resolver reads references. Getenv is the environment (os.Getenv when nil).
type Resolver struct {
	Getenv func(string) string
	// Warn, when set, hears about secret files readable by group or others.
	Warn func(msg string)
}

// IsReference reports whether s is a reference rather than a literal value.
func IsReference(s string) bool {
	return strings.HasPrefix(s, "env:") || strings.HasPrefix(s, "file:") || strings.HasPrefix(s, "op://")
}

// Resolve returns the value s stands for: the value of a reference, or s itself when it is not one.
func (r Resolver) Resolve(s string) (string, error) {
	switch {
	case strings.HasPrefix(s, "env:"):
		name := strings.TrimPrefix(s, "env:")
		if name == "" {
			return "", fmt.Errorf("%w: %q names no environment variable", ErrUnresolved, s)
		}
		getenv := r.Getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		v := getenv(name)
		if v == "" {
			return "", fmt.Errorf("%w: %s: the environment variable %s is unset or empty", ErrUnresolved, s, name)
		}
		return v, nil
	case strings.HasPrefix(s, "file:"):
		return r.readFile(s, strings.TrimPrefix(s, "file:"))
	case strings.HasPrefix(s, "op://"):
		// Resolving 1Password references (OpNix file mappings, the op CLI, Connect) comes with the
		// operations work; until then say how to get the same effect.
		return "", fmt.Errorf("%w: %s: op:// references are not supported by this version; use file:PATH with the file OpNix writes for it", ErrUnresolved, s)
	}
	return s, nil
}

func (r Resolver) readFile(ref, path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("%w: %q names no file", ErrUnresolved, ref)
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%w: %s: no such file", ErrUnresolved, ref)
		}
		if errors.Is(err, fs.ErrPermission) {
			return "", fmt.Errorf("%w: %s: permission denied", ErrUnresolved, ref)
		}
		return "", fmt.Errorf("%w: %s: cannot open the file", ErrUnresolved, ref)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil {
		if st.IsDir() {
			return "", fmt.Errorf("%w: %s is a directory", ErrUnresolved, ref)
		}
		if st.Mode().Perm()&0o077 != 0 && r.Warn != nil {
			r.Warn(fmt.Sprintf("secret file %s is readable by group or others (mode %04o); make it 0600", path, st.Mode().Perm()))
		}
	}
	buf, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("%w: %s: reading failed", ErrUnresolved, ref)
	}
	if len(buf) > maxFileBytes {
		return "", fmt.Errorf("%w: %s is larger than %d KiB, not a secret", ErrUnresolved, ref, maxFileBytes>>10)
	}
	v := bytes.TrimSuffix(bytes.TrimSuffix(buf, []byte("\n")), []byte("\r"))
	if len(v) == 0 {
		return "", fmt.Errorf("%w: %s is empty", ErrUnresolved, ref)
	}
	return string(v), nil
}
