package secret

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// maxMapBytes bounds a mapping file: thousands of references fit in far less.
const maxMapBytes = 1 << 20

// LoadOPMap reads a mapping from op:// references to where their values are delivered, a JSON
// object such as a NixOS module writes with builtins.toJSON:
//
//	{
//	  "op://pantherOS/minimax-coding-plan-api/default/apiKey": "/run/secrets/minimax-api-key",
//	  "op://pantherOS/tailscale-auth-key/authKey": "tailscale-auth-key"
//	}
//
// A value is an absolute file path or a systemd credential name (no slash). The file holds no
// secrets, so its mode is not checked. Keys that differ only in case, duplicate keys and anything
// ValidateOPMap refuses are errors naming the key.
func LoadOPMap(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secret map %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxMapBytes+1))
	if err != nil {
		return nil, fmt.Errorf("secret map %s: %w", path, err)
	}
	if len(data) > maxMapBytes {
		return nil, fmt.Errorf("secret map %s: larger than %d KiB", path, maxMapBytes>>10)
	}
	m, err := decodeOPMap(data)
	if err != nil {
		return nil, fmt.Errorf("secret map %s: %w", path, err)
	}
	if err := ValidateOPMap(m); err != nil {
		return nil, fmt.Errorf("secret map %s: %w", path, err)
	}
	return m, nil
}

// decodeOPMap walks the tokens rather than unmarshalling, because encoding/json silently keeps the
// last of duplicate keys and one reference must not point two places.
func decodeOPMap(data []byte) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object of reference → path")
	}
	m := make(map[string]string)
	seen := make(map[string]string)
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, errors.New("malformed JSON")
		}
		key, _ := kt.(string)
		vt, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%s: malformed JSON", key)
		}
		val, ok := vt.(string)
		if !ok {
			return nil, fmt.Errorf("%s: the target must be a string (a path or a credential name)", key)
		}
		if prev, dup := seen[strings.ToLower(key)]; dup {
			return nil, fmt.Errorf("%s is mapped twice (also as %s)", key, prev)
		}
		seen[strings.ToLower(key)] = key
		m[key] = val
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, errors.New("malformed JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("text after the JSON object")
	}
	return m, nil
}

// ValidateOPMap checks a mapping such as the configuration's [secrets] table holds: every key a
// valid op:// reference, every target an absolute path or a credential name. The first problem, in
// key order, is returned and names its key.
func ValidateOPMap(m map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if _, problem := parseOPRef(k); problem != "" {
			return fmt.Errorf("%s: %s", k, problem)
		}
		if t := m[k]; !filepath.IsAbs(t) && !validCredentialName(t) {
			return fmt.Errorf("%s: target %q is neither an absolute path nor a credential name", k, t)
		}
	}
	return nil
}
