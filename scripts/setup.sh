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

# The PostgreSQL store's tests start a throwaway cluster with these binaries (scripts/pg-cluster.sh).
if [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
	echo "setup: installing postgresql-15 (the PostgreSQL store's tests run a throwaway cluster)" >&2
	apt_install postgresql-15
fi

# The web UI's end-to-end tests drive a headless Chromium (httpapi/ui). Debian's package only: never
# nodejs or npm, whose Debian packages would replace the machine's Node.js.
if ! command -v chromium >/dev/null; then
	echo "setup: installing chromium (the web UI's end-to-end tests)" >&2
	apt_install chromium
fi

# The Nix package and NixOS module are checked offline with nix-instantiate (scripts/nix-check.sh).
scripts/setup-nix.sh
