#!/usr/bin/env python3
"""Time dcap-qvl (PyPI dcap-qvl, Rust core) on quotes.

dcap-qvl is given the collateral object built once (QuoteCollateralV3.from_json
outside the loop) and re-verifies everything on every verify() call: every
signature, CRL and chain. That is asps's "cold" tier.

  bench_vs_dcapqvl.py SECONDS PROCESSES CASE_DIR...
      one JSON line per corpus case dir (quote.bin, collateral.json,
      expected.json's verify_at)
  bench_vs_dcapqvl.py --files SECONDS PROCESSES QUOTE COLLATERAL_JSON AT_RFC3339 [ROOT_PEM]
      one JSON line for the given files (used by `asps bench verify`)

Each line: {"case", "status", "us_per_quote", "quotes_per_sec"}; with
PROCESSES > 1, that many processes verify at once and quotes_per_sec is their
sum. verify() is single-threaded. Not a test.
"""
import datetime
import json
import multiprocessing
import os
import ssl
import sys
import time

import dcap_qvl


def read_quote(path: str) -> bytes:
    """Raw, hex or base64, as `asps quote verify` reads it."""
    b = open(path, "rb").read()
    t = b.strip()
    try:
        if t and len(t) % 2 == 0:
            return bytes.fromhex(t.decode())
    except ValueError:
        pass
    return b


def timestamp(rfc3339: str) -> int:
    return int(datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp())


def run(name: str, quote_path: str, col_path: str, at: str, root_path: str, duration: float) -> dict:
    quote = read_quote(quote_path)
    col = dcap_qvl.QuoteCollateralV3.from_json(open(col_path).read())
    now = timestamp(at)
    if root_path:  # a simulator root instead of Intel's
        root_der = ssl.PEM_cert_to_DER_cert(open(root_path).read())
        verify = lambda: dcap_qvl.verify_with_root_ca(quote, col, root_der, now)  # noqa: E731
    else:
        verify = lambda: dcap_qvl.verify(quote, col, now)  # noqa: E731
    status = verify().status  # warm-up, and a sanity check
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < duration:
        verify()
        n += 1
    dt = time.perf_counter() - t0
    return {"case": name, "status": status, "us_per_quote": dt / n * 1e6, "quotes_per_sec": n / dt}


def measure(args: tuple, duration: float, procs: int) -> dict:
    if procs <= 1:
        return run(*args, duration)
    with multiprocessing.Pool(procs) as pool:
        rs = pool.starmap(run, [(*args, duration)] * procs)
    out = dict(rs[0])
    out["quotes_per_sec"] = sum(r["quotes_per_sec"] for r in rs)
    out["processes"] = procs
    return out


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] == "--files":
        duration, procs, quote, col, at = float(argv[1]), int(argv[2]), argv[3], argv[4], argv[5]
        root = argv[6] if len(argv) > 6 else ""
        print(json.dumps(measure((quote.split("/")[-1], quote, col, at, root), duration, procs)))
        return
    duration, procs = float(argv[0]), int(argv[1])
    for case_dir in argv[2:]:
        d = case_dir.rstrip("/")
        exp = json.load(open(f"{d}/expected.json"))
        root = f"{d}/root.pem" if os.path.exists(f"{d}/root.pem") else ""
        args = (d.split("/")[-1], f"{d}/quote.bin", f"{d}/collateral.json", exp["verify_at"], root)
        print(json.dumps(measure(args, duration, procs)))


if __name__ == "__main__":
    main()
