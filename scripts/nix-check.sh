#!/usr/bin/env bash
# What can be checked of the Nix files (flake.nix, nix/) without network, where nixpkgs cannot be
# fetched: nix-instantiate (scripts/setup-nix.sh installs it) parses every .nix file and evaluates
# the tests of nix/tests/ — the module's logic (nix/lib.nix), the module and the flake against a
# stand-in for nixpkgs, the package's build arguments — then builds panther from exactly the files
# the package's source filter keeps, with the package's flags, and has that binary load the config
# file the module writes for each example host. `nix flake check` on a machine with network does the
# rest (the real module system, the real build, a VM running the service): see nix/tests/nixos.nix.
#
# PANTHER_BIN=path skips the build and checks the configs with that binary instead.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nix-instantiate >/dev/null 2>&1; then
	echo "nix-check: nix-instantiate is missing; run scripts/setup-nix.sh" >&2
	exit 1
fi
if ! command -v jq >/dev/null 2>&1; then
	echo "nix-check: jq is missing (apt-get install jq)" >&2
	exit 1
fi

# No daemon, no build users and no store writes: only parsing and pure evaluation.
export NIX_CONFIG='build-users-group ='
nixeval() { nix-instantiate --readonly-mode --eval --strict "$@"; }

tmp=$(mktemp -d /tmp/panther-nix-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

echo "== nix: parse" >&2
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	files=$(git ls-files --cached --others --exclude-standard '*.nix')
else
	files=$(find . -name '*.nix' -not -path './.git/*')
fi
n=0
for f in $files; do
	nix-instantiate --parse "$f" >/dev/null
	n=$((n + 1))
done
echo "parsed $n files" >&2

echo "== nix: tests" >&2
for t in lib module package flake; do
	out=$(nixeval "nix/tests/$t-test.nix")
	case "$out" in
	'"ok: '*) echo "$out" >&2 ;;
	*)
		echo "nix-check: nix/tests/$t-test.nix did not pass: $out" >&2
		exit 1
		;;
	esac
done

echo "== nix: vendorHash" >&2
fresh=$(nixeval --expr '(import ./nix/vendor.nix).goModSum == builtins.hashString "sha256" (builtins.readFile ./go.mod + builtins.readFile ./go.sum)')
if [ "$fresh" != true ]; then
	echo "nix-check: go.mod or go.sum changed since nix/vendor.nix was written, so nix/package.nix's vendorHash is stale." >&2
	echo "  Run nix/update-vendor-hash.sh (it needs the Go module proxy) and commit nix/vendor.nix." >&2
	exit 1
fi
echo "nix/vendor.nix matches go.mod and go.sum" >&2

echo "== nix: build from the package's source" >&2
nixeval --json nix/tests/build-args.nix >"$tmp/build.json"
if [ -n "${PANTHER_BIN:-}" ]; then
	bin=$PANTHER_BIN
	echo "using $bin" >&2
else
	mkdir "$tmp/src"
	jq -r '.files[]' "$tmp/build.json" | tar -cf - -T - | tar -xf - -C "$tmp/src"
	mapfile -t ldflags < <(jq -r '.ldflags[]' "$tmp/build.json")
	tags=$(jq -r '.tags | join(",")' "$tmp/build.json")
	version=$(jq -r '.version' "$tmp/build.json")
	bin=$tmp/panther
	# As buildGoModule builds: -trimpath, the package's ldflags and tags, cgo as it says.
	for pkg in $(jq -r '.subPackages[]' "$tmp/build.json"); do
		(cd "$tmp/src" && CGO_ENABLED=$(jq -r .cgo "$tmp/build.json") GOFLAGS=-trimpath \
			go build -tags="$tags" -ldflags="${ldflags[*]}" -o "$bin" "./$pkg")
	done
	# The package's install check.
	"$bin" --version | grep -F -- "$version" >/dev/null
	echo "built from $(jq '.files | length' "$tmp/build.json") files: $("$bin" --version)" >&2
fi

echo "== nix: panther loads the config the module writes" >&2
nixeval --json nix/tests/example-configs.nix >"$tmp/configs.json"
for name in $(jq -r 'keys[]' "$tmp/configs.json"); do
	jq -r --arg n "$name" '.[$n]' "$tmp/configs.json" >"$tmp/$name.toml"
	mkdir -p "$tmp/home-$name"
	# config check parses and validates every key without resolving secret references (which name
	# files only the host has); a key or value it refuses would stop the service.
	if out=$(HOME="$tmp/home-$name" "$bin" config check "$tmp/$name.toml" 2>&1 >/dev/null); then
		echo "example $name: accepted" >&2
		continue
	fi
	echo "nix-check: panther refuses the config the module writes for example $name:" >&2
	echo "$out" >&2
	cat -n "$tmp/$name.toml" >&2
	exit 1
done
echo "== nix: all checks passed" >&2
