"""A pinned fuzz run: no identity value in any exception, log record or audit record.

``stress/fuzz_inputs.py`` runs the same inputs at size; this keeps a small deterministic run
(a fixed hypothesis seed) in every test run. ``testkit/fuzz.py`` says what is generated,
captured and searched.
"""

from __future__ import annotations

from testkit.fuzz import run_fuzz

EXAMPLES = 300
SEED = 20261201


def test_a_fuzz_run_leaks_no_identity_value() -> None:
    report = run_fuzz(EXAMPLES, seed_value=SEED)
    assert report.inputs == EXAMPLES
    # the run did reach the library: values were stored, operations failed, records were kept
    assert len(report.written) >= 5
    assert sum(report.exceptions.values()) >= 30
    assert report.audit_records >= 50
    assert report.texts > sum(report.exceptions.values())
    assert report.leaked_written == []
    assert report.leaked_offered == []
    assert report.chain_ok
