"""Migration into new collections: the source is only read, the split form is inserted.

``privata_mongo.migration`` rewrites a collection in place, one replacement per document;
FerretDB 1.x finds the row of a replacement by scanning, so that path runs at a few documents
a second there. Here each batch of the source (in ``_id`` order) is split and sealed by the
flows the in-place path uses (``core.flows.migrate.copy``) and *inserted* into a target
clinical collection and its identity collection, which every server does at the cost of a
write. ``swap`` then renames the source to ``<source>__plaintext`` (the backup, kept until the
operator drops it) and the target to the source's name, after ``verify`` passed.

Resuming needs no ledger: the pseudonym is a keyed hash of the ``_id``, so a row written twice
is a duplicate key, and the target's highest ``_id`` says where a killed run stopped. Its
last batch may hold gaps (unordered inserts), so the ``batch_size`` source rows up to that
``_id`` are looked up in the target and the missing ones copied first; a count comparison at
the end catches any other gap (``_id`` values of several BSON types, which ``$gt`` does not
cross) with one more pass over the source.

The reverse, ``unmigrate_into``, joins the split rows (an audited read) and inserts the
plaintext documents, byte for byte as they were, into a new collection.

Internal: the public entry points are ``privata_mongo.migration``'s.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import bson
from pymongo.errors import BulkWriteError

from privata_mongo.config import current
from privata_mongo.core.flows import admin, recovery
from privata_mongo.core.flows import migrate as flows
from privata_mongo.core.flows.context import Context
from privata_mongo.core.ops import Flow
from privata_mongo.core.schema import PSEUDONYM_FIELD, ModelSchema, Side
from privata_mongo.errors import ConfigurationError
from privata_mongo.migration import (
    MigrationReport,
    Progress,
    UnmigrateReport,
    VerifyReport,
    _count_fields,
    _Target,
    _target,
    schema_of,
)
from privata_mongo.proxy.client import ProxyClient
from privata_mongo.proxy.database import DatabaseBase
from privata_mongo.runtime import build_runtime

__all__ = [
    "BACKUP_SUFFIX",
    "SwapReport",
    "migrate_into",
    "swap",
    "unmigrate_into",
    "verify_into",
]

BACKUP_SUFFIX = "__plaintext"
"""The source collection's name after ``swap``: ``<source>__plaintext``, the backup."""

_DUPLICATE_KEY = 11000


def _key(value: Any) -> bytes:
    """A hashable, type-exact form of an ``_id`` (``1`` and ``1.0`` are different rows)."""
    return bson.encode({"_id": value})


@dataclass(frozen=True, slots=True)
class _Into:
    """The source (read only), the split target and the application's own schema."""

    target: _Target
    source: Any
    schema: ModelSchema
    raw: Any
    into: str
    identity: str

    def ctx(self) -> Context:
        return self.target.context()


def _raw_database(database: Any) -> Any:
    return database.inner if isinstance(database, DatabaseBase) else database


def _identity_name(schema: ModelSchema, collection: str) -> str:
    """The identity collection of ``collection``, with the suffix the schema's own uses."""
    if schema.identity_collection.startswith(schema.collection):
        return collection + schema.identity_collection[len(schema.collection) :]
    return collection + current().identity_suffix


def _into(database: Any, model: Any, into: str) -> _Into:
    schema = schema_of(model)
    if not schema.enabled:
        raise ConfigurationError(
            f"{schema.model}: the model has no identity fields, so its documents are stored "
            "as they are and there is nothing to migrate"
        )
    reserved = {schema.collection, schema.identity_collection}
    if not into or into in reserved or into.startswith("system."):
        raise ConfigurationError(
            f"{schema.model}: the target collection must be a new name, not "
            f"'{schema.collection}' or its identity collection; pass e.g. "
            f"--into {schema.collection}__split"
        )
    raw = _raw_database(database)
    if isinstance(database, DatabaseBase):
        runtime = database.client.runtime
    else:
        runtime = build_runtime(raw.client, asynchronous=False)
    proxy = ProxyClient(raw.client, lambda _db, _name: None, runtime)[raw.name]
    # blind index terms are scoped by the identity collection's name: the source's, so the
    # rows are right under the names ``swap`` gives them; the intents and audit records name
    # the target, where the rows are (a sweep of the source must not see them)
    moved = replace(schema, collection=into)
    split = proxy.split_collection(
        proxy, raw.get_collection(into), raw.get_collection(_identity_name(schema, into)), moved
    )
    source = raw.get_collection(schema.collection, codec_options=split._clinical.codec_options)
    ledger = raw.get_collection(schema.collection + "__migration")
    return _Into(_Target(split, ledger), source, schema, raw, into, _identity_name(schema, into))


def _secret(into: _Into, *, create: bool) -> bytes | None:
    """The migration secret of the source collection (the schema's): kept after ``swap``."""
    flow = flows.migration_secret(into.ctx(), create=create, collection=into.schema.collection)
    secret: bytes | None = into.target.run(flow)
    return secret


def _settle(job: _Into) -> None:
    """Resolve the intents a killed run left on the target, before it is written or swapped.

    A sweep of the target once it is renamed would find none of the subjects' rows under its
    name and discard their keys; resolved now, against the rows where they are, an identity
    row without its clinical half goes with its key (the next batch makes both again).
    """
    ctx = job.ctx()
    job.target.run(recovery.sweep(ctx, ctx.now()))


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _present(collection: Any, ids: list[Any]) -> set[bytes]:
    """Which of ``ids`` ``collection`` holds (one indexed ``$in`` query)."""
    return {_key(r["_id"]) for r in collection.find({"_id": {"$in": ids}}, {"_id": 1})}


def _missing(collection: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    there = _present(collection, [r["_id"] for r in rows])
    return [r for r in rows if _key(r["_id"]) not in there]


def _last_id(collection: Any) -> tuple[bool, Any]:
    """Whether ``collection`` holds a row, and its highest ``_id``."""
    found = list(collection.find({}, {"_id": 1}).sort("_id", -1).limit(1))
    return (True, found[0]["_id"]) if found else (False, None)


def _pending(
    source: Any, written: Any, selector: dict[str, Any], size: int
) -> Iterator[tuple[list[dict[str, Any]], bool]]:
    """The batches of ``source`` rows (``selector``) not yet in ``written``, in ``_id`` order.

    Each comes with whether it is read past every row written (no earlier run reached it
    unless it is the batch that run was killed in). The rows up to the highest ``_id``
    written are checked one batch back (the batch a kill interrupted); later rows are read by
    one cursor; a last pass over everything runs only when the counts still differ (gaps a
    ``$gt`` cannot reach).
    """
    started, last = _last_id(written)
    if started:
        back = list(
            source.find({"$and": [selector, {"_id": {"$lte": last}}]}).sort("_id", -1).limit(size)
        )
        back.reverse()
        if left := _missing(written, back):
            yield left, False
        rest = source.find({"$and": [selector, {"_id": {"$gt": last}}]}, batch_size=size)
    else:
        rest = source.find(selector, batch_size=size)
    for rows in _chunks(rest.sort("_id", 1), size):
        yield rows, True
    if written.count_documents({}) < source.count_documents(selector):
        for rows in _chunks(source.find(selector, batch_size=size).sort("_id", 1), size):
            if left := _missing(written, rows):
                yield left, False


def migrate_into(
    database: Any,
    model: Any,
    into: str,
    *,
    batch_size: int,
    dry_run: bool,
    progress: Progress | None,
) -> MigrationReport:
    """``migrate(..., into=...)``: see ``privata_mongo.migration.migrate``."""
    started = time.monotonic()
    job = _into(database, model, into)
    schema, target = job.schema, job.target
    # from the collections' metadata: a count scans on FerretDB 1.x (``verify`` counts exactly)
    plain = int(job.source.estimated_document_count())
    already = int(target.split._clinical.estimated_document_count())
    base = MigrationReport(schema.model, into, job.identity, dry_run, plain, already)
    if dry_run:
        fields, batches = _count_fields(job.source, {}, schema, batch_size, progress, plain)
        return replace(base, fields=fields, batches=batches, seconds=time.monotonic() - started)
    secret = _secret(job, create=True)
    if secret is None:  # pragma: no cover - ``create`` makes it when it is missing
        raise ConfigurationError(f"{schema.model}: the migration key could not be made")
    target.run(admin.ensure_link_index(job.ctx()))
    _settle(job)
    done, batches = already, 0
    if progress is not None:
        progress(done, plain)
    # keys are looked up until a batch read past the target finds none of its own: the
    # batches of a killed run were made in ``_id`` order, so no later row has a key either
    keyless = False
    for rows, ahead in _pending(job.source, target.split._clinical, {}, batch_size):
        if any(PSEUDONYM_FIELD in row for row in rows):
            raise _split_already(schema)
        look_up = not (ahead and keyless)
        copied: flows.Converted = target.audited("migrate", _copying(rows, secret, look_up))
        keyless = keyless or (ahead and look_up and not copied.keys_found)
        done += copied.documents
        batches += 1
        if progress is not None:
            progress(done, max(plain, done))
    return replace(
        base, migrated=done - already, batches=batches, seconds=time.monotonic() - started
    )


def _split_already(schema: ModelSchema) -> ConfigurationError:
    """The source holds rows in the split form: a copy of it would lose their identity."""
    return ConfigurationError(
        f"{schema.model}: '{schema.collection}' holds documents in the split form already "
        "(an in-place migration began); finish it in place (privata-mongo migrate) or "
        "unmigrate it first, then drop the target and migrate --into again"
    )


def _copying(
    rows: list[dict[str, Any]], secret: bytes, look_up: bool
) -> Callable[[Context], Flow[Any]]:
    return lambda ctx: flows.copy(ctx, rows, secret, look_up=look_up)


def verify_into(database: Any, model: Any, into: str, *, sample: int) -> VerifyReport:
    """``verify_migration(..., into=...)``: the target against the source it was copied from.

    Counts come from the server; ``sample`` source documents are read and the same ``_id``
    joined through the target (an audited read), and their BSON compared (keyed checksums,
    so no value is held longer than the comparison).
    """
    job = _into(database, model, into)
    schema, target = job.schema, job.target
    secret = _secret(job, create=False)
    if secret is None:
        raise ConfigurationError(
            f"{schema.model}: '{schema.collection}' was never migrated (no migration key in "
            "the key vault); run privata-mongo migrate --into first"
        )
    clinical = target.split._clinical
    ids = [row["_id"] for row in job.source.find({}, {"_id": 1})]
    # one pass over the copy's links, no ``$in`` count, ``$group`` or ``distinct``: FerretDB
    # 1.x scans for each ``$in`` and groups in time quadratic in the number of groups
    split: set[bytes] = set()
    unlinked = duplicates = 0
    seen: set[str] = set()
    for row in clinical.find({}, {"_id": 1, PSEUDONYM_FIELD: 1}):
        link = row.get(PSEUDONYM_FIELD)
        if link is None:
            unlinked += 1
            continue
        split.add(_key(row["_id"]))
        duplicates += link in seen
        seen.add(link)
    present = sum(1 for i in ids if _key(i) in split)
    chosen = secrets.SystemRandom().sample(ids, min(sample, len(ids)))
    expected: dict[bytes, bytes] = {}
    joined: dict[bytes, bytes] = {}
    for start in range(0, len(chosen), 1000):
        chunk = chosen[start : start + 1000]
        for row in job.source.find({"_id": {"$in": chunk}}):
            expected[_key(row["_id"])] = flows.checksum(secret, row)
        for row in target.split.find({"_id": {"$in": chunk}}):
            joined[_key(row["_id"])] = flows.checksum(secret, row)
    mismatched = tuple(
        bson.decode(k)["_id"] for k, digest in expected.items() if joined.get(k) != digest
    )
    return VerifyReport(
        model=schema.model,
        source=len(ids),
        plaintext=unlinked,
        migrated=len(split),
        identity_rows=target.count(Side.IDENTITY, {}),
        duplicates=duplicates,
        missing=len(ids) - present,
        sampled=len(expected),
        mismatched=len(mismatched),
        mismatched_ids=mismatched,
    )


@dataclass(frozen=True, slots=True)
class SwapReport:
    """What ``swap`` did (names and counts only).

    Attributes:
        model: the model's name.
        collection: the name the application uses, now holding the split form.
        backup: where the plaintext source went (drop it once you no longer need it).
        indexes: the source's indexes created on the split collections.
        verified: the verification that allowed the swap.
    """

    model: str
    collection: str
    backup: str
    indexes: tuple[str, ...]
    verified: VerifyReport


def _exists(raw: Any, name: str) -> bool:
    # not ``filter=``: mongomock ignores it
    return name in raw.list_collection_names()


def swap(database: Any, model: Any, into: str, *, sample: int = 100) -> SwapReport:
    """Put the migrated collection under the source's name; the source becomes the backup.

    Refused unless ``verify_into`` passes. The source's indexes are created first through the
    split collection (an index on identity fields goes to the identity collection, on blind
    index terms, as the facade's ``create_index`` puts it); then the renames: the identity
    collection, the source to ``<source>__plaintext``, the target to the source's name. A swap
    run again once done says so and changes nothing; one killed between two renames is not
    resumed (the next run refuses): finish the renames by hand, in that order.

    Raises:
        ConfigurationError: the verification failed, or the names are taken.
    """
    job = _into(database, model, into)
    schema, raw = job.schema, job.raw
    backup = schema.collection + BACKUP_SUFFIX
    identity = job.identity
    if not _exists(raw, into) and _exists(raw, backup):
        raise ConfigurationError(
            f"{schema.model}: the swap is done: '{schema.collection}' holds the split form and "
            f"'{backup}' the plaintext backup; there is nothing to swap"
        )
    _settle(job)
    checked = verify_into(database, model, into, sample=sample)
    if not checked.ok:
        raise ConfigurationError(
            f"{schema.model}: '{into}' does not match '{schema.collection}' ({checked.missing} "
            f"missing, {checked.duplicates} duplicate, {checked.mismatched} mismatched of "
            f"{checked.sampled} sampled); nothing was renamed: run privata-mongo migrate "
            "--into again, then swap"
        )
    if _exists(raw, backup):
        raise ConfigurationError(
            f"{schema.model}: '{backup}' exists already (an earlier backup); drop or rename "
            "it, then swap"
        )
    # the identity rows are in each region's store when regions are configured
    stores = [c.database for _, c in job.target.identities()]
    taken = [_exists(store, schema.identity_collection) for store in stores]
    for store, held in zip(stores, taken, strict=True):
        if held and store[schema.identity_collection].count_documents({}):
            raise ConfigurationError(
                f"{schema.model}: '{schema.identity_collection}' holds rows already; it would "
                "be replaced by the migrated identity rows: unmigrate the in-place rows first"
            )
    made = list(_copy_indexes(job))
    for store, held in zip(stores, taken, strict=True):
        if _exists(store, identity):
            if held:  # empty (checked above): the indexes the facade made there are kept
                made += _move_indexes(store[schema.identity_collection], store[identity])
                store.drop_collection(schema.identity_collection)
            store[identity].rename(schema.identity_collection)
    raw[schema.collection].rename(backup)
    raw[into].rename(schema.collection)
    return SwapReport(schema.model, schema.collection, backup, tuple(dict.fromkeys(made)), checked)


def _move_indexes(empty: Any, target: Any) -> tuple[str, ...]:
    """The indexes of an empty collection, made on ``target`` (as they are: same side)."""
    made = []
    for name, info in empty.index_information().items():
        if name != "_id_" and name not in target.index_information():
            options = {k: v for k, v in info.items() if k not in ("key", "v", "ns")}
            target.create_index(list(info["key"]), name=name, **options)
            made.append(name)
    return tuple(made)


def _copy_indexes(job: _Into) -> tuple[str, ...]:
    """The source's indexes (but ``_id``) created on the split target, by the facade's rules."""
    made = []
    for name, info in job.source.index_information().items():
        if name == "_id_":
            continue
        options = {k: v for k, v in info.items() if k not in ("key", "v", "ns")}
        job.target.split.create_index(list(info["key"]), name=name, **options)
        made.append(name)
    return tuple(made)


def unmigrate_into(
    database: Any, model: Any, into: str, *, batch_size: int, progress: Progress | None
) -> UnmigrateReport:
    """``unmigrate(..., into=...)``: the plaintext documents inserted into ``into``.

    The split collections are only read (each batch joined: an audited ``unmigrate``), so
    they stay as they are until the operator drops them; rows still plaintext are copied as
    they are. Resumable as ``migrate_into`` is.
    """
    started = time.monotonic()
    target = _target(database, model)
    schema = target.schema
    if into in {schema.collection, schema.identity_collection}:
        raise ConfigurationError(
            f"{schema.model}: unmigrate --into needs a new collection name, not "
            f"'{schema.collection}' or its identity collection"
        )
    clinical = target.split._clinical
    out = clinical.database.get_collection(into, codec_options=clinical.codec_options)
    total = int(clinical.count_documents({}))
    done = already = int(out.count_documents({}))
    batches = 0
    if progress is not None:
        progress(done, total)
    # one pass over the identity rows and the key vault, kept in memory for the run: on
    # FerretDB 1.x every lookup by a list of names scans, which per batch is O(N) each time
    stored = {row["_id"]: row for _, rows in target.identities() for row in rows.find({})}
    keys: dict[str, Any] = {}
    for key in target.run(flows.every_key(target.context())):
        for name in key.get("keyAltNames", ()):
            keys[name] = key
    for rows, _ in _pending(clinical, out, {}, batch_size):
        linked = [r for r in rows if isinstance(r.get(PSEUDONYM_FIELD), str)]
        held = [keys[p] for r in linked if (p := r[PSEUDONYM_FIELD]) in keys]
        plain: list[Any] = (
            target.audited("unmigrate", _rejoining(linked, stored, held)) if linked else []
        )
        joined = iter(plain)
        documents = [next(joined) if isinstance(r.get(PSEUDONYM_FIELD), str) else r for r in rows]
        _insert(out, documents)
        done += len(documents)
        batches += 1
        if progress is not None:
            progress(done, max(total, done))
    return UnmigrateReport(schema.model, done - already, 0, 0, batches, time.monotonic() - started)


def _rejoining(
    rows: list[dict[str, Any]], stored: dict[str, Any], keys: list[Any]
) -> Callable[[Context], Flow[Any]]:
    return lambda ctx: flows.rejoin(ctx, rows, stored, keys)


def _insert(collection: Any, documents: list[Any]) -> None:
    """Insert ``documents``; the ones a killed run inserted already are left as they are."""
    try:
        collection.insert_many(documents, ordered=False)
    except BulkWriteError as error:
        errors = error.details.get("writeErrors", ())
        if any(e.get("code") != _DUPLICATE_KEY for e in errors):
            raise
