"""Erasure in the core, without a database: the order of the steps, the receipt and its
digest, crashes part-way completed by a re-run, replay, and the policies' validation."""

from __future__ import annotations

import datetime
from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from privata_mongo.core.audit import AccessContext
from privata_mongo.core.classify import Policy, compile_schema
from privata_mongo.core.ops import ResolveAccess
from privata_mongo.core.rights import erasure as flows
from privata_mongo.core.rights import retention
from privata_mongo.core.rights.access import FindSubject, Subject
from privata_mongo.core.rights.datamap import DataMap, Edge, Lookup, ModelEntry, Ref
from privata_mongo.core.rights.policy import (
    Retention,
    erasure_policy,
    retention_policy,
)
from privata_mongo.core.rights.receipt import ErasureReceipt, verify_receipt
from privata_mongo.core.schema import PSEUDONYM_FIELD, FieldSpec, ModelSpec, Side
from privata_mongo.errors import ConfigurationError, UnknownSubject

P = "pseu_" + "a" * 32
OTHER = "pseu_" + "b" * 32
AT = datetime.datetime(2026, 5, 1, 12, 0, 0, 123000)
MAP = DataMap(
    models=(
        ModelEntry("Patient", "patient", ("email",), ("_id",), ("email",), erasure="delete"),
        ModelEntry("Visit", "visit", (), ("_id", "patient")),
        ModelEntry("Lab", "lab", (), ("_id", "visit"), erasure="delete"),
    ),
    edges=(
        Edge("Visit", "patient", "Patient", Ref.ID),
        Edge("Lab", "visit", "Visit", Ref.ID),
    ),
)


@dataclass(frozen=True)
class Rec:
    """One ``erase`` record as the audit trail would store it."""

    model: str
    fields: frozenset[str]
    count: int
    outcome: str


class Crash(Exception):
    """The process dies at this request."""


class World:
    """The stored state a flow's requests act on: rows by model, keys, log, audit records."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {
            "Patient": [{"_id": 1, PSEUDONYM_FIELD: P}, {"_id": 2, PSEUDONYM_FIELD: OTHER}],
            "Visit": [{"_id": 10, "patient": 1}, {"_id": 11, "patient": 2}],
            "Lab": [{"_id": 20, "visit": 10}, {"_id": 21, "visit": 10}, {"_id": 22, "visit": 11}],
        }
        self.identity: dict[str, set[str]] = {"Patient": {P, OTHER}}
        self.keys = {P, OTHER}
        self.tombstones: set[str] = set()
        self.log: dict[str, dict[str, Any]] = {}
        self.records: list[Rec] = []
        self.retention: list[retention.RecordRetention] = []
        self.asked: list[Any] = []
        self.crash_at: type | None = None

    def _matches(self, row: dict[str, Any], filter: Any) -> bool:
        for name, wanted in filter.items():
            value = row.get(name)
            if isinstance(wanted, dict):
                if value not in wanted["$in"]:
                    return False
            elif value != wanted:
                return False
        return True

    def answer(self, request: Any) -> Any:
        self.asked.append(request)
        if self.crash_at is not None and isinstance(request, self.crash_at):
            self.crash_at = None
            raise Crash(type(request).__name__)
        match request:
            case Lookup(model, filter, _):
                return [r["_id"] for r in self.rows[model] if self._matches(r, filter)]
            case FindSubject():
                return P
            case flows.LoadErasure(pseudonym):
                return self.log.get(pseudonym)
            case flows.LoggedErasures():
                return list(self.log)
            case flows.BeginErasure(entry):
                return self.log.setdefault(entry["_id"], dict(entry))
            case flows.FinishErasure(pseudonym, receipt):
                self.log[pseudonym].update(state=flows.DONE, receipt=dict(receipt))
                return None
            case flows.CountIdentity(model, pseudonym):
                return int(pseudonym in self.identity.get(model, set()))
            case flows.HasKey(pseudonym):
                return pseudonym in self.keys
            case flows.ShredKey(pseudonym):
                self.tombstones.add(pseudonym)
                held = pseudonym in self.keys
                self.keys.discard(pseudonym)
                return int(held)
            case flows.DeleteRows(model, Side.IDENTITY, filter):
                held = self.identity.get(model, set())
                found = filter["_id"] in held
                held.discard(filter["_id"])
                return int(found)
            case flows.DeleteRows(model, Side.CLINICAL, filter):
                kept = [r for r in self.rows[model] if not self._matches(r, filter)]
                count = len(self.rows[model]) - len(kept)
                self.rows[model] = kept
                return count
            case flows.Now():
                return AT
            case ResolveAccess():
                return AccessContext("dpo", "erasure", "GDPR Art. 17")
            case flows.RecordErasure(_, models, outcome):
                self.records.extend(Rec(m.model, m.fields, m.count, outcome) for m in models)
                return None
            case retention.Expired(model, field, cutoff):
                dated: dict[str, list[Any]] = {}
                for row in self.rows[model]:
                    if PSEUDONYM_FIELD in row:
                        dated.setdefault(row[PSEUDONYM_FIELD], []).append(row.get(field))
                return [p for p, d in dated.items() if all(x is not None and x < cutoff for x in d)]
            case retention.RecordRetention():
                self.retention.append(request)
                return None
        raise AssertionError(f"unexpected request {request!r}")

    def run(self, flow: Generator[Any, Any, Any]) -> Any:
        result: Any = None
        while True:
            try:
                request = flow.send(result)
            except StopIteration as done:
                return done.value
            result = self.answer(request)


def _steps(asked: list[Any]) -> list[str]:
    names = []
    for request in asked:
        if isinstance(request, flows.DeleteRows):
            names.append(f"DeleteRows {request.model} {request.side.value}")
        elif not isinstance(request, Lookup | flows.CountIdentity):
            names.append(type(request).__name__)
    return names


def test_erasure_logs_first_deletes_documents_then_shreds_then_records_then_marks_done() -> None:
    world = World()
    receipt = world.run(flows.erase(MAP, Subject(P)))
    assert _steps(world.asked) == [
        "LoadErasure",
        "HasKey",
        "ResolveAccess",
        "Now",
        "BeginErasure",
        "DeleteRows Lab clinical",  # the deepest level of the map first
        "DeleteRows Patient clinical",  # documents before their identity rows, as a delete
        "ShredKey",  # before any identity row is touched
        "DeleteRows Patient identity",
        "RecordErasure",  # one statement: the three models' records in one append
        "FinishErasure",
    ]
    assert world.rows["Patient"] == [{"_id": 2, PSEUDONYM_FIELD: OTHER}]
    assert [r["_id"] for r in world.rows["Visit"]] == [10, 11]  # pseudonymise: kept
    assert [r["_id"] for r in world.rows["Lab"]] == [22]
    assert world.identity["Patient"] == {OTHER}
    assert world.keys == {OTHER}
    assert world.tombstones == {P}
    assert world.log[P]["state"] == flows.DONE
    assert [(m.model, m.policy, m.identity_deleted, m.clinical_deleted, m.clinical_kept)
            for m in receipt.models] == [
        ("Patient", "delete", 1, 1, 0),
        ("Visit", "pseudonymise", 0, 0, 1),
        ("Lab", "delete", 0, 2, 0),
    ]  # fmt: skip
    assert (receipt.actor, receipt.legal_basis, receipt.erased_at) == ("dpo", "GDPR Art. 17", AT)
    assert receipt.key_shredded
    assert [(r.model, r.fields, r.count, r.outcome) for r in world.records] == [
        ("Patient", frozenset({"email"}), 1, flows.OK),
        ("Visit", frozenset(), 1, flows.OK),
        ("Lab", frozenset(), 2, flows.OK),
    ]
    assert ErasureReceipt.from_document(world.log[P]["receipt"]) == receipt


def test_erasing_again_returns_the_first_receipt_and_records_a_repeat_only() -> None:
    world = World()
    first = world.run(flows.erase(MAP, Subject(P)))
    world.asked.clear()
    world.records.clear()
    again = world.run(flows.erase(MAP, Subject(P)))
    assert again == first
    assert _steps(world.asked) == ["LoadErasure", "RecordErasure"]
    assert {(r.outcome, r.count) for r in world.records} == {(flows.REPEAT, 0)}


def test_an_unknown_subject_is_refused_before_anything_is_written() -> None:
    world = World()
    with pytest.raises(UnknownSubject, match="no document"):
        world.run(flows.erase(MAP, Subject("pseu_" + "c" * 32)))
    assert world.log == {}
    assert world.tombstones == set()


@pytest.mark.parametrize(
    "crash_at",
    [flows.ShredKey, flows.DeleteRows, flows.RecordErasure, flows.FinishErasure],
    ids=lambda t: t.__name__,
)
def test_a_crash_part_way_leaves_a_pending_entry_a_rerun_completes(crash_at: type) -> None:
    uninterrupted = World()
    expected = uninterrupted.run(flows.erase(MAP, Subject(P)))
    world = World()
    world.crash_at = crash_at
    with pytest.raises(Crash):
        world.run(flows.erase(MAP, Subject(P)))
    assert world.log[P]["state"] == flows.PENDING
    receipt = world.run(flows.erase(MAP, Subject(P)))
    assert receipt == expected  # counts from the plan, not from what was left to do
    assert world.rows == uninterrupted.rows
    assert world.identity == uninterrupted.identity
    assert (world.keys, world.tombstones) == (uninterrupted.keys, uninterrupted.tombstones)
    assert world.records[-1].outcome == flows.RESUMED


def test_replay_deletes_again_what_a_restore_brought_back() -> None:
    world = World()
    world.run(flows.erase(MAP, Subject(P)))
    restored = World()  # the backup: every row and key as before the erasure
    restored.log = world.log
    replayed = restored.run(flows.replay(MAP))
    assert restored.rows == world.rows
    assert restored.identity == world.identity
    assert restored.keys == {OTHER}
    (one,) = replayed
    assert one.key_shredded
    assert [(m.model, m.identity_deleted, m.clinical_deleted) for m in one.models] == [
        ("Patient", 1, 1),
        ("Visit", 0, 0),
        ("Lab", 0, 2),
    ]
    assert one.removed == 4
    assert {r.outcome for r in restored.records} == {flows.REPLAY}
    restored.records.clear()
    (again,) = restored.run(flows.replay(MAP))
    assert again.removed == 0
    assert not again.key_shredded
    assert {r.count for r in restored.records} == {0}


def test_replay_reports_its_progress_after_each_logged_entry() -> None:
    world = World()
    world.run(flows.erase(MAP, Subject(P)))
    seen: list[tuple[int, int]] = []
    world.run(flows.replay(MAP, progress=lambda done, total: seen.append((done, total))))
    assert seen == [(0, 1), (1, 1)]


def test_replay_completes_a_pending_erasure() -> None:
    world = World()
    world.crash_at = flows.DeleteRows
    with pytest.raises(Crash):
        world.run(flows.erase(MAP, Subject(P)))
    world.run(flows.replay(MAP))
    assert world.log[P]["state"] == flows.DONE
    assert verify_receipt(world.log[P]["receipt"])


def test_the_receipt_digest_detects_any_change() -> None:
    world = World()
    receipt = world.run(flows.erase(MAP, Subject(P)))
    assert verify_receipt(receipt)
    assert verify_receipt(receipt.document())
    assert len(receipt.digest) == 64
    changed = replace(receipt, models=(replace(receipt.models[0], clinical_deleted=0),))
    assert not verify_receipt(changed)
    assert not verify_receipt({**receipt.document(), "actor": "someone else"})
    assert not verify_receipt({**receipt.document(), "digest": ""})
    # the stored form (dates at millisecond precision) verifies as the original does
    later = {**receipt.document(), "erased_at": AT.replace(microsecond=123456)}
    assert verify_receipt(later)


def test_policies_are_validated_with_the_model_named() -> None:
    assert erasure_policy("Visit", None) == "pseudonymise"
    assert erasure_policy("Visit", {"erasure": "delete"}) == "delete"
    with pytest.raises(ConfigurationError, match="Visit: privacy 'erasure' must be"):
        erasure_policy("Visit", {"erasure": "remove"})
    fields = ("_id", "at")
    assert retention_policy("Visit", {}, fields) is None
    assert retention_policy("Visit", {"retention": {"days": 30, "field": "at"}}, fields) == (
        Retention(30, "at", "erase")
    )
    for bad in (
        {"days": 0, "field": "at"},
        {"days": True, "field": "at"},
        {"days": 30, "field": "email"},
        {"days": 30, "field": "at", "then": "delete"},
        {"days": 30, "field": "at", "extra": 1},
        [30, "at"],
    ):
        with pytest.raises(ConfigurationError, match="Visit: privacy 'retention' must be"):
            retention_policy("Visit", {"retention": bad}, fields)
    with pytest.raises(ConfigurationError, match="holding identity fields"):
        retention_policy("Visit", {"retention": {"days": 1, "field": "at"}}, fields, split=False)


@pytest.mark.parametrize("then", ["erase", "pseudonymise"])
def test_retention_erases_subjects_past_it_once_and_records_every_run(then: str) -> None:
    policy = Retention(days=30, field="seen", then=then)
    data_map = replace(MAP, models=(replace(MAP.models[0], retention=policy), *MAP.models[1:]))
    world = World()
    world.rows["Patient"][0]["seen"] = AT - datetime.timedelta(days=31)  # P: past it
    world.rows["Patient"][1]["seen"] = AT - datetime.timedelta(days=29)  # OTHER: not yet
    (receipt,) = world.run(retention.enforce(data_map, AT))
    assert receipt.pseudonym == P
    assert [(r.model, r.pseudonyms) for r in world.retention] == [("Patient", (P,))]
    assert world.keys == {OTHER}
    deleted = then == "erase"
    assert [r["_id"] for r in world.rows["Patient"]] == ([2] if deleted else [1, 2])
    assert {m.policy for m in receipt.models} == (
        {"delete", "pseudonymise"} if deleted else {"pseudonymise"}
    )
    assert world.run(retention.enforce(data_map, AT)) == []  # idempotent
    assert world.retention[-1].pseudonyms == ()  # the second run is recorded, naming nobody
    world.asked.clear()
    later = world.run(retention.enforce(data_map, AT + datetime.timedelta(days=2)))
    assert [r.pseudonym for r in later] == [OTHER]
    assert isinstance(world.asked[0], retention.Expired)  # ``now`` given: no clock read


def test_a_bad_policy_fails_when_the_model_is_compiled() -> None:
    fields = (FieldSpec("_id", "id", primary_key=True), FieldSpec("email", "email", marker=True),
              FieldSpec("seen", "seen"))  # fmt: skip
    good = {"erasure": "delete", "retention": {"days": 3, "field": "seen"}}
    assert compile_schema([ModelSpec("Patient", "patient", fields, good)], Policy()).enabled
    for bad, match in (
        ({"erasure": "shred"}, "privacy 'erasure'"),
        ({"retention": {"days": 3, "field": "email"}}, "clinical field"),
    ):
        with pytest.raises(ConfigurationError, match=match):
            compile_schema([ModelSpec("Patient", "patient", fields, bad)], Policy())
