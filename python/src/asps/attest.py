"""Evidence: quotes from the TEE this process runs in.

Three hardware attesters, each a small class behind one interface, in pure
Python (no Intel SDK library): Linux configfs-tsm in an Intel TDX guest,
Gramine's ``/dev/attestation`` pseudo-files, and ioctl(2) on Occlum's
``/dev/sgx``. :func:`detect` looks for them in the Go client's order and
refuses in its words; the simulator (:class:`SimAttester`, dev mode against
``asps dev``) is never chosen unless asked for by name.

Every attester checks what it hands back: a DCAP quote of the expected TEE
(SGX for Gramine and Occlum, TDX for configfs-tsm) carrying exactly the
report data asked for, without trailing padding.
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import errno
import fcntl
import hashlib
import os
import pathlib
import shutil
import stat
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ._quote import MAX_QUOTE_LEN, QuoteError, parse_quote
from .errors import AttestationError, Finding, NoTEEError

__all__ = [
    "GRAMINE_ATTESTATION_TYPE",
    "GRAMINE_QUOTE",
    "GRAMINE_USER_REPORT_DATA",
    "OCCLUM_DEVICE",
    "SGXIOC_GEN_DCAP_QUOTE",
    "SGXIOC_GET_DCAP_QUOTE_SIZE",
    "TSM",
    "TSM_REPORT_DIR",
    "Attester",
    "FileSystem",
    "Gramine",
    "Occlum",
    "SGXDevice",
    "SimAttester",
    "SimIdentity",
    "by_name",
    "detect",
    "probe",
]

GRAMINE_ATTESTATION_TYPE = "/dev/attestation/attestation_type"
GRAMINE_USER_REPORT_DATA = "/dev/attestation/user_report_data"
GRAMINE_QUOTE = "/dev/attestation/quote"
TSM_REPORT_DIR = "/sys/kernel/config/tsm/report"
TSM_PROVIDER_TDX = "tdx_guest"
OCCLUM_DEVICE = "/dev/sgx"

# Occlum's /dev/sgx ioctls, _IOR('s', 7, uint32_t) and
# _IOWR('s', 8, sgxioc_gen_dcap_quote_arg_t) where the argument is three
# 8-byte pointers (x86-64): see attest/occlum.go for the sources.
SGXIOC_GET_DCAP_QUOTE_SIZE = 0x80047307
SGXIOC_GEN_DCAP_QUOTE = 0xC0187308
_OCCLUM_ATTEMPTS = 5
_OCCLUM_BUSY_WAIT = 0.2

_GRAMINE_HINT = (
    'add sgx.remote_attestation = "dcap" to the Gramine manifest (and run the enclave with gramine-sgx on a '
    "machine with the Intel DCAP quote provider, libsgx-dcap-default-qpl, configured for a PCCS)"
)
_TSM_NEEDS = (
    "needs Linux 6.7 or later with CONFIG_TSM_REPORTS, configfs mounted on /sys/kernel/config and the tdx_guest module loaded"
)


class Attester(abc.ABC):
    """Produces a quote that commits to 64 bytes of report data."""

    name: str
    """Which TEE interface: ``tsm``, ``gramine``, ``occlum``, ``sim``."""

    @property
    def runtime(self) -> str:
        """What produced the evidence, as the ``runtime`` claim says it (``gramine``, ``occlum``, ``tdx-guest``, ``sim``)."""
        return self.name

    @abc.abstractmethod
    def quote(self, report_data: bytes, *, timeout: float | None = None) -> bytes:
        """Return a raw DCAP quote whose report data equals report_data (exactly 64 bytes)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _describe(e: OSError) -> str:
    if isinstance(e, FileNotFoundError):
        return "not found"
    if isinstance(e, PermissionError):
        return "permission denied"
    s = e.strerror or str(e)
    return s[:1].lower() + s[1:]


def _check_report_data(report_data: bytes) -> bytes:
    rd = bytes(report_data)
    if len(rd) != 64:
        raise ValueError(f"report data is {len(rd)} bytes, want 64")
    return rd


def _check_quote(who: str, source: str, quote: bytes, tee: str, want: bytes) -> bytes:
    if not quote:
        raise AttestationError(f"{who}: {source}: empty quote", code="bad quote")
    try:
        q = parse_quote(quote)
    except QuoteError as e:
        raise AttestationError(f"{who}: {source}: {len(quote)} bytes that are not a DCAP quote: {e}", code="bad quote") from None
    if q.tee != tee:
        raise AttestationError(f"{who}: {source}: a {q.tee} quote (version {q.version}), want {tee}", code="bad quote")
    if q.report_data != want:
        raise AttestationError(
            f"{who}: {source}: the quote carries report data {q.report_data.hex()}, want {want.hex()} "
            "(another writer changed the report data meanwhile?)",
            code="bad quote",
        )
    return quote[: q.length]


class FileSystem:
    """What the file-based attesters (Gramine, configfs-tsm) do with files, under a root.

    The default is the operating system's, at ``/``. Tests substitute stand-ins
    of Gramine's and the kernel's pseudo-files by overriding these methods
    (pseudo-files act on close, so :meth:`write` is one write(2) to an
    existing file).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = os.fspath(root) if root else ""

    def path(self, p: str) -> str:
        """p under the root."""
        return os.path.join(self.root, p.lstrip("/")) if self.root else p

    def stat(self, p: str) -> os.stat_result:
        """os.stat."""
        return os.stat(p)

    def read(self, p: str) -> bytes:
        """The whole file."""
        with open(p, "rb") as f:
            return f.read()

    def write(self, p: str, b: bytes) -> None:
        """One write(2) of b to an existing file (no create, no truncate), then close."""
        fd = os.open(p, os.O_WRONLY | os.O_CLOEXEC)
        try:
            n = os.write(fd, b)
            if n != len(b):
                raise OSError(errno.EIO, f"short write: {n} of {len(b)} bytes")
        finally:
            os.close(fd)

    def mkdir(self, p: str) -> None:
        """os.mkdir with mode 0700."""
        os.mkdir(p, 0o700)

    def rmdir(self, p: str) -> None:
        """os.rmdir."""
        os.rmdir(p)


def _files(root: str | os.PathLike[str] | None, fs: FileSystem | None) -> FileSystem:
    return fs if fs is not None else FileSystem(root)


_gramine_lock = threading.Lock()


class Gramine(Attester):
    """SGX DCAP quotes inside a Gramine enclave, through /dev/attestation.

    Writes the report data to ``/dev/attestation/user_report_data`` and reads
    ``/dev/attestation/quote``; quotes are serialized, because Gramine keeps
    one user_report_data per process.
    """

    name = "gramine"

    def __init__(self, *, root: str | os.PathLike[str] | None = None, fs: FileSystem | None = None) -> None:
        self._f = _files(root, fs)

    def _check(self) -> tuple[str, str]:
        """Return (seen, error); error is empty when usable."""
        p = self._f.path(GRAMINE_ATTESTATION_TYPE)
        try:
            t = self._f.read(p).decode(errors="replace").strip()
        except OSError as e:
            return _describe(e), f"gramine: {p}: {_describe(e)} (not inside a Gramine enclave?)"
        seen = f'attestation type "{t}"'
        if t == "dcap":
            return seen, ""
        if t == "none":
            return seen, f'gramine: {p} is "{t}", want "dcap": remote attestation is off; {_GRAMINE_HINT}'
        if t == "epid":
            return seen, (
                f'gramine: {p} is "{t}", want "dcap": asps verifies DCAP (ECDSA) quotes only, EPID is retired; {_GRAMINE_HINT}'
            )
        return seen, f'gramine: {p} is "{t}", want "dcap"; {_GRAMINE_HINT}'

    def quote(self, report_data: bytes, *, timeout: float | None = None) -> bytes:
        """Write report_data to user_report_data, read the quote, and check it."""
        rd = _check_report_data(report_data)
        _, err = self._check()
        if err:
            raise AttestationError(err, code="no TEE found")
        with _gramine_lock:
            urd = self._f.path(GRAMINE_USER_REPORT_DATA)
            try:
                self._f.write(urd, rd)
            except OSError as e:
                raise AttestationError(
                    f"gramine: write 64 bytes of report data to {urd}: {_describe(e)}", code="quote failed"
                ) from None
            qp = self._f.path(GRAMINE_QUOTE)
            try:
                q = self._f.read(qp)
            except OSError as e:
                raise AttestationError(
                    f"gramine: read {qp}: {_describe(e)} (is the AESM service running on the host, with the DCAP quote "
                    "provider configured?)",
                    code="quote failed",
                ) from None
        return _check_quote("gramine", qp, q, "sgx", rd)


class TSM(Attester):
    """Intel TDX quotes in a TDX guest through Linux configfs-tsm (kernel 6.7+).

    Each quote makes its own report entry and removes it afterwards, and
    checks the entry's generation so that another writer cannot slip its
    report data in between.
    """

    name = "tsm"

    def __init__(self, *, root: str | os.PathLike[str] | None = None, fs: FileSystem | None = None, attempts: int = 3) -> None:
        self._f = _files(root, fs)
        self._attempts = attempts

    @property
    def runtime(self) -> str:
        """``tdx-guest``: only the tdx_guest provider is accepted."""
        return "tdx-guest"

    def _new_entry(self) -> str:
        d = self._f.path(TSM_REPORT_DIR)
        err: OSError | None = None
        for _ in range(3):
            p = os.path.join(d, f"asps-{os.getpid()}-{os.urandom(8).hex()}")
            try:
                self._f.mkdir(p)
                return p
            except FileExistsError as e:
                err = e
            except OSError as e:
                err = e
                break
        assert err is not None
        hint = " (creating a configfs-tsm report entry needs root)" if isinstance(err, PermissionError) else ""
        raise AttestationError(f"tsm: create a report entry in {d}: {_describe(err)}{hint}", code="quote failed")

    def _remove(self, entry: str) -> str:
        try:
            self._f.rmdir(entry)
        except OSError as e:
            return f"tsm: remove report entry {entry}: {_describe(e)}"
        return ""

    def _provider(self, entry: str) -> tuple[str, str]:
        p = os.path.join(entry, "provider")
        try:
            v = self._f.read(p).decode(errors="replace").strip()
        except OSError as e:
            return "", f"tsm: read {p}: {_describe(e)} (no TSM provider registered? load the tdx_guest module)"
        if v != TSM_PROVIDER_TDX:
            return v, f'tsm: {p} is "{v}", want "{TSM_PROVIDER_TDX}": asps verifies Intel TDX quotes only'
        return v, ""

    def _generation(self, entry: str) -> int:
        p = os.path.join(entry, "generation")
        try:
            s = self._f.read(p).decode(errors="replace").strip()
        except OSError as e:
            raise AttestationError(f"tsm: read {p}: {_describe(e)}", code="quote failed") from None
        if not s.isdigit():
            raise AttestationError(f'tsm: {p} is "{s}", want a decimal number', code="quote failed")
        return int(s)

    def _probe(self) -> tuple[str, str]:
        d = self._f.path(TSM_REPORT_DIR)
        try:
            st = self._f.stat(d)
        except OSError as e:
            return _describe(e), f"tsm: {d}: {_describe(e)} (configfs-tsm {_TSM_NEEDS})"
        if not stat.S_ISDIR(st.st_mode):
            return "not a directory", f"tsm: {d} is not a directory"
        try:
            entry = self._new_entry()
        except AttestationError as e:
            return "present, but no entry can be created", str(e)
        p, perr = self._provider(entry)
        rerr = self._remove(entry)
        if perr and p:
            return f'provider "{p}"', perr
        if perr:
            return "present, but no provider", perr
        if rerr:
            return "present, but its entries cannot be removed", rerr
        return f'provider "{p}"', ""

    def quote(self, report_data: bytes, *, timeout: float | None = None) -> bytes:
        """Make an entry, check its provider, write inblob, read outblob, check the generation and the quote."""
        rd = _check_report_data(report_data)
        entry = self._new_entry()
        try:
            q = self._quote(entry, rd)
        except AttestationError as e:
            rerr = self._remove(entry)
            if rerr:
                raise AttestationError(f"{e}; and {rerr}", code=e.code) from None
            raise
        rerr = self._remove(entry)
        if rerr:
            raise AttestationError(rerr, code="quote failed")
        return q

    def _quote(self, entry: str, rd: bytes) -> bytes:
        _, perr = self._provider(entry)
        if perr:
            raise AttestationError(perr, code="no TEE found")
        inblob, outblob = os.path.join(entry, "inblob"), os.path.join(entry, "outblob")
        last = ""
        for _ in range(self._attempts):
            g0 = self._generation(entry)
            try:
                self._f.write(inblob, rd)
            except OSError as e:
                raise AttestationError(f"tsm: write 64 bytes to {inblob}: {_describe(e)}", code="quote failed") from None
            try:
                out = self._f.read(outblob)
            except OSError as e:
                raise AttestationError(
                    f"tsm: read {outblob}: {_describe(e)} (the tdx_guest driver asks the host's Quote Generation Service "
                    "through the VMM: is QGS running on the host and quote generation configured for this TD?)",
                    code="quote failed",
                ) from None
            g1 = self._generation(entry)
            if g1 != g0 + 1:
                last = f"generation {g0} before writing inblob, {g1} after reading outblob, want {g0 + 1}"
                continue
            return _check_quote("tsm", outblob, out, "tdx", rd)
        raise AttestationError(
            f"tsm: {entry}: another writer changed the entry during each of {self._attempts} attempts (last: {last}); gave up",
            code="quote failed",
        )


class SGXDevice(Protocol):
    """An open SGX device: Occlum's /dev/sgx, or a test's stand-in."""

    def ioctl(self, request: int, arg: bytearray) -> None:
        """Call ioctl(2); arg is the request's C argument, read and written in place. Raise OSError on failure."""

    def close(self) -> None:
        """Close the device."""


class _SysSGXDevice:
    def __init__(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            os.close(fd)
            raise
        if not stat.S_ISCHR(mode):
            os.close(fd)
            raise OSError(
                errno.ENODEV,
                f"{path} is not a character device (file type 0{stat.S_IFMT(mode):o}), want Occlum's SGX device",
            )
        self._fd = fd

    def ioctl(self, request: int, arg: bytearray) -> None:
        fcntl.ioctl(self._fd, request, arg, True)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _occlum_hint(e: OSError) -> str:
    return {
        errno.EBUSY: f" (still busy after {_OCCLUM_ATTEMPTS} attempts)",
        errno.EIO: ' (Occlum: "DCAP device not ready": the Intel DCAP quote library could not be loaded or initialized '
        "on the host; install libsgx-dcap-ql and a quote provider configured for a PCCS)",
        errno.ENOSYS: " (Occlum does not know this ioctl: was it built without the dcap feature?)",
        errno.ENOTTY: " (not Occlum's SGX device, or an Occlum whose ioctl layout differs)",
        errno.EINVAL: " (not Occlum's SGX device, or an Occlum whose ioctl layout differs)",
    }.get(e.errno or 0, "")


class Occlum(Attester):
    """SGX DCAP quotes inside an Occlum instance, with ioctl(2) on /dev/sgx.

    ``SGXIOC_GET_DCAP_QUOTE_SIZE`` then ``SGXIOC_GEN_DCAP_QUOTE``, whose
    argument holds pointers to the report data, the quote length and the
    quote buffer; both are retried while the device says EBUSY.
    """

    name = "occlum"

    def __init__(
        self,
        *,
        root: str | os.PathLike[str] | None = None,
        fs: FileSystem | None = None,
        open_device: Callable[[str], SGXDevice] | None = None,
    ) -> None:
        self._f = _files(root, fs)
        self._open_device: Callable[[str], SGXDevice] = open_device or _SysSGXDevice

    def _open(self) -> tuple[SGXDevice | None, str, str]:
        p = self._f.path(OCCLUM_DEVICE)
        try:
            st = self._f.stat(p)
        except OSError as e:
            return None, _describe(e), f"occlum: {p}: {_describe(e)} (not inside an Occlum instance?)"
        if stat.S_ISDIR(st.st_mode):
            return (
                None,
                "a directory",
                (
                    f"occlum: {p} is a directory, want Occlum's SGX device: this is a host's SGX driver directory "
                    "(/dev/sgx/enclave, /dev/sgx/provision), so this process runs outside any enclave"
                ),
            )
        try:
            d = self._open_device(p)
        except OSError as e:
            return None, f"cannot open ({_describe(e)})", f"occlum: open {p}: {_describe(e)}"
        return d, "device", ""

    def _ioctl(self, d: SGXDevice, name: str, req: int, arg: bytearray) -> None:
        err: OSError | None = None
        for i in range(_OCCLUM_ATTEMPTS):
            if i:
                time.sleep(_OCCLUM_BUSY_WAIT)
            try:
                d.ioctl(req, arg)
                return
            except OSError as e:
                err = e
                if e.errno != errno.EBUSY:
                    break
        assert err is not None
        raise AttestationError(
            f"occlum: ioctl {name} (0x{req:08x}) on {self._f.path(OCCLUM_DEVICE)}: {_describe(err)}{_occlum_hint(err)}",
            code="quote failed",
        )

    def _quote_size(self, d: SGXDevice) -> int:
        arg = bytearray(4)
        self._ioctl(d, "SGXIOC_GET_DCAP_QUOTE_SIZE", SGXIOC_GET_DCAP_QUOTE_SIZE, arg)
        (size,) = struct.unpack("<I", arg)
        if size == 0 or size > MAX_QUOTE_LEN:
            raise AttestationError(
                f"occlum: ioctl SGXIOC_GET_DCAP_QUOTE_SIZE on {self._f.path(OCCLUM_DEVICE)}: quote size {size}, "
                f"want 1 to {MAX_QUOTE_LEN}",
                code="quote failed",
            )
        return int(size)

    def _probe(self) -> tuple[str, str]:
        d, seen, err = self._open()
        if d is None:
            return seen, err
        try:
            size = self._quote_size(d)
        except AttestationError as e:
            return "device, but SGXIOC_GET_DCAP_QUOTE_SIZE fails", str(e)
        finally:
            d.close()
        return f"device; DCAP quote size {size}", ""

    def quote(self, report_data: bytes, *, timeout: float | None = None) -> bytes:
        """Ask /dev/sgx for the quote size, then for a quote carrying report_data, and check it."""
        rd = _check_report_data(report_data)
        d, _, err = self._open()
        if d is None:
            raise AttestationError(err, code="no TEE found")
        try:
            size = self._quote_size(d)
            rd_buf = ctypes.create_string_buffer(rd, 64)
            n = ctypes.c_uint32(size)
            buf = ctypes.create_string_buffer(size)
            # sgxioc_gen_dcap_quote_arg_t: three pointers; the buffers above stay
            # alive (referenced here) until the ioctl returns.
            arg = bytearray(struct.pack("<QQQ", ctypes.addressof(rd_buf), ctypes.addressof(n), ctypes.addressof(buf)))
            self._ioctl(d, "SGXIOC_GEN_DCAP_QUOTE", SGXIOC_GEN_DCAP_QUOTE, arg)
        finally:
            d.close()
        got = n.value
        if got == 0 or got > size:
            raise AttestationError(
                f"occlum: ioctl SGXIOC_GEN_DCAP_QUOTE on {self._f.path(OCCLUM_DEVICE)}: returned quote length {got}, "
                f"want 1 to the buffer's {size}",
                code="quote failed",
            )
        return _check_quote("occlum", self._f.path(OCCLUM_DEVICE), buf.raw[:got], "sgx", rd)


_ORDER = ("tsm", "gramine", "occlum")


_Root = str | os.PathLike[str] | None
_Open = Callable[[str], SGXDevice] | None


def _build(name: str, root: _Root, fs: FileSystem | None, open_device: _Open) -> Attester:
    if name == "tsm":
        return TSM(root=root, fs=fs)
    if name == "gramine":
        return Gramine(root=root, fs=fs)
    return Occlum(root=root, fs=fs, open_device=open_device)


def _probe_one(name: str, root: _Root, fs: FileSystem | None, open_device: _Open) -> Finding:
    f = _files(root, fs)
    if name == "tsm":
        seen, err = TSM(fs=f)._probe()
        return Finding("tsm", f.path(TSM_REPORT_DIR), seen, err)
    if name == "gramine":
        seen, err = Gramine(fs=f)._check()
        return Finding("gramine", f.path(GRAMINE_ATTESTATION_TYPE), seen, err)
    seen, err = Occlum(fs=f, open_device=open_device)._probe()
    return Finding("occlum", f.path(OCCLUM_DEVICE), seen, err)


def probe(*, root: _Root = None, fs: FileSystem | None = None, open_device: _Open = None) -> list[Finding]:
    """Check each TEE interface in detection order, stopping at the first usable one, and say what was seen.

    Checking configfs-tsm creates and removes a report entry; checking Occlum
    asks /dev/sgx for the quote size. ``root`` (or ``fs``) and ``open_device``
    point the attesters at stand-ins, for tests.
    """
    out = []
    for name in _ORDER:
        f = _probe_one(name, root, fs, open_device)
        out.append(f)
        if f.usable:
            break
    return out


def detect(*, root: _Root = None, fs: FileSystem | None = None, open_device: _Open = None) -> Attester:
    """Find the TEE this process runs in, looking in this fixed order (as the Go client):

    1. configfs-tsm with provider tdx_guest (``/sys/kernel/config/tsm/report``), a TDX guest;
    2. Gramine (``/dev/attestation/attestation_type`` saying ``dcap``);
    3. Occlum (``/dev/sgx``, a device answering SGXIOC_GET_DCAP_QUOTE_SIZE).

    Raises :class:`~asps.errors.NoTEEError` listing what was looked for and what
    was found at each path when none is usable. Never returns the simulator.
    """
    found = probe(root=root, fs=fs, open_device=open_device)
    if found[-1].usable:
        return _build(found[-1].attester, root, fs, open_device)
    raise NoTEEError(found)


def by_name(name: str, *, root: _Root = None, fs: FileSystem | None = None, open_device: _Open = None) -> Attester:
    """The named attester after checking its interface is usable: ``gramine``, ``occlum``, ``tsm`` (also ``tdx``,
    ``configfs-tsm``); ``auto`` or ``""`` detect. ``sim`` is refused: use :meth:`asps.Client.dev`."""
    n = name.strip().lower()
    if n in ("", "auto"):
        return detect(root=root, fs=fs, open_device=open_device)
    if n == "sim":
        raise AttestationError(
            'the simulator attester ("sim") is dev mode only: it needs the simulator PKI of "asps dev"; '
            "use asps.Client.dev(dev_dir=DIR) or SimAttester(dev_dir)",
            code="simulator",
        )
    if n in ("tdx", "configfs-tsm"):
        n = "tsm"
    if n not in _ORDER:
        raise AttestationError(
            f'unknown TEE "{name}": want auto, gramine, occlum or tsm (sim: dev mode only)', code="unknown TEE"
        )
    f = _probe_one(n, root, fs, open_device)
    if not f.usable:
        raise AttestationError(f"no TEE found (asked for {n}): {f.error}", code="no TEE found")
    return _build(n, root, fs, open_device)


# The demo workloads' identities (devmode.DemoMrEnclave etc. in Go).
DEMO_MR_ENCLAVE = hashlib.sha256(b"asps demo enclave").digest()
DEMO_MR_SIGNER = hashlib.sha256(b"asps demo signer").digest()
DEMO_MR_TD = hashlib.sha384(b"asps demo trust domain").digest()
DEMO_RTMR1 = hashlib.sha384(b"asps demo kernel and command line").digest()
DEMO_RTMR2 = hashlib.sha384(b"asps demo command line and initrd").digest()
# The dev server's own simulated enclave (asps dev --attested-server).
DEMO_SERVER_MR_ENCLAVE = hashlib.sha256(b"asps demo server enclave").digest()


@dataclass(frozen=True)
class SimIdentity:
    """What a simulated enclave or TD reports (the ``asps sim quote`` identity flags)."""

    tee: str = "sgx"
    mr_enclave: bytes = b""
    mr_signer: bytes = b""
    isv_prod_id: int = 0
    isv_svn: int = 0
    mr_td: bytes = b""
    rtmr1: bytes = b""
    rtmr2: bytes = b""
    debug: bool = False

    @classmethod
    def demo(cls, tee: str = "sgx") -> SimIdentity:
        """The demo enclave (or TD) the ``asps dev`` policy lets read its demo secrets."""
        if tee == "tdx":
            return cls(tee="tdx", mr_td=DEMO_MR_TD, rtmr1=DEMO_RTMR1, rtmr2=DEMO_RTMR2)
        return cls(tee="sgx", mr_enclave=DEMO_MR_ENCLAVE, mr_signer=DEMO_MR_SIGNER, isv_prod_id=1, isv_svn=2)

    def flags(self) -> list[str]:
        """The ``asps sim quote`` flags for this identity."""
        out = ["--tee", self.tee]
        hexflags = (
            ("--mr-enclave", self.mr_enclave),
            ("--mr-signer", self.mr_signer),
            ("--mr-td", self.mr_td),
            ("--rtmr1", self.rtmr1),
            ("--rtmr2", self.rtmr2),
        )
        for flag, v in hexflags:
            if v:
                out += [flag, v.hex()]
        if self.tee == "sgx":
            out += ["--isv-prod-id", str(self.isv_prod_id), "--isv-svn", str(self.isv_svn)]
        if self.debug:
            out.append("--debug")
        return out


def find_asps_binary(asps_bin: str | os.PathLike[str] | None = None) -> str:
    """The ``asps`` binary: asps_bin, else ``$ASPS_BIN``, else ``asps`` on PATH."""
    cand = os.fspath(asps_bin) if asps_bin else os.environ.get("ASPS_BIN", "")
    if cand:
        return cand
    found = shutil.which("asps")
    if not found:
        raise AttestationError(
            "dev mode asks the asps binary for simulated quotes, and there is none: put asps on PATH "
            "(go build -o asps ./cmd/asps), or set ASPS_BIN, or pass asps_bin=",
            code="simulator",
        )
    return found


class SimAttester(Attester):
    """Simulated quotes for dev mode, from the ``asps`` binary and the simulator PKI of ``asps dev``.

    One simulator only: the quote is made by ``asps sim quote --pki DEV_DIR/pki``,
    so it verifies under exactly the root the dev server trusts. Never chosen
    by :func:`detect`; a production server refuses its quotes.
    """

    name = "sim"

    def __init__(
        self,
        dev_dir: str | os.PathLike[str],
        *,
        identity: SimIdentity | None = None,
        asps_bin: str | os.PathLike[str] | None = None,
    ) -> None:
        self.dev_dir = pathlib.Path(dev_dir)
        self.identity = identity or SimIdentity.demo()
        self._bin = find_asps_binary(asps_bin)
        if not (self.dev_dir / "pki" / "root.pem").is_file():
            raise AttestationError(
                f"{self.dev_dir}/pki/root.pem: not found: not the directory of a running asps dev "
                "(start one with asps dev --dev-dir DIR)",
                code="simulator",
            )

    def __repr__(self) -> str:
        return f"SimAttester(dev_dir={str(self.dev_dir)!r}, tee={self.identity.tee!r})"

    def quote(self, report_data: bytes, *, timeout: float | None = None) -> bytes:
        """Run ``asps sim quote`` over report_data and return the quote."""
        return self._run(_check_report_data(report_data), "quote.bin", timeout)

    def collateral(self, *, timeout: float | None = None) -> bytes:
        """Collateral (dcap-qvl's JSON layout) for the simulated platform, valid now: for attesting a dev server."""
        return self._run(bytes(64), "collateral.json", timeout)

    def _run(self, rd: bytes, want: str, timeout: float | None) -> bytes:
        with tempfile.TemporaryDirectory(prefix="asps-sim-") as tmp:
            cmd = [
                self._bin,
                "sim",
                "quote",
                "--pki",
                str(self.dev_dir / "pki"),
                *self.identity.flags(),
                "--report-data",
                rd.hex(),
                "--out",
                tmp,
            ]
            try:
                r = subprocess.run(cmd, capture_output=True, timeout=timeout or 60, check=False)
            except (OSError, subprocess.TimeoutExpired) as e:
                raise AttestationError(f"sim: run {self._bin} sim quote: {e}", code="quote failed") from None
            if r.returncode != 0:
                msg = r.stderr.decode(errors="replace").strip()
                raise AttestationError(f"sim: {self._bin} sim quote: exit {r.returncode}: {msg}", code="quote failed")
            with contextlib.suppress(OSError):
                b = pathlib.Path(tmp, want).read_bytes()
                return _check_quote("sim", "asps sim quote", b, self.identity.tee, rd) if want == "quote.bin" else b
        raise AttestationError(f"sim: asps sim quote wrote no {want}", code="quote failed")
