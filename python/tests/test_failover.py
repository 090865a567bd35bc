"""Failover over several real `asps server` replicas: one killed mid-run, one shedding load, refusals kept.

The replicas share one policy, one secrets file, one collateral file and one
server identity (key and certificate), as a deployment behind several
addresses or one DNS name does.
"""

from __future__ import annotations

import datetime
import ipaddress
import pathlib
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from conftest import TEST_POLICY, DevServer, free_port
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import asps
from asps import attest

DB_PASSWORD = b"correct horse battery staple"
RETRY_HINT_MS = 1000


@dataclass
class Replica:
    addr: str
    proc: subprocess.Popen[bytes]
    log: pathlib.Path

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@dataclass
class Fleet:
    """What every replica shares, and the replicas started so far (stopped at the end)."""

    asps_bin: pathlib.Path
    dev: DevServer
    dir: pathlib.Path
    pin: str
    replicas: list[Replica] = field(default_factory=list)

    def start(self, *extra: str, collateral: bool = True) -> Replica:
        port = free_port()
        n = len(self.replicas)
        log = self.dir / f"replica{n}.log"
        args = [
            str(self.asps_bin),
            "server",
            "--policy",
            str(self.dir / "policy.yaml"),
            "--store",
            f"file:{self.dir / 'secrets.yaml'}",
            "--insecure-simulator-root",
            str(self.dev.dir / "pki" / "root.pem"),
            "--tls-cert",
            str(self.dir / "server.pem"),
            "--tls-key",
            str(self.dir / "server.key"),
            "--state-dir",
            str(self.dir / f"state{n}"),
            "--listen",
            f"127.0.0.1:{port}",
            "--log-format",
            "text",
            *(["--collateral", str(self.dir / "q" / "collateral.json")] if collateral else []),
            *extra,
        ]
        with open(log, "wb") as lf:
            proc = subprocess.Popen(args, stdout=lf, stderr=subprocess.STDOUT)
        r = Replica(f"127.0.0.1:{port}", proc, log)
        self.replicas.append(r)
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                r.kill()
                pytest.fail(f"asps server did not start: {log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return r
            except OSError:
                time.sleep(0.05)

    def client(self, server: str | list[str], **kw: object) -> asps.Client:
        return asps.Client(server, server_pin=self.pin, attester=attest.SimAttester(self.dev.dir), **kw)  # type: ignore[arg-type]


def self_signed(d: pathlib.Path) -> str:
    """A P-256 key and self-signed certificate for 127.0.0.1 and localhost; returns the key pin (hex)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "asps replicas")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (d / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "server.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return asps.ratls.spki_sha256(cert).hex()


@pytest.fixture
def fleet(asps_bin: pathlib.Path, dev_server: DevServer, tmp_path: pathlib.Path) -> Iterator[Fleet]:
    (tmp_path / "policy.yaml").write_text(TEST_POLICY)
    (tmp_path / "secrets.yaml").write_text(f"db-password: {DB_PASSWORD.decode()}\ndemo-key: hex:{'42' * 32}\n")
    subprocess.run(
        [str(asps_bin), "sim", "quote", "--pki", str(dev_server.dir / "pki"), "--out", str(tmp_path / "q")],
        check=True,
        capture_output=True,
    )
    f = Fleet(asps_bin, dev_server, tmp_path, self_signed(tmp_path))
    yield f
    for r in f.replicas:
        r.kill()


class StalledPCCS:
    """A 'PCCS' that accepts connections and never answers: a verification that needs it holds its slot."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.asked = threading.Event()
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            self.asked.set()

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def shedding(fleet: Fleet) -> Iterator[Replica]:
    """A replica that sheds every request: its one slot is held by a verification waiting on a stalled PCCS."""
    pccs = StalledPCCS()
    r = fleet.start(
        "--pccs",
        pccs.url,
        "--max-in-flight",
        "1",
        "--max-waiting",
        "1",
        "--max-wait",
        "1ms",
        "--shed-retry-after",
        f"{RETRY_HINT_MS}ms",
        collateral=False,
    )
    holder = fleet.client(r.addr, timeout=60, retries=1)
    errs: list[BaseException] = []

    def hold() -> None:
        try:
            holder.fetch(["db-password"])
        except asps.AspsError as e:
            errs.append(e)

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    assert pccs.asked.wait(30), f"the holder's verification never reached the PCCS: {errs} {r.log.read_text()}"
    yield r
    r.kill()
    pccs.close()
    t.join(30)
    holder.close()


def test_attack_one_replica_down_stops_provisioning(fleet: Fleet) -> None:
    """A replica killed mid-run (SIGKILL) must not stop provisioning: calls fail over to the others."""
    reps = [fleet.start() for _ in range(3)]
    with fleet.client([r.addr for r in reps], timeout=20) as c:
        assert c.fetch("db-password")["db-password"] == DB_PASSWORD
        reps[1].kill()
        for _ in range(6):  # round robin reaches the dead replica at least once
            assert c.fetch(["db-password"])["db-password"] == DB_PASSWORD
        assert c.retried >= 1, "the dead replica was never tried"
    # A new client whose first address is the dead replica (comma-separated form).
    with fleet.client(f"{reps[1].addr}, {reps[0].addr},{reps[2].addr}", timeout=20) as c:
        for _ in range(3):
            assert c.fetch("db-password")["db-password"] == DB_PASSWORD


def test_attack_all_replicas_down_reports_unavailable(fleet: Fleet) -> None:
    """With every replica down the client gives up within its timeout, UNAVAILABLE, naming an address."""
    addrs = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    c = fleet.client(addrs, timeout=3, retries=4)
    with pytest.raises(asps.UnavailableError) as ei:
        c.fetch("db-password")
    assert ei.value.code == "UNAVAILABLE" and ei.value.transport
    assert any(a in str(ei.value) for a in addrs)


def test_attack_retries_turn_a_refusal_into_a_retry(fleet: Fleet) -> None:
    """PERMISSION_DENIED is a verdict: never retried on another replica, and raised with the server's reason."""
    reps = [fleet.start() for _ in range(2)]
    with fleet.client([r.addr for r in reps], timeout=20) as c, pytest.raises(asps.PermissionDeniedError) as ei:
        c.fetch(["other-app"])
    assert ei.value.code == "PERMISSION_DENIED"
    assert 'secret "other-app" is not one app' in str(ei.value)
    assert c.retried == 0, f"a refusal was retried {c.retried} times"


def test_attack_retries_hide_the_servers_reason(fleet: Fleet, shedding: Replica) -> None:
    """Out of attempts between a dead replica and a shedding one, the error is the server's (overloaded), not 'connection refused'."""
    dead = f"127.0.0.1:{free_port()}"
    c = fleet.client([dead, shedding.addr], timeout=6, retries=2)
    c.connect()
    # Make the order deterministic: the shedding replica first, the dead one last.
    targets = [r.target for r in c._replicas]
    c._next = targets.index(shedding.addr)
    for r in c._replicas:
        r.down_until = 0.0
    c.retried = 0
    with pytest.raises(asps.ResourceExhaustedError) as ei:
        c.fetch("db-password")
    assert c.retried == 1, "both replicas should have been tried"
    assert ei.value.code == "RESOURCE_EXHAUSTED"
    assert "server: overloaded" in str(ei.value)
    assert ei.value.retry_after == RETRY_HINT_MS / 1000


def test_attack_retry_hint_ignored_hammers_a_shedding_server(fleet: Fleet, shedding: Replica) -> None:
    """A shedding server says when to come back (asps-retry-after-ms): the client never retries sooner.

    Counted in attempts: within 2.5 s and a 1 s hint at most two retries fit
    (each waits 1 to 2 s); the client's own backoff alone (50 ms doubling,
    full jitter) would have made at least five.
    """
    c = fleet.client(shedding.addr, timeout=2.5, retries=50)
    with pytest.raises(asps.ResourceExhaustedError) as ei:
        c.fetch("db-password")
    assert "server: overloaded" in str(ei.value)
    assert 1 <= c.retried + 1 <= 3, f"{c.retried + 1} attempts in 2.5 s against a 1 s retry hint"


def test_shedding_replica_fails_over_to_a_free_one(fleet: Fleet, shedding: Replica) -> None:
    """Load shed by one replica is served by another."""
    free = fleet.start()
    with fleet.client([shedding.addr, free.addr], timeout=20) as c:
        for _ in range(4):
            assert c.fetch("db-password")["db-password"] == DB_PASSWORD


def test_dns_target_fails_over_across_its_addresses(fleet: Fleet) -> None:
    """dns:///localhost:PORT: every address of the name is a replica (::1, where it resolves, has no server here)."""
    r = fleet.start()
    port = r.addr.rsplit(":", 1)[1]
    with fleet.client(f"dns:///localhost:{port}", timeout=20) as c:
        for _ in range(3):
            assert c.fetch("db-password")["db-password"] == DB_PASSWORD


@pytest.mark.parametrize(
    "server",
    ["", " , ", "127.0.0.1", "127.0.0.1:1,host", "https://h:1", "dns:///noport", "127.0.0.1:99999"],
)
def test_bad_server_lists_are_refused(server: str) -> None:
    with pytest.raises(ValueError, match="server"):
        asps.Client(server, server_pin="00" * 32)
