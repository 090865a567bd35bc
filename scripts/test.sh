#!/usr/bin/env bash
# The project's one test command (README): builds what the tests need, with
# progress, then runs every Go test and, when python/ is present, the Python
# package's checks (ruff, mypy --strict, pytest against the real binary).
#
#   scripts/test.sh            everything
#   scripts/test.sh --go       Go tests only
#   scripts/test.sh --python   Python checks only
#
# What it builds first, so no test process spends its timeout compiling:
#   OpenBao (tools/vaultdev), the real Vault-API server the store's
#   integration tests talk to. The first build downloads about 2.6 GB of Go
#   modules and compiles about 1,400 packages: 5-10 minutes on 2 cores. Later
#   runs reuse ~/.cache/asps-vaultdev/vaultdev (or $ASPS_VAULTDEV_BIN).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

run_go=1 run_py=1
case "${1:-}" in
"") ;;
--go) run_py=0 ;;
--python) run_go=0 ;;
*) echo "usage: $0 [--go|--python]" >&2; exit 2 ;;
esac

step() { printf '\n== %s\n' "$*" >&2; }

if [ "$run_go" = 1 ]; then
	if [ -z "${ASPS_VAULTDEV_BIN:-}" ]; then
		cache=${XDG_CACHE_HOME:-$HOME/.cache}/asps-vaultdev
		mkdir -p "$cache"
		export ASPS_VAULTDEV_BIN=$cache/vaultdev
		step "build OpenBao for the Vault store tests -> $ASPS_VAULTDEV_BIN"
		if [ ! -x "$ASPS_VAULTDEV_BIN" ]; then
			echo "first build: downloads ~2.6 GB of modules and compiles ~1,400 packages (5-10 min on 2 cores)" >&2
		fi
		start=$SECONDS
		# go build -v names each package it compiles: print a count now and
		# then, so a first build is visibly alive. A warm build prints nothing.
		tools/vaultdev/build.sh "$ASPS_VAULTDEV_BIN.tmp" -v 2>&1 |
			awk '/^go: downloading/ { d++; if (d % 50 == 1) { printf "  downloading modules: %d\n", d; fflush() } next }
			     /^[a-z0-9.\-]+\// || /^[a-z]+$/ { n++; if (n % 100 == 0) { printf "  compiled %d packages\n", n; fflush() } next }
			     { print }' >&2
		mv -f "$ASPS_VAULTDEV_BIN.tmp" "$ASPS_VAULTDEV_BIN"
		echo "  ready in $((SECONDS - start)) s" >&2
	fi
	step "go test ./..."
	go test ./...
fi

if [ "$run_py" = 1 ] && [ -f python/ci.sh ]; then
	step "python/ (ruff, mypy --strict, pytest)"
	bash python/ci.sh
fi
