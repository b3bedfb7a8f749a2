"""Where a connection's audit records go: one trail per database and destination.

A collection's binding holds an *audit point* rather than a trail: the settings in force when
records are appended decide the destination (``configure(audit_sink=...)`` or the database's
``audit_collection``), so reconfiguring takes effect for collections already handed out.
Trails are kept by the connection's runtime per database and destination, so all the
collections of a database share one stream and its sequence numbers.

Every trail MACs its records with the audit chain key (``core.crypto.chain_key``), and the
journal's intents with it too: it reads it from the connection's key vault at its first intent
or append (creating it the first time any trail of that vault needs it), through the same
drivers as every key flow, and keeps it. A stored chain key the master key cannot unwrap fails
as a write with the wrong master key does (``ConfigurationError`` naming the remedy).
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from pymongo.errors import ConnectionFailure

from privata_mongo.adapters.audit_collection import (
    CHECKPOINTS_SUFFIX,
    AsyncCollectionAuditSink,
    AsyncCollectionJournal,
    CollectionAuditSink,
    CollectionJournal,
)
from privata_mongo.config import Settings
from privata_mongo.core.audit import LEDGER_ID, AccessContext, AuditRecord
from privata_mongo.core.audit.intents import JOURNAL_SUFFIX, Intent, seal_intent
from privata_mongo.core.crypto.chain_key import chain_key
from privata_mongo.core.crypto.check import refuse_other_master_key
from privata_mongo.drivers import aio, sync
from privata_mongo.drivers._audit import AsyncAuditTrail, AuditTrail
from privata_mongo.drivers._dispatch import Binding
from privata_mongo.errors import AuditUnavailable, ConfigurationError, KeyUnavailable
from privata_mongo.ports.audit import CheckpointStore
from privata_mongo.runtime.keys import KeyRings

__all__ = [
    "AsyncAuditPoint",
    "AuditPoint",
    "Trails",
    "destination_of",
    "read_chain_key",
    "read_chain_key_async",
]


def _no_access() -> AccessContext:
    return AccessContext()


def _key_binding(keys: KeyRings, settings: Settings) -> Binding[Any, Any, Any, Any, Any]:
    return Binding(
        clinical=None,
        identity=None,
        access=_no_access,
        keys=keys.vault(settings),
        kms=keys.transport(settings),
    )


def read_chain_key(
    keys: KeyRings, settings: Settings, *, create: bool, destination: str | None = None
) -> bytes | None:
    """The chain key of ``destination`` in ``keys``' key vault (``None``: absent).

    With ``create``, an absent key is made first.
    """
    flow = chain_key(keys.ring(settings), create=create, destination=destination)
    return sync.run(flow, _key_binding(keys, settings))


async def read_chain_key_async(
    keys: KeyRings, settings: Settings, *, create: bool, destination: str | None = None
) -> bytes | None:
    """``read_chain_key`` for an async connection."""
    flow = chain_key(keys.ring(settings), create=create, destination=destination)
    return await aio.run(flow, _key_binding(keys, settings))


def destination_of(sink: Any) -> str | None:
    """The chain key's destination of ``sink``: its collection's ``db.name``, if it has one."""
    full_name = getattr(getattr(sink, "collection", None), "full_name", None)
    return full_name if isinstance(full_name, str) else None


def _made(key: bytes | None) -> bytes:
    if key is None:  # ``create`` always returns a key: a vault that lost it mid-way
        raise KeyUnavailable("the audit chain key could not be read back from the key vault")
    return key


def _lost() -> KeyUnavailable:
    return KeyUnavailable(
        "the key vault holds no audit chain key while the audit trail has a ledger: the key "
        "vault was dropped or is being restored; restore it from its backup (a new chain key "
        "would leave every earlier record unverifiable)"
    )


def _has_ledger(sink: Any) -> bool:
    return isinstance(sink, CheckpointStore) and sink.get(LEDGER_ID) is not None


async def _has_ledger_async(sink: Any) -> bool:
    if not all(hasattr(sink, name) for name in ("get", "put", "swap")):
        return False
    found = sink.get(LEDGER_ID)
    if inspect.isawaitable(found):
        found = await found
    return found is not None


logger = logging.getLogger(__name__)


class Trails:
    """The audit trails of one connection.

    Args:
        asynchronous: whether records are appended awaited.
        new_stream: a fresh random stream id (a trail restarts its chain after a failure).
        keys: the connection's key rings and key vault (where the chain key is).
    """

    def __init__(
        self, *, asynchronous: bool, new_stream: Callable[[], str], keys: KeyRings
    ) -> None:
        self.asynchronous = asynchronous
        self._new_stream = new_stream
        self._keys = keys
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
                    name = settings.audit_collection
                    collection = database.get_collection(name)
                    checkpoints = database.get_collection(name + CHECKPOINTS_SUFFIX)
                    sink = (
                        AsyncCollectionAuditSink(collection, checkpoints)
                        if self.asynchronous
                        else CollectionAuditSink(collection, checkpoints)
                    )
                trail = self._trail(sink, settings)
                # The sink is kept alive with the trail, so its id is not reused while cached.
                self._trails[key] = trail
        return trail

    def _trail(self, sink: Any, settings: Settings) -> AuditTrail | AsyncAuditTrail:
        keys = self._keys
        where = destination_of(sink)
        if self.asynchronous:

            async def awaited() -> bytes:
                try:
                    key = await read_chain_key_async(
                        keys, settings, create=False, destination=where
                    )
                except KeyUnavailable:
                    refuse = refuse_other_master_key(keys.ring(settings))
                    await aio.run(refuse, _key_binding(keys, settings))
                    raise
                if key is not None:
                    return key
                if await _has_ledger_async(sink):
                    raise _lost()
                made = await read_chain_key_async(keys, settings, create=True, destination=where)
                return _made(made)

            return AsyncAuditTrail(
                sink, settings.audit_buffer, new_stream=self._new_stream, key=awaited
            )

        def blocking() -> bytes:
            try:
                key = read_chain_key(keys, settings, create=False, destination=where)
            except KeyUnavailable:
                # the write would have said why: the master key is not the vault's
                sync.run(refuse_other_master_key(keys.ring(settings)), _key_binding(keys, settings))
                raise
            if key is not None:
                return key
            if _has_ledger(sink):
                raise _lost()
            return _made(read_chain_key(keys, settings, create=True, destination=where))

        return AuditTrail(sink, settings.audit_buffer, new_stream=self._new_stream, key=blocking)


def _journal_name(settings: Settings) -> str:
    return settings.audit_collection + JOURNAL_SUFFIX


def _unstored(intent: Intent, exc: BaseException) -> BaseException:
    """The error of an intent that could not be stored.

    An unreachable database raises its own error, as the write would have natively, and so does
    a chain key that could not be read or made to seal the intent with (``KeyUnavailable``,
    ``ConfigurationError``: the key vault or master key the write's own data keys need too); any
    other failure of the journal is ``AuditUnavailable``. Nothing was written in any case.
    """
    logger.error("intent of a %s could not be stored (%s)", intent.operation, type(exc).__name__)
    if isinstance(exc, (ConnectionFailure, KeyUnavailable, ConfigurationError)):
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

    def intent_key(self) -> bytes | None:
        """The key intents are sealed with: the trail's chain key (``None``: auditing is off)."""
        trail = self._trails.of(self._database, self._settings())
        return trail.key() if isinstance(trail, AuditTrail) else None

    def open(self, intent: Intent) -> None:
        """Store ``intent``, sealed; raises ``AuditUnavailable`` if it may not be stored."""
        try:
            key = self.intent_key()
            if key is not None:
                self._journal().insert(seal_intent(intent.document(), key))
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

    async def intent_key(self) -> bytes | None:
        """The key intents are sealed with: the trail's chain key (``None``: auditing is off)."""
        trail = self._trails.of(self._database, self._settings())
        return await trail.key() if isinstance(trail, AsyncAuditTrail) else None

    async def open(self, intent: Intent) -> None:
        """Store ``intent``, sealed; raises ``AuditUnavailable`` if it may not be stored."""
        try:
            key = await self.intent_key()
            if key is not None:
                await self._journal().insert(seal_intent(intent.document(), key))
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
