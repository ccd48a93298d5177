#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this): installs what the tests need, checks
# formatting and vet, runs every test (including those on the real PostgreSQL manual), then gives
# every fuzz target a short run beyond its seed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
# The MCP clients the owner uses (MCP Inspector, OpenCode), pinned, into .cache/npm-tools.
scripts/setup-npm.sh
export PANTHER_TEST_REQUIRE_NPM=1
# PGlite (PostgreSQL with pgvector, in WebAssembly) from the same folder, for the pgvector tests.
export PANTHER_TEST_PGLITE=${PANTHER_NPM_TOOLS:-$PWD/.cache/npm-tools} PANTHER_TEST_REQUIRE_PGLITE=1
# The real OpenSSH client inside tmux drives the SSH terminal UI.
scripts/setup-tmux.sh
export PANTHER_TEST_REQUIRE_TMUX=1

# Tests that use the real manual fail instead of skipping when this is set, so CI cannot pass by
# silently skipping them.
export PANTHER_TEST_PGDOCS=/usr/share/doc/postgresql-doc-15/html
# The web UI's end-to-end tests fail instead of skipping when Chromium is missing.
export PANTHER_TEST_REQUIRE_BROWSER=1

echo "== gofmt" >&2
unformatted=$(gofmt -l $(git ls-files --cached --others --exclude-standard '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt needed on:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== go vet" >&2
go vet ./...
# The tailnet build (-tags tsnet) is built, vetted and its offline tests run too.
go vet -tags tsnet ./cmd/panther
(cd bench/colly && go vet ./...)

# The PostgreSQL store's tests run against a throwaway cluster on a free loopback port, removed on
# exit; PANTHER_TEST_REQUIRE_POSTGRES makes them fail rather than skip should it be missing.
pgdir=$(mktemp -d /tmp/panther-pg.XXXXXX)
trap 'scripts/pg-cluster.sh stop "$pgdir"' EXIT
pgport=${PANTHER_PG_PORT:-55433}
while (exec 3<>"/dev/tcp/127.0.0.1/$pgport") 2>/dev/null; do pgport=$((pgport + 1)); done
echo "== postgres test cluster on 127.0.0.1:$pgport" >&2
PANTHER_TEST_POSTGRES=$(scripts/pg-cluster.sh start "$pgdir" "$pgport")
export PANTHER_TEST_POSTGRES PANTHER_TEST_REQUIRE_POSTGRES=1

echo "== go test" >&2
go test -count=1 ./...

echo "== tsnet build" >&2
go build -tags tsnet -o /dev/null ./cmd/panther
go test -count=1 -tags tsnet -run 'Tailnet|Tailscale' ./cmd/panther

echo "== nix (offline checks of the package and the NixOS module)" >&2
scripts/nix-check.sh

echo "== fuzz (${FUZZTIME:=10s} per target)" >&2
grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./bench/colly/' | while read -r file; do
	pkg="./$(dirname "${file#./}")"
	for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | cut -d' ' -f2); do
		echo "-- $pkg $target" >&2
		if ! out=$(go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg" 2>&1); then
			if ! scripts/fuzz-deadline-race.sh <<<"$out"; then
				echo "$out" >&2
				exit 1
			fi
			echo "   go's fuzz coordinator failed on its own -fuzztime deadline (golang/go#75804) with no failing input: not counted" >&2
		fi
	done
done
echo "== all tests passed" >&2
