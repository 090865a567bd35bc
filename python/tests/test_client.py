"""The client against a real `asps dev` on a loopback port: secrets, refusals, server trust, failures."""

from __future__ import annotations

import functools
import logging
import pathlib
import ssl
import subprocess

import pytest
from conftest import DevServer, free_port

import asps
from asps import attest

DEMO_KEY = bytes.fromhex("42cd4b7f1e0a9c3d5b6f8e2a1c4d7b9e0f3a5c8d2b4e6f1a3c5d7e9b0a2c4e6f")
DB_PASSWORD = b"correct horse battery staple"
ALL_VALUES = (DEMO_KEY, DB_PASSWORD, b"token-for-the-demo-trust-domain", b"a secret the demo enclave may not read")


def assert_no_secret(text: str) -> None:
    for v in ALL_VALUES:
        assert v.hex() not in text and v.decode(errors="replace") not in text, "a secret value leaked"


def test_fetch_several_secrets(dev_server: DevServer) -> None:
    with asps.Client.dev(dev_server.dir) as c:
        got = c.fetch(["demo-key", "db-password"])
    assert got == {"demo-key": DEMO_KEY, "db-password": DB_PASSWORD}
    assert list(got) == ["demo-key", "db-password"]
    assert_no_secret(repr(got) + str(got))


def test_fetch_one_call(dev_server: DevServer) -> None:
    att = attest.SimAttester(dev_server.dir)
    got = asps.fetch("demo-key", server=dev_server.addr, server_pin=dev_server.pin, attester=att)
    assert got["demo-key"] == DEMO_KEY


def test_fetch_tdx_trust_domain(dev_server: DevServer) -> None:
    with asps.Client.dev(dev_server.dir, identity=attest.SimIdentity.demo("tdx")) as c:
        assert c.fetch(["tdx-token"])["tdx-token"] == b"token-for-the-demo-trust-domain"


def test_whoami(dev_server: DevServer) -> None:
    with asps.Client.dev(dev_server.dir) as c:
        w = c.whoami()
    assert (w.tee, w.runtime, w.matched_app, w.simulated) == ("sgx", "sim", "demo-enclave", True)
    assert w.mr_enclave == attest.DEMO_MR_ENCLAVE
    assert w.secret_names == ("db-password", "demo-key", "missing")


def test_server_ca(dev_server: DevServer) -> None:
    host, port = dev_server.addr.rsplit(":", 1)
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    pem = ssl.get_server_certificate((host, int(port)))  # the self-signed dev certificate, as its own CA
    att = attest.SimAttester(dev_server.dir)
    got = asps.fetch(["db-password"], server=dev_server.addr, server_ca=pem, server_name="localhost", attester=att)
    assert got["db-password"] == DB_PASSWORD


class UnboundAttester(attest.SimAttester):
    """A genuine simulated quote, but over report data that does not commit to the certificate key."""

    def quote(self, report_data: bytes, *, timeout: float | None = None) -> bytes:
        return super().quote(bytes(64), timeout=timeout)


def other_pki_dir(asps_bin: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
    """A directory holding another simulator PKI, one the dev server does not trust."""
    d = tmp_path / "otherdev"
    subprocess.run(
        [str(asps_bin), "sim", "quote", "--pki", str(d / "pki"), "--out", str(tmp_path / "q")], check=True, capture_output=True
    )
    return d


def demo(**kw: object) -> attest.SimIdentity:
    base = attest.SimIdentity.demo()
    fields = {**base.__dict__, **kw}
    return attest.SimIdentity(**fields)


@pytest.mark.parametrize(
    ("case", "identity", "names", "exc", "code", "words"),
    [
        (
            "name the app may not read",
            None,
            ["other-app"],
            asps.PermissionDeniedError,
            "PERMISSION_DENIED",
            'secret "other-app" is not one app',
        ),
        (
            "one forbidden name refuses all",
            None,
            ["demo-key", "other-app"],
            asps.PermissionDeniedError,
            "PERMISSION_DENIED",
            "other-app",
        ),
        (
            "another enclave",
            demo(mr_enclave=bytes(31) + b"\x01"),
            ["demo-key"],
            asps.PermissionDeniedError,
            "PERMISSION_DENIED",
            "no matching app: mr_enclave",
        ),
        (
            "debug build of the demo enclave",
            demo(debug=True),
            ["demo-key"],
            asps.PermissionDeniedError,
            "PERMISSION_DENIED",
            "debug",
        ),
        ("lower ISV SVN", demo(isv_svn=1), ["demo-key"], asps.PermissionDeniedError, "PERMISSION_DENIED", "svn"),
        ("allowed but missing from the store", None, ["missing"], asps.NotFoundError, "NOT_FOUND", 'secret "missing" not found'),
        ("empty name", None, [""], asps.InvalidArgumentError, "INVALID_ARGUMENT", "empty"),
        ("name asked twice", None, ["demo-key", "demo-key"], asps.InvalidArgumentError, "INVALID_ARGUMENT", "twice"),
    ],
)
def test_refusal(
    dev_server: DevServer,
    case: str,
    identity: attest.SimIdentity | None,
    names: list[str],
    exc: type[asps.RefusedError],
    code: str,
    words: str,
) -> None:
    with asps.Client.dev(dev_server.dir, identity=identity) as c, pytest.raises(exc) as ei:
        c.fetch(names)
    assert ei.value.code == code, case
    assert words.lower() in str(ei.value).lower(), case
    assert_no_secret(str(ei.value) + repr(ei.value))


def test_attack_quote_oracle_unlabelled_evidence_refused_for_labelled_app(
    dev_server: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Evidence without the asps-domain label (what a generic quote oracle yields) is refused by a tcg-labelled app."""
    from asps import ratls

    monkeypatch.setattr(ratls, "encode_claims_buffer", functools.partial(ratls.encode_claims_buffer, domain=""))
    with pytest.raises(asps.PermissionDeniedError) as e, asps.Client.dev(dev_server.dir) as c:
        c.fetch(["demo-key"])
    assert "tcg-labelled" in str(e.value)


def test_attack_quote_not_bound_to_tls_key_is_unauthenticated(dev_server: DevServer) -> None:
    att = UnboundAttester(dev_server.dir)
    with (
        asps.Client(dev_server.addr, server_pin=dev_server.pin, attester=att) as c,
        pytest.raises(asps.UnauthenticatedError) as ei,
    ):
        c.fetch(["demo-key"])
    assert ei.value.code == "UNAUTHENTICATED"
    assert "does not bind the certificate key" in str(ei.value)


def test_attack_quote_from_untrusted_simulator_root_is_unauthenticated(
    dev_server: DevServer, asps_bin: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    att = attest.SimAttester(other_pki_dir(asps_bin, tmp_path))
    with (
        asps.Client(dev_server.addr, server_pin=dev_server.pin, attester=att) as c,
        pytest.raises(asps.UnauthenticatedError) as ei,
    ):
        c.whoami()
    assert ei.value.code == "UNAUTHENTICATED"
    assert "untrusted root" in str(ei.value)


def test_attack_wrong_server_pin_sends_nothing(dev_server: DevServer) -> None:
    wrong = "00" * 32
    c = asps.Client(dev_server.addr, server_pin=wrong, attester=attest.SimAttester(dev_server.dir))
    with pytest.raises(asps.ServerAuthError) as ei:
        c.fetch(["demo-key"])
    assert ei.value.code == "peer key does not match the pin"
    assert dev_server.pin in str(ei.value) and wrong in str(ei.value)
    assert c._opened == 0  # no gRPC channel was ever opened


def test_attack_wrong_server_ca_is_refused(dev_server: DevServer, tmp_path: pathlib.Path) -> None:
    other = asps.ratls.new_certificate(attest.SimAttester(dev_server.dir)).cert_pem  # some other self-signed certificate
    c = asps.Client(
        dev_server.addr, server_ca=other, server_name="localhost", attester=attest.SimAttester(dev_server.dir), timeout=5
    )
    with pytest.raises(asps.ServerAuthError) as ei:
        c.fetch(["demo-key"])
    assert ei.value.code == "server certificate not trusted"
    assert "CERTIFICATE_VERIFY_FAILED" in str(ei.value)


def test_server_down(dev_server: DevServer) -> None:
    addr = f"127.0.0.1:{free_port()}"
    c = asps.Client(addr, server_pin=dev_server.pin, attester=attest.SimAttester(dev_server.dir), timeout=5, retries=2)
    with pytest.raises(asps.UnavailableError) as ei:
        c.fetch(["demo-key"])
    assert ei.value.code == "UNAVAILABLE"
    assert addr in str(ei.value)


def test_no_tee_lists_what_was_looked_for(dev_server: DevServer, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Detection at an empty root: no configfs-tsm, no Gramine, no Occlum.
    monkeypatch.setattr(attest, "detect", functools.partial(attest.detect, root=tmp_path))
    c = asps.Client(dev_server.addr, server_pin=dev_server.pin)
    with pytest.raises(asps.NoTEEError) as ei:
        c.fetch(["demo-key"])
    msg = str(ei.value)
    assert "looked for, in order, tsm at" in msg and "gramine at" in msg and "occlum at" in msg
    assert msg.index("tsm at") < msg.index("gramine at") < msg.index("occlum at")
    assert "the simulator is never chosen automatically" in msg


def test_no_secret_in_logs(dev_server: DevServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG), asps.Client.dev(dev_server.dir) as c:
        c.fetch(["demo-key", "db-password"])
    assert "received secrets" in caplog.text
    assert_no_secret(caplog.text)


def test_dev_mode_without_dev_server(tmp_path: pathlib.Path) -> None:
    with pytest.raises(asps.UnavailableError) as ei:
        asps.Client.dev(tmp_path)
    assert "is asps dev running" in str(ei.value)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        asps.Client("127.0.0.1:1")
    with pytest.raises(ValueError, match="64 hex digits"):
        asps.Client("127.0.0.1:1", server_pin="abcd")
