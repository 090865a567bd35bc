"""The README's Python example, run as written against `asps dev` on its defaults."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest
from conftest import start_dev, stop

# The Python section stands in python/README.md and in the repository's README.
READMES = [pathlib.Path(__file__).resolve().parents[1] / "README.md", pathlib.Path(__file__).resolve().parents[2] / "README.md"]


def readme_example(readme: pathlib.Path) -> str:
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)
    example = next(b for b in blocks if "Client.dev()" in b)
    return str(example)


@pytest.mark.parametrize("readme", READMES, ids=["python/README.md", "README.md"])
def test_readme_example_prints_the_secret(asps_bin: pathlib.Path, tmp_path: pathlib.Path, readme: pathlib.Path) -> None:
    # "asps dev on its defaults": its default directory (under XDG_CONFIG_HOME,
    # a temporary one here) and default everything else but the port, which
    # is random so that tests never collide with a developer's asps dev.
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path)}
    env["PATH"] = f"{asps_bin.parent}{os.pathsep}{env['PATH']}"
    env.pop("ASPS_BIN", None)
    srv = start_dev(asps_bin, tmp_path / "config" / "asps" / "dev", env=env, dir_flag=False)
    try:
        script = tmp_path / "example.py"
        script.write_text(readme_example(readme))
        r = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    finally:
        stop(srv)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Secret received: 42cd4b7f1e0a9c3d5b6f8e2a1c4d7b9e0f3a5c8d2b4e6f1a3c5d7e9b0a2c4e6f\n"
