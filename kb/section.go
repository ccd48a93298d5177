package kb

import (
	"strings"

	"panther"
)

// SectionMarkdown puts back together the section with the given anchor from a page's chunks: the
// parts of a split section each repeat its heading line and the end of the part before (see Chunk),
// which a reader of the whole section should see once. Returns "" when no chunk has the anchor.
func SectionMarkdown(chunks []panther.Chunk, anchor string) string {
	var out, head string
	for _, c := range chunks {
		if c.Anchor != anchor {
			continue
		}
		if out == "" {
			out = c.Text
			head, _, _ = strings.Cut(c.Text, "\n")
			continue
		}
		part := c.Text
		if head != "" {
			if rest, ok := strings.CutPrefix(part, head+"\n"); ok {
				part = strings.TrimLeft(rest, "\n")
			}
		}
		out = joinOverlapping(out, part)
	}
	return out
}

// joinOverlapping appends next to prev, leaving out the longest run of whole paragraphs that next
// starts with and prev ends with: the overlap Chunk repeats.
func joinOverlapping(prev, next string) string {
	paras := strings.Split(next, "\n\n")
	for n := len(paras); n > 0; n-- {
		overlap := strings.Join(paras[:n], "\n\n")
		if strings.HasSuffix(prev, overlap) {
			rest := strings.Join(paras[n:], "\n\n")
			if rest == "" {
				return prev
			}
			return prev + "\n\n" + rest
		}
	}
	return prev + "\n\n" + next
}
