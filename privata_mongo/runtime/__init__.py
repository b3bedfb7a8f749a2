"""Internal. The composition root: one immutable runtime per connection.

``connect``/``register_connection`` (through the client class they hand mongoengine) and
``init_beanie`` build a ``Runtime`` for the real client and give it to the proxy. It holds
everything an operation runs with that is not the operation's own data: where settings come
from (``configure`` takes effect for every later operation), the access context, the clock,
the sources of randomness (pseudonyms, revision tokens, object ids, audit stream ids), the key
rings and key vault, the audit trails, and the stores of each physical collection. The proxy and
the core read nothing global and keep no state on the application's client; they ask the
runtime. Tests and other compositions build their own (``build_runtime``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId
from pymongo import _csot

from privata_mongo.adapters.clock import SystemClock
from privata_mongo.adapters.pymongo_async_store import AsyncPymongoStore
from privata_mongo.adapters.pymongo_calls import IdentityRedaction, refused
from privata_mongo.adapters.pymongo_store import PymongoStore
from privata_mongo.config import Settings, cached, current
from privata_mongo.context import resolve_access
from privata_mongo.core.audit import AccessContext
from privata_mongo.core.flows.context import Context
from privata_mongo.core.limits import ServerSizes
from privata_mongo.core.pseudonym import format_pseudonym
from privata_mongo.core.rights.consent import consent_based
from privata_mongo.core.rights.restriction import Visibility, visibility
from privata_mongo.core.schema import ModelSchema
from privata_mongo.drivers._dispatch import Binding
from privata_mongo.drivers.aio import AsyncBinding
from privata_mongo.drivers.sync import SyncBinding
from privata_mongo.errors import MissingAccessContext
from privata_mongo.ports.clock import Clock
from privata_mongo.runtime.audit import AsyncAuditPoint, AuditPoint, Trails
from privata_mongo.runtime.cache import AsyncCurrentCache, CurrentCache
from privata_mongo.runtime.indexes import EnsuredIndexes
from privata_mongo.runtime.keys import KeyRings, check_master_key
from privata_mongo.runtime.regions import RegionPorts, residency_of
from privata_mongo.runtime.transactions import Transactions

__all__ = ["Ids", "Runtime", "build_runtime", "system_ids"]


@dataclass(frozen=True, slots=True)
class Ids:
    """The sources of randomness operations draw from."""

    pseudonym: Callable[[], str]
    revision: Callable[[], str]
    object_id: Callable[[], Any]
    stream: Callable[[], str]
    jitter: Callable[[], float] = secrets.SystemRandom().random


def _pseudonym() -> str:
    return format_pseudonym(secrets.token_bytes(16))


def _token() -> str:
    return secrets.token_hex(8)


def _client_timeout_ms() -> float | None:
    """What is left of a ``pymongo.timeout()`` block around the operation, in milliseconds.

    pymongo keeps the block's deadline in a context variable of its own; the in-process part
    of an operation honours it as the server honours ``maxTimeMS``.
    """
    left = _csot.remaining()
    if left is None:
        return None
    return max(left * 1000, 0.001)


def system_ids() -> Ids:
    """Pseudonyms and tokens from the OS's CSPRNG, object ids as pymongo makes them."""
    return Ids(pseudonym=_pseudonym, revision=_token, object_id=ObjectId, stream=_token)


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything an operation of one connection runs with, wired once.

    Attributes:
        asynchronous: the connection is awaited (Beanie); stores, vault and trails are the
            async twins.
        settings: the settings in force (``privata_mongo.config.current``).
        access: the access context of an operation starting now.
        clock: the time of audit records and ``$currentDate``.
        ids: the sources of randomness.
        keys: the key rings and key vault.
        trails: the audit trails.
        indexes: the internal indexes already ensured (created once per collection).
        sizes: whether the server measures documents (``core.flows.size_gate``), learned by
            the first update that asks.
        transactions: whether the server really runs transactions, probed once
            (``runtime.transactions``).
    """

    asynchronous: bool
    settings: Callable[[], Settings]
    access: Callable[[], AccessContext]
    clock: Clock
    ids: Ids
    keys: KeyRings
    trails: Trails = field(compare=False)
    indexes: EnsuredIndexes = field(default_factory=EnsuredIndexes, compare=False)
    sizes: ServerSizes = field(default_factory=ServerSizes, compare=False)
    transactions: Transactions = field(default_factory=Transactions, compare=False)

    def context(self, schema: ModelSchema, database: str = "") -> Context:
        """The flow context of one operation on ``schema``, under the settings in force now.

        ``database`` is the name of the collection's database (blind index terms name it).
        """
        settings = self.settings()
        return Context(
            schema=schema,
            new_pseudonym=self.ids.pseudonym,
            new_revision=self.ids.revision,
            new_object_id=self.ids.object_id,
            now=self.clock.now,
            batch_size=settings.batch_size,
            crypto=self.keys.ring(settings) if schema.sealed else None,
            jitter=self.ids.jitter,
            write_lease=settings.write_lease_ms / 1000,
            write_wait=settings.write_wait_ms / 1000,
            database=database,
            legacy_terms=settings.legacy_blind_terms,
            server_sizes=self.sizes,
            time_limit_ms=_client_timeout_ms(),
            refused=refused,
            cache=cached(settings),
            key_recheck=settings.key_recheck_ms / 1000,
            residency=residency_of(settings),
        )

    def restriction(self, *, write: bool, consent: bool = True) -> Visibility:
        """The restriction clauses of an operation starting now, under its access context.

        In strict mode a missing context is reported by the audit when the operation starts
        (``MissingAccessContext``); here it only means that no purpose applies.

        ``consent=False`` leaves consent out (an operation that must see every subject's rows
        whatever their consents); native documents carry their subjects' consents along the
        data map (``core.rights.spread``) and are filtered like split rows.

        Raises:
            MissingPurpose: the context declares a consent-based legal basis but no purpose.
        """
        try:
            access = self.access()
        except MissingAccessContext:
            access = AccessContext()
        return visibility(
            access.purpose,
            break_glass=access.emergency is not None,
            write=write,
            subject_request=access.subject_request is not None,
            consent=consent
            and consent_based(access.legal_basis, self.settings().consent_legal_bases),
        )

    def binding(
        self,
        database: Any,
        clinical: Any,
        identity: Any,
        schema: ModelSchema,
        peers: Callable[[str, Mapping[str, Any]], Any],
    ) -> Binding[Any, Any, Any, Any, Any]:
        """The ports the flows of one split collection run against.

        Args:
            database: the real database (its audit collection is the default destination).
            clinical: the real clinical collection.
            identity: the real identity collection.
            schema: the collection's schema.
            peers: reads another logical collection of the database, joined.
        """
        redaction = IdentityRedaction(schema.model, f"{clinical.database.name}.{clinical.name}")
        kms = _Current(self, "transport") if schema.sealed else None
        regions = RegionPorts(
            self.settings,
            self.keys,
            identity,
            clinical,
            redaction,
            self.access,
            asynchronous=self.asynchronous,
            kms=kms,
        )
        shared: dict[str, Any] = {
            "access": self.access,
            "peers": peers,
            "keys": _Current(self, "vault") if schema.sealed else None,
            "kms": kms,
            "residency": regions.residency,
            "regions": regions.binding,
        }
        if self.asynchronous:
            stores = (AsyncPymongoStore(clinical), AsyncPymongoStore(identity, redaction))
            awaited: AsyncBinding = Binding(
                *stores,
                audit=AsyncAuditPoint(self.trails, database, self.settings),
                pause=asyncio.sleep,
                cache=AsyncCurrentCache(self.settings),
                **shared,
            )
            return awaited
        blocking: SyncBinding = Binding(
            PymongoStore(clinical),
            PymongoStore(identity, redaction),
            audit=AuditPoint(self.trails, database, self.settings),
            pause=time.sleep,
            cache=CurrentCache(self.settings),
            **shared,
        )
        return blocking

    def cache(self, region: str | None = None) -> Any:
        """The cache port the settings name when a request runs (sync, or awaited).

        With ``region``, the cache of that region's entries (``config.region_cache``).
        """
        if self.asynchronous:
            return AsyncCurrentCache(self.settings, region)
        return CurrentCache(self.settings, region)

    def trail(self, database: Any) -> Any:
        """The audit trail of the real ``database`` now (``None`` when auditing is off)."""
        return self.trails.of(database, self.settings())


class _Current:
    """The key vault (or KMS transport) the settings name when a request runs: they may change."""

    def __init__(self, runtime: Runtime, port: str) -> None:
        self._runtime = runtime
        self._port = port

    def __getattr__(self, name: str) -> Any:
        port = getattr(self._runtime.keys, self._port)(self._runtime.settings())
        return getattr(port, name)


def build_runtime(
    client: Any,
    *,
    asynchronous: bool,
    settings: Callable[[], Settings] = current,
    access: Callable[[], AccessContext] = resolve_access,
    clock: Clock | None = None,
    ids: Ids | None = None,
    check: bool = False,
) -> Runtime:
    """The runtime of a connection to the real ``client``.

    Args:
        client: the real client (pymongo, Motor through its adapter, mongomock, embedded).
        asynchronous: whether the connection is awaited.
        settings: where settings come from.
        access: the access context source.
        clock: the clock (the system clock by default).
        ids: the sources of randomness (the system's by default).
        check: fail now, not on the first write, when no master key can be found.

    Raises:
        ConfigurationError: with ``check``, encryption is on and no master key is configured.
    """
    keys = KeyRings(client, asynchronous=asynchronous)
    if check:
        check_master_key(settings(), embedded=keys.embedded)
    made_ids = ids or system_ids()
    return Runtime(
        asynchronous=asynchronous,
        settings=settings,
        access=access,
        clock=clock or SystemClock(),
        ids=made_ids,
        keys=keys,
        trails=Trails(asynchronous=asynchronous, new_stream=made_ids.stream, keys=keys),
    )
