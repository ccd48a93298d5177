package extract

import (
	"strconv"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

type cell struct {
	node    *html.Node
	colspan int
	rowspan int
}

// table renders a data table as a GFM table. Layout tables (one column, or cells holding headings or
// other tables) are rendered as the blocks they contain.
func (r *renderer) table(n *html.Node) {
	w := r.w
	if hasToken(attr(n, "class"), "highlighttable") {
		// Pygments: a gutter cell of line numbers, then the code.
		if pre := findFirst(n, r.p, func(c *html.Node) bool {
			return c.DataAtom == atom.Pre && !hasToken(attr(c.Parent, "class"), "linenos") && !hasToken(attr(c.Parent.Parent, "class"), "linenos")
		}); pre != nil {
			r.pre(pre)
		}
		return
	}
	var caption *html.Node
	var rows [][]cell
	layout, hasPre := false, false
	nested := w.inline > 0 || r.inTable > 0
	addRow := func(tr *html.Node) {
		var row []cell
		for c := tr.FirstChild; c != nil; c = c.NextSibling {
			if c.Type != html.ElementNode || c.DataAtom != atom.Td && c.DataAtom != atom.Th {
				continue
			}
			if r.p.skip != nil && r.p.skip[c] {
				continue
			}
			if nested {
				// Nested tables are written inline whatever they hold; their cells need no inspection.
			} else if !layout && findFirst(c, r.p, func(e *html.Node) bool {
				return e != c && (headingLevel(e) > 0 || e.DataAtom == atom.Table)
			}) != nil {
				layout = true
			}
			if !nested && !hasPre && findFirst(c, r.p, func(e *html.Node) bool { return e.DataAtom == atom.Pre }) != nil {
				hasPre = true
			}
			row = append(row, cell{node: c, colspan: span(c, "colspan", maxCols), rowspan: span(c, "rowspan", 1<<16)})
		}
		rows = append(rows, row)
	}
	var head []*html.Node
	var body []*html.Node
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type != html.ElementNode || r.p.skip != nil && r.p.skip[c] {
			continue
		}
		switch c.DataAtom {
		case atom.Caption:
			caption = c
		case atom.Thead:
			head = appendRows(head, c)
		case atom.Tbody, atom.Tfoot:
			body = appendRows(body, c)
		case atom.Tr:
			body = append(body, c)
		}
	}
	for _, tr := range head {
		addRow(tr)
	}
	for _, tr := range body {
		addRow(tr)
	}
	cols := 0
	for _, row := range rows {
		k := 0
		for _, c := range row {
			k += c.colspan
		}
		cols = max(cols, min(k, maxCols))
	}
	// A one-column table is data when it has rows of text (PostgreSQL's function tables), layout
	// when it frames a single block or code.
	if cols == 0 || cols == 1 && (len(rows) < 2 || hasPre) || layout || w.inline > 0 || r.inTable > 0 || len(w.prefixes) >= maxNesting {
		r.layoutTable(n, caption, rows)
		return
	}

	if caption != nil {
		w.block(2)
		r.children(caption)
		w.block(2)
	}
	grid := make([][]string, 0, len(rows))
	budget := w.limit - len(w.buf) // the grid is built before it is written: bound it by the output cap
	carry := make([]int, cols)     // rows still covered by a rowspan above, per column
	for _, row := range rows {
		line := make([]string, 0, cols)
		ci := 0
		for len(line) < cols {
			if carry[len(line)] > 0 {
				carry[len(line)]--
				line = append(line, "")
				continue
			}
			if ci >= len(row) {
				break
			}
			c := row[ci]
			ci++
			text := r.cellText(c.node)
			for k := 0; k < c.colspan && len(line) < cols; k++ {
				if c.rowspan > 1 {
					carry[len(line)] = c.rowspan - 1
				}
				if k > 0 && len(text) > 64 {
					line = append(line, "")
				} else {
					line = append(line, text)
				}
			}
		}
		for len(line) < cols {
			if carry[len(line)] > 0 {
				carry[len(line)]--
			}
			line = append(line, "")
		}
		grid = append(grid, line)
		for _, c := range line {
			budget -= len(c) + 3
		}
		if w.full || budget < 0 {
			break
		}
	}
	w.block(2)
	defer w.resume(w.suspendMarks())
	for i, line := range grid {
		if i > 0 {
			w.newline(false)
		}
		w.raw(tableLine(line))
		if i == 0 {
			w.newline(false)
			w.put("|" + strings.Repeat(" --- |", cols))
		}
	}
	w.block(2)
}

func appendRows(rows []*html.Node, section *html.Node) []*html.Node {
	for c := section.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && c.DataAtom == atom.Tr {
			rows = append(rows, c)
		}
	}
	return rows
}

func span(n *html.Node, key string, limit int) int {
	v, err := strconv.Atoi(strings.TrimSpace(attr(n, key)))
	if err != nil || v < 1 {
		return 1
	}
	return min(v, limit)
}

func tableLine(cells []string) string {
	var sb strings.Builder
	sb.WriteByte('|')
	for _, c := range cells {
		if c == "" {
			sb.WriteString(" |")
			continue
		}
		sb.WriteByte(' ')
		sb.WriteString(c)
		sb.WriteString(" |")
	}
	return sb.String()
}

// cellText renders a cell's content on one line: blocks joined with <br>, pipes escaped.
func (r *renderer) cellText(n *html.Node) string {
	saved := r.w
	s := &r.scratch
	s.reset(1 << 20)
	s.inline, s.cell = 1, true
	s.prefixes = s.prefixes[:0]
	r.w = s
	r.inTable++
	r.children(n)
	r.inTable--
	r.w = saved
	out := strings.TrimSpace(string(s.buf))
	out = strings.TrimSuffix(out, "<br>")
	return out
}

// layoutTable renders a table that is not a data table: its cells' content, row after row.
func (r *renderer) layoutTable(n *html.Node, caption *html.Node, rows [][]cell) {
	w := r.w
	w.block(2)
	if caption != nil {
		r.children(caption)
		w.block(2)
	}
	inline := w.inline > 0
	for _, row := range rows {
		for i, c := range row {
			if inline && i > 0 {
				w.raw(";")
			}
			r.children(c.node)
			if !inline {
				w.block(2)
			}
		}
		w.block(1)
		if w.full {
			return
		}
	}
	w.block(2)
}
