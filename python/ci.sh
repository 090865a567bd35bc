#!/usr/bin/env bash
# The Python SDK's checks, on a fresh machine with python3 (3.10+), pip and go:
# a new virtual environment, the package with its test extras, then the
# generated-stub freshness check, ruff, mypy --strict and pytest. Exits
# non-zero on any failure; pytest finding no tests (exit 5) is a failure too.
#
#   python/ci.sh                  (from anywhere)
#   ASPS_PY_VENV=DIR python/ci.sh reuse or create the venv in DIR
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${ASPS_PY_VENV:-}"
if [ -z "$VENV" ]; then
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' EXIT
	VENV="$tmp/venv"
fi
command -v python3 >/dev/null || { echo "ci.sh: python3 not found" >&2; exit 1; }
command -v go >/dev/null || { echo "ci.sh: go not found (the tests build the asps binary)" >&2; exit 1; }

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# Install from a copy, so the build leaves nothing (build/, *.egg-info) in the repository.
src="$(mktemp -d)"
cp -R "$HERE/pyproject.toml" "$HERE/README.md" "$HERE/src" "$src/"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "$src[dev]"
rm -rf "$src"

cd "$HERE"
echo "== genproto --check" >&2
"$VENV/bin/python" scripts/genproto.py --check
echo "== ruff" >&2
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "== mypy --strict" >&2
"$VENV/bin/mypy" --strict
echo "== pytest" >&2
# -p no:cacheprovider: leave no .pytest_cache behind in the repository.
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests
