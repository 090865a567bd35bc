#!/usr/bin/env python3
"""Verify simulated DCAP cases with dcap-qvl, an independent implementation.

ARGS: CASE_DIR... — each a directory written by sim.WriteCase (Go package
github.com/asps-project/asps/dcap/sim) or `asps sim quote --out DIR`:
quote.bin, collateral.json (dcap-qvl's layout), root.pem (the simulator
root) and expected.json (verify_at: the time to verify at).

Prints one JSON line per case:
  {"case": DIR, "accepted": true, "status": "...", "advisory_ids": [...]}
  {"case": DIR, "accepted": false, "error": "..."}
Exit status 0 unless a case could not be read; a rejected quote is output,
not a failure. The Go test dcap/sim TestDCAPQVLCrossCheck runs this and
compares with asps's verifier.
"""
import datetime
import json
import ssl
import sys

import dcap_qvl


def verify(case_dir: str) -> dict:
    with open(f"{case_dir}/quote.bin", "rb") as f:
        quote = f.read()
    with open(f"{case_dir}/collateral.json") as f:
        collateral = dcap_qvl.QuoteCollateralV3.from_json(f.read())
    with open(f"{case_dir}/root.pem") as f:
        root_der = ssl.PEM_cert_to_DER_cert(f.read())
    with open(f"{case_dir}/expected.json") as f:
        expected = json.load(f)
    at = datetime.datetime.fromisoformat(expected["verify_at"].replace("Z", "+00:00"))
    out = {"case": case_dir}
    try:
        report = dcap_qvl.verify_with_root_ca(quote, collateral, root_der, int(at.timestamp()))
    except ValueError as e:  # dcap-qvl raises ValueError for every rejection
        out.update(accepted=False, error=" ".join(str(e).split()))
        return out
    out.update(accepted=True, status=report.status, advisory_ids=list(report.advisory_ids))
    return out


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    for case_dir in sys.argv[1:]:
        print(json.dumps(verify(case_dir)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
