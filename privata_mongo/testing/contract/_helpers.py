"""Internal. What the contract's checks share: sample documents, seeding, reading back.

Every helper goes through the store's own ``execute`` (and its cursors' ``next_batch`` and
``close``), so a helper never proves more than the port promises.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, cast

from privata_mongo.core.ops import Aggregate, Document, Find, Insert, Query
from privata_mongo.ports.storage import AsyncBatchCursor, AsyncDocumentStore
from privata_mongo.testing.contract._harness import SIDE, error_of

__all__ = [
    "NO_OPTIONS",
    "drain",
    "failure_of",
    "fetch_all",
    "fetch_ids",
    "fetch_one",
    "open_cursor",
    "sample_people",
    "seed",
]

NO_OPTIONS: Mapping[str, Any] = {}


def sample_people(count: int = 10) -> list[Document]:
    """Plain documents with a few types; ``rank`` repeats so sorts need a tie-breaker."""
    return [
        {
            "_id": i,
            "kind": "a" if i % 3 else "b",
            "rank": (i * 7) % 5,
            "name": f"person {i}",
            "secret": f"s{i}",
        }
        for i in range(count)
    ]


async def seed(store: AsyncDocumentStore, documents: Sequence[Document]) -> None:
    """Insert ``documents``, which must all be written."""
    outcome = await store.execute(Insert(SIDE, tuple(documents), True))
    assert outcome.failures == (), f"seeding failed: {outcome.failures}"


async def fetch_all(store: AsyncDocumentStore, sort: str = "_id") -> list[Document]:
    """Every stored document, in ``sort`` order."""
    cursor = await open_cursor(store, Find(SIDE, Query({}, sort=((sort, 1),))))
    try:
        return await cursor.next_batch(10_000)
    finally:
        await cursor.close()


async def fetch_ids(
    store: AsyncDocumentStore, filter: Mapping[str, Any] | None = None
) -> list[Any]:
    """The ``_id`` of each document ``filter`` matches, in order."""
    cursor = await open_cursor(
        store, Find(SIDE, Query(filter or {}, projection={"_id": 1}, sort=(("_id", 1),)))
    )
    try:
        return [d["_id"] for d in await cursor.next_batch(10_000)]
    finally:
        await cursor.close()


async def fetch_one(store: AsyncDocumentStore, id: Any) -> Document | None:
    """The document with ``_id`` ``id``, or ``None``."""
    cursor = await open_cursor(store, Find(SIDE, Query({"_id": id})))
    try:
        found = await cursor.next_batch(2)
    finally:
        await cursor.close()
    assert len(found) <= 1, f"two documents with _id {id!r}"
    return found[0] if found else None


async def drain(cursor: AsyncBatchCursor, size: int) -> list[list[Document]]:
    """Batches of ``size`` until a short one (the port's signal of exhaustion), then close."""
    batches: list[list[Document]] = []
    try:
        while True:
            batch = await cursor.next_batch(size)
            assert len(batch) <= size, f"next_batch({size}) returned {len(batch)} documents"
            batches.append(batch)
            if len(batch) < size:
                return batches
            assert len(batches) < 1_000, "the cursor never signals exhaustion"
    finally:
        await cursor.close()


async def open_cursor(store: AsyncDocumentStore, op: Find | Aggregate) -> AsyncBatchCursor:
    """The cursor a ``Find`` or ``Aggregate`` opens."""
    return cast(AsyncBatchCursor, await store.execute(op))


async def failure_of(call: Awaitable[object]) -> Exception:
    """The exception ``call`` must raise."""
    error = await error_of(call)
    if error is None:
        raise AssertionError("the call succeeded; it should have failed")
    return error
