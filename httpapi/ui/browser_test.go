package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"panther/httpapi/ui"
)

// chromiumPath is where Debian's chromium package (scripts/setup.sh) puts the browser.
const chromiumPath = "/usr/bin/chromium"

// browserBudget bounds one browser test, start of Chromium included.
const browserBudget = 45 * time.Second

// browser is a headless Chromium tab for one test. What the page reports as an error (an uncaught
// exception, console.error, or the browser's own error log, where a Content-Security-Policy
// violation or a failed request lands) fails the test when it ends.
type browser struct {
	ctx context.Context
	mu  sync.Mutex
	// expected, when set, says which reported errors are expected, not failures.
	expected func(text, url string) bool
	errors   []string
}

// newBrowser starts Chromium, or skips the test when it is not installed, unless
// PANTHER_TEST_REQUIRE_BROWSER=1 (as scripts/test.sh sets), which makes a missing browser a failure.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("PANTHER_TEST_REQUIRE_BROWSER") == "1" {
			t.Fatalf("PANTHER_TEST_REQUIRE_BROWSER=1 but there is no browser: %v (scripts/setup.sh installs it)", err)
		}
		t.Skipf("no Chromium at %s (scripts/setup.sh installs it): %v", chromiumPath, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", "new"),
		chromedp.DisableGPU,
		// Chromium refuses to run as root with its sandbox; CI runs the tests as root.
		chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	// The budget bounds the browser's whole life: at its end Chromium is stopped and any wait fails.
	deadline := time.Now().Add(browserBudget)
	if d, ok := t.Deadline(); ok && d.Add(-2*time.Second).Before(deadline) {
		deadline = d.Add(-2 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	stop := func() {
		cancelTab()
		cancelAlloc()
		cancel()
	}
	b := &browser{ctx: tabCtx}
	if err := chromedp.Do(tabCtx); err != nil {
		stop()
		t.Fatalf("start Chromium: %v", err)
	}
	messages := chromedp.Console(tabCtx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				b.mu.Lock()
				if b.expected == nil || !b.expected(m.Text, m.URL) {
					b.errors = append(b.errors, fmt.Sprintf("%s %s (%s:%d)", m.Type, m.Text, m.URL, m.Line+1))
				}
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		stop()
		<-done
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, e := range b.errors {
			t.Errorf("the page reported: %s", e)
		}
	})
	return b
}

// expect makes the errors for which fn is true expected: they no longer fail the test.
func (b *browser) expect(fn func(text, url string) bool) {
	b.mu.Lock()
	b.expected = fn
	b.mu.Unlock()
}

// do runs actions in the tab and fails the test, naming the step and showing the page, when one fails.
func (b *browser) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.fail(t, what, err)
	}
}

func (b *browser) fail(t *testing.T, what string, err error) {
	t.Helper()
	// The page's text says what went wrong (an error line, an empty list) when the wait gave up.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), 2*time.Second)
	defer cancel()
	page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	t.Fatalf("%s: %v\nthe page said:\n%.2000s", what, err, page)
}

// eval evaluates a JavaScript expression, awaiting it when it is a promise, and decodes the result.
func eval[T any](t *testing.T, b *browser, what, expr string) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail(t, what, err)
	}
	return v
}

// The markdown renderer and the highlighter run in the browser they were written for: their output
// is read back as HTML and compared. No API is needed, only the files.
func TestRenderingInBrowser(t *testing.T) {
	b := newBrowser(t)
	srv := httptest.NewServer(ui.Handler())
	defer srv.Close()

	type mdCase struct {
		Name string `json:"name"`
		In   string `json:"in"`
		Base string `json:"base,omitempty"`
		Want string `json:"-"`
	}
	const ext = ` target="_blank" rel="noopener noreferrer"`
	md := []mdCase{
		{Name: "heading and inline", In: "# Partial Indexes\n\nA **partial** index, `WHERE` and *[the manual](https://www.postgresql.org/docs/)*.",
			Want: `<h1 id="partial-indexes">Partial Indexes</h1><p>A <strong>partial</strong> index, <code>WHERE</code> and <em><a href="https://www.postgresql.org/docs/"` + ext + `>the manual</a></em>.</p>`},
		{Name: "raw HTML is text", In: "<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>",
			Want: `<p>&lt;script&gt;alert(1)&lt;/script&gt;</p><p>&lt;img src=x onerror=alert(1)&gt;</p>`},
		{Name: "script URLs are not links", In: "[a](javascript:alert(1)) [b](data:text/html,x) <javascript:alert(1)>",
			Want: `<p><span>a</span> <span>b</span> <span>javascript:alert(1)</span></p>`},
		{Name: "relative links resolve against the page", In: "[next](../b.html#x) [mail](mailto:a@b.org)", Base: "https://d.org/docs/a.html",
			Want: `<p><a href="https://d.org/b.html#x"` + ext + `>next</a> <a href="mailto:a@b.org"` + ext + `>mail</a></p>`},
		{Name: "same-page links stay in the UI", In: "[up](#top) [self](a.html#sec)", Base: "https://d.org/docs/a.html",
			Want: `<p><a href="#frag:top">up</a> <a href="#frag:sec">self</a></p>`},
		{Name: "code fence keeps text", In: "```sql\nSELECT 1 < 2;\n\n-- *not emphasis*\n```",
			Want: `<pre><code class="language-sql">SELECT 1 &lt; 2;` + "\n\n" + `-- *not emphasis*</code></pre>`},
		{Name: "table with alignment", In: "| Name | Size |\n|:-----|-----:|\n| `a\\|b` | 10 |\n| c |",
			Want: `<div class="table-wrap"><table><thead><tr><th>Name</th><th class="al-right">Size</th></tr></thead><tbody><tr><td><code>a|b</code></td><td class="al-right">10</td></tr><tr><td>c</td><td class="al-right"></td></tr></tbody></table></div>`},
		{Name: "nested tight list", In: "- one\n- two\n  - two.a\n- three",
			Want: `<ul><li>one</li><li>two<ul><li>two.a</li></ul></li><li>three</li></ul>`},
		{Name: "ordered list start", In: "3. c\n4. d\n\nafter",
			Want: `<ol start="3"><li>c</li><li>d</li></ol><p>after</p>`},
		{Name: "loose list", In: "- a\n\n- b",
			Want: `<ul><li><p>a</p></li><li><p>b</p></li></ul>`},
		{Name: "snake_case is not emphasis", In: "set work_mem and _this_ and 2\\*3\\*4",
			Want: `<p>set work_mem and <em>this</em> and 2*3*4</p>`},
		{Name: "duplicate headings get distinct ids", In: "## Notes\n\n## Notes\n\nSetext\n===",
			Want: `<h2 id="notes">Notes</h2><h2 id="notes-1">Notes</h2><h1 id="setext">Setext</h1>`},
		{Name: "entities and escapes", In: "&copy; &#60;b&#62; \\*literal\\* &bogus;",
			Want: `<p>© &lt;b&gt; *literal* &amp;bogus;</p>`},
		{Name: "block quote and rule", In: "> quoted **text**\n> more\n\n---",
			Want: `<blockquote><p>quoted <strong>text</strong>` + "\n" + `more</p></blockquote><hr>`},
		{Name: "reference links", In: "See [the docs][d] and [d].\n\n[d]: https://d.org/x \"Title\"",
			Want: `<p>See <a href="https://d.org/x"` + ext + `>the docs</a> and <a href="https://d.org/x"` + ext + `>d</a>.</p>`},
		{Name: "images become links", In: "![a diagram](https://d.org/i.png)",
			Want: `<p><a href="https://d.org/i.png"` + ext + `>image: a diagram</a></p>`},
		{Name: "unclosed emphasis stays literal", In: "x " + strings.Repeat("*a ", 2000),
			Want: `<p>x ` + strings.TrimSpace(strings.Repeat("*a ", 2000)) + `</p>`},
	}
	cases, err := json.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	b.do(t, "open the UI", chromedp.Navigate(srv.URL+"/#/settings"), chromedp.WaitVisible(chromedp.CSS("#token")))
	got := eval[[]string](t, b, "render markdown", `(async () => {
			const {renderMarkdown} = await import('/markdown.js');
			return `+string(cases)+`.map((c) => {
				const div = document.createElement('div');
				div.append(renderMarkdown(c.in, {base: c.base, fragment: (f) => '#frag:' + f}));
				return div.innerHTML;
			});
		})()`)
	for i, c := range md {
		if i >= len(got) || got[i] != c.Want {
			var g string
			if i < len(got) {
				g = got[i]
			}
			t.Errorf("%s: markdown %q\n got: %s\nwant: %s", c.Name, c.In, g, c.Want)
		}
	}

	// The agent's "Sources:" list comes off the answer, to be shown as links.
	type split struct {
		Body    string `json:"body"`
		Sources []struct {
			N    int    `json:"n"`
			Link string `json:"link"`
		} `json:"sources"`
	}
	splits := eval[[]split](t, b, "split sources", `(async () => {
		const {splitSources} = await import('/chat.js');
		return [
			'It is [1] and [3].\n\nSources:\n[1] https://d.org/a#x\n[3] https://d.org/b',
			'Cut short [2].\n\nSources:\n[2] https://d.org/c\n\n(stopped: the step budget ran out)',
			'No sources.\n\nSources: none of them',
		].map(splitSources);
	})()`)
	wantSplits := []struct {
		body  string
		links string
	}{
		{"It is [1] and [3].", "1 https://d.org/a#x, 3 https://d.org/b"},
		{"Cut short [2].\n\n(stopped: the step budget ran out)", "2 https://d.org/c"},
		{"No sources.\n\nSources: none of them", ""},
	}
	for i, w := range wantSplits {
		var links []string
		for _, s := range splits[i].Sources {
			links = append(links, fmt.Sprintf("%d %s", s.N, s.Link))
		}
		if splits[i].Body != w.body || strings.Join(links, ", ") != w.links {
			t.Errorf("splitSources %d: body %q sources %q, want %q and %q", i, splits[i].Body, links, w.body, w.links)
		}
	}

	hl := []struct{ Text, Query, Want string }{
		{"Indexes <b>speed</b> up index scans", "index", `<mark>Indexes</mark> &lt;b&gt;speed&lt;/b&gt; up <mark>index</mark> scans`},
		{"VACUUM reclaims storage", "vacuum storage", `<mark>VACUUM</mark> reclaims <mark>storage</mark>`},
		{"reindexing is not indexing", "indexing", `reindexing is not <mark>indexing</mark>`},
		{"a.b (cc)", "(cc) .*", `a.b (<mark>cc</mark>)`},
		{"no match here", "", `no match here`},
	}
	in, _ := json.Marshal(hl)
	marked := eval[[]string](t, b, "highlight", `(async () => {
			const {highlight} = await import('/highlight.js');
			return `+string(in)+`.map((c) => {
				const p = document.createElement('p');
				p.append(highlight(c.Text, c.Query));
				return p.innerHTML;
			});
		})()`)
	for i, c := range hl {
		if i >= len(marked) || marked[i] != c.Want {
			t.Errorf("highlight(%q, %q) = %q, want %q", c.Text, c.Query, marked[i], c.Want)
		}
	}
}
