#!/usr/bin/env bash
# The README's verification table in one command: asps's three tiers (cold,
# new platform, warm) against dcap-qvl 0.7.0, in the same run on the same
# quotes — the accepted real quotes of ../shared/testdata/dcap and simulated
# SGX v3, TDX v4 and TDX v5 quotes — on one core (--workers 1, one dcap-qvl
# process) and on all cores (--workers $(nproc), as many dcap-qvl processes).
# Samples of every tier and of dcap-qvl are interleaved; each figure is the
# median of SAMPLES.
#
#   scripts/bench_vs_dcapqvl.sh [SECONDS_PER_TIER [SAMPLES]]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-2}
samples=${2:-5}
corpus=../shared/testdata/dcap
python3 -c 'import dcap_qvl' 2>/dev/null || python3 -m pip install --quiet dcap-qvl==0.7.0
python3 -c 'import dcap_qvl'
bin=$(mktemp -d)/asps
go build -o "$bin" ./cmd/asps
work=$(mktemp -d)
trap 'rm -rf "$work" "$(dirname "$bin")"' EXIT
cases=()
for c in sgx-v3-config-sw-hardening tdx-v4-up-to-date; do cases+=("$corpus/$c"); done
for k in "sgx 3" "tdx 4" "tdx 5"; do
	set -- $k
	"$bin" sim quote --tee "$1" --quote-version "$2" --out "$work/sim-$1-v$2" >/dev/null
	cases+=("$work/sim-$1-v$2")
done
ncpu=$(nproc)
printf '%-28s %7s %11s %11s %11s %11s   %s\n' case workers "cold/s" "new plat/s" "warm/s" "dcap-qvl/s" "ratios cold / new platform / warm"
for d in "${cases[@]}"; do
	at=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['verify_at'])" "$d/expected.json")
	root=()
	[ -f "$d/root.pem" ] && root=(--trust-root "$d/root.pem")
	for w in 1 "$ncpu"; do
		out=$("$bin" bench verify "$d/quote.bin" --collateral "$d/collateral.json" --at "$at" "${root[@]}" \
			--workers "$w" --duration "$((secs * samples))s" --samples "$samples" --dcap-qvl yes --json)
		python3 - "$(basename "$d")" "$out" <<'PY'
import json, sys
o = json.loads(sys.argv[2])
print(f"{sys.argv[1]:28s} {o['workers']:7d} {o['cold_quotes_per_sec']:11.0f} {o['new_platform_quotes_per_sec']:11.0f} {o['warm_quotes_per_sec']:11.0f} {o['dcap_qvl_quotes_per_sec']:11.0f}   "
      f"{o['cold_vs_dcap_qvl']:.2f}x / {o['new_platform_vs_dcap_qvl']:.1f}x / {o['warm_vs_dcap_qvl']:.1f}x  (median of {o['samples']})")
PY
	done
done
