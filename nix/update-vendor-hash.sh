#!/usr/bin/env bash
# Recomputes nix/vendor.nix after go.mod or go.sum changed: the vendorHash of nix/package.nix
# (buildGoModule with proxyVendor) and the digest of go.mod+go.sum it belongs to, which
# scripts/nix-check.sh compares to catch a stale hash.
#
# It does what buildGoModule's goModules derivation does: `go mod download` into an empty module
# cache, drop cache/download/sumdb, and take the NAR hash of cache/download. Modules come from this
# machine's module cache when they are there, else from the Go module proxy. A `nix build` confirms
# the hash (on a mismatch it prints the right one: put it in nix/vendor.nix).
# Needs go, nix-hash (scripts/setup-nix.sh), base64 and xxd or od.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d /tmp/panther-vendor.XXXXXX)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT

local_cache=$(go env GOMODCACHE)/cache/download
proxy=$(go env GOPROXY)
GOMODCACHE="$tmp/mod" GOPROXY="file://$local_cache,$proxy" GOFLAGS=-modcacherw GOTOOLCHAIN=local \
	go mod download
rm -rf "$tmp/mod/cache/download/sumdb"

hex=$(NIX_CONFIG='build-users-group =' nix-hash --type sha256 "$tmp/mod/cache/download")
sri="sha256-$(printf '%s' "$hex" | sed 's/../\\x&/g' | xargs -0 printf '%b' | base64 -w0)"
sum=$(cat go.mod go.sum | sha256sum | cut -d' ' -f1)

cat >nix/vendor.nix <<NIX
# Written by nix/update-vendor-hash.sh: run it after changing go.mod or go.sum (nix-check.sh fails
# until then). A \`nix build .#panther\` confirms vendorHash; on a mismatch it prints the right one.
{
  # The NAR hash of the Go module cache buildGoModule downloads (proxyVendor = true).
  vendorHash = "$sri";
  # sha256 of go.mod followed by go.sum when vendorHash was computed.
  goModSum = "$sum";
}
NIX
echo "nix/vendor.nix: vendorHash = $sri" >&2
