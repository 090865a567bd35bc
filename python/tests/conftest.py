"""Fixtures: the asps binary built from this repository, and `asps dev` servers on random loopback ports."""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from asps import attest

REPO = pathlib.Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "testdata" / "ratls"
if not CORPUS.is_dir():
    CORPUS = REPO / "../shared/testdata/ratls"


def go_build(tmp_path_factory: pytest.TempPathFactory, pkg: str, name: str) -> pathlib.Path:
    """go build -o TMP/NAME PKG, from the repository root."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("go is not on PATH: the tests build Go programs from this repository")
    out = tmp_path_factory.mktemp("bin") / name
    subprocess.run([go, "build", "-o", str(out), pkg], cwd=REPO, check=True)
    return out


@pytest.fixture(scope="session")
def asps_bin(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """go build -o TMP/asps ./cmd/asps, from the repository root."""
    return go_build(tmp_path_factory, "./cmd/asps", "asps")


@pytest.fixture(scope="session")
def gocert_bin(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The helper that prints a certificate made by the Go client (tests/testdata/gocert)."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("go is not on PATH")
    out = tmp_path_factory.mktemp("bin") / "gocert"
    subprocess.run([go, "build", "-o", str(out), "./python/tests/testdata/gocert"], cwd=REPO, check=True)
    return out


@dataclass
class DevServer:
    """A running `asps dev`."""

    addr: str
    pin: str
    dir: pathlib.Path
    proc: subprocess.Popen[bytes]
    log: pathlib.Path


# The demo policy of `asps dev` (devmode.DemoPolicy), plus a secret the demo
# enclave may read that the store does not hold, for the NOT_FOUND refusal.
# The demo enclave requires labelled TCG evidence (binding: tcg-labelled), so
# every fetch here also proves the Python certificate carries the label.
TEST_POLICY = f"""allow_simulated: true
apps:
  - id: demo-enclave
    tee: sgx
    binding: tcg-labelled
    mr_enclave: {attest.DEMO_MR_ENCLAVE.hex()}
    mr_signer: {attest.DEMO_MR_SIGNER.hex()}
    isv_prod_id: 1
    min_isv_svn: 2
    secrets:
      demo-key: demo-key
      db-password: db-password
      missing: not-in-the-store
  - id: demo-td
    tee: tdx
    mr_td: {attest.DEMO_MR_TD.hex()}
    rtmr1: {attest.DEMO_RTMR1.hex()}
    rtmr2: {attest.DEMO_RTMR2.hex()}
    secrets:
      tdx-token: tdx-token
"""


def start_dev(
    asps_bin: pathlib.Path,
    devdir: pathlib.Path,
    *,
    env: dict[str, str] | None = None,
    dir_flag: bool = True,
    extra: list[str] | None = None,
) -> DevServer:
    """Start `asps dev --listen 127.0.0.1:0` and wait for it to write server.addr."""
    devdir.mkdir(parents=True, exist_ok=True)
    log = devdir.parent / (devdir.name + ".log")
    args = [str(asps_bin), "dev", "--listen", "127.0.0.1:0"]
    if dir_flag:
        args += ["--dev-dir", str(devdir)]
    args += extra or []
    with open(log, "wb") as lf:
        proc = subprocess.Popen(args, stdout=lf, stderr=subprocess.STDOUT, env=env)
    addr_file = devdir / "server.addr"
    deadline = time.monotonic() + 60
    while not addr_file.exists() or not addr_file.read_text().endswith("\n"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"asps dev did not start: {log.read_text()}")
        time.sleep(0.05)
    return DevServer(addr_file.read_text().strip(), (devdir / "server.pin").read_text().strip(), devdir, proc, log)


def stop(srv: DevServer) -> None:
    srv.proc.terminate()
    try:
        srv.proc.wait(10)
    except subprocess.TimeoutExpired:
        srv.proc.kill()
        srv.proc.wait()


@pytest.fixture(scope="session")
def dev_server(asps_bin: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """`asps dev` in a temporary directory on a random port, with TEST_POLICY."""
    devdir = tmp_path_factory.mktemp("asps") / "dev"
    devdir.mkdir()
    (devdir / "policy.yaml").write_text(TEST_POLICY)
    srv = start_dev(asps_bin, devdir)
    yield srv
    stop(srv)


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def _asps_bin_env(asps_bin: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASPS_BIN", str(asps_bin))


def sim_quote(asps_bin: pathlib.Path, pki: pathlib.Path, report_data: bytes, tee: str = "sgx", pad: int = 0) -> bytes:
    """A simulated quote over report_data from `asps sim quote`, with pad zero bytes appended."""
    out = pki.parent / f"q-{os.urandom(4).hex()}"
    subprocess.run(
        [str(asps_bin), "sim", "quote", "--pki", str(pki), "--tee", tee, "--report-data", report_data.hex(), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return (out / "quote.bin").read_bytes() + bytes(pad)
