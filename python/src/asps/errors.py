"""Typed errors of the asps client.

Every error raised by this package derives from :class:`AspsError` and has a
``code``: for a refusal by the server, the gRPC status name the server chose
(``PERMISSION_DENIED``, ``UNAUTHENTICATED``, ``NOT_FOUND``, ``UNAVAILABLE``,
``INVALID_ARGUMENT``); for a local failure, a short fixed reason in the words
of the Go packages (``peer key does not match the pin``, ``no TEE found``,
``malformed evidence``, …). Callers branch on the class or on ``code``; the
message says what was seen against what was expected. No error ever carries
a secret value: the server never puts one in a status message, and this
package never puts one anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AspsError",
    "AttestationError",
    "DeadlineExceededError",
    "EvidenceError",
    "Finding",
    "InvalidArgumentError",
    "NoTEEError",
    "NotFoundError",
    "PermissionDeniedError",
    "RefusedError",
    "ResourceExhaustedError",
    "ServerAuthError",
    "UnauthenticatedError",
    "UnavailableError",
]


class AspsError(Exception):
    """Base class of every error of this package."""

    code: str
    """The reason code: a gRPC status name for server refusals, a fixed reason otherwise."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class RefusedError(AspsError):
    """The server answered and refused the request (a gRPC status other than OK).

    ``code`` is the status name and ``message`` the server's status message,
    which names the check that failed (never a secret value).
    """


class PermissionDeniedError(RefusedError):
    """PERMISSION_DENIED: the evidence verified, but no app matched it or the app may not read a name."""


class UnauthenticatedError(RefusedError):
    """UNAUTHENTICATED: no RA-TLS certificate, evidence that failed verification, or a quote not bound to the key."""


class NotFoundError(RefusedError):
    """NOT_FOUND: the app may read the name, but the secret is missing from the store."""


class InvalidArgumentError(RefusedError):
    """INVALID_ARGUMENT: an empty, repeated or oversized name, or too many."""


class UnavailableError(AspsError):
    """UNAVAILABLE: the server (or its secret store) could not be reached; retrying later may succeed."""

    transport: bool = False
    """True when no server answered (connection refused or reset, nothing listening): the transport's
    error, not a server's. A client that fails over reports a server's reason in preference to it."""


class ResourceExhaustedError(UnavailableError):
    """RESOURCE_EXHAUSTED: the server sheds load (or rate-limits failed attestations from this address).

    ``retry_after`` is the server's hint in seconds (0 when it gave none); the client never retries sooner.
    """

    retry_after: float = 0.0


class DeadlineExceededError(UnavailableError):
    """The call did not complete within its timeout (code ``DEADLINE_EXCEEDED``)."""


class ServerAuthError(AspsError):
    """The server did not authenticate: its key is not the pinned one, or no CA vouches for it.

    Raised before anything is sent to the server.
    """


class AttestationError(AspsError):
    """The attester could not produce a quote committing to the given report data."""


@dataclass(frozen=True)
class Finding:
    """What detection saw at one TEE interface (as Go's ``attest.Finding``)."""

    attester: str
    """The attester's name: ``tsm``, ``gramine``, ``occlum``."""
    path: str
    """Where it looked."""
    seen: str
    """What was there: ``not found``, ``attestation type "none"``, ``a directory``, …"""
    error: str
    """Why the interface is not usable; empty when it is."""

    @property
    def usable(self) -> bool:
        """True when the interface can produce quotes."""
        return self.error == ""


class NoTEEError(AttestationError):
    """No usable TEE interface: lists what was looked for, in order, and what was found at each path."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = tuple(findings)
        parts = ", ".join(f"{f.attester} at {f.path}" for f in self.findings)
        msg = f"no TEE found (looked for, in order, {parts})"
        for f in self.findings:
            msg += "; " + (f.error if f.error else f"{f.attester}: {f.path}: {f.seen}")
        msg += "; the simulator is never chosen automatically: for dev mode, ask for it (asps.Client.dev(dev_dir=DIR))"
        super().__init__(msg, code="no TEE found")


class EvidenceError(AspsError):
    """An RA-TLS certificate or its evidence does not decode.

    ``code`` is one of the Go ``ratls`` reasons: ``no evidence extension``,
    ``malformed evidence``, ``unsupported evidence``, ``evidence too large``.
    """
