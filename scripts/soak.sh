#!/bin/sh
# scripts/soak.sh [--duration 10m] [--clients 64] [--sample 5s]
#
# The chaos setup without faults: steady provisions with fresh evidence
# against 3 replicas; samples RSS, goroutines and open files of every
# replica (their /metrics) every few seconds and prints the samples and
# their growth after warm-up (the first quarter) in a JSON summary.
set -eu
cd "$(dirname "$0")/.."
: "${ASPS_VAULTDEV_BIN:=${XDG_CACHE_HOME:-$HOME/.cache}/asps-vaultdev/vaultdev}" # where scripts/test.sh builds it
if [ ! -x "$ASPS_VAULTDEV_BIN" ]; then
	echo "soak.sh: set ASPS_VAULTDEV_BIN to an OpenBao dev binary (scripts/test.sh builds one; or tools/vaultdev/build.sh OUT)" >&2
	exit 2
fi
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/asps" ./cmd/asps
go build -o "$bin/chaos" ./tools/chaos
"$bin/chaos" --soak --asps "$bin/asps" --vaultdev "$ASPS_VAULTDEV_BIN" --duration 10m --clients 64 "$@"
