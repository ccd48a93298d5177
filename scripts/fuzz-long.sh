#!/usr/bin/env bash
# Long fuzzing runs, for the figures in BENCHMARKS.md (CI gives each target 10 s in scripts/test.sh).
# Usage: scripts/fuzz-long.sh [DURATION=10m] [JOBS=2] [OUTDIR=fuzz-results]
# Runs every Fuzz target for DURATION, JOBS targets at a time with one fuzzing worker each, and
# writes one log per target plus a summary (last progress line: execs, new interesting inputs).
# A failing input is written by Go under the package's testdata/fuzz/<target>/; keep it as a seed.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10m}
jobs=${2:-2}
out=${3:-fuzz-results}
mkdir -p "$out"

targets=$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./bench/colly/' | sort | while read -r file; do
	for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | cut -d' ' -f2); do
		echo "./$(dirname "${file#./}") $target"
	done
done)

# Built before the runs start, so the DURATION of each run is spent fuzzing, not compiling.
echo "$targets" | cut -d' ' -f1 | sort -u | xargs go test -run='^$' -count=1 >/dev/null

run_one() {
	local pkg=$1 target=$2 log
	log="$out/$(echo "${pkg#./}" | tr / _)-$target.log"
	if go test -run='^$' -fuzz="^${target}\$" -fuzztime="$duration" -parallel=1 "$pkg" >"$log" 2>&1; then
		status=ok
	elif scripts/fuzz-deadline-race.sh <"$log"; then
		status="ok (go's own deadline race at the end, golang/go#75804)"
	else
		status=FAIL
	fi
	printf '%s\t%s\t%s\t%s\n' "$status" "$pkg" "$target" "$(grep -o 'elapsed: .*' "$log" | tail -1)"
}
export -f run_one
export duration out
echo "$targets" | xargs -P "$jobs" -L1 bash -c 'run_one "$0" "$1"' | tee "$out/summary.tsv"
! grep -q '^FAIL' "$out/summary.tsv"
