#!/usr/bin/env python3
"""Time dcap-qvl (PyPI dcap-qvl, Rust core) on the corpus quotes.

Prints one JSON line per case: {"case", "status", "us_per_quote", "quotes_per_sec"}.
Single-threaded: each verify() call runs to completion on one core.
Used by scripts/bench_vs_dcapqvl.sh; not a test.
"""
import datetime
import json
import multiprocessing
import sys
import time

import dcap_qvl


def run(case_dir: str, duration: float) -> dict:
    if True:
        quote = open(f"{case_dir}/quote.bin", "rb").read()
        col = dcap_qvl.QuoteCollateralV3.from_json(open(f"{case_dir}/collateral.json").read())
        exp = json.load(open(f"{case_dir}/expected.json"))
        now = int(datetime.datetime.fromisoformat(exp["verify_at"].replace("Z", "+00:00")).timestamp())
        status = dcap_qvl.verify(quote, col, now).status  # warm-up, and a sanity check
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < duration:
            dcap_qvl.verify(quote, col, now)
            n += 1
        dt = time.perf_counter() - t0
        return {"case": case_dir.rstrip("/").split("/")[-1], "status": status,
                "us_per_quote": dt / n * 1e6, "quotes_per_sec": n / dt}


def main() -> None:
    """ARGS: SECONDS PROCESSES CASE_DIR...; with PROCESSES > 1, that many
    processes verify at once and quotes_per_sec is their sum."""
    duration, procs = float(sys.argv[1]), int(sys.argv[2])
    for case_dir in sys.argv[3:]:
        if procs <= 1:
            print(json.dumps(run(case_dir, duration)))
            continue
        with multiprocessing.Pool(procs) as pool:
            rs = pool.starmap(run, [(case_dir, duration)] * procs)
        out = dict(rs[0])
        out["quotes_per_sec"] = sum(r["quotes_per_sec"] for r in rs)
        out["processes"] = procs
        print(json.dumps(out))


if __name__ == "__main__":
    main()
