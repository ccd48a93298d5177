package secret

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxConnectBody bounds one Connect response: an item with all its fields is a few KiB.
const maxConnectBody = 1 << 20

var defaultHTTPClient = &http.Client{Timeout: 10 * time.Second}

// The shapes of the 1Password Connect REST API (v1) that a lookup needs.
type connectVault struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type connectItem struct {
	ID       string           `json:"id"`
	Title    string           `json:"title"`
	Sections []connectSection `json:"sections"`
	Fields   []connectField   `json:"fields"`
}

type connectSection struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

type connectField struct {
	ID      string          `json:"id"`
	Label   string          `json:"label"`
	Value   string          `json:"value"`
	Section *connectSection `json:"section"`
}

type connectError struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// connectFailure is why a Connect lookup gave nothing, already worded for the resolution error.
type connectFailure struct {
	why      string
	notFound bool // a 404, which the caller words for what it was looking for
}

func (e *connectFailure) Error() string { return e.why }

func connectFail(format string, args ...any) error {
	return &connectFailure{why: fmt.Sprintf(format, args...)}
}

// fromConnect looks the reference up on the Connect server: vault by name, item by title, then the
// field by label (and section label) among the item's fields. Names that match nothing are tried
// as IDs, which references may use instead of names.
// The warnings are those of reading the token.
func (r Resolver) fromConnect(ctx context.Context, ref OPRef) (string, string, []string) {
	if r.ConnectURL == "" {
		return "", "Connect not configured", nil
	}
	base, err := url.Parse(strings.TrimRight(r.ConnectURL, "/"))
	if err != nil {
		return "", "Connect URL does not parse", nil
	}
	if (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return "", fmt.Sprintf("Connect URL %s is not an http(s) URL", base.Redacted()), nil
	}
	if r.ConnectToken == "" {
		return "", fmt.Sprintf("Connect (%s): no token configured", base.Redacted()), nil
	}
	if strings.HasPrefix(r.ConnectToken, "op://") {
		return "", fmt.Sprintf("Connect (%s): the token must be a value, env: or file: reference, not op://", base.Redacted()), nil
	}
	tokRes, _, err := r.resolve(ctx, r.ConnectToken)
	if err != nil {
		var ue *unresolvedError
		if errors.As(err, &ue) {
			return "", fmt.Sprintf("Connect (%s): token %s: %s", base.Redacted(), ue.ref, ue.problem), nil
		}
		return "", fmt.Sprintf("Connect (%s): token not resolved", base.Redacted()), nil
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	c := connectClient{base: base, token: tokRes.value, http: r.HTTPClient, secrets: append(r.knownSecrets(), tokRes.value)}
	if c.http == nil {
		c.http = defaultHTTPClient
	}
	v, err := c.read(ctx, ref)
	if err != nil {
		var cf *connectFailure
		if errors.As(err, &cf) {
			return "", fmt.Sprintf("Connect (%s): %s", base.Redacted(), cf.why), nil
		}
		return "", fmt.Sprintf("Connect (%s): lookup failed", base.Redacted()), nil
	}
	return v, "", tokRes.warnings
}

type connectClient struct {
	base    *url.URL
	token   string
	http    *http.Client
	secrets []string // blotted out of anything the server says
}

func (c connectClient) read(ctx context.Context, ref OPRef) (string, error) {
	vaultID, err := c.vaultID(ctx, ref.Vault)
	if err != nil {
		return "", err
	}
	itemID, err := c.itemID(ctx, vaultID, ref)
	if err != nil {
		return "", err
	}
	var item connectItem
	if err := c.get(ctx, "/v1/vaults/"+url.PathEscape(vaultID)+"/items/"+url.PathEscape(itemID), nil, &item); err != nil {
		if isNotFound(err) {
			return "", connectFail("no item %q in vault %q", ref.Item, ref.Vault)
		}
		return "", err
	}
	return pickField(item, ref)
}

func (c connectClient) vaultID(ctx context.Context, name string) (string, error) {
	var ids []string
	// References ignore case; the server's filter may not, so an empty answer is retried as a full
	// listing matched here.
	for _, q := range []url.Values{{"filter": {`name eq "` + name + `"`}}, nil} {
		var vaults []connectVault
		if err := c.get(ctx, "/v1/vaults", q, &vaults); err != nil {
			if isNotFound(err) {
				return "", connectFail("no vault %q that the token can read", name)
			}
			return "", err
		}
		for _, v := range vaults {
			if strings.EqualFold(v.Name, name) || v.ID == name {
				ids = append(ids, v.ID)
			}
		}
		if len(ids) > 0 {
			break
		}
	}
	switch {
	case len(ids) == 1:
		return ids[0], nil
	case len(ids) > 1:
		return "", connectFail("%d vaults are named %q; use the vault's ID", len(ids), name)
	case looksLikeID(name):
		return name, nil
	}
	return "", connectFail("no vault %q that the token can read", name)
}

func (c connectClient) itemID(ctx context.Context, vaultID string, ref OPRef) (string, error) {
	var ids []string
	for _, q := range []url.Values{{"filter": {`title eq "` + ref.Item + `"`}}, nil} {
		var items []connectItem
		if err := c.get(ctx, "/v1/vaults/"+url.PathEscape(vaultID)+"/items", q, &items); err != nil {
			if isNotFound(err) {
				return "", connectFail("no vault %q that the token can read", ref.Vault)
			}
			return "", err
		}
		for _, it := range items {
			if strings.EqualFold(it.Title, ref.Item) || it.ID == ref.Item {
				ids = append(ids, it.ID)
			}
		}
		if len(ids) > 0 {
			break
		}
	}
	switch {
	case len(ids) == 1:
		return ids[0], nil
	case len(ids) > 1:
		return "", connectFail("%d items are titled %q in vault %q; use the item's ID", len(ids), ref.Item, ref.Vault)
	case looksLikeID(ref.Item):
		return ref.Item, nil
	}
	return "", connectFail("no item %q in vault %q", ref.Item, ref.Vault)
}

// pickField finds the field by label or ID, within the named section when there is one. Without a
// section, a field outside every section wins over same-named fields inside sections.
func pickField(item connectItem, ref OPRef) (string, error) {
	sectionLabel := make(map[string]string, len(item.Sections))
	for _, s := range item.Sections {
		sectionLabel[s.ID] = s.Label
	}
	var matches, unsectioned []connectField
	for _, f := range item.Fields {
		if !strings.EqualFold(f.Label, ref.Field) && f.ID != ref.Field {
			continue
		}
		if ref.Section != "" {
			if f.Section == nil {
				continue
			}
			label := f.Section.Label
			if label == "" {
				label = sectionLabel[f.Section.ID]
			}
			if !strings.EqualFold(label, ref.Section) && f.Section.ID != ref.Section {
				continue
			}
		}
		matches = append(matches, f)
		if f.Section == nil || f.Section.ID == "" {
			unsectioned = append(unsectioned, f)
		}
	}
	if len(matches) > 1 && len(unsectioned) == 1 {
		matches = unsectioned
	}
	where := fmt.Sprintf("item %q", ref.Item)
	if ref.Section != "" {
		where = fmt.Sprintf("section %q of item %q", ref.Section, ref.Item)
	}
	switch {
	case len(matches) == 0:
		return "", connectFail("no field %q in %s", ref.Field, where)
	case len(matches) > 1:
		return "", connectFail("%d fields are labelled %q in %s; name the section or use the field's ID", len(matches), ref.Field, where)
	case matches[0].Value == "":
		return "", connectFail("field %q in %s is empty", ref.Field, where)
	}
	return matches[0].Value, nil
}

// looksLikeID reports whether s has the shape of a 1Password ID: 26 lowercase letters and digits.
func looksLikeID(s string) bool {
	if len(s) != 26 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func isNotFound(err error) bool {
	var cf *connectFailure
	return errors.As(err, &cf) && cf.notFound
}

// get fetches one JSON document. Errors carry the status and the server's message, never the
// token or a response body.
func (c connectClient) get(ctx context.Context, path string, q url.Values, into any) error {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawPath = ""
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return connectFail("bad request URL")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return connectFail("no answer within %s", opTimeout)
		}
		if ctx.Err() != nil {
			return connectFail("interrupted")
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return connectFail("request failed: %s", cleanLine([]byte(err.Error()), c.secrets))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxConnectBody+1))
	if err != nil {
		return connectFail("reading the answer failed")
	}
	if len(body) > maxConnectBody {
		return connectFail("answer larger than %d KiB", maxConnectBody>>10)
	}
	if resp.StatusCode != http.StatusOK {
		msg := ""
		var ce connectError
		if json.Unmarshal(body, &ce) == nil && ce.Message != "" {
			msg = ": " + cleanLine([]byte(ce.Message), c.secrets)
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			return connectFail("the token was refused (401%s)", msg)
		case http.StatusForbidden:
			return connectFail("the token may not read this (403%s)", msg)
		case http.StatusNotFound:
			return &connectFailure{why: "not found (404" + msg + ")", notFound: true}
		}
		return connectFail("answered %d%s", resp.StatusCode, msg)
	}
	if err := json.Unmarshal(body, into); err != nil {
		// The decoder's message can quote a piece of the body, which may be a secret.
		return connectFail("answered with JSON of an unexpected shape")
	}
	return nil
}
