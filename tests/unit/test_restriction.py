"""Restriction and objection in the core: the clauses, where flows apply them, the marker."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from privata_mongo.core.audit import AccessContext, AuditRecord
from privata_mongo.core.flows import aggregate, read, write
from privata_mongo.core.mql.match import compile_filter
from privata_mongo.core.ops import (
    AppendAudit,
    Count,
    Delete,
    FetchAll,
    Find,
    FindAndModify,
    NextBatch,
    Query,
    ReplaceMany,
    ResolveAccess,
    Update,
    UpdateOutcome,
)
from privata_mongo.core.rights.guard import guarded
from privata_mongo.core.rights.restriction import change_marker, refuse_marker, visibility
from privata_mongo.core.schema import Side
from privata_mongo.core.split import join
from privata_mongo.errors import ProcessingRestricted, UnsupportedQuery
from privata_mongo.testing import ScriptedDriver

from .builders import make_context, make_schema

BOB = "pseu_" + "b" * 32
ROWS = [
    {"_id": 1, "_pseudonym": "pseu_" + "a" * 32},
    {"_id": 2, "_pseudonym": BOB, "_rst": {"r": True, "a": ["legal_claims"]}},
    {"_id": 3, "_pseudonym": "pseu_" + "c" * 32, "_rst": {"o": ["research"]}},
]


def _seen(purpose: str | None, *, break_glass: bool = False) -> list[int]:
    rules = visibility(purpose, break_glass=break_glass, write=False)
    if rules.visible is None:
        return [r["_id"] for r in ROWS]
    match = compile_filter(rules.visible)
    return [r["_id"] for r in ROWS if match(r)]


@pytest.mark.parametrize(
    ("purpose", "break_glass", "expected"),
    [
        (None, False, [1, 3]),
        ("treatment", False, [1, 3]),
        ("research", False, [1]),
        ("legal_claims", False, [1, 2, 3]),
        ("treatment", True, [1, 2, 3]),
        ("research", True, [1, 2]),
        (None, True, [1, 2, 3]),
    ],
)
def test_the_read_clause_selects_the_visible_subjects(
    purpose: str | None, break_glass: bool, expected: list[int]
) -> None:
    assert _seen(purpose, break_glass=break_glass) == expected


def test_a_write_guards_restricted_subjects_and_leaves_out_objecting_ones() -> None:
    rules = visibility("research", break_glass=False, write=True)
    assert rules.guard is not None
    assert rules.visible is not None
    assert [r["_id"] for r in ROWS if compile_filter(rules.guard)(r)] == [2]
    assert [r["_id"] for r in ROWS if compile_filter(rules.visible)(r)] == [1, 2]
    assert visibility("legal_claims", break_glass=False, write=True).guard is not None
    assert visibility("x", break_glass=True, write=True).guard is None


def _ctx(purpose: str | None, *, write: bool = False) -> Any:
    rules = visibility(purpose, break_glass=False, write=write)
    return replace(make_context(make_schema()), restriction=rules)


def test_count_and_find_send_the_clause_to_the_server() -> None:
    ctx = _ctx("research")
    expected = ctx.restriction.visible
    counted = ScriptedDriver([(lambda op: isinstance(op, Count) and op.filter == expected, 1)])
    assert counted.run(read.count(ctx, {}, {})) == 1
    both = {"visits": 2, **expected}  # one filter document: the server plans it as natively
    found = ScriptedDriver(
        [(lambda op: isinstance(op, Find) and op.query.filter == both, "h"), (NextBatch, [])]
    )
    found.run(read.find(ctx, Query({"visits": 2})))


def test_estimated_count_counts_the_visible_documents_under_restriction() -> None:
    ctx = _ctx("treatment")
    visible = dict(ctx.restriction.visible or {})
    assert visible  # counted with the read clause, not estimated
    driver = ScriptedDriver([(lambda op: isinstance(op, Count) and op.filter == visible, 2)])
    assert driver.run(read.estimated_count(ctx, {})) == 2


def test_an_aggregation_selects_the_visible_subjects_first() -> None:
    ctx = _ctx("research")
    pipeline = [{"$group": {"_id": "$visits", "n": {"$sum": 1}}}]
    driver = ScriptedDriver(
        [
            (lambda op: op.pipeline[0] == {"$match": dict(ctx.restriction.visible)}, "h"),
            (NextBatch, []),
        ]
    )
    driver.run(aggregate.aggregate(ctx, pipeline, {}))
    assert driver.seen[0].pipeline[1:] == tuple(pipeline)


def test_a_write_reaching_a_restricted_subject_is_refused_at_its_read() -> None:
    ctx = _ctx("treatment", write=True)
    rows = [{"_id": 1, "_pseudonym": "pseu_" + "a" * 32}, {"_id": 2, **ROWS[1]}]
    driver = ScriptedDriver(
        [
            (lambda op: isinstance(op, Find) and op.query.projection.get("_rst") == 1, "h"),
            (NextBatch, rows),
        ]
    )
    flow = guarded(write.delete(ctx, {"visits": 1}, True, {}), ctx.restriction, "Patient")
    with pytest.raises(ProcessingRestricted) as refused:
        driver.run(flow)
    assert refused.value.pseudonyms == (BOB,)
    assert not any(isinstance(op, Delete) for op in driver.seen)
    assert "pseu_" not in str(refused.value)


def test_a_write_that_read_nothing_first_is_probed() -> None:
    ctx = _ctx("treatment", write=True)
    update = {"$set": {"visits": 3}}
    driver = ScriptedDriver([(FetchAll, [{"_pseudonym": BOB}])])
    flow = guarded(
        write.update(ctx, {"visits": 1}, update, True, False, {}), ctx.restriction, "Patient"
    )
    with pytest.raises(ProcessingRestricted):
        driver.run(flow)
    assert not any(isinstance(op, Update) for op in driver.seen)


def test_a_write_of_unrestricted_rows_reads_them_as_before() -> None:
    ctx = _ctx("treatment", write=True)
    rows = [{"_id": 1, "_pseudonym": "pseu_" + "a" * 32}]
    driver = ScriptedDriver([(Find, "h"), (NextBatch, rows), (Delete, 1), (Delete, 1)])
    flow = guarded(write.delete(ctx, {"visits": 1}, True, {}), ctx.restriction, "Patient")
    driver.run(flow)
    assert not any(isinstance(op, FetchAll) for op in driver.seen)  # no probe of its own


def test_a_write_past_one_batch_probes_its_whole_filter_before_writing() -> None:
    """A full first batch means more may follow: the guard clause is asked over the whole
    filter, once, before the flow writes that batch."""
    ctx = replace(_ctx("treatment", write=True), batch_size=2)
    first = [{"_id": i, "_pseudonym": f"pseu_{i:032x}"} for i in (1, 2)]
    driver = ScriptedDriver([(Find, "h"), (NextBatch, first), (FetchAll, [{"_pseudonym": BOB}])])
    flow = guarded(write.delete(ctx, {"visits": 1}, True, {}), ctx.restriction, "Patient")
    with pytest.raises(ProcessingRestricted) as refused:
        driver.run(flow)
    assert refused.value.pseudonyms == (BOB,)
    assert not any(isinstance(op, Delete) for op in driver.seen)
    probe = driver.seen[2]
    assert probe.query.limit == 1
    assert probe.query.filter == {**driver.seen[0].query.filter, **ctx.restriction.guard}


def test_a_write_past_one_batch_of_unrestricted_rows_probes_once() -> None:
    ctx = replace(_ctx("treatment", write=True), batch_size=2)
    batches = [
        [{"_id": i, "_pseudonym": f"pseu_{i:032x}"} for i in ids] for ids in ((1, 2), (3, 4), (5,))
    ]
    driver = ScriptedDriver(
        [
            (Find, "h"),
            (NextBatch, batches[0]),
            (FetchAll, []),
            (Delete, 2),
            (Delete, 2),
            (NextBatch, batches[1]),
            (Delete, 2),
            (Delete, 2),
            (NextBatch, batches[2]),
            (Delete, 1),
            (Delete, 1),
        ]
    )
    flow = guarded(write.delete(ctx, {"visits": 1}, True, {}), ctx.restriction, "Patient")
    assert driver.run(flow) == 5
    assert sum(isinstance(op, FetchAll) for op in driver.seen) == 1


def test_an_update_by_batches_is_refused_at_its_read_of_ids() -> None:
    """An identity update reads every target id first; the marker comes with them, so a
    restricted row in a later batch refuses the update before the first batch is written."""
    ctx = replace(_ctx("treatment", write=True), batch_size=1)
    ids = [{"_id": 1}, {"_id": 2, "_rst": {"r": True}, "_pseudonym": BOB}]
    driver = ScriptedDriver(
        [(lambda op: isinstance(op, FetchAll) and op.query.projection.get("_rst") == 1, ids)]
    )
    update = {"$set": {"email": "new@example.org"}}
    flow = guarded(write.update(ctx, {}, update, True, False, {}), ctx.restriction, "Patient")
    with pytest.raises(ProcessingRestricted):
        driver.run(flow)
    assert len(driver.seen) == 1


def test_the_marker_is_bookkeeping_the_application_never_reads() -> None:
    assert join(ROWS[1], None, make_schema()) == {"_id": 2}


@pytest.mark.parametrize(
    "update",
    [
        {"$set": {"_rst": {}}},
        {"$unset": {"_rst.r": ""}},
        {"$rename": {"_rst": "x"}},
        [{"$unset": "_rst"}],
        [{"$set": {"_rst": 1}}],
        {"_rst": {}, "name": "x"},
    ],
)
def test_an_update_naming_the_marker_is_refused(update: Any) -> None:
    with pytest.raises(UnsupportedQuery, match="restriction marker"):
        refuse_marker("Patient", update)


def test_an_update_of_other_fields_passes() -> None:
    refuse_marker("Patient", {"$set": {"ward": "x", "rst": 1}})
    refuse_marker("Patient", [{"$set": {"ward": "x"}}])


def test_a_change_writes_identity_then_clinical_then_its_record() -> None:
    ctx = make_context(make_schema())
    access = AccessContext("dpo", "compliance", "art6_1c")
    change = {"$set": {"_rst.r": True, "_rst.a": []}}
    driver = ScriptedDriver(
        [
            (ResolveAccess, access),
            (lambda op: isinstance(op, Update) and op.side is Side.IDENTITY, UpdateOutcome(1, 1)),
            (lambda op: isinstance(op, Update) and op.side is Side.CLINICAL, UpdateOutcome(2, 2)),
            (AppendAudit, None),
        ]
    )
    assert driver.run(change_marker(ctx, BOB, "restrict", change)) == 2
    (record,) = driver.seen[-1].records
    assert (record.operation, record.subjects, record.access, record.count) == (
        "restrict",
        (BOB,),
        access,
        2,
    )


def test_a_break_glass_record_carries_its_severity_and_others_do_not() -> None:
    at = make_context(make_schema()).now()
    emergency = AuditRecord(at, AccessContext("dr.er", emergency="arrest"), "read", "Patient")
    plain = AuditRecord(at, AccessContext("dr.er"), "read", "Patient")
    assert (emergency.body()["severity"], emergency.body()["reason"]) == ("break_glass", "arrest")
    assert "severity" not in plain.body()
    assert "reason" not in plain.body()


def test_a_clause_sharing_a_key_with_the_filter_is_joined_by_and() -> None:
    from privata_mongo.core.rights.restriction import conjoined

    clause = {"$nor": [{"_rst.o": "research"}]}
    assert conjoined({"_id": 1}, clause) == {"_id": 1, "$nor": [{"_rst.o": "research"}]}
    own = {"$nor": [{"visits": 3}]}
    assert conjoined(own, clause) == {"$and": [own, clause]}
    assert conjoined({}, clause) == clause


def test_a_single_update_writes_the_row_it_read_without_a_probe_of_its_own() -> None:
    """The clinical write restates the filter beside the ids it read: those ids were checked
    at the read, so the write needs no probe (a write that read nothing first is probed)."""
    ctx = _ctx("treatment", write=True)
    row = {"_id": 1, "_pseudonym": "pseu_" + "a" * 32}
    update = {"$set": {"visits": 3}}
    flow = guarded(
        write.update(ctx, {"visits": 1}, {**update, "$unset": {"email": ""}}, False, False, {}),
        ctx.restriction,
        "Patient",
    )
    driver = ScriptedDriver(
        [
            (lambda op: isinstance(op, FetchAll) and op.query.limit == 1, [row]),
            (FindAndModify, {"_id": row["_pseudonym"], "_rev": "r0", "email": "a@x"}),
            (ReplaceMany, 1),
            (lambda op: isinstance(op, Update) and op.side is Side.CLINICAL, UpdateOutcome(1, 1)),
            (Update, UpdateOutcome(1, 1)),  # the lease's release
        ]
    )
    assert driver.run(flow) == UpdateOutcome(1, 1)
    assert sum(isinstance(op, FetchAll) for op in driver.seen) == 1  # the row's read only
