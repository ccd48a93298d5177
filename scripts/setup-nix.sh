#!/usr/bin/env bash
# Installs what scripts/nix-check.sh needs: nix-instantiate, from Debian's nix-bin package. Only the
# evaluator is used (parse and pure evaluation); no daemon, no channels and no nixpkgs, which cannot be
# fetched without network. Safe to run again: it installs nothing when nix-instantiate is already there.
set -euo pipefail

if command -v nix-instantiate >/dev/null 2>&1; then
	exit 0
fi

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"; else
		echo "setup-nix: need root (or password-less sudo) to run: $*" >&2
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

echo "setup-nix: installing nix-bin (nix-instantiate, for scripts/nix-check.sh)" >&2
# --no-install-recommends keeps out nix-setup-systemd: the checks need no nix-daemon.
apt_install nix-bin

if ! command -v nix-instantiate >/dev/null 2>&1; then
	echo "setup-nix: nix-bin is installed but nix-instantiate is not on PATH" >&2
	exit 1
fi
