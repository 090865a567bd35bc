"""The Python ServerPolicy judges a server's verified claims as the Go server policy does.

Each test is an attack on the old Python judge, which compared measurements
and a TCB status and nothing else: advisories, SVNs, product ids, TD
attributes, service TDs and simulated evidence were never looked at. The
claims here are what verify_server builds from a verified quote
(ratls.server_claims); the last tests go through a real `asps dev
--attested-server`.
"""

from __future__ import annotations

import os
import pathlib
import ssl
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from conftest import DevServer, start_dev, stop

import asps
from asps import _policy, attest, ratls

E1 = bytes.fromhex("88e2b4e857484d7ae982ab5cfd96f2600ac665b3abf9da2c4ea2f805d5b071cf")
S1 = bytes.fromhex("19b4d48ff0331cb5e14e6870c8205c12cf55b9308b518e3002574b57fc109b27")
T1, R0, R1, R2 = (bytes([b]) * 48 for b in (0x71, 0x0D, 0xE4, 0x1C))
SEPT_VE_DISABLE = (1 << 28).to_bytes(8, "little")
COL = b"{}"


def sgx(**kw: Any) -> _policy.Claims:
    base: dict[str, Any] = {
        "tee": "sgx",
        "tcb_status": "UpToDate",
        "mr_enclave": E1,
        "mr_signer": S1,
        "isv_prod_id": 7,
        "isv_svn": 2,
        "config_id": bytes(64),
    }
    base.update(kw)
    return _policy.Claims(**base)


def tdx(**kw: Any) -> _policy.Claims:
    base: dict[str, Any] = {
        "tee": "tdx",
        "tcb_status": "UpToDate",
        "mr_td": T1,
        "rtmr": (R0, R1, R2, bytes(48)),
        "mr_config_id": bytes(48),
        "mr_owner": bytes(48),
        "mr_owner_config": bytes(48),
        "td_attributes": SEPT_VE_DISABLE,
    }
    base.update(kw)
    return _policy.Claims(**base)


def judge(p: ratls.ServerPolicy, c: _policy.Claims) -> str:
    """The reason the policy refuses c, or "" when it admits it."""
    try:
        _policy.match(p.policy, c)
    except _policy.Denial as d:
        return d.reason
    return ""


def test_attack_python_server_policy_tolerates_every_advisory_of_a_widened_status() -> None:
    p = ratls.ServerPolicy(mr_enclave=E1, collateral=COL, tcb_statuses=("UpToDate", "SWHardeningNeeded"))
    vulnerable = sgx(tcb_status="SWHardeningNeeded", advisory_ids=("INTEL-SA-00615", "INTEL-SA-00828"))
    assert judge(p, vulnerable) == "advisory not allowed"
    named = replace(p, advisory_ids=("intel-sa-00615", "INTEL-SA-00828"))
    assert judge(named, vulnerable) == ""
    assert judge(replace(p, advisory_ids=("INTEL-SA-00615",)), vulnerable) == "advisory not allowed"


@pytest.mark.parametrize(
    ("case", "kw", "claims", "reason"),
    [
        ("an older, vulnerable build", {"mr_enclave": E1, "min_isv_svn": 3}, sgx(isv_svn=2), "no matching app"),
        ("another product of the same signer", {"mr_signer": S1, "isv_prod_id": 8}, sgx(), "no matching app"),
        ("a debug enclave", {"mr_enclave": E1}, sgx(debug=True), "debug workload not allowed"),
        ("an OutOfDate platform", {"mr_enclave": E1}, sgx(tcb_status="OutOfDate"), "tcb status not allowed"),
        ("a TDX server for an SGX policy", {"mr_enclave": E1}, tdx(), "no app for this TEE"),
        ("another loader config", {"mr_enclave": E1, "config_id": b"\x01" * 64}, sgx(), "no matching app"),
        (
            "an old TCB evaluation",
            {"mr_enclave": E1, "min_tcb_evaluation_data_number": 17},
            sgx(tcb_eval_data_number=16),
            "tcb evaluation data number too low",
        ),
        ("an unlabelled certificate", {"mr_enclave": E1, "binding": "tcg-labelled"}, sgx(binding="tcg"), "binding not allowed"),
        ("another runtime", {"mr_enclave": E1, "runtime": "gramine"}, sgx(runtime="occlum"), "no matching app"),
    ],
)
def test_attack_python_server_policy_sgx_judge(case: str, kw: dict[str, Any], claims: _policy.Claims, reason: str) -> None:
    p = ratls.ServerPolicy(collateral=COL, **kw)
    assert judge(p, claims) == reason, case


def test_python_server_policy_admits_the_server_it_names() -> None:
    assert judge(ratls.ServerPolicy(mr_enclave=E1, collateral=COL), sgx()) == ""
    assert judge(ratls.ServerPolicy(mr_signer=S1, isv_prod_id=7, min_isv_svn=2, collateral=COL), sgx()) == ""
    assert judge(ratls.ServerPolicy(mr_enclave=E1.hex(), allow_debug=True, collateral=COL), sgx(debug=True)) == ""
    assert judge(ratls.ServerPolicy(mr_td=T1, rtmr1=R1, rtmr2=R2, collateral=COL), tdx()) == ""


@pytest.mark.parametrize(
    ("case", "kw"),
    [
        ("mr_td alone", {"mr_td": T1}),
        ("mr_td and rtmr0: the cloud's firmware and its configuration", {"mr_td": T1, "rtmr0": R0}),
        ("mr_td and rtmr1: the kernel with any command line and initrd", {"mr_td": T1, "rtmr1": R1}),
        ("mr_td, rtmr0 and rtmr2: any kernel", {"mr_td": T1, "rtmr0": R0, "rtmr2": R2}),
        ("mr_td and host-chosen values", {"mr_td": T1, "mr_config_id": R0, "mr_owner": R1, "mr_owner_config": R2}),
        ("mr_td and the guest-extended rtmr3", {"mr_td": T1, "rtmr3": R1}),
        ("SGX config_id and min_config_svn alone (chosen by the loader)", {"config_id": b"\x01" * 64, "min_config_svn": 2}),
        ("isv_prod_id alone", {"isv_prod_id": 7}),
    ],
)
def test_attack_python_server_policy_pins_no_code(case: str, kw: dict[str, Any]) -> None:
    with pytest.raises(ratls.PolicyError) as ei:
        ratls.ServerPolicy(collateral=COL, **kw)
    assert ei.value.reasons == ("no measurement selector",), f"{case}: {ei.value}"


def test_attack_python_server_policy_td_with_another_command_line() -> None:
    p = ratls.ServerPolicy(mr_td=T1, rtmr1=R1, rtmr2=R2, collateral=COL)
    with pytest.raises(_policy.Denial) as ei:
        _policy.match(p.policy, tdx(rtmr=(R0, R1, b"\x66" * 48, bytes(48))))
    assert ei.value.reason == "no matching app"
    assert [m.field for m in ei.value.mismatches] == ["rtmr2"]


@pytest.mark.parametrize(
    ("case", "claims", "kw", "reason"),
    [
        ("no SEPT_VE_DISABLE: the host can pull private pages", tdx(td_attributes=bytes(8)), {}, "td attribute not allowed"),
        ("no SEPT_VE_DISABLE, allowed", tdx(td_attributes=bytes(8)), {"allow_sept_ve": True}, ""),
        ("a debug TD", tdx(debug=True, td_attributes=(1 | 1 << 28).to_bytes(8, "little")), {}, "debug workload not allowed"),
        (
            "reserved TD-under-debug bit",
            tdx(td_attributes=(1 << 3 | 1 << 28).to_bytes(8, "little")),
            {},
            "td attribute not allowed",
        ),
        ("reserved security bit", tdx(td_attributes=(1 << 12 | 1 << 28).to_bytes(8, "little")), {}, "td attribute not allowed"),
        (
            "MIGRATABLE without a named migration TD",
            tdx(td_attributes=(1 << 29 | 1 << 28).to_bytes(8, "little")),
            {},
            "td attribute not allowed",
        ),
        ("bound to a service TD the policy does not name", tdx(mr_servicetd=b"\x05" * 48), {}, "service td not allowed"),
        ("bound to the service TD the policy names", tdx(mr_servicetd=b"\x05" * 48), {"mr_servicetd": b"\x05" * 48}, ""),
        ("PERFMON and the other OTHER bits are admitted", tdx(td_attributes=(1 << 63 | 1 << 28).to_bytes(8, "little")), {}, ""),
    ],
)
def test_attack_python_server_policy_td_attributes(case: str, claims: _policy.Claims, kw: dict[str, Any], reason: str) -> None:
    p = ratls.ServerPolicy(mr_td=T1, rtmr1=R1, rtmr2=R2, collateral=COL, **kw)
    assert judge(p, claims) == reason, case


def test_attack_python_server_policy_document_admits_simulated_server() -> None:
    doc = f"apps:\n  - id: server\n    tee: sgx\n    mr_enclave: {E1.hex()}\n"
    p = ratls.ServerPolicy.from_document(doc, "yaml", collateral=COL)
    assert judge(p, sgx(simulated=True)) == "simulated evidence not allowed"
    with pytest.raises(ratls.PolicyError, match="allow_simulated admits a simulated server, which only dev mode may do"):
        ratls.ServerPolicy.from_document("allow_simulated: true\n" + doc, collateral=COL)
    dev = ratls.ServerPolicy.from_document("allow_simulated: true\n" + doc, collateral=COL, trust_root=b"root")
    assert judge(dev, sgx(simulated=True)) == ""


def test_server_policy_document_or_keywords_not_both() -> None:
    with pytest.raises(ratls.PolicyError, match="give it alone, without mr_enclave"):
        ratls.ServerPolicy(document=b"apps: []", mr_enclave=E1, collateral=COL)
    with pytest.raises(ratls.PolicyError, match="not both"):
        ratls.ServerPolicy(mr_enclave=E1, mr_td=T1, rtmr1=R1, rtmr2=R2, collateral=COL)


def test_attack_python_server_policy_path_is_fifo(tmp_path: pathlib.Path) -> None:
    fifo = tmp_path / "server-policy.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ratls.PolicyError, match="not a regular file: a FIFO"):
        ratls.ServerPolicy.load(fifo, collateral=COL)  # returns at once: nothing opens the FIFO


# Through a real attested dev server.


@pytest.fixture(scope="module")
def attested(asps_bin: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    pytest.importorskip("dcap_qvl", reason="dcap-qvl (the attested-server extra) is not installed")
    d = tmp_path_factory.mktemp("attested-judge") / "dev"
    srv = start_dev(asps_bin, d, extra=["--attested-server"])
    yield srv
    stop(srv)


def test_server_policy_file_admits_the_attested_dev_server(attested: DevServer, tmp_path: pathlib.Path) -> None:
    pytest.importorskip("yaml", reason="PyYAML reads YAML server policies")
    f = tmp_path / "server-policy.yaml"
    f.write_text(
        f"allow_simulated: true\napps:\n  - id: demo-server\n    tee: sgx\n    mr_enclave: {attest.DEMO_SERVER_MR_ENCLAVE.hex()}\n"
    )
    att = attest.SimAttester(attested.dir)
    p = ratls.ServerPolicy.load(f, collateral=att.collateral(), trust_root=(attested.dir / "pki" / "root.pem").read_bytes())
    with asps.Client(attested.addr, server_attestation=p, attester=att) as c:
        assert c.fetch(["db-password"])["db-password"] == b"correct horse battery staple"


def test_attack_attested_dev_server_refused_by_signer_of_another_product(attested: DevServer) -> None:
    att = attest.SimAttester(attested.dir)
    host = ratls.inspect(ssl.get_server_certificate(tuple_addr(attested.addr))).evidence[0]
    p = ratls.ServerPolicy(
        mr_signer=host.mr_signer,
        isv_prod_id=(host.isv_prod_id or 0) + 1,
        collateral=att.collateral(),
        trust_root=(attested.dir / "pki" / "root.pem").read_bytes(),
    )
    c = asps.Client(attested.addr, server_attestation=p, attester=att)
    with pytest.raises(asps.ServerAuthError) as ei:
        c.fetch(["demo-key"])
    assert ei.value.code == "no matching app"
    assert "isv_prod_id" in str(ei.value)
    # Nothing was sent: no channel opened (the attribute differs between client versions).
    assert getattr(c, "_opened", 0) == 0 and getattr(c, "_channel", None) is None, (
        "nothing may be sent to a server that failed attestation"
    )


def tuple_addr(addr: str) -> tuple[str, int]:
    host, port = addr.rsplit(":", 1)
    return host, int(port)
