"""The audit core: record builders, the hash chain and its verification, the audited wrapper."""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import os
import threading
from collections.abc import Iterator
from typing import Any

import bson
import pytest

import privata_mongo
from privata_mongo.audit import accesses, touched_by, verify, who_accessed
from privata_mongo.context import access_context, current_access, resolve_access
from privata_mongo.core.audit import (
    MAX_SUBJECTS,
    AccessContext,
    AuditRecord,
    checkpoint,
    digest,
    ledger,
    link,
    records_for,
    verify_chain,
)
from privata_mongo.core.audit.wrapper import AuditSpec, audited
from privata_mongo.core.flows import read, write
from privata_mongo.core.flows.context import Context
from privata_mongo.core.ops import (
    AppendAudit,
    Emit,
    FetchAll,
    Find,
    Flow,
    Insert,
    InsertOutcome,
    NextBatch,
    Op,
    Query,
    ResolveAccess,
    Update,
    UpdateOutcome,
)
from privata_mongo.core.schema import PSEUDONYM_FIELD, Side
from privata_mongo.drivers import _audit as _audit_driver
from privata_mongo.drivers._audit import AuditTrail
from privata_mongo.errors import AuditUnavailable, MissingAccessContext
from privata_mongo.testing.audit import ListAuditSink
from privata_mongo.testing.scripted import ScriptedDriver
from privata_mongo.web import AccessContextMiddleware, from_headers
from tests.unit.builders import make_context, make_schema

P1 = "pseu_" + "0" * 31 + "1"
P2 = "pseu_" + "0" * 31 + "2"
AT = datetime.datetime(2026, 1, 2, 3, 4, 5)
DR_LEE = AccessContext("dr.lee", "treatment", "art9_2h", "req-1")
KEY = b"k" * 32  # the audit chain key (read from the key vault outside unit tests)


@pytest.fixture
def ctx() -> Context:
    return make_context(make_schema())


@pytest.fixture
def settings() -> Iterator[None]:
    saved = privata_mongo.config.current()
    yield
    privata_mongo.config._current = saved


def _record(n: int, actor: str = "dr.lee") -> AuditRecord:
    return AuditRecord(
        AT + datetime.timedelta(seconds=n),
        AccessContext(actor, "treatment"),
        "read",
        "Patient",
        (f"pseu_{n:032x}",),
        ("email",),
        1,
    )


def _chain(n: int, stream: str = "s1") -> list[dict[str, Any]]:
    """``n`` records of ``stream``, then its checkpoint and a ledger naming it (as a trail
    writes them)."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        out.append(link(_record(i), stream, i, out[-1]["hash"] if out else "0" * 64, KEY))
    return [*out, checkpoint(stream, n - 1, out[-1]["hash"], KEY), ledger((stream,), 0, KEY)]


# -- records --------------------------------------------------------------------------------


def test_large_results_are_chunked_below_the_document_limit() -> None:
    subjects = [f"pseu_{i:032x}" for i in range(2 * MAX_SUBJECTS + 5)]
    records = records_for(
        at=AT,
        access=DR_LEE,
        operation="read",
        model="Patient",
        subjects=subjects,
        fields={"email"},
        count=len(subjects),
    )
    assert [len(r.subjects) for r in records] == [MAX_SUBJECTS, MAX_SUBJECTS, 5]
    assert [r.part for r in records] == [0, 1, 2]
    assert [s for r in records for s in r.subjects] == subjects
    largest = link(records[0], "s", 0, "0" * 64, KEY)
    assert len(bson.encode(largest)) < 1024 * 1024  # far below 16 MB


def test_a_record_holds_names_and_pseudonyms_only() -> None:
    (record,) = records_for(
        at=AT,
        access=DR_LEE,
        operation="update",
        model="Patient",
        subjects=[P1, P1],
        fields=["email", "first_name"],
        count=1,
    )
    document = link(record, "s", 0, "0" * 64, KEY)
    assert document["_id"] == "s:" + "0" * 20  # the position: no value, no name
    assert set(document) == {
        "_id",
        "stream",
        "seq",
        "prev",
        "hash",
        "at",
        "actor",
        "purpose",
        "legal_basis",
        "request_id",
        "operation",
        "model",
        "subjects",
        "fields",
        "count",
        "outcome",
        "part",
    }
    assert document["subjects"] == [P1]
    assert document["fields"] == ["email", "first_name"]


# -- the hash chain -------------------------------------------------------------------------


def test_an_intact_chain_verifies() -> None:
    records = _chain(5) + _chain(3, "s2")
    assert verify_chain(records, KEY) == []
    result = verify(records, key=KEY)
    assert result.ok
    assert result.records == 8
    assert result.heads == {"s1": (4, records[4]["hash"]), "s2": (2, records[-3]["hash"])}


def test_an_edited_record_is_named() -> None:
    records = _chain(5)
    records[2]["actor"] = "mallory"
    problems = verify_chain(records, KEY)
    assert [(p.stream, p.seq, p.kind) for p in problems] == [("s1", 2, "modified")]


def test_a_deleted_record_is_named() -> None:
    records = _chain(5)
    del records[3]
    problems = verify_chain(records, KEY)
    assert [(p.stream, p.seq, p.kind) for p in problems] == [("s1", 3, "missing")]


def test_two_swapped_records_are_named() -> None:
    records = _chain(5)
    records[1]["seq"], records[3]["seq"] = 3, 1
    problems = verify_chain(records, KEY)
    assert [(p.stream, p.seq, p.kind) for p in problems] == [
        ("s1", 1, "modified"),
        ("s1", 3, "modified"),
    ]


def test_swapped_records_with_recomputed_hashes_break_the_links() -> None:
    records = _chain(5)
    first, second = dict(records[1]), dict(records[3])
    for document, seq in ((first, 3), (second, 1)):
        document["seq"] = seq
        document["hash"] = digest(
            document, KEY
        )  # consistent with its new place, as an attacker would
    records[1], records[3] = second, first
    kinds = {(p.seq, p.kind) for p in verify_chain(records, KEY)}
    assert (1, "moved") in kinds
    assert (3, "moved") in kinds


def test_anchors_detect_a_cut_end() -> None:
    records = _chain(5)
    head = verify(records, key=KEY).heads
    assert verify(records[:3], anchors=head, key=KEY).problems[0].kind == "truncated"
    assert verify(records, anchors=head, key=KEY).ok


def test_a_trail_numbers_records_and_restarts_after_a_failure() -> None:
    sink = ListAuditSink()
    trail = AuditTrail(sink, key=KEY)
    trail.append([_record(0), _record(1)])
    first = trail.stream
    sink.fail = OSError("down")
    with pytest.raises(AuditUnavailable):
        trail.append([_record(2)])
    sink.fail = None
    trail.append([_record(3)])
    assert [(r["stream"] == first, r["seq"]) for r in sink.records] == [
        (True, 0),
        (True, 1),
        (False, 0),
    ]
    assert verify(sink, key=KEY).ok


def test_a_forked_child_starts_a_stream_of_its_own() -> None:
    sink = ListAuditSink()
    trail = AuditTrail(sink, buffer=2, key=KEY)
    trail.append([_record(0), _record(1)])
    trail.append([_record(2)])  # buffered in the parent: the parent's to store
    parent = trail.stream
    _audit_driver._after_fork_in_child()  # what os.register_at_fork runs in a child
    trail.append([_record(3), _record(4)])
    child = [(r["stream"] == parent, r["seq"]) for r in sink.records[2:]]
    assert child == [(False, 0), (False, 1)]
    assert trail.stream != parent
    assert verify(sink, key=KEY).ok


def test_a_fork_that_bypassed_the_hook_is_caught_by_the_process_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink = ListAuditSink()
    trail = AuditTrail(sink, key=KEY)
    trail.append([_record(0)])
    parent = trail.stream
    real = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: real + 1)
    trail.append([_record(1)])
    assert (sink.records[1]["stream"] != parent, sink.records[1]["seq"]) == (True, 0)
    trail.append([_record(2)])
    assert sink.records[2]["seq"] == 1  # one new stream per process, not per append
    assert verify(sink, key=KEY).ok


def test_a_buffered_trail_appends_in_groups() -> None:
    sink = ListAuditSink()
    trail = AuditTrail(sink, buffer=3, key=KEY)
    trail.append([_record(0), _record(1)])
    assert sink.records == []
    trail.append([_record(2)])
    assert len(sink.records) == 3
    trail.append([_record(3)])
    trail.flush()
    assert len(sink.records) == 4
    assert verify(sink, key=KEY).ok


def _trail_of(streams: int, records: int) -> ListAuditSink:
    """A sink holding ``streams`` streams of ``records`` records, as trails write them."""
    sink = ListAuditSink()
    for s in range(streams):
        trail = AuditTrail(sink, key=KEY, new_stream=lambda s=s: f"s{s}")  # type: ignore[misc]
        for n in range(records):
            trail.append([_record(n)])
    return sink


def _problems(sink: ListAuditSink) -> set[tuple[str, int, str]]:
    return {(p.stream, p.seq, p.kind) for p in verify(sink, key=KEY).problems}


def test_a_record_appended_without_the_chain_key_is_detected() -> None:
    sink = _trail_of(1, 3)
    last = sink.records[-1]
    forged = link(_record(9, actor="mallory"), "s0", 3, last["hash"], b"guessed" * 5)
    sink.records.append(forged)  # links to the real head: only its MAC gives it away
    assert ("s0", 3, "modified") in _problems(sink)


def test_a_forged_whole_stream_is_detected() -> None:
    sink = _trail_of(1, 2)
    other = b"x" * 32
    prev = "0" * 64
    for n in range(3):  # a consistent chain, under another key, with its own checkpoint
        forged = link(_record(n, actor="mallory"), "fake", n, prev, other)
        sink.records.append(forged)
        prev = forged["hash"]
    sink.checkpoints["privata:checkpoint:fake"] = checkpoint("fake", 2, prev, other)
    found = _problems(sink)
    assert {("fake", n, "modified") for n in range(3)} <= found
    assert ("fake", 2, "modified") in found  # the checkpoint as well
    assert ("fake", -1, "unregistered") in found


def test_a_cut_end_is_detected_without_anchors() -> None:
    sink = _trail_of(2, 5)
    del sink.records[3:5]  # the two newest records of s0
    assert _problems(sink) == {("s0", 4, "truncated")}


def test_a_deleted_stream_is_detected_without_anchors() -> None:
    sink = _trail_of(2, 3)
    sink.records = [r for r in sink.records if r["stream"] != "s1"]
    del sink.checkpoints["privata:checkpoint:s1"]
    assert _problems(sink) == {("s1", -1, "deleted")}


def test_a_deleted_checkpoint_or_ledger_is_detected() -> None:
    sink = _trail_of(1, 2)
    del sink.checkpoints["privata:checkpoint:s0"]
    assert _problems(sink) == {("s0", 1, "unanchored")}
    sink = _trail_of(1, 2)
    del sink.checkpoints["privata:ledger"]
    assert _problems(sink) == {("", -1, "unregistered")}


def test_an_emptied_trail_is_detected_when_the_chain_key_exists() -> None:
    sink = _trail_of(2, 2)
    sink.records.clear()
    sink.checkpoints.clear()
    assert _problems(sink) == {("", -1, "erased")}


def test_a_ledger_altered_to_hide_a_stream_is_refused_by_the_trail() -> None:
    sink = _trail_of(1, 1)
    sink.checkpoints["privata:ledger"]["streams"] = []
    assert ("", -1, "modified") in _problems(sink)
    trail = AuditTrail(sink, key=KEY, new_stream=lambda: "s9")
    with pytest.raises(AuditUnavailable):
        trail.append([_record(0)])  # it will not seal what was altered


def test_huge_and_negative_sequence_numbers_are_reported_in_linear_time() -> None:
    import time

    sink = _trail_of(1, 3)
    high = dict(sink.records[-1], seq=10**9)
    low = dict(sink.records[0], seq=-1)
    sink.records += [high, low]
    started = time.perf_counter()
    found = _problems(sink)
    assert time.perf_counter() - started < 1.0  # ten million positions would take minutes
    assert ("s0", 3, "missing") in found  # one problem for the whole gap 3 … 10**9 - 1
    assert ("s0", 10**9, "modified") in found
    assert ("s0", -1, "modified") in found
    assert len(found) == 3


def test_verify_needs_the_chain_key_for_a_list() -> None:
    from privata_mongo.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="chain_key"):
        verify(_trail_of(1, 1))


# -- the auditor's questions ----------------------------------------------------------------


def test_who_accessed_a_subject_and_what_an_actor_touched() -> None:
    records = []
    for n, actor in enumerate(["dr.lee", "nurse.kim", "dr.lee"]):
        rec = AuditRecord(
            AT + datetime.timedelta(days=n),
            AccessContext(actor, "treatment" if n else "billing"),
            "read",
            "Patient",
            (P1,) if n != 1 else (P2,),
        )
        records.append(link(rec, "s", n, records[-1]["hash"] if records else "0" * 64, KEY))
    found = who_accessed(records, P1, start=AT, end=AT + datetime.timedelta(days=3))
    assert [(a.actor, a.purpose) for a in found] == [("dr.lee", "billing"), ("dr.lee", "treatment")]
    assert who_accessed(records, P1, start=AT + datetime.timedelta(hours=1))[0].at == (
        AT + datetime.timedelta(days=2)
    )
    assert touched_by(records, "nurse.kim") == {"Patient": {P2}}
    assert len(accesses(records, operations=["update"])) == 0


# -- the access context ---------------------------------------------------------------------


def test_access_contexts_nest_and_follow_tasks_and_copied_contexts() -> None:
    assert current_access() is None
    with access_context(actor="a", purpose="p"):
        with access_context(actor="b"):
            assert resolve_access().actor == "b"
        assert resolve_access() == AccessContext("a", "p")
        seen: list[Any] = []
        copied = contextvars.copy_context()
        thread = threading.Thread(target=lambda: seen.append(copied.run(current_access)))
        thread.start()
        thread.join()

        async def in_task() -> Any:
            return current_access()

        async def main() -> Any:
            return await asyncio.create_task(in_task())

        assert seen == [AccessContext("a", "p")]
        assert asyncio.run(main()) == AccessContext("a", "p")
    assert current_access() is None


@pytest.mark.usefixtures("settings")
def test_strict_mode_refuses_and_a_default_context_satisfies_it() -> None:
    assert resolve_access() == AccessContext()
    privata_mongo.configure(audit_strict=True)
    with pytest.raises(MissingAccessContext):
        resolve_access()
    default = AccessContext("nightly-job", "billing", "art6_1b")
    privata_mongo.configure(default_access=default)
    assert resolve_access() == default


def test_the_wsgi_middleware_runs_app_and_response_in_the_request_context() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        access = current_access()
        yield (access.actor if access else "-").encode()
        access = current_access()
        yield (access.purpose if access else "-").encode()

    def resolve(environ: dict[str, Any]) -> AccessContext | None:
        return from_headers({"X-Actor": environ.get("HTTP_X_ACTOR", ""), "X-Purpose": "care"})

    wrapped = AccessContextMiddleware(app, resolve)
    body = b"".join(wrapped({"HTTP_X_ACTOR": "dr.lee"}, lambda *a: None))
    assert body == b"dr.leecare"
    assert b"".join(wrapped({}, lambda *a: None)) == b"--"
    assert current_access() is None


# -- the audited wrapper, op by op -----------------------------------------------------------


def on(kind: type, side: Side) -> Any:
    return lambda op: isinstance(op, kind) and op.side is side


def test_a_batch_is_audited_before_it_is_emitted(ctx: Context) -> None:
    order: list[str] = []

    def appended(op: Op) -> bool:
        order.append("audit")
        return isinstance(op, AppendAudit)

    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(Find, Side.CLINICAL), "cursor"),
            (NextBatch, [{"_id": 1, "age": 3, PSEUDONYM_FIELD: P1}]),
            (on(FetchAll, Side.IDENTITY), [{"_id": P1, "email": "ada@x.org"}]),
            (appended, None),
        ]
    )
    spec = AuditSpec("read")
    driver.run(audited(ctx, lambda c: read.find(c, Query({"age": 3}, batch_size=5)), spec))
    assert driver.emitted == [{"_id": 1, "age": 3, "email": "ada@x.org"}]
    kinds = [type(op).__name__ for op in driver.seen]
    assert kinds.index("AppendAudit") < kinds.index("Emit")
    (record,) = next(op for op in driver.seen if isinstance(op, AppendAudit)).records
    assert record.access == DR_LEE
    assert (record.subjects, record.fields, record.count) == ((P1,), ("email",), 1)
    assert "ada@x.org" not in repr(record)
    assert 1 not in record.subjects


def test_a_failed_append_hands_nothing_over(ctx: Context) -> None:
    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(Find, Side.CLINICAL), "cursor"),
            (NextBatch, [{"_id": 1, "age": 3, PSEUDONYM_FIELD: P1}]),
            (on(FetchAll, Side.IDENTITY), [{"_id": P1, "email": "ada@x.org"}]),
            (AppendAudit, AuditUnavailable("down")),
        ]
    )
    with pytest.raises(AuditUnavailable):
        driver.run(
            audited(ctx, lambda c: read.find(c, Query({"age": 3}, batch_size=5)), AuditSpec("read"))
        )
    assert driver.emitted == []


def test_a_missing_context_in_strict_mode_is_audited_as_denied(ctx: Context) -> None:
    driver = ScriptedDriver([(ResolveAccess, MissingAccessContext("strict")), (AppendAudit, None)])
    with pytest.raises(MissingAccessContext):
        driver.run(audited(ctx, lambda c: read.count(c, {}, {}), AuditSpec("count")))
    (record,) = driver.seen[-1].records  # type: ignore[union-attr]
    assert (record.outcome, record.count, record.access) == ("denied", 0, AccessContext())
    assert not any(isinstance(op, Find) for op in driver.seen)


def test_a_server_side_update_first_names_its_subjects(ctx: Context) -> None:
    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(FetchAll, Side.CLINICAL), [{PSEUDONYM_FIELD: P1}, {PSEUDONYM_FIELD: P2}]),
            (on(Update, Side.CLINICAL), UpdateOutcome(2, 2)),
            (AppendAudit, None),
        ]
    )

    def flow(c: Context) -> Flow[UpdateOutcome]:
        return write.update(c, {"age": 3}, {"$inc": {"visits": 1}}, True, False, {})

    assert driver.run(audited(ctx, flow, AuditSpec("update"))) == UpdateOutcome(2, 2)
    pre_read = driver.seen[1]
    assert isinstance(pre_read, FetchAll)
    assert pre_read.query.filter == {"age": 3}
    (record,) = driver.seen[-1].records  # type: ignore[union-attr]
    assert (record.subjects, record.fields, record.count) == ((P1, P2), (), 2)


def test_an_insert_records_its_subjects_and_field_names(ctx: Context) -> None:
    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(Insert, Side.IDENTITY), InsertOutcome()),
            (on(Insert, Side.CLINICAL), InsertOutcome()),
            (AppendAudit, None),
        ]
    )
    document = {"_id": 7, "first_name": "Ada", "email": "ada@x.org", "age": 36}
    driver.run(
        audited(ctx, lambda c: write.insert(c, [document], ordered=True), AuditSpec("create"))
    )
    (record,) = driver.seen[-1].records  # type: ignore[union-attr]
    assert record.subjects == (P1,)
    assert record.fields == ("email", "first_name")
    assert record.count == 1
    assert "Ada" not in repr(record)


def test_a_failing_operation_is_audited_with_what_it_had_written(ctx: Context) -> None:
    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(Insert, Side.IDENTITY), InsertOutcome()),
            (on(Insert, Side.CLINICAL), ConnectionError("gone")),
            (on(FetchAll, Side.CLINICAL), ConnectionError("gone")),  # did it land?
            (AppendAudit, None),
        ]
    )
    document = {"_id": 7, "first_name": "Ada", "age": 36}
    with pytest.raises(ConnectionError):
        driver.run(
            audited(ctx, lambda c: write.insert(c, [document], ordered=True), AuditSpec("create"))
        )
    (record,) = driver.seen[-1].records  # type: ignore[union-attr]
    assert (record.outcome, record.subjects, record.count) == ("error:ConnectionError", (P1,), 0)


def test_an_operation_failing_before_touching_anyone_keeps_its_own_error(ctx: Context) -> None:
    driver = ScriptedDriver(
        [(ResolveAccess, DR_LEE), (on(FetchAll, Side.CLINICAL), ConnectionError("gone"))]
    )

    def flow(c: Context) -> Flow[UpdateOutcome]:
        return write.update(c, {"age": 3}, {"$inc": {"visits": 1}}, True, False, {})

    with pytest.raises(ConnectionError):
        driver.run(audited(ctx, flow, AuditSpec("update")))
    assert not any(isinstance(op, AppendAudit) for op in driver.seen)


def test_an_empty_read_is_audited_once(ctx: Context) -> None:
    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(Find, Side.CLINICAL), "cursor"),
            (NextBatch, []),
            (AppendAudit, None),
        ]
    )
    driver.run(audited(ctx, lambda c: read.find(c, Query({"age": 99})), AuditSpec("read")))
    assert [type(op) for op in driver.seen].count(AppendAudit) == 1
    assert not any(isinstance(op, Emit) for op in driver.seen)


def test_the_async_trail_awaits_async_sinks_and_fails_closed() -> None:
    from privata_mongo.drivers._audit import AsyncAuditTrail

    class AsyncSink:
        def __init__(self) -> None:
            self.records: list[dict[str, Any]] = []
            self.down = False

        async def append(self, records: Any, /) -> None:
            if self.down:
                raise OSError("down")
            self.records.extend(records)

    async def main() -> None:
        sink = AsyncSink()
        trail = AsyncAuditTrail(sink, key=KEY)
        await trail.append([_record(0), _record(1)])
        sink.down = True
        with pytest.raises(AuditUnavailable) as caught:
            await trail.append([_record(2)])
        assert "pseu_" not in str(caught.value)
        assert [r["seq"] for r in sink.records] == [0, 1]
        assert verify(sink.records, key=KEY, checkpointed=False).ok

    asyncio.run(main())


def test_an_update_of_rows_already_read_needs_no_extra_read(ctx: Context) -> None:
    from privata_mongo.core.ops import FindAndModify, ReplaceMany

    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(FetchAll, Side.CLINICAL), [{"_id": 1}]),
            (on(FetchAll, Side.CLINICAL), [{"_id": 1, "age": 3, PSEUDONYM_FIELD: P1}]),
            (on(FindAndModify, Side.IDENTITY), {"_id": P1, "_rev": "r0", "email": "old@x.org"}),
            (on(ReplaceMany, Side.IDENTITY), 1),
            (on(Update, Side.CLINICAL), UpdateOutcome(1, 1)),
            (on(Update, Side.IDENTITY), UpdateOutcome(1, 1)),  # its release
            (AppendAudit, None),
        ]
    )
    update = {"$set": {"email": "new@x.org", "visits": 1}}

    def flow(c: Context) -> Flow[UpdateOutcome]:
        return write.update(c, {"age": 3}, update, True, False, {})

    assert driver.run(audited(ctx, flow, AuditSpec("update"))) == UpdateOutcome(1, 1)
    (record,) = driver.seen[-1].records  # type: ignore[union-attr]
    assert (record.subjects, record.fields, record.count) == ((P1,), ("email",), 1)
