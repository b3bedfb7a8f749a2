"""Internal. Where a split collection's audit records go, resolved when they are appended.

A collection's driver binding holds an *audit point* rather than a trail: the settings in
force when records are appended decide the destination (``configure(audit_sink=...)`` or the
database's ``audit_collection``), so reconfiguring takes effect for collections already handed
out. Trails are cached per client, database and destination, so all the collections of a
database share one stream and its sequence numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from privata_mongo.adapters.audit_collection import AsyncCollectionAuditSink, CollectionAuditSink
from privata_mongo.config import Settings, current
from privata_mongo.core.audit import AuditRecord
from privata_mongo.drivers._audit import AsyncAuditTrail, AuditTrail

__all__ = ["AsyncAuditPoint", "AuditPoint", "trail_of"]


def trail_of(database: Any, asynchronous: bool, settings: Settings | None = None) -> Any:
    """The trail of ``database`` under ``settings`` (``None`` when auditing is off)."""
    settings = settings or current()
    if not settings.audit:
        return None
    client = database.client
    trails: dict[tuple[Any, ...], Any] = client.__dict__.setdefault("_privata_audit_trails", {})
    sink = settings.audit_sink
    key = (database.name, id(sink), settings.audit_collection, settings.audit_buffer)
    trail = trails.get(key)
    if trail is None:
        if sink is None:
            collection = database.inner.get_collection(settings.audit_collection)
            sink = (
                AsyncCollectionAuditSink(collection)
                if asynchronous
                else CollectionAuditSink(collection)
            )
        trail_class = AsyncAuditTrail if asynchronous else AuditTrail
        trail = trails.setdefault(key, trail_class(sink, settings.audit_buffer))
    return trail


class AuditPoint:
    """The audit of a sync split collection's database."""

    def __init__(self, database: Any) -> None:
        self._database = database

    def append(self, records: Sequence[AuditRecord]) -> None:
        """Chain and store ``records`` (nothing when auditing is off)."""
        trail = trail_of(self._database, asynchronous=False)
        if trail is not None:
            trail.append(records)


class AsyncAuditPoint:
    """The audit of an async split collection's database."""

    def __init__(self, database: Any) -> None:
        self._database = database

    async def append(self, records: Sequence[AuditRecord]) -> None:
        """Chain and store ``records`` (nothing when auditing is off)."""
        trail = trail_of(self._database, asynchronous=True)
        if trail is not None:
            await trail.append(records)
