package agent

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"panther"
)

// Mode says where an agent may run.
type Mode string

const (
	// ModePrimary agents are run directly by a user (panther ask, a session); the task tool does not offer them.
	ModePrimary Mode = "primary"
	// ModeSubagent agents run only through another agent's task tool.
	ModeSubagent Mode = "subagent"
	// ModeAll agents may run either way.
	ModeAll Mode = "all"
)

// Permission says whether an agent may call a tool.
type Permission string

const (
	Allow Permission = "allow"
	// Deny keeps the tool out of the agent's requests; a call to it anyway is answered with an error.
	Deny Permission = "deny"
	// Ask offers the tool but runs each call only when the Runtime's Approve says yes.
	Ask Permission = "ask"
)

// Definition is an agent as a markdown file describes it: YAML front matter, then the system prompt.
//
//	---
//	description: Answers from the knowledge base.
//	mode: all
//	tools: {"*": false, kb_search: true, kb_read: true}
//	permission: {web_fetch: deny}
//	---
//	You answer questions ...
type Definition struct {
	// Name is the file name without .md.
	Name string `json:"name"`
	// Description tells a parent agent what this one is for when it chooses a sub-agent.
	Description string `json:"description"`
	Mode        Mode   `json:"mode"`
	// Model is "provider/model", resolved by Runtime.Model; empty means the configured default.
	Model string `json:"model,omitempty"`
	// Temperature is nil for the provider's default.
	Temperature *float64 `json:"temperature,omitempty"`
	// Steps, MaxTokens and Timeout override the Runtime's Budget when not zero. MaxTokens is the run's
	// token budget over all its steps, not the length of one answer.
	Steps     int           `json:"steps,omitempty"`
	MaxTokens int           `json:"max_tokens,omitempty"`
	Timeout   time.Duration `json:"timeout,omitempty"`
	// Tools enables (true) or disables (false) tools by name or by a pattern with * ("*" is every tool).
	Tools map[string]bool `json:"tools,omitempty"`
	// Permission sets allow, deny or ask by tool name or pattern; a tool not named is allowed.
	Permission map[string]Permission `json:"permission,omitempty"`
	// Prompt is the system prompt: the file's body.
	Prompt string `json:"prompt"`
	// Source is the file the definition was read from ("built-in:general.md" for embedded ones).
	Source string `json:"source,omitempty"`
}

// Limits of a definition's values.
const (
	MaxTemperature = 2.0
	MaxDefSteps    = 1000
	MaxDefTimeout  = 24 * time.Hour
	// maxDefinitionBytes bounds a definition file: it is read whole and its prompt sent on every step.
	maxDefinitionBytes = 256 << 10
)

// PermissionFor returns what the definition allows for tool: a tool disabled in Tools is denied,
// otherwise Permission decides, and a tool named by neither is allowed. An exact name wins over a
// pattern, and a longer pattern over a shorter one.
func (d Definition) PermissionFor(tool string) Permission {
	if on, ok := lookupPattern(d.Tools, tool); ok && !on {
		return Deny
	}
	if p, ok := lookupPattern(d.Permission, tool); ok {
		return p
	}
	return Allow
}

// CanBeSubagent reports whether the task tool may start this agent.
func (d Definition) CanBeSubagent() bool {
	return d.Mode == ModeSubagent || d.Mode == ModeAll || d.Mode == ""
}

// CanBePrimary reports whether the agent may be run directly.
func (d Definition) CanBePrimary() bool {
	return d.Mode == ModePrimary || d.Mode == ModeAll || d.Mode == ""
}

func lookupPattern[V any](m map[string]V, name string) (V, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	best, found := "", false
	for p := range m {
		if !strings.Contains(p, "*") {
			continue
		}
		if ok, _ := path.Match(p, name); !ok {
			continue
		}
		if !found || len(p) > len(best) || (len(p) == len(best) && p < best) {
			best, found = p, true
		}
	}
	if !found {
		var zero V
		return zero, false
	}
	return m[best], true
}

var (
	agentNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	// toolKeyRE admits tool names and patterns whose only wildcard is *: path.Match then never fails.
	toolKeyRE = regexp.MustCompile(`^[A-Za-z0-9_.*-]{1,128}$`)
)

// frontMatterKeys are the keys a definition may have, for the error that names an unknown one.
var frontMatterKeys = []string{"description", "mode", "model", "temperature", "steps", "maxSteps", "tools", "permission", "max_tokens", "timeout"}

// ParseDefinition parses the definition of agent name from a markdown file with YAML front matter.
// Errors name the file (name.md), the line and the key that is wrong, and are of kind ErrInvalid.
func ParseDefinition(name string, src []byte) (Definition, error) {
	return parseDefinition(name+".md", name, src)
}

func parseDefinition(file, name string, src []byte) (Definition, error) {
	if !agentNameRE.MatchString(name) {
		return Definition{}, panther.Invalidf("%s: agent name %q: want letters, digits, '-', '_' or '.', starting with a letter or digit, at most 64", file, name)
	}
	if len(src) > maxDefinitionBytes {
		return Definition{}, panther.Invalidf("%s: %d bytes, more than the %d a definition may have", file, len(src), maxDefinitionBytes)
	}
	fm, body, fmLine, err := splitFrontMatter(file, src)
	if err != nil {
		return Definition{}, err
	}
	d := Definition{Name: name, Mode: ModeAll, Prompt: strings.TrimSpace(body), Source: file}
	// at names a place in the file; node lines count from the front matter's first line.
	at := func(n *yaml.Node) string { return fmt.Sprintf("%s:%d", file, n.Line+fmLine-1) }

	var doc yaml.Node
	if err := yaml.Unmarshal(fm, &doc); err != nil {
		return Definition{}, panther.Invalidf("%s: front matter is not valid YAML: %s", file, shiftYAMLLines(err.Error(), fmLine-1))
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return Definition{}, panther.Invalidf("%s: front matter is empty; description is required", file)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return Definition{}, panther.Invalidf("%s: front matter must be a mapping of keys to values, like \"description: ...\"", at(root))
	}
	seen := map[string]int{}
	steps := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return Definition{}, panther.Invalidf("%s: a key must be a plain name", at(k))
		}
		key := k.Value
		if first, dup := seen[key]; dup {
			return Definition{}, panther.Invalidf("%s: key %q given twice (first on line %d)", at(k), key, first)
		}
		seen[key] = k.Line + fmLine - 1
		if v.Kind == yaml.AliasNode {
			return Definition{}, panther.Invalidf("%s: %s: YAML aliases are not supported", at(k), key)
		}
		var err error
		switch key {
		case "description":
			d.Description, err = scalarString(v)
			if err == nil {
				d.Description = strings.TrimSpace(d.Description)
				if d.Description == "" {
					err = errors.New("must not be empty")
				}
			}
		case "mode":
			var s string
			if s, err = scalarString(v); err == nil {
				switch m := Mode(strings.TrimSpace(s)); m {
				case ModePrimary, ModeSubagent, ModeAll:
					d.Mode = m
				default:
					err = fmt.Errorf("%q is not a mode; want primary, subagent or all", s)
				}
			}
		case "model":
			if d.Model, err = scalarString(v); err == nil {
				d.Model = strings.TrimSpace(d.Model)
				if p, m, ok := strings.Cut(d.Model, "/"); d.Model != "" && (!ok || p == "" || m == "") {
					err = fmt.Errorf("%q: want \"provider/model\", or leave it out for the default model", d.Model)
				}
			}
		case "temperature":
			var t float64
			if err = decodeScalar(v, "!!float", &t); err != nil {
				err = fmt.Errorf("want a number from 0 to %g, got %q", MaxTemperature, v.Value)
			} else if t < 0 || t > MaxTemperature || t != t {
				err = fmt.Errorf("%g is out of range; want a number from 0 to %g", t, MaxTemperature)
			} else {
				d.Temperature = &t
			}
		case "steps", "maxSteps":
			steps[key] = true
			if err = decodeScalar(v, "!!int", &d.Steps); err != nil || d.Steps < 1 || d.Steps > MaxDefSteps {
				err = fmt.Errorf("want a whole number of steps from 1 to %d, got %q", MaxDefSteps, v.Value)
			}
		case "max_tokens":
			if err = decodeScalar(v, "!!int", &d.MaxTokens); err != nil || d.MaxTokens < 1 {
				err = fmt.Errorf("want a positive whole number of tokens (the run's budget), got %q", v.Value)
			}
		case "timeout":
			var s string
			if s, err = scalarString(v); err == nil {
				d.Timeout, err = time.ParseDuration(strings.TrimSpace(s))
				if err != nil || d.Timeout <= 0 || d.Timeout > MaxDefTimeout {
					err = fmt.Errorf("want a duration like 90s or 5m, at most %s, got %q", MaxDefTimeout, s)
				}
			}
		case "tools":
			d.Tools = map[string]bool{}
			err = eachToolKey(v, func(tool string, tv *yaml.Node) error {
				var on bool
				if decodeScalar(tv, "!!bool", &on) != nil {
					return fmt.Errorf("want true or false, got %q", tv.Value)
				}
				d.Tools[tool] = on
				return nil
			})
		case "permission":
			d.Permission = map[string]Permission{}
			err = eachToolKey(v, func(tool string, pv *yaml.Node) error {
				s, err := scalarString(pv)
				p := Permission(strings.TrimSpace(s))
				if err != nil || (p != Allow && p != Deny && p != Ask) {
					return fmt.Errorf("want allow, deny or ask, got %q", pv.Value)
				}
				d.Permission[tool] = p
				return nil
			})
		default:
			return Definition{}, panther.Invalidf("%s: unknown key %q; the keys are %s", at(k), key, strings.Join(frontMatterKeys, ", "))
		}
		if err != nil {
			var ne nodeError
			if errors.As(err, &ne) {
				return Definition{}, panther.Invalidf("%s: %s.%s: %v", at(ne.node), key, ne.node.Value, ne.err)
			}
			return Definition{}, panther.Invalidf("%s: %s: %v", at(k), key, err)
		}
	}
	if len(steps) > 1 {
		return Definition{}, panther.Invalidf("%s:%d: steps and maxSteps both given; maxSteps is the older name of steps, give one", file, seen["maxSteps"])
	}
	if d.Description == "" {
		return Definition{}, panther.Invalidf("%s: description is required (it tells a parent agent what %s is for)", file, name)
	}
	if d.Prompt == "" {
		return Definition{}, panther.Invalidf("%s: no system prompt: the text after the front matter is empty", file)
	}
	return d, nil
}

// splitFrontMatter returns the YAML between the "---" lines that open the file, the text after
// them, and the file line the YAML starts on.
func splitFrontMatter(file string, src []byte) (fm []byte, body string, line int, err error) {
	src = bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))
	lines := bytes.SplitAfter(src, []byte("\n"))
	isFence := func(ln []byte) bool { return string(bytes.TrimRight(ln, " \t\r\n")) == "---" }
	if !isFence(lines[0]) {
		return nil, "", 0, panther.Invalidf("%s:1: no front matter: a definition begins with a line \"---\", then YAML (description: ...), then \"---\" and the prompt", file)
	}
	off := len(lines[0])
	for _, ln := range lines[1:] {
		if isFence(ln) {
			return src[len(lines[0]):off], string(src[off+len(ln):]), 2, nil
		}
		off += len(ln)
	}
	return nil, "", 0, panther.Invalidf("%s:1: the front matter is not closed: no \"---\" line after the opening one", file)
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// shiftYAMLLines turns the line numbers of a yaml error, counted in the front matter, into file lines.
func shiftYAMLLines(msg string, by int) string {
	return yamlLineRE.ReplaceAllStringFunc(msg, func(m string) string {
		n, err := strconv.Atoi(m[len("line "):])
		if err != nil {
			return m
		}
		return "line " + strconv.Itoa(n+by)
	})
}

// scalarString returns a scalar's text; a list or a mapping is an error.
func scalarString(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("want a single value, not a %s", kindName(n.Kind))
	}
	if n.Tag == "!!null" {
		return "", nil
	}
	return n.Value, nil
}

// decodeScalar decodes a scalar of the given YAML tag (an !!int is a fine !!float) into v.
func decodeScalar(n *yaml.Node, tag string, v any) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a single value, not a %s", kindName(n.Kind))
	}
	if n.Tag != tag && !(tag == "!!float" && n.Tag == "!!int") {
		return fmt.Errorf("want %s, got %s", tag, n.Tag)
	}
	return n.Decode(v)
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	case yaml.AliasNode:
		return "alias"
	}
	return "value"
}

// nodeError is an error about one entry of a mapping, so that the message can name its own line.
type nodeError struct {
	node *yaml.Node
	err  error
}

func (e nodeError) Error() string { return e.err.Error() }

// eachToolKey walks a mapping of tool names (or patterns) to values.
func eachToolKey(n *yaml.Node, f func(tool string, v *yaml.Node) error) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("want a mapping of tool names to values, not a %s", kindName(n.Kind))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || !toolKeyRE.MatchString(k.Value) {
			return nodeError{k, errors.New("not a tool name (letters, digits, '_', '-', '.', and * for any)")}
		}
		if seen[k.Value] {
			return nodeError{k, errors.New("given twice")}
		}
		seen[k.Value] = true
		if err := f(k.Value, v); err != nil {
			return nodeError{k, err}
		}
	}
	return nil
}

//go:embed agents/*.md
var builtinFS embed.FS

// BuiltinDefinitions returns the definitions embedded in the binary: general and researcher.
func BuiltinDefinitions() (map[string]Definition, error) {
	defs := map[string]Definition{}
	if err := loadFS(defs, builtinFS, "agents", "built-in:"); err != nil {
		return nil, err
	}
	return defs, nil
}

// LoadDefinitions returns the built-in definitions overridden, by name, by the *.md files of each dir
// in order (the caller passes the user's directory, then the project's). A dir that does not exist
// is skipped; a file that does not parse is an error naming it.
func LoadDefinitions(dirs ...string) (map[string]Definition, error) {
	defs, err := BuiltinDefinitions()
	if err != nil {
		return nil, err
	}
	for _, dir := range dirs {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := loadFS(defs, os.DirFS(dir), ".", dir+string(filepath.Separator)); err != nil {
			return nil, err
		}
	}
	return defs, nil
}

func loadFS(defs map[string]Definition, fsys fs.FS, dir, prefix string) error {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return fmt.Errorf("agent definitions %s: %w", strings.TrimSuffix(prefix, string(filepath.Separator)), err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".md") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, fn := range names {
		file := prefix + fn
		f, err := fsys.Open(path.Join(dir, fn))
		if err != nil {
			return fmt.Errorf("agent definition %s: %w", file, err)
		}
		// One byte more than allowed, so that a file too big is reported rather than cut.
		src, err := io.ReadAll(io.LimitReader(f, maxDefinitionBytes+1))
		f.Close()
		if err != nil {
			return fmt.Errorf("agent definition %s: %w", file, err)
		}
		d, err := parseDefinition(file, strings.TrimSuffix(fn, ".md"), src)
		if err != nil {
			return err
		}
		defs[d.Name] = d
	}
	return nil
}
