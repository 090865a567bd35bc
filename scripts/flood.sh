#!/usr/bin/env bash
# The README's flood figures in one command: a production `asps server`
# (Intel's root, an offline bundle of the corpus's real collateral, the
# example file store and an audit file) on 127.0.0.1:17443, flooded by
# `asps bench flood` (loopback only, bounded), with the server's memory,
# CPU, audit and log growth reported. The corpus (../shared/testdata, or
# $ASPS_TESTDATA) provides the real Intel quote whose PCK chain the forged
# and padded requests tamper with.
#
#   scripts/flood.sh [bench flood flags]   default: the README's counts
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
corpus=${ASPS_TESTDATA:-../shared/testdata}/dcap/sgx-v3-config-sw-hardening
[ -f "$corpus/quote.bin" ] || { echo "flood.sh: no corpus at $corpus" >&2; exit 2; }
[ $# -gt 0 ] || set -- --idle 2000 --amplify 60 --no-cert 1000 --bad-cert 1000 --forged 1000 --padded 1000 --hold 3s
w=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$w"' EXIT
go build -o "$w/asps" ./cmd/asps
"$w/asps" collateral import "$corpus/collateral.json" --out "$w/bundle" >/dev/null
# The publisher of this quote left no trailer on it; a real quote as is.
cp "$corpus/quote.bin" "$w/quote.bin"
"$w/asps" server --policy deploy/examples/policy-file.yaml --store file:deploy/examples/secrets.yaml \
	--collateral-dir "$w/bundle" --listen 127.0.0.1:17443 --metrics-listen 127.0.0.1:19090 \
	--audit "$w/audit.jsonl" --state-dir "$w/state" >"$w/server.out" 2>"$w/server.err" &
pid=$!
for _ in $(seq 50); do grep -q "listening" "$w/server.err" 2>/dev/null && break; sleep 0.1; done
t0=$(awk '{print $14+$15}' /proc/$pid/stat)
"$w/asps" bench flood --server 127.0.0.1:17443 --pid "$pid" --audit "$w/audit.jsonl" --real-quote "$w/quote.bin" "$@"
t1=$(awk '{print $14+$15}' /proc/$pid/stat)
echo "server CPU during the flood: $(( (t1 - t0) * 1000 / $(getconf CLK_TCK) )) ms"
echo "audit file: $(wc -c <"$w/audit.jsonl") bytes; server log: $(wc -c <"$w/server.err") bytes"
