package secret

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseOPRef(t *testing.T) {
	tests := []struct {
		in      string
		want    OPRef
		wantErr string
	}{
		{"op://pantherOS/minimax-coding-plan-api/default/apiKey", OPRef{"pantherOS", "minimax-coding-plan-api", "default", "apiKey"}, ""},
		{"op://pantherOS/zai-coding-plan-api/default/baseUrl", OPRef{"pantherOS", "zai-coding-plan-api", "default", "baseUrl"}, ""},
		{"op://pantherOS/tailscale-auth-key/authKey", OPRef{"pantherOS", "tailscale-auth-key", "", "authKey"}, ""},
		{"op://Shared Vault/My Item/api key", OPRef{"Shared Vault", "My Item", "", "api key"}, ""},
		{"op://v.1/i_2/s-3/f.4", OPRef{"v.1", "i_2", "s-3", "f.4"}, ""},
		{"op://abcdefghijklmnopqrstuvwxyz/ITEM/password", OPRef{"abcdefghijklmnopqrstuvwxyz", "ITEM", "", "password"}, ""},
		{"OP://v/i/f", OPRef{}, "does not start with op://"},
		{"env:X", OPRef{}, "does not start with op://"},
		{"op://v/i", OPRef{}, "has 2 path segments"},
		{"op://v", OPRef{}, "has 1 path segments"},
		{"op://", OPRef{}, "has 1 path segments"},
		{"op://v/i/s/f/x", OPRef{}, "has 5 path segments"},
		{"op://v/i/f/", OPRef{}, "the field name is empty"},
		{"op:///i/f", OPRef{}, "the vault name is empty"},
		{"op://v//f", OPRef{}, "the item name is empty"},
		{"op://v/i//f", OPRef{}, "the section name is empty"},
		{"op://v/i/f?attribute=otp", OPRef{}, "query parameters such as ?attribute= are not supported"},
		{"op://v/i/key?ssh-format=openssh", OPRef{}, "query parameters"},
		{"op://v/i/f#x", OPRef{}, "contains '#'"},
		{"op://v/it%20em/f", OPRef{}, `the item name "it%20em" contains '%'`},
		{"op://v/i/pass:word", OPRef{}, `the field name "pass:word" contains ':'`},
		{"op://v/\"i\"/f", OPRef{}, "contains '\"'"},
		{"op://v/i/caf\u00e9", OPRef{}, "contains 'é'"},
		{"op://v/i/f\tx", OPRef{}, `contains '\t'`},
		{"op://v/ item/f", OPRef{}, "begins or ends with a space"},
		{"op://v/i/f ", OPRef{}, "begins or ends with a space"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseOPRef(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseOPRef(%q) = %+v, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.in)) {
					t.Fatalf("error %q does not name the reference", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseOPRef(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			if got.String() != tt.in {
				t.Fatalf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestCredentialName(t *testing.T) {
	for in, want := range map[string]string{
		"op://pantherOS/minimax-coding-plan-api/default/apiKey": "pantherOS.minimax-coding-plan-api.default.apiKey",
		"op://pantherOS/tailscale-auth-key/authKey":             "pantherOS.tailscale-auth-key.authKey",
		"op://Shared Vault/My Item/api key":                     "Shared_Vault.My_Item.api_key",
	} {
		ref, err := ParseOPRef(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := ref.CredentialName(); got != want {
			t.Errorf("CredentialName(%s) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseOPRef(f *testing.F) {
	for _, s := range []string{"op://pantherOS/minimax-coding-plan-api/default/apiKey", "op://v/i/f", "op://a b/c/d/e", "op://v/i/f?attribute=otp", "op:///", "op://v//f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseOPRef(s)
		if err != nil {
			if ref != (OPRef{}) {
				t.Fatalf("error with a non-zero result: %+v", ref)
			}
			return
		}
		for _, seg := range []string{ref.Vault, ref.Item, ref.Field} {
			if seg == "" || strings.ContainsAny(seg, "/?#%") {
				t.Fatalf("ParseOPRef(%q) accepted segment %q", s, seg)
			}
		}
		if ref.String() != s {
			t.Fatalf("String() = %q, want the input %q", ref.String(), s)
		}
		again, err := ParseOPRef(ref.String())
		if err != nil || again != ref {
			t.Fatalf("round trip of %q: %+v, %v", s, again, err)
		}
		if name := ref.CredentialName(); !validCredentialName(name) || strings.Contains(name, " ") {
			t.Fatalf("CredentialName of %q is %q, not a credential name", s, name)
		}
	})
}
