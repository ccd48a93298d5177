package secret

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const (
	connectToken      = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImNvbm5lY3QifQ.token"
	connectValue      = "sk-from-connect-0a1b2c3d"
	sectionlessValue  = "sk-top-level-field-value"
	otherSectionValue = "sk-other-section-value"
	vaultID           = "vvvvvvvvvvvvvvvvvvvvvvvvvv"
	itemID            = "iiiiiiiiiiiiiiiiiiiiiiiiii"
)

// connectServer speaks the parts of the 1Password Connect API that a lookup uses, with one vault
// (pantherOS) holding a few items.
func connectServer(t *testing.T) *httptest.Server {
	t.Helper()
	items := map[string]map[string]any{
		itemID: {
			"id": itemID, "title": "minimax-coding-plan-api", "vault": map[string]string{"id": vaultID},
			"sections": []map[string]string{{"id": "sec1", "label": "default"}, {"id": "sec2", "label": "staging"}},
			"fields": []map[string]any{
				{"id": "f1", "label": "apiKey", "value": connectValue, "section": map[string]string{"id": "sec1"}},
				{"id": "f2", "label": "apiKey", "value": otherSectionValue, "section": map[string]string{"id": "sec2"}},
				{"id": "password", "label": "password", "purpose": "PASSWORD", "value": sectionlessValue},
				{"id": "f3", "label": "note", "value": "", "section": map[string]string{"id": "sec1", "label": "default"}},
			},
		},
		"tsitemtsitemtsitemtsitemts": {
			"id": "tsitemtsitemtsitemtsitemts", "title": "tailscale-auth-key", "vault": map[string]string{"id": vaultID},
			"fields": []map[string]any{
				{"id": "f1", "label": "authKey", "value": tailscaleKey, "section": map[string]string{"id": "s"}},
			},
		},
		"dupdupdupdupdupdupdupdupdu": {
			"id": "dupdupdupdupdupdupdupdupdu", "title": "dup", "vault": map[string]string{"id": vaultID},
			"fields": []map[string]any{
				{"id": "a", "label": "k", "value": minimaxKey, "section": map[string]string{"id": "s1"}},
				{"id": "b", "label": "k", "value": zaiURL, "section": map[string]string{"id": "s2"}},
			},
		},
		"listedbutgonelistedbutgone": {"title": "listed-but-gone"},
	}
	filter := regexp.MustCompile(`^(name|title) eq "(.*)"$`)
	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/vaults", func(w http.ResponseWriter, r *http.Request) {
		// Like the real server, an unfiltered request lists every vault; the filter here is
		// case-sensitive, so lookups that ignore case must fall back to the listing.
		out := []map[string]string{}
		m := filter.FindStringSubmatch(r.URL.Query().Get("filter"))
		if !r.URL.Query().Has("filter") || m != nil && m[1] == "name" && m[2] == "pantherOS" {
			out = append(out, map[string]string{"id": vaultID, "name": "pantherOS"})
		}
		writeJSON(w, 200, out)
	})
	mux.HandleFunc("GET /v1/vaults/{vault}/items", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("vault") != vaultID {
			writeJSON(w, 404, map[string]any{"status": 404, "message": "vault not found"})
			return
		}
		m := filter.FindStringSubmatch(r.URL.Query().Get("filter"))
		out := []map[string]any{}
		for id, it := range items {
			if !r.URL.Query().Has("filter") || m != nil && m[1] == "title" && it["title"] == m[2] {
				out = append(out, map[string]any{"id": id, "title": it["title"], "vault": map[string]string{"id": vaultID}})
			}
		}
		writeJSON(w, 200, out)
	})
	mux.HandleFunc("GET /v1/vaults/{vault}/items/{item}", func(w http.ResponseWriter, r *http.Request) {
		it, ok := items[r.PathValue("item")]
		if r.PathValue("vault") != vaultID || !ok || r.PathValue("item") == "listedbutgonelistedbutgone" {
			writeJSON(w, 404, map[string]any{"status": 404, "message": "item not found"})
			return
		}
		writeJSON(w, 200, it)
	})
	mux.HandleFunc("GET /huge/v1/vaults", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("[" + strings.Repeat(`{"id":"x","name":"y"},`, maxConnectBody/20) + `{}]`))
	})
	mux.HandleFunc("GET /garbage/v1/vaults", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"id": "` + connectValue + `"`))
	})
	mux.HandleFunc("GET /echo/v1/vaults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 500, map[string]any{"status": 500, "message": "internal error while handling " + r.Header.Get("Authorization")})
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+connectToken {
			writeJSON(w, 401, map[string]any{"status": 401, "message": "Invalid token signature"})
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestResolveConnect(t *testing.T) {
	srv := connectServer(t)
	dir := t.TempDir()
	tokenFile := writeFile(t, dir, "token", connectToken+"\n", 0o600)
	openTokenFile := writeFile(t, dir, "open-token", connectToken, 0o644)
	env := map[string]string{"CONNECT_TOKEN": connectToken, "BAD_TOKEN": "not-the-token-at-all", "PATH": ""}

	tests := []struct {
		name     string
		ref      string
		url      string
		token    string
		want     string
		wantWarn bool
		wantErr  string
	}{
		{name: "field in a section", ref: "op://pantherOS/minimax-coding-plan-api/default/apiKey", want: connectValue},
		{name: "other section", ref: "op://pantherOS/minimax-coding-plan-api/staging/apiKey", want: otherSectionValue},
		{name: "names in another case", ref: "op://PANTHEROS/Minimax-Coding-Plan-API/DEFAULT/apikey", url: "", want: connectValue},
		{name: "field outside sections", ref: "op://pantherOS/minimax-coding-plan-api/password", want: sectionlessValue},
		{name: "unique field without naming its section", ref: "op://pantherOS/tailscale-auth-key/authKey", want: tailscaleKey},
		{name: "item by ID", ref: "op://pantherOS/" + itemID + "/default/apiKey", want: connectValue},
		{name: "vault by ID", ref: "op://" + vaultID + "/minimax-coding-plan-api/default/apiKey", want: connectValue},
		{name: "section and field by ID", ref: "op://pantherOS/minimax-coding-plan-api/sec2/f2", want: otherSectionValue},
		{name: "token from a file", ref: "op://pantherOS/minimax-coding-plan-api/default/apiKey", token: "file:" + tokenFile, want: connectValue},
		{name: "token file readable by others", ref: "op://pantherOS/minimax-coding-plan-api/default/apiKey", token: "file:" + openTokenFile, want: connectValue, wantWarn: true},
		{name: "literal token", ref: "op://pantherOS/minimax-coding-plan-api/default/apiKey", token: connectToken, want: connectValue},

		{name: "bad token", ref: "op://pantherOS/minimax-coding-plan-api/default/apiKey", token: "env:BAD_TOKEN",
			wantErr: "op CLI not installed; Connect (" + srv.URL + "): the token was refused (401: Invalid token signature)"},
		{name: "bad literal token", ref: "op://pantherOS/minimax-coding-plan-api/default/apiKey", token: "wrong-literal-token",
			wantErr: "the token was refused (401: Invalid token signature)"},
		{name: "token unresolved", ref: "op://pantherOS/minimax-coding-plan-api/default/apiKey", token: "env:NO_SUCH_TOKEN",
			wantErr: "Connect (" + srv.URL + "): token env:NO_SUCH_TOKEN: the environment variable NO_SUCH_TOKEN is unset or empty"},
		{name: "op token refused", ref: "op://pantherOS/minimax-coding-plan-api/default/apiKey", token: "op://pantherOS/connect/token",
			wantErr: "the token must be a value, env: or file: reference, not op://"},
		{name: "no token", ref: "op://pantherOS/minimax-coding-plan-api/default/apiKey", token: "-", wantErr: "no token configured"},
		{name: "item missing", ref: "op://pantherOS/no-such-item/apiKey", wantErr: `no item "no-such-item" in vault "pantherOS"`},
		{name: "item 404", ref: "op://pantherOS/listed-but-gone/apiKey", wantErr: `no item "listed-but-gone" in vault "pantherOS"`},
		{name: "item ID 404", ref: "op://pantherOS/zzzzzzzzzzzzzzzzzzzzzzzzzz/apiKey", wantErr: `no item "zzzzzzzzzzzzzzzzzzzzzzzzzz" in vault "pantherOS"`},
		{name: "vault missing", ref: "op://Private/minimax-coding-plan-api/apiKey", wantErr: `no vault "Private" that the token can read`},
		{name: "vault ID 404", ref: "op://zzzzzzzzzzzzzzzzzzzzzzzzzz/minimax-coding-plan-api/apiKey", wantErr: `no vault "zzzzzzzzzzzzzzzzzzzzzzzzzz" that the token can read`},
		{name: "field missing", ref: "op://pantherOS/minimax-coding-plan-api/default/secret", wantErr: `no field "secret" in section "default" of item "minimax-coding-plan-api"`},
		{name: "section missing", ref: "op://pantherOS/minimax-coding-plan-api/prod/apiKey", wantErr: `no field "apiKey" in section "prod"`},
		{name: "ambiguous field", ref: "op://pantherOS/minimax-coding-plan-api/apiKey", wantErr: `2 fields are labelled "apiKey" in item "minimax-coding-plan-api"; name the section`},
		{name: "ambiguous field, no plain one", ref: "op://pantherOS/dup/k", wantErr: `2 fields are labelled "k"`},
		{name: "empty field", ref: "op://pantherOS/minimax-coding-plan-api/default/note", wantErr: `field "note" in section "default" of item "minimax-coding-plan-api" is empty`},
		{name: "huge answer", ref: "op://pantherOS/x/y", url: srv.URL + "/huge", wantErr: "answer larger than 1024 KiB"},
		{name: "garbage answer", ref: "op://pantherOS/x/y", url: srv.URL + "/garbage/", wantErr: "answered with JSON of an unexpected shape"},
		{name: "server echoes the token", ref: "op://pantherOS/x/y", url: srv.URL + "/echo", wantErr: "answered 500: internal error while handling Bearer [redacted]"},
		{name: "server down", ref: "op://pantherOS/x/y", url: "http://127.0.0.1:1", wantErr: "Connect (http://127.0.0.1:1): request failed"},
		{name: "not a URL", ref: "op://pantherOS/x/y", url: "ftp://x", wantErr: "Connect URL ftp://x is not an http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.url
			if url == "" {
				url = srv.URL
			}
			token := tt.token
			switch token {
			case "":
				token = "env:CONNECT_TOKEN"
			case "-":
				token = ""
			}
			var warned []string
			r := Resolver{
				Getenv:         func(k string) string { return env[k] },
				Warn:           func(m string) { warned = append(warned, m) },
				CredentialsDir: filepath.Join(dir, "creds"),
				ConnectURL:     url,
				ConnectToken:   token,
			}
			got, err := r.Resolve(tt.ref)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrUnresolved) || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.ref) {
					t.Fatalf("Resolve(%s) = %q, %v; want ErrUnresolved naming the reference and %q", tt.ref, got, err, tt.wantErr)
				}
				assertNoSecret(t, "the error", err.Error())
				for _, s := range []string{"not-the-token-at-all", "wrong-literal-token"} {
					if strings.Contains(err.Error(), s) {
						t.Fatalf("the error shows the token: %v", err)
					}
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Resolve(%s) = %q, %v; want %q", tt.ref, got, err, tt.want)
			}
			if (len(warned) > 0) != tt.wantWarn {
				t.Fatalf("warnings %q; want a warning: %v", warned, tt.wantWarn)
			}
			if res := r.Check(map[string]string{"k": tt.ref}); !res[0].OK || res[0].Source != "connect" {
				t.Fatalf("Check = %+v, want OK from connect", res)
			}
		})
	}
}
