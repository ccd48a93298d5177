#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this): installs what the tests need, checks
# formatting and vet, runs every test (including those on the real PostgreSQL manual), then gives
# every fuzz target a short run beyond its seed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

# Tests that use the real manual fail instead of skipping when this is set, so CI cannot pass by
# silently skipping them.
export PANTHER_TEST_PGDOCS=/usr/share/doc/postgresql-doc-15/html

echo "== gofmt" >&2
unformatted=$(gofmt -l $(git ls-files --cached --others --exclude-standard '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt needed on:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== go vet" >&2
go vet ./...
(cd bench/colly && go vet ./...)

echo "== go test" >&2
go test -count=1 ./...

echo "== fuzz (${FUZZTIME:=10s} per target)" >&2
grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./bench/colly/' | while read -r file; do
	pkg="./$(dirname "${file#./}")"
	for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | cut -d' ' -f2); do
		echo "-- $pkg $target" >&2
		if ! out=$(go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg" 2>&1); then
			echo "$out" >&2
			exit 1
		fi
	done
done
echo "== all tests passed" >&2
