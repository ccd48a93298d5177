package telemetry

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/DataDog/datadog-go/v5/statsd"
)

// dogstatsd is what Metrics sends through; *statsd.Client is one.
type dogstatsd interface {
	Count(name string, value int64, tags []string, rate float64) error
	Gauge(name string, value float64, tags []string, rate float64) error
	Distribution(name string, value float64, tags []string, rate float64) error
	Flush() error
	Close() error
}

var _ dogstatsd = (*statsd.Client)(nil)

// statsdNamespace prefixes every DogStatsD metric name.
const statsdNamespace = "panther."

// newDogStatsD returns a client for addr. The client never blocks a caller: it buffers datagrams,
// sends them from its own goroutine, and drops them (counting the drops) when the agent cannot keep
// up, so a slow or absent agent costs metrics, never latency. Its own telemetry metrics are off, to
// keep the agent's namespace to panther's.
func newDogStatsD(addr string, tags []string) (*statsd.Client, error) {
	if err := checkStatsdAddr(addr); err != nil {
		return nil, err
	}
	c, err := statsd.New(addr,
		statsd.WithNamespace(statsdNamespace),
		statsd.WithTags(tags),
		statsd.WithoutTelemetry(),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: dogstatsd client for %s: %w", addr, err)
	}
	return c, nil
}

// checkStatsdAddr accepts "host:port" and the unix socket forms the client knows, so that a typo
// fails at start-up rather than as silently lost metrics.
func checkStatsdAddr(addr string) error {
	for _, prefix := range []string{"unix://", "unixgram://", "unixstream://"} {
		if path, ok := strings.CutPrefix(addr, prefix); ok {
			if !strings.HasPrefix(path, "/") {
				return fmt.Errorf("telemetry: statsd address %q: want an absolute socket path after %s", addr, prefix)
			}
			return nil
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("telemetry: statsd address %q: want host:port or unix:///path/to/socket", addr)
	}
	if host == "" {
		return fmt.Errorf("telemetry: statsd address %q: missing host (e.g. 127.0.0.1:8125)", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("telemetry: statsd address %q: port must be 1 to 65535", addr)
	}
	return nil
}

// tagPattern is what Datadog keeps of a tag unchanged: a letter first, then letters, digits and
// _ - : . /, at most 200 characters. Anything else would be rewritten by the agent, or worse, break
// the datagram (| , # and newlines are DogStatsD syntax).
var tagPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_\-:./]{0,199}$`)

// globalTags builds the tags every DogStatsD metric carries: role, owner, the configured tags and
// DD_TAGS, each checked.
func globalTags(opts MetricsOptions, getenv func(string) string) ([]string, error) {
	var tags []string
	switch opts.Role {
	case "":
	case RoleWorkstation, RoleServer:
		tags = append(tags, "role:"+opts.Role)
	default:
		return nil, fmt.Errorf("telemetry: role %q: want %s or %s", opts.Role, RoleWorkstation, RoleServer)
	}
	if opts.Owner != "" {
		t := "owner:" + opts.Owner
		if !tagPattern.MatchString(t) {
			return nil, fmt.Errorf("telemetry: owner %q: use letters, digits and _ - : . / only, at most 190 characters", opts.Owner)
		}
		tags = append(tags, t)
	}
	for _, t := range opts.Tags {
		if err := checkTag(t); err != nil {
			return nil, fmt.Errorf("telemetry: tags: %w", err)
		}
		tags = append(tags, t)
	}
	if getenv != nil {
		dd, err := ParseDDTags(getenv("DD_TAGS"))
		if err != nil {
			return nil, fmt.Errorf("telemetry: DD_TAGS: %w", err)
		}
		tags = append(tags, dd...)
	}
	return tags, nil
}

// ParseDDTags reads tags as the DD_TAGS environment variable lists them, separated by spaces or
// commas ("env:prod team:docs" or "env:prod,team:docs").
func ParseDDTags(s string) ([]string, error) {
	var tags []string
	for _, t := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		if err := checkTag(t); err != nil {
			return nil, err
		}
		tags = append(tags, t)
	}
	return tags, nil
}

// checkTag refuses a malformed tag, and one whose name says it holds a secret: a tag is sent to a
// third party with every datagram.
func checkTag(t string) error {
	if !tagPattern.MatchString(t) {
		return fmt.Errorf("tag %q: want key:value starting with a letter, with letters, digits and _ - : . / only, at most 200 characters", t)
	}
	key, _, _ := strings.Cut(t, ":")
	if SensitiveName(key) {
		return fmt.Errorf("tag %q: a tag named like a credential is refused: tags are sent with every metric", key)
	}
	return nil
}
