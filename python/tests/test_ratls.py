"""RA-TLS certificates across the languages: Python-made read by Go, Go-made and corpus read by Python."""

from __future__ import annotations

import datetime
import hashlib
import json
import pathlib
import random
import subprocess
from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from conftest import CORPUS, DevServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import asps
from asps import attest, ratls

# Fields that `asps ratls inspect --json` and asps.ratls.inspect both report.
HEX_FIELDS = ("mr_enclave", "mr_signer", "report_data", "mr_td", "mr_seam", "nonce")
PLAIN_FIELDS = (
    "oid",
    "format",
    "quote_version",
    "att_key_type",
    "tee",
    "quote_len",
    "isv_prod_id",
    "isv_svn",
    "debug",
    "binds_key",
    "binding",
    "binding_error",
)
TCG_FIELDS = ("cbor_tag", "claims", "pubkey_hash_alg", "pubkey_hash_matches_spki")


def go_inspect(asps_bin: pathlib.Path, pem: bytes, tmp_path: pathlib.Path) -> dict[str, Any]:
    f = tmp_path / f"cert-{hashlib.sha256(pem).hexdigest()[:8]}.pem"
    f.write_bytes(pem)
    r = subprocess.run([str(asps_bin), "ratls", "inspect", str(f), "--json"], capture_output=True, check=False)
    assert r.stdout, r.stderr.decode()
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def assert_same_as_go(py: ratls.Report, go: dict[str, Any]) -> None:
    assert py.key == go["key"]
    assert py.spki_sha256.hex() == go["spki_sha256"]
    assert py.self_signed == go["self_signed"]
    assert [e.oid for e in py.evidence] == [e["oid"] for e in go["evidence"]]
    for pe, ge in zip(py.evidence, go["evidence"], strict=True):
        for k in PLAIN_FIELDS + (TCG_FIELDS if pe.format == "tcg-dice" else ()):
            want = ge.get(k, 0 if k in ("cbor_tag", "pubkey_hash_alg") else "" if k in ("binding", "binding_error") else None)
            got = getattr(pe, k)
            if k == "claims":
                got = got or None
            assert got == want, f"{pe.oid} {k}: python {got!r}, go {want!r}"
        for k in HEX_FIELDS:
            got = getattr(pe, k)
            assert (got.hex() if got else None) == ge.get(k), f"{pe.oid} {k}"


@pytest.mark.parametrize(("nonce", "legacy"), [(None, False), (b"\x01\x02\x03", False), (None, True)])
def test_python_certificate_read_by_go(
    dev_server: DevServer, asps_bin: pathlib.Path, tmp_path: pathlib.Path, nonce: bytes | None, legacy: bool
) -> None:
    c = ratls.new_certificate(attest.SimAttester(dev_server.dir), nonce=nonce, legacy=legacy)
    go = go_inspect(asps_bin, c.cert_pem, tmp_path)
    assert go["key"] == "ecdsa-p256" and go["self_signed"] is True
    tcg = go["evidence"][0]
    assert tcg["oid"] == "2.23.133.5.4.9" and tcg["format"] == "tcg-dice" and tcg["cbor_tag"] == 60000
    assert tcg["binds_key"] is True and tcg["pubkey_hash_matches_spki"] is True
    assert tcg["claims"] == sorted(["asps-domain", "pubkey-hash", "runtime"] + (["nonce"] if nonce else []))
    assert tcg["binding"].endswith("; asps-domain asps-ratls-v1"), tcg["binding"]
    if nonce:
        assert tcg["nonce"] == nonce.hex()
    assert [e["binds_key"] for e in go["evidence"]] == [True] * (2 if legacy else 1)
    assert_same_as_go(ratls.inspect(c.cert_pem), go)


class ZeroReportData(attest.SimAttester):
    """Quotes over 64 zero bytes, whatever is asked: evidence that does not bind the key."""

    def quote(self, report_data: bytes, *, timeout: float | None = None) -> bytes:
        return super().quote(bytes(64), timeout=timeout)


def test_unbound_python_certificate_judged_alike_by_go(
    dev_server: DevServer, asps_bin: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    c = ratls.new_certificate(ZeroReportData(dev_server.dir), legacy=True)
    go = go_inspect(asps_bin, c.cert_pem, tmp_path)
    assert [e["binds_key"] for e in go["evidence"]] == [False, False]
    py = ratls.inspect(c.cert_pem)
    assert "want SHA-256(claims buffer)" in py.evidence[0].binding_error
    assert "want SHA-256(SubjectPublicKeyInfo)" in py.evidence[1].binding_error
    assert_same_as_go(py, go)


def test_go_certificate_read_by_python(gocert_bin: pathlib.Path, asps_bin: pathlib.Path, tmp_path: pathlib.Path) -> None:
    pem = subprocess.run([str(gocert_bin), "-legacy", "-nonce", "a1b2"], capture_output=True, check=True).stdout
    r = ratls.inspect(pem)
    assert r.binds_key
    tcg, legacy = r.evidence
    assert (tcg.format, tcg.binds_key, tcg.runtime, tcg.nonce) == ("tcg-dice", True, "sim", b"\xa1\xb2")
    assert (legacy.format, legacy.binds_key) == ("gramine-legacy", True)
    assert tcg.mr_enclave == attest.DEMO_MR_ENCLAVE
    # Same claims buffer, byte for byte, as this package encodes it.
    spki = (
        x509.load_pem_x509_certificate(pem)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert tcg.claims_buffer == ratls.encode_claims_buffer(spki, nonce=b"\xa1\xb2", runtime="sim")
    assert_same_as_go(r, go_inspect(asps_bin, pem, tmp_path))


CORPUS_CASES = sorted(CORPUS.glob("*.expected.json")) if CORPUS.is_dir() else []


@pytest.mark.skipif(not CORPUS_CASES, reason=f"shared RA-TLS corpus not found at {CORPUS} (../shared/testdata/ratls)")
@pytest.mark.parametrize("expected", CORPUS_CASES, ids=lambda p: p.name)
def test_corpus_certificate(expected: pathlib.Path) -> None:
    want = json.loads(expected.read_text())
    r = ratls.inspect((expected.parent / want["file"]).read_bytes())
    assert r.key == want["key"]
    assert r.spki_sha256.hex() == want["spki_sha256"]
    by_oid = {e.oid: e for e in r.evidence}
    assert sorted(by_oid) == sorted(e["oid"] for e in want["evidence"])
    for we in want["evidence"]:
        ge = by_oid[we["oid"]]
        assert ge.error == ""
        for k, v in we.items():
            if k == "oid":
                continue
            got = getattr(ge, "binds_key" if k == "report_data_binds" else k)
            if isinstance(got, bytes):
                got = got.hex()
            assert got == v, f"{expected.name} {we['oid']} {k}"
    assert r.evidence[0].format == "tcg-dice"  # priority order: TCG first


def cert_with(value: bytes | Callable[[bytes], bytes], *, oid: str = ratls.OID_TCG_DICE_TAGGED_EVIDENCE) -> tuple[bytes, bytes]:
    """A self-signed certificate with one extension of the given value (or value(spki)); returns (PEM, spki)."""
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if callable(value):
        value = value(spki)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), spki


@pytest.fixture(scope="module")
def a_quote(asps_bin: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    d = tmp_path_factory.mktemp("q")
    subprocess.run([str(asps_bin), "sim", "quote", "--out", str(d)], check=True, capture_output=True)
    return (d / "quote.bin").read_bytes()


def test_attack_evidence_for_another_key_does_not_bind(a_quote: bytes) -> None:
    other = hashlib.sha256(b"another key").digest()
    buf = cbor2.dumps({"pubkey-hash": cbor2.dumps([1, other])}, canonical=True)
    pem, _ = cert_with(cbor2.dumps(cbor2.CBORTag(60000, [a_quote, buf])))
    r = ratls.inspect(pem)
    assert not r.binds_key
    assert r.evidence[0].pubkey_hash_matches_spki is False
    assert "does not bind the certificate key: pubkey-hash" in r.evidence[0].binding_error


def test_attack_claims_buffer_not_hashed_by_quote_does_not_bind(a_quote: bytes) -> None:
    # The pubkey-hash names this certificate's key, but the quote's report data commits to something else.
    pem, _ = cert_with(lambda spki: cbor2.dumps(cbor2.CBORTag(60000, [a_quote, ratls.encode_claims_buffer(spki)])))
    rep = ratls.inspect(pem).evidence[0]
    assert rep.pubkey_hash_matches_spki is True
    assert not rep.binds_key
    assert "want SHA-256(claims buffer)" in rep.binding_error


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (b"\x04\x03abc", "ASN.1 OCTET STRING"),
        (cbor2.dumps(cbor2.CBORTag(60001, [b"r", b"\xa0"])), "unsupported evidence: CBOR tag 60001 carries a TEE report"),
        (cbor2.dumps(cbor2.CBORTag(12345, [b"q", b"\xa0"])), "unsupported evidence: CBOR tag 12345"),
        (cbor2.dumps(cbor2.CBORTag(60000, [b"q"])), "array of 1 items"),
        (cbor2.dumps(cbor2.CBORTag(60000, [b"q", b"\x01"])), "claims buffer: CBOR major type 0"),
        (cbor2.dumps(cbor2.CBORTag(60000, [b"q", b"\xa0"])) + b"\x00", "bytes after the CBOR data item"),
    ],
)
def test_malformed_tcg_evidence(value: bytes, words: str) -> None:
    pem, _ = cert_with(value)
    r = ratls.inspect(pem)
    assert not r.binds_key
    assert words in r.evidence[0].error


def test_no_evidence_extension() -> None:
    pem, _ = cert_with(b"x", oid="1.2.3.4")
    with pytest.raises(asps.EvidenceError) as ei:
        ratls.inspect(pem)
    assert ei.value.code == "no evidence extension"
    with pytest.raises(asps.EvidenceError) as ei:
        ratls.inspect(b"not a certificate")
    assert ei.value.code == "malformed evidence"


def test_attack_der_certificate_embedding_pem_is_read_as_itself(dev_server: DevServer) -> None:
    # A DER RA-TLS certificate contains PEM (the PCK chain in its quote): it must
    # not be mistaken for PEM input and the PCK certificate read instead.
    c = ratls.new_certificate(attest.SimAttester(dev_server.dir))
    der = c.cert.public_bytes(serialization.Encoding.DER)
    assert b"-----BEGIN CERTIFICATE-----" in der
    r = ratls.inspect(der)
    assert r.spki_sha256 == ratls.spki_sha256(c.cert)
    assert r.binds_key


def test_certificate_repr_hides_key(dev_server: DevServer) -> None:
    c = ratls.new_certificate(attest.SimAttester(dev_server.dir))
    assert b"PRIVATE KEY" in c.key_pem
    assert "PRIVATE" not in repr(c) and c.key_pem.decode() not in repr(c)


def test_fuzz_evidence_mutations_keep_binding_invariant(a_quote: bytes) -> None:
    """Random byte flips, truncations and insertions in TCG evidence: inspect never raises, and
    whenever it says the key is bound, the binding really holds."""
    _, spki = cert_with(b"\x00")
    buf = ratls.encode_claims_buffer(spki, runtime="sim")
    q = bytearray(a_quote)
    q[368 : 368 + 32] = hashlib.sha256(buf).digest()  # report data (v3 SGX: header 48 + body offset 320)
    good = cbor2.dumps(cbor2.CBORTag(60000, [bytes(q), buf]))
    base = ratls._inspect_one(ratls.OID_TCG_DICE_TAGGED_EVIDENCE, "tcg-dice", False, good, spki)
    assert base.binds_key, base.binding_error or base.error
    rng = random.Random(1)
    for _ in range(3000):
        v = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            op, i = rng.randrange(3), rng.randrange(len(v))
            if op == 0:
                v[i] ^= 1 << rng.randrange(8)
            elif op == 1:
                del v[i:]
                if not v:
                    v = bytearray(b"\xd9")
            else:
                v[i:i] = bytes([rng.randrange(256)])
        rep = ratls._inspect_one(ratls.OID_TCG_DICE_TAGGED_EVIDENCE, "tcg-dice", False, bytes(v), spki)
        if rep.binds_key:
            assert rep.pubkey_hash_matches_spki is True
            assert rep.report_data[:32] == hashlib.sha256(rep.claims_buffer).digest()
            assert cbor2.loads(cbor2.loads(rep.claims_buffer)["pubkey-hash"])[1] == hashlib.sha256(spki).digest()
