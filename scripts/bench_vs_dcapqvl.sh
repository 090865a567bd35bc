#!/usr/bin/env bash
# Side by side on the same machine, in the same run: asps's verifier and
# dcap-qvl on the accepted real quotes of ../shared/testdata/dcap, one core
# each (asps: --workers 1; dcap-qvl's verify() is single-threaded), then
# asps on all cores. Prints the ratio of warm throughputs.
#
#   scripts/bench_vs_dcapqvl.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
corpus=../shared/testdata/dcap
python3 -c 'import dcap_qvl' 2>/dev/null || python3 -m pip install --quiet dcap-qvl==0.7.0
go build -o /tmp/asps-bench ./cmd/asps
ncpu=$(nproc)
printf '%-28s %12s %12s %7s %12s %12s %7s\n' case "asps 1 core" "qvl 1 core" ratio "asps ${ncpu} cores" "qvl ${ncpu} procs" ratio
for c in sgx-v3-config-sw-hardening tdx-v4-up-to-date; do
	d=$corpus/$c
	at=$(python3 -c "import json,sys;print(json.load(open('$d/expected.json'))['verify_at'])")
	ours1=$(/tmp/asps-bench bench verify "$d/quote.bin" --collateral "$d/collateral.json" --at "$at" --duration "${secs}s" --workers 1 --json)
	theirs1=$(python3 scripts/bench_vs_dcapqvl.py "$secs" 1 "$d")
	oursN=$(/tmp/asps-bench bench verify "$d/quote.bin" --collateral "$d/collateral.json" --at "$at" --duration "${secs}s" --workers "$ncpu" --json)
	theirsN=$(python3 scripts/bench_vs_dcapqvl.py "$secs" "$ncpu" "$d")
	python3 - "$c" "$ours1" "$theirs1" "$oursN" "$theirsN" <<'PY'
import json, sys
case = sys.argv[1]
o1, t1, on, tn = (json.loads(a) for a in sys.argv[2:6])
r1 = o1["warm_quotes_per_sec"] / t1["quotes_per_sec"]
rn = on["warm_quotes_per_sec"] / tn["quotes_per_sec"]
print(f"{case:28s} {o1['warm_quotes_per_sec']:12.0f} {t1['quotes_per_sec']:12.0f} {r1:6.1f}x {on['warm_quotes_per_sec']:12.0f} {tn['quotes_per_sec']:12.0f} {rn:6.1f}x"
      f"   (asps cold {o1['cold_ms']:.2f} ms, warm {1e6/o1['warm_quotes_per_sec']:.0f} us; dcap-qvl {t1['us_per_quote']:.0f} us)")
PY
done
