"""asps: secrets for Python workloads in Intel SGX and TDX, released on remote attestation.

>>> import asps
>>> with asps.Client.dev() as client:          # against `asps dev`  # doctest: +SKIP
...     print(client.fetch(["demo-key"]))

Modules: :mod:`asps.client` (the client), :mod:`asps.attest` (evidence from
Gramine, Occlum, configfs-tsm or the dev simulator), :mod:`asps.ratls`
(RA-TLS certificates), :mod:`asps.errors` (typed errors).
"""

from . import attest, errors, ratls
from .client import Client, Secrets, WhoAmI, default_dev_dir, fetch
from .errors import (
    AspsError,
    AttestationError,
    DeadlineExceededError,
    EvidenceError,
    InvalidArgumentError,
    NoTEEError,
    NotFoundError,
    PermissionDeniedError,
    RefusedError,
    ResourceExhaustedError,
    ServerAuthError,
    UnauthenticatedError,
    UnavailableError,
)

__all__ = [
    "AspsError",
    "AttestationError",
    "Client",
    "DeadlineExceededError",
    "EvidenceError",
    "InvalidArgumentError",
    "NoTEEError",
    "NotFoundError",
    "PermissionDeniedError",
    "RefusedError",
    "ResourceExhaustedError",
    "Secrets",
    "ServerAuthError",
    "UnauthenticatedError",
    "UnavailableError",
    "WhoAmI",
    "attest",
    "default_dev_dir",
    "errors",
    "fetch",
    "ratls",
]

__version__ = "0.1.0"
