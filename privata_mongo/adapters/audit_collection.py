"""Audit sinks over a MongoDB collection: the default destination of the audit trail.

By default the collection is ``privata_audit`` in the database of the data; any collection of
any client may be given instead (``configure(audit_sink=CollectionAuditSink(other[...]))``),
for instance on a separate server the application's own credentials cannot write to except by
inserting. The first append creates the indexes auditors query by (subject, actor, time). A
record's ``_id`` is its chain position (``core.audit.record_id``), so two records can never
claim the same place, and the ``_id`` index orders a stream for verification: no unique index of
the records' own, which an embedded store would check by scanning the whole trail on every
insert (collections created before keep their unique ``privata_chain`` index; it still holds).

The trail's checkpoints and ledger (``core.audit.chain``) are kept in a sibling collection,
``<audit collection>.checkpoints``, so the audit collection holds records only and auditors'
queries see nothing else. The ledger's compare-and-swap is an insert of its next version
(``<id>@<version>``): a unique ``_id`` is the one atomic guarantee every backend keeps (a
conditional replace is not atomic on FerretDB 1.x, and lost a registration under four
concurrent processes). The versions before the one inserted are then deleted, so an earlier
ledger cannot be brought back by deleting the newest one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo.errors import DuplicateKeyError

__all__ = [
    "AUDIT_INDEXES",
    "CHECKPOINTS_SUFFIX",
    "AsyncCollectionAuditSink",
    "AsyncCollectionJournal",
    "CollectionAuditSink",
    "CollectionJournal",
    "checkpoints_of",
]


def _pending_filter(collection: str, before: Any) -> dict[str, Any]:
    return {"collection": collection, "at": {"$lte": before}}


CHECKPOINTS_SUFFIX = ".checkpoints"
"""The checkpoints and ledger of an audit collection ``c`` are in ``c.checkpoints``."""


def checkpoints_of(collection: Any) -> Any:
    """The collection holding the checkpoints and ledger of the audit ``collection``."""
    return collection.database.get_collection(collection.name + CHECKPOINTS_SUFFIX)


def _versions(id: str) -> dict[str, Any]:
    """Every stored version of the swapped document ``id`` (stored as ``id@version``)."""
    return {"_id": {"$regex": "^" + re.escape(id) + "@"}}


def _versioned(document: Mapping[str, Any]) -> dict[str, Any]:
    return {**document, "_id": f"{document['_id']}@{int(document['version'])}"}


def _named(document: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """A stored version as the trail knows it: under its own ``_id`` (MACs do not cover it)."""
    if document is None:
        return None
    return {**document, "_id": str(document["_id"]).rpartition("@")[0]}


AUDIT_INDEXES: tuple[tuple[tuple[tuple[str, int], ...], dict[str, Any]], ...] = (
    ((("subjects", 1), ("at", 1)), {"name": "privata_subject"}),
    ((("actor", 1), ("at", 1)), {"name": "privata_actor"}),
)


class CollectionAuditSink:
    """``AuditSink`` over a pymongo-shaped collection (pymongo, mongomock).

    Args:
        collection: the real collection records are inserted into.
        checkpoints: where its checkpoints and ledger go (``checkpoints_of(collection)``).
    """

    def __init__(self, collection: Any, checkpoints: Any = None) -> None:
        self._collection = collection
        self._checkpoints = checkpoints_of(collection) if checkpoints is None else checkpoints
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

    def get(self, id: str, /) -> Mapping[str, Any] | None:
        """The checkpoint ``id``, or the newest version of the swapped document ``id``."""
        found: Mapping[str, Any] | None = self._checkpoints.find_one({"_id": id})
        if found is not None:
            return found
        newest = list(self._checkpoints.find(_versions(id), sort=[("version", -1)], limit=1))
        return _named(newest[0] if newest else None)

    def put(self, document: Mapping[str, Any], /) -> None:
        """Replace the checkpoint ``document["_id"]``."""
        selector = {"_id": document["_id"]}
        try:
            self._checkpoints.replace_one(selector, dict(document), upsert=True)
        except DuplicateKeyError:  # a concurrent first upsert of the same checkpoint
            self._checkpoints.replace_one(selector, dict(document))

    def swap(self, previous: Mapping[str, Any] | None, document: Mapping[str, Any], /) -> bool:
        """Store the next version ``document`` unless another writer stored it first."""
        try:
            self._checkpoints.insert_one(_versioned(document))
        except DuplicateKeyError:
            return False
        older = {
            "$and": [_versions(str(document["_id"])), {"version": {"$lt": document["version"]}}]
        }
        self._checkpoints.delete_many(older)
        return True


class AsyncCollectionAuditSink:
    """``AsyncAuditSink`` over an async pymongo-shaped collection (AsyncMongoClient, Motor)."""

    def __init__(self, collection: Any, checkpoints: Any = None) -> None:
        self._collection = collection
        self._checkpoints = checkpoints_of(collection) if checkpoints is None else checkpoints
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

    async def get(self, id: str, /) -> Mapping[str, Any] | None:
        """The checkpoint ``id``, or the newest version of the swapped document ``id``."""
        found: Mapping[str, Any] | None = await self._checkpoints.find_one({"_id": id})
        if found is not None:
            return found
        cursor = self._checkpoints.find(_versions(id), sort=[("version", -1)], limit=1)
        newest = await cursor.to_list(1)
        return _named(newest[0] if newest else None)

    async def put(self, document: Mapping[str, Any], /) -> None:
        """Replace the checkpoint ``document["_id"]``."""
        selector = {"_id": document["_id"]}
        try:
            await self._checkpoints.replace_one(selector, dict(document), upsert=True)
        except DuplicateKeyError:  # a concurrent first upsert of the same checkpoint
            await self._checkpoints.replace_one(selector, dict(document))

    async def swap(
        self, previous: Mapping[str, Any] | None, document: Mapping[str, Any], /
    ) -> bool:
        """Store the next version ``document`` unless another writer stored it first."""
        try:
            await self._checkpoints.insert_one(_versioned(document))
        except DuplicateKeyError:
            return False
        older = {
            "$and": [_versions(str(document["_id"])), {"version": {"$lt": document["version"]}}]
        }
        await self._checkpoints.delete_many(older)
        return True


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
