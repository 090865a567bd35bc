"""Mutual attestation: the server runs in a (simulated) TEE and is judged by its RA-TLS certificate with dcap-qvl."""

from __future__ import annotations

import pathlib
import ssl
from collections.abc import Iterator

import cbor2
import pytest
from conftest import DevServer, start_dev, stop
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from test_ratls import cert_with

import asps
from asps import attest, ratls

pytest.importorskip("dcap_qvl", reason="dcap-qvl (the attested-server extra) is not installed")


@pytest.fixture(scope="module")
def attested_server(asps_bin: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """`asps dev --attested-server`: the server presents an RA-TLS certificate from its simulated enclave."""
    d = tmp_path_factory.mktemp("attested") / "dev"
    srv = start_dev(asps_bin, d, extra=["--attested-server"])
    yield srv
    stop(srv)


def policy(srv: DevServer, **kw: object) -> ratls.ServerPolicy:
    att = attest.SimAttester(srv.dir)
    base: dict[str, object] = {
        "mr_enclave": attest.DEMO_SERVER_MR_ENCLAVE,
        "collateral": att.collateral(),
        "trust_root": (srv.dir / "pki" / "root.pem").read_bytes(),
    }
    base.update(kw)
    return ratls.ServerPolicy(**base)  # type: ignore[arg-type]


def test_attested_server_fetch(attested_server: DevServer) -> None:
    with asps.Client.dev(attested_server.dir, attested_server=True) as c:
        assert c.fetch(["db-password"])["db-password"] == b"correct horse battery staple"


@pytest.mark.parametrize(
    ("case", "kw", "code", "words"),
    [
        ("another server enclave", {"mr_enclave": bytes(31) + b"\x01"}, "no matching app", "mr_enclave 53b0598c"),
        (
            "a TDX server was expected",
            {"mr_enclave": b"", "mr_td": b"\x01" * 48, "rtmr1": b"\x02" * 48, "rtmr2": b"\x03" * 48},
            "no app for this TEE",
            'the workload is "sgx" and the policy has no "sgx" app',
        ),
        ("quote under the simulator root, judged against Intel's", {"trust_root": b""}, "quote rejected", "dcap-qvl"),
        ("TCB status not allowed", {"tcb_statuses": ("SWHardeningNeeded",)}, "tcb status not allowed", 'tcb status "UpToDate"'),
    ],
)
def test_attack_attested_server_refused(
    attested_server: DevServer, case: str, kw: dict[str, object], code: str, words: str
) -> None:
    c = asps.Client(
        attested_server.addr, server_attestation=policy(attested_server, **kw), attester=attest.SimAttester(attested_server.dir)
    )
    with pytest.raises(asps.ServerAuthError) as ei:
        c.fetch(["demo-key"])
    assert ei.value.code == code, case
    assert words in str(ei.value), case
    assert c._opened == 0, "nothing may be sent to a server that failed attestation"


def test_attack_server_outside_tee_is_not_attested(dev_server: DevServer, attested_server: DevServer) -> None:
    c = asps.Client(dev_server.addr, server_attestation=policy(attested_server), attester=attest.SimAttester(dev_server.dir))
    with pytest.raises(asps.ServerAuthError) as ei:
        c.fetch(["demo-key"])
    assert ei.value.code == "no evidence extension"


def test_server_policy_must_pin_something() -> None:
    with pytest.raises(ValueError, match="name the server's"):
        ratls.ServerPolicy(collateral=b"{}")
    with pytest.raises(ValueError, match="all zeros: a placeholder, not a measurement"):
        ratls.ServerPolicy(mr_enclave=bytes(32), collateral=b"{}")
    with pytest.raises(ValueError, match="pccs_url or collateral"):
        ratls.ServerPolicy(mr_enclave=b"\x01" * 32)


def test_attack_genuine_server_quote_copied_into_another_certificate(attested_server: DevServer) -> None:
    # An impostor copies the genuine server's evidence into a certificate for its own key.
    host, port = attested_server.addr.rsplit(":", 1)
    genuine = ssl.get_server_certificate((host, int(port)))
    value = ratls.inspect(genuine).evidence[0]
    evidence = cbor2.dumps(cbor2.CBORTag(60000, [value.quote, value.claims_buffer]))
    pem, _ = cert_with(evidence)
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    with pytest.raises(asps.ServerAuthError) as ei:
        ratls.verify_server(der, policy(attested_server))
    assert ei.value.code == "evidence does not bind the certificate key"
    assert "pubkey-hash" in str(ei.value)
