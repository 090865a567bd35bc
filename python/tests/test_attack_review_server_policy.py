"""Red-team probes of the Python client's judge of a server in a TEE (ratls.ServerPolicy).

The Go client judges an attested server with the policy engine and its
defaults (cmd/asps: TestAttack_ServerInTEEJudgedOnlyByMeasurement): a TD
server must be pinned by mr_td *and* one of rtmr0-2, a server pinned by
mr_signer alone needs its product id, advisories are refused unless named.
The Python ServerPolicy accepts the spellings below, each of which admits
servers that are not the code the workload meant to trust. These tests fail
until ServerPolicy refuses them (or grows the fields that make them safe).
"""

from __future__ import annotations

import pytest

from asps import ratls

COLLATERAL = b"{}"  # construction only: nothing is verified here


def test_attack_python_server_policy_td_pinned_by_mr_td_alone() -> None:
    # MRTD measures only the TD's virtual firmware, which a cloud gives every
    # tenant alike: any tenant's TD with another kernel shows the same mr_td.
    # Go refuses `--server-mr-td` without an rtmr; Python takes it and has no
    # rtmr field at all, so a Python workload cannot pin a TD server's code.
    with pytest.raises(ValueError, match="rtmr"):
        ratls.ServerPolicy(mr_td=b"\x01" * 48, collateral=COLLATERAL)


def test_attack_python_server_policy_mr_signer_without_product_id() -> None:
    # One signer signs many enclaves (other products, test builds): Go's
    # policy refuses mr_signer without isv_prod_id; Python has no such field.
    with pytest.raises(ValueError, match="isv_prod_id"):
        ratls.ServerPolicy(mr_signer=b"\x02" * 32, collateral=COLLATERAL)


def test_attack_python_server_policy_cannot_refuse_advisories() -> None:
    # Widening tcb_statuses (SWHardeningNeeded is common) tolerates every
    # advisory in Python; Go tolerates none unless advisory_ids names them.
    p = ratls.ServerPolicy(mr_enclave=b"\x03" * 32, collateral=COLLATERAL, tcb_statuses=("UpToDate", "SWHardeningNeeded"))
    assert getattr(p, "advisory_ids", None) == (), (
        "ServerPolicy has no advisory_ids (default: none tolerated): every INTEL-SA of a SWHardeningNeeded server is accepted"
    )
