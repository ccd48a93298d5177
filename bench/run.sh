#!/usr/bin/env bash
# bench/run.sh — panther against the colly + html-to-markdown baseline on the
# PostgreSQL 15 manual, served from loopback so that the figures measure the
# programs, not the network. Prints one markdown table for BENCHMARKS.md on
# stdout; progress and diagnostics go to stderr.
#
#   bench/run.sh [--runs N] [--concurrency N] [--manual DIR] [--keep]
#
# Throughput figures are the median of N runs; each run does panther cold
# crawl, colly crawl, panther re-crawl back to back, so that background noise
# on the machine falls on all three alike. Search latency and quality are
# measured once, on the database of the last run.
set -euo pipefail

RUNS=3
CONC=8
MANUAL=/usr/share/doc/postgresql-doc-15/html
KEEP=0
usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	--runs) RUNS=${2:?}; shift 2 ;;
	--concurrency) CONC=${2:?}; shift 2 ;;
	--manual) MANUAL=${2:?}; shift 2 ;;
	--keep) KEEP=1; shift ;;
	-h | --help) usage ;;
	*) echo "run.sh: unknown argument $1" >&2; usage ;;
	esac
done
case "$RUNS" in '' | *[!0-9]* | 0) echo "run.sh: --runs wants a positive integer" >&2; exit 2 ;; esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QRELS="$ROOT/bench/testdata/pg15-bookindex.qrels.jsonl"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/panther-bench.XXXXXX")
SERVE_PID=
cleanup() {
	if [ -n "$SERVE_PID" ]; then
		kill "$SERVE_PID" 2>/dev/null || true
		wait "$SERVE_PID" 2>/dev/null || true
	fi
	if [ "$KEEP" = 1 ]; then
		echo "run.sh: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "run.sh: $*" >&2; }

# --- tools ------------------------------------------------------------------
need_pkg() { # command, Debian package
	command -v "$1" >/dev/null 2>&1 && return 0
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		log "installing $2"
		apt-get install -y "$2" >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y "$2" >/dev/null; }
	fi
	command -v "$1" >/dev/null 2>&1 || { log "$1 is missing (apt-get install $2)"; exit 1; }
}
# The shell's `time` keyword cannot report peak RSS; GNU time can.
[ -x /usr/bin/time ] || need_pkg /usr/bin/time time
need_pkg jq jq
[ -f "$MANUAL/index.html" ] || { log "no manual at $MANUAL (apt-get install postgresql-doc-15)"; exit 1; }
[ -f "$QRELS" ] || { log "missing $QRELS (go run ./bench/bookindex -out $QRELS)"; exit 1; }

# --- build ------------------------------------------------------------------
log "building bench/serve and bench/colly"
(cd "$ROOT" && go build -o "$TMP/serve" ./bench/serve)
(cd "$ROOT/bench/colly" && go build -o "$TMP/colly" .)

HAVE_PANTHER=1
if [ -n "${PANTHER:-}" ]; then
	cp "$PANTHER" "$TMP/panther"
elif ! (cd "$ROOT" && go build -o "$TMP/panther" ./cmd/panther) 2>"$TMP/panther-build.log"; then
	HAVE_PANTHER=0
	log "cmd/panther does not build yet; measuring the colly baseline only. First errors:"
	head -n 8 "$TMP/panther-build.log" | sed 's/^/    /' >&2
fi
# Same in-flight requests to the one host for both crawlers; panther's
# per-host cap would otherwise halve its parallelism against colly's.
HOSTCONC=()
if [ "$HAVE_PANTHER" = 1 ] && "$TMP/panther" crawl --help 2>&1 | grep -q -- '--host-concurrency'; then
	HOSTCONC=(--host-concurrency "$CONC")
fi

# --- server -----------------------------------------------------------------
# Read every page once so that no contender pays for a cold disk cache.
cat "$MANUAL"/* >/dev/null
"$TMP/serve" -dir "$MANUAL" >"$TMP/serve.out" 2>"$TMP/serve.err" &
SERVE_PID=$!
for _ in $(seq 50); do
	[ -s "$TMP/serve.out" ] && break
	sleep 0.1
done
BASE=$(head -n 1 "$TMP/serve.out")
[ -n "$BASE" ] || { log "bench/serve did not start:"; cat "$TMP/serve.err" >&2; exit 1; }
SEED="${BASE}index.html"
log "serving $MANUAL at $BASE"

# --- measurements -----------------------------------------------------------
R="$TMP/results"
mkdir -p "$R"
add() { echo "$2" >>"$R/$1"; } # metric, value
median() {
	[ -s "$R/$1" ] || { echo ""; return; }
	sort -g "$R/$1" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
}

# timed NAME CMD... runs CMD with stdout to $TMP/NAME.out and records
# wall seconds and peak RSS (KiB) of the process.
timed() {
	local name=$1
	shift
	if ! /usr/bin/time -f '%e %M' -o "$TMP/$name.time" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"; then
		log "$name failed:"
		tail -n 5 "$TMP/$name.err" | sed 's/^/    /' >&2
		return 1
	fi
	read -r WALL RSS <"$TMP/$name.time"
}
rate() { awk -v p="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", p/s; else print "" }'; }

for run in $(seq "$RUNS"); do
	log "run $run/$RUNS"
	if [ "$HAVE_PANTHER" = 1 ]; then
		rm -f "$TMP"/pg.db*
		if timed cold "$TMP/panther" --db "$TMP/pg.db" crawl "$SEED" --rate 0 --concurrency "$CONC" "${HOSTCONC[@]}" --json; then
			pages=$(jq -r '.fetched' "$TMP/cold.out")
			add cold.pages "$pages"
			add cold.wall "$WALL"
			add cold.rss "$RSS"
			add cold.pps "$(rate "$pages" "$WALL")"
			add cold.failed "$(jq -r '[.failed // {} | .[]] | add // 0' "$TMP/cold.out")"
			add cold.inpps "$(jq -r '.pages_per_sec // empty | round' "$TMP/cold.out")"
			add cold.dbkb "$(du -ck "$TMP"/pg.db* | tail -n 1 | cut -f 1)"
			log "  panther cold:    $pages pages in ${WALL}s, RSS ${RSS} KiB"
		fi
	fi

	rm -rf "$TMP/md"
	if timed colly "$TMP/colly" -out "$TMP/md" -parallelism "$CONC" -json "$SEED"; then
		pages=$(jq -r '.pages' "$TMP/colly.out")
		add colly.pages "$pages"
		add colly.wall "$WALL"
		add colly.rss "$RSS"
		add colly.pps "$(rate "$pages" "$WALL")"
		add colly.fetches "$(jq -r '.fetches' "$TMP/colly.out")"
		log "  colly:           $pages pages in ${WALL}s, RSS ${RSS} KiB"
	fi

	if [ "$HAVE_PANTHER" = 1 ] && [ -f "$TMP/pg.db" ]; then
		if timed recrawl "$TMP/panther" --db "$TMP/pg.db" crawl "$SEED" --rate 0 --concurrency "$CONC" "${HOSTCONC[@]}" --json; then
			pages=$(jq -r '.fetched' "$TMP/recrawl.out")
			add recrawl.pages "$pages"
			add recrawl.wall "$WALL"
			add recrawl.rss "$RSS"
			add recrawl.pps "$(rate "$pages" "$WALL")"
			add recrawl.unchanged "$(jq -r '.unchanged' "$TMP/recrawl.out")"
			add recrawl.inpps "$(jq -r '.pages_per_sec // empty | round' "$TMP/recrawl.out")"
			add recrawl.changed "$(jq -r '(.new // 0) + (.changed // 0)' "$TMP/recrawl.out")"
			log "  panther recrawl: $pages pages in ${WALL}s, RSS ${RSS} KiB"
		fi
	fi
done

SEARCH= EVAL=
if [ "$HAVE_PANTHER" = 1 ] && [ -f "$TMP/pg.db" ]; then
	log "search latency"
	if "$TMP/panther" --db "$TMP/pg.db" bench-search --qrels "$QRELS" --json >"$TMP/search.out" 2>"$TMP/search.err" &&
		jq -e '.p50_ms' "$TMP/search.out" >/dev/null 2>&1; then
		SEARCH=$(cat "$TMP/search.out")
	else
		log "bench-search is not available or failed:"
		tail -n 3 "$TMP/search.err" | sed 's/^/    /' >&2
	fi
	log "quality"
	if "$TMP/panther" --db "$TMP/pg.db" eval --qrels "$QRELS" --base "$BASE" --json >"$TMP/eval.out" 2>"$TMP/eval.err" &&
		jq -e '.queries' "$TMP/eval.out" >/dev/null 2>&1; then
		EVAL=$(cat "$TMP/eval.out")
	else
		log "eval is not available or failed:"
		tail -n 3 "$TMP/eval.err" | sed 's/^/    /' >&2
	fi
fi

# --- report -----------------------------------------------------------------
mib() { if [ -n "$1" ]; then awk -v k="$1" 'BEGIN { printf "%.0f", k/1024 }'; fi; }
or_na() { if [ -n "$1" ]; then echo "$1"; else echo "n/a"; fi; }

CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
NPROC=$(nproc)
GOV=$(go version | awk '{ print $3 }')
PAGES_ON_DISK=$(find "$MANUAL" -maxdepth 1 -name '*.html' | wc -l)
QUERIES=$(wc -l <"$QRELS")

echo
echo "### PostgreSQL 15 manual over loopback ($(date -u +%Y-%m-%d))"
echo
echo "Machine: ${NPROC} × ${CPU:-unknown CPU}, ${GOV}, $(uname -sr). Manual: ${PAGES_ON_DISK} HTML pages"
echo "(Debian postgresql-doc-15) served by bench/serve on 127.0.0.1. Concurrency ${CONC} for both crawlers."
echo "Throughput: median of ${RUNS} run(s); pages/s = pages / wall-clock time of the whole process."
echo
echo "| | pages | wall s | pages/s | peak RSS MiB | notes |"
echo "|---|---:|---:|---:|---:|---|"
if [ "$HAVE_PANTHER" = 1 ]; then
	echo "| panther cold crawl (crawl, extract, chunk, index into SQLite) | $(or_na "$(median cold.pages)") | $(or_na "$(median cold.wall)") | $(or_na "$(median cold.pps)") | $(or_na "$(mib "$(median cold.rss)")") | DB $(or_na "$(mib "$(median cold.dbkb)")") MiB; failed $(or_na "$(median cold.failed)"); $(or_na "$(median cold.inpps)") pages/s by its own clock |"
fi
COLLY_NOTE="$(or_na "$(median colly.fetches)") fetches"
# More fetches than pages: colly's visited check raced and fetched pages twice.
[ "$(median colly.fetches)" != "$(median colly.pages)" ] && COLLY_NOTE="$COLLY_NOTE (colly fetched some pages twice)"
echo "| colly v2.3.0 + html-to-markdown v2 (files only) | $(or_na "$(median colly.pages)") | $(or_na "$(median colly.wall)") | $(or_na "$(median colly.pps)") | $(or_na "$(mib "$(median colly.rss)")") | $COLLY_NOTE |"
if [ "$HAVE_PANTHER" = 1 ]; then
	echo "| panther re-crawl, nothing changed | $(or_na "$(median recrawl.pages)") | $(or_na "$(median recrawl.wall)") | $(or_na "$(median recrawl.pps)") | $(or_na "$(mib "$(median recrawl.rss)")") | unchanged $(or_na "$(median recrawl.unchanged)"); new/changed $(or_na "$(median recrawl.changed)"); $(or_na "$(median recrawl.inpps)") pages/s by its own clock |"
else
	echo
	echo "panther: not measured (cmd/panther did not build)."
fi

if [ -n "$SEARCH" ]; then
	echo
	echo "| search latency, warm, k=10 | queries | p50 ms | p90 ms | p99 ms | max ms |"
	echo "|---|---:|---:|---:|---:|---:|"
	echo "$SEARCH" | jq -r '"| panther bench-search (one process, sequential) | \(.queries) | \(.p50_ms) | \(.p90_ms) | \(.p99_ms) | \(.max_ms) |"'
elif [ "$HAVE_PANTHER" = 1 ]; then
	echo
	echo "Search latency: n/a (panther bench-search missing or failed)."
fi

if [ -n "$EVAL" ]; then
	echo
	echo "Quality against the manual's own index (${QUERIES} qrels from bookindex.html, bench/testdata):"
	echo
	ROWS=$(echo "$EVAL" | jq -r '
		def f: if . == null then "n/a" elif type == "number" then (. * 1000 | round / 1000 | tostring) else tostring end;
		. as $r | ["page", "section"][] as $lvl | select($r[$lvl] != null) |
		"| \($lvl) | \($r[$lvl].queries // $r.queries) | \($r[$lvl]["recall@10"] | f) | \($r[$lvl]["mrr@10"] | f) | \($r[$lvl]["ndcg@10"] | f) | \($r[$lvl]["hit@1"] | f) |"')
	if [ -n "$ROWS" ]; then
		echo "| level | queries | Recall@10 | MRR@10 | nDCG@10 | Hit@1 |"
		echo "|---|---:|---:|---:|---:|---:|"
		echo "$ROWS"
	else
		# An unexpected shape is still worth keeping verbatim.
		echo '```json'
		echo "$EVAL"
		echo '```'
	fi
elif [ "$HAVE_PANTHER" = 1 ]; then
	echo
	echo "Quality: n/a (panther eval missing or failed)."
fi
