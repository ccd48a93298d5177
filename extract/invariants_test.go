package extract

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkInvariants asserts what every Result must satisfy, whatever the input.
func checkInvariants(t testing.TB, res *Result) {
	t.Helper()
	for name, s := range map[string]string{"title": res.Title, "markdown": res.Markdown, "canonical": res.Canonical} {
		if !utf8.ValidString(s) {
			t.Errorf("%s is not valid UTF-8", name)
		}
	}
	seen := map[string]bool{}
	for _, l := range res.Links {
		u, err := url.Parse(l)
		if err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(l, "#") {
			t.Errorf("link %q is not absolute without fragment", l)
		}
		if seen[l] {
			t.Errorf("link %q twice", l)
		}
		seen[l] = true
	}
	pos := 0
	for _, s := range res.Sections {
		if !utf8.ValidString(s.Markdown) {
			t.Errorf("section %v is not valid UTF-8", s.Heading)
		}
		for _, h := range s.Heading {
			if !utf8.ValidString(h) {
				t.Errorf("heading %q is not valid UTF-8", h)
			}
		}
		if s.Level < 0 || s.Level > 6 || (s.Level == 0) != (len(s.Heading) == 0) {
			t.Errorf("section %v has level %d", s.Heading, s.Level)
		}
		// Sections are consecutive pieces of the markdown.
		i := strings.Index(res.Markdown[pos:], s.Markdown)
		if i < 0 {
			t.Errorf("section %v is not a part of the markdown at or after offset %d", s.Heading, pos)
			continue
		}
		pos += i + len(s.Markdown)
	}
	if strings.TrimSpace(res.Markdown) != "" && len(res.Sections) == 0 {
		t.Errorf("markdown without sections")
	}
}

// checkHTMLInvariants adds what HTML extraction promises: the sections are exactly the markdown.
func checkHTMLInvariants(t testing.TB, res *Result) {
	t.Helper()
	checkInvariants(t, res)
	parts := make([]string, len(res.Sections))
	for i, s := range res.Sections {
		parts[i] = s.Markdown
	}
	if j := strings.Join(parts, "\n\n"); j != res.Markdown {
		t.Errorf("sections joined differ from the markdown:\n%s", firstDiff(j, res.Markdown))
	}
	// No trailing white space outside code blocks, no runs of blank lines.
	fence, blank := "", 0
	for _, line := range strings.Split(res.Markdown, "\n") {
		if fence != "" {
			blank = 0
			if strings.TrimLeft(strings.TrimLeft(line, "> "), " ") == fence {
				fence = ""
			}
			continue
		}
		if s := strings.TrimLeft(strings.TrimLeft(line, "> "), " -0123456789."); strings.HasPrefix(s, "```") {
			fence = strings.TrimRight(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-+_.#")
			blank = 0
			continue
		}
		if strings.HasSuffix(line, " ") || strings.HasSuffix(line, "\t") {
			t.Errorf("trailing space: %q", line)
		}
		if strings.TrimSpace(line) == "" {
			blank++
			if blank > 1 {
				t.Errorf("run of blank lines")
			}
		} else {
			blank = 0
		}
	}
}
