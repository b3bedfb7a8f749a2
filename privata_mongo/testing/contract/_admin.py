"""Internal. The contract's checks of indexes and collections: ``CollectionAdmin``.

Index names and their enforcement, dropping one index or all, the index information of a
missing collection, and dropping a collection with its indexes.
"""

from __future__ import annotations

from privata_mongo.core.failures import DUPLICATE_KEY
from privata_mongo.core.ops import (
    Count,
    CreateIndex,
    Drop,
    DropIndex,
    EstimatedCount,
    IndexInformation,
    Insert,
)
from privata_mongo.testing.contract._harness import SIDE, Register, StoreFactory, fresh
from privata_mongo.testing.contract._helpers import (
    NO_OPTIONS,
    fetch_ids,
    sample_people,
    seed,
)

__all__ = ["CHECKS"]

_check = Register()


@_check()
async def check_create_index_names_and_enforces(make: StoreFactory) -> None:
    """``create_index`` returns the index name; a unique index rejects duplicates afterwards."""
    store = await fresh(make, "create_index")
    assert await store.execute(CreateIndex(SIDE, (("rank", 1),), NO_OPTIONS)) == "rank_1"
    assert (
        await store.execute(CreateIndex(SIDE, (("kind", 1), ("rank", -1)), NO_OPTIONS))
        == "kind_1_rank_-1"
    )
    unique = await store.execute(
        CreateIndex(SIDE, (("email", 1),), {"unique": True, "name": "by_email"})
    )
    assert unique == "by_email"
    info = await store.execute(IndexInformation(SIDE))
    assert set(info) == {"_id_", "rank_1", "kind_1_rank_-1", "by_email"}
    assert [tuple(k) for k in info["kind_1_rank_-1"]["key"]] == [("kind", 1), ("rank", -1)]
    assert info["by_email"].get("unique") is True
    await seed(store, [{"_id": 1, "email": "a@x"}])
    outcome = await store.execute(
        Insert(SIDE, ({"_id": 2, "email": "a@x"}, {"_id": 3, "email": "c@x"}), False)
    )
    assert [(f.index, f.code) for f in outcome.failures] == [(0, DUPLICATE_KEY)]
    assert await fetch_ids(store) == [1, 3]


@_check()
async def check_drop_index_by_name_and_all(make: StoreFactory) -> None:
    """``drop_index(name)`` drops one index; ``drop_index("*")`` all but ``_id_``."""
    store = await fresh(make, "drop_index")
    await seed(store, sample_people(2))
    for keys in ([("rank", 1)], [("kind", 1)], [("name", -1)]):
        await store.execute(CreateIndex(SIDE, tuple(keys), NO_OPTIONS))
    await store.execute(DropIndex(SIDE, "kind_1"))
    assert set(await store.execute(IndexInformation(SIDE))) == {"_id_", "rank_1", "name_-1"}
    await store.execute(DropIndex(SIDE, "*"))
    assert set(await store.execute(IndexInformation(SIDE))) == {"_id_"}
    assert await store.execute(Count(SIDE, {}, NO_OPTIONS)) == 2


@_check()
async def check_index_information_of_a_missing_collection(make: StoreFactory) -> None:
    """``index_information`` is an empty mapping for a collection that does not exist."""
    store = await fresh(make, "index_information_missing")
    assert await store.execute(IndexInformation(SIDE)) == {}


@_check()
async def check_drop_removes_documents_and_indexes(make: StoreFactory) -> None:
    """``drop`` removes the collection with its indexes; dropping a missing one is fine."""
    store = await fresh(make, "drop")
    await seed(store, sample_people(3))
    await store.execute(CreateIndex(SIDE, (("rank", 1),), NO_OPTIONS))
    await store.execute(Drop(SIDE))
    assert await store.execute(Count(SIDE, {}, NO_OPTIONS)) == 0
    assert await store.execute(EstimatedCount(SIDE, NO_OPTIONS)) == 0
    assert await store.execute(IndexInformation(SIDE)) == {}
    await store.execute(Drop(SIDE))
    await seed(store, sample_people(1))
    assert set(await store.execute(IndexInformation(SIDE))) == {"_id_"}


CHECKS = _check.checks
