"""The Python ServerPolicy reads the Go client's server-policy files with the Go rules and messages.

testdata/server_policy/cases.json lists server-policy files and what both
clients say of them; the Go side is client.TestServerPolicyCrossCheck. A
file the Go client refuses, ServerPolicy.load refuses for the same reasons
(the reasons of every problem, in order) and, where the manifest gives one,
with the same message; a file one accepts, the other accepts.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from asps import ratls

DIR = pathlib.Path(__file__).parent / "testdata" / "server_policy"
CASES: list[dict[str, Any]] = json.loads((DIR / "cases.json").read_text())["cases"]


def test_crosscheck_corpus_is_whole() -> None:
    assert len(CASES) >= 30
    assert {c["file"] for c in CASES} == {p.name for p in DIR.iterdir() if p.name != "cases.json"}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_server_policy_file_judged_as_go_judges_it(case: dict[str, Any]) -> None:
    pytest.importorskip("yaml", reason="PyYAML (the attested-server extra) reads YAML server policies")
    path = DIR / case["file"]
    if case["ok"]:
        p = ratls.ServerPolicy.load(path, collateral=b"{}")
        assert p.policy.apps
        return
    with pytest.raises(ratls.PolicyError) as ei:
        ratls.ServerPolicy.load(path, collateral=b"{}")
    assert list(ei.value.reasons) == case["reasons"], str(ei.value)
    if case["message"]:
        assert str(ei.value).removeprefix(f"server policy {path}: ") == case["message"]
