"""Write leases and versioned reads: the op sequences of concurrent writers and readers."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest

from privata_mongo.core.failures import WriteFailed
from privata_mongo.core.flows import lease, read, write
from privata_mongo.core.flows.common import READ_AGAIN
from privata_mongo.core.flows.context import Context
from privata_mongo.core.flows.lease import MAX_TIME_EXPIRED
from privata_mongo.core.ops import (
    FetchAll,
    Find,
    FindAndModify,
    NextBatch,
    Pause,
    Query,
    ReplaceMany,
    Update,
    UpdateOutcome,
)
from privata_mongo.core.schema import LEASE_FIELD, PSEUDONYM_FIELD, VERSION_FIELD, Side
from privata_mongo.testing.scripted import ScriptedDriver

P1 = "pseu_" + "0" * 31 + "1"
NOW = datetime(2026, 1, 2, 3, 4, 5)
HELD = {"o": "someone", "x": NOW + timedelta(seconds=5)}


def on(kind: type, side: Side) -> Any:
    return lambda op: isinstance(op, kind) and op.side is side


def _update(ctx: Context) -> Any:
    return write.update(ctx, {"age": 3}, {"$set": {"email": "new@x"}}, False, False, {})


def test_the_lease_is_taken_only_where_free_or_expired(ctx: Context) -> None:
    driver = ScriptedDriver(
        [
            (on(FetchAll, Side.CLINICAL), [{"_id": 1, "age": 3, PSEUDONYM_FIELD: P1}]),
            (on(FindAndModify, Side.IDENTITY), {"_id": P1, "_rev": "r0", "email": "old@x"}),
            (on(ReplaceMany, Side.IDENTITY), 1),
            (on(Update, Side.CLINICAL), UpdateOutcome(1, 1)),
            (on(Update, Side.IDENTITY), UpdateOutcome(1, 1)),
        ]
    )
    assert driver.run(_update(ctx)) == UpdateOutcome(1, 1)
    take, swap, stamp, release = driver.seen[1], driver.seen[2], driver.seen[3], driver.seen[4]
    # one row: leased where free or expired, and returned as leased, in one call
    assert isinstance(take, FindAndModify)
    assert (take.action, take.return_new) == ("update", True)
    assert take.filter == {
        "_id": P1,
        "$or": [{LEASE_FIELD: {"$exists": False}}, {f"{LEASE_FIELD}.x": {"$lt": NOW}}],
    }
    lease = take.document["$set"][LEASE_FIELD]  # type: ignore[call-overload,index]
    assert lease["x"] == NOW + timedelta(seconds=ctx.write_lease)
    assert isinstance(swap, ReplaceMany)
    ((_, row),) = swap.pairs
    # The replaced row keeps the lease until the clinical half is written.
    assert (row[LEASE_FIELD], row[VERSION_FIELD]) == (lease, lease["o"])
    assert isinstance(stamp, Update)
    assert stamp.update == {"$set": {VERSION_FIELD: lease["o"]}}
    assert isinstance(release, Update)
    assert release.filter == {"_id": {"$in": [P1]}, f"{LEASE_FIELD}.o": lease["o"]}
    assert release.update == {"$unset": {LEASE_FIELD: ""}}


def test_a_writer_waits_for_a_held_document_then_applies_to_its_new_state(ctx: Context) -> None:
    driver = ScriptedDriver(
        [
            (on(FetchAll, Side.CLINICAL), [{"_id": 1, "age": 3, PSEUDONYM_FIELD: P1}]),
            (on(FindAndModify, Side.IDENTITY), None),  # not free
            (on(FetchAll, Side.IDENTITY), [{"_id": P1}]),  # but there: another writer's
            (Pause, None),
            (on(FindAndModify, Side.IDENTITY), {"_id": P1, "_rev": "r7", "email": "other@x"}),
            (on(ReplaceMany, Side.IDENTITY), 1),
            (on(Update, Side.CLINICAL), UpdateOutcome(1, 1)),
            (on(Update, Side.IDENTITY), UpdateOutcome(1, 1)),
        ]
    )
    assert driver.run(_update(ctx)) == UpdateOutcome(1, 1)
    pause = driver.seen[3]
    assert isinstance(pause, Pause)
    assert 0 < pause.seconds <= 0.1
    swap = driver.seen[5]
    assert isinstance(swap, ReplaceMany)
    ((cas, _),) = swap.pairs
    assert cas == {"_id": P1, "_rev": "r7"}  # the row read once held, not the one seen busy


def test_a_writer_gives_up_after_write_wait(ctx: Context) -> None:
    impatient = dataclasses.replace(ctx, write_wait=0.0)
    driver = ScriptedDriver(
        [
            (on(FetchAll, Side.CLINICAL), [{"_id": 1, "age": 3, PSEUDONYM_FIELD: P1}]),
            (on(FindAndModify, Side.IDENTITY), None),
            (on(FetchAll, Side.IDENTITY), [{"_id": P1}]),
            (on(Update, Side.IDENTITY), UpdateOutcome(0, 0)),
        ]
    )
    with pytest.raises(WriteFailed) as caught:
        driver.run(_update(impatient))
    assert caught.value.code == MAX_TIME_EXPIRED
    assert "write_wait_ms" in caught.value.message
    assert not [op for op in driver.seen if isinstance(op, ReplaceMany)]


def test_a_failed_clinical_half_releases_the_lease(ctx: Context) -> None:
    driver = ScriptedDriver(
        [
            (on(FetchAll, Side.CLINICAL), [{"_id": 1, "age": 3, PSEUDONYM_FIELD: P1}]),
            (on(FindAndModify, Side.IDENTITY), {"_id": P1, "_rev": "r0", "email": "old@x"}),
            (on(ReplaceMany, Side.IDENTITY), 1),
            (on(Update, Side.CLINICAL), WriteFailed("boom", 2)),
            (on(ReplaceMany, Side.IDENTITY), 1),
            (on(Update, Side.IDENTITY), UpdateOutcome(1, 1)),
        ]
    )
    with pytest.raises(WriteFailed):
        driver.run(_update(ctx))
    restore, release = driver.seen[-2], driver.seen[-1]
    assert isinstance(restore, ReplaceMany)
    ((_, row),) = restore.pairs
    assert row["email"] == "old@x"
    assert VERSION_FIELD not in row  # the version the row had: none
    assert isinstance(release, Update)
    assert release.update == {"$unset": {LEASE_FIELD: ""}}


def test_one_row_not_there_is_neither_held_nor_busy(ctx: Context) -> None:
    driver = ScriptedDriver(
        [(on(FindAndModify, Side.IDENTITY), None), (on(FetchAll, Side.IDENTITY), [])]
    )
    held = driver.run(lease.take(ctx, [P1]))
    assert (dict(held.rows), held.busy) == ({}, frozenset())


def test_a_lost_reply_to_the_one_row_lease_gives_the_lease_back(ctx: Context) -> None:
    driver = ScriptedDriver(
        [
            (on(FindAndModify, Side.IDENTITY), ConnectionError("reply lost")),
            (on(Update, Side.IDENTITY), UpdateOutcome(1, 1)),
        ]
    )
    with pytest.raises(ConnectionError):
        driver.run(lease.take(ctx, [P1]))
    take, unlease = driver.seen
    assert isinstance(take, FindAndModify)
    assert isinstance(unlease, Update)
    owner = take.document["$set"][LEASE_FIELD]["o"]  # type: ignore[call-overload,index]
    assert unlease.filter == {"_id": {"$in": [P1]}, f"{LEASE_FIELD}.o": owner}


def test_several_rows_are_leased_then_read(ctx: Context) -> None:
    p2 = "pseu_" + "0" * 31 + "2"
    driver = ScriptedDriver(
        [
            (on(Update, Side.IDENTITY), UpdateOutcome(2, 2)),
            (on(FetchAll, Side.IDENTITY), [{"_id": P1}, {"_id": p2}]),
        ]
    )
    held = driver.run(lease.take(ctx, [P1, p2]))
    assert sorted(held.rows) == [P1, p2]
    assert held.busy == frozenset()


def _find(ctx: Context) -> Any:
    return read.find(ctx, Query({"_id": 1}))


def test_a_reader_waits_for_a_held_row_and_reads_both_halves_again(ctx: Context) -> None:
    old = {"_id": 1, "age": 3, PSEUDONYM_FIELD: P1}
    new = {**old, "age": 4, VERSION_FIELD: "w1"}
    driver = ScriptedDriver(
        [
            (on(Find, Side.CLINICAL), "cursor"),
            (NextBatch, [old]),
            (
                on(FetchAll, Side.IDENTITY),
                [{"_id": P1, "email": "new@x", VERSION_FIELD: "w1", LEASE_FIELD: HELD}],
            ),
            (Pause, None),
            (on(FetchAll, Side.CLINICAL), [new]),
            (on(FetchAll, Side.IDENTITY), [{"_id": P1, "email": "new@x", VERSION_FIELD: "w1"}]),
        ]
    )
    driver.run(_find(ctx))
    assert driver.emitted == [{"_id": 1, "age": 4, "email": "new@x"}]


def test_a_reader_reads_again_a_pair_an_update_completed_between(ctx: Context) -> None:
    old = {"_id": 1, "age": 3, PSEUDONYM_FIELD: P1}
    new = {**old, "age": 4, VERSION_FIELD: "w1"}
    identity = {"_id": P1, "email": "new@x", VERSION_FIELD: "w1"}
    driver = ScriptedDriver(
        [
            (on(Find, Side.CLINICAL), "cursor"),
            (NextBatch, [old]),
            (on(FetchAll, Side.IDENTITY), [identity]),
            (on(FetchAll, Side.CLINICAL), [new]),
            (on(FetchAll, Side.IDENTITY), [identity]),
        ]
    )
    driver.run(_find(ctx))
    assert driver.emitted == [{"_id": 1, "age": 4, "email": "new@x"}]


def test_unequal_versions_no_writer_holds_are_read_again_a_bounded_number_of_times(
    ctx: Context,
) -> None:
    clinical = {"_id": 1, "age": 3, PSEUDONYM_FIELD: P1, VERSION_FIELD: "a"}
    identity = {"_id": P1, "email": "x@x", VERSION_FIELD: "b"}
    again = [
        entry
        for _ in range(READ_AGAIN)
        for entry in (
            (on(FetchAll, Side.CLINICAL), [clinical]),
            (on(FetchAll, Side.IDENTITY), [identity]),
        )
    ]
    driver = ScriptedDriver(
        [
            (on(Find, Side.CLINICAL), "cursor"),
            (NextBatch, [clinical]),
            (on(FetchAll, Side.IDENTITY), [identity]),
            *again,
        ]
    )
    driver.run(_find(ctx))
    assert driver.emitted == [{"_id": 1, "age": 3, "email": "x@x"}]


def test_a_pair_torn_anew_at_every_read_is_read_again_until_whole(ctx: Context) -> None:
    """Writers completing between each pair of reads: no fixed count, only ``write_wait``."""
    rounds = READ_AGAIN + 3
    again = [
        entry
        for n in range(rounds)
        for entry in (
            (
                on(FetchAll, Side.CLINICAL),
                [{"_id": 1, "age": n, PSEUDONYM_FIELD: P1, VERSION_FIELD: f"w{n}"}],
            ),
            (
                on(FetchAll, Side.IDENTITY),
                [{"_id": P1, "email": "x@x", VERSION_FIELD: f"w{n + 1}"}],
            ),
        )
    ]
    whole = {"_id": 1, "age": 9, PSEUDONYM_FIELD: P1, VERSION_FIELD: "w9"}
    driver = ScriptedDriver(
        [
            (on(Find, Side.CLINICAL), "cursor"),
            (NextBatch, [{"_id": 1, "age": 0, PSEUDONYM_FIELD: P1}]),
            (on(FetchAll, Side.IDENTITY), [{"_id": P1, "email": "x@x", VERSION_FIELD: "w0"}]),
            *again,
            (on(FetchAll, Side.CLINICAL), [whole]),
            (on(FetchAll, Side.IDENTITY), [{"_id": P1, "email": "x@x", VERSION_FIELD: "w9"}]),
        ]
    )
    driver.run(_find(ctx))
    assert driver.emitted == [{"_id": 1, "age": 9, "email": "x@x"}]
