"""Answers the residency right: moving a subject's identity data to another region.

``Rights.transfer_region`` / ``AsyncRights.transfer_region`` run ``core.rights.transfer``; its
``MoveSubject`` request is answered here, over the real collections of every split model of the
map (the identity rows move sealed, as stored: only their data key is re-wrapped). Each call
is yielded, so ``Rights`` takes its value and ``AsyncRights`` awaits it, as in ``erasure``.
The order (the key and the identity rows copied to the target first; the clinical rows
copied to the target region's clinical store and verified, or re-pointed where they are when
both regions share a store; the source's rows and key deleted last) means a crash part-way
loses nothing, and running the transfer again completes it: a region still holding identity
rows of the subject is a source again, and rows copied already are copied over themselves.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import replace
from functools import partial
from typing import Any

from privata_mongo.config import cached
from privata_mongo.core.audit import records_for
from privata_mongo.core.cache import WRITE_HOLD, key_entry, row_entry
from privata_mongo.core.crypto.ring import rewrap_to
from privata_mongo.core.rights.transfer import MoveSubject, Transfer
from privata_mongo.core.schema import PSEUDONYM_FIELD, REGION_FIELD
from privata_mongo.drivers import aio, sync
from privata_mongo.drivers._dispatch import Binding
from privata_mongo.errors import TransferIncomplete, UnknownRegion
from privata_mongo.runtime.keys import forget_everywhere, region_provider
from privata_mongo.runtime.region_calls import region_call
from privata_mongo.runtime.regions import (
    clinical_collection,
    clinical_collections,
    identity_collection,
)

__all__ = ["TRANSFER_OPERATION", "answer"]

TRANSFER_OPERATION = "transfer_region"
"""The audit operation of a transfer (listed by the processing record like any other)."""

Answer = Generator[Any, Any, Any]


def answer(facade: Any, classes: Mapping[str, Any], request: MoveSubject) -> Answer:
    """Move ``request.pseudonym``'s identity rows and data key to ``request.target``.

    Raises:
        UnknownRegion: no regions are configured, or ``target`` is not one of them.
    """
    databases = facade.databases(classes)
    runtime = databases[0].client.runtime
    settings = runtime.settings()
    regions = settings.regions or {}
    target = regions.get(request.target)
    if target is None:
        raise UnknownRegion(
            "transfer_region names a region that is not configured; configured regions: "
            f"{', '.join(regions) or 'none (configure regions=...)'}"
        )
    pseudonym = request.pseudonym
    split: list[tuple[str, Any]] = []
    sources: dict[str | None, None] = {}
    for name, cls in classes.items():
        collection = facade.collection(cls)
        schema = getattr(collection, "schema", None)
        if schema is None or not schema.enabled:
            continue
        raw = collection.database.inner[collection.name]
        found = False
        for _, stored in clinical_collections(settings, raw):
            rows = yield facade.rows(stored.find({PSEUDONYM_FIELD: pseudonym}, {REGION_FIELD: 1}))
            found = found or bool(rows)
            sources.update(
                dict.fromkeys(r.get(REGION_FIELD) or settings.default_region for r in rows)
            )
        if found:
            split.append((name, collection))
    for region_name, region in regions.items():  # a transfer stopped part-way left copies
        if region_name == request.target or region_name in sources:
            continue
        for _, collection in split:
            database = collection.database.inner.name
            name = collection.schema.identity_collection
            held = identity_collection(region, database, name)
            if (yield held.find_one({"_id": pseudonym}, {"_id": 1})):
                sources[region_name] = None
                break
    moving = [s for s in sources if s is not None and s != request.target]
    moved = 0
    for source_name in moving:
        source = regions[source_name]
        source_vault = runtime.keys.region_vault(source)
        keys = yield region_call(source_name, partial(source_vault.find, [pseudonym]))
        if keys and settings.encryption:
            ring = runtime.keys.ring(settings)
            wrapping = target.master_key
            flow = rewrap_to(
                keys, ring.kms_providers, region_provider(request.target, target), wrapping
            )
            binding: Any = Binding(
                None, None, access=runtime.access, kms=runtime.keys.transport(settings)
            )
            rewrapped = yield (aio.run if runtime.asynchronous else sync.run)(flow, binding)
            target_vault = runtime.keys.region_vault(target)
            yield region_call(request.target, partial(target_vault.insert, rewrapped))
        for _, collection in split:
            database = collection.database.inner.name
            name = collection.schema.identity_collection
            found = identity_collection(source, database, name).find({"_id": pseudonym})
            rows = yield region_call(source_name, partial(facade.rows, found))
            copy = identity_collection(target, database, name).replace_one
            for row in rows:
                yield region_call(
                    request.target, partial(copy, {"_id": pseudonym}, row, upsert=True)
                )
            moved += len(rows)
    for _, collection in split:  # the clinical rows follow, to the target's clinical store
        raw = collection.database.inner[collection.name]
        destination = clinical_collection(target, raw)
        for _, stored in clinical_collections(settings, raw):
            yield from _move_clinical(facade, pseudonym, stored, destination, request.target)
    for source_name in moving:  # only then the source regions' copies go
        source = regions[source_name]
        for _, collection in split:
            database = collection.database.inner.name
            name = collection.schema.identity_collection
            gone = identity_collection(source, database, name).delete_many
            yield region_call(source_name, partial(gone, {"_id": pseudonym}))
        # moved, not erased: no tombstone
        vault = runtime.keys.region_vault(source)
        yield region_call(source_name, partial(vault.discard, [pseudonym]))
        if cached(settings):  # and no copy left in the source region's cache either
            entries = [
                row_entry(c.database.inner.name, c.schema.identity_collection, pseudonym)
                for _, c in split
            ]
            key = key_entry(pseudonym)
            entries.extend([key] if key is not None else [])
            yield runtime.cache(source_name).invalidate(tuple(entries), WRITE_HOLD)
    forget_everywhere([pseudonym])
    done = Transfer(pseudonym, tuple(moving), request.target, moved)
    yield from _record(runtime, databases, split, done)
    return done


def _same(one: Any, other: Any) -> bool:
    """Whether two real collections are the same stored collection (same client object)."""
    return (id(one.database.client), one.database.name, one.name) == (
        id(other.database.client),
        other.database.name,
        other.name,
    )


def _move_clinical(facade: Any, pseudonym: str, source: Any, target: Any, region: str) -> Answer:
    """The subject's clinical rows in ``source`` re-pointed to ``region``, in its store.

    In one store the rows are re-pointed where they are. Across stores they are copied to the
    target's store (re-pointed), the copies are verified, and only then are the source's rows
    deleted: a crash part-way leaves rows in both stores, and running the transfer again
    completes it.
    """
    moved = {"$set": {REGION_FIELD: region}}
    if _same(source, target):
        yield source.update_many({PSEUDONYM_FIELD: pseudonym}, moved)
        return None
    rows = yield facade.rows(source.find({PSEUDONYM_FIELD: pseudonym}))
    for row in rows:
        yield target.replace_one({"_id": row["_id"]}, {**row, REGION_FIELD: region}, upsert=True)
    ids = [row["_id"] for row in rows]
    copied = yield facade.rows(target.find({"_id": {"$in": ids}, PSEUDONYM_FIELD: pseudonym}))
    if len(copied) != len(rows):
        raise TransferIncomplete(
            f"{len(rows) - len(copied)} clinical row(s) of the subject were not found in the "
            f"clinical store of region '{region}' after the copy; nothing was deleted from the "
            "source: check that store and run transfer_region again"
        )
    if ids:
        yield source.delete_many({"_id": {"$in": ids}, PSEUDONYM_FIELD: pseudonym})
    return None


def _record(
    runtime: Any, databases: list[Any], split: list[tuple[str, Any]], done: Transfer
) -> Answer:
    """One ``transfer_region`` record per model moved, naming both regions (no values)."""
    for name, collection in split:
        trail = runtime.trail(collection.database.inner)
        if trail is None:
            continue
        records = records_for(
            at=runtime.clock.now(),
            access=runtime.access(),
            operation=TRANSFER_OPERATION,
            model=name,
            subjects=[done.pseudonym],
            fields=(),
            count=1,
        )
        regions = tuple(sorted({*done.sources, done.target}))
        yield trail.append(tuple(replace(r, regions=regions) for r in records))
