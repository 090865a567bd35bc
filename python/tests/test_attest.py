"""The attesters against stand-ins of their device files, and detection order and refusals."""

from __future__ import annotations

import ctypes
import errno
import os
import pathlib
import struct
import subprocess

import pytest

import asps
from asps import attest
from asps._quote import parse_quote

RD = bytes(range(64))


@pytest.fixture(scope="module")
def templates(asps_bin: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """One simulated quote per TEE; stand-ins patch the report data in (attesters do not verify signatures)."""
    out = {}
    for tee in ("sgx", "tdx"):
        d = tmp_path_factory.mktemp(tee)
        subprocess.run([str(asps_bin), "sim", "quote", "--tee", tee, "--out", str(d)], check=True, capture_output=True)
        out[tee] = (d / "quote.bin").read_bytes()
    return out


def quote_for(template: bytes, rd: bytes) -> bytes:
    q = bytearray(template)
    off = 48 + (320 if parse_quote(template).tee == "sgx" else 520)
    q[off : off + 64] = rd
    assert parse_quote(bytes(q)).report_data == rd
    return bytes(q)


# Gramine: /dev/attestation.


class GramineStandIn(attest.FileSystem):
    """Gramine's pseudo-files: writing user_report_data makes the quote file answer with a quote over it."""

    def __init__(self, root: pathlib.Path, template: bytes, attestation_type: str = "dcap", pad: int = 100) -> None:
        super().__init__(root)
        d = root / "dev" / "attestation"
        d.mkdir(parents=True)
        (d / "attestation_type").write_text(attestation_type + "\n")
        (d / "user_report_data").write_bytes(bytes(64))
        (d / "quote").write_bytes(b"")
        self.template, self.pad, self.tamper = template, pad, False

    def write(self, p: str, b: bytes) -> None:
        super().write(p, b)
        if p.endswith("user_report_data"):
            rd = bytes(64) if self.tamper else b  # tamper: another writer's report data
            pathlib.Path(self.path(attest.GRAMINE_QUOTE)).write_bytes(quote_for(self.template, rd) + bytes(self.pad))


def test_gramine_quote(tmp_path: pathlib.Path, templates: dict[str, bytes]) -> None:
    fs = GramineStandIn(tmp_path, templates["sgx"])
    q = attest.Gramine(fs=fs).quote(RD)
    assert parse_quote(q).report_data == RD
    assert len(q) == len(templates["sgx"])  # the padding after the signature data is trimmed
    assert (tmp_path / "dev/attestation/user_report_data").read_bytes() == RD


@pytest.mark.parametrize(
    ("attestation_type", "words"),
    [
        ("none", 'is "none", want "dcap": remote attestation is off; add sgx.remote_attestation = "dcap"'),
        ("epid", "EPID is retired"),
        ("something", 'is "something", want "dcap"'),
    ],
)
def test_gramine_refuses_without_dcap(
    tmp_path: pathlib.Path, templates: dict[str, bytes], attestation_type: str, words: str
) -> None:
    fs = GramineStandIn(tmp_path, templates["sgx"], attestation_type)
    with pytest.raises(asps.AttestationError) as ei:
        attest.Gramine(fs=fs).quote(RD)
    assert words in str(ei.value)


def test_attack_gramine_quote_over_another_writers_report_data(tmp_path: pathlib.Path, templates: dict[str, bytes]) -> None:
    fs = GramineStandIn(tmp_path, templates["sgx"])
    fs.tamper = True
    with pytest.raises(asps.AttestationError) as ei:
        attest.Gramine(fs=fs).quote(RD)
    assert "another writer changed the report data meanwhile" in str(ei.value)


def test_attack_gramine_hands_back_a_tdx_quote(tmp_path: pathlib.Path, templates: dict[str, bytes]) -> None:
    fs = GramineStandIn(tmp_path, templates["tdx"])
    with pytest.raises(asps.AttestationError) as ei:
        attest.Gramine(fs=fs).quote(RD)
    assert "a tdx quote (version 4), want sgx" in str(ei.value)


# configfs-tsm.


class TSMStandIn(attest.FileSystem):
    """configfs-tsm: mkdir makes an entry with provider and generation; writing inblob fills outblob."""

    def __init__(self, root: pathlib.Path, template: bytes, provider: str = "tdx_guest", racer: int = 0) -> None:
        super().__init__(root)
        (root / attest.TSM_REPORT_DIR.lstrip("/")).mkdir(parents=True)
        self.template, self.provider, self.racer = template, provider, racer

    def mkdir(self, p: str) -> None:
        super().mkdir(p)
        pathlib.Path(p, "provider").write_text(self.provider + "\n")
        pathlib.Path(p, "generation").write_text("0\n")
        pathlib.Path(p, "inblob").write_bytes(b"")

    def write(self, p: str, b: bytes) -> None:
        super().write(p, b)
        e = pathlib.Path(p).parent
        g = int((e / "generation").read_text()) + 1 + self.racer  # racer: other writers' writes meanwhile
        (e / "generation").write_text(f"{g}\n")
        (e / "outblob").write_bytes(quote_for(self.template, b))

    def rmdir(self, p: str) -> None:
        for f in pathlib.Path(p).iterdir():
            f.unlink()
        super().rmdir(p)


def entries(tmp_path: pathlib.Path) -> list[pathlib.Path]:
    return list((tmp_path / attest.TSM_REPORT_DIR.lstrip("/")).iterdir())


def test_tsm_quote(tmp_path: pathlib.Path, templates: dict[str, bytes]) -> None:
    a = attest.TSM(fs=TSMStandIn(tmp_path, templates["tdx"]))
    assert a.runtime == "tdx-guest"
    assert parse_quote(a.quote(RD)).report_data == RD
    assert entries(tmp_path) == []


def test_tsm_refuses_other_providers(tmp_path: pathlib.Path, templates: dict[str, bytes]) -> None:
    with pytest.raises(asps.AttestationError) as ei:
        attest.TSM(fs=TSMStandIn(tmp_path, templates["tdx"], provider="sev_guest")).quote(RD)
    assert 'is "sev_guest", want "tdx_guest": asps verifies Intel TDX quotes only' in str(ei.value)
    assert entries(tmp_path) == []


def test_attack_tsm_entry_written_by_another_writer(tmp_path: pathlib.Path, templates: dict[str, bytes]) -> None:
    with pytest.raises(asps.AttestationError) as ei:
        attest.TSM(fs=TSMStandIn(tmp_path, templates["tdx"], racer=1)).quote(RD)
    assert "another writer changed the entry during each of 3 attempts" in str(ei.value)
    assert "(last: generation 4 before writing inblob, 6 after reading outblob, want 5)" in str(ei.value)
    assert entries(tmp_path) == []


def test_attack_tsm_hands_back_an_sgx_quote(tmp_path: pathlib.Path, templates: dict[str, bytes]) -> None:
    with pytest.raises(asps.AttestationError) as ei:
        attest.TSM(fs=TSMStandIn(tmp_path, templates["sgx"])).quote(RD)
    assert "a sgx quote (version 3), want tdx" in str(ei.value)


# Occlum: ioctl(2) on /dev/sgx.


def test_occlum_ioctl_numbers() -> None:
    def ioc(direction: int, nr: int, size: int) -> int:
        return direction << 30 | size << 16 | ord("s") << 8 | nr

    assert ioc(2, 7, 4) == attest.SGXIOC_GET_DCAP_QUOTE_SIZE
    assert ioc(3, 8, 24) == attest.SGXIOC_GEN_DCAP_QUOTE


class OcclumStandIn:
    """Occlum's /dev/sgx: answers the two ioctls through the pointers in their argument, as Occlum does."""

    def __init__(self, template: bytes, fail: list[int] | None = None) -> None:
        self.template, self.fail, self.calls = template, list(fail or []), 0

    def __call__(self, path: str) -> OcclumStandIn:
        return self

    def ioctl(self, request: int, arg: bytearray) -> None:
        self.calls += 1
        if self.fail:
            raise OSError(self.fail.pop(0), os.strerror(errno.EBUSY))
        if request == attest.SGXIOC_GET_DCAP_QUOTE_SIZE:
            arg[:4] = struct.pack("<I", len(self.template) + 64)
        elif request == attest.SGXIOC_GEN_DCAP_QUOTE:
            assert len(arg) == 24
            rd_ptr, len_ptr, buf_ptr = struct.unpack("<QQQ", arg)
            q = quote_for(self.template, ctypes.string_at(rd_ptr, 64))
            n = ctypes.c_uint32.from_address(len_ptr)
            assert n.value >= len(q)
            ctypes.memmove(buf_ptr, q, len(q))  # Occlum leaves quote_len alone; the rest of the buffer stays zero
        else:
            raise OSError(errno.ENOTTY, "inappropriate ioctl")

    def close(self) -> None:
        pass


@pytest.fixture
def occlum_root(tmp_path: pathlib.Path) -> pathlib.Path:
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "sgx").write_bytes(b"")
    return tmp_path


def test_occlum_quote(occlum_root: pathlib.Path, templates: dict[str, bytes]) -> None:
    q = attest.Occlum(root=occlum_root, open_device=OcclumStandIn(templates["sgx"])).quote(RD)
    assert parse_quote(q).report_data == RD
    assert len(q) == len(templates["sgx"])


def test_occlum_retries_while_busy(
    occlum_root: pathlib.Path, templates: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(attest, "_OCCLUM_BUSY_WAIT", 0)
    dev = OcclumStandIn(templates["sgx"], fail=[errno.EBUSY, errno.EBUSY])
    assert parse_quote(attest.Occlum(root=occlum_root, open_device=dev).quote(RD)).report_data == RD
    assert dev.calls == 4


@pytest.mark.parametrize(
    ("err", "words"),
    [
        (errno.EIO, '"DCAP device not ready"'),
        (errno.ENOSYS, "built without the dcap feature"),
        (errno.EBUSY, "still busy after 5 attempts"),
    ],
)
def test_occlum_errors(
    occlum_root: pathlib.Path, templates: dict[str, bytes], monkeypatch: pytest.MonkeyPatch, err: int, words: str
) -> None:
    monkeypatch.setattr(attest, "_OCCLUM_BUSY_WAIT", 0)
    with pytest.raises(asps.AttestationError) as ei:
        attest.Occlum(root=occlum_root, open_device=OcclumStandIn(templates["sgx"], fail=[err] * 5)).quote(RD)
    assert "SGXIOC_GET_DCAP_QUOTE_SIZE (0x80047307)" in str(ei.value) and words in str(ei.value)


def test_occlum_host_sgx_driver_directory(tmp_path: pathlib.Path) -> None:
    (tmp_path / "dev" / "sgx").mkdir(parents=True)
    with pytest.raises(asps.AttestationError) as ei:
        attest.Occlum(root=tmp_path).quote(RD)
    assert "is a directory, want Occlum's SGX device: this is a host's SGX driver directory" in str(ei.value)


def test_occlum_real_ioctl_on_a_character_device_that_is_not_occlum(tmp_path: pathlib.Path) -> None:
    (tmp_path / "dev").mkdir()
    os.symlink("/dev/null", tmp_path / "dev" / "sgx")
    with pytest.raises(asps.AttestationError) as ei:
        attest.Occlum(root=tmp_path).quote(RD)
    assert "not Occlum's SGX device, or an Occlum whose ioctl layout differs" in str(ei.value)


def test_occlum_regular_file_is_not_a_device(occlum_root: pathlib.Path) -> None:
    with pytest.raises(asps.AttestationError) as ei:
        attest.Occlum(root=occlum_root).quote(RD)
    assert "is not a character device" in str(ei.value)


# Detection.


def test_detect_nothing(tmp_path: pathlib.Path) -> None:
    with pytest.raises(asps.NoTEEError) as ei:
        attest.detect(root=tmp_path)
    e = ei.value
    assert [f.attester for f in e.findings] == ["tsm", "gramine", "occlum"]
    assert [f.seen for f in e.findings] == ["not found"] * 3
    msg = str(e)
    assert msg.startswith(
        f"no TEE found (looked for, in order, tsm at {tmp_path}/sys/kernel/config/tsm/report, "
        f"gramine at {tmp_path}/dev/attestation/attestation_type, occlum at {tmp_path}/dev/sgx)"
    )
    assert "(not inside a Gramine enclave?)" in msg and "(not inside an Occlum instance?)" in msg
    assert "configfs-tsm needs Linux 6.7 or later" in msg
    assert "the simulator is never chosen automatically" in msg
    assert e.code == "no TEE found"


def test_detect_order_gramine_before_occlum(tmp_path: pathlib.Path, templates: dict[str, bytes]) -> None:
    fs = GramineStandIn(tmp_path, templates["sgx"])
    (tmp_path / "dev" / "sgx").write_bytes(b"")
    a = attest.detect(fs=fs, open_device=OcclumStandIn(templates["sgx"]))
    assert isinstance(a, attest.Gramine)


def test_detect_order_tsm_first(tmp_path: pathlib.Path, templates: dict[str, bytes]) -> None:
    fs = TSMStandIn(tmp_path, templates["tdx"])
    (tmp_path / "dev" / "attestation").mkdir(parents=True)
    (tmp_path / "dev" / "attestation" / "attestation_type").write_text("dcap")
    assert isinstance(attest.detect(fs=fs), attest.TSM)
    assert entries(tmp_path) == []  # the probe's entry is gone


def test_detect_occlum_last(occlum_root: pathlib.Path, templates: dict[str, bytes]) -> None:
    found = attest.probe(root=occlum_root, open_device=OcclumStandIn(templates["sgx"]))
    assert [f.attester for f in found] == ["tsm", "gramine", "occlum"]
    assert found[-1].usable and found[-1].seen == f"device; DCAP quote size {len(templates['sgx']) + 64}"


def test_by_name(tmp_path: pathlib.Path) -> None:
    with pytest.raises(asps.AttestationError) as ei:
        attest.by_name("sim")
    assert ei.value.code == "simulator" and "dev mode only" in str(ei.value)
    with pytest.raises(asps.AttestationError) as ei:
        attest.by_name("sev", root=tmp_path)
    assert ei.value.code == "unknown TEE"
    with pytest.raises(asps.AttestationError) as ei:
        attest.by_name("tdx", root=tmp_path)
    assert ei.value.code == "no TEE found" and "asked for tsm" in str(ei.value)


def test_report_data_must_be_64_bytes(tmp_path: pathlib.Path, templates: dict[str, bytes]) -> None:
    with pytest.raises(ValueError, match="want 64"):
        attest.Gramine(fs=GramineStandIn(tmp_path, templates["sgx"])).quote(b"short")


def test_fuzz_parse_quote_mutations(templates: dict[str, bytes]) -> None:
    """Random flips, truncations and insertions: parse_quote raises only QuoteError, and what it
    parses stays within the input and agrees with the bytes it read."""
    import random

    from asps._quote import QuoteError

    rng = random.Random(2)
    for tmpl in templates.values():
        for _ in range(3000):
            b = bytearray(tmpl)
            for _ in range(rng.randint(1, 3)):
                op, i = rng.randrange(3), rng.randrange(max(1, len(b)))
                if op == 0 and b:
                    b[i] ^= 1 << rng.randrange(8)
                elif op == 1:
                    del b[i:]
                else:
                    b[i:i] = bytes([rng.randrange(256)])
            try:
                q = parse_quote(bytes(b))
            except QuoteError:
                continue
            assert q.length <= len(b)
            assert len(q.report_data) == 64
            assert q.tee in ("sgx", "tdx")
