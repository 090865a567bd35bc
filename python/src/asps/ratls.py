"""RA-TLS certificates: make one for this workload, and read any.

A certificate made here is what the Go client makes (``ratls.NewCertificate``):
a fresh ECDSA key, and a self-signed X.509 certificate whose TCG DICE evidence
extension (OID 2.23.133.5.4.9, "tcg-dice-conceptual-message-wrapper") holds the
CBOR data item ``60000([quote, claims-buffer])`` with no ASN.1 wrapping. The
claims buffer is the deterministically encoded map
``{"pubkey-hash": bstr .cbor [1, SHA-256(spki)], "runtime": bstr}`` (plus
``"nonce"`` when given) and the quote's report data is
``SHA-256(claims-buffer) ‖ 0³²``, so the quote commits to the key the TLS
handshake proves possession of. The Go server verifies it unchanged.

:func:`inspect` reads RA-TLS certificates of that format and of the legacy
raw-quote formats (Gramine, Intel SGX SDK, Occlum), without verifying any
quote: it says what each evidence extension carries and whether its quote's
report data binds the certificate key.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import io
import json
import os
import secrets as _secrets
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cbor2
from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import _policy
from ._policy import Denial, LoadError, PolicyError
from ._quote import QuoteError, parse_quote
from .errors import EvidenceError, ServerAuthError

if TYPE_CHECKING:
    from .attest import Attester

__all__ = [
    "OID_GRAMINE_LEGACY",
    "OID_GRAMINE_LEGACY_INTENDED",
    "OID_OCCLUM_QUOTE",
    "OID_SGX_SDK_QUOTE",
    "OID_TCG_DICE_TAGGED_EVIDENCE",
    "Certificate",
    "Denial",
    "EvidenceReport",
    "LoadError",
    "PolicyError",
    "Report",
    "ServerPolicy",
    "encode_claims_buffer",
    "inspect",
    "new_certificate",
    "spki_sha256",
    "verify_server",
]

OID_TCG_DICE_TAGGED_EVIDENCE = "2.23.133.5.4.9"
OID_GRAMINE_LEGACY = "0.6.9.42.840.113741.1337.6"
OID_GRAMINE_LEGACY_INTENDED = "1.2.840.113741.1337.6"
OID_SGX_SDK_QUOTE = "1.2.840.113741.1.13.1"
OID_OCCLUM_QUOTE = "1.2.840.113741.1"

FORMAT_TCG = "tcg-dice"
# The recognised evidence extensions in priority order (TCG first), as Go's ratls.
_EVIDENCE_OIDS: tuple[tuple[str, str], ...] = (
    (OID_TCG_DICE_TAGGED_EVIDENCE, FORMAT_TCG),
    (OID_GRAMINE_LEGACY, "gramine-legacy"),
    (OID_GRAMINE_LEGACY_INTENDED, "gramine-legacy"),
    (OID_SGX_SDK_QUOTE, "sgx-sdk-legacy"),
    (OID_OCCLUM_QUOTE, "occlum-legacy"),
)

TAG_INTEL_TEE_QUOTE = 60000
TAG_INTEL_TEE_REPORT = 60001
TAG_INTEL_SGX_LEGACY_REPORT = 60002
HASH_SHA256, HASH_SHA384, HASH_SHA512 = 1, 7, 8
MAX_EVIDENCE_SIZE = 64 << 10

_HASH_BY_ID: dict[int, tuple[str, Callable[[bytes], bytes]]] = {
    HASH_SHA256: ("sha-256", lambda b: hashlib.sha256(b).digest()),
    HASH_SHA384: ("sha-384", lambda b: hashlib.sha384(b).digest()),
    HASH_SHA512: ("sha-512", lambda b: hashlib.sha512(b).digest()),
}


def spki_sha256(cert: x509.Certificate) -> bytes:
    """SHA-256 of the certificate's DER SubjectPublicKeyInfo: the server pin ``asps dev`` prints."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


DOMAIN_CERTIFICATE = "asps-ratls-v1"
"""The ``asps-domain`` claim of an asps RA-TLS certificate's evidence (as the Go client writes it).

Apps whose policy sets ``binding: tcg-labelled`` accept only evidence that carries it,
with report data exactly SHA-256(claims buffer) followed by zeros.
"""


def encode_claims_buffer(
    spki: bytes, *, nonce: bytes | None = None, runtime: str = "", domain: str = DOMAIN_CERTIFICATE
) -> bytes:
    """The interoperable claims buffer for a key: pubkey-hash (SHA-256 of spki), nonce, runtime, asps-domain."""
    entry = cbor2.dumps([HASH_SHA256, hashlib.sha256(spki).digest()], canonical=True)
    claims: dict[str, bytes] = {"pubkey-hash": entry}
    if nonce is not None:
        claims["nonce"] = bytes(nonce)
    if runtime:
        claims["runtime"] = runtime.encode()
    if domain:
        claims["asps-domain"] = domain.encode()
    return cbor2.dumps(claims, canonical=True)


@dataclass(frozen=True, repr=False)
class Certificate:
    """A fresh RA-TLS certificate and its private key (both PEM).

    The key never leaves the process; ``repr`` does not show it.
    """

    cert_pem: bytes
    key_pem: bytes
    cert: x509.Certificate

    def __repr__(self) -> str:
        return f"Certificate(spki_sha256={spki_sha256(self.cert).hex()}, key=<hidden>)"


def new_certificate(
    attester: Attester,
    *,
    nonce: bytes | None = None,
    legacy: bool = False,
    validity: datetime.timedelta = datetime.timedelta(hours=24),
    subject_cn: str = "asps RA-TLS",
    timeout: float | None = None,
) -> Certificate:
    """Make a fresh P-256 key and a self-signed certificate whose TCG evidence carries a quote committing to it.

    ``legacy`` adds Gramine's legacy raw-quote extension (a second quote, over
    ``SHA-256(spki) ‖ 0³²``) for verifiers that read only that format.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    claims_buf = encode_claims_buffer(spki, nonce=nonce, runtime=attester.runtime)
    quote = attester.quote(hashlib.sha256(claims_buf).digest().ljust(64, b"\0"), timeout=timeout)
    value = cbor2.dumps(cbor2.CBORTag(TAG_INTEL_TEE_QUOTE, [quote, claims_buf]), canonical=True)
    exts: list[tuple[str, bytes]] = [(OID_TCG_DICE_TAGGED_EVIDENCE, value)]
    if legacy:
        exts.append((OID_GRAMINE_LEGACY, attester.quote(hashlib.sha256(spki).digest().ljust(64, b"\0"), timeout=timeout)))
    for oid, v in exts:
        if len(v) > MAX_EVIDENCE_SIZE:
            raise EvidenceError(
                f"ratls: new certificate: evidence extension {oid} is {len(v)} bytes, limit {MAX_EVIDENCE_SIZE}",
                code="evidence too large",
            )
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_secrets.randbits(127) + 1)
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + validity)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    for oid, v in exts:
        builder = builder.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), v), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return Certificate(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        cert=cert,
    )


@dataclass
class EvidenceReport:
    """One evidence extension, decoded but not verified (field names as ``asps ratls inspect --json``)."""

    oid: str
    format: str
    critical: bool
    size: int
    error: str = ""
    """Why the extension or its quote does not decode; the fields below are then partly empty."""
    quote: bytes = field(default=b"", repr=False)
    quote_version: int = 0
    att_key_type: int = 0
    tee: str = ""
    quote_len: int = 0
    mr_enclave: bytes = b""
    mr_signer: bytes = b""
    isv_prod_id: int | None = None
    isv_svn: int | None = None
    mr_td: bytes = b""
    rtmr: tuple[bytes, ...] = ()
    """RTMR0-3 of a TD quote (empty for SGX)."""
    mr_seam: bytes = b""
    debug: bool = False
    report_data: bytes = b""
    cbor_tag: int = 0
    claims_buffer: bytes = field(default=b"", repr=False)
    """The claims buffer the quote's report data hashes (TCG format)."""
    claims: list[str] = field(default_factory=list)
    pubkey_hash_alg: int = 0
    pubkey_hash_matches_spki: bool | None = None
    nonce: bytes | None = None
    runtime: str = ""
    domain: str = ""
    """The ``asps-domain`` claim (``asps-ratls-v1`` in asps certificates), "" when absent."""
    binds_key: bool = False
    """True when the quote's report data commits to the certificate key."""
    binding: str = ""
    binding_error: str = ""


@dataclass
class Report:
    """A certificate's evidence, in verification priority order (TCG first)."""

    subject: str
    key: str
    spki_sha256: bytes
    self_signed: bool
    evidence: list[EvidenceReport]

    @property
    def binds_key(self) -> bool:
        """True when the first (highest-priority) evidence binds the certificate key."""
        return bool(self.evidence) and self.evidence[0].binds_key


def _key_name(spki: bytes) -> str:
    try:
        k = serialization.load_der_public_key(spki)
    except (ValueError, TypeError) as e:
        return f"unknown ({e})"
    if isinstance(k, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384", "secp521r1": "ecdsa-p521"}.get(
            k.curve.name, "ecdsa-unknown"
        )
    if isinstance(k, rsa.RSAPublicKey):
        return f"rsa-{k.key_size}"
    if isinstance(k, ed25519.Ed25519PublicKey):
        return "ed25519"
    return f"unknown ({type(k).__name__})"


_SIG_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha1": hashes.SHA1(),  # noqa: S303 - some RA-TLS libraries (Occlum) still sign with it; only reported
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


def _self_signed(spki: bytes, tbs: bytes, sig_algo: Any, signature: bytes) -> bool:
    """True when signature over tbs verifies with the certificate's own key."""
    try:
        k = serialization.load_der_public_key(spki)
        if isinstance(k, ed25519.Ed25519PublicKey):
            k.verify(signature, tbs)
            return True
        h = _SIG_HASHES[sig_algo.hash_algo]
        if isinstance(k, ec.EllipticCurvePublicKey):
            k.verify(signature, tbs, ec.ECDSA(h))
        elif isinstance(k, rsa.RSAPublicKey):
            k.verify(signature, tbs, padding.PKCS1v15(), h)
        else:
            return False
    except Exception:  # noqa: BLE001 - any failure means "not self-signed"
        return False
    return True


def _malformed(detail: str) -> EvidenceError:
    return EvidenceError(f"ratls: parse evidence: malformed evidence: {detail}", code="malformed evidence")


def _unsupported(detail: str) -> EvidenceError:
    return EvidenceError(f"ratls: parse evidence: unsupported evidence: {detail}", code="unsupported evidence")


def _cbor_one(b: bytes, what: str) -> Any:
    """Decode exactly one CBOR data item (no trailing bytes)."""
    f = io.BytesIO(b)
    try:
        v = cbor2.CBORDecoder(f).decode()
    except Exception as e:  # noqa: BLE001 - cbor2 raises several kinds, RecursionError included
        raise _malformed(f"{what} is not well-formed CBOR: {e}") from None
    if f.tell() != len(b):
        raise _malformed(f"{what}: {len(b) - f.tell()} bytes after the CBOR data item")
    return v


def _parse_tagged(value: bytes) -> tuple[int, bytes, bytes]:
    where = "TCG evidence (2.23.133.5.4.9)"
    if not value or value[0] >> 5 != 6:
        if value[:1] == b"\x04":
            raise _malformed(f"{where}: value starts with an ASN.1 OCTET STRING (0x04); want the CBOR tag directly")
        raise _malformed(f"{where}: value is not a CBOR tag (first byte {value[0] if value else 0:#04x})")
    v = _cbor_one(value, where)
    if not isinstance(v, cbor2.CBORTag):
        raise _malformed(f"{where}: not a CBOR tag")
    if v.tag in (TAG_INTEL_TEE_REPORT, TAG_INTEL_SGX_LEGACY_REPORT):
        raise _unsupported(
            f"CBOR tag {v.tag} carries a TEE report, which cannot be verified remotely; want tag {TAG_INTEL_TEE_QUOTE} (quote)"
        )
    if v.tag != TAG_INTEL_TEE_QUOTE:
        raise _unsupported(f"CBOR tag {v.tag}, want {TAG_INTEL_TEE_QUOTE} (Intel TEE quote)")
    arr = v.value
    if not isinstance(arr, (list, tuple)):
        raise _malformed(f"content of tag {v.tag} is not an array")
    if len(arr) != 2:
        raise _malformed(f"{where}: array of {len(arr)} items, want 2 (quote, claims buffer)")
    quote, buf = arr
    if not isinstance(quote, bytes) or not quote:
        raise _malformed(f"{where}: quote is not a non-empty byte string")
    if not isinstance(buf, bytes):
        raise _malformed(f"{where}: claims buffer is not a byte string")
    return v.tag, quote, buf


def _parse_claims(buf: bytes, er: EvidenceReport) -> tuple[int, bytes | None]:
    """Fill er's claims; return the pubkey-hash algorithm and hash (0, None when absent)."""
    if not buf or buf[0] >> 5 != 5:
        raise _malformed(f"claims buffer: CBOR major type {(buf[0] if buf else 0) >> 5}, want a map (5)")
    m = _cbor_one(buf, "claims buffer")
    if not isinstance(m, dict) or not all(isinstance(k, str) for k in m):
        raise _malformed("claims buffer: want a map from text names to byte strings")
    er.claims = sorted(m)
    alg, h = 0, None
    if "pubkey-hash" in m:
        raw = m["pubkey-hash"]
        entry = _cbor_one(raw, "claim pubkey-hash") if isinstance(raw, bytes) else raw
        if not isinstance(entry, (list, tuple)) or len(entry) != 2:
            raise _malformed("claim pubkey-hash is not a hash-entry [alg, hash]")
        if not isinstance(entry[0], int) or isinstance(entry[0], bool) or entry[0] < 0:
            raise _malformed("pubkey-hash algorithm is not an unsigned integer")
        if not isinstance(entry[1], bytes):
            raise _malformed("pubkey-hash value is not a byte string")
        alg, h = entry[0], entry[1]
    if "runtime" in m:
        r = m["runtime"]
        if not isinstance(r, bytes) or not _valid_runtime(r):
            raise _malformed(f"claims buffer: runtime claim {r!r} is not 1-32 of [a-z0-9-]")
        er.runtime = r.decode()
    if "asps-domain" in m:
        d = m["asps-domain"]
        if not isinstance(d, bytes) or not _valid_runtime(d):
            raise _malformed(f"claims buffer: asps-domain claim {d!r} is not 1-32 of [a-z0-9-]")
        er.domain = d.decode()
    if "nonce" in m:
        n = m["nonce"]
        if not isinstance(n, bytes):
            raise _malformed("claim nonce is not a byte string")
        er.nonce = n
    return alg, h


def _valid_runtime(r: bytes) -> bool:
    return 0 < len(r) <= 32 and all(c in b"abcdefghijklmnopqrstuvwxyz0123456789-" for c in r)


def _match_prefix(report_data: bytes, data: bytes) -> str:
    for name, h in (_HASH_BY_ID[HASH_SHA256], _HASH_BY_ID[HASH_SHA384], _HASH_BY_ID[HASH_SHA512]):
        d = h(data)
        if report_data[: len(d)] == d:
            return name
    return ""


_HASH_LEN = {"sha-256": 32, "sha-384": 48, "sha-512": 64}


def _inspect_one(oid: str, fmt: str, critical: bool, value: bytes, spki: bytes) -> EvidenceReport:
    er = EvidenceReport(oid=oid, format=fmt, critical=critical, size=len(value))
    if len(value) > MAX_EVIDENCE_SIZE:
        er.error = f"ratls: parse evidence: evidence too large: extension {oid} is {len(value)} bytes, limit {MAX_EVIDENCE_SIZE}"
        return er
    claims_buf = b""
    alg, h = 0, None
    try:
        if fmt == FORMAT_TCG:
            er.cbor_tag, quote, claims_buf = _parse_tagged(value)
            er.claims_buffer = claims_buf
            alg, h = _parse_claims(claims_buf, er)
            er.pubkey_hash_alg = alg
            if alg:
                hf = _HASH_BY_ID.get(alg)
                er.pubkey_hash_matches_spki = hf is not None and hf[1](spki) == h
        else:
            if not value:
                raise _malformed(f"extension {oid} is empty, want a quote")
            quote = value
    except EvidenceError as e:
        er.error = str(e)
        return er
    er.quote, er.quote_len = quote, len(quote)
    try:
        q = parse_quote(quote)
    except QuoteError as e:
        er.error = f"quote: {e}"
        return er
    er.quote_version, er.att_key_type, er.tee, er.debug = q.version, q.att_key_type, q.tee, q.debug
    er.report_data = q.report_data
    er.mr_enclave, er.mr_signer, er.isv_prod_id, er.isv_svn = q.mr_enclave, q.mr_signer, q.isv_prod_id, q.isv_svn
    er.mr_td, er.mr_seam, er.rtmr = q.mr_td, q.mr_seam, tuple(q.rtmr)
    rd = q.report_data
    if fmt != FORMAT_TCG:
        name = _match_prefix(rd, spki)
        if name:
            er.binds_key, er.binding = True, f"report_data[0:{_HASH_LEN[name]}] = {name}(spki)"
        else:
            er.binding_error = (
                f"ratls: check binding: evidence does not bind the certificate key: {oid} quote: report_data[0:32] = "
                f"{rd[:32].hex()}, want SHA-256(SubjectPublicKeyInfo) = {hashlib.sha256(spki).hexdigest()}"
            )
        return er
    prefix = "ratls: check binding: evidence does not bind the certificate key: "
    if not alg and h is None:
        er.binding_error = prefix + 'claims buffer has no "pubkey-hash" claim'
        return er
    hf = _HASH_BY_ID.get(alg)
    if hf is None:
        er.binding_error = prefix + f"pubkey-hash algorithm {alg} is not supported (want 1 sha-256, 7 sha-384 or 8 sha-512)"
        return er
    if hf[1](spki) != h:
        er.binding_error = prefix + f"pubkey-hash = {hf[0]}({(h or b'').hex()}), want {hf[0]}(SubjectPublicKeyInfo)"
        return er
    buf_name = _match_prefix(rd, claims_buf)
    if not buf_name:
        er.binding_error = (
            prefix
            + f"report_data[0:32] = {rd[:32].hex()}, want SHA-256(claims buffer) = {hashlib.sha256(claims_buf).hexdigest()}"
        )
        return er
    er.binds_key = True
    er.binding = f"report_data[0:{_HASH_LEN[buf_name]}] = {buf_name}(claims-buffer); pubkey-hash = {hf[0]}(spki)"
    if er.domain == DOMAIN_CERTIFICATE and rd == hashlib.sha256(claims_buf).digest() + bytes(32):
        # Labelled: every byte of report data fixed by the buffer (binding: tcg-labelled).
        er.binding += f"; asps-domain {DOMAIN_CERTIFICATE}"
    return er


def inspect(cert: bytes | str | x509.Certificate) -> Report:
    """Describe an RA-TLS certificate's evidence (PEM, DER or a parsed certificate) without verifying any quote.

    Every recognised evidence extension is listed, TCG first; one that does
    not decode is listed with its ``error``. Raises :class:`EvidenceError`
    (``no evidence extension``) when there is none, and (``malformed
    evidence``) when the input is not a certificate.

    Certificates are read with asn1crypto, which (like Go's crypto/x509)
    accepts what some RA-TLS libraries write and cryptography refuses, such as
    ECDSA signature algorithms with NULL parameters (Gramine).
    """
    if isinstance(cert, x509.Certificate):
        der = cert.public_bytes(serialization.Encoding.DER)
    else:
        der = cert.encode() if isinstance(cert, str) else bytes(cert)
    try:
        # PEM only when the input starts as PEM: a DER RA-TLS certificate
        # contains PEM itself (the PCK chain inside its quote).
        if der.lstrip().startswith(b"-----BEGIN"):
            _, _, der = asn1_pem.unarmor(der.lstrip())
        c = asn1_x509.Certificate.load(der, strict=True)
        tbs = c["tbs_certificate"]
        spki = tbs["subject_public_key_info"].dump()
        exts = [(e["extn_id"].dotted, bool(e["critical"].native), bytes(e["extn_value"].contents)) for e in tbs["extensions"]]
        subject = tbs["subject"].human_friendly
        self_signed = _self_signed(spki, tbs.dump(), c["signature_algorithm"], bytes(c["signature_value"].native))
    except Exception as e:  # noqa: BLE001 - asn1crypto raises ValueError, TypeError, KeyError, …
        raise _malformed(f"not an X.509 certificate: {e}") from None
    found: list[tuple[int, EvidenceReport]] = []
    for oid, critical, raw in exts:
        for prio, (known, fmt) in enumerate(_EVIDENCE_OIDS):
            if oid == known:
                found.append((prio, _inspect_one(oid, fmt, critical, raw, spki)))
    if not found:
        raise EvidenceError(
            "ratls: find evidence: no evidence extension: none of the extensions " + ", ".join(o for o, _ in _EVIDENCE_OIDS),
            code="no evidence extension",
        )
    found.sort(key=lambda f: f[0])
    return Report(
        subject=subject,
        key=_key_name(spki),
        spki_sha256=hashlib.sha256(spki).digest(),
        self_signed=self_signed,
        evidence=[er for _, er in found],
    )


_MEASUREMENT = bytes | str
"""A measurement: bytes, or its hex text (as ``asps quote inspect`` prints it)."""


@dataclass(frozen=True)
class ServerPolicy:
    """How to judge a server that runs in a TEE by its RA-TLS certificate (mutual attestation).

    The server's certificate must carry evidence that binds its key, and its
    quote must verify with dcap-qvl (the optional extra: ``pip install
    'asps[attested-server]'``) against collateral from ``pccs_url`` or given
    as ``collateral`` (dcap-qvl's JSON layout), to Intel's root or to
    ``trust_root`` (the simulator's, in dev mode). Its verified claims are
    then judged with the rules and defaults of the Go client's server policy
    (``asps fetch --server-policy FILE``; Go's ``policy`` package), so a
    Python workload never accepts a server the Go client would refuse:

    - SGX: ``mr_enclave``, or ``mr_signer`` with ``isv_prod_id`` (one
      signer signs many enclaves); ``min_isv_svn``. ``config_id`` and
      ``min_config_svn`` are chosen by the enclave's loader at launch, so
      they only narrow a match, never pin code.
    - TDX: ``mr_td``, ``rtmr1`` (kernel) and ``rtmr2`` (command line,
      initrd) are all required: they pin the TD's code. ``rtmr0`` (the
      firmware's configuration, the cloud's), ``rtmr3`` (extended by the
      guest at run time), ``mr_config_id``, ``mr_owner`` and
      ``mr_owner_config`` (chosen by the host) only narrow. A TD without
      SEPT_VE_DISABLE is refused unless ``allow_sept_ve``; a bound service
      TD or MIGRATABLE unless it is the ``mr_servicetd`` named; reserved
      TD attribute bits always.
    - ``tcb_statuses`` (default UpToDate only; Revoked never);
      ``advisory_ids`` the advisories tolerated (default none: a server
      whose TCB carries any other INTEL-SA is refused, even when
      ``tcb_statuses`` admits its status; ``"*"`` tolerates any);
      ``allow_debug`` (default False); ``min_tcb_evaluation_data_number``;
      ``runtime``; ``binding``.

    Every value is validated as the Go policy parser does; a policy that
    pins nothing, or too little, raises :class:`asps.ratls.PolicyError` (a
    ``ValueError``) with the Go parser's message. ``ServerPolicy.load`` and
    ``ServerPolicy.from_document`` read the Go client's server-policy file
    itself (YAML or JSON, one or more apps; an app needs no ``secrets``).
    A ``trust_root`` marks the server's evidence as simulated: the keyword
    form admits it (dev mode), a policy document only if it sets
    ``allow_simulated``.
    """

    mr_enclave: _MEASUREMENT = b""
    mr_signer: _MEASUREMENT = b""
    mr_td: _MEASUREMENT = b""
    tcb_statuses: tuple[str, ...] = (_policy.STATUS_UP_TO_DATE,)
    pccs_url: str = ""
    collateral: bytes = field(default=b"", repr=False)
    trust_root: bytes = field(default=b"", repr=False)
    """A root CA certificate (PEM or DER) replacing Intel's: tests and dev mode only."""
    isv_prod_id: int | None = None
    min_isv_svn: int = 0
    config_id: _MEASUREMENT = b""
    min_config_svn: int = 0
    rtmr0: _MEASUREMENT = b""
    rtmr1: _MEASUREMENT = b""
    rtmr2: _MEASUREMENT = b""
    rtmr3: _MEASUREMENT = b""
    mr_config_id: _MEASUREMENT = b""
    mr_owner: _MEASUREMENT = b""
    mr_owner_config: _MEASUREMENT = b""
    mr_servicetd: _MEASUREMENT = b""
    allow_sept_ve: bool = False
    advisory_ids: tuple[str, ...] = ()
    allow_debug: bool = False
    min_tcb_evaluation_data_number: int = 0
    runtime: str = ""
    binding: str = ""
    document: bytes = field(default=b"", repr=False)
    """A server-policy document (what ``asps fetch --server-policy`` reads), instead of the keywords."""
    document_format: str = ""
    """``json``, ``yaml`` or "" (sniffed) for ``document``."""
    policy: _policy.Policy = field(init=False, repr=False, compare=False)
    """The validated policy the server is judged by."""

    def __post_init__(self) -> None:
        p = self._from_document() if self.document else _policy.parse_tree(self._keyword_document())
        object.__setattr__(self, "policy", p)
        if not self.pccs_url and not self.collateral:
            raise ValueError("ServerPolicy: give pccs_url or collateral for the server's quote")

    # The keywords are the policy's app fields of each TEE (one list: _policy).
    _SGX_KEYWORDS = _policy.SGX_FIELDS
    _TDX_KEYWORDS = _policy.TDX_FIELDS
    _APP_KEYWORDS = ("advisory_ids", "allow_debug", "min_tcb_evaluation_data_number", "runtime", "binding")

    def _given(self, name: str) -> bool:
        v = getattr(self, name)
        if name == "isv_prod_id":
            return v is not None
        if name == "tcb_statuses":
            return tuple(v) != (_policy.STATUS_UP_TO_DATE,) if isinstance(v, (tuple, list)) else True
        return bool(v) if not isinstance(v, int) or isinstance(v, bool) else v != 0

    def _keyword_document(self) -> dict[str, Any]:
        """The one-app policy the keywords describe (Go: client.ServerIdentity.Policy)."""
        sgx = any(self._given(n) for n in self._SGX_KEYWORDS)
        tdx = any(self._given(n) for n in self._TDX_KEYWORDS)
        if sgx and tdx:
            raise _policy.PolicyError(
                f"{_policy.ERR_SERVER_POLICY}: a server is either in an SGX enclave (mr_enclave, mr_signer, isv_prod_id, "
                "min_isv_svn, config_id, min_config_svn) or in a TDX guest (mr_td, rtmr0-3, mr_config_id, mr_owner, "
                "mr_owner_config, mr_servicetd, allow_sept_ve), not both"
            )
        if not sgx and not tdx:
            raise _policy.PolicyError(
                f"{_policy.ERR_SERVER_POLICY}: no measurement of the server given: name the server's mr_enclave "
                "(or mr_signer and isv_prod_id), or its mr_td, rtmr1 and rtmr2"
            )
        app: dict[str, Any] = {"id": "server", "tee": "sgx" if sgx else "tdx"}
        for n in (*(self._SGX_KEYWORDS if sgx else self._TDX_KEYWORDS), "tcb_statuses", *self._APP_KEYWORDS):
            if self._given(n):
                app[n] = getattr(self, n)
        return {"allow_simulated": bool(self.trust_root), "apps": [app]}

    def _from_document(self) -> _policy.Policy:
        given = [n for n in (*self._SGX_KEYWORDS, *self._TDX_KEYWORDS, "tcb_statuses", *self._APP_KEYWORDS) if self._given(n)]
        if given:
            raise _policy.PolicyError(
                f"{_policy.ERR_SERVER_POLICY}: the policy document describes the server: give it alone, without {', '.join(given)}"
            )
        p = _policy.parse(self.document, self.document_format)
        if p.allow_simulated and not self.trust_root:
            raise _policy.PolicyError(
                f"{_policy.ERR_SERVER_POLICY}: allow_simulated admits a simulated server, which only dev mode may do"
            )
        return p

    @classmethod
    def from_document(
        cls,
        document: bytes | str,
        document_format: str = "",
        *,
        pccs_url: str = "",
        collateral: bytes = b"",
        trust_root: bytes = b"",
    ) -> ServerPolicy:
        """A server policy from a policy document (YAML or JSON), as ``asps fetch --server-policy`` reads it."""
        doc = document.encode() if isinstance(document, str) else bytes(document)
        if not doc:
            raise _policy.PolicyError([_policy.LoadError(_policy.ERR_SYNTAX, detail="empty document")])
        return cls(document=doc, document_format=document_format, pccs_url=pccs_url, collateral=collateral, trust_root=trust_root)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        pccs_url: str = "",
        collateral: bytes = b"",
        trust_root: bytes = b"",
    ) -> ServerPolicy:
        """Read a server-policy file (``.json``, ``.yaml``/``.yml``, or sniffed), as the Go client's ``--server-policy``.

        Only a regular file of at most 4 MiB is read: a FIFO, a device or a
        directory is refused before it is opened for reading.
        """
        p = os.fspath(path)
        data = _read_regular(p, _policy.MAX_FILE_SIZE)
        ext = os.path.splitext(p)[1].lower()
        fmt = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}.get(ext, "")
        try:
            return cls.from_document(data, fmt, pccs_url=pccs_url, collateral=collateral, trust_root=trust_root)
        except _policy.PolicyError as e:
            # As the Go client: "server policy PATH: " before the parser's message.
            if e.errors:
                raise _policy.PolicyError(e.errors, prefix=f"server policy {p}: ") from None
            raise _policy.PolicyError(str(e), reason=e.reasons[0], prefix=f"server policy {p}: ") from None


def _read_regular(path: str, limit: int) -> bytes:
    """A regular file of at most limit bytes (Go: internal/fileread): anything else refused before it is read."""

    def refuse(what: str) -> _policy.PolicyError:
        return _policy.PolicyError(f"server policy {path}: {_policy.ERR_SERVER_POLICY}: {what}")

    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise refuse(f"read {path}: not a regular file: " + _file_type(st.st_mode))
    if st.st_size > limit:
        raise refuse(f"larger than {limit} bytes")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise refuse(f"read {path}: not a regular file: " + _file_type(st.st_mode))
        data = f.read(limit + 1)
    if len(data) > limit:
        raise refuse(f"larger than {limit} bytes")
    return data


def _file_type(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "irregular"


def _server_refused(reason: str, detail: str) -> ServerAuthError:
    return ServerAuthError(f"ratls: verify server: {reason}: {detail}", code=reason)


def _tcb_eval_data_number(col: Any) -> int:
    """The lower tcbEvaluationDataNumber of the collateral's TCB info and QE identity (Go: dcap), 0 if unknown."""
    nums: list[int] = []
    for raw, inner in ((getattr(col, "tcb_info", ""), "tcbInfo"), (getattr(col, "qe_identity", ""), "enclaveIdentity")):
        try:
            doc = json.loads(raw)
        except (TypeError, ValueError):
            return 0
        if isinstance(doc, dict) and isinstance(doc.get(inner), dict):
            doc = doc[inner]
        n = doc.get("tcbEvaluationDataNumber") if isinstance(doc, dict) else None
        if not isinstance(n, int) or isinstance(n, bool):
            return 0
        nums.append(n)
    return max(0, min(nums)) if nums else 0


def server_claims(
    ev: EvidenceReport, status: str, advisory_ids: list[str] | tuple[str, ...], *, simulated: bool, tcb_eval_data_number: int = 0
) -> _policy.Claims:
    """What a server's verified evidence shows, for its policy."""
    q = parse_quote(ev.quote)
    if ev.format != FORMAT_TCG:
        binding = _policy.BINDING_REPORT_DATA
    elif ev.domain == DOMAIN_CERTIFICATE and q.report_data == hashlib.sha256(ev.claims_buffer).digest() + bytes(32):
        binding = _policy.BINDING_TCG_LABELLED
    else:
        binding = _policy.BINDING_TCG
    common: dict[str, Any] = {
        "tee": q.tee,
        "tcb_status": status,
        "debug": q.debug,
        "simulated": simulated,
        "runtime": ev.runtime,
        "binding": binding,
        "advisory_ids": tuple(str(a) for a in advisory_ids),
        "tcb_eval_data_number": tcb_eval_data_number,
    }
    if q.tee == "sgx":
        return _policy.Claims(
            **common,
            mr_enclave=q.mr_enclave,
            mr_signer=q.mr_signer,
            isv_prod_id=q.isv_prod_id or 0,
            isv_svn=q.isv_svn or 0,
            config_id=q.config_id,
            config_svn=q.config_svn,
        )
    return _policy.Claims(
        **common,
        mr_td=q.mr_td,
        rtmr=q.rtmr,
        mr_config_id=q.mr_config_id,
        mr_owner=q.mr_owner,
        mr_owner_config=q.mr_owner_config,
        mr_servicetd=q.mr_servicetd,
        td_attributes=q.td_attributes,
    )


def verify_server(cert_der: bytes, policy: ServerPolicy, *, now: float | None = None) -> Report:
    """Judge a server's RA-TLS certificate with policy; raise :class:`ServerAuthError` with the reason when it fails.

    ``code`` is the reason: an evidence reason (``malformed evidence``, ...),
    ``quote rejected`` (dcap-qvl refused the quote or its collateral), or the
    Go policy's reason for a server whose claims the policy refuses (``no
    matching app``, ``tcb status not allowed``, ``advisory not allowed``,
    ``debug workload not allowed``, ``td attribute not allowed``, ...).
    """
    try:
        import dcap_qvl
    except ImportError:
        raise ServerAuthError(
            "ratls: verify server: attesting the server needs dcap-qvl: pip install 'asps[attested-server]'",
            code="no verifier configured",
        ) from None
    try:
        rep = inspect(cert_der)
    except EvidenceError as e:
        raise _server_refused(e.code, str(e)) from None
    ev = rep.evidence[0]
    if ev.error:
        raise _server_refused("malformed evidence", ev.error)
    if not ev.binds_key:
        raise _server_refused("evidence does not bind the certificate key", ev.binding_error)
    try:
        if policy.collateral:
            col = dcap_qvl.QuoteCollateralV3.from_json(policy.collateral.decode())
        else:
            col = asyncio.run(dcap_qvl.get_collateral(policy.pccs_url, ev.quote))
        at = int(now if now is not None else time.time())
        if policy.trust_root:
            root = policy.trust_root
            if root.lstrip().startswith(b"-----BEGIN"):
                root = x509.load_pem_x509_certificate(root).public_bytes(serialization.Encoding.DER)
            vr = dcap_qvl.verify_with_root_ca(ev.quote, col, root, at)
        else:
            vr = dcap_qvl.verify(ev.quote, col, at)
    except (ValueError, RuntimeError) as e:  # dcap-qvl raises ValueError for every rejection
        raise _server_refused("quote rejected", f"dcap-qvl: {e}") from None
    try:
        c = server_claims(
            ev,
            str(vr.status),
            list(vr.advisory_ids or ()),
            simulated=bool(policy.trust_root),
            tcb_eval_data_number=_tcb_eval_data_number(col),
        )
    except QuoteError as e:
        raise _server_refused("malformed evidence", f"quote: {e}") from None
    try:
        _policy.match(policy.policy, c)
    except _policy.Denial as d:
        raise ServerAuthError(
            "ratls: verify server: the server's attestation does not satisfy the server policy (nothing was sent to it): "
            + str(d),
            code=d.reason,
        ) from None
    return rep
