"""What a flow needs besides its arguments: the schema, and the impure values it may not draw.

Randomness (pseudonyms, revision tokens, object ids) and time come in as callables so that the
core stays deterministic under test and identical under sync and async drivers.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from privata_mongo.core.crypto.ring import KeyRing
from privata_mongo.core.failures import NativeFailure
from privata_mongo.core.limits import ServerSizes
from privata_mongo.core.residency import Residency
from privata_mongo.core.rights.restriction import Visibility
from privata_mongo.core.schema import ModelSchema

__all__ = ["Context"]


def _middle() -> float:
    return 0.5


def _reported(error: BaseException) -> bool:
    return isinstance(error, NativeFailure)


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a flow may consult.

    Attributes:
        schema: the compiled schema of the logical collection.
        new_pseudonym: a fresh pseudonym for a new data subject.
        new_revision: a fresh compare-and-swap token for an identity write.
        new_object_id: a fresh ``_id`` for documents the server would have created (upserts).
        now: the clock, for ``$currentDate``.
        batch_size: clinical documents joined per identity read.
        max_in: most pseudonyms a single ``$in`` may carry (far below the 16 MB limit).
        crypto: the key ring that seals identity rows of a ``sealed`` schema (``None``: rows
            are stored as plaintext, for unit tests of the storage layout).
        audit: the operation is audited. Flows then state what they reach (``Touched``) and
            read the subjects of a server-side update they could not name otherwise; set only
            by ``core.audit.wrapper.audited``, which consumes those statements, so a flow run
            without the wrapper never issues them and never pays for that read.
        jitter: a uniform draw from [0, 1), spreading the back-off of writers that wait for
            the same document.
        write_lease: seconds a writer holds a document's lease; a writer that crashed
            releases it by expiry.
        write_wait: seconds a writer waits for a document another writer holds before the
            update fails (longer than ``write_lease``, so a crashed holder never fails it).
        database: the name of the database the collections are in; blind index terms are
            bound to it, so tenants' databases sharing a key vault cannot be linked by them.
        legacy_terms: lookups also match blind index terms of the first format (bound to the
            collection only), written before terms named their database and not re-indexed
            since (``Settings.legacy_blind_terms``).
        server_sizes: whether the server measures documents, shared by the operations of one
            connection; ``None`` for a store that enforces no size limit (the embedded one),
            whose updates of clinical fields are then not measured (``flows.size_gate``).
        time_limit_ms: the client-side timeout left when the operation started
            (``pymongo.timeout()``), which bounds in-process work as ``maxTimeMS`` does.
        refused: whether an error a write raised proves that it was not applied (the server
            or the driver refused it: a bad document, a duplicate key). Any other error, a
            network error above all, leaves the write's fate unknown: it may have been
            applied, or may still be. The core cannot tell pymongo's types apart; the runtime
            that knows them says (the default knows only the core's own failures).
        restriction: the clauses restriction and objection add to every clinical selection
            of the operation (``core.rights.restriction``); ``None`` for operator flows
            (recovery, the rights themselves), which must reach every subject.
        cache: identity rows and wrapped data keys are cached (``core.cache``); off, the
            flows yield no cache request at all.
        key_recheck: with ``cache``, seconds a data key held in memory is used before it is
            checked again against the shared cache (the bound on how long another process's
            erasure stays unseen here); without it, the ring's TTL decides.
        residency: the configured regions (``core.residency``); ``None`` (the default) when
            the deployment has one region, whose flows write no region and yield no
            ``Located``.
        placement: the region of each subject the flow has just placed (an insert), so
            their new data keys are wrapped by their region's master key.
    """

    schema: ModelSchema
    new_pseudonym: Callable[[], str]
    new_revision: Callable[[], str]
    new_object_id: Callable[[], Any]
    now: Callable[[], datetime.datetime]
    batch_size: int = 1000
    max_in: int = 100_000
    crypto: KeyRing | None = None
    audit: bool = False
    jitter: Callable[[], float] = _middle
    write_lease: float = 15.0
    write_wait: float = 30.0
    database: str = ""
    legacy_terms: bool = False
    server_sizes: ServerSizes | None = None
    time_limit_ms: float | None = None
    refused: Callable[[BaseException], bool] = _reported
    restriction: Visibility | None = None
    cache: bool = False
    key_recheck: float = 1.0
    residency: Residency | None = None
    placement: Mapping[str, str] = field(default_factory=dict)
