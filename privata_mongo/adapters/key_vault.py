"""The key-vault and key-shredder ports over a pymongo-shaped collection (sync and async).

The key vault is an ordinary collection in MongoDB's key-vault format (default
``encryption.__keyVault``), so MongoDB's own tooling (``ClientEncryption``, automatic decryption)
reads the same keys. On a server it carries the unique partial index on ``keyAltNames`` that
MongoDB recommends. An embedded (mongomock) store checks a unique index by scanning every key on
every insert, which would make each new subject cost more than the last; there the key's
``_id``, derived from its name (``core.crypto.ring.key_uuid``), is what keeps one key per name,
and ``keyAltNames`` gets a plain index. Tombstones of shredded keys live next to it, in
``<vault>.tombstones``: one document per erased data subject,
``{_id: <pseudonym>, shreddedAt: <date>}``, so a read can tell an erased subject from a key that
is missing by accident.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo.errors import BulkWriteError, OperationFailure

from privata_mongo.adapters.clock import SystemClock
from privata_mongo.core.ops import Document

__all__ = ["AsyncCollectionKeyVault", "CollectionKeyVault", "tombstones_of"]

_INDEX = "keyAltNames_1"
_INDEX_OPTIONS: Mapping[str, Any] = {
    "name": _INDEX,
    "unique": True,
    "partialFilterExpression": {"keyAltNames": {"$exists": True}},
}
_DUPLICATE_KEY = 11000


def tombstones_of(vault: Any) -> Any:
    """The tombstone collection next to a key-vault collection."""
    return vault.database[f"{vault.name}.tombstones"]


def _selector(names: Sequence[str] | None) -> dict[str, Any]:
    return {} if names is None else {"keyAltNames": {"$in": list(names)}}


def _rewraps(documents: Sequence[Mapping[str, Any]]) -> list[tuple[dict[str, Any], Any]]:
    """``(filter, update)`` per re-wrapped key (one update each: rotation is rare)."""
    return [
        (
            {"_id": d["_id"]},
            {
                "$set": {"masterKey": d["masterKey"], "keyMaterial": d["keyMaterial"]},
                "$currentDate": {"updateDate": True},
            },
        )
        for d in documents
    ]


def _tombstones(names: Sequence[str], at: Any) -> list[dict[str, Any]]:
    """One tombstone per name, for one unordered insert (one round trip for many subjects).

    A name already tombstoned fails as a duplicate and is skipped: the first erasure's date
    stays.
    """
    return [{"_id": name, "shreddedAt": at} for name in dict.fromkeys(names)]


def _one_batch(names: Sequence[str] | None) -> dict[str, int]:
    """``find`` options that answer a look-up of ``names`` in one reply.

    ``n`` names match at most ``n`` keys (one alt name per key), and a limit lets the server
    close the cursor instead of waiting for a ``getMore``: a page's keys cost one round trip.
    """
    if not names:
        return {}
    return {"limit": len(names), "batch_size": len(names)}


def _only_duplicates(exc: BulkWriteError) -> bool:
    return all(e.get("code") == _DUPLICATE_KEY for e in exc.details.get("writeErrors", ()))


class CollectionKeyVault:
    """``KeyVault`` and ``KeyShredder`` over a pymongo (or mongomock) collection.

    Args:
        collection: the key vault collection.
        clock: the tombstones' dates.
        unique_names: the unique index on ``keyAltNames`` (``False``: a plain one, for an
            embedded store; keys privata makes are kept one per name by their ``_id``).
    """

    def __init__(self, collection: Any, clock: Any = None, *, unique_names: bool = True) -> None:
        self.collection = collection
        self.tombstones = tombstones_of(collection)
        self._clock = clock or SystemClock()
        self._indexed = False
        self._unique_names = unique_names

    def _ensure_index(self) -> None:
        if self._indexed:
            return
        if not self._unique_names:
            self.collection.create_index("keyAltNames", name=_INDEX)
            self._indexed = True
            return
        try:
            self.collection.create_index("keyAltNames", **_INDEX_OPTIONS)
        except OperationFailure:
            # No partial indexes (FerretDB v1): every key privata writes has alt names.
            self.collection.create_index("keyAltNames", name=_INDEX, unique=True)
        # Once per vault and process; a failure (the server unreachable) is retried next time.
        self._indexed = True

    def find(self, names: Sequence[str] | None, /) -> list[Document]:
        """The key documents with one of ``names`` as ``keyAltName`` (all when ``None``)."""
        return list(self.collection.find(_selector(names), **_one_batch(names)))

    def insert(self, documents: Sequence[Mapping[str, Any]], /) -> None:
        """Insert new key documents; a key whose ``_id`` or ``keyAltName`` is taken is skipped."""
        self._ensure_index()
        try:
            self.collection.insert_many([dict(d) for d in documents], ordered=False)
        except BulkWriteError as exc:
            if not _only_duplicates(exc):
                raise

    def replace(self, documents: Sequence[Mapping[str, Any]], /) -> None:
        """Store re-wrapped ``masterKey``/``keyMaterial`` of existing keys, by ``_id``."""
        for selector, update in _rewraps(documents):
            self.collection.update_one(selector, update)

    def shred(self, names: Sequence[str], /) -> int:
        """Record tombstones, then delete the keys: the deleted count."""
        if not names:
            return 0
        try:
            self.tombstones.insert_many(_tombstones(names, self._clock.now()), ordered=False)
        except BulkWriteError as exc:
            if not _only_duplicates(exc):
                raise
        deleted: int = self.collection.delete_many(_selector(names)).deleted_count
        return deleted

    def erased(self, names: Sequence[str], /) -> list[str]:
        """Which of ``names`` have a tombstone."""
        found = self.tombstones.find({"_id": {"$in": list(names)}}, {"_id": 1}, **_one_batch(names))
        return [d["_id"] for d in found]

    def discard(self, names: Sequence[str], /) -> None:
        """Delete keys made for a write that failed (fresh pseudonyms only), no tombstone."""
        if names:
            self.collection.delete_many(_selector(names))


class AsyncCollectionKeyVault:
    """``AsyncKeyVault`` and ``AsyncKeyShredder`` over an async pymongo-shaped collection."""

    def __init__(self, collection: Any, clock: Any = None, *, unique_names: bool = True) -> None:
        self.collection = collection
        self.tombstones = tombstones_of(collection)
        self._clock = clock or SystemClock()
        self._indexed = False
        self._unique_names = unique_names

    async def _ensure_index(self) -> None:
        if self._indexed:
            return
        if not self._unique_names:
            await self.collection.create_index("keyAltNames", name=_INDEX)
            self._indexed = True
            return
        try:
            await self.collection.create_index("keyAltNames", **_INDEX_OPTIONS)
        except OperationFailure:
            # No partial indexes (FerretDB v1): every key privata writes has alt names.
            await self.collection.create_index("keyAltNames", name=_INDEX, unique=True)
        # Once per vault and process; a failure (the server unreachable) is retried next time.
        self._indexed = True

    async def find(self, names: Sequence[str] | None, /) -> list[Document]:
        """The key documents with one of ``names`` as ``keyAltName`` (all when ``None``)."""
        found: list[Document] = await self.collection.find(
            _selector(names), **_one_batch(names)
        ).to_list(None)
        return found

    async def insert(self, documents: Sequence[Mapping[str, Any]], /) -> None:
        """Insert new key documents; a key whose ``_id`` or ``keyAltName`` is taken is skipped."""
        await self._ensure_index()
        try:
            await self.collection.insert_many([dict(d) for d in documents], ordered=False)
        except BulkWriteError as exc:
            if not _only_duplicates(exc):
                raise

    async def replace(self, documents: Sequence[Mapping[str, Any]], /) -> None:
        """Store re-wrapped ``masterKey``/``keyMaterial`` of existing keys, by ``_id``."""
        for selector, update in _rewraps(documents):
            await self.collection.update_one(selector, update)

    async def shred(self, names: Sequence[str], /) -> int:
        """Record tombstones, then delete the keys: the deleted count."""
        if not names:
            return 0
        try:
            await self.tombstones.insert_many(_tombstones(names, self._clock.now()), ordered=False)
        except BulkWriteError as exc:
            if not _only_duplicates(exc):
                raise
        result = await self.collection.delete_many(_selector(names))
        deleted: int = result.deleted_count
        return deleted

    async def erased(self, names: Sequence[str], /) -> list[str]:
        """Which of ``names`` have a tombstone."""
        found = await self.tombstones.find(
            {"_id": {"$in": list(names)}}, {"_id": 1}, **_one_batch(names)
        ).to_list(None)
        return [d["_id"] for d in found]

    async def discard(self, names: Sequence[str], /) -> None:
        """Delete keys made for a write that failed (fresh pseudonyms only), no tombstone."""
        if names:
            await self.collection.delete_many(_selector(names))
