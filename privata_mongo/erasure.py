"""The erasure log and the answers to the requests of the erasure flows (``core.rights.erasure``).

The log is a collection of its own (``privata_erasures`` by default), one document per erased
subject keyed by its pseudonym: the plan of the erasure (the ids of the subject's data map, the
policy of each model, whether a data key existed), who asked and when, its state (``pending``
until every step is done) and the receipt. It holds no personal data. By default it lives in the
database of the data (the first served model's); ``configure(erasure_database=...,
erasure_client=...)`` puts it in another database or on another server, which is what lets
``replay_erasures`` re-apply every erasure after a backup of the data is restored: a log
restored with the data would have lost the erasures made since the backup.

``answer`` serves the erasure requests for ``privata_mongo.Rights`` and ``AsyncRights`` alike:
every call it makes on a real collection, the key vault or the audit trail is yielded, so the
sync runner takes its value and the async one awaits it. Rows are deleted on the real
collections (the erasure has shredded the key and records each model itself; going through the
models' collections would delete, shred and record again per batch), the log through the real
client, never through the application's handles (``proxy._protected`` refuses those writes).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, MutableMapping
from dataclasses import replace
from functools import partial
from typing import Any

from pymongo import ReturnDocument

from privata_mongo.config import cached
from privata_mongo.core import cache
from privata_mongo.core.audit import records_for
from privata_mongo.core.ops import ResolveAccess
from privata_mongo.core.rights import erasure as flows
from privata_mongo.core.rights import retention
from privata_mongo.core.schema import Side
from privata_mongo.residence import identity_collections, key_vaults, subject_regions
from privata_mongo.runtime.keys import forget_everywhere, real_client
from privata_mongo.runtime.region_calls import region_call
from privata_mongo.runtime.regions import clinical_collections

__all__ = ["REQUESTS", "answer", "erasure_log"]

Answer = Generator[Any, Any, Any]

REQUESTS = (*flows.ErasureRequest, retention.Expired, retention.RecordRetention)
"""Every request ``answer`` serves: the erasure flows' and the retention flow's."""

_REPLAY = "erasure:replay"
"""Marks a right's memo as a replay: every region's stores are asked, not the subject's only."""


def erasure_log(databases: list[Any]) -> Any:
    """The real erasure-log collection for the served models' privata ``databases``."""
    first = databases[0]
    settings = first.client.runtime.settings()
    if settings.erasure_client is not None:
        client = real_client(settings.erasure_client)
        database = client[settings.erasure_database or first.name]
    elif settings.erasure_database is not None:
        database = first.inner.client[settings.erasure_database]
    else:
        database = first.inner
    return database[settings.erasure_collection]


def _identities(collection: Any, regions: tuple[str, ...]) -> list[tuple[str | None, Any]]:
    """The real identity collections of ``collection`` in ``regions`` (every region's: ``()``).

    Each with its region's name (``None`` without regions), so an unreachable one is named.
    """
    return identity_collections(collection, regions)


def _regions(
    facade: Any, classes: Mapping[str, Any], pseudonym: str, memo: MutableMapping[str, Any]
) -> Answer:
    """The regions whose stores an erasure of ``pseudonym`` reaches.

    The subject's region, read from its clinical rows; every region when none is recorded
    (rows written before regions were configured, or none left) and in a replay: a restored
    backup may hold the subject in the region it was in before a ``transfer_region``.
    """
    if memo.get(_REPLAY):
        return ()
    return (yield from subject_regions(facade, classes, pseudonym, memo))


def _delete_rows(collection: Any, request: flows.DeleteRows, regions: tuple[str, ...]) -> Answer:
    real = collection.database.inner
    deleted = 0
    if request.side is not Side.IDENTITY:  # in every store holding the model's clinical rows
        settings = collection.database.client.runtime.settings()
        for region, target in clinical_collections(settings, real[collection.name]):
            result = yield region_call(region, partial(target.delete_many, dict(request.filter)))
            deleted += result.deleted_count
        return deleted
    reached = _identities(collection, regions)
    for region, target in reached:
        result = yield region_call(region, partial(target.delete_many, dict(request.filter)))
        deleted += result.deleted_count
    pseudonym = request.filter.get("_id")
    runtime = collection.database.client.runtime
    if isinstance(pseudonym, str) and cached(runtime.settings()):
        # the cached copy of the deleted row goes with it (``core.cache``), in the cache of
        # each region whose store was reached
        entry = cache.row_entry(real.name, collection.schema.identity_collection, pseudonym)
        for region, _ in reached:
            yield runtime.cache(region).invalidate((entry,), cache.WRITE_HOLD)
    return deleted


def _record(
    facade: Any, classes: Mapping[str, Any], request: flows.RecordErasure, regions: tuple[str, ...]
) -> Answer:
    """The ``erase`` records of one subject, one append per database of the models.

    With regions configured, each record names the subject's region (``regions``).
    """
    by_database: dict[str, tuple[Any, list[Any]]] = {}
    for erased in request.models:
        database = facade.collection(classes[erased.model]).database
        by_database.setdefault(database.name, (database, []))[1].append(erased)
    for database, models in by_database.values():
        runtime = database.client.runtime
        trail = runtime.trail(database.inner)
        if trail is None:
            continue
        at, access = runtime.clock.now(), runtime.access()
        records = [
            record
            for erased in models
            for record in records_for(
                at=at,
                access=access,
                operation=flows.ERASE,
                model=erased.model,
                subjects=[request.pseudonym],
                fields=erased.fields,
                count=erased.count,
                outcome=request.outcome,
            )
        ]
        if regions:
            records = [replace(r, regions=regions) for r in records]
        yield trail.append(records)
    return None


def _expired(facade: Any, collection: Any, request: retention.Expired) -> Answer:
    """Pseudonyms with a document dated before the cutoff and none dated after (or undated)."""
    raw = collection.database.inner[collection.name]
    stored = clinical_collections(collection.database.client.runtime.settings(), raw)
    projection = {"_id": 0, "_pseudonym": 1}
    old = {"_pseudonym": {"$exists": True}, request.field: {"$lt": request.cutoff}}
    rows: list[Any] = []
    for _, clinical in stored:
        rows.extend((yield facade.rows(clinical.find(old, projection))))
    candidates = sorted({d["_pseudonym"] for d in rows})
    if not candidates:
        return []
    live = {
        "_pseudonym": {"$in": candidates},
        "$or": [{request.field: {"$gte": request.cutoff}}, {request.field: None}],
    }
    kept: set[str] = set()
    for _, clinical in stored:
        kept.update(d["_pseudonym"] for d in (yield facade.rows(clinical.find(live, projection))))
    return [p for p in candidates if p not in kept]


def _retention_record(runtime: Any, database: Any, request: retention.RecordRetention) -> Answer:
    trail = runtime.trail(database.inner)
    if trail is None:
        return None
    records = records_for(
        at=runtime.clock.now(),
        access=runtime.access(),
        operation=retention.RETENTION,
        model=request.model,
        subjects=request.pseudonyms,
        fields=(),
        count=len(request.pseudonyms),
        max_subjects=runtime.settings().audit_max_subjects,
    )
    yield trail.append(records)
    return None


def _begin(log: Any, entry: Mapping[str, Any], regions: tuple[str, ...]) -> Answer:
    """Store a pending entry unless one exists; the stored entry (the first run's wins).

    With regions, the entry names the subject's region (``regions``): where its key was
    shredded and its identity rows deleted, for an auditor and for a replay after a restore.
    """
    pseudonym = entry["_id"]
    rest = {k: v for k, v in entry.items() if k != "_id"}
    if regions:
        rest["regions"] = list(regions)
    return (
        yield log.find_one_and_update(
            {"_id": pseudonym},
            {"$setOnInsert": rest},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
    )


def _keys(runtime: Any, request: flows.HasKey | flows.ShredKey, regions: tuple[str, ...]) -> Answer:
    settings = runtime.settings()
    if not settings.encryption:
        return False if isinstance(request, flows.HasKey) else 0
    holders: list[tuple[str | None, Any]]
    if not settings.regions:
        vault = runtime.keys.vault(settings)
        if isinstance(request, flows.HasKey):
            return bool((yield vault.find([request.pseudonym])))
        holders = [(None, vault)]
    else:  # a subject's key is in its region's vault: the others are not changed
        holders = []
        for name, vault in key_vaults(runtime, regions):
            held = yield region_call(name, partial(vault.find, [request.pseudonym]))
            if held:
                holders.append((name, vault))
        if isinstance(request, flows.HasKey):
            return bool(holders)
        if not holders:  # nothing to delete: the tombstone goes to the subject's region's
            home = regions[0] if regions else settings.default_region
            holders = [(home, runtime.keys.region_vault(settings.regions[home]))]
    entry = cache.key_entry(request.pseudonym)
    if cached(settings) and entry is not None:
        # Held before the key goes, in the cache of the region holding it: no process caches
        # it again, and every process holding it in memory finds the hold within its key
        # recheck interval (``core.cache``).
        for name, _ in holders:
            yield runtime.cache(name).invalidate((entry,), cache.ERASED_HOLD)
    deleted = 0
    for region, vault in holders:
        deleted += yield region_call(region, partial(vault.shred, [request.pseudonym]))
    forget_everywhere([request.pseudonym])  # the read caches: every key ring of the process
    return deleted


def answer(
    facade: Any, classes: Mapping[str, Any], request: Any, memo: MutableMapping[str, Any]
) -> Answer:
    """Answer one request of the erasure and retention flows (``REQUESTS``).

    ``memo`` lives for one right (``privata_mongo.rights``): the subject's region is read once,
    and the requests about the subject go to that region's stores only.
    """
    databases = facade.databases(classes)
    runtime = databases[0].client.runtime
    if isinstance(request, retention.Expired | retention.RecordRetention):
        collection = facade.collection(classes[request.model])
        if isinstance(request, retention.Expired):
            return (yield from _expired(facade, collection, request))
        database = collection.database
        return (yield from _retention_record(database.client.runtime, database, request))
    if isinstance(request, flows.RecordErasure):
        regions = yield from subject_regions(facade, classes, request.pseudonym, memo)
        return (yield from _record(facade, classes, request, regions))
    if isinstance(request, flows.DeleteRows | flows.CountIdentity):
        collection = facade.collection(classes[request.model])
        if isinstance(request, flows.DeleteRows):
            pseudonym = request.filter.get("_id")
            regions = (
                (yield from _regions(facade, classes, pseudonym, memo))
                if isinstance(pseudonym, str) and request.side is Side.IDENTITY
                else ()
            )
            return (yield from _delete_rows(collection, request, regions))
        count = 0
        regions = yield from _regions(facade, classes, request.pseudonym, memo)
        for region, identity in _identities(collection, regions):
            count += yield region_call(
                region, partial(identity.count_documents, {"_id": request.pseudonym})
            )
        return count
    if isinstance(request, flows.HasKey | flows.ShredKey):
        regions = yield from _regions(facade, classes, request.pseudonym, memo)
        return (yield from _keys(runtime, request, regions))
    if isinstance(request, flows.Now):
        return runtime.clock.now()
    if isinstance(request, ResolveAccess):
        return runtime.access()
    log = erasure_log(databases)
    if isinstance(request, flows.LoadErasure):
        return (yield log.find_one({"_id": request.pseudonym}))
    if isinstance(request, flows.LoggedErasures):
        memo[_REPLAY] = True  # only a replay lists the log
        found = yield facade.rows(log.find({}, {"_id": 1}, sort=[("started_at", 1), ("_id", 1)]))
        return [d["_id"] for d in found]
    if isinstance(request, flows.BeginErasure):
        regions = yield from subject_regions(facade, classes, request.entry["_id"], memo)
        return (yield from _begin(log, request.entry, regions))
    if isinstance(request, flows.FinishErasure):
        change = {"state": flows.DONE, "receipt": dict(request.receipt)}
        yield log.update_one({"_id": request.pseudonym}, {"$set": change})
        return None
    raise TypeError(f"unknown request {type(request).__name__}")
