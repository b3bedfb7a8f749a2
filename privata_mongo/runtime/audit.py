"""Where a connection's audit records go: one trail per database and destination.

A collection's binding holds an *audit point* rather than a trail: the settings in force when
records are appended decide the destination (``configure(audit_sink=...)`` or the database's
``audit_collection``), so reconfiguring takes effect for collections already handed out.
Trails are kept by the connection's runtime per database and destination, so all the
collections of a database share one stream and its sequence numbers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from pymongo.errors import ConnectionFailure

from privata_mongo.adapters.audit_collection import (
    AsyncCollectionAuditSink,
    AsyncCollectionJournal,
    CollectionAuditSink,
    CollectionJournal,
)
from privata_mongo.config import Settings
from privata_mongo.core.audit import AuditRecord
from privata_mongo.core.audit.intents import JOURNAL_SUFFIX, Intent
from privata_mongo.drivers._audit import AsyncAuditTrail, AuditTrail
from privata_mongo.errors import AuditUnavailable

__all__ = ["AsyncAuditPoint", "AuditPoint", "Trails"]

logger = logging.getLogger(__name__)


class Trails:
    """The audit trails of one connection.

    Args:
        asynchronous: whether records are appended awaited.
        new_stream: a fresh random stream id (a trail restarts its chain after a failure).
    """

    def __init__(self, *, asynchronous: bool, new_stream: Callable[[], str]) -> None:
        self.asynchronous = asynchronous
        self._new_stream = new_stream
        self._lock = threading.Lock()
        self._trails: dict[tuple[Any, ...], AuditTrail | AsyncAuditTrail] = {}

    def of(self, database: Any, settings: Settings) -> AuditTrail | AsyncAuditTrail | None:
        """The trail of the real ``database`` under ``settings`` (``None``: auditing is off)."""
        if not settings.audit:
            return None
        sink = settings.audit_sink
        key = (database.name, id(sink), settings.audit_collection, settings.audit_buffer)
        trail = self._trails.get(key)
        if trail is not None:
            return trail
        with self._lock:
            trail = self._trails.get(key)
            if trail is None:
                if sink is None:
                    collection = database.get_collection(settings.audit_collection)
                    sink = (
                        AsyncCollectionAuditSink(collection)
                        if self.asynchronous
                        else CollectionAuditSink(collection)
                    )
                trail_class = AsyncAuditTrail if self.asynchronous else AuditTrail
                trail = trail_class(sink, settings.audit_buffer, new_stream=self._new_stream)
                # The sink is kept alive with the trail, so its id is not reused while cached.
                self._trails[key] = trail
        return trail


def _journal_name(settings: Settings) -> str:
    return settings.audit_collection + JOURNAL_SUFFIX


def _unstored(intent: Intent, exc: BaseException) -> BaseException:
    """The error of an intent that could not be stored.

    An unreachable database raises its own error, as the write would have natively; any other
    failure of the journal is ``AuditUnavailable``. Nothing was written in either case.
    """
    logger.error("intent of a %s could not be stored (%s)", intent.operation, type(exc).__name__)
    if isinstance(exc, ConnectionFailure):
        return exc
    return AuditUnavailable(
        f"{intent.model}: the intent of a {intent.operation} could not be stored "
        f"({type(exc).__name__}); nothing was written. Check the database and retry"
    )


class AuditPoint:
    """The audit of a sync split collection's database, resolved when records are appended.

    It also holds the database's journal of intents (``core.audit.intents``), a collection
    beside the data named after the audit collection (``<audit_collection>.pending``).
    """

    def __init__(self, trails: Trails, database: Any, settings: Callable[[], Settings]) -> None:
        self._trails = trails
        self._database = database
        self._settings = settings

    def append(self, records: Sequence[AuditRecord]) -> None:
        """Chain and store ``records`` (nothing when auditing is off)."""
        trail = self._trails.of(self._database, self._settings())
        if isinstance(trail, AuditTrail):
            trail.append(records)

    def _journal(self) -> CollectionJournal:
        return CollectionJournal(self._database.get_collection(_journal_name(self._settings())))

    def open(self, intent: Intent) -> None:
        """Store ``intent``; raises ``AuditUnavailable`` if it may not be stored."""
        try:
            self._journal().insert(intent.document())
        except Exception as exc:
            error = _unstored(intent, exc)
            if error is exc:
                raise
            raise error from exc

    def settle(self, ids: Sequence[str]) -> None:
        """Remove the intents ``ids`` (their records are stored)."""
        self._journal().settle(ids)

    def pending(self, collection: str, before: Any, limit: int = 0) -> list[dict[str, Any]]:
        """The intents of ``collection`` stored before ``before``."""
        return self._journal().pending(collection, before, limit)


class AsyncAuditPoint:
    """The audit of an async split collection's database, resolved when records are appended."""

    def __init__(self, trails: Trails, database: Any, settings: Callable[[], Settings]) -> None:
        self._trails = trails
        self._database = database
        self._settings = settings

    async def append(self, records: Sequence[AuditRecord]) -> None:
        """Chain and store ``records`` (nothing when auditing is off)."""
        trail = self._trails.of(self._database, self._settings())
        if isinstance(trail, AsyncAuditTrail):
            await trail.append(records)

    def _journal(self) -> AsyncCollectionJournal:
        name = _journal_name(self._settings())
        return AsyncCollectionJournal(self._database.get_collection(name))

    async def open(self, intent: Intent) -> None:
        """Store ``intent``; raises ``AuditUnavailable`` if it may not be stored."""
        try:
            await self._journal().insert(intent.document())
        except Exception as exc:
            error = _unstored(intent, exc)
            if error is exc:
                raise
            raise error from exc

    async def settle(self, ids: Sequence[str]) -> None:
        """Remove the intents ``ids`` (their records are stored)."""
        await self._journal().settle(ids)

    async def pending(self, collection: str, before: Any, limit: int = 0) -> list[dict[str, Any]]:
        """The intents of ``collection`` stored before ``before``."""
        return await self._journal().pending(collection, before, limit)
