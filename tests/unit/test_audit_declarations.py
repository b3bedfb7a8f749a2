"""The audit records what flows declare, and nothing it would have to work out from their I/O.

Flows state whom they reach (``Touched``, ``Emit.subjects``) where they know it; the wrapper
only collects the statements. These tests pin both halves: hand-written flows show that the
wrapper attributes nothing by itself (whatever a filter looks like, whatever rows come back),
and the real flows show that each states exactly the subjects and fields its records must name.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import privata_mongo.core.audit as audit_package
from privata_mongo.core.audit.records import AccessContext, AuditRecord
from privata_mongo.core.audit.wrapper import AuditSpec, audited
from privata_mongo.core.flows import aggregate, bulk, read, write
from privata_mongo.core.flows.common import linked, touched
from privata_mongo.core.flows.context import Context
from privata_mongo.core.ops import (
    Aggregate,
    AppendAudit,
    Delete,
    Emit,
    FetchAll,
    Find,
    FindAndModify,
    Flow,
    Insert,
    InsertOutcome,
    NextBatch,
    Query,
    Replace,
    ReplaceMany,
    ResolveAccess,
    Touched,
    Update,
    UpdateOutcome,
)
from privata_mongo.core.schema import PSEUDONYM_FIELD, Side
from privata_mongo.testing.scripted import ScriptedDriver
from tests.unit.builders import make_context, make_schema

P1 = "pseu_" + "0" * 31 + "1"
P2 = "pseu_" + "0" * 31 + "2"
P3 = "pseu_" + "0" * 31 + "3"
DR_LEE = AccessContext("dr.lee", "treatment")
ROWS = [{"_id": 1, "age": 3, PSEUDONYM_FIELD: P1}, {"_id": 2, "age": 3, PSEUDONYM_FIELD: P2}]


@pytest.fixture
def ctx() -> Context:
    return make_context(make_schema())


def on(kind: type, side: Side) -> Callable[[Any], bool]:
    return lambda op: isinstance(op, kind) and op.side is side


def appended(driver: ScriptedDriver) -> list[tuple[AuditRecord, ...]]:
    """The records of every ``AppendAudit`` the flow yielded, in order."""
    return [op.records for op in driver.seen if isinstance(op, AppendAudit)]


# -- the wrapper collects declarations, and infers nothing ----------------------------------


def _ids_in(ids: list[int]) -> dict[str, Any]:
    return {"_id": {"$in": ids}}


SHAPES: dict[str, Callable[[list[int]], Mapping[str, Any]]] = {
    "ids only": _ids_in,
    "ids first in $and": lambda ids: {"$and": [_ids_in(ids), {"age": 3}]},
    "ids last in $and": lambda ids: {"$and": [{"age": 3}, _ids_in(ids)]},
    "ids beside a condition": lambda ids: {"age": 3, "_id": {"$in": ids}},
    "ids as $or": lambda ids: {"$or": [{"_id": i} for i in ids]},
}


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_an_update_is_recorded_for_the_subjects_declared_whatever_its_filter_shape(
    ctx: Context, shape: Callable[[list[int]], Mapping[str, Any]]
) -> None:
    def flow(c: Context) -> Flow[UpdateOutcome]:
        rows = yield from FetchAll(Side.CLINICAL, Query({"age": 3}))
        yield from touched(c, linked(rows))
        ids = [r["_id"] for r in rows]
        done: UpdateOutcome = yield from Update(
            Side.CLINICAL, shape(ids), {"$inc": {"visits": 1}}, True
        )
        return done

    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(FetchAll, Side.CLINICAL), ROWS),
            (on(Update, Side.CLINICAL), UpdateOutcome(2, 2)),
            (AppendAudit, None),
        ]
    )
    assert driver.run(audited(ctx, flow, AuditSpec("update"))) == UpdateOutcome(2, 2)
    ((record,),) = appended(driver)
    assert (record.subjects, record.count) == ((P1, P2), 2)


def test_the_wrapper_names_nobody_its_flow_does_not_declare(ctx: Context) -> None:
    """Rows read, identity rows written and deleted, a modified document: none is a statement."""

    def flow(c: Context) -> Flow[int]:
        yield from FetchAll(Side.CLINICAL, Query({"age": 3}))
        yield from Insert(Side.IDENTITY, ({"_id": P3, "email": "x@y.org"},))
        yield from ReplaceMany(Side.IDENTITY, (({"_id": P2}, {"_id": P2, "email": "z"}),))
        yield from Delete(Side.IDENTITY, {"_id": {"$in": [P1]}}, multi=True)
        yield from Replace(Side.CLINICAL, {"_id": 1}, {"_id": 1, PSEUDONYM_FIELD: P1})
        yield from FindAndModify(Side.CLINICAL, "update", {"_id": 2}, {"$set": {"age": 4}})
        yield from Update(Side.CLINICAL, {"age": 3}, {"$inc": {"visits": 1}}, True)
        return 2

    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(FetchAll, Side.CLINICAL), ROWS),
            (on(Insert, Side.IDENTITY), InsertOutcome()),
            (on(ReplaceMany, Side.IDENTITY), 1),
            (on(Delete, Side.IDENTITY), 1),
            (on(Replace, Side.CLINICAL), UpdateOutcome(1, 1)),
            (on(FindAndModify, Side.CLINICAL), ROWS[1]),
            (on(Update, Side.CLINICAL), UpdateOutcome(2, 2)),  # no read of its subjects either
            (AppendAudit, None),
        ]
    )
    assert driver.run(audited(ctx, flow, AuditSpec("update"))) == 2
    ((record,),) = appended(driver)
    assert (record.subjects, record.fields, record.count) == ((), (), 2)


def test_a_batch_is_recorded_for_the_subjects_it_carries_not_the_rows_read(ctx: Context) -> None:
    def flow(c: Context) -> Flow[None]:
        handle = yield from Find(Side.CLINICAL, Query({}))
        rows = yield from NextBatch(handle, 10)
        yield Emit(tuple({"_id": r["_id"], "email": "e"} for r in rows), (P3,))

    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(Find, Side.CLINICAL), "cursor"),
            (NextBatch, ROWS),
            (AppendAudit, None),
        ]
    )
    driver.run(audited(ctx, flow, AuditSpec("read")))
    ((record,),) = appended(driver)  # a stream whose batches were recorded: no final record
    assert (record.subjects, record.fields, record.count) == ((P3,), ("email",), 2)


def test_a_failure_records_what_was_written_not_what_was_only_read(ctx: Context) -> None:
    def flow(c: Context) -> Flow[None]:
        yield from touched(c, [P1], {"first_name"}, effect="read")
        yield from touched(c, [P2], {"email"}, written=1)
        yield from Insert(Side.CLINICAL, ({"_id": 1},))

    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(Insert, Side.CLINICAL), ConnectionError("gone")),
            (AppendAudit, None),
        ]
    )
    with pytest.raises(ConnectionError):
        driver.run(audited(ctx, flow, AuditSpec("create")))
    ((record,),) = appended(driver)
    assert (record.outcome, record.subjects, record.fields, record.count) == (
        "error:ConnectionError",
        (P2,),
        ("email",),
        1,
    )


def test_a_flow_that_only_read_before_failing_leaves_no_record(ctx: Context) -> None:
    def flow(c: Context) -> Flow[None]:
        yield from touched(c, [P1], effect="read")
        yield from FetchAll(Side.CLINICAL, Query({}))

    driver = ScriptedDriver(
        [(ResolveAccess, DR_LEE), (on(FetchAll, Side.CLINICAL), ConnectionError("gone"))]
    )
    with pytest.raises(ConnectionError):
        driver.run(audited(ctx, flow, AuditSpec("read")))
    assert appended(driver) == []


def test_only_the_wrapper_marks_an_operation_audited(ctx: Context) -> None:
    given: list[Context] = []

    def flow(c: Context) -> Flow[int]:
        given.append(c)
        return read.count(c, {}, {})

    from privata_mongo.core.ops import Count

    driver = ScriptedDriver([(ResolveAccess, DR_LEE), (Count, 4), (AppendAudit, None)])
    assert driver.run(audited(ctx, flow, AuditSpec("count"))) == 4
    assert [c.audit for c in given] == [True]
    assert not ctx.audit
    # unaudited, a flow states nothing: its requests are exactly its I/O
    unaudited = ScriptedDriver([(Insert, InsertOutcome())] * 2)
    unaudited.run(write.insert(ctx, [{"_id": 1, "email": "e"}], ordered=True))
    assert not any(isinstance(op, Touched) for op in unaudited.seen)


def test_an_emitted_batch_must_say_whom_it_concerns() -> None:
    with pytest.raises(TypeError):
        Emit(({"_id": 1},))  # type: ignore[call-arg]


# -- the audit code reads no request --------------------------------------------------------

AUDIT_SOURCES = sorted(Path(audit_package.__file__).parent.glob("*.py"))
MAY_IMPORT_FROM_OPS = {"AppendAudit", "Emit", "Flow", "ResolveAccess", "Steps", "Touched"}
# the audit's own requests for intents (stated by flows, stored and settled by the wrapper)
MAY_IMPORT_FROM_OPS |= {"Intends", "OpenIntent", "SettleIntents", "Unfinished"}
RESULT_TYPES = {"UpdateOutcome"}  # counted, as a result, never searched for subjects


def test_the_audit_code_names_no_request_but_its_own() -> None:
    imported = {
        alias.name
        for path in AUDIT_SOURCES
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module == "privata_mongo.core.ops"
        for alias in node.names
    }
    assert imported
    assert imported <= MAY_IMPORT_FROM_OPS | RESULT_TYPES


def test_the_audit_code_looks_inside_no_filter_and_no_row() -> None:
    found: list[str] = []
    for path in AUDIT_SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and (text.startswith("$") or text in ("_pseudonym", "_rev")):
                found.append(f"{path.name}:{node.lineno} {text!r}")
            if isinstance(node, ast.Attribute) and node.attr in (
                "filter",
                "query",
                "pairs",
                "pipeline",
                "handle",
                "update",
            ):
                found.append(f"{path.name}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.alias) and node.name in ("PSEUDONYM_FIELD", "REVISION_FIELD"):
                found.append(f"{path.name}: imports {node.name}")
    assert found == []


def test_the_scan_finds_pattern_matching_where_there_is_some(tmp_path: Path) -> None:
    global AUDIT_SOURCES
    guess = tmp_path / "guess.py"
    guess.write_text(
        "from privata_mongo.core.ops import Update\n"
        "def known(op):\n"
        "    return op.filter.get('$and')\n"
    )
    saved, AUDIT_SOURCES = AUDIT_SOURCES, [guess]
    try:
        with pytest.raises(AssertionError):
            test_the_audit_code_names_no_request_but_its_own()
        with pytest.raises(AssertionError):
            test_the_audit_code_looks_inside_no_filter_and_no_row()
    finally:
        AUDIT_SOURCES = saved


# -- the real flows state what their records must name --------------------------------------


def test_an_update_one_with_a_sort_names_its_target_without_another_read(ctx: Context) -> None:
    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(FetchAll, Side.CLINICAL), [ROWS[1]]),  # the target the sort picks
            (on(Update, Side.CLINICAL), UpdateOutcome(1, 1)),
            (AppendAudit, None),
        ]
    )

    def flow(c: Context) -> Flow[UpdateOutcome]:
        return write.update(c, {"age": 3}, {"$inc": {"visits": 1}}, False, False, {}, (("age", 1),))

    assert driver.run(audited(ctx, flow, AuditSpec("update"))) == UpdateOutcome(1, 1)
    ((record,),) = appended(driver)
    assert record.subjects == (P2,)


def test_a_pipeline_update_reads_and_names_its_subjects_only_when_audited(ctx: Context) -> None:
    pipeline = [{"$set": {"visits": {"$add": ["$visits", 1]}}}]
    audited_driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(FetchAll, Side.CLINICAL), [{PSEUDONYM_FIELD: P1}]),
            (on(Update, Side.CLINICAL), UpdateOutcome(1, 1)),
            (AppendAudit, None),
        ]
    )

    def flow(c: Context) -> Flow[UpdateOutcome]:
        return write.update(c, {"age": 3}, pipeline, True, False, {"hint": "age_1"})

    audited_driver.run(audited(ctx, flow, AuditSpec("update")))
    pre_read = audited_driver.seen[1]
    assert isinstance(pre_read, FetchAll)
    assert (pre_read.query.filter, pre_read.query.options) == ({"age": 3}, {"hint": "age_1"})
    ((record,),) = appended(audited_driver)
    assert record.subjects == (P1,)
    plain = ScriptedDriver([(on(Update, Side.CLINICAL), UpdateOutcome(1, 1))])
    plain.run(flow(ctx))


def test_a_delete_erases_every_identity_field_also_in_a_bulk(ctx: Context) -> None:
    def script() -> ScriptedDriver:
        return ScriptedDriver(
            [
                (ResolveAccess, DR_LEE),
                (on(Find, Side.CLINICAL), "cursor"),
                (NextBatch, [ROWS[0]]),
                (on(Delete, Side.CLINICAL), 1),
                (on(Delete, Side.IDENTITY), 1),
                (AppendAudit, None),
            ]
        )

    single, batch = script(), script()
    single.run(audited(ctx, lambda c: write.delete(c, {"age": 3}, False, {}), AuditSpec("delete")))
    requests = [bulk.BulkDelete({"age": 3}, multi=False)]
    batch.run(audited(ctx, lambda c: bulk.bulk(c, requests, True), AuditSpec("bulk_write")))
    for driver in (single, batch):
        ((record,),) = appended(driver)
        assert (record.subjects, record.count) == ((P1,), 1)
        assert record.fields == ("address", "email", "first_name")


def test_a_replacement_names_the_identity_fields_it_removed(ctx: Context) -> None:
    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(FetchAll, Side.CLINICAL), [ROWS[0]]),
            (
                on(FindAndModify, Side.IDENTITY),  # the write lease, and the row it leased
                {"_id": P1, "_rev": "r0", "first_name": "Ada", "email": "ada@x.org"},
            ),
            (on(ReplaceMany, Side.IDENTITY), 1),
            (on(Replace, Side.CLINICAL), UpdateOutcome(1, 1)),
            (on(Update, Side.IDENTITY), UpdateOutcome(1, 1)),  # its release
            (AppendAudit, None),
        ]
    )
    replacement = {"age": 4, "first_name": "Ada"}  # names no email, and drops it
    driver.run(
        audited(
            ctx, lambda c: write.replace_one(c, {"age": 3}, replacement, False, {}), AuditSpec("u")
        )
    )
    ((record,),) = appended(driver)
    assert (record.subjects, record.fields) == ((P1,), ("email",))


def test_a_distinct_of_an_identity_field_names_every_subject_it_compared(ctx: Context) -> None:
    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(FetchAll, Side.CLINICAL), [{PSEUDONYM_FIELD: P1}, {PSEUDONYM_FIELD: P2}]),
            (on(FetchAll, Side.IDENTITY), [{"_id": P1, "email": "a"}, {"_id": P2, "email": "a"}]),
            (AppendAudit, None),
        ]
    )
    found = driver.run(audited(ctx, lambda c: read.distinct(c, "email", {}, {}), AuditSpec("d")))
    assert found == ["a"]  # one value, two subjects revealed
    ((record,),) = appended(driver)
    assert (record.subjects, record.fields, record.count) == ((P1, P2), ("email",), 1)


IDENTITIES = [{"_id": P1, "email": "b@x.org"}, {"_id": P2, "email": "a@x.org"}]


def test_every_batch_of_an_in_process_aggregation_names_its_own_subjects() -> None:
    ctx = make_context(make_schema(), batch_size=1)
    # an identity sort: its keys are read first, then each page by id, one row per batch
    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(FetchAll, Side.CLINICAL), ROWS),
            *[(on(FetchAll, Side.IDENTITY), [i]) for i in IDENTITIES],
            (on(FetchAll, Side.CLINICAL), [ROWS[1]]),
            (on(FetchAll, Side.IDENTITY), [IDENTITIES[1]]),
            (AppendAudit, None),
            (on(FetchAll, Side.CLINICAL), [ROWS[0]]),
            (on(FetchAll, Side.IDENTITY), [IDENTITIES[0]]),
            (AppendAudit, None),
        ]
    )
    pipeline = [{"$sort": {"email": 1}}]
    driver.run(audited(ctx, lambda c: aggregate.aggregate(c, pipeline, {}), AuditSpec("a")))
    assert [d["email"] for d in driver.emitted] == ["a@x.org", "b@x.org"]
    assert [[r.subjects for r in records] for records in appended(driver)] == [[(P2,)], [(P1,)]]


def test_a_computed_in_process_result_names_every_subject_it_came_from() -> None:
    ctx = make_context(make_schema(), batch_size=1)
    # a group on an identity field: the server's partial groups, one subject each, merged here
    partials = [{"_id": P1, "p0": 1}, {"_id": P2, "p0": 1}]
    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(Aggregate, Side.CLINICAL), "c"),
            (NextBatch, partials[:1]),
            (on(FetchAll, Side.IDENTITY), [IDENTITIES[0]]),
            (NextBatch, partials[1:]),
            (on(FetchAll, Side.IDENTITY), [IDENTITIES[1]]),
            (NextBatch, []),
            (AppendAudit, None),
            (AppendAudit, None),
        ]
    )
    pipeline = [{"$group": {"_id": "$email", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}]
    driver.run(audited(ctx, lambda c: aggregate.aggregate(c, pipeline, {}), AuditSpec("a")))
    assert [d["_id"] for d in driver.emitted] == ["a@x.org", "b@x.org"]
    assert [[r.subjects for r in records] for records in appended(driver)] == [
        [(P1, P2)],
        [(P1, P2)],
    ]


def test_a_read_sorted_in_the_process_names_each_batchs_subjects(ctx: Context) -> None:
    names = {P1: "Cy", P2: "Al"}
    identities = [{"_id": p, "first_name": n} for p, n in names.items()]
    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(FetchAll, Side.CLINICAL), ROWS),
            (on(FetchAll, Side.IDENTITY), identities),
            (on(FetchAll, Side.CLINICAL), [ROWS[1]]),
            (on(FetchAll, Side.IDENTITY), identities[1:]),
            (AppendAudit, None),
            (on(FetchAll, Side.CLINICAL), [ROWS[0]]),
            (on(FetchAll, Side.IDENTITY), identities[:1]),
            (AppendAudit, None),
        ]
    )
    query = Query({}, sort=(("first_name", 1),), batch_size=1, projection={"_id": 0})
    driver.run(audited(ctx, lambda c: read.find(c, query), AuditSpec("read")))
    assert [d["first_name"] for d in driver.emitted] == ["Al", "Cy"]
    assert [[r.subjects for r in records] for records in appended(driver)] == [[(P2,)], [(P1,)]]


def test_a_find_one_and_update_on_the_server_names_the_document_it_modified(
    ctx: Context,
) -> None:
    from privata_mongo.core.flows import modify

    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(FindAndModify, Side.CLINICAL), ROWS[1]),
            (on(FetchAll, Side.IDENTITY), [{"_id": P2, "email": "a@x.org"}]),
            (AppendAudit, None),
        ]
    )

    def flow(c: Context) -> Flow[Any]:
        return modify.find_one_and_update(
            c, {"age": 3}, {"$inc": {"visits": 1}}, (), False, False, None, {}
        )

    found = driver.run(audited(ctx, flow, AuditSpec("update")))
    assert found == {"_id": 2, "age": 3, "email": "a@x.org"}
    ((record,),) = appended(driver)
    assert (record.subjects, record.fields, record.count) == ((P2,), ("email",), 1)


def test_an_unaudited_flow_is_told_nothing_and_reads_nothing_extra(ctx: Context) -> None:
    driver = ScriptedDriver([(on(Update, Side.CLINICAL), UpdateOutcome(2, 2))])
    driver.run(
        write.update(replace(ctx, audit=False), {"age": 3}, {"$inc": {"v": 1}}, True, False, {})
    )
    assert [type(op) for op in driver.seen] == [Update]


def test_a_statement_that_reaches_a_driver_fails_loudly() -> None:
    """Only the wrapper consumes statements: one that escaped it is a wiring error, not dropped."""
    from privata_mongo.drivers._dispatch import Binding, call_of

    binding: Binding[Any, Any, Any] = Binding(None, None, access=AccessContext)
    with pytest.raises(TypeError, match="Touched"):
        call_of(Touched((P1,)), binding)
