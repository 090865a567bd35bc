"""The few fields of an Intel DCAP quote (v3, v4, v5) the client reads.

This is not a verifier: it locates the report body to read identity fields
and report data, as the Go package dcap does for ``asps ratls inspect``.
Quote verification stays on the server (and in dcap-qvl, the optional
extra).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

TEE_SGX = 0x00000000
TEE_TDX = 0x00000081
HEADER_LEN = 48
SGX_BODY_LEN = 384
TD10_BODY_LEN = 584
TD15_BODY_LEN = 648
MAX_QUOTE_LEN = 1 << 20


class QuoteError(ValueError):
    """The bytes are not a DCAP quote of a known layout."""


@dataclass(frozen=True)
class Quote:
    """The header and identity fields of a quote."""

    version: int
    att_key_type: int
    tee: str  # "sgx" or "tdx"
    body_type: int  # 1 SGX, 2 TD 1.0, 3 TD 1.5
    report_data: bytes
    debug: bool
    mr_enclave: bytes = b""
    mr_signer: bytes = b""
    isv_prod_id: int | None = None
    isv_svn: int | None = None
    mr_td: bytes = b""
    mr_seam: bytes = b""
    rtmr: tuple[bytes, ...] = ()
    config_id: bytes = b""
    config_svn: int = 0
    td_attributes: bytes = b""
    mr_config_id: bytes = b""
    mr_owner: bytes = b""
    mr_owner_config: bytes = b""
    mr_servicetd: bytes = b""
    """TD 1.5 only (b"" for TD 1.0)."""
    length: int = 0
    """Length of the quote proper (header, body, signature data); bytes past it are padding."""


def parse_quote(b: bytes) -> Quote:
    """Parse the header and report body of a DCAP quote."""
    if len(b) < HEADER_LEN:
        raise QuoteError(f"{len(b)} bytes, shorter than a quote header ({HEADER_LEN})")
    if len(b) > MAX_QUOTE_LEN:
        raise QuoteError(f"{len(b)} bytes, more than {MAX_QUOTE_LEN}")
    version, att_key_type, tee_type = struct.unpack_from("<HHI", b, 0)
    off = HEADER_LEN
    if version in (3, 4):
        if tee_type == TEE_SGX:
            body_type, body_len = 1, SGX_BODY_LEN
        elif tee_type == TEE_TDX and version == 4:
            body_type, body_len = 2, TD10_BODY_LEN
        else:
            raise QuoteError(f"version {version} quote with TEE type {tee_type:#x}")
    elif version == 5:
        if len(b) < off + 6:
            raise QuoteError("v5 quote truncated in its body descriptor")
        body_type, body_len = struct.unpack_from("<HI", b, off)
        off += 6
        want = {1: SGX_BODY_LEN, 2: TD10_BODY_LEN, 3: TD15_BODY_LEN}.get(body_type)
        if want is None:
            raise QuoteError(f"v5 body type {body_type}, want 1, 2 or 3")
        if body_len != want:
            raise QuoteError(f"v5 body type {body_type} of {body_len} bytes, want {want}")
        if (body_type == 1) != (tee_type == TEE_SGX) or tee_type not in (TEE_SGX, TEE_TDX):
            raise QuoteError(f"v5 body type {body_type} with TEE type {tee_type:#x}")
    else:
        raise QuoteError(f"quote version {version}, want 3, 4 or 5")
    if len(b) < off + body_len + 4:
        raise QuoteError(f"{len(b)} bytes, too short for a {body_len}-byte report body and signature length")
    body = b[off : off + body_len]
    (sig_len,) = struct.unpack_from("<I", b, off + body_len)
    end = off + body_len + 4 + sig_len
    if end > len(b):
        raise QuoteError(f"signature data of {sig_len} bytes runs past the end ({len(b)} bytes)")
    if body_type == 1:
        attributes = body[48:64]
        return Quote(
            version=version,
            att_key_type=att_key_type,
            tee="sgx",
            body_type=1,
            report_data=bytes(body[320:384]),
            debug=bool(attributes[0] & 0x02),
            mr_enclave=bytes(body[64:96]),
            mr_signer=bytes(body[128:160]),
            isv_prod_id=struct.unpack_from("<H", body, 256)[0],
            isv_svn=struct.unpack_from("<H", body, 258)[0],
            config_id=bytes(body[192:256]),
            config_svn=struct.unpack_from("<H", body, 260)[0],
            length=end,
        )
    return Quote(
        version=version,
        att_key_type=att_key_type,
        tee="tdx",
        body_type=body_type,
        report_data=bytes(body[520:584]),
        debug=bool(body[120] & 0x01),
        mr_td=bytes(body[136:184]),
        mr_seam=bytes(body[16:64]),
        rtmr=tuple(bytes(body[328 + 48 * i : 376 + 48 * i]) for i in range(4)),
        td_attributes=bytes(body[120:128]),
        mr_config_id=bytes(body[184:232]),
        mr_owner=bytes(body[232:280]),
        mr_owner_config=bytes(body[280:328]),
        mr_servicetd=bytes(body[600:648]) if body_type == 3 else b"",
        length=end,
    )
