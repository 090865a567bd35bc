#!/usr/bin/env bash
# Build the vaultdev test server (an in-process OpenBao, see main.go) to the
# path given as $1. Reuses the normal Go module and build caches, so a second
# build is fast; the first one downloads ~400 MB of modules and compiles
# ~1400 packages (minutes on 2 cores).
#
# Keep the flags in sync with internal/vaulttest (buildArgs) so both share the
# build cache.
set -euo pipefail
out=${1:?usage: build.sh OUTPUT_PATH [go build flags such as -v]}
shift
case $out in /*) ;; *) out=$PWD/$out ;; esac
cd "$(dirname "${BASH_SOURCE[0]}")"
exec go build "$@" -buildvcs=false -trimpath \
	-ldflags "-s -w -X github.com/openbao/openbao/version.fullVersion=2.4.0" \
	-o "$out" .
