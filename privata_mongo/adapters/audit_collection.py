"""Audit sinks over a MongoDB collection: the default destination of the audit trail.

By default the collection is ``privata_audit`` in the database of the data; any collection of
any client may be given instead (``configure(audit_sink=CollectionAuditSink(other[...]))``),
for instance on a separate server the application's own credentials cannot write to except by
inserting. The first append creates the indexes auditors query by (subject, actor, time) and a
unique index on the chain position, so two records can never claim the same place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "AUDIT_INDEXES",
    "AsyncCollectionAuditSink",
    "AsyncCollectionJournal",
    "CollectionAuditSink",
    "CollectionJournal",
]


def _pending_filter(collection: str, before: Any) -> dict[str, Any]:
    return {"collection": collection, "at": {"$lte": before}}


AUDIT_INDEXES: tuple[tuple[tuple[tuple[str, int], ...], dict[str, Any]], ...] = (
    ((("stream", 1), ("seq", 1)), {"name": "privata_chain", "unique": True}),
    ((("subjects", 1), ("at", 1)), {"name": "privata_subject"}),
    ((("actor", 1), ("at", 1)), {"name": "privata_actor"}),
)


class CollectionAuditSink:
    """``AuditSink`` over a pymongo-shaped collection (pymongo, mongomock).

    Args:
        collection: the real collection records are inserted into.
    """

    def __init__(self, collection: Any) -> None:
        self._collection = collection
        self._indexed = False

    @property
    def collection(self) -> Any:
        """Where the records go."""
        return self._collection

    def append(self, records: Sequence[Mapping[str, Any]], /) -> None:
        """Insert ``records`` in order; any failure propagates."""
        if not self._indexed:
            for keys, options in AUDIT_INDEXES:
                self._collection.create_index(list(keys), **options)
            self._indexed = True
        self._collection.insert_many([dict(r) for r in records], ordered=True)


class AsyncCollectionAuditSink:
    """``AsyncAuditSink`` over an async pymongo-shaped collection (AsyncMongoClient, Motor)."""

    def __init__(self, collection: Any) -> None:
        self._collection = collection
        self._indexed = False

    @property
    def collection(self) -> Any:
        """Where the records go."""
        return self._collection

    async def append(self, records: Sequence[Mapping[str, Any]], /) -> None:
        """Insert ``records`` in order; any failure propagates."""
        if not self._indexed:
            for keys, options in AUDIT_INDEXES:
                await self._collection.create_index(list(keys), **options)
            self._indexed = True
        await self._collection.insert_many([dict(r) for r in records], ordered=True)


class CollectionJournal:
    """The journal of intents over a pymongo-shaped collection beside the data.

    Intents are inserted before a write and deleted once its record is stored, so the
    application's credentials need insert, find and delete on it (unlike the trail, which may
    be insert-only elsewhere). Its ``_id`` is the intent's id: storing one twice fails.
    """

    def __init__(self, collection: Any) -> None:
        self.collection = collection

    def insert(self, document: Mapping[str, Any], /) -> None:
        """Store one intent."""
        self.collection.insert_one(dict(document))

    def settle(self, ids: Sequence[str], /) -> None:
        """Remove the intents ``ids``."""
        if ids:
            self.collection.delete_many({"_id": {"$in": list(ids)}})

    def pending(self, collection: str, before: Any, limit: int = 0, /) -> list[dict[str, Any]]:
        """Intents of ``collection`` stored before ``before``, oldest first."""
        found = self.collection.find(_pending_filter(collection, before)).sort("at", 1)
        return list(found.limit(limit) if limit else found)


class AsyncCollectionJournal:
    """The async twin of ``CollectionJournal``."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection

    async def insert(self, document: Mapping[str, Any], /) -> None:
        """Store one intent."""
        await self.collection.insert_one(dict(document))

    async def settle(self, ids: Sequence[str], /) -> None:
        """Remove the intents ``ids``."""
        if ids:
            await self.collection.delete_many({"_id": {"$in": list(ids)}})

    async def pending(
        self, collection: str, before: Any, limit: int = 0, /
    ) -> list[dict[str, Any]]:
        """Intents of ``collection`` stored before ``before``, oldest first."""
        found = self.collection.find(_pending_filter(collection, before)).sort("at", 1)
        listed: list[dict[str, Any]] = await (found.limit(limit) if limit else found).to_list(None)
        return listed
