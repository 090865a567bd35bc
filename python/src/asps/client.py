"""The asps client: fetch secrets over a channel bound to this workload's attestation.

Each :class:`Client` makes a fresh P-256 key, gets a quote committing to it
from the attester, wraps both in an RA-TLS certificate (see :mod:`asps.ratls`)
and presents it in the TLS 1.3 handshake; the server verifies the quote,
checks that it binds the key the handshake proved, and matches the workload
against its policy. The server is authenticated first, before anything is
sent: by the SHA-256 of its public key (``server_pin``, as ``asps dev``
prints it) or by a CA (``server_ca``).
"""

from __future__ import annotations

import logging
import os
import pathlib
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from . import attest, ratls
from ._pb import asps_pb2, asps_pb2_grpc
from .errors import (
    AspsError,
    DeadlineExceededError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    RefusedError,
    ServerAuthError,
    UnauthenticatedError,
    UnavailableError,
)

__all__ = ["Client", "Secrets", "WhoAmI", "default_dev_dir", "fetch"]

log = logging.getLogger("asps")

_T = TypeVar("_T")


class Secrets(dict[str, bytes]):
    """The secrets received: a ``dict`` from name to value (bytes), in request order.

    Its ``repr`` and ``str`` list the names only, so printing or logging the
    mapping by mistake does not reveal a value.
    """

    def __repr__(self) -> str:
        return f"Secrets(names={list(self)!r}, values=<hidden>)"

    __str__ = __repr__


@dataclass(frozen=True)
class WhoAmI:
    """How the server sees this workload: its verified claims and the policy decision on them."""

    tee: str
    runtime: str
    quote_version: int
    debug: bool
    tcb_status: str
    advisory_ids: tuple[str, ...]
    fmspc: str
    simulated: bool
    report_data: bytes
    mr_enclave: bytes
    mr_signer: bytes
    mr_td: bytes
    matched_app: str
    """The policy app the claims matched; empty when none did."""
    match_error: str
    """Why no app matched; empty when one did."""
    secret_names: tuple[str, ...]
    """Names (never values) of the secrets the matched app may read."""
    response: Any = field(repr=False, compare=False)
    """The full ``asps.v1.WhoAmIResponse`` message."""


def default_dev_dir() -> pathlib.Path:
    """The directory ``asps dev`` uses by default: ``$XDG_CONFIG_HOME/asps/dev`` (``~/.config/asps/dev``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return pathlib.Path(base) / "asps" / "dev"


_REFUSALS: dict[grpc.StatusCode, type[RefusedError]] = {
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
}


def _from_rpc_error(e: grpc.RpcError, what: str) -> AspsError:
    call = cast(grpc.Call, e)
    code = call.code()
    msg = call.details() or ""
    name = code.name if code is not None else "UNKNOWN"
    if code == grpc.StatusCode.UNAVAILABLE and "CERTIFICATE_VERIFY_FAILED" in msg:
        # The TLS handshake failed on the server's certificate: not a
        # transient condition, and not worth a retry.
        return ServerAuthError(f"{what}: the server's certificate does not verify: {msg}", code="server certificate not trusted")
    if code == grpc.StatusCode.UNAVAILABLE:
        return UnavailableError(f"{what}: unavailable: {msg}", code=name)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceededError(f"{what}: deadline exceeded: {msg}", code=name)
    cls = _REFUSALS.get(code, RefusedError) if code is not None else RefusedError
    return cls(f"{what}: {name}: {msg}", code=name)


def _parse_pin(pin: str | bytes) -> bytes:
    if isinstance(pin, bytes) and len(pin) == 32:
        return pin
    s = pin.decode() if isinstance(pin, bytes) else pin
    s = s.strip().lower().replace(":", "")
    try:
        b = bytes.fromhex(s)
    except ValueError:
        b = b""
    if len(b) != 32:
        raise ValueError("server_pin: want 64 hex digits (the SHA-256 of the server's public key, as asps dev prints it)")
    return b


def _split_target(server: str) -> tuple[str, int]:
    host, sep, port = server.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"server {server!r}: want HOST:PORT")
    return host.strip("[]"), int(port)


def _cert_name(cert: x509.Certificate) -> str:
    """A name the certificate carries, for gRPC's host name check against a pinned certificate."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        dns = san.get_values_for_type(x509.DNSName)
        if dns:
            return dns[0]
        ips = san.get_values_for_type(x509.IPAddress)
        if ips:
            return str(ips[0])
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else ""


class Client:
    """An attested connection to an asps server; use it as a context manager.

    >>> with asps.Client(server="10.0.0.5:7443", server_pin="ab12…") as c:   # doctest: +SKIP
    ...     key = c.fetch(["disk-key"])["disk-key"]

    ``attester`` defaults to the TEE this process runs in (:func:`asps.attest.detect`);
    the simulator is used only through :meth:`dev`. ``timeout`` bounds each call
    (attestation, connection and retries included); a call that finds the
    server unavailable is retried up to ``retries`` times with backoff.
    """

    def __init__(
        self,
        server: str,
        *,
        server_pin: str | bytes | None = None,
        server_ca: str | bytes | os.PathLike[str] | None = None,
        server_name: str | None = None,
        server_attestation: ratls.ServerPolicy | None = None,
        attester: attest.Attester | None = None,
        timeout: float = 30.0,
        retries: int = 3,
    ) -> None:
        if sum(x is not None for x in (server_pin, server_ca, server_attestation)) != 1:
            raise ValueError(
                "say how to trust the server: server_pin=HEX, server_ca=PEM or server_attestation=ServerPolicy (exactly one)"
            )
        self._server_policy = server_attestation
        self.server = server
        self._host, self._port = _split_target(server)
        self._pin = _parse_pin(server_pin) if server_pin is not None else None
        self._ca: bytes | None = None
        if server_ca is not None:
            if isinstance(server_ca, bytes):
                self._ca = server_ca
            elif isinstance(server_ca, str) and "-----BEGIN" in server_ca:
                self._ca = server_ca.encode()
            else:
                self._ca = pathlib.Path(server_ca).read_bytes()
        self._server_name = server_name
        self._attester = attester
        self.timeout = timeout
        self.retries = max(1, retries)
        self._channel: grpc.Channel | None = None
        self._stub: Any = None
        self._cert: ratls.Certificate | None = None
        self._lock = threading.Lock()

    @classmethod
    def dev(
        cls,
        dev_dir: str | os.PathLike[str] | None = None,
        *,
        server: str | None = None,
        identity: attest.SimIdentity | None = None,
        asps_bin: str | os.PathLike[str] | None = None,
        attested_server: bool = False,
        timeout: float = 30.0,
    ) -> Client:
        """A client for a dev server (``asps dev``), as the demo enclave with simulated evidence.

        Reads the server's address and key pin from dev_dir (default
        :func:`default_dev_dir`, where ``asps dev`` writes them) and asks the
        ``asps`` binary (on PATH, or ``$ASPS_BIN``) for simulated quotes on the
        dev server's simulator PKI. Never for production: only a dev server
        accepts simulated evidence.
        """
        d = pathlib.Path(dev_dir) if dev_dir is not None else default_dev_dir()
        try:
            addr = server or (d / "server.addr").read_text().strip()
            pin = (d / "server.pin").read_text().strip()
        except OSError as e:
            raise UnavailableError(
                f"dev mode: {e.filename}: {e.strerror}: is asps dev running with --dir {d}?", code="UNAVAILABLE"
            ) from None
        att = attest.SimAttester(d, identity=identity, asps_bin=asps_bin)
        if attested_server:
            policy = ratls.ServerPolicy(
                mr_enclave=attest.DEMO_SERVER_MR_ENCLAVE,
                collateral=att.collateral(timeout=timeout),
                trust_root=(d / "pki" / "root.pem").read_bytes(),
            )
            return cls(addr, server_attestation=policy, attester=att, timeout=timeout)
        return cls(addr, server_pin=pin, attester=att, timeout=timeout)

    def __repr__(self) -> str:
        how = f"server_pin={self._pin.hex()}" if self._pin is not None else "server_ca=…"
        if self._server_policy is not None:
            how = f"server_attestation={self._server_policy!r}"
        return f"Client(server={self.server!r}, {how}, attester={self._attester!r})"

    def __enter__(self) -> Client:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection; the key is forgotten."""
        with self._lock:
            if self._channel is not None:
                self._channel.close()
            self._channel, self._stub, self._cert = None, None, None

    # Connection.

    def _retry(self, what: str, deadline: float, op: Any) -> Any:
        delay = 0.2
        last: AspsError | None = None
        for attempt in range(self.retries):
            if attempt:
                if time.monotonic() + delay >= deadline:
                    break
                log.debug("asps: %s: retrying in %.1fs after: %s", what, delay, last)
                time.sleep(delay)
                delay *= 2
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                return op(remaining)
            except UnavailableError as e:
                if isinstance(e, DeadlineExceededError):
                    raise
                last = e
        if last is None:
            raise DeadlineExceededError(f"{what}: no time left within the timeout of {self.timeout}s", code="DEADLINE_EXCEEDED")
        raise last

    def _probe_server(self, remaining: float) -> bytes:
        """Connect once with TLS 1.3 and return the server's certificate (DER); nothing is sent."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the key is checked against the pin below
        ctx.set_alpn_protocols(["h2"])
        try:
            with (
                socket.create_connection((self._host, self._port), timeout=remaining) as sock,
                ctx.wrap_socket(sock, server_hostname=self._host or None) as tls,
            ):
                der = tls.getpeercert(binary_form=True)
        except (OSError, ssl.SSLError) as e:
            raise UnavailableError(f"connect {self.server}: {e}", code="UNAVAILABLE") from None
        if not der:
            raise ServerAuthError(
                f"ratls: verify server: peer presented no certificate: {self.server}: want a certificate with a pinned key",
                code="peer presented no certificate",
            )
        return der

    def connect(self) -> None:
        """Attest (a quote over a fresh key), authenticate the server and open the channel. Idempotent, thread-safe."""
        with self._lock:
            if self._channel is None:
                self._connect()

    def _connect(self) -> None:
        deadline = time.monotonic() + self.timeout
        attester = self._attester if self._attester is not None else attest.detect()
        self._attester = attester
        cert = ratls.new_certificate(attester, timeout=self.timeout)
        options: list[tuple[str, Any]] = [("grpc.enable_retries", 0)]
        roots: bytes | None
        if self._pin is not None or self._server_policy is not None:
            der = self._retry(f"connect {self.server}", deadline, self._probe_server)
            if self._server_policy is not None:
                ratls.verify_server(der, self._server_policy)
            server_cert = x509.load_der_x509_certificate(der)
            got = ratls.spki_sha256(server_cert)
            if self._pin is not None and got != self._pin:
                raise ServerAuthError(
                    f"ratls: verify server: peer key does not match the pin: {self.server}: SPKI SHA-256 {got.hex()}, "
                    f"want {self._pin.hex()}",
                    code="peer key does not match the pin",
                )
            # The pinned (or attested) certificate becomes the channel's only
            # trust anchor, so the connection gRPC makes is to the key just checked.
            roots = server_cert.public_bytes(serialization.Encoding.PEM)
            name = self._server_name or _cert_name(server_cert)
            if name:
                options.append(("grpc.ssl_target_name_override", name))
        else:
            roots = self._ca
            if self._server_name:
                options.append(("grpc.ssl_target_name_override", self._server_name))
        creds = grpc.ssl_channel_credentials(root_certificates=roots, private_key=cert.key_pem, certificate_chain=cert.cert_pem)
        self._channel = grpc.secure_channel(self.server, creds, options=options)
        self._stub = cast(Any, asps_pb2_grpc).SecretsStub(self._channel)
        self._cert = cert
        log.debug("asps: attested channel to %s prepared (evidence from %s)", self.server, attester.name)

    def _call(self, what: str, method: str, request: Any) -> Any:
        self.connect()
        stub = self._stub
        deadline = time.monotonic() + self.timeout

        def op(remaining: float) -> Any:
            try:
                return getattr(stub, method)(request, timeout=remaining)
            except grpc.RpcError as e:
                raise _from_rpc_error(e, what) from None

        return self._retry(what, deadline, op)

    # The API.

    def fetch(self, names: str | Iterable[str]) -> Secrets:
        """Fetch the named secrets, all or none; returns name → bytes in request order.

        Raises :class:`~asps.errors.PermissionDeniedError`,
        :class:`~asps.errors.UnauthenticatedError`,
        :class:`~asps.errors.NotFoundError`,
        :class:`~asps.errors.InvalidArgumentError` or
        :class:`~asps.errors.UnavailableError` with the server's reason.
        """
        wanted = [names] if isinstance(names, str) else list(names)
        resp = self._call("get secrets", "GetSecrets", asps_pb2.GetSecretsRequest(names=wanted))
        got = list(resp.secrets)
        if len(got) != len(wanted):
            raise AspsError(f"client: asked for {len(wanted)} secrets, the server sent {len(got)}", code="bad response")
        out = Secrets()
        for want, s in zip(wanted, got, strict=True):
            if s.name != want:
                raise AspsError(f"client: asked for {want!r}, the server sent {s.name!r}", code="bad response")
            out[s.name] = bytes(s.value)
        log.debug("asps: received secrets %s", list(out))
        return out

    def whoami(self) -> WhoAmI:
        """Ask how the server sees this workload (claims, matched app, readable names); never returns values."""
        r = self._call("whoami", "WhoAmI", asps_pb2.WhoAmIRequest())
        return WhoAmI(
            tee=r.tee,
            runtime=r.runtime,
            quote_version=r.quote_version,
            debug=r.debug,
            tcb_status=r.tcb_status,
            advisory_ids=tuple(r.advisory_ids),
            fmspc=r.fmspc,
            simulated=r.simulated,
            report_data=bytes(r.report_data),
            mr_enclave=bytes(r.sgx.mr_enclave),
            mr_signer=bytes(r.sgx.mr_signer),
            mr_td=bytes(r.tdx.mr_td),
            matched_app=r.matched_app,
            match_error=r.match_error,
            secret_names=tuple(r.secret_names),
            response=r,
        )


def fetch(
    names: str | Iterable[str],
    *,
    server: str,
    server_pin: str | bytes | None = None,
    server_ca: str | bytes | os.PathLike[str] | None = None,
    server_name: str | None = None,
    server_attestation: ratls.ServerPolicy | None = None,
    attester: attest.Attester | None = None,
    timeout: float = 30.0,
) -> Secrets:
    """One call: attest, connect, fetch the named secrets and close. See :class:`Client`."""
    with Client(
        server,
        server_pin=server_pin,
        server_ca=server_ca,
        server_name=server_name,
        server_attestation=server_attestation,
        attester=attester,
        timeout=timeout,
    ) as c:
        return c.fetch(names)
