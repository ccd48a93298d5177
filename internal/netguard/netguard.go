// Package netguard is an HTTP client that will not connect to internal addresses, so that a page an
// agent reads cannot steer it (by link, redirect or DNS trick) at loopback services, the local network
// or a cloud provider's metadata endpoint.
//
// The check runs in the net.Dialer's ControlContext hook, on the IP address actually being dialled,
// after DNS resolution, for every connection. Looking at the URL would not do: a public name may
// resolve to 127.0.0.1, resolve differently on the second lookup (DNS rebinding), or redirect to an
// internal address. No proxy is used, since a proxy would make the dialled address the proxy's.
//
// Refused by default: loopback, unspecified, private, link-local, shared address space (CGNAT),
// multicast, broadcast, reserved, cloud metadata addresses, and the IPv6 forms that carry one of these
// IPv4 addresses (IPv4-mapped, IPv4-compatible, NAT64, 6to4). A Policy may allow some of them back.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrBlocked is what every refusal of an address wraps.
var ErrBlocked = errors.New("address not allowed")

// Policy says which addresses may be dialled. The zero Policy refuses every class the package lists.
type Policy struct {
	// AllowPrivate allows private, shared address space (CGNAT) and link-local addresses, for a
	// deployment whose documentation lives on its own network. Loopback and metadata addresses stay
	// refused: they need an Allow entry.
	AllowPrivate bool
	// Allow lists prefixes allowed despite the rules (100.64.0.0/10 for a tailnet, 127.0.0.1/32 for
	// tests). A cloud metadata address is allowed only by a prefix naming that one address, so that
	// allowing a whole range (a tailnet, say) never opens the metadata endpoint inside it.
	Allow []netip.Prefix
}

// ParsePolicy builds a Policy from allow-list entries: addresses ("127.0.0.1", "::1") or prefixes
// ("10.0.0.0/8"). A bad entry is an error naming it.
func ParsePolicy(allow []string) (Policy, error) {
	var p Policy
	for _, e := range allow {
		s := strings.TrimSpace(e)
		if s == "" {
			return Policy{}, fmt.Errorf("allow entry %q: empty", e)
		}
		var pfx netip.Prefix
		if strings.Contains(s, "/") {
			var err error
			if pfx, err = netip.ParsePrefix(s); err != nil {
				return Policy{}, fmt.Errorf("allow entry %q: not an address or prefix (like 10.0.0.0/8): %w", e, err)
			}
			if m := pfx.Masked(); m != pfx {
				return Policy{}, fmt.Errorf("allow entry %q: bits set after the prefix length; did you mean %s?", e, m)
			}
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return Policy{}, fmt.Errorf("allow entry %q: not an address or prefix (like 10.0.0.0/8): %w", e, err)
			}
			if a.Zone() != "" {
				return Policy{}, fmt.Errorf("allow entry %q: addresses with a zone (%%%s) are not supported", e, a.Zone())
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		p.Allow = append(p.Allow, unmapPrefix(pfx))
	}
	return p, nil
}

// unmapPrefix turns a prefix inside ::ffff:0:0/96 into the IPv4 prefix it stands for, since Check
// looks at IPv4-mapped addresses as IPv4.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

// Address classes, named as refusals name them.
const (
	classMetadata    = "cloud metadata"
	classLoopback    = "loopback"
	classUnspecified = "unspecified"
	classPrivate     = "private"
	classShared      = "shared address space (CGNAT)"
	classLinkLocal   = "link-local"
	classMulticast   = "multicast"
	classBroadcast   = "broadcast"
	classReserved    = "reserved"
)

// metadata are the instance metadata endpoints of the big clouds. Some sit inside ranges refused
// anyway; they are listed so that allowing such a range does not open them, and so that a refusal
// says what they are. 168.63.129.16 (Azure's wire server) and 100.100.100.200 (Alibaba) are the
// reason the list exists: neither is private or link-local.
var metadata = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure, OCI, DigitalOcean, ...
	netip.MustParseAddr("169.254.170.2"),   // AWS ECS task metadata
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	netip.MustParseAddr("168.63.129.16"),   // Azure wire server
	netip.MustParseAddr("fd00:ec2::254"),   // AWS over IPv6
}

type rule struct {
	prefix netip.Prefix
	class  string
}

// rules are checked in order; the first match names the class. Embedded IPv4 forms are handled
// before them, in classify.
var rules = []rule{
	{netip.MustParsePrefix("0.0.0.0/8"), classUnspecified}, // "this network": 0.0.0.0 dials the local host on Linux
	{netip.MustParsePrefix("127.0.0.0/8"), classLoopback},
	{netip.MustParsePrefix("10.0.0.0/8"), classPrivate},
	{netip.MustParsePrefix("172.16.0.0/12"), classPrivate},
	{netip.MustParsePrefix("192.168.0.0/16"), classPrivate},
	{netip.MustParsePrefix("100.64.0.0/10"), classShared},
	{netip.MustParsePrefix("169.254.0.0/16"), classLinkLocal},
	{netip.MustParsePrefix("224.0.0.0/4"), classMulticast},
	{netip.MustParsePrefix("255.255.255.255/32"), classBroadcast},
	{netip.MustParsePrefix("240.0.0.0/4"), classReserved},
	{netip.MustParsePrefix("::/128"), classUnspecified},
	{netip.MustParsePrefix("::1/128"), classLoopback},
	{netip.MustParsePrefix("fc00::/7"), classPrivate},
	{netip.MustParsePrefix("fec0::/10"), classPrivate}, // deprecated site-local, still routed on some networks
	{netip.MustParsePrefix("64:ff9b:1::/48"), classPrivate},
	{netip.MustParsePrefix("fe80::/10"), classLinkLocal},
	{netip.MustParsePrefix("ff00::/8"), classMulticast},
}

// IPv6 ranges whose addresses carry an IPv4 address that the traffic ends up at.
var (
	compat4 = netip.MustParsePrefix("::/96")        // IPv4-compatible (deprecated), ::a.b.c.d
	nat64   = netip.MustParsePrefix("64:ff9b::/96") // well-known NAT64 prefix, 64:ff9b::a.b.c.d
	sixTo4  = netip.MustParsePrefix("2002::/16")    // 6to4, 2002:aabb:ccdd::
)

// classify returns the class refusing a (unmapped, without zone), "" when a is an ordinary public
// address, and the IPv4 address a carries when that is what was classified.
func classify(a netip.Addr) (class string, embedded netip.Addr) {
	for _, m := range metadata {
		if a == m {
			return classMetadata, netip.Addr{}
		}
	}
	for _, r := range rules {
		if r.prefix.Contains(a) {
			return r.class, netip.Addr{}
		}
	}
	if a.Is6() {
		b := a.As16()
		var v4 netip.Addr
		switch {
		case compat4.Contains(a), nat64.Contains(a):
			v4 = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		case sixTo4.Contains(a):
			v4 = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
		}
		if v4.IsValid() {
			if c, _ := classify(v4); c != "" {
				return c, v4
			}
		}
	}
	return "", netip.Addr{}
}

// BlockedError is a refused address. It matches ErrBlocked with errors.Is.
type BlockedError struct {
	// Addr is the refused address; Port is the port it was to be dialled on, 0 when Check was asked.
	Addr netip.Addr
	Port uint16
	// Class names the rule that refused it: "loopback", "private", "cloud metadata", ...
	Class string
	// Embedded is the IPv4 address an IPv6 Addr carries, when that is what was refused.
	Embedded netip.Addr
}

func (e *BlockedError) Error() string {
	reason := e.Class + " address"
	if e.Embedded.IsValid() {
		reason += " (" + e.Embedded.String() + " inside an IPv6 address)"
	}
	if e.Port != 0 {
		return "refused to connect to " + netip.AddrPortFrom(e.Addr, e.Port).String() + ": " + reason
	}
	article := "a "
	if e.Class != "" && strings.IndexByte("aeiou", e.Class[0]) >= 0 {
		article = "an "
	}
	return e.Addr.String() + " is " + article + reason
}

// Is makes errors.Is(err, ErrBlocked) true.
func (e *BlockedError) Is(target error) bool { return target == ErrBlocked }

// Check returns nil when p allows dialling ip, else a *BlockedError saying which rule refused it.
func (p Policy) Check(ip netip.Addr) error {
	if !ip.IsValid() {
		return fmt.Errorf("no address to check: %w", ErrBlocked)
	}
	orig := ip
	// Prefixes never contain zoned addresses; the zone does not change where an address leads.
	a := ip.Unmap().WithZone("")
	class, embedded := classify(a)
	if class == "" {
		return nil
	}
	for _, pfx := range p.Allow {
		pfx = unmapPrefix(pfx)
		if !pfx.Contains(a) {
			continue
		}
		if class != classMetadata || pfx.Bits() == a.BitLen() {
			return nil
		}
	}
	if p.AllowPrivate && (class == classPrivate || class == classShared || class == classLinkLocal) {
		return nil
	}
	return &BlockedError{Addr: orig, Class: class, Embedded: embedded}
}

// control is the dialer hook: it sees every connection's resolved address before connect(2).
func (p Policy) control(_ context.Context, network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refused to connect to %q (%s): not an IP address and port: %w", address, network, ErrBlocked)
	}
	if err := p.Check(ap.Addr()); err != nil {
		var be *BlockedError
		if errors.As(err, &be) {
			be.Port = ap.Port()
		}
		return err
	}
	return nil
}

// Transport timeouts and bounds.
const (
	DialTimeout           = 10 * time.Second
	TLSHandshakeTimeout   = 10 * time.Second
	ResponseHeaderTimeout = 20 * time.Second
	maxResponseHeader     = 1 << 20
	maxConnsPerHost       = 16
)

// Transport returns a transport that dials only addresses p allows. It uses no proxy, whatever the
// environment says. It checks connections only; Client also checks each request's URL.
func (p Policy) Transport() *http.Transport {
	d := &net.Dialer{
		Timeout:        DialTimeout,
		KeepAlive:      30 * time.Second,
		ControlContext: p.control,
	}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    TLSHandshakeTimeout,
		ResponseHeaderTimeout:  ResponseHeaderTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxResponseHeader,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    4,
		MaxConnsPerHost:        maxConnsPerHost,
		IdleConnTimeout:        90 * time.Second,
	}
}

// Client returns a client over p.Transport() that gives up after timeout (none if 0), follows at
// most maxRedirects redirects (a further one is an error; negative counts as 0), and refuses any
// request, first or redirected, whose URL CheckURL refuses.
func (p Policy) Client(timeout time.Duration, maxRedirects int) *http.Client {
	maxRedirects = max(maxRedirects, 0)
	return &http.Client{
		Transport: guarded{p.Transport()},
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			// Userinfo is left to the transport: an error returned here goes out under the raw
			// Location, password and all, while the transport's errors get the password masked.
			if s := strings.ToLower(req.URL.Scheme); s != "http" && s != "https" {
				return fmt.Errorf("redirect to scheme %q refused; only http and https URLs can be fetched", req.URL.Scheme)
			}
			return nil
		},
	}
}

// CheckURL refuses what must not be requested whatever the address: schemes other than http and
// https, a missing host, and userinfo (user:password@), which would send credentials the page
// chose. Its errors never repeat the userinfo.
func CheckURL(u *url.URL) error {
	if u == nil {
		return errors.New("no URL")
	}
	if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
		if s == "" {
			return errors.New("URL has no scheme; only http and https URLs can be fetched")
		}
		return fmt.Errorf("scheme %q refused; only http and https URLs can be fetched", u.Scheme)
	}
	if u.User != nil {
		return errors.New("URL has userinfo (user:password@) and is refused: it would send credentials")
	}
	if u.Hostname() == "" {
		return errors.New("URL has no host")
	}
	return nil
}

// guarded checks each request's URL before the transport sees it.
type guarded struct{ t *http.Transport }

func (g guarded) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := CheckURL(req.URL); err != nil {
		if req.Body != nil {
			req.Body.Close() // RoundTrip must close the body, even on errors
		}
		return nil, err
	}
	return g.t.RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the transport.
func (g guarded) CloseIdleConnections() { g.t.CloseIdleConnections() }
