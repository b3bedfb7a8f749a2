"""Internal. Which port serves each request: shared by the sync and the async driver.

A request is served by one call of one port — a side's store (``execute``), an open cursor
(``next_batch``), the key vault or shredder, the KMS transport or one of its connections, the
audit trail, the cache, the peer reader, the access context — and the two drivers differ only
in whether they await that call. Keeping the mapping here leaves each driver a thin loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from pymongo.errors import ConnectionFailure
from typing_extensions import assert_never

from privata_mongo.core.audit import AccessContext
from privata_mongo.core.crypto.holds import holding
from privata_mongo.core.ops import (
    Among,
    AnyOp,
    AppendAudit,
    CacheGet,
    CacheInvalidate,
    CachePut,
    CloseKms,
    ConnectKms,
    DiscardKeys,
    Emit,
    FindErased,
    Flow,
    Gather,
    InRegion,
    Intends,
    IntentKey,
    LoadKeys,
    Locate,
    Located,
    NextBatch,
    OpenIntent,
    Pause,
    PendingIntents,
    ReadPeer,
    ReceiveKms,
    ReplaceKeys,
    ResolveAccess,
    SendKms,
    SettleIntents,
    ShredKeys,
    StoreKeys,
    Unfinished,
)
from privata_mongo.core.residency import Residency, regional
from privata_mongo.core.schema import Side
from privata_mongo.errors import RegionUnavailable
from privata_mongo.ports.storage import CURSOR_OPS, STORE_OPS, StoreOp

__all__ = ["Binding", "PortCall", "call_of", "failure_of", "routed"]

S = TypeVar("S")
K = TypeVar("K")
A = TypeVar("A")
M = TypeVar("M")
C = TypeVar("C")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Binding(Generic[S, K, A, M, C]):
    """The ports one flow runs against.

    Attributes:
        clinical: the store of the clinical collection.
        identity: the store of the identity collection.
        peers: reads another logical collection of the same database, joined (for ``$lookup``
            into a split collection): ``(collection, filter) → documents``.
        keys: the key vault and shredder (``ports.keys``), ``None`` when rows are not sealed.
        audit: the audit trail ``AppendAudit`` goes to, and the journal of intents
            (``OpenIntent``, ``SettleIntents``, ``PendingIntents``, ``IntentKey``); ``None``
            when nothing is audited.
        access: the access context of an operation starting now (raises in strict mode).
        kms: the KMS transport (``ports.kms``) libmongocrypt's requests to a remote master key
            go through, ``None`` when rows are not sealed.
        pause: waits the seconds a ``Pause`` asks for (``time.sleep``, or ``asyncio.sleep``
            awaited); ``None`` does not wait.
        cache: the cache (``ports.cache``) of identity rows and wrapped keys; ``None``: a
            ``CacheGet`` finds nothing, and puts and invalidations have nothing to change.
        residency: the regions configured now (``core.residency``; they follow the
            settings): flows run through the residency router when it returns some, and
            ``InRegion`` requests are served by ``regions``; ``None`` never routes.
        regions: the ports (identity store, key vault) of a region, by name.
    """

    clinical: S | None
    identity: S | None
    access: Callable[[], AccessContext]
    peers: Callable[[str, Mapping[str, Any]], Any] | None = None
    keys: K | None = None
    audit: A | None = None
    kms: M | None = None
    pause: Callable[[float], Any] | None = None
    cache: C | None = None
    residency: Callable[[], Residency | None] | None = None
    regions: Callable[[str], Binding[S, K, A, M, C]] | None = None

    def region(self, name: str) -> Binding[S, K, A, M, C]:
        """The ports of region ``name``."""
        if self.regions is None:
            raise RuntimeError("this binding has no regions")
        return self.regions(name)

    def store(self, side: Side) -> S:
        """The store for ``side``."""
        store = self.identity if side is Side.IDENTITY else self.clinical
        if store is None:
            raise RuntimeError(f"this binding has no {side.value} store")
        return store


@dataclass(frozen=True, slots=True)
class PortCall:
    """One port call: the bound method and its arguments.

    ``awaited``: the async driver awaits the call (the access context is read synchronously on
    both sides). ``opens``: the result is a cursor (or a KMS connection) to close when the flow
    ends, however it ends.
    """

    function: Callable[..., Any]
    args: tuple[Any, ...]
    awaited: bool = True
    opens: bool = False


def routed(flow: Flow[T], binding: Binding[Any, Any, Any, Any, Any]) -> Flow[T]:
    """``flow`` as the drivers run it: through the residency router when regions are set.

    The flow holds the data keys it uses until it is done with them, so the key ring cannot
    evict them meanwhile (``core.crypto.holds``).
    """
    residency = None if binding.residency is None else binding.residency()
    if residency is None:
        return holding(flow)
    return holding(regional(flow, residency))


def failure_of(op: AnyOp, error: Exception) -> Exception:
    """The error handed back into a flow: an unreachable region is named, nothing else is."""
    if isinstance(op, InRegion) and isinstance(error, ConnectionFailure | OSError):
        unavailable = RegionUnavailable(op.region)
        unavailable.__cause__ = error
        return unavailable
    return error


def _nothing() -> None:
    return None


def _empty() -> list[Any]:
    return []


def _found_nothing() -> dict[str, bytes]:
    return {}


def call_of(op: AnyOp, binding: Binding[Any, Any, Any, Any, Any]) -> PortCall:
    """The port call that executes ``op``."""
    if isinstance(op, InRegion):
        return call_of(op.op, binding.region(op.region))
    if isinstance(op, STORE_OPS):
        store = binding.store(cast(StoreOp, op).side)
        return PortCall(store.execute, (op,), opens=isinstance(op, CURSOR_OPS))
    match op:
        case NextBatch(handle, size):
            return PortCall(handle.next_batch, (size,))  # type: ignore[attr-defined]
        case Pause(seconds):
            if binding.pause is None:
                return PortCall(_nothing, (), awaited=False)
            return PortCall(binding.pause, (seconds,))
        case ResolveAccess():
            return PortCall(binding.access, (), awaited=False)
        case AppendAudit(records):
            if binding.audit is None:
                return PortCall(_nothing, (), awaited=False)
            return PortCall(binding.audit.append, (records,))
        case OpenIntent(intent):
            if binding.audit is None:
                return PortCall(_nothing, (), awaited=False)
            return PortCall(binding.audit.open, (intent,))
        case SettleIntents(ids):
            if binding.audit is None:
                return PortCall(_nothing, (), awaited=False)
            return PortCall(binding.audit.settle, (ids,))
        case PendingIntents(collection, before, limit):
            if binding.audit is None:
                return PortCall(_empty, (), awaited=False)
            return PortCall(binding.audit.pending, (collection, before, limit))
        case IntentKey():
            if binding.audit is None:
                return PortCall(_nothing, (), awaited=False)
            return PortCall(binding.audit.intent_key, ())
        case Intends() | Unfinished():
            raise RuntimeError(f"{type(op).__name__} is consumed by the audit wrapper")
        case ReadPeer(collection, filter):
            if binding.peers is None:
                raise RuntimeError("this binding cannot read other collections")
            return PortCall(binding.peers, (collection, filter))
        case LoadKeys() | StoreKeys() | ReplaceKeys() | ShredKeys() | FindErased() | DiscardKeys():
            if binding.keys is None:
                raise RuntimeError("this binding has no key vault")
            return _key_call(op, binding.keys)
        case ConnectKms(provider, endpoint, delay):
            if binding.kms is None:
                raise RuntimeError("this binding has no KMS transport")
            return PortCall(binding.kms.connect, (provider, endpoint, delay), opens=True)
        case SendKms(connection, message):
            return PortCall(connection.send, (message,))  # type: ignore[attr-defined]
        case ReceiveKms(connection, size):
            return PortCall(connection.receive, (size,))  # type: ignore[attr-defined]
        case CloseKms(connection):
            return PortCall(connection.close, ())  # type: ignore[attr-defined]
        case CacheGet(keys):
            if binding.cache is None:
                return PortCall(_found_nothing, (), awaited=False)
            return PortCall(binding.cache.get, (keys,))
        case CachePut(entries):
            if binding.cache is None:
                return PortCall(_nothing, (), awaited=False)
            return PortCall(binding.cache.add, (dict(entries),))
        case CacheInvalidate(keys, hold):
            if binding.cache is None:
                return PortCall(_nothing, (), awaited=False)
            return PortCall(binding.cache.invalidate, (keys, hold))
        case Emit():
            raise RuntimeError("Emit is handled by the driver loop")
        case Located() | Locate() | Among():
            raise RuntimeError("Located, Locate and Among are served by the residency router")
        case Gather():
            raise RuntimeError("Gather is handled by the driver loop")
        case _:
            raise TypeError(f"no port serves {type(op).__name__}")


def _key_call(
    op: LoadKeys | StoreKeys | ReplaceKeys | ShredKeys | FindErased | DiscardKeys, keys: Any
) -> PortCall:
    match op:
        case LoadKeys(names):
            return PortCall(keys.find, (names,))
        case StoreKeys(documents):
            return PortCall(keys.insert, (documents,))
        case ReplaceKeys(documents):
            return PortCall(keys.replace, (documents,))
        case ShredKeys(names):
            return PortCall(keys.shred, (names,))
        case FindErased(names):
            return PortCall(keys.erased, (names,))
        case DiscardKeys(names):
            return PortCall(keys.discard, (names,))
        case _:
            assert_never(op)
