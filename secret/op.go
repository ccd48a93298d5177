package secret

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"
)

// opTimeout bounds one `op read` and one Connect lookup; a variable so tests can shorten it.
var opTimeout = 10 * time.Second

// opEnv is all of the environment the op CLI gets: it needs PATH and HOME (its config directory),
// its service-account token and its own OP_* settings, and nothing else panther holds.
var opEnv = []string{
	"PATH", "HOME", "XDG_CONFIG_HOME", "TMPDIR",
	"OP_SERVICE_ACCOUNT_TOKEN", "OP_ACCOUNT", "OP_CONFIG_DIR", "OP_CACHE",
	"OP_CONNECT_HOST", "OP_CONNECT_TOKEN", "OP_BIOMETRIC_UNLOCK_ENABLED",
	"OP_INTEGRATION_NAME", "OP_INTEGRATION_ID", "OP_INTEGRATION_BUILDNUMBER",
}

// resolveOP walks the steps in order and, when none gives the value, reports each one's reason.
func (r Resolver) resolveOP(ctx context.Context, s string) (resolved, error) {
	ref, problem := parseOPRef(s)
	if problem != "" {
		return resolved{}, unresolved(s, "%s", problem)
	}
	var tried []string

	// 1. The mapping: a file path is read here; a credential name is handed to step 2.
	credName := ""
	switch target, ok := r.lookupOPMap(s); {
	case !ok:
		tried = append(tried, "no mapping")
	case filepath.IsAbs(target):
		v, fail, warns := readSecretFile(target)
		if fail == nil {
			return resolved{value: v, source: "file", warnings: warns}, nil
		}
		tried = append(tried, fmt.Sprintf("mapped file %s: %s", target, fail.problem))
	case validCredentialName(target):
		credName = target
	default:
		tried = append(tried, fmt.Sprintf("mapped to %q, which is neither an absolute path nor a credential name", target))
	}

	// 2. The systemd credentials directory.
	res, why, ok := r.fromCredentials(ref, credName)
	if ok {
		return res, nil
	}
	tried = append(tried, why)

	// 3. The op CLI.
	v, why := r.fromOPCLI(ctx, s)
	if why == "" {
		return resolved{value: v, source: "op"}, nil
	}
	tried = append(tried, why)

	// 4. Connect.
	v, why, warns := r.fromConnect(ctx, ref)
	if why == "" {
		return resolved{value: v, source: "connect", warnings: warns}, nil
	}
	tried = append(tried, why)
	return resolved{}, unresolved(s, "%s", strings.Join(tried, "; "))
}

// lookupOPMap finds s in OPMap, exactly or, as 1Password references are case-insensitive, in
// another case (the first such key in sorted order, so the choice is stable).
func (r Resolver) lookupOPMap(s string) (string, bool) {
	if len(r.OPMap) == 0 {
		return "", false
	}
	if t, ok := r.OPMap[s]; ok {
		return t, true
	}
	for _, k := range slices.Sorted(maps.Keys(r.OPMap)) {
		if strings.EqualFold(k, s) {
			return r.OPMap[k], true
		}
	}
	return "", false
}

// validCredentialName accepts what systemd's LoadCredential= accepts as a name: one path element.
func validCredentialName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

func (r Resolver) credentialsDir() string {
	if r.CredentialsDir != "" {
		return r.CredentialsDir
	}
	return r.getenv("CREDENTIALS_DIRECTORY")
}

// fromCredentials reads the mapped credential name, then the reference's canonical name.
func (r Resolver) fromCredentials(ref OPRef, mapped string) (resolved, string, bool) {
	dir := r.credentialsDir()
	if dir == "" {
		if mapped != "" {
			return resolved{}, fmt.Sprintf("mapped to credential %s, but no $CREDENTIALS_DIRECTORY is set", mapped), false
		}
		return resolved{}, "no $CREDENTIALS_DIRECTORY", false
	}
	names := []string{ref.CredentialName()}
	if mapped != "" && mapped != names[0] {
		names = []string{mapped, names[0]}
	}
	var broken []string
	for _, name := range names {
		v, fail, warns := readSecretFile(filepath.Join(dir, name))
		if fail == nil {
			return resolved{value: v, source: "credentials", warnings: warns}, "", true
		}
		if !fail.missing {
			broken = append(broken, fmt.Sprintf("credential %s in $CREDENTIALS_DIRECTORY (%s): %s", name, dir, fail.problem))
		}
	}
	if len(broken) > 0 {
		return resolved{}, strings.Join(broken, "; "), false
	}
	return resolved{}, fmt.Sprintf("not in $CREDENTIALS_DIRECTORY (%s) as %s", dir, strings.Join(names, " or ")), false
}

// fromOPCLI runs `op read`. It returns the value, or why there is none; op's output never appears
// in the reason, and its stderr only as one cleaned line with known secrets blotted out.
func (r Resolver) fromOPCLI(ctx context.Context, s string) (string, string) {
	bin := r.OPCommand
	if bin == "" {
		bin = lookPath("op", r.getenv("PATH"))
		if bin == "" {
			return "", "op CLI not installed"
		}
	}
	env := make([]string, 0, len(opEnv))
	for _, k := range opEnv {
		if v := r.getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	stdout := &boundedBuffer{max: maxFileBytes}
	stderr := &boundedBuffer{max: 4 << 10}
	cmd := exec.CommandContext(ctx, bin, "read", "--no-newline", s)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A child of op keeping the pipes open must not hold Resolve past the kill.
	cmd.WaitDelay = time.Second
	err := cmd.Run()

	tokenNote := ""
	if r.getenv("OP_SERVICE_ACCOUNT_TOKEN") == "" {
		tokenNote = " (OP_SERVICE_ACCOUNT_TOKEN is unset)"
	}
	var exitErr *exec.ExitError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "", fmt.Sprintf("op CLI gave no answer within %s", opTimeout)
	case ctx.Err() != nil:
		return "", "op CLI interrupted"
	case errors.As(err, &exitErr):
		line := cleanLine(stderr.Bytes(), r.knownSecrets(string(stdout.Bytes())))
		if line == "" {
			return "", fmt.Sprintf("op CLI failed (exit %d)%s", exitErr.ExitCode(), tokenNote)
		}
		return "", fmt.Sprintf("op CLI failed (exit %d: %s)%s", exitErr.ExitCode(), line, tokenNote)
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Sprintf("op CLI %s not found", bin)
	case errors.Is(err, os.ErrPermission):
		return "", fmt.Sprintf("op CLI %s is not executable", bin)
	case err != nil:
		return "", fmt.Sprintf("op CLI %s could not run", bin)
	case stdout.overflow:
		return "", fmt.Sprintf("op CLI printed more than %d KiB, not a secret", maxFileBytes>>10)
	}
	v := trimNewline(stdout.Bytes())
	if len(v) == 0 {
		return "", "op CLI returned an empty value"
	}
	return string(v), ""
}

// knownSecrets are strings that must not reach an error even when a tool echoes them.
func (r Resolver) knownSecrets(extra ...string) []string {
	out := []string{r.getenv("OP_SERVICE_ACCOUNT_TOKEN"), r.getenv("OP_CONNECT_TOKEN")}
	if !IsReference(r.ConnectToken) {
		out = append(out, r.ConnectToken)
	}
	return append(out, extra...)
}

// cleanLine keeps the first non-empty line of a tool's message, printable and short, with every
// known secret replaced.
func cleanLine(b []byte, secrets []string) string {
	var line string
	for l := range strings.Lines(string(b)) {
		if l = strings.TrimSpace(l); l != "" {
			line = l
			break
		}
	}
	for _, s := range secrets {
		if len(s) >= 4 {
			line = strings.ReplaceAll(line, s, "[redacted]")
		}
	}
	line = strings.Map(func(c rune) rune {
		if unicode.IsPrint(c) {
			return c
		}
		return -1
	}, line)
	if r := []rune(line); len(r) > 200 {
		line = string(r[:200]) + "…"
	}
	return line
}

// lookPath finds an executable on the given PATH value (not the process's, so a Resolver's Getenv
// decides), skipping relative entries that would make the current directory count.
func lookPath(name, path string) string {
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// boundedBuffer keeps at most max bytes and notes whether more came, so a runaway tool cannot fill
// memory.
type boundedBuffer struct {
	buf      bytes.Buffer
	max      int
	overflow bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); len(p) > room {
		b.buf.Write(p[:max(room, 0)])
		b.overflow = true
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *boundedBuffer) Bytes() []byte { return b.buf.Bytes() }
