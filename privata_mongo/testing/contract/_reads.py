"""Internal. The contract's checks of reads: ``DocumentReader`` and ``DocumentAnalytics``.

Batches and their end, filters, sorts, skips, limits, projections, counts, distinct values,
pipelines, the estimated count and a query plan: what the read flows rely on a store for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from privata_mongo.core.ops import (
    Aggregate,
    Count,
    Distinct,
    EstimatedCount,
    Explain,
    Find,
    Query,
)
from privata_mongo.testing.contract._harness import SIDE, Register, StoreFactory, fresh
from privata_mongo.testing.contract._helpers import (
    NO_OPTIONS,
    drain,
    open_cursor,
    sample_people,
    seed,
)

__all__ = ["CHECKS"]

_check = Register()


@_check()
async def check_find_reads_in_batches(make: StoreFactory) -> None:
    """``next_batch(n)`` returns n documents until the last, short batch, across server batches."""
    store = await fresh(make, "find_reads_in_batches")
    await seed(store, sample_people(7))
    # A server batch size (2) smaller than the reads (3): the cursor fetches more as needed.
    cursor = await open_cursor(store, Find(SIDE, Query({}, sort=(("_id", 1),), batch_size=2)))
    batches = await drain(cursor, 3)
    assert [len(b) for b in batches] == [3, 3, 1]
    assert [d["_id"] for b in batches for d in b] == list(range(7))
    assert batches[0][0] == sample_people(7)[0]


@_check()
async def check_find_signals_exhaustion_with_an_empty_batch(make: StoreFactory) -> None:
    """When the documents fill whole batches, the next batch is empty; so is an empty find."""
    store = await fresh(make, "find_exhaustion")
    cursor = await open_cursor(store, Find(SIDE, Query({})))
    assert await drain(cursor, 4) == [[]]
    await seed(store, sample_people(6))
    cursor = await open_cursor(store, Find(SIDE, Query({}, sort=(("_id", 1),))))
    assert [len(b) for b in await drain(cursor, 3)] == [3, 3, 0]
    cursor = await open_cursor(store, Find(SIDE, Query({"kind": "nobody"})))
    assert await drain(cursor, 3) == [[]]


@_check()
async def check_find_filters_sorts_skips_and_limits(make: StoreFactory) -> None:
    """Filter, a two-key sort, skip and limit select exactly what the server would."""
    store = await fresh(make, "find_query")
    people = sample_people(12)
    await seed(store, people)
    wanted = sorted((p for p in people if p["kind"] == "a"), key=lambda p: (-p["rank"], p["_id"]))
    query = Query({"kind": "a"}, sort=(("rank", -1), ("_id", 1)), skip=1, limit=4)
    found = [d for b in await drain(await open_cursor(store, Find(SIDE, query)), 2) for d in b]
    assert found == wanted[1:5]
    everything = [
        d
        for b in await drain(await open_cursor(store, Find(SIDE, Query({}, skip=10))), 5)
        for d in b
    ]
    assert len(everything) == 2
    limited = Query({"rank": {"$gte": 2}}, sort=(("_id", -1),), limit=2, batch_size=1)
    found = [d for b in await drain(await open_cursor(store, Find(SIDE, limited)), 10) for d in b]
    assert [d["_id"] for d in found] == [p["_id"] for p in people if p["rank"] >= 2][::-1][:2]


@_check()
async def check_find_projects(make: StoreFactory) -> None:
    """Inclusion, inclusion without ``_id``, and exclusion projections shape each document."""
    store = await fresh(make, "find_projection")
    await seed(store, sample_people(3))
    cases: list[tuple[Mapping[str, Any], set[str]]] = [
        ({"name": 1}, {"_id", "name"}),
        ({"name": 1, "rank": 1, "_id": 0}, {"name", "rank"}),
        ({"secret": 0, "kind": 0}, {"_id", "rank", "name"}),
    ]
    for projection, keys in cases:
        query = Query({}, projection=projection, sort=(("_id", 1),))
        (batch,) = await drain(await open_cursor(store, Find(SIDE, query)), 5)
        assert [set(d) for d in batch] == [keys] * 3, projection
    (batch,) = await drain(
        await open_cursor(store, Find(SIDE, Query({"_id": 2}, projection={"name": 1}))), 5
    )
    assert batch == [{"_id": 2, "name": "person 2"}]


@_check()
async def check_cursor_closes_before_exhaustion(make: StoreFactory) -> None:
    """A cursor closed early (or never read) releases without error; the store stays usable."""
    store = await fresh(make, "cursor_close")
    await seed(store, sample_people(10))
    cursor = await open_cursor(store, Find(SIDE, Query({}, sort=(("_id", 1),), batch_size=2)))
    assert len(await cursor.next_batch(3)) == 3
    await cursor.close()
    unread = await open_cursor(store, Find(SIDE, Query({}, batch_size=2)))
    await unread.close()
    assert await store.execute(Count(SIDE, {}, NO_OPTIONS)) == 10


@_check()
async def check_count_honours_skip_and_limit(make: StoreFactory) -> None:
    """``count`` counts matches, after the ``skip`` and ``limit`` options; 0 for no collection."""
    store = await fresh(make, "count")
    assert await store.execute(Count(SIDE, {}, NO_OPTIONS)) == 0
    people = sample_people(10)
    await seed(store, people)
    kind_a = sum(1 for p in people if p["kind"] == "a")
    assert await store.execute(Count(SIDE, {}, NO_OPTIONS)) == 10
    assert await store.execute(Count(SIDE, {"kind": "a"}, NO_OPTIONS)) == kind_a
    assert await store.execute(Count(SIDE, {"kind": "a"}, {"skip": 2})) == kind_a - 2
    assert await store.execute(Count(SIDE, {}, {"limit": 3})) == 3
    assert await store.execute(Count(SIDE, {}, {"skip": 8, "limit": 5})) == 2
    assert await store.execute(Count(SIDE, {}, {"skip": 20})) == 0
    assert await store.execute(Count(SIDE, {"kind": "nobody"}, NO_OPTIONS)) == 0


@_check()
async def check_distinct_lists_values_once(make: StoreFactory) -> None:
    """``distinct`` returns each value once, for the documents the filter matches."""
    store = await fresh(make, "distinct")
    assert await store.execute(Distinct(SIDE, "kind", {}, NO_OPTIONS)) == []
    people = sample_people(10)
    await seed(store, people)
    assert sorted(await store.execute(Distinct(SIDE, "kind", {}, NO_OPTIONS))) == ["a", "b"]
    ranks = await store.execute(Distinct(SIDE, "rank", {"kind": "a"}, NO_OPTIONS))
    assert sorted(ranks) == sorted({p["rank"] for p in people if p["kind"] == "a"})
    assert await store.execute(Distinct(SIDE, "missing", {}, NO_OPTIONS)) == []


# DocumentAnalytics


@_check()
async def check_aggregate_reads_in_batches(make: StoreFactory) -> None:
    """A pipeline's results come through ``next_batch`` like a find's, in the pipeline's order."""
    store = await fresh(make, "aggregate")
    people = sample_people(10)
    await seed(store, people)
    pipeline: list[Mapping[str, Any]] = [
        {"$match": {"rank": {"$gte": 1}}},
        {"$group": {"_id": "$rank", "n": {"$sum": 1}}},
        {"$sort": {"_id": 1}},
    ]
    expected: dict[int, int] = {}
    for p in people:
        if p["rank"] >= 1:
            expected[p["rank"]] = expected.get(p["rank"], 0) + 1
    batches = await drain(
        await open_cursor(store, Aggregate(SIDE, tuple(pipeline), {"batchSize": 1})), 3
    )
    assert [len(b) for b in batches] == [3, 1]
    assert [(d["_id"], d["n"]) for b in batches for d in b] == sorted(expected.items())
    shaped: list[Mapping[str, Any]] = [
        {"$sort": {"_id": -1}},
        {"$skip": 2},
        {"$limit": 3},
        {"$project": {"name": 1, "_id": 0}},
    ]
    (batch,) = await drain(await open_cursor(store, Aggregate(SIDE, tuple(shaped), NO_OPTIONS)), 10)
    assert batch == [{"name": f"person {i}"} for i in (7, 6, 5)]
    empty = await open_cursor(store, Aggregate(SIDE, ({"$match": {"kind": "nobody"}},), NO_OPTIONS))
    assert await drain(empty, 2) == [[]]


@_check()
async def check_estimated_count(make: StoreFactory) -> None:
    """``estimated_count`` is the collection's size (exact when nothing else writes)."""
    store = await fresh(make, "estimated_count")
    assert await store.execute(EstimatedCount(SIDE, NO_OPTIONS)) == 0
    await seed(store, sample_people(4))
    assert await store.execute(EstimatedCount(SIDE, NO_OPTIONS)) == 4


@_check("explain")
async def check_explain_returns_a_plan(make: StoreFactory) -> None:
    """``explain`` returns the server's plan as a non-empty mapping."""
    store = await fresh(make, "explain")
    await seed(store, sample_people(3))
    plan = await store.execute(Explain(SIDE, Query({"kind": "a"}, sort=(("_id", 1),), limit=2)))
    assert isinstance(plan, Mapping)
    assert plan


CHECKS = _check.checks
