"""Recovery after crashes and lost replies: ``sweep`` resolves the intents nobody settled.

Every audited write stores an intent before it writes and removes it once its audit record is
stored (``docs/reliability.md``). An intent still in the journal long after its operation began
belongs to a process that died mid-write, a connection that failed before the reply came, or an
outcome record that could not be stored. ``sweep`` finds those intents, reads the stored rows of
the subjects they name and resolves each: an interrupted create's orphan identity row (and the
data key made for it) is removed, an interrupted delete is completed, and every subject a
change may have reached gets the audit record its operation could not append. Run it
periodically (a cron job, a worker's start) or after an incident; running it twice, or beside
live writers, is safe: intents younger than ``older_than`` and rows under a live write lease are
left alone.

It takes the database as the application holds it (``privata_mongo.mongoengine.get_db()``, a
Beanie model's ``get_pymongo_collection().database``): its connection's runtime supplies the
keys, clock and audit trail, as for any operation.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from privata_mongo.adapters.motor import adapt_motor_database, is_motor_database
from privata_mongo.core.audit.intents import JOURNAL_SUFFIX
from privata_mongo.core.flows import recovery
from privata_mongo.drivers import aio, sync
from privata_mongo.proxy._collection_base import split_collection
from privata_mongo.proxy.aio_database import AsyncProxyClient
from privata_mongo.proxy.client import ProxyClient
from privata_mongo.proxy.database import DatabaseBase
from privata_mongo.runtime import build_runtime

__all__ = ["SweepReport", "sweep", "sweep_async"]


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one sweep did (counts only, never a value).

    Attributes:
        intents_resolved: intents resolved and removed from the journal.
        orphans_removed: identity rows of interrupted creates deleted (keys included).
        rows_completed: documents whose interrupted write was completed or confirmed whole.
        intents_left: intents left for a later sweep (their rows are under a live lease).
        collections: the collections that had pending intents.
        intents_forged: intents refused and left in the journal, because their MAC is missing
            or does not hold: someone wrote or changed them without the chain key (see
            ``docs/security.md``). The sweep also appends a record saying so.
    """

    intents_resolved: int = 0
    orphans_removed: int = 0
    rows_completed: int = 0
    intents_left: int = 0
    collections: tuple[str, ...] = ()
    intents_forged: int = 0


def _no_model(database: str, collection: str) -> None:
    """No model is known to a sweep's own proxy: ``split_collection`` rebuilds what it needs."""


def _privata(database: Any, *, asynchronous: bool) -> Any:
    """The privata database of ``database``: as given, or a proxy around a real one.

    An application on Beanie holds the real database it gave ``init_beanie``, and an
    operator's job may hold a plain pymongo one; either is wrapped with no model known, since
    the sweep needs none (``split_collection``).
    """
    if isinstance(database, DatabaseBase):
        return database
    if asynchronous and is_motor_database(database):
        database = adapt_motor_database(database)
    runtime = build_runtime(database.client, asynchronous=asynchronous)
    client = (AsyncProxyClient if asynchronous else ProxyClient)(
        database.client, _no_model, runtime
    )
    return client[database.name]


def _parts(database: Any, older_than: float | None) -> tuple[Any, Any, datetime.datetime]:
    """The privata database, the journal collection and the cut-off time of a sweep."""
    runtime = database.client.runtime
    settings = runtime.settings()
    age = older_than if older_than is not None else max(60.0, 2 * settings.write_lease_ms / 1000)
    before = runtime.clock.now() - datetime.timedelta(seconds=age)
    journal = database.inner.get_collection(settings.audit_collection + JOURNAL_SUFFIX)
    return database, journal, before


def _report(names: list[str], parts: list[recovery.Resolved]) -> SweepReport:
    total = sum(parts, recovery.Resolved())
    return SweepReport(
        total.intents, total.orphans, total.completed, total.left, tuple(names), total.forged
    )


def sweep(database: Any, *, older_than: float | None = None, limit: int = 0) -> SweepReport:
    """Resolve the pending intents of every split collection of ``database``.

    Args:
        database: the database, as the application holds it: the privata one
            (``mongoengine.get_db()``) or the real one (a plain pymongo database).
        older_than: seconds an intent must have waited (default: 60, or twice
            ``write_lease_ms`` if longer), so no live operation's intent is touched.
        limit: most intents per collection in this sweep (0: all).

    Raises:
        AuditUnavailable: a record could not be stored; the intents not yet resolved stay.
    """
    database, journal, before = _parts(_privata(database, asynchronous=False), older_than)
    names = sorted(str(n) for n in journal.distinct("collection", {"at": {"$lte": before}}))
    done: list[recovery.Resolved] = []
    for name in names:
        ctx, binding = split_collection(database, name).flow_parts()
        done.append(sync.run(recovery.sweep(ctx, before, limit), binding))
    return _report(names, done)


async def sweep_async(
    database: Any, *, older_than: float | None = None, limit: int = 0
) -> SweepReport:
    """``sweep`` for an async database (Beanie's, the privata or the real one); same report."""
    database, journal, before = _parts(_privata(database, asynchronous=True), older_than)
    found = await journal.distinct("collection", {"at": {"$lte": before}})
    names = sorted(str(n) for n in found)
    done: list[recovery.Resolved] = []
    for name in names:
        ctx, binding = split_collection(database, name).flow_parts()
        done.append(await aio.run(recovery.sweep(ctx, before, limit), binding))
    return _report(names, done)
