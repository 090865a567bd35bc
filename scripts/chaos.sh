#!/bin/sh
# scripts/chaos.sh [--duration 60s] [--clients N] [more tools/chaos flags]
#
# Loopback only, bounded in time and count: starts a 3-node OpenBao raft
# cluster, a collateral source behind a fault proxy and 3 asps replicas
# sharing one policy, store (all three OpenBao nodes), collateral source
# and server key; drives provisions with fresh evidence while it kills and
# restarts replicas (SIGKILL, SIGTERM), SIGKILLs the OpenBao leader (and
# restarts it: it rejoins), seals an OpenBao node and unseals it, cuts,
# resets and slows the TCP links to OpenBao (Toxiproxy), stalls
# the collateral source (slow, 5xx, garbage), reloads the policy and fills
# one replica's audit disk (a tmpfs: root only, else skipped). Prints a JSON summary last; exits
# non-zero unless 0 failed after retries, 0 wrong secrets, 0 releases
# without an audit record on disk, and at least five kinds of fault.
set -eu
cd "$(dirname "$0")/.."
: "${ASPS_VAULTDEV_BIN:=${XDG_CACHE_HOME:-$HOME/.cache}/asps-vaultdev/vaultdev}" # where scripts/test.sh builds it
if [ ! -x "$ASPS_VAULTDEV_BIN" ]; then
	echo "chaos.sh: set ASPS_VAULTDEV_BIN to an OpenBao dev binary (scripts/test.sh builds one; or tools/vaultdev/build.sh OUT)" >&2
	exit 2
fi
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/asps" ./cmd/asps
go build -o "$bin/chaos" ./tools/chaos
"$bin/chaos" --asps "$bin/asps" --vaultdev "$ASPS_VAULTDEV_BIN" --duration 60s --clients 16 "$@"
