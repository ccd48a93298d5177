package netguard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	tailnet := Policy{Allow: []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10")}}
	metaAlone := Policy{Allow: []netip.Prefix{netip.MustParsePrefix("169.254.169.254/32")}}
	mappedAllow := Policy{Allow: []netip.Prefix{netip.MustParsePrefix("::ffff:127.0.0.1/128")}}
	cases := []struct {
		ip     string
		policy Policy
		class  string // "" when allowed
	}{
		// Public addresses pass.
		{"93.184.216.34", Policy{}, ""},
		{"8.8.8.8", Policy{}, ""},
		{"2606:4700::1111", Policy{}, ""},
		{"::ffff:93.184.216.34", Policy{}, ""},
		{"172.32.0.1", Policy{}, ""},  // just past 172.16/12
		{"100.128.0.1", Policy{}, ""}, // just past 100.64/10
		{"2002:5db8:d822::1", Policy{}, ""},

		{"127.0.0.1", Policy{}, classLoopback},
		{"127.255.255.254", Policy{}, classLoopback},
		{"::1", Policy{}, classLoopback},
		{"0.0.0.0", Policy{}, classUnspecified},
		{"0.1.2.3", Policy{}, classUnspecified},
		{"::", Policy{}, classUnspecified},
		{"10.0.0.1", Policy{}, classPrivate},
		{"172.16.0.1", Policy{}, classPrivate},
		{"172.31.255.255", Policy{}, classPrivate},
		{"192.168.1.1", Policy{}, classPrivate},
		{"fc00::1", Policy{}, classPrivate},
		{"fd12:3456::1", Policy{}, classPrivate},
		{"169.254.1.1", Policy{}, classLinkLocal},
		{"fe80::1", Policy{}, classLinkLocal},
		{"fe80::1%eth0", Policy{}, classLinkLocal},
		{"100.64.0.1", Policy{}, classShared},
		{"100.127.255.255", Policy{}, classShared},
		{"224.0.0.1", Policy{}, classMulticast},
		{"239.255.255.250", Policy{}, classMulticast},
		{"ff02::1", Policy{}, classMulticast},
		{"255.255.255.255", Policy{}, classBroadcast},
		{"240.0.0.1", Policy{}, classReserved},
		{"169.254.169.254", Policy{}, classMetadata},
		{"169.254.170.2", Policy{}, classMetadata},
		{"fd00:ec2::254", Policy{}, classMetadata},
		{"100.100.100.200", Policy{}, classMetadata},
		{"168.63.129.16", Policy{}, classMetadata},

		// IPv4-mapped and other IPv6 forms carrying a refused IPv4 address.
		{"::ffff:127.0.0.1", Policy{}, classLoopback},
		{"::ffff:10.1.2.3", Policy{}, classPrivate},
		{"::ffff:169.254.169.254", Policy{}, classMetadata},
		{"::ffff:100.64.0.1", Policy{}, classShared},
		{"::ffff:0.0.0.0", Policy{}, classUnspecified},
		{"::ffff:224.0.0.1", Policy{}, classMulticast},
		{"::127.0.0.1", Policy{}, classLoopback},          // IPv4-compatible
		{"::169.254.169.254", Policy{}, classMetadata},    // IPv4-compatible
		{"64:ff9b::7f00:1", Policy{}, classLoopback},      // NAT64
		{"64:ff9b::a9fe:a9fe", Policy{}, classMetadata},   // NAT64
		{"2002:7f00:1::1", Policy{}, classLoopback},       // 6to4
		{"2002:c0a8:101::1", Policy{}, classPrivate},      // 6to4 of 192.168.1.1
		{"64:ff9b:1::a00:1", Policy{}, classPrivate},      // local-use NAT64
		{"fec0::1", Policy{}, classPrivate},               // site-local
		{"::ffff:168.63.129.16", Policy{}, classMetadata}, // mapped metadata

		// What a policy allows back.
		{"100.101.102.103", tailnet, ""},
		{"::ffff:100.101.102.103", tailnet, ""},
		{"100.100.100.200", tailnet, classMetadata}, // a range never opens a metadata address
		{"127.0.0.1", tailnet, classLoopback},
		{"169.254.169.254", metaAlone, ""},
		{"169.254.169.253", metaAlone, classLinkLocal},
		{"127.0.0.1", mappedAllow, ""},
		{"::ffff:127.0.0.1", mappedAllow, ""},
		{"10.0.0.1", Policy{AllowPrivate: true}, ""},
		{"fd12::1", Policy{AllowPrivate: true}, ""},
		{"100.64.0.1", Policy{AllowPrivate: true}, ""},
		{"169.254.1.1", Policy{AllowPrivate: true}, ""},
		{"127.0.0.1", Policy{AllowPrivate: true}, classLoopback},
		{"169.254.169.254", Policy{AllowPrivate: true}, classMetadata},
		{"fd00:ec2::254", Policy{AllowPrivate: true}, classMetadata},
		{"0.0.0.0", Policy{AllowPrivate: true}, classUnspecified},
	}
	for _, tc := range cases {
		t.Run(tc.ip, func(t *testing.T) {
			err := tc.policy.Check(netip.MustParseAddr(tc.ip))
			if tc.class == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrBlocked) {
				t.Fatalf("err = %v, want ErrBlocked", err)
			}
			var be *BlockedError
			if !errors.As(err, &be) || be.Class != tc.class {
				t.Fatalf("err = %v, want class %q", err, tc.class)
			}
			if !strings.Contains(err.Error(), tc.class+" address") {
				t.Errorf("message %q does not name the class", err)
			}
		})
	}
	if err := (Policy{}).Check(netip.Addr{}); !errors.Is(err, ErrBlocked) {
		t.Errorf("zero address: err = %v, want ErrBlocked", err)
	}
}

func TestCheckMessage(t *testing.T) {
	for ip, want := range map[string]string{
		"169.254.169.254":  "169.254.169.254 is a cloud metadata address",
		"0.0.0.0":          "0.0.0.0 is an unspecified address",
		"::ffff:127.0.0.1": "::ffff:127.0.0.1 is a loopback address",
		"64:ff9b::7f00:1":  "64:ff9b::7f00:1 is a loopback address (127.0.0.1 inside an IPv6 address)",
	} {
		if err := (Policy{}).Check(netip.MustParseAddr(ip)); err == nil || err.Error() != want {
			t.Errorf("Check(%s) = %v, want %q", ip, err, want)
		}
	}
}

func TestParsePolicy(t *testing.T) {
	cases := []struct {
		in      []string
		want    []string
		wantErr string
	}{
		{nil, nil, ""},
		{[]string{"127.0.0.1", " 10.0.0.0/8 ", "::1", "100.64.0.0/10"}, []string{"127.0.0.1/32", "10.0.0.0/8", "::1/128", "100.64.0.0/10"}, ""},
		{[]string{"::ffff:127.0.0.1"}, []string{"127.0.0.1/32"}, ""},
		{[]string{"::ffff:10.0.0.0/104"}, []string{"10.0.0.0/8"}, ""},
		{[]string{"0.0.0.0/0"}, []string{"0.0.0.0/0"}, ""},
		{[]string{"127.0.0.1", "localhost"}, nil, `"localhost"`},
		{[]string{""}, nil, `allow entry "": empty`},
		{[]string{"10.1.2.3/8"}, nil, "did you mean 10.0.0.0/8?"},
		{[]string{"10.0.0.0/33"}, nil, `"10.0.0.0/33"`},
		{[]string{"fe80::1%eth0"}, nil, "zone"},
		{[]string{"256.0.0.1"}, nil, `"256.0.0.1"`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.in, ","), func(t *testing.T) {
			p, err := ParsePolicy(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range p.Allow {
				got = append(got, a.String())
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("allow = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	cases := []struct{ url, wantErr string }{
		{"http://example.com/", ""},
		{"HTTPS://example.com/x", ""},
		{"ftp://example.com/", `scheme "ftp" refused`},
		{"file:///etc/passwd", `scheme "file" refused`},
		{"gopher://example.com/", `scheme "gopher" refused`},
		{"//example.com/", "no scheme"},
		{"http://user:s3cret@example.com/", "userinfo"},
		{"http:///path", "no host"},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			err = CheckURL(u)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error repeats the password: %v", err)
			}
		})
	}
}

// counting is a test server that counts the requests it gets.
type counting struct {
	*httptest.Server
	hits atomic.Int64
}

func newServer(t *testing.T, h http.HandlerFunc) *counting {
	t.Helper()
	c := &counting{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(c.Close)
	return c
}

func get(t *testing.T, c *http.Client, u string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

var allowLoopback = Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}

func TestClientLoopbackServer(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	// Refused by default, before anything reaches the server.
	_, err := get(t, Policy{}.Client(time.Minute, 5), srv.URL)
	if !errors.Is(err, ErrBlocked) {
		t.Fatalf("default policy: err = %v, want ErrBlocked", err)
	}
	want := fmt.Sprintf("refused to connect to 127.0.0.1:%d: loopback address", port)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("message %q does not contain %q", err, want)
	}
	if n := srv.hits.Load(); n != 0 {
		t.Errorf("server got %d requests", n)
	}

	// Reachable once allowed.
	body, err := get(t, allowLoopback.Client(time.Minute, 5), srv.URL)
	if err != nil || body != "hello" {
		t.Fatalf("allowed: body %q, err %v", body, err)
	}

	// The bare transport guards connections too.
	_, err = get(t, &http.Client{Transport: Policy{}.Transport()}, srv.URL)
	if !errors.Is(err, ErrBlocked) {
		t.Errorf("Transport: err = %v, want ErrBlocked", err)
	}
}

func TestClientLocalhostName(t *testing.T) {
	if _, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", "localhost"); err != nil {
		t.Skipf("localhost does not resolve here: %v", err)
	}
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	// The URL names no address; only the resolved one can be refused.
	_, err := get(t, Policy{}.Client(time.Minute, 5), fmt.Sprintf("http://localhost:%d/", port))
	if !errors.Is(err, ErrBlocked) {
		t.Fatalf("err = %v, want ErrBlocked", err)
	}
	var be *BlockedError
	if !errors.As(err, &be) || be.Class != classLoopback || be.Port != uint16(port) {
		t.Errorf("err = %v, want a loopback refusal on port %d", err, port)
	}
	if n := srv.hits.Load(); n != 0 {
		t.Errorf("server got %d requests", n)
	}
}

func TestClientRedirects(t *testing.T) {
	// A second server on another loopback address, outside the allowed 127.0.0.1/32: the redirect
	// must be refused before it is reached.
	var inner *counting
	if ln, err := net.Listen("tcp", "127.0.0.2:0"); err == nil {
		inner = &counting{}
		inner.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inner.hits.Add(1)
			io.WriteString(w, "internal secret")
		}))
		inner.Listener.Close()
		inner.Listener = ln
		inner.Start()
		t.Cleanup(inner.Close)
	}
	var target atomic.Value
	outer := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to":
			http.Redirect(w, r, target.Load().(string), http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/hop":
			http.Redirect(w, r, "/end", http.StatusMovedPermanently)
		default:
			io.WriteString(w, "end")
		}
	})
	client := allowLoopback.Client(time.Minute, 3)

	cases := []struct {
		name, to, wantErr string
		blocked           bool
	}{
		{"metadata", "http://169.254.169.254/latest/meta-data/", "refused to connect to 169.254.169.254:80: cloud metadata address", true},
		{"mapped loopback", "http://[::ffff:127.0.0.3]:1/", "loopback address", true},
		{"ipv6 loopback", "http://[::1]:1/", "refused to connect to [::1]:1: loopback address", true},
		{"private", "http://10.1.2.3/", "private address", true},
		{"file scheme", "file:///etc/passwd", `redirect to scheme "file" refused`, false},
		{"userinfo", "http://u:pw@127.0.0.1/", "userinfo", false},
	}
	if inner != nil {
		cases = append(cases, struct {
			name, to, wantErr string
			blocked           bool
		}{"other loopback server", inner.URL + "/", "loopback address", true})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			target.Store(tc.to)
			body, err := get(t, client, outer.URL+"/to")
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("body %q, err %v; want an error containing %q", body, err, tc.wantErr)
			}
			if got := errors.Is(err, ErrBlocked); got != tc.blocked {
				t.Errorf("errors.Is(ErrBlocked) = %v, want %v (%v)", got, tc.blocked, err)
			}
			if strings.Contains(err.Error(), ":pw@") {
				t.Errorf("error repeats the password: %v", err)
			}
		})
	}
	if inner != nil && inner.hits.Load() != 0 {
		t.Errorf("the refused server got %d requests", inner.hits.Load())
	}

	if body, err := get(t, client, outer.URL+"/hop"); err != nil || body != "end" {
		t.Errorf("allowed redirect: body %q, err %v", body, err)
	}
	if _, err := get(t, client, outer.URL+"/loop"); err == nil || !strings.Contains(err.Error(), "stopped after 3 redirects") {
		t.Errorf("redirect loop: err = %v", err)
	}
	if _, err := get(t, allowLoopback.Client(time.Minute, 0), outer.URL+"/hop"); err == nil || !strings.Contains(err.Error(), "stopped after 0 redirects") {
		t.Errorf("no redirects allowed: err = %v", err)
	}
}

func TestClientRefusesSchemes(t *testing.T) {
	c := allowLoopback.Client(time.Minute, 3)
	for _, u := range []string{"ftp://127.0.0.1/", "http://user:pw@127.0.0.1:1/"} {
		_, err := get(t, c, u)
		if err == nil {
			t.Errorf("%s: no error", u)
			continue
		}
		if strings.Contains(err.Error(), "pw") {
			t.Errorf("%s: error repeats the password: %v", u, err)
		}
	}
}

func TestTransportSettings(t *testing.T) {
	tr := Policy{}.Transport()
	if tr.Proxy != nil {
		t.Error("transport uses a proxy; the proxy's address would be the one checked")
	}
	if tr.TLSHandshakeTimeout != 10*time.Second || tr.ResponseHeaderTimeout != 20*time.Second {
		t.Errorf("timeouts: TLS %s, header %s", tr.TLSHandshakeTimeout, tr.ResponseHeaderTimeout)
	}
	if tr.MaxResponseHeaderBytes <= 0 || tr.MaxConnsPerHost <= 0 {
		t.Errorf("unbounded: header bytes %d, conns per host %d", tr.MaxResponseHeaderBytes, tr.MaxConnsPerHost)
	}
}
