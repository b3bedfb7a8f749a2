"""A short chaos loop on a FerretDB of its own: one SIGKILL, one SIGSTOP, then the invariants.

The loop (``testkit/chaos.py``, the engine of ``stress/chaos_ferretdb.py``) sends 120 operations
through the mongoengine facade. The faults are placed where a write across two collections is
cut: the server is SIGKILLed right after it acknowledged an identity insert (and stays down
longer than pymongo's server selection, so the library's clean-up of that identity row fails
too), and SIGSTOPped for longer than pymongo's socket timeout right after it acknowledged a
clinical update (before the lease release and the audit append).

What holds today: no acknowledged write is lost, every failure is a typed error, no logical
key is stored twice. What needs the crash-safe write protocol (``privata_mongo.recovery``):
the cut create leaves an identity row no clinical row links to, and an applied change with no
audit record naming its subject; those two are strict xfails until the sweep lands.

The test kills a server, so it runs with ``--backend ferretdb`` (never the session's FerretDB);
elsewhere it is a strict xfail (``server_process``).
"""

from __future__ import annotations

import pytest

from compat_suite.requirements import requires
from testkit.chaos import ChaosResult, run_chaos

NEEDS_RECOVERY = (
    "no recovery sweep yet (privata_mongo.recovery): a SIGKILL after the identity insert of a "
    "create leaves the identity row, and no audit record names its subject"
)


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
@pytest.mark.xfail(strict=True, reason=NEEDS_RECOVERY)
def test_no_orphan_rows_after_recovery(chaos: ChaosResult | None) -> None:
    counts = _ran(chaos).counts
    assert (counts["orphan_identity"], counts["orphan_clinical"]) == (0, 0)


@requires("server_process")
@pytest.mark.xfail(strict=True, reason=NEEDS_RECOVERY)
def test_every_applied_change_is_audited_after_recovery(chaos: ChaosResult | None) -> None:
    counts = _ran(chaos).counts
    assert counts["missing_audit"] == 0, counts["missing_audit_by_kind"]
    assert counts["audit_unverifiable"] == 0
