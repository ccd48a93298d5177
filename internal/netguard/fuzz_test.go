package netguard

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// FuzzParsePolicy checks that ParsePolicy either names the bad entry or returns prefixes that mean
// what they say: canonical, allowing their own addresses, and never opening a metadata address
// except by naming it alone.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "10.0.0.0/8,::1", "::ffff:127.0.0.1", "0.0.0.0/0", "::/0", "fe80::1%eth0", "10.1.2.3/8", "169.254.169.254"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		entries := strings.Split(in, ",")
		p, err := ParsePolicy(entries)
		if err != nil {
			for _, e := range entries {
				if strings.Contains(err.Error(), strconv.Quote(e)) {
					return
				}
			}
			t.Fatalf("error %q names none of the entries %q", err, entries)
		}
		if len(p.Allow) != len(entries) {
			t.Fatalf("%d prefixes for %d entries", len(p.Allow), len(entries))
		}
		for _, pfx := range p.Allow {
			if !pfx.IsValid() || pfx.Masked() != pfx || pfx.Addr().Is4In6() || pfx.Addr().Zone() != "" {
				t.Fatalf("prefix %s is not canonical", pfx)
			}
			if again, err := netip.ParsePrefix(pfx.String()); err != nil || again != pfx {
				t.Fatalf("prefix %s does not round-trip: %v, %v", pfx, again, err)
			}
			err := p.Check(pfx.Addr())
			var be *BlockedError
			switch {
			case err == nil:
			case errors.As(err, &be) && be.Class == classMetadata && pfx.Bits() < pfx.Addr().BitLen():
			default:
				t.Fatalf("%s refuses %s: %v", pfx, pfx.Addr(), err)
			}
		}
		for _, m := range metadata {
			if p.Check(m) != nil {
				continue
			}
			named := false
			for _, pfx := range p.Allow {
				named = named || (pfx.Addr() == m && pfx.Bits() == m.BitLen())
			}
			if !named {
				t.Fatalf("metadata address %s allowed by %v without being named", m, p.Allow)
			}
		}
	})
}
