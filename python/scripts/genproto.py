#!/usr/bin/env python3
"""Regenerate the Python gRPC stubs of api/asps/v1/asps.proto.

    python scripts/genproto.py          regenerate src/asps/_pb in place
    python scripts/genproto.py --check  fail (exit 1) if the committed stubs
                                        differ from freshly generated ones

The stubs are generated with grpcio-tools (its bundled protoc), pinned below
because the tool's version is written into the generated code. The absolute
import the gRPC plugin writes (``from asps.v1 import asps_pb2``) is rewritten
to the package-relative ``asps._pb`` location, the only edit made.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import pathlib
import subprocess
import sys
import tempfile

GRPCIO_TOOLS_VERSION = "1.85.1"
PROTO = "asps/v1/asps.proto"

HERE = pathlib.Path(__file__).resolve().parent
PYROOT = HERE.parent
REPO = PYROOT.parent
API = REPO / "api"
OUT = PYROOT / "src" / "asps" / "_pb"
FILES = ("asps_pb2.py", "asps_pb2.pyi", "asps_pb2_grpc.py")


def generate(dest: pathlib.Path) -> None:
    """Write the three generated files into dest."""
    have = importlib.metadata.version("grpcio-tools")
    if have != GRPCIO_TOOLS_VERSION:
        sys.exit(
            f"genproto: grpcio-tools is {have}, the pinned version is {GRPCIO_TOOLS_VERSION} "
            f"(pip install grpcio-tools=={GRPCIO_TOOLS_VERSION})"
        )
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{API}",
                f"--python_out={tmp}",
                f"--pyi_out={tmp}",
                f"--grpc_python_out={tmp}",
                PROTO,
            ],
            check=True,
        )
        gen = pathlib.Path(tmp) / "asps" / "v1"
        for name in FILES:
            text = (gen / name).read_text()
            text = text.replace("from asps.v1 import asps_pb2 ", "from asps._pb import asps_pb2 ")
            (dest / name).write_text(text)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="compare with the committed stubs instead of writing them")
    args = p.parse_args()
    if not args.check:
        generate(OUT)
        print(f"genproto: regenerated {len(FILES)} files under {OUT.relative_to(REPO)}", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(pathlib.Path(tmp))
        stale = [n for n in FILES if not (OUT / n).is_file() or (OUT / n).read_bytes() != (pathlib.Path(tmp) / n).read_bytes()]
    if stale:
        for n in stale:
            print(f"genproto: stale: python/src/asps/_pb/{n}", file=sys.stderr)
        print("genproto: generated code is out of date: run python/scripts/genproto.py", file=sys.stderr)
        return 1
    print("genproto: generated code is current", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
