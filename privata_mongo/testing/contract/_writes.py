"""Internal. The contract's checks of writes: ``DocumentWriter``.

Inserts that store documents as given and report duplicates as data (ordered or not), updates
that count what they matched and modified, upserts, write errors raised as ``WriteFailed`` with
the server's code, and deletes that count what went.
"""

from __future__ import annotations

import datetime

from privata_mongo.core.failures import DUPLICATE_KEY, TYPE_MISMATCH, WriteFailed, WriteFailure
from privata_mongo.core.ops import (
    Count,
    CreateIndex,
    Delete,
    Document,
    Insert,
    InsertOutcome,
    Update,
)
from privata_mongo.testing.contract._harness import SIDE, Register, StoreFactory, fresh
from privata_mongo.testing.contract._helpers import (
    NO_OPTIONS,
    failure_of,
    fetch_all,
    fetch_ids,
    fetch_one,
    sample_people,
    seed,
)

__all__ = ["CHECKS"]

_check = Register()


@_check()
async def check_insert_stores_documents_as_given(make: StoreFactory) -> None:
    """Inserted documents read back equal, with their values and types; empty inserts are no-ops."""
    store = await fresh(make, "insert")
    documents: list[Document] = [
        {
            "_id": "one",
            "text": "x",
            "int": 3,
            "float": 2.5,
            "flag": True,
            "nothing": None,
            "list": [1, "two", {"three": 3}],
            "nested": {"a": {"b": [True]}},
            "when": datetime.datetime(2024, 5, 17, 10, 30, 0, 123000),
        },
        {"_id": 2, "text": "y"},
    ]
    assert await store.execute(Insert(SIDE, tuple(documents), True)) == InsertOutcome()
    assert await store.execute(Insert(SIDE, (), True)) == InsertOutcome()
    assert await store.execute(Insert(SIDE, (), False)) == InsertOutcome()
    stored = {d["_id"]: d for d in await fetch_all(store)}
    assert stored == {"one": documents[0], 2: documents[1]}


@_check()
async def check_insert_ordered_stops_at_a_duplicate(make: StoreFactory) -> None:
    """Ordered: a duplicate ``_id`` is reported (index, code 11000), not raised; later ones wait."""
    store = await fresh(make, "insert_ordered")
    await seed(store, [{"_id": 1, "v": "old"}])
    outcome = await store.execute(
        Insert(SIDE, ({"_id": 10}, {"_id": 1, "v": "new"}, {"_id": 11}), True)
    )
    assert isinstance(outcome, InsertOutcome)
    assert [(f.index, f.code) for f in outcome.failures] == [(1, DUPLICATE_KEY)]
    assert outcome.failed() == {1}
    assert all(isinstance(f, WriteFailure) for f in outcome.failures)
    assert await fetch_ids(store) == [1, 10]
    assert await fetch_one(store, 1) == {"_id": 1, "v": "old"}


@_check()
async def check_insert_unordered_writes_all_but_the_duplicates(make: StoreFactory) -> None:
    """Unordered: every duplicate is reported by index with code 11000; the rest are written."""
    store = await fresh(make, "insert_unordered")
    await seed(store, [{"_id": 1}, {"_id": 2}])
    batch: list[Document] = [{"_id": 20}, {"_id": 1}, {"_id": 21}, {"_id": 2}, {"_id": 21}]
    outcome = await store.execute(Insert(SIDE, tuple(batch), False))
    assert sorted((f.index, f.code) for f in outcome.failures) == [
        (1, DUPLICATE_KEY),
        (3, DUPLICATE_KEY),
        (4, DUPLICATE_KEY),
    ]
    assert await fetch_ids(store) == [1, 2, 20, 21]


@_check()
async def check_update_one_and_many(make: StoreFactory) -> None:
    """``update`` reports matched and modified counts; ``multi`` decides how many change."""
    store = await fresh(make, "update")
    people = sample_people(9)
    await seed(store, people)
    kind_a = [p["_id"] for p in people if p["kind"] == "a"]
    one = await store.execute(
        Update(SIDE, {"kind": "a"}, {"$set": {"seen": True}}, False, False, NO_OPTIONS)
    )
    assert (one.matched, one.modified, one.upserted_id) == (1, 1, None)
    many = await store.execute(
        Update(SIDE, {"kind": "a"}, {"$set": {"seen": True}}, True, False, NO_OPTIONS)
    )
    assert (many.matched, many.modified) == (len(kind_a), len(kind_a) - 1)
    assert await fetch_ids(store, {"seen": True}) == kind_a
    bump = await store.execute(
        Update(SIDE, {"_id": 0}, {"$inc": {"rank": 10}}, False, False, NO_OPTIONS)
    )
    assert (bump.matched, bump.modified) == (1, 1)
    assert (await fetch_one(store, 0) or {}).get("rank") == people[0]["rank"] + 10
    none = await store.execute(
        Update(SIDE, {"kind": "nobody"}, {"$set": {"x": 1}}, True, False, NO_OPTIONS)
    )
    assert (none.matched, none.modified, none.upserted_id) == (0, 0, None)


@_check()
async def check_update_upserts(make: StoreFactory) -> None:
    """An upsert that matches nothing inserts and reports the new ``_id`` as ``upserted_id``."""
    store = await fresh(make, "update_upsert")
    given = await store.execute(
        Update(SIDE, {"_id": "u1"}, {"$set": {"v": 1}}, False, True, NO_OPTIONS)
    )
    assert (given.matched, given.modified, given.upserted_id) == (0, 0, "u1")
    assert await fetch_one(store, "u1") == {"_id": "u1", "v": 1}
    made = await store.execute(
        Update(SIDE, {"key": "k"}, {"$set": {"v": 2}}, True, True, NO_OPTIONS)
    )
    assert made.matched == 0
    assert made.upserted_id is not None
    assert await fetch_one(store, made.upserted_id) == {"_id": made.upserted_id, "key": "k", "v": 2}
    again = await store.execute(
        Update(SIDE, {"key": "k"}, {"$set": {"v": 3}}, False, True, NO_OPTIONS)
    )
    assert (again.matched, again.modified, again.upserted_id) == (1, 1, None)
    assert await store.execute(Count(SIDE, {}, NO_OPTIONS)) == 2


@_check("typed_update_errors")
async def check_update_operator_errors_raise_write_failed(make: StoreFactory) -> None:
    """An impossible update raises ``WriteFailed`` with the server's code; nothing changes."""
    store = await fresh(make, "update_operator_error")
    await seed(store, [{"_id": 1, "name": "text", "n": 1}])
    failed = await failure_of(
        store.execute(Update(SIDE, {"_id": 1}, {"$inc": {"name": 1}}, False, False, NO_OPTIONS))
    )
    assert isinstance(failed, WriteFailed), repr(failed)
    assert failed.code == TYPE_MISMATCH, repr(failed)
    assert await fetch_one(store, 1) == {"_id": 1, "name": "text", "n": 1}


@_check("duplicate_key_on_update")
async def check_update_duplicate_key_raises_write_failed(make: StoreFactory) -> None:
    """An update that breaks a unique index raises ``WriteFailed`` with code 11000."""
    store = await fresh(make, "update_duplicate")
    await store.execute(CreateIndex(SIDE, (("email", 1),), {"unique": True}))
    await seed(store, [{"_id": 1, "email": "a@x"}, {"_id": 2, "email": "b@x"}])
    failed = await failure_of(
        store.execute(
            Update(SIDE, {"_id": 2}, {"$set": {"email": "a@x"}}, False, False, NO_OPTIONS)
        )
    )
    assert isinstance(failed, WriteFailed), repr(failed)
    assert failed.code == DUPLICATE_KEY, repr(failed)
    assert await fetch_one(store, 2) == {"_id": 2, "email": "b@x"}


@_check()
async def check_delete_one_and_many(make: StoreFactory) -> None:
    """``delete`` returns how many documents went: one, all matching, or none."""
    store = await fresh(make, "delete")
    people = sample_people(9)
    await seed(store, people)
    kind_a = sum(1 for p in people if p["kind"] == "a")
    assert await store.execute(Delete(SIDE, {"kind": "a"}, False, NO_OPTIONS)) == 1
    assert await store.execute(Delete(SIDE, {"kind": "a"}, True, NO_OPTIONS)) == kind_a - 1
    assert await store.execute(Delete(SIDE, {"kind": "a"}, True, NO_OPTIONS)) == 0
    assert await store.execute(Delete(SIDE, {"kind": "nobody"}, False, NO_OPTIONS)) == 0
    assert await store.execute(Count(SIDE, {}, NO_OPTIONS)) == 9 - kind_a


CHECKS = _check.checks
