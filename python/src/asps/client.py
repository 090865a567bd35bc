"""The asps client: fetch secrets over a channel bound to this workload's attestation.

Each :class:`Client` makes a fresh P-256 key, gets a quote committing to it
from the attester, wraps both in an RA-TLS certificate (see :mod:`asps.ratls`)
and presents it in the TLS 1.3 handshake; the server verifies the quote,
checks that it binds the key the handshake proved, and matches the workload
against its policy. The server is authenticated first, before anything is
sent: by the SHA-256 of its public key (``server_pin``, as ``asps dev``
prints it) or by a CA (``server_ca``).

A client may be given several replicas of the server (a list, a
comma-separated string, or ``dns:///name:port`` for every address of a
name). Like the Go client it fails over: calls go round robin over the
replicas, skipping those that recently failed to answer; UNAVAILABLE and
RESOURCE_EXHAUSTED are retried with exponential backoff and full jitter,
never sooner than the server's ``asps-retry-after-ms`` hint, within the
client's ``timeout``; every other refusal (PERMISSION_DENIED,
UNAUTHENTICATED, …) is final and raised at once with the server's reason.
"""

from __future__ import annotations

import logging
import os
import pathlib
import random
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Sequence
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
    ResourceExhaustedError,
    ServerAuthError,
    UnauthenticatedError,
    UnavailableError,
)

__all__ = ["Client", "Secrets", "WhoAmI", "default_dev_dir", "fetch"]

log = logging.getLogger("asps")

_T = TypeVar("_T")

_rng = random.SystemRandom()  # jitter and the first replica: spread a crowd of clients


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
        err = UnavailableError(f"{what}: unavailable: {msg}", code=name)
        err.transport = _is_transport_failure(msg)
        return err
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        rx = ResourceExhaustedError(f"{what}: {name}: {msg}", code=name)
        rx.retry_after = _retry_hint(call)
        return rx
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceededError(f"{what}: deadline exceeded: {msg}", code=name)
    cls = _REFUSALS.get(code, RefusedError) if code is not None else RefusedError
    return cls(f"{what}: {name}: {msg}", code=name)


# What gRPC says when no server answered; a server's own UNAVAILABLE says why
# (shutting down, store or audit unavailable, collateral unobtainable).
_TRANSPORT_MARKS = (
    "failed to connect",
    "connection refused",
    "connection reset",
    "socket closed",
    "broken pipe",
    "connections to all backends failing",
    "no route to host",
    "network is unreachable",
    "dns resolution failed",
    "endpoint closing",
)


def _is_transport_failure(details: str) -> bool:
    d = details.lower()
    return any(m in d for m in _TRANSPORT_MARKS)


RETRY_AFTER_KEY = "asps-retry-after-ms"
"""The trailer in which a shedding server says, in milliseconds, when to try again."""


def _retry_hint(call: grpc.Call) -> float:
    """The server's retry hint in seconds: the ``asps-retry-after-ms`` trailer, 0 when absent or out of range."""
    try:
        md = call.trailing_metadata() or ()
    except Exception:  # noqa: BLE001 - an error without trailers has no hint
        return 0.0
    vals = [v for k, v in md if k == RETRY_AFTER_KEY]
    if len(vals) != 1:
        return 0.0
    v = vals[0]
    if isinstance(v, bytes):
        v = v.decode("ascii", "replace")
    if not v.isdigit() or len(v) > 6:
        return 0.0
    ms = int(v)
    return ms / 1000 if 0 < ms <= 60_000 else 0.0


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
    if not sep or not port.isdigit() or not host or "," in host or "/" in host or int(port) > 65535:
        raise ValueError(f"server {server!r}: want HOST:PORT")
    return host.strip("[]"), int(port)


DNS_PREFIX = "dns:///"


def _parse_servers(server: str | Sequence[str]) -> list[str]:
    """The replicas named: HOST:PORT and ``dns:///NAME:PORT`` entries, from a list or a comma-separated string."""
    items = [server] if isinstance(server, str) else list(server)
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"server: want HOST:PORT strings, got {type(item).__name__}")
        for a in item.split(","):
            a = a.strip()
            if not a:
                continue
            _split_target(a[len(DNS_PREFIX) :] if a.startswith(DNS_PREFIX) else a)
            if "://" in a and not a.startswith(DNS_PREFIX):
                raise ValueError(f"server {a!r}: want HOST:PORT or dns:///NAME:PORT")
            out.append(a)
    if not out:
        raise ValueError("server: no address given (want HOST:PORT, several, or dns:///NAME:PORT)")
    return out


@dataclass
class _Replica:
    """One address to call, with what the client knows of it."""

    target: str
    """HOST:PORT as gRPC and the probe dial it."""
    tls_name: str | None
    """The name the server's certificate is checked against (a dns:/// name), when not the target's host."""
    channel: grpc.Channel | None = None
    stub: Any = None
    down_until: float = 0.0
    failures: int = 0


def _resolve(entry: str) -> list[_Replica]:
    if not entry.startswith(DNS_PREFIX):
        return [_Replica(entry, None)]
    name, port = _split_target(entry[len(DNS_PREFIX) :])
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise UnavailableError(f"resolve {entry}: {e}", code="UNAVAILABLE") from None
    seen: list[_Replica] = []
    for family, _, _, _, sa in infos:
        ip = str(sa[0])
        t = f"[{ip}]:{port}" if family == socket.AF_INET6 else f"{ip}:{port}"
        if all(r.target != t for r in seen):
            seen.append(_Replica(t, name))
    return seen


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
    """An attested connection to an asps server (or several replicas of it); use it as a context manager.

    >>> with asps.Client(server="10.0.0.5:7443", server_pin="ab12…") as c:   # doctest: +SKIP
    ...     key = c.fetch(["disk-key"])["disk-key"]

    ``server`` is one ``HOST:PORT``, several (a list, or comma-separated), or
    ``dns:///NAME:PORT`` (every address NAME resolves to, resolved when the
    client connects). All replicas share one server identity: each is
    checked against the same pin, CA or attestation policy before anything
    is sent to it. Calls go round robin over the replicas and skip those
    that recently failed to answer; a call refused with UNAVAILABLE or
    RESOURCE_EXHAUSTED is retried, on the next replica, after an exponential
    backoff with full jitter that is never shorter than the server's
    ``asps-retry-after-ms`` hint. Any other refusal is final.

    ``attester`` defaults to the TEE this process runs in (:func:`asps.attest.detect`);
    the simulator is used only through :meth:`dev`. ``timeout`` bounds each call
    (attestation, connection and retries included); ``retries`` is the number of
    attempts per call, the first included (1: no retry). ``retried`` counts the
    retries made so far.
    """

    backoff_base: float = 0.05
    """The first retry waits up to this many seconds (doubling per attempt, full jitter)."""
    backoff_max: float = 3.0
    """No backoff (before the server's hint) is longer than this many seconds."""

    def __init__(
        self,
        server: str | Sequence[str],
        *,
        server_pin: str | bytes | None = None,
        server_ca: str | bytes | os.PathLike[str] | None = None,
        server_name: str | None = None,
        server_attestation: ratls.ServerPolicy | None = None,
        attester: attest.Attester | None = None,
        timeout: float = 30.0,
        retries: int = 8,
    ) -> None:
        if sum(x is not None for x in (server_pin, server_ca, server_attestation)) != 1:
            raise ValueError(
                "say how to trust the server: server_pin=HEX, server_ca=PEM or server_attestation=ServerPolicy (exactly one)"
            )
        self._server_policy = server_attestation
        self._entries = _parse_servers(server)
        self.server = ",".join(self._entries)
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
        self.retried = 0
        self._replicas: list[_Replica] = []
        self._next = 0
        self._opened = 0  # channels ever opened (for tests: none before the server is authenticated)
        self._cert: ratls.Certificate | None = None
        self._lock = threading.Lock()

    @classmethod
    def dev(
        cls,
        dev_dir: str | os.PathLike[str] | None = None,
        *,
        server: str | Sequence[str] | None = None,
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
                f"dev mode: {e.filename}: {e.strerror}: is asps dev running with --dev-dir {d}?", code="UNAVAILABLE"
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
        """Close the connections; the key is forgotten."""
        with self._lock:
            for r in self._replicas:
                if r.channel is not None:
                    r.channel.close()
            self._replicas, self._cert = [], None

    # Replicas and retries.

    def _pick(self) -> _Replica:
        """The next replica, round robin, skipping those marked down while any other is not."""
        with self._lock:
            reps = self._replicas
            if not reps:
                raise UnavailableError(f"{self.server}: the client is closed", code="UNAVAILABLE")
            now = time.monotonic()
            n = len(reps)
            for k in range(n):
                i = (self._next + k) % n
                if reps[i].down_until <= now:
                    self._next = i + 1
                    return reps[i]
            # All are down: the one expected back first.
            i = min(range(n), key=lambda j: reps[j].down_until)
            self._next = i + 1
            return reps[i]

    def _mark(self, r: _Replica, err: AspsError | None) -> None:
        """Record how a replica answered: a success clears it; no answer or shedding sets it aside for a while."""
        with self._lock:
            if err is None:
                r.failures, r.down_until = 0, 0.0
                return
            r.failures += 1
            hold = min(self.backoff_max, 0.5 * 2 ** min(r.failures - 1, 10))
            if isinstance(err, ResourceExhaustedError) and err.retry_after > 0:
                hold = err.retry_after
            r.down_until = time.monotonic() + hold

    def _backoff(self, attempt: int, hint: float) -> float:
        """The wait before attempt+1 (attempt ≥ 1): full jitter, never shorter than the server's hint."""
        d = min(self.backoff_max, self.backoff_base * 2 ** min(attempt - 1, 20))
        d = _rng.uniform(0, d)
        if hint > 0:
            d = max(d, hint + _rng.uniform(0, hint))
        return d

    def _retry(self, what: str, deadline: float, op: Any) -> Any:
        """Run op(replica, remaining) on replica after replica until it succeeds or fails for good.

        The error raised when attempts or time run out is the last one a
        server sent, when one did (it says why), rather than the transport's.
        """
        last: AspsError | None = None
        from_server: AspsError | None = None
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            r = self._pick()
            try:
                out = op(r, remaining)
            except DeadlineExceededError:
                if from_server is not None:
                    raise from_server from None
                raise
            except UnavailableError as e:
                self._mark(r, e)
                last = e
                if not e.transport:
                    from_server = e
                hint = e.retry_after if isinstance(e, ResourceExhaustedError) else 0.0
                if attempt >= self.retries:
                    break
                wait = self._backoff(attempt, hint)
                if time.monotonic() + wait >= deadline:
                    break
                log.debug("asps: %s: retrying in %.2fs after: %s", what, wait, e)
                time.sleep(wait)
                with self._lock:
                    self.retried += 1
                continue
            self._mark(r, None)
            return out
        err = from_server or last
        if err is None:
            raise DeadlineExceededError(f"{what}: no time left within the timeout of {self.timeout}s", code="DEADLINE_EXCEEDED")
        raise err

    # Connection.

    def _probe_server(self, r: _Replica, remaining: float) -> bytes:
        """Connect once to the replica with TLS 1.3 and return its certificate (DER); nothing is sent."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the key is checked against the pin below
        ctx.set_alpn_protocols(["h2"])
        host, port = _split_target(r.target)
        try:
            with (
                socket.create_connection((host, port), timeout=remaining) as sock,
                ctx.wrap_socket(sock, server_hostname=r.tls_name or host or None) as tls,
            ):
                der = tls.getpeercert(binary_form=True)
        except (OSError, ssl.SSLError) as e:
            err = UnavailableError(f"connect {r.target}: {e}", code="UNAVAILABLE")
            err.transport = True
            raise err from None
        if not der:
            raise ServerAuthError(
                f"ratls: verify server: peer presented no certificate: {r.target}: want a certificate with a pinned key",
                code="peer presented no certificate",
            )
        return der

    def _open(self, r: _Replica, remaining: float) -> Any:
        """The replica's stub: on first use, authenticate the replica and open its channel."""
        with self._lock:
            if r.stub is not None:
                return r.stub
            cert = self._cert
        if cert is None:
            raise UnavailableError(f"{self.server}: the client is closed", code="UNAVAILABLE")
        options: list[tuple[str, Any]] = [("grpc.enable_retries", 0)]
        roots: bytes | None
        if self._pin is not None or self._server_policy is not None:
            der = self._probe_server(r, remaining)
            if self._server_policy is not None:
                ratls.verify_server(der, self._server_policy)
            server_cert = x509.load_der_x509_certificate(der)
            got = ratls.spki_sha256(server_cert)
            if self._pin is not None and got != self._pin:
                raise ServerAuthError(
                    f"ratls: verify server: peer key does not match the pin: {r.target}: SPKI SHA-256 {got.hex()}, "
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
            override = self._server_name or r.tls_name
            if override:
                options.append(("grpc.ssl_target_name_override", override))
        creds = grpc.ssl_channel_credentials(root_certificates=roots, private_key=cert.key_pem, certificate_chain=cert.cert_pem)
        ch = grpc.secure_channel(r.target, creds, options=options)
        with self._lock:
            if r.stub is not None or self._cert is not cert:  # another thread won, or the client closed
                ch.close()
                if r.stub is None:
                    raise UnavailableError(f"{self.server}: the client is closed", code="UNAVAILABLE")
                return r.stub
            r.channel, r.stub = ch, cast(Any, asps_pb2_grpc).SecretsStub(ch)
            self._opened += 1
            log.debug("asps: attested channel to %s prepared", r.target)
            return r.stub

    def connect(self) -> None:
        """Attest (a quote over a fresh key), authenticate a replica and open its channel. Idempotent, thread-safe."""
        with self._lock:
            if self._cert is not None:
                return
        deadline = time.monotonic() + self.timeout
        attester = self._attester if self._attester is not None else attest.detect()
        self._attester = attester
        cert = ratls.new_certificate(attester, timeout=self.timeout)
        replicas: list[_Replica] = []
        for e in self._entries:
            replicas.extend(_resolve(e))
        if not replicas:
            raise UnavailableError(f"{self.server}: no address to connect to", code="UNAVAILABLE")
        with self._lock:
            if self._cert is not None:
                return
            self._cert, self._replicas = cert, replicas
            # Start at a random replica, so that a crowd of clients starting
            # together spreads over the replicas.
            self._next = _rng.randrange(len(replicas))
        try:
            self._retry(f"connect {self.server}", deadline, self._open)
        except BaseException:
            self.close()
            raise
        log.debug("asps: connected to %s (evidence from %s)", self.server, attester.name)

    def _call(self, what: str, method: str, request: Any) -> Any:
        self.connect()
        deadline = time.monotonic() + self.timeout

        def op(r: _Replica, remaining: float) -> Any:
            stub = self._open(r, remaining)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceededError(
                    f"{what}: no time left within the timeout of {self.timeout}s", code="DEADLINE_EXCEEDED"
                )
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
    server: str | Sequence[str],
    server_pin: str | bytes | None = None,
    server_ca: str | bytes | os.PathLike[str] | None = None,
    server_name: str | None = None,
    server_attestation: ratls.ServerPolicy | None = None,
    attester: attest.Attester | None = None,
    timeout: float = 30.0,
    retries: int = 8,
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
        retries=retries,
    ) as c:
        return c.fetch(names)
