package mcp

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"panther"
)

// DocURIPrefix starts the resource URI of every stored page: panther://doc/ and the page's URL as it
// is (panther://doc/https://docs.example.org/manual/indexes.html), with #anchor for one section.
const DocURIPrefix = "panther://doc/"

// Bounds of the resources.
const (
	// ResourcePageSize is how many documents one resources/list answer lists; nextCursor goes on.
	ResourcePageSize = 500
	// ResourceChars bounds the markdown of one resource read; longer pages are cut with a note.
	ResourceChars = 1 << 20
)

// DocURI is the resource URI of a stored page.
func DocURI(pageURL string) string { return DocURIPrefix + pageURL }

func (s *Server) addResources() {
	// {+url} (reserved expansion) keeps the page URL readable inside the resource URI instead of
	// percent-encoding its slashes and colon.
	s.sdk.AddResourceTemplate(&sdk.ResourceTemplate{
		Name:        "document",
		Title:       "Stored documentation page",
		URITemplate: DocURIPrefix + "{+url}",
		MIMEType:    "text/markdown",
		Description: "A page of the knowledge base as clean markdown: panther://doc/ followed by the page's URL; " +
			"add #anchor for one section. resources/list lists the stored pages.",
	}, s.readDocument)
}

// readDocument answers resources/read for panther://doc/{url}: the page, or its section, as markdown.
func (s *Server) readDocument(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
	uri := req.Params.URI
	raw, ok := strings.CutPrefix(uri, DocURIPrefix)
	if !ok || len(raw) > MaxURLChars {
		return nil, sdk.ResourceNotFoundError(uri)
	}
	// Clients that expand the template themselves may have percent-encoded the URL.
	if !strings.Contains(raw, "://") {
		if u, err := url.PathUnescape(raw); err == nil {
			raw = u
		}
	}
	page, anchor, _ := strings.Cut(raw, "#")
	out, err := s.page(ctx, page, anchor, ResourceChars, "read one section as "+DocURIPrefix+"url#anchor")
	switch {
	case errors.Is(err, panther.ErrNotFound):
		return nil, sdk.ResourceNotFoundError(uri)
	case err != nil:
		return nil, toolError("read "+uri, err)
	}
	return &sdk.ReadResourceResult{
		Cacheable: sdk.Cacheable{CacheScope: "private"},
		Contents:  []*sdk.ResourceContents{{URI: uri, MIMEType: "text/markdown", Text: out.Markdown}},
	}, nil
}

// listDocuments answers resources/list: the stored current pages by URL, ResourcePageSize at a time.
// The cursor is the offset of the next page of the listing.
func (s *Server) listDocuments(ctx context.Context, cursor string) (*sdk.ListResourcesResult, error) {
	offset := 0
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
		if err != nil || err2 != nil || n < 0 || !strings.HasPrefix(string(b), "offset:") {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "invalid cursor: give back the nextCursor of the last answer"}
		}
		offset = n
	}
	docs, err := s.kb.Documents(ctx, panther.DocFilter{Limit: s.pageSize + 1, Offset: offset})
	if err != nil {
		return nil, fmt.Errorf("list documents: %w", err)
	}
	res := &sdk.ListResourcesResult{Cacheable: sdk.Cacheable{CacheScope: "private"}, Resources: make([]*sdk.Resource, 0, min(len(docs), s.pageSize))}
	if len(docs) > s.pageSize {
		docs = docs[:s.pageSize]
		res.NextCursor = base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(offset+s.pageSize)))
	}
	for _, d := range docs {
		title := d.Title
		if title == "" {
			title = d.URL
		}
		res.Resources = append(res.Resources, &sdk.Resource{
			URI:         DocURI(d.URL),
			Name:        d.URL,
			Title:       title,
			MIMEType:    "text/markdown",
			Description: fmt.Sprintf("%d passages, fetched %s", d.Chunks, d.FetchedAt.UTC().Format("2006-01-02")),
		})
	}
	return res, nil
}
