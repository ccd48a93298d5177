// Package ui is panther's web interface: plain HTML, CSS and JavaScript modules embedded in the
// binary and served as they are, with no build step. The pages talk only to the HTTP API under
// /v1 (package httpapi) on the same origin; this package serves files and nothing else.
//
// The scripts never insert text from the server as HTML: they build the page from DOM nodes and
// text nodes, so search snippets, documents and agent answers cannot inject markup. The Content
// Security Policy sent with every response backs that up: only this origin's scripts, styles and
// connections, no inline scripts, no plugins, no framing.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"time"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy is sent with every response of the handler.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// contentTypes are the types of the files the UI is made of, fixed here rather than taken from the
// machine's mime tables, which differ between systems.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// asset is one embedded file, read once: the files are small and never change while running.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the web UI: "/" and "/index.html" are the page, other paths the embedded assets
// by name. Unknown paths are 404 and methods other than GET and HEAD 405; the API under /v1 is
// another handler's, to be mounted beside this one.
func Handler() http.Handler {
	assets, err := load(static)
	if err != nil {
		// The files are compiled in: failing here is a broken build, not a runtime condition.
		panic(fmt.Sprintf("ui: embedded assets: %v", err))
	}
	return handler{assets: assets}
}

func load(fsys fs.FS) (map[string]asset, error) {
	root, err := fs.Sub(fsys, "static")
	if err != nil {
		return nil, err
	}
	assets := map[string]asset{}
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		ct := contentTypes[path.Ext(name)]
		if ct == "" {
			return fmt.Errorf("%s: no content type for its extension", name)
		}
		sum := sha256.Sum256(body)
		assets["/"+name] = asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := assets["/index.html"]; !ok {
		return nil, fmt.Errorf("static/index.html is missing")
	}
	return assets, nil
}

type handler struct {
	assets map[string]asset
}

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := r.URL.Path
	if name == "/" {
		name = "/index.html"
	}
	a, ok := h.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("ETag", a.etag)
	// Revalidated on every load (a 304 when unchanged), so a new binary's files are never mixed with
	// an old one's cached modules.
	hdr.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}
