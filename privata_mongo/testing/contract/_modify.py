"""Internal. The contract's checks of replace and find-and-modify: ``DocumentModifier``.

A replace keeps only ``_id``; ``replace_many`` is a compare-and-swap that counts its winners;
find-and-modify returns the document before or after, picks by sort, upserts and projects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from privata_mongo.core.ops import (
    FindAndModify,
    Replace,
    ReplaceMany,
)
from privata_mongo.testing.contract._harness import SIDE, Register, StoreFactory, fresh
from privata_mongo.testing.contract._helpers import (
    NO_OPTIONS,
    fetch_all,
    fetch_ids,
    fetch_one,
    seed,
)

__all__ = ["CHECKS"]

_check = Register()


@_check()
async def check_replace_swaps_the_whole_document(make: StoreFactory) -> None:
    """``replace`` keeps ``_id`` and nothing else of the old document; upserts report the id."""
    store = await fresh(make, "replace")
    await seed(store, [{"_id": 1, "a": 1, "b": 2}])
    done = await store.execute(Replace(SIDE, {"_id": 1}, {"c": 3}, False, NO_OPTIONS))
    assert (done.matched, done.modified, done.upserted_id) == (1, 1, None)
    assert await fetch_one(store, 1) == {"_id": 1, "c": 3}
    missed = await store.execute(Replace(SIDE, {"_id": 2}, {"c": 4}, False, NO_OPTIONS))
    assert (missed.matched, missed.modified, missed.upserted_id) == (0, 0, None)
    assert await fetch_one(store, 2) is None
    upserted = await store.execute(Replace(SIDE, {"_id": 3}, {"c": 5}, True, NO_OPTIONS))
    assert (upserted.matched, upserted.upserted_id) == (0, 3)
    assert await fetch_one(store, 3) == {"_id": 3, "c": 5}


@_check()
async def check_replace_many_compares_and_swaps(make: StoreFactory) -> None:
    """``replace_many`` counts the filters that matched; a stale filter replaces nothing."""
    store = await fresh(make, "replace_many")
    assert await store.execute(ReplaceMany(SIDE, ())) == 0
    await seed(store, [{"_id": i, "version": 1, "v": "old"} for i in range(4)])
    pairs: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = [
        ({"_id": 0, "version": 1}, {"version": 2, "v": "new"}),
        ({"_id": 1, "version": 1}, {"version": 2, "v": "new"}),
        ({"_id": 2, "version": 7}, {"version": 8, "v": "lost"}),  # stale: no longer matches
    ]
    assert await store.execute(ReplaceMany(SIDE, tuple(pairs))) == 2
    stored = {d["_id"]: d for d in await fetch_all(store)}
    assert [stored[i] for i in (0, 1)] == [{"_id": i, "version": 2, "v": "new"} for i in (0, 1)]
    assert [stored[i] for i in (2, 3)] == [{"_id": i, "version": 1, "v": "old"} for i in (2, 3)]
    # Two writers racing on one version: exactly one of them wins.
    racing: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = [
        ({"_id": 3, "version": 1}, {"version": 2, "v": "first"}),
        ({"_id": 3, "version": 1}, {"version": 2, "v": "second"}),
    ]
    assert await store.execute(ReplaceMany(SIDE, tuple(racing))) == 1
    assert (await fetch_one(store, 3) or {}).get("v") in {"first", "second"}


@_check()
async def check_find_and_modify_updates(make: StoreFactory) -> None:
    """Update returns the document before or after, picks by ``sort``, and upserts."""
    store = await fresh(make, "fam_update")
    await seed(store, [{"_id": i, "kind": "a", "n": i} for i in range(3)])
    before = await store.execute(
        FindAndModify(
            SIDE,
            "update",
            {"kind": "a"},
            {"$inc": {"n": 10}},
            (("n", -1),),
            False,
            False,
            None,
            NO_OPTIONS,
        )
    )
    assert before == {"_id": 2, "kind": "a", "n": 2}
    after = await store.execute(
        FindAndModify(
            SIDE,
            "update",
            {"kind": "a"},
            {"$inc": {"n": 10}},
            (("n", 1),),
            False,
            True,
            None,
            NO_OPTIONS,
        )
    )
    assert after == {"_id": 0, "kind": "a", "n": 10}
    missing = await store.execute(
        FindAndModify(
            SIDE, "update", {"kind": "b"}, {"$set": {"n": 0}}, (), False, True, None, NO_OPTIONS
        )
    )
    assert missing is None
    quiet = await store.execute(
        FindAndModify(
            SIDE, "update", {"_id": 7}, {"$set": {"n": 7}}, (), True, False, None, NO_OPTIONS
        )
    )
    assert quiet is None
    assert await fetch_one(store, 7) == {"_id": 7, "n": 7}
    created = await store.execute(
        FindAndModify(
            SIDE, "update", {"_id": 8}, {"$set": {"n": 8}}, (), True, True, None, NO_OPTIONS
        )
    )
    assert created == {"_id": 8, "n": 8}


@_check()
async def check_find_and_modify_replaces_and_deletes(make: StoreFactory) -> None:
    """Replace returns the old or new document and upserts; delete returns what it removed."""
    store = await fresh(make, "fam_replace_delete")
    await seed(store, [{"_id": i, "kind": "a", "n": i} for i in range(3)])
    old = await store.execute(
        FindAndModify(
            SIDE, "replace", {"_id": 1}, {"fresh": True}, (), False, False, None, NO_OPTIONS
        )
    )
    assert old == {"_id": 1, "kind": "a", "n": 1}
    new = await store.execute(
        FindAndModify(SIDE, "replace", {"_id": 1}, {"fresh": 2}, (), False, True, None, NO_OPTIONS)
    )
    assert new == {"_id": 1, "fresh": 2}
    upserted = await store.execute(
        FindAndModify(SIDE, "replace", {"_id": 5}, {"v": 5}, (), True, True, None, NO_OPTIONS)
    )
    assert upserted == {"_id": 5, "v": 5}
    gone = await store.execute(
        FindAndModify(
            SIDE, "delete", {"kind": "a"}, None, (("n", -1),), False, False, None, NO_OPTIONS
        )
    )
    assert gone == {"_id": 2, "kind": "a", "n": 2}
    assert await fetch_ids(store) == [0, 1, 5]
    nothing = await store.execute(
        FindAndModify(SIDE, "delete", {"kind": "nobody"}, None, (), False, False, None, NO_OPTIONS)
    )
    assert nothing is None


@_check("find_and_modify_projection")
async def check_find_and_modify_projects(make: StoreFactory) -> None:
    """A projection shapes the document find-and-modify returns (not what it stores)."""
    store = await fresh(make, "fam_projection")
    await seed(store, [{"_id": 1, "a": 1, "b": 2}])
    found = await store.execute(
        FindAndModify(
            SIDE, "update", {"_id": 1}, {"$set": {"a": 5}}, (), False, True, {"a": 1}, NO_OPTIONS
        )
    )
    assert found == {"_id": 1, "a": 5}
    gone = await store.execute(
        FindAndModify(
            SIDE, "delete", {"_id": 1}, None, (), False, False, {"b": 1, "_id": 0}, NO_OPTIONS
        )
    )
    assert gone == {"b": 2}


CHECKS = _check.checks
