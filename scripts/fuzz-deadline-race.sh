#!/usr/bin/env bash
# Reads the output of one `go test -fuzz` run that failed, and succeeds when the only failure is the
# Go toolchain's own: with a duration -fuzztime, go1.26's fuzz coordinator can report its deadline
# as "context deadline exceeded" when the time is up (golang/go#75804, fixed in go1.27), more often
# on a loaded machine. A real failure names a failing input (written under testdata/fuzz) or says
# something else, and does not match.
set -euo pipefail
out=$(cat)
if grep -q 'Failing input written' <<<"$out"; then
	exit 1
fi
# The failure lines of `go test`: the FAIL header, the indented message, FAIL, exit status, FAIL pkg.
msgs=$(grep -v -e '^fuzz: ' -e '^--- FAIL: ' -e '^FAIL' -e '^exit status ' -e '^ok ' -e '^[[:space:]]*$' <<<"$out" || true)
[ "$(sed 's/^[[:space:]]*//' <<<"$msgs")" = "context deadline exceeded" ]
