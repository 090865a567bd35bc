"""The checked-in stubs are what grpcio-tools makes from api/asps/v1/asps.proto today."""

from __future__ import annotations

import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def test_generated_stubs_are_current() -> None:
    r = subprocess.run([sys.executable, str(HERE.parent / "scripts" / "genproto.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "generated code is current" in r.stderr
