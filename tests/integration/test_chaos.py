"""A short chaos loop on a FerretDB of its own: one SIGKILL, one SIGSTOP, then the invariants.

The loop (``testkit/chaos.py``, the engine of ``stress/chaos_ferretdb.py``) sends 120 operations
through the mongoengine facade. The faults are placed where a write across two collections is
cut: the server is SIGKILLed right after it acknowledged an identity insert and stays down
10 s (longer than the failing clinical insert, the discard of the unused data key and the audit
append take to fail, 2 s of server selection each), and SIGSTOPped for longer than pymongo's
socket timeout right after it acknowledged a clinical update (before the lease release and the
audit append).

After the loop the recovery sweep (``privata_mongo.recovery``) runs, then the invariants: no
acknowledged write is lost, every failure is a typed error, no logical key is stored twice, no
row is orphaned and every applied change has an audit record naming its subject.

A second run stalls the server (SIGSTOP 2.5 s) right after identity inserts: the clinical
insert times out, and the server, once continued, may still apply it. A timeout is ambiguous,
so the library keeps the new data key unless it has read back that no row uses it: no document
ends sealed under a deleted key.

The test kills a server, so it runs with ``--backend ferretdb`` (never the session's FerretDB);
elsewhere it is a strict xfail (``server_process``).
"""

from __future__ import annotations

from typing import Any

import pytest

from compat_suite.requirements import requires
from testkit.chaos import ChaosResult, Ledger, Outcome, run_chaos, tally


@pytest.fixture(scope="module")
def chaos(backend_name: str, tmp_path_factory: pytest.TempPathFactory) -> ChaosResult | None:
    """One chaos run per module on a FerretDB it owns, or ``None`` off the ferretdb backend."""
    if backend_name != "ferretdb":
        return None
    return run_chaos(
        tmp_path_factory.mktemp("chaos"),
        ops=120,
        kinds=("kill", "stop"),
        seed=3,
        fault_points={30: ("kill", "after_identity_insert"), 70: ("stop", "after_clinical_update")},
        down_seconds=(10.0, 10.0),
        stop_seconds=(2.5, 2.5),
    )


def _ran(chaos: ChaosResult | None) -> ChaosResult:
    assert chaos is not None, "no FerretDB of our own in this run (see the xfail reason)"
    assert chaos.fault_counts() == {
        "kill@after_identity_insert": 1,
        "stop@after_clinical_update": 1,
    }, chaos.fault_counts()
    assert chaos.counts["attempted"] == 120
    return chaos


@requires("server_process")
def test_the_faults_fail_some_operations(chaos: ChaosResult | None) -> None:
    counts = _ran(chaos).counts
    assert counts["failed_typed"] + counts["failed_untyped"] >= 2, counts["errors"]
    assert counts["succeeded"] >= 100


@requires("server_process")
def test_no_acknowledged_write_is_lost(chaos: ChaosResult | None) -> None:
    counts = _ran(chaos).counts
    assert counts["lost"] == 0, counts["lost_by_kind"]
    assert counts["bad_reads"] == 0


@requires("server_process")
def test_every_failure_is_a_typed_error(chaos: ChaosResult | None) -> None:
    counts = _ran(chaos).counts
    assert counts["failed_untyped"] == 0, counts["untyped_errors"]


@requires("server_process")
def test_no_logical_document_is_stored_twice(chaos: ChaosResult | None) -> None:
    assert _ran(chaos).counts["duplicates"] == 0


@requires("server_process")
def test_no_orphan_rows_after_recovery(chaos: ChaosResult | None) -> None:
    counts = _ran(chaos).counts
    assert (counts["orphan_identity"], counts["orphan_clinical"]) == (0, 0)


@requires("server_process")
def test_every_applied_change_is_audited_after_recovery(chaos: ChaosResult | None) -> None:
    counts = _ran(chaos).counts
    assert counts["missing_audit"] == 0, counts["missing_audit_by_kind"]
    assert counts["audit_unverifiable"] == 0


@pytest.fixture(scope="module")
def stalled_inserts(
    backend_name: str, tmp_path_factory: pytest.TempPathFactory
) -> ChaosResult | None:
    """Six SIGSTOPs of 2.5 s right after identity inserts: the clinical inserts time out at 2 s.

    Whether a stalled insert is applied after its timeout depends on timing; six stalls make
    at least one such insert all but certain. A fault planted near the end of the loop fires
    only if a create follows it, so at least five of the six fire.
    """
    if backend_name != "ferretdb":
        return None
    return run_chaos(
        tmp_path_factory.mktemp("stalled"),
        ops=120,
        kinds=("stop",),
        seed=5,
        fault_points=dict.fromkeys(range(10, 120, 20), ("stop", "after_identity_insert")),
        stop_seconds=(2.5, 2.5),
        mix={"create": 30, "update": 25, "update_identity": 25, "read": 20},  # no delete
    )


@requires("server_process")
def test_a_timed_out_insert_keeps_its_data_key(stalled_inserts: ChaosResult | None) -> None:
    assert stalled_inserts is not None, "no FerretDB of our own in this run"
    counts = stalled_inserts.counts
    assert sum(stalled_inserts.fault_counts().values()) >= 5, stalled_inserts.fault_counts()
    assert counts["failed_untyped"] == 0
    assert (counts["unreadable_identity"], counts["lost"]) == (0, 0), counts["lost_by_kind"]
    assert (counts["orphan_identity"], counts["orphan_clinical"]) == (0, 0)


# -- the counting itself, on rows built by hand (no server) ------------------------------------

P0, P1 = "pseu_" + "0" * 32, "pseu_" + "1" * 32


def _ledger(*outcomes: Outcome) -> Ledger:
    return Ledger(run="r", outcomes=list(outcomes))


def _rows(
    key: str, pseudonym: str, name_op: int, email_op: int, ops: list[int]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    clinical = {"_id": f"c-{pseudonym}", "key": key, "_pseudonym": pseudonym, "ops": ops}
    identity = {"_id": pseudonym}
    plain = {"first_name": f"{key}:{name_op}", "email": f"{key}.{email_op}@example.org"}
    return clinical, identity, plain


def _audit(*request_ids: str | None, subject: str = P0) -> list[dict[str, Any]]:
    return [{"request_id": rid, "subjects": [subject], "operation": "x"} for rid in request_ids]


def test_a_whole_audited_history_counts_nothing() -> None:
    ledger = _ledger(
        Outcome(0, "create", "k0", ok=True, count=1),
        Outcome(1, "update", "k0", ok=True, count=1),
        Outcome(2, "update_identity", "k0", ok=True, count=1),
    )
    clinical, identity, plain = _rows("k0", P0, 1, 2, [0, 1])
    counts = tally(ledger, [clinical], [identity], {P0: plain}, _audit("r:0", "r:1", "r:2"))
    assert {k: counts[k] for k in ("lost", "orphan_identity", "orphan_clinical")} == {
        "lost": 0,
        "orphan_identity": 0,
        "orphan_clinical": 0,
    }
    assert (counts["duplicates"], counts["missing_audit"], counts["failed_untyped"]) == (0, 0, 0)


def test_an_acknowledged_effect_that_is_missing_is_lost() -> None:
    ledger = _ledger(
        Outcome(0, "create", "k0", ok=True, count=1),
        Outcome(1, "update", "k0", ok=True, count=1),
        Outcome(2, "create", "k2", ok=True, count=1),
    )
    clinical, identity, plain = _rows("k0", P0, 0, 0, [0])  # update 1 on neither half
    counts = tally(ledger, [clinical], [identity], {P0: plain}, _audit("r:0", "r:1"))
    assert counts["lost_by_kind"] == {"update": 2, "create": 1}


def test_a_cut_create_is_an_orphan_and_an_unaudited_change() -> None:
    ledger = _ledger(Outcome(0, "create", "k0", ok=False, error="pymongo.errors.AutoReconnect"))
    _, identity, plain = _rows("k0", P0, 0, 0, [0])
    counts = tally(ledger, [], [identity], {P0: plain}, [])
    assert (counts["orphan_identity"], counts["lost"]) == (1, 0)
    assert counts["missing_audit_by_kind"] == {"create": 1}
    assert counts["failed_but_applied"] == 1
    # A record written outside the loop (a recovery) naming the subject covers the change.
    recovered = tally(ledger, [], [identity], {P0: plain}, _audit(None))
    assert recovered["missing_audit"] == 0


def test_clinical_rows_without_identity_and_keys_stored_twice_are_counted() -> None:
    ledger = _ledger(Outcome(0, "create", "k0", ok=True, count=1))
    clinical, identity, plain = _rows("k0", P0, 0, 0, [0])
    twin = {**clinical, "_id": "c-twin", "_pseudonym": P1}
    counts = tally(ledger, [clinical, twin], [identity], {P0: plain}, _audit("r:0"))
    assert (counts["duplicates"], counts["orphan_clinical"]) == (1, 1)


def test_an_untyped_error_is_a_finding() -> None:
    ledger = _ledger(Outcome(0, "read", "k0", ok=False, error="builtins.KeyError", typed=False))
    counts = tally(ledger, [], [], {}, [])
    assert counts["untyped_errors"] == {"builtins.KeyError": 1}


def test_acknowledged_identity_writes_under_a_deleted_data_key_are_lost() -> None:
    ledger = _ledger(
        Outcome(0, "create", "k0", ok=False, error="pymongo.errors.NetworkTimeout"),
        Outcome(1, "update_identity", "k0", ok=True, count=1),
    )
    clinical, identity, _ = _rows("k0", P0, 0, 1, [0])
    counts = tally(ledger, [clinical], [identity], {P0: None}, _audit("r:0", "r:1"))
    assert counts["lost_by_kind"] == {"update_identity": 1}
    assert (counts["unreadable_documents"], counts["orphan_identity"]) == (1, 0)
