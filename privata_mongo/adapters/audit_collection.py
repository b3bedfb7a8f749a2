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

__all__ = ["AUDIT_INDEXES", "AsyncCollectionAuditSink", "CollectionAuditSink"]

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
