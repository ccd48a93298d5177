package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"panther"
)

// MaxTranscriptResultChars bounds how much of one tool result a transcript shows, in bytes: results
// are what the model read, often whole pages, and the full text stays in the session.
const MaxTranscriptResultChars = 2000

// Transcript writes session s and its messages as markdown: a header (agent, model, times, status,
// steps, tokens), the conversation — prompts, answers, each tool call with its JSON arguments, each
// result folded in a <details> block and cut to MaxTranscriptResultChars, failures marked — and the
// sources the tools contributed, numbered in the order the run first saw them, which is the order the
// agent loop numbers them in.
func Transcript(w io.Writer, s panther.Session, msgs []panther.SessionMessage) error {
	var b bytes.Buffer
	transcriptHeader(&b, s)
	if len(msgs) == 0 {
		b.WriteString("_No messages._\n")
	}
	toolNames := map[string]string{}
	var sources []panther.Citation
	seen := map[string]bool{}
	for _, m := range msgs {
		switch m.Role {
		case panther.RoleUser:
			b.WriteString("## You\n\n")
			mdQuote(&b, m.Content)
		case panther.RoleAssistant:
			b.WriteString("## Assistant\n\n")
			if meta := transcriptMeta(m); meta != "" {
				b.WriteString("_" + meta + "_\n\n")
			}
			if text := strings.TrimSpace(m.Content); text != "" {
				b.WriteString(text + "\n\n")
			}
			for _, c := range m.ToolCalls {
				toolNames[c.ID] = c.Name
				transcriptToolCall(&b, c)
			}
		case panther.RoleTool:
			transcriptToolResult(&b, m, toolNames[m.ToolCallID])
			for _, c := range m.Citations {
				if !seen[c.Link()] {
					seen[c.Link()] = true
					sources = append(sources, c)
				}
			}
		default:
			fmt.Fprintf(&b, "## %s\n\n", mdOneLine(string(m.Role)))
			mdQuote(&b, m.Content)
		}
	}
	if len(sources) > 0 {
		b.WriteString("## Sources\n\n")
		for i, c := range sources {
			fmt.Fprintf(&b, "%d. %s", i+1, mdSourceLink(c))
			if !c.FetchedAt.IsZero() {
				fmt.Fprintf(&b, " — fetched %s", c.FetchedAt.UTC().Format("2006-01-02"))
			}
			b.WriteString("\n")
		}
	}
	out := bytes.TrimRight(b.Bytes(), "\n")
	out = append(out, '\n')
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("write transcript of session %s: %w", s.ID, err)
	}
	return nil
}

const transcriptTime = "2006-01-02 15:04:05 UTC"

func transcriptHeader(b *bytes.Buffer, s panther.Session) {
	title := mdOneLine(s.Title)
	if title == "" {
		title = "Session " + s.ID
	}
	fmt.Fprintf(b, "# %s\n\n", title)
	fmt.Fprintf(b, "- Session: `%s`", s.ID)
	if s.ParentID != "" {
		fmt.Fprintf(b, " (sub-agent of `%s`)", s.ParentID)
	}
	b.WriteString("\n")
	if s.Agent != "" {
		fmt.Fprintf(b, "- Agent: %s\n", mdOneLine(s.Agent))
	}
	if s.Model != "" {
		fmt.Fprintf(b, "- Model: %s\n", mdOneLine(s.Model))
	}
	if !s.Created.IsZero() {
		fmt.Fprintf(b, "- Created: %s", s.Created.UTC().Format(transcriptTime))
		if !s.Updated.IsZero() && !s.Updated.Equal(s.Created) {
			fmt.Fprintf(b, " (updated %s)", s.Updated.UTC().Format(transcriptTime))
		}
		b.WriteString("\n")
	}
	status := string(s.Status)
	if s.StoppedBy != "" {
		status += ", stopped by " + mdOneLine(s.StoppedBy)
	}
	fmt.Fprintf(b, "- Status: %s\n", status)
	fmt.Fprintf(b, "- Steps: %d\n", s.Steps)
	fmt.Fprintf(b, "- Tokens: %d in, %d out\n\n", s.Usage.InputTokens, s.Usage.OutputTokens)
}

// transcriptMeta is the small print of a message: how long it took and what it cost.
func transcriptMeta(m panther.SessionMessage) string {
	var parts []string
	if m.Duration > 0 {
		parts = append(parts, mdDuration(m.Duration))
	}
	if m.Usage != (panther.Usage{}) {
		parts = append(parts, fmt.Sprintf("%d in, %d out tokens", m.Usage.InputTokens, m.Usage.OutputTokens))
	}
	return strings.Join(parts, " · ")
}

func mdDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

func mdQuote(b *bytes.Buffer, s string) {
	s = strings.TrimSpace(s)
	if s == "" {
		b.WriteString(">\n\n")
		return
	}
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimRight(line, " \t\r"); line == "" {
			b.WriteString(">\n")
		} else {
			b.WriteString("> " + line + "\n")
		}
	}
	b.WriteString("\n")
}

func transcriptToolCall(b *bytes.Buffer, c panther.ToolCall) {
	fmt.Fprintf(b, "**Tool call** `%s`", mdCodeSpan(c.Name))
	if c.ID != "" {
		fmt.Fprintf(b, " (`%s`)", mdCodeSpan(c.ID))
	}
	b.WriteString("\n\n")
	args, lang := string(c.Arguments), "json"
	var pretty bytes.Buffer
	if len(bytes.TrimSpace(c.Arguments)) == 0 {
		args = "{}"
	} else if json.Indent(&pretty, c.Arguments, "", "  ") == nil {
		args = pretty.String()
	} else {
		// Recorded as the model sent them: say so rather than pass them off as JSON.
		lang = "text"
		b.WriteString("_(arguments are not valid JSON)_\n\n")
	}
	mdFenced(b, lang, args)
}

func transcriptToolResult(b *bytes.Buffer, m panther.SessionMessage, name string) {
	label := "Tool result"
	switch {
	case m.IsError && name != "":
		label = "**Failed**: `" + mdCodeSpan(name) + "`"
	case m.IsError:
		label = "**Failed**: tool result"
	case name != "":
		label = "Result of `" + mdCodeSpan(name) + "`"
	}
	var notes []string
	if m.ToolCallID != "" {
		notes = append(notes, "`"+mdCodeSpan(m.ToolCallID)+"`")
	}
	if m.Duration > 0 {
		notes = append(notes, mdDuration(m.Duration))
	}
	b.WriteString(label)
	if len(notes) > 0 {
		b.WriteString(" (" + strings.Join(notes, ", ") + ")")
	}
	b.WriteString("\n\n")
	content := strings.TrimRight(m.Content, "\n ")
	shown := content
	chars := utf8.RuneCountInString(content)
	if len(content) > MaxTranscriptResultChars {
		shown = trimText(content, MaxTranscriptResultChars, fmt.Sprintf("[%d characters in all; the session keeps the whole result]", chars))
	}
	if m.IsError {
		// Failures are short and are what a reader looks for: not folded.
		mdFenced(b, "text", shown)
		return
	}
	summary := fmt.Sprintf("%d characters", chars)
	if k := len(m.Citations); k > 0 {
		summary += fmt.Sprintf(", %d source%s", k, mdPlural(k))
	}
	fmt.Fprintf(b, "<details>\n<summary>%s</summary>\n\n", html.EscapeString(summary))
	mdFenced(b, "text", shown)
	b.WriteString("</details>\n\n")
}

func mdPlural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// mdFenced writes s in a code fence longer than any run of backticks in it, so that no content
// can close the fence early.
func mdFenced(b *bytes.Buffer, lang, s string) {
	fence := strings.Repeat("`", max(3, mdLongestRun(s, '`')+1))
	fmt.Fprintf(b, "%s%s\n%s\n%s\n\n", fence, lang, strings.TrimRight(s, "\n"), fence)
}

func mdLongestRun(s string, c byte) int {
	best, cur := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			cur++
			best = max(best, cur)
		} else {
			cur = 0
		}
	}
	return best
}

// mdCodeSpan keeps a name inside `...`: backticks and line breaks in it would end the span.
func mdCodeSpan(s string) string {
	return strings.NewReplacer("`", "'", "\n", " ", "\r", " ").Replace(s)
}

func mdOneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// mdSourceLink renders a citation as a markdown link "[title — heading](url#anchor)".
func mdSourceLink(c panther.Citation) string {
	text := mdOneLine(c.Title)
	if text == "" {
		text = c.URL
	}
	if h := mdOneLine(c.Heading); h != "" && h != text {
		text += " — " + h
	}
	text = strings.NewReplacer(`\`, `\\`, "[", `\[`, "]", `\]`).Replace(text)
	// The pointy-bracket form takes any URL without spaces or angle brackets, parentheses included.
	link := strings.NewReplacer(" ", "%20", "<", "%3C", ">", "%3E").Replace(c.Link())
	return "[" + text + "](<" + link + ">)"
}
