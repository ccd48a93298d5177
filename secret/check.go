package secret

import (
	"context"
	"errors"
	"maps"
	"slices"
)

// CheckResult is one setting's outcome in Check. It never holds a value.
type CheckResult struct {
	Setting string
	// Reference is the configured reference, or "(literal value)" when the setting holds the
	// secret itself, which is then not repeated.
	Reference string
	OK        bool
	// Source is where the value was found: "file", "credentials", "op", "connect", "env", or
	// "literal" for a value written in the configuration.
	Source string
	// Problem says why the reference did not resolve, as the error from Resolve would.
	Problem string
	// Warnings are about the value's delivery, such as a secret file others can read.
	Warnings []string
}

// Check resolves every setting's reference (setting name → reference) and reports each, sorted by
// setting, for `panther secrets check`. Values are resolved (and cached when the Resolver has a
// Cache) but never returned.
func (r Resolver) Check(refs map[string]string) []CheckResult {
	return r.CheckContext(context.Background(), refs)
}

// CheckContext is Check bounded by ctx.
func (r Resolver) CheckContext(ctx context.Context, refs map[string]string) []CheckResult {
	out := make([]CheckResult, 0, len(refs))
	for _, setting := range slices.Sorted(maps.Keys(refs)) {
		ref := refs[setting]
		res := CheckResult{Setting: setting, Reference: ref}
		if !IsReference(ref) {
			res.Reference = "(literal value)"
			if ref == "" {
				res.Reference = "(empty)"
				res.Problem = "no value or reference set"
				out = append(out, res)
				continue
			}
		}
		got, _, err := r.resolve(ctx, ref)
		if err != nil {
			var ue *unresolvedError
			if errors.As(err, &ue) {
				res.Problem = ue.problem
			} else {
				res.Problem = "not resolved"
			}
		} else {
			res.OK = true
			res.Source = got.source
			res.Warnings = got.warnings
		}
		out = append(out, res)
	}
	return out
}
