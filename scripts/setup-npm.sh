#!/usr/bin/env bash
# Installs the real MCP clients that e2e/mcpclients drives panther with, at pinned versions, into a
# project-local folder (.cache/npm-tools, or $PANTHER_NPM_TOOLS): the MCP Inspector (its CLI mode)
# and OpenCode; and PGlite with pgvector behind its wire-protocol server, which the postgres
# package's pgvector tests talk to (Debian's PostgreSQL 15 has no pgvector). Uses the machine's Node.js and npm and never installs Debian's nodejs or npm, which
# would replace them. Safe to run again: it installs only what is missing or at another version.
#
# OpenCode's npm package carries its binary in per-platform optional dependencies
# (opencode-linux-x64 and the like), so nothing is downloaded from outside the npm registry.
set -euo pipefail

# Pinned: bump deliberately, after running e2e/mcpclients with the new versions.
# The Inspector 2.x declares node >=22.19 in its engines; its CLI mode works on the Node 20 these
# machines have, which e2e/mcpclients checks (npm prints an EBADENGINE warning, nothing more).
INSPECTOR_VERSION=2.12.0
OPENCODE_VERSION=1.18.33
PGLITE_VERSION=0.5.14
PGLITE_SOCKET_VERSION=0.2.17
PGLITE_PGVECTOR_VERSION=0.0.15 # the version pglite-socket 0.2.17 names as its peer

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${PANTHER_NPM_TOOLS:-$root/.cache/npm-tools}

for tool in node npm; do
	if ! command -v "$tool" >/dev/null; then
		echo "setup-npm: $tool is not installed; it comes with the machine's Node.js (do not apt-get install nodejs or npm)" >&2
		exit 1
	fi
done
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
	echo "setup-npm: Node.js $(node --version) is too old; the MCP clients need Node.js 20 or later" >&2
	exit 1
fi

# installed PACKAGE prints the version installed in $dir, or nothing.
installed() {
	local pj="$dir/node_modules/$1/package.json"
	[ -f "$pj" ] && node -p "require(process.argv[1]).version" "$pj" 2>/dev/null || true
}

want=()
[ "$(installed @modelcontextprotocol/inspector)" = "$INSPECTOR_VERSION" ] || want+=("@modelcontextprotocol/inspector@$INSPECTOR_VERSION")
[ "$(installed opencode-ai)" = "$OPENCODE_VERSION" ] || want+=("opencode-ai@$OPENCODE_VERSION")
[ "$(installed @electric-sql/pglite)" = "$PGLITE_VERSION" ] || want+=("@electric-sql/pglite@$PGLITE_VERSION")
[ "$(installed @electric-sql/pglite-socket)" = "$PGLITE_SOCKET_VERSION" ] || want+=("@electric-sql/pglite-socket@$PGLITE_SOCKET_VERSION")
[ "$(installed @electric-sql/pglite-pgvector)" = "$PGLITE_PGVECTOR_VERSION" ] || want+=("@electric-sql/pglite-pgvector@$PGLITE_PGVECTOR_VERSION")
if [ ${#want[@]} -eq 0 ] && [ -x "$dir/node_modules/.bin/mcp-inspector" ] && [ -x "$dir/node_modules/.bin/opencode" ]; then
	exit 0
fi

mkdir -p "$dir"
# A package.json of its own keeps npm from walking up into a parent folder's.
[ -f "$dir/package.json" ] || echo '{"name": "panther-npm-tools", "private": true}' >"$dir/package.json"
echo "setup-npm: installing ${want[*]:-the MCP clients again} into $dir" >&2
# The npm cache is a throwaway folder beside the tools, so that the install leaves nothing in the
# user's home; it is removed afterwards, as it would double the space (OpenCode's binaries are large).
npm install --prefix "$dir" --cache "$dir/.npm-cache" --save-exact --no-audit --no-fund --loglevel=error \
	"@modelcontextprotocol/inspector@$INSPECTOR_VERSION" "opencode-ai@$OPENCODE_VERSION" \
	"@electric-sql/pglite@$PGLITE_VERSION" "@electric-sql/pglite-socket@$PGLITE_SOCKET_VERSION" \
	"@electric-sql/pglite-pgvector@$PGLITE_PGVECTOR_VERSION" >&2
rm -rf "$dir/.npm-cache"

for bin in mcp-inspector opencode pglite-server; do
	if [ ! -x "$dir/node_modules/.bin/$bin" ]; then
		echo "setup-npm: $bin is missing from $dir/node_modules/.bin after the install" >&2
		exit 1
	fi
done
# OpenCode makes its config and data folders under HOME even for --version: give it a throwaway one.
home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
if ! HOME=$home XDG_CONFIG_HOME=$home/.config XDG_DATA_HOME=$home/.local/share XDG_CACHE_HOME=$home/.cache \
	XDG_STATE_HOME=$home/.local/state "$dir/node_modules/.bin/opencode" --version >/dev/null 2>&1; then
	echo "setup-npm: the opencode binary does not run here ($(uname -sm)); npm may have picked no platform package" >&2
	exit 1
fi
