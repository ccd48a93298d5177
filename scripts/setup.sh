#!/usr/bin/env bash
# Installs what the test suite and the benchmarks need on a fresh Debian machine with Go, and nothing
# else: the PostgreSQL manual (Debian's postgresql-doc-15) is the real documentation site the crawler,
# the extractor and the search quality are tested on. Safe to run again: it only installs what is missing.
set -euo pipefail

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"; else
		echo "setup: need root (or password-less sudo) to run: $*" >&2
		exit 1
	fi
}

apt_install() {
	# A fresh machine may have stale package lists: retry once after an update.
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1 || {
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null
	}
}

if [ ! -f /usr/share/doc/postgresql-doc-15/html/index.html ]; then
	echo "setup: installing postgresql-doc-15 (the PostgreSQL manual, the test corpus)" >&2
	apt_install postgresql-doc-15
fi
