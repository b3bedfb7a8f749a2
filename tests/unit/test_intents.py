"""The crash-safety protocol as op sequences: intent before the write, outcome after, recovery.

An audited write stores an intent naming its subjects before its first write, and removes it
once its record is stored; a record that cannot be stored after an applied write is not raised
(the application would retry into a duplicate); the recovery flow resolves what an intent left.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from privata_mongo.core.audit import AccessContext
from privata_mongo.core.audit.intents import Intent, intent_holds, intent_of, seal_intent
from privata_mongo.core.audit.wrapper import AuditSpec, audited
from privata_mongo.core.crypto import INDEX_KEY_NAME, KEY_CHECK_NAME
from privata_mongo.core.crypto.chain_key import chain_key_name
from privata_mongo.core.crypto.ring import KeyRing
from privata_mongo.core.failures import WriteFailed
from privata_mongo.core.flows import recovery, write
from privata_mongo.core.flows.context import Context
from privata_mongo.core.ops import (
    AppendAudit,
    Delete,
    DiscardKeys,
    FetchAll,
    Find,
    Insert,
    InsertOutcome,
    IntentKey,
    NextBatch,
    OpenIntent,
    PendingIntents,
    ResolveAccess,
    SettleIntents,
    ShredKeys,
    Update,
)
from privata_mongo.core.schema import LEASE_FIELD, PSEUDONYM_FIELD, Side
from privata_mongo.errors import AuditUnavailable
from privata_mongo.testing.scripted import ScriptedDriver

P1 = "pseu_" + "0" * 31 + "1"
DR_LEE = AccessContext("dr.lee", "treatment", "art9_2h", "req-1")
ADA = {"_id": 7, "first_name": "Ada", "email": "ada@x.org", "age": 36}


def on(kind: type, side: Side) -> Any:
    return lambda op: isinstance(op, kind) and op.side is side


def _create(ctx: Context) -> Any:
    spec = AuditSpec("create", intents=True)
    return audited(ctx, lambda c: write.insert(c, [dict(ADA)], ordered=True), spec)


def test_a_create_stores_its_intent_before_writing_and_settles_it_after(ctx: Context) -> None:
    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (OpenIntent, None),
            (on(Insert, Side.IDENTITY), InsertOutcome()),
            (on(Insert, Side.CLINICAL), InsertOutcome()),
            (AppendAudit, None),
            (SettleIntents, None),
        ]
    )
    driver.run(_create(ctx))
    opened = driver.seen[1]
    assert isinstance(opened, OpenIntent)
    intent = opened.intent
    assert (intent.kind, intent.subjects, intent.fields) == (
        "create",
        (P1,),
        ("email", "first_name"),
    )
    assert (intent.access, intent.operation, intent.collection) == (DR_LEE, "create", "patient")
    assert "Ada" not in repr(intent.document())
    assert "ada@x.org" not in repr(intent.document())
    assert intent_of(intent.document()) == intent
    settled = driver.seen[-1]
    assert isinstance(settled, SettleIntents)
    assert settled.ids == (intent.id,)


@pytest.mark.parametrize(
    "error", [AuditUnavailable("journal refused"), ConnectionError("database unreachable")]
)
def test_an_intent_that_cannot_be_stored_fails_before_anything_is_written(
    ctx: Context, error: Exception
) -> None:
    driver = ScriptedDriver([(ResolveAccess, DR_LEE), (OpenIntent, error)])
    with pytest.raises(type(error)):
        driver.run(_create(ctx))
    assert not any(isinstance(op, (Insert, AppendAudit, SettleIntents)) for op in driver.seen)


def test_an_applied_create_whose_record_fails_returns_and_keeps_its_intent(ctx: Context) -> None:
    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (OpenIntent, None),
            (on(Insert, Side.IDENTITY), InsertOutcome()),
            (on(Insert, Side.CLINICAL), InsertOutcome()),
            (AppendAudit, AuditUnavailable("trail down")),
        ]
    )
    assert driver.run(_create(ctx)) is None  # no error: a retry would create a second document
    assert not any(isinstance(op, SettleIntents) for op in driver.seen)


def test_a_lost_reply_to_the_identity_insert_is_looked_up_and_the_create_goes_on(
    ctx: Context,
) -> None:
    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (OpenIntent, None),
            (on(Insert, Side.IDENTITY), ConnectionError("reply lost")),
            (on(FetchAll, Side.IDENTITY), [{"_id": P1}]),
            (on(Insert, Side.CLINICAL), InsertOutcome()),
            (AppendAudit, None),
            (SettleIntents, None),
        ]
    )
    driver.run(_create(ctx))
    (record,) = driver.seen[-2].records  # type: ignore[union-attr]
    assert (record.outcome, record.subjects) == ("ok", (P1,))


def test_a_network_error_after_a_write_keeps_the_intent_for_the_sweeper(ctx: Context) -> None:
    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (OpenIntent, None),
            (on(Insert, Side.IDENTITY), InsertOutcome()),
            (on(Insert, Side.CLINICAL), ConnectionError("gone")),
            (on(FetchAll, Side.CLINICAL), ConnectionError("still gone")),
            (AppendAudit, None),
        ]
    )
    with pytest.raises(ConnectionError):
        driver.run(_create(ctx))
    assert not any(isinstance(op, (SettleIntents, Delete)) for op in driver.seen)


def test_a_write_error_the_flow_undid_settles_the_intent(ctx: Context) -> None:
    def update(c: Context) -> Any:
        return write.update(c, {"age": 3}, {"$inc": {"visits": 1}}, False, False, {})

    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(FetchAll, Side.CLINICAL), [{PSEUDONYM_FIELD: P1}]),
            (OpenIntent, None),
            (on(Update, Side.CLINICAL), WriteFailed("bad update", 14)),
            (AppendAudit, None),
            (SettleIntents, None),
        ]
    )
    with pytest.raises(WriteFailed):
        driver.run(audited(ctx, update, AuditSpec("update", intents=True)))
    (record,) = driver.seen[-2].records  # type: ignore[union-attr]
    assert record.outcome == "error:WriteFailed"


def _delete(c: Context) -> Any:
    return write.delete(c, {"age": 3}, False, {})


def test_a_refused_clinical_delete_settles_the_intent(ctx: Context) -> None:
    # nothing was deleted: the document is whole, a retry deletes it
    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(Find, Side.CLINICAL), "cursor"),
            (NextBatch, [{"_id": 7, PSEUDONYM_FIELD: P1}]),
            (OpenIntent, None),
            (on(Delete, Side.CLINICAL), WriteFailed("refused", 2)),
            (SettleIntents, None),
        ]
    )
    with pytest.raises(WriteFailed):
        driver.run(audited(ctx, _delete, AuditSpec("delete", intents=True)))
    assert not [op for op in driver.seen if isinstance(op, Delete) and op.side is Side.IDENTITY]


def test_a_delete_refused_after_its_clinical_rows_keeps_its_intent_for_the_sweeper(
    ctx: Context,
) -> None:
    # the clinical row is gone, the identity row is not: no retry can find it (a retry selects
    # clinical rows), so the intent stays however sure the error is, and the error record
    # names the subject whose document is gone
    driver = ScriptedDriver(
        [
            (ResolveAccess, DR_LEE),
            (on(Find, Side.CLINICAL), "cursor"),
            (NextBatch, [{"_id": 7, PSEUDONYM_FIELD: P1}]),
            (OpenIntent, None),
            (on(Delete, Side.CLINICAL), 1),
            (on(Delete, Side.IDENTITY), WriteFailed("refused", 2)),
            (AppendAudit, None),
        ]
    )
    with pytest.raises(WriteFailed):
        driver.run(audited(ctx, _delete, AuditSpec("delete", intents=True)))
    (record,) = driver.seen[-1].records  # type: ignore[union-attr]
    assert (record.outcome, record.subjects) == ("error:WriteFailed", (P1,))
    assert not any(isinstance(op, SettleIntents) for op in driver.seen)


KEY = b"k" * 32  # the chain key of the audit destination


def _intent(kind: str, *subjects: str, id: str = "i1") -> dict[str, Any]:
    at = datetime.datetime(2026, 1, 2, 3, 0, 0)
    document = Intent(
        id, at, DR_LEE, kind, kind, "Patient", "patient", subjects, ("email",)
    ).document()  # type: ignore[arg-type]
    return seal_intent(document, KEY)


BEFORE = datetime.datetime(2026, 1, 2, 3, 4, 0)


def test_the_sweep_removes_an_orphan_identity_row_and_records_the_rollback(ctx: Context) -> None:
    driver = ScriptedDriver(
        [
            (PendingIntents, [_intent("create", P1)]),
            (IntentKey, KEY),
            (on(FetchAll, Side.IDENTITY), [{"_id": P1}]),
            (on(FetchAll, Side.CLINICAL), []),
            (on(Delete, Side.IDENTITY), 1),
            (AppendAudit, None),
            (SettleIntents, None),
        ]
    )
    done = driver.run(recovery.sweep(ctx, BEFORE))
    assert done == recovery.Resolved(intents=1, orphans=1, completed=0)
    (record,) = driver.seen[-2].records  # type: ignore[union-attr]
    assert (record.outcome, record.subjects, record.access) == (
        "recovered:rolled_back",
        (P1,),
        DR_LEE,
    )


def test_a_forged_create_intent_cannot_make_the_sweep_discard_the_librarys_own_keys(
    ctx: Context,
) -> None:
    sealed = dataclasses.replace(ctx, schema=dataclasses.replace(ctx.schema, sealed=True))
    own = (INDEX_KEY_NAME, KEY_CHECK_NAME, chain_key_name("db.privata_audit"))
    driver = ScriptedDriver(
        [
            (PendingIntents, [_intent("create", *own, P1)]),
            (IntentKey, KEY),
            (on(FetchAll, Side.IDENTITY), []),
            (on(FetchAll, Side.CLINICAL), []),
            (DiscardKeys, None),
            (SettleIntents, None),
        ]
    )
    driver.run(recovery.sweep(sealed, BEFORE))
    (discard,) = [op for op in driver.seen if isinstance(op, DiscardKeys)]
    # a subject with no row at all is still discarded: the sweep cannot tell a forged
    # pseudonym of another model from a fresh one (docs/security.md, the intent journal)
    assert discard.names == (P1,)


def test_the_sweep_completes_an_interrupted_delete(ctx: Context) -> None:
    driver = ScriptedDriver(
        [
            (PendingIntents, [_intent("delete", P1)]),
            (IntentKey, KEY),
            (on(FetchAll, Side.IDENTITY), []),
            (on(FetchAll, Side.CLINICAL), [{"_id": 7, PSEUDONYM_FIELD: P1}]),
            (on(Delete, Side.CLINICAL), 1),
            (AppendAudit, None),
            (SettleIntents, None),
        ]
    )
    assert driver.run(recovery.sweep(ctx, BEFORE)) == recovery.Resolved(1, 0, 1)
    (record,) = driver.seen[-2].records  # type: ignore[union-attr]
    assert (record.operation, record.outcome, record.subjects) == (
        "delete",
        "recovered:ok",
        (P1,),
    )


P2 = "pseu_" + "0" * 31 + "2"
P3 = "pseu_" + "0" * 31 + "3"


def _with_keys(ctx: Context) -> Context:
    """``ctx`` for a model whose identity rows are sealed, so a delete has keys to shred."""
    ring = KeyRing({"local": {"key": b"m" * 96}}, clock=lambda: 0.0, ttl=60.0)
    ring.checked = True
    schema = dataclasses.replace(ctx.schema, sealed=True)
    return dataclasses.replace(ctx, schema=schema, crypto=ring)


def test_the_sweep_finishes_a_delete_that_died_after_its_clinical_rows(ctx: Context) -> None:
    # P1: the clinical row went, the identity row and the key stayed (no read reaches them);
    # P2: both rows went, the shred may not have run; P3: the delete never reached it
    driver = ScriptedDriver(
        [
            (PendingIntents, [_intent("delete", P1, P2, P3)]),
            (IntentKey, KEY),
            (on(FetchAll, Side.IDENTITY), [{"_id": P1}, {"_id": P3}]),
            (on(FetchAll, Side.CLINICAL), [{"_id": 9, PSEUDONYM_FIELD: P3}]),
            (lambda op: op == Delete(Side.IDENTITY, {"_id": {"$in": [P1]}}, multi=True), 1),
            (lambda op: op == ShredKeys((P1, P2)), 1),
            (AppendAudit, None),
            (SettleIntents, None),
        ]
    )
    assert driver.run(recovery.sweep(_with_keys(ctx), BEFORE)) == recovery.Resolved(1, 0, 1)
    (record,) = driver.seen[-2].records  # type: ignore[union-attr]
    assert (record.operation, record.outcome, record.subjects, record.count) == (
        "delete",
        "recovered:ok",
        (P1, P2),
        2,
    )


def test_the_sweep_leaves_a_delete_that_never_started(ctx: Context) -> None:
    driver = ScriptedDriver(
        [
            (PendingIntents, [_intent("delete", P1)]),
            (IntentKey, KEY),
            (on(FetchAll, Side.IDENTITY), [{"_id": P1}]),
            (on(FetchAll, Side.CLINICAL), [{"_id": 7, PSEUDONYM_FIELD: P1}]),
            (SettleIntents, None),
        ]
    )
    assert driver.run(recovery.sweep(_with_keys(ctx), BEFORE)) == recovery.Resolved(1, 0, 0)
    assert not [op for op in driver.seen if isinstance(op, Delete | ShredKeys | AppendAudit)]


def test_the_sweep_leaves_an_intent_whose_row_a_live_writer_holds(ctx: Context) -> None:
    lease = {"o": "w1", "x": datetime.datetime(2026, 1, 2, 3, 5, 0)}  # after ctx.now()
    driver = ScriptedDriver(
        [
            (PendingIntents, [_intent("create", P1)]),
            (IntentKey, KEY),
            (on(FetchAll, Side.IDENTITY), [{"_id": P1, LEASE_FIELD: lease}]),
        ]
    )
    assert driver.run(recovery.sweep(ctx, BEFORE)) == recovery.Resolved(left=1)


def test_the_sweep_records_the_subjects_an_interrupted_update_may_have_changed(
    ctx: Context,
) -> None:
    driver = ScriptedDriver(
        [
            (PendingIntents, [_intent("update", P1)]),
            (IntentKey, KEY),
            (on(FetchAll, Side.IDENTITY), [{"_id": P1}]),
            (on(FetchAll, Side.CLINICAL), [{"_id": 7, PSEUDONYM_FIELD: P1}]),
            (AppendAudit, None),
            (SettleIntents, None),
        ]
    )
    driver.run(recovery.sweep(ctx, BEFORE))
    (record,) = driver.seen[-2].records  # type: ignore[union-attr]
    assert (record.outcome, record.subjects, record.fields) == (
        "recovered:unknown",
        (P1,),
        ("email",),
    )


P2 = "pseu_" + "0" * 31 + "2"


def _forged() -> list[dict[str, Any]]:
    """Three intents someone wrote to the journal without the chain key."""
    genuine = _intent("create", P1)
    unsealed = {k: v for k, v in _intent("create", P2, id="f1").items() if k != "mac"}
    wrong = _intent("delete", P2, id="f2") | {"mac": "0" * 64}
    copied = genuine | {"subjects": [P2]}  # a genuine MAC, another subject
    return [unsealed, wrong, copied]


def test_an_intent_mac_covers_every_field_its_id_included() -> None:
    sealed = _intent("create", P1)
    assert intent_holds(sealed, KEY)
    assert not intent_holds(sealed, b"x" * 32)  # sealed under another key
    changes = {
        "_id": "i2",
        "at": datetime.datetime(2026, 1, 2, 3, 0, 1),
        "actor": "mallory",
        "purpose": "billing",
        "legal_basis": "art6_1a",
        "request_id": "req-2",
        "operation": "delete",
        "kind": "delete",
        "model": "Visitor",
        "collection": "visitor",
        "subjects": [P2],
        "fields": ["first_name"],
    }
    assert set(changes) == set(sealed) - {"mac"}
    for name, value in changes.items():
        assert not intent_holds(sealed | {name: value}, KEY), name
    assert not intent_holds(sealed | {"extra": 1}, KEY)
    assert not intent_holds({k: v for k, v in sealed.items() if k != "mac"}, KEY)
    assert not intent_holds(sealed | {"mac": 1}, KEY)


def test_the_sweep_acts_on_no_forged_intent_and_reports_them(
    ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    sealed = dataclasses.replace(ctx, schema=dataclasses.replace(ctx.schema, sealed=True))
    driver = ScriptedDriver(
        [
            (PendingIntents, [*_forged(), _intent("create", P1, id="g1")]),
            (IntentKey, KEY),
            (AppendAudit, None),  # the refusal
            (on(FetchAll, Side.IDENTITY), [{"_id": P1}]),
            (on(FetchAll, Side.CLINICAL), [{"_id": 7, PSEUDONYM_FIELD: P1}]),
            (AppendAudit, None),
            (SettleIntents, None),
        ]
    )
    with caplog.at_level("WARNING"):
        done = driver.run(recovery.sweep(sealed, BEFORE))
    assert done == recovery.Resolved(intents=1, completed=1, forged=3)
    refusal = driver.seen[2]
    assert isinstance(refusal, AppendAudit)
    (record,) = refusal.records
    assert (record.operation, record.outcome, record.count, record.subjects) == (
        "recovery",
        recovery.FORGED_OUTCOME,
        3,
        (),
    )
    assert record.access == recovery.SWEEPER
    # only the genuine intent's subject is read, and only its intent is settled
    reads = [op for op in driver.seen if isinstance(op, FetchAll)]
    assert all(P2 not in repr(op) for op in reads)
    assert not [op for op in driver.seen if isinstance(op, (Delete, DiscardKeys))]
    settled = driver.seen[-1]
    assert isinstance(settled, SettleIntents)
    assert settled.ids == ("g1",)
    assert "3 pending intent(s) refused" in caplog.text
    assert P2 not in caplog.text
    assert "dr.lee" not in caplog.text


def test_the_sweep_without_a_chain_key_leaves_every_intent(ctx: Context) -> None:
    driver = ScriptedDriver([(PendingIntents, [_intent("create", P1)]), (IntentKey, None)])
    assert driver.run(recovery.sweep(ctx, BEFORE)) == recovery.Resolved(left=1)


def test_an_empty_journal_needs_no_key(ctx: Context) -> None:
    driver = ScriptedDriver([(PendingIntents, [])])
    assert driver.run(recovery.sweep(ctx, BEFORE)) == recovery.Resolved()
