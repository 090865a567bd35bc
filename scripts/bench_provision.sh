#!/usr/bin/env bash
# The README's provisioning table in one command: `asps bench provision`
# with fresh evidence (a new key, quote and certificate per provision: the
# whole path, the server verifies every quote) and with reused certificates
# (one per client, as a workload process makes; the server's verdict cache
# answers all but each client's first), at 64 and 8 clients, with both load
# generators (grpc: grpc-go's client, a new ClientConn per provision;
# http2: the same handshake and call on a lean HTTP/2 connection). First
# against a server in the bench process (its CPU split from the load
# generator's by goroutine labels), then against a production
# `asps server` process on the simulator root, with an audit file (its CPU
# from /proc, its verdict counts from /metrics). Client and server share
# this machine.
#
#   scripts/bench_provision.sh [SECONDS [RUNS]]    default: 10 s, 2 runs each
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs=${1:-10}
runs=${2:-2}
w=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$w"' EXIT
go build -o "$w/asps" ./cmd/asps
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) before the runs"

printf '%-44s %9s %8s %8s %18s %9s %9s %7s\n' "run" "prov/s" "p50 ms" "p99 ms" "cache/verified" "cli ms/p" "srv ms/p" "cli %"
row() {
	local label=$1 json=$2
	python3 - "$label" "$json" <<'PY'
import json, sys
label, o = sys.argv[1], json.loads(sys.argv[2])
n = max(o["provisions"], 1)
cv = "%s/%s" % (o.get("verdict_cache_answers", "-"), o.get("fresh_quotes_verified", "-"))
srv = o.get("server_cpu_s", 0) + o.get("other_cpu_s", 0) / 2  # the Go runtime's share split evenly in-process
print("%-44s %9.0f %8.2f %8.2f %18s %9.3f %9.3f %6.0f%%" % (label, o["provisions_per_sec"], o["p50_ms"], o["p99_ms"], cv,
      1000 * o["client_cpu_s"] / n, 1000 * srv / n, 100 * o.get("client_cpu_share", 0)))
if o["errors"]:
    print("   %d errors, first: %s" % (o["errors"], o.get("first_error", "")))
PY
}
bench() {
	local label=$1
	shift
	for _ in $(seq "$runs"); do
		row "$label" "$("$w/asps" bench provision --duration "${secs}s" --json "$@")"
	done
}

echo "-- in-process server (asps bench provision without --server)"
bench "fresh evidence, 64 clients, grpc" --clients 64 --fresh-evidence
bench "fresh evidence, 64 clients, http2" --clients 64 --fresh-evidence --client http2
bench "fresh evidence, 8 clients, grpc" --clients 8 --fresh-evidence
bench "fresh evidence, 8 clients, http2" --clients 8 --fresh-evidence --client http2
bench "reused certificates, 64 clients, grpc" --clients 64
bench "reused certificates, 8 clients, grpc" --clients 8

echo "-- production asps server (simulator root, file store, audit file), another process"
"$w/asps" sim quote --pki "$w/dev/pki" --out "$w/sim" >/dev/null
cat >"$w/policy.yaml" <<'YAML'
allow_simulated: true
apps:
  - id: bench
    tee: sgx
    mr_enclave: 1111111111111111111111111111111111111111111111111111111111111111
    mr_signer: 2222222222222222222222222222222222222222222222222222222222222222
    isv_prod_id: 7
    secrets:
      demo-key: demo-key
YAML
echo "demo-key: a bench secret" >"$w/secrets.yaml"
"$w/asps" server --policy "$w/policy.yaml" --store "file:$w/secrets.yaml" \
	--collateral "$w/sim/collateral.json" --insecure-simulator-root "$w/sim/root.pem" \
	--audit "$w/audit.jsonl" --state-dir "$w/state" --listen 127.0.0.1:17543 --metrics-listen 127.0.0.1:19543 \
	--max-conns-per-ip -1 >"$w/server.out" 2>"$w/server.err" &
pid=$!
for _ in $(seq 100); do grep -q 'server key pin' "$w/server.out" 2>/dev/null && break; sleep 0.1; done
pin=$(sed -n 's/^server key pin (give clients --server-pin): //p' "$w/server.out")
me=(--sim-mr-enclave 1111111111111111111111111111111111111111111111111111111111111111
	--sim-mr-signer 2222222222222222222222222222222222222222222222222222222222222222 --sim-isv-prod-id 7)
remote=(--server 127.0.0.1:17543 --server-pin "$pin" --dev-dir "$w/dev" "${me[@]}"
	--metrics-url http://127.0.0.1:19543/metrics --server-pid "$pid")
bench "server process: fresh evidence, 64, http2" --clients 64 --fresh-evidence --client http2 "${remote[@]}"
bench "server process: fresh evidence, 64, grpc" --clients 64 --fresh-evidence "${remote[@]}"
bench "server process: fresh evidence, 8, http2" --clients 8 --fresh-evidence --client http2 "${remote[@]}"
bench "server process: reused certificates, 64, grpc" --clients 64 "${remote[@]}"
echo "machine load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cache/verified: provisions the server's verdict cache answered / quotes it verified in full;"
echo "cli ms/p, srv ms/p: CPU per provision of the load generator and of the server; cli %: the load generator's share of all CPU used"
