#!/usr/bin/env bash
# Installs what the SSH interface's end-to-end test needs (cmd/panther/sshclient_e2e_test.go): tmux,
# the terminal it reads the screen from, and the real OpenSSH client it logs in with. Debian packages
# only; safe to run again: it installs only what is missing. test.sh runs it and then sets
# PANTHER_TEST_REQUIRE_TMUX=1, so that the test fails rather than skips without them.
set -euo pipefail

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"; else
		echo "setup-tmux: need root (or password-less sudo) to run: $*" >&2
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

missing=()
command -v tmux >/dev/null || missing+=(tmux)
command -v ssh >/dev/null || missing+=(openssh-client)
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup-tmux: installing ${missing[*]} (the SSH interface's end-to-end test)" >&2
	apt_install "${missing[@]}"
fi
command -v tmux >/dev/null && command -v ssh >/dev/null || {
	echo "setup-tmux: tmux or ssh is still missing" >&2
	exit 1
}
