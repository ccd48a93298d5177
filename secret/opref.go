package secret

import (
	"fmt"
	"strings"
)

// OPRef is a parsed 1Password secret reference, op://vault/item/[section/]field. Names are
// compared without regard to case, as 1Password does.
type OPRef struct {
	Vault   string
	Item    string
	Section string // empty when the reference names no section
	Field   string
}

// ParseOPRef parses a 1Password secret reference following 1Password's syntax rules: three or four
// non-empty segments made of letters, digits, '-', '_', '.' and spaces; a name with any other
// character must be written as its 1Password ID. Query parameters (?attribute=otp,
// ?ssh-format=openssh) are refused: a setting wants a field's stored value, and neither the
// credential files nor the Connect lookup could honour them.
func ParseOPRef(s string) (OPRef, error) {
	ref, problem := parseOPRef(s)
	if problem != "" {
		return OPRef{}, fmt.Errorf("1Password reference %q: %s", s, problem)
	}
	return ref, nil
}

// parseOPRef returns the reason s is not a reference as text, so that resolution errors can name
// the reference once.
func parseOPRef(s string) (OPRef, string) {
	rest, ok := strings.CutPrefix(s, "op://")
	if !ok {
		return OPRef{}, "does not start with op://"
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		if rest[i] == '?' {
			return OPRef{}, "query parameters such as ?attribute= are not supported; reference the field that holds the value"
		}
		return OPRef{}, "contains '#', which 1Password references do not allow"
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 && len(parts) != 4 {
		return OPRef{}, fmt.Sprintf("has %d path segments; want op://vault/item/field or op://vault/item/section/field", len(parts))
	}
	roles := []string{"vault", "item", "field"}
	if len(parts) == 4 {
		roles = []string{"vault", "item", "section", "field"}
	}
	for i, p := range parts {
		if problem := checkSegment(roles[i], p); problem != "" {
			return OPRef{}, problem
		}
	}
	ref := OPRef{Vault: parts[0], Item: parts[1], Field: parts[len(parts)-1]}
	if len(parts) == 4 {
		ref.Section = parts[2]
	}
	return ref, ""
}

func checkSegment(role, p string) string {
	if p == "" {
		return fmt.Sprintf("the %s name is empty", role)
	}
	for _, c := range p {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ' ':
		default:
			return fmt.Sprintf("the %s name %q contains %q, which 1Password references do not allow; use the %s's ID instead", role, p, c, role)
		}
	}
	if strings.HasPrefix(p, " ") || strings.HasSuffix(p, " ") {
		// A copy-paste slip far more often than a real name, and it would never match.
		return fmt.Sprintf("the %s name %q begins or ends with a space", role, p)
	}
	return ""
}

// String returns the reference in its op:// form.
func (r OPRef) String() string {
	if r.Section == "" {
		return "op://" + r.Vault + "/" + r.Item + "/" + r.Field
	}
	return "op://" + r.Vault + "/" + r.Item + "/" + r.Section + "/" + r.Field
}

// CredentialName is the canonical name under which the reference's value is looked up in the
// systemd credentials directory when no mapping names one: the segments joined with dots, spaces
// replaced by underscores, case kept. op://pantherOS/minimax-coding-plan-api/default/apiKey becomes
// "pantherOS.minimax-coding-plan-api.default.apiKey"; LoadCredential=NAME:PATH in the unit then
// makes it available.
func (r OPRef) CredentialName() string {
	segs := []string{r.Vault, r.Item}
	if r.Section != "" {
		segs = append(segs, r.Section)
	}
	segs = append(segs, r.Field)
	return strings.ReplaceAll(strings.Join(segs, "."), " ", "_")
}
