"""Adopting the library on a database of plaintext documents, checking it, and leaving it.

``migrate`` converts the documents of a model's collection that are still stored whole (no
``_pseudonym``) into the split form, a batch at a time, with the insert's own split and sealing
code (``core.flows.migrate``): a migrated document is what the facade would have stored. It is
resumable and idempotent: run it again after a kill and it finishes the job, with no second
identity row, no key without its row, no value lost. ``dry_run`` reads only and reports what
would be classified and moved.

Before a batch is converted, a keyed checksum of each source document is kept in the
collection's *ledger* (``<collection>__migration``: the ``_id`` and 32 bytes, no value);
``verify_migration`` compares counts, and joins a sample of documents back through the split
collection (an audited read, as the application's) and compares their checksum with the
source's. ``unmigrate`` restores the plaintext documents byte for byte, for a team that leaves.

Every function takes the database as the application holds it (``mongoengine.get_db()``) or
a plain pymongo database (the operator's), and the model class whose collection it works on.
Each batch is audited as one operation (``migrate``, ``unmigrate``; ``read`` for the sampled
joins of ``verify_migration``) under the access context in force, naming pseudonyms and field
names only.
"""

from __future__ import annotations

import logging
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from bson import Binary
from pymongo.errors import BulkWriteError

from privata_mongo.core.audit.wrapper import AuditSpec, audited
from privata_mongo.core.flows import migrate as flows
from privata_mongo.core.flows.context import Context
from privata_mongo.core.ops import Flow
from privata_mongo.core.schema import PSEUDONYM_FIELD, ModelSchema, Side
from privata_mongo.drivers import sync
from privata_mongo.errors import ConfigurationError
from privata_mongo.proxy._collection_base import SplitCollectionBase
from privata_mongo.proxy.client import ProxyClient
from privata_mongo.proxy.database import DatabaseBase
from privata_mongo.runtime import build_runtime
from privata_mongo.runtime.region_calls import identity_stores

if TYPE_CHECKING:
    from privata_mongo.migration._into import SwapReport

__all__ = [
    "LEDGER_SUFFIX",
    "MigrationReport",
    "Progress",
    "UnmigrateReport",
    "VerifyReport",
    "migrate",
    "swap_migration",
    "unmigrate",
    "verify_migration",
]

logger = logging.getLogger(__name__)

LEDGER_SUFFIX = "__migration"
"""The ledger of a collection's migration: ``<collection>__migration``, a checksum per source."""

Progress = Callable[[int, int], None]
"""Called after each batch with the documents done so far and the total to do."""

DEFAULT_BATCH = 500


def schema_of(model: Any) -> ModelSchema:
    """The compiled schema of a mongoengine or Beanie model's collection.

    Raises:
        ConfigurationError: ``model`` is no model class of a supported ODM.
    """
    mongoengine = sys.modules.get("mongoengine")
    if (
        mongoengine is not None
        and isinstance(model, type)
        and issubclass(model, mongoengine.Document)
    ):
        from privata_mongo.mongoengine._describe import schema_of_model

        return schema_of_model(model)
    beanie = sys.modules.get("beanie")
    if beanie is not None and issubclass(model, beanie.Document):
        from privata_mongo.beanie._describe import schema_of_model as beanie_schema

        return beanie_schema(model)
    raise ConfigurationError(f"{model!r} is not a mongoengine or Beanie model class")


@dataclass(frozen=True, slots=True)
class _Target:
    """The split collection of one model, the ports and context its flows run with."""

    split: SplitCollectionBase
    ledger: Any

    @property
    def schema(self) -> ModelSchema:
        return self.split.schema

    def context(self) -> Context:
        # an operator flow reaches every subject: no restriction applies
        return replace(self.split._plans.context(), restriction=None)

    def run(self, flow: Flow[Any]) -> Any:
        return sync.run(flow, self.split._binding)

    def audited(self, operation: str, build: Callable[[Context], Flow[Any]]) -> Any:
        settings = self.split._runtime.settings()
        ctx = self.context()
        if not settings.audit:
            return self.run(build(ctx))
        spec = AuditSpec(
            operation,
            max_subjects=settings.audit_max_subjects,
            intents=settings.audit_buffer == 0,
        )
        return self.run(audited(ctx, build, spec))

    def count(self, side: Side, selector: dict[str, Any]) -> int:
        if side is Side.CLINICAL:
            return int(self.split._clinical.count_documents(selector))
        return sum(int(c.count_documents(selector)) for _, c in self.identities())

    def identities(self) -> list[tuple[str | None, Any]]:
        """The real identity collections: each region's when regions are configured."""
        base = self.split._identity
        settings = self.split._runtime.settings()
        return identity_stores(settings, base.database.name, base.name, base)


def _target(database: Any, model: Any) -> _Target:
    schema = schema_of(model)
    if not schema.enabled:
        raise ConfigurationError(
            f"{schema.model}: the model has no identity fields, so its documents are stored "
            "as they are and there is nothing to migrate"
        )
    if not isinstance(database, DatabaseBase):  # the operator's own pymongo database
        client = ProxyClient(
            database.client,
            lambda _db, name: schema if name == schema.collection else None,
            build_runtime(database.client, asynchronous=False),
        )
        database = client[database.name]
    split = database.get_collection(schema.collection)
    if not isinstance(split, SplitCollectionBase):
        raise ConfigurationError(
            f"{schema.model}: the database does not serve '{schema.collection}' as a split "
            "collection; pass the model's database (get_db()) or a plain pymongo database"
        )
    ledger = database.inner.get_collection(schema.collection + LEDGER_SUFFIX)
    return _Target(split, ledger)


def _batches(
    target: _Target, selector: Any, size: int, ctx: Context
) -> Iterator[list[dict[str, Any]]]:
    """Batches of the rows ``selector`` matches, in ``_id`` order, until none is left.

    Each batch is read after the previous one was converted, so a row converted meanwhile is
    not read again; an empty ``$gt`` batch starts once more from the lowest ``_id``, which
    reaches ``_id`` values of other BSON types (``$gt`` compares within one type).
    """
    after: Any = None
    first = True
    while True:
        rows = target.run(flows.next_batch(ctx, selector, after, size, first=first))
        if not rows:
            if first:
                return
            first = True
            continue
        first = False
        after = rows[-1]["_id"]
        yield rows


def _stuck(schema: ModelSchema, command: str) -> ConfigurationError:
    """A batch that converted nothing: its rows would be read again and again."""
    return ConfigurationError(
        f"{schema.model}: a batch of '{schema.collection}' could not be converted by {command}: "
        f"its rows hold a '{PSEUDONYM_FIELD}' that is not a pseudonym, or were deleted while "
        "it ran; stop the writers of the collection, repair those rows and run it again"
    )


def _keep_checksums(ledger: Any, rows: list[dict[str, Any]], secret: bytes) -> None:
    """Store the checksum of each source row before it is converted (one write per batch).

    A row a killed run recorded already is recorded again (``replace_one``): writers are
    stopped, so it holds the same document, and if one was not, the ledger holds the
    document as it is converted now.
    """
    entries = [{"_id": r["_id"], "h": Binary(flows.checksum(secret, r))} for r in rows]
    try:
        ledger.insert_many(entries, ordered=False)
    except BulkWriteError as error:
        again = {e["index"] for e in error.details.get("writeErrors", ()) if e.get("code") == 11000}
        if len(again) != len(error.details.get("writeErrors", ())):
            raise
        for index in sorted(again):
            ledger.replace_one({"_id": entries[index]["_id"]}, entries[index], upsert=True)


def _converting(rows: list[dict[str, Any]], secret: bytes) -> Callable[[Context], Flow[Any]]:
    return lambda ctx: flows.convert(ctx, rows, secret)


def _restoring(rows: list[dict[str, Any]], shred: bool) -> Callable[[Context], Flow[Any]]:
    return lambda ctx: flows.restore(ctx, rows, shred=shred)


@dataclass(frozen=True, slots=True)
class FieldCount:
    """A top-level field of the plaintext documents: its side and how many documents hold it."""

    side: str
    documents: int


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What ``migrate`` did, or would do (``dry_run``); counts and names only.

    Attributes:
        model: the model's name.
        collection: the clinical collection (the source, rewritten in place).
        identity_collection: where the identity rows go.
        dry_run: nothing was written.
        plaintext: documents still plaintext when the run started.
        already_migrated: documents already split when the run started.
        migrated: documents this run converted (0 for a dry run).
        batches: batches converted (or read, for a dry run).
        seconds: wall-clock time of the run.
        fields: per top-level field of the plaintext documents (dry run only): its side and
            the number of documents holding it.
    """

    model: str
    collection: str
    identity_collection: str
    dry_run: bool
    plaintext: int
    already_migrated: int
    migrated: int = 0
    batches: int = 0
    seconds: float = 0.0
    fields: dict[str, FieldCount] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Documents per second."""
        done = self.plaintext if self.dry_run else self.migrated
        return done / self.seconds if self.seconds else 0.0


def migrate(
    database: Any,
    model: Any,
    *,
    batch_size: int = DEFAULT_BATCH,
    dry_run: bool = False,
    progress: Progress | None = None,
    into: str | None = None,
) -> MigrationReport:
    """Convert ``model``'s plaintext documents to the split form, in place, a batch at a time.

    Stop the application's writers to the collection first (``docs/migration.md``): a
    document changed between its read and its rewrite would be rewritten as it was read.
    Running it again is safe at any time: it converts what is left, and does nothing once
    every document is split. The crash points and why each is safe are in
    ``privata_mongo.core.flows.migrate``.

    Args:
        database: the application's database (``get_db()``) or a plain pymongo database.
        model: the mongoengine or Beanie model class whose collection is migrated.
        batch_size: documents per batch (one read, one bulk write per half).
        dry_run: read only: count the documents and classify their fields.
        progress: called after each batch with (done, total).
        into: a new collection to store the split form in (its identity rows in
            ``<into>__identity``) instead of rewriting the source, which is only read: every
            write is an insert, the fast path on FerretDB. Finish with ``swap_migration``.

    Raises:
        ConfigurationError: the model has no identity fields, or encryption is off.
        KeyUnavailable: a data key cannot be made (the master key, the KMS).
        WriteFailed: an identity row was refused (a unique identity field held twice).
    """
    if batch_size < 1:
        raise ConfigurationError("batch_size must be at least 1")
    if into is not None:
        from privata_mongo.migration._into import migrate_into

        return migrate_into(
            database, model, into, batch_size=batch_size, dry_run=dry_run, progress=progress
        )
    started = time.monotonic()
    target = _target(database, model)
    schema = target.schema
    plain = target.count(Side.CLINICAL, dict(flows.PLAINTEXT))
    already = target.count(Side.CLINICAL, dict(flows.MIGRATED))
    base = MigrationReport(
        schema.model, schema.collection, schema.identity_collection, dry_run, plain, already
    )
    ctx = target.context()
    if dry_run:
        return _dry_run(target, base, batch_size, progress, started)
    secret = target.run(flows.migration_secret(ctx, create=True))
    done = batches = 0
    if progress is not None:
        progress(0, plain)
    for rows in _batches(target, flows.PLAINTEXT, batch_size, ctx):
        _keep_checksums(target.ledger, rows, secret)
        converted: flows.Converted = target.audited("migrate", _converting(rows, secret))
        if not converted.documents:
            raise _stuck(schema, "migrate")
        done += converted.documents
        batches += 1
        logger.info("%s: migrated %d of %d documents", schema.model, done, plain)
        if progress is not None:
            progress(done, max(plain, done))
    return replace(base, migrated=done, batches=batches, seconds=time.monotonic() - started)


def _dry_run(
    target: _Target,
    base: MigrationReport,
    size: int,
    progress: Progress | None,
    started: float,
) -> MigrationReport:
    """Read every plaintext document once and count its fields by side; write nothing."""
    fields, batches = _count_fields(
        target.split._clinical, dict(flows.PLAINTEXT), target.schema, size, progress, base.plaintext
    )
    return replace(base, batches=batches, fields=fields, seconds=time.monotonic() - started)


def _count_fields(
    collection: Any,
    selector: dict[str, Any],
    schema: ModelSchema,
    size: int,
    progress: Progress | None,
    total: int,
) -> tuple[dict[str, FieldCount], int]:
    """The top-level fields of the rows ``selector`` matches, by side; and the batches read."""
    counts: dict[str, int] = {}
    seen = batches = 0
    for row in collection.find(selector, batch_size=size):
        for key in row:
            counts[key] = counts.get(key, 0) + 1
        seen += 1
        if seen % size == 0:
            batches += 1
            if progress is not None:
                progress(seen, total)
    if seen % size:
        batches += 1
        if progress is not None:
            progress(seen, total)
    fields = {key: FieldCount(schema.side_of(key).value, n) for key, n in sorted(counts.items())}
    return fields, batches


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What ``verify_migration`` compared; ``ok`` when every check held.

    Attributes:
        model: the model's name.
        source: documents the ledger holds a checksum of (the plaintext documents migrated).
        plaintext: documents of the collection still plaintext (0 once migrated).
        migrated: clinical rows in the split form.
        identity_rows: rows of the identity collection.
        duplicates: pseudonyms linked by more than one clinical row.
        missing: ledger entries whose document is not in the split form.
        sampled: documents joined back through the split collection and compared.
        mismatched: sampled documents whose checksum differs from the source's.
        mismatched_ids: their ``_id`` values (no other value).
    """

    model: str
    source: int
    plaintext: int
    migrated: int
    identity_rows: int
    duplicates: int
    missing: int
    sampled: int
    mismatched: int
    mismatched_ids: tuple[Any, ...] = ()

    @property
    def ok(self) -> bool:
        """Every check held: nothing left, nothing twice, nothing lost, samples equal."""
        return (
            self.plaintext == 0
            and self.duplicates == 0
            and self.missing == 0
            and self.mismatched == 0
            and self.identity_rows == self.migrated
            and self.source <= self.migrated
        )


def verify_migration(
    database: Any, model: Any, *, sample: int = 100, into: str | None = None
) -> VerifyReport:
    """Compare a migrated collection with its source: counts, and ``sample`` joined documents.

    The counts come from the server (no personal data read); the sample is read through the
    split collection, joined and decrypted as the application reads it (an audited ``read``),
    and each document's keyed checksum is compared with the one kept before it was migrated.
    ``into``: the collection a migration ``into`` wrote; it is compared with the source
    itself (its counts, and sampled source documents with the same ``_id`` joined there).

    Raises:
        ConfigurationError: the collection was never migrated (no migration key).
    """
    if into is not None:
        from privata_mongo.migration._into import verify_into

        return verify_into(database, model, into, sample=sample)
    target = _target(database, model)
    schema = target.schema
    secret = target.run(flows.migration_secret(target.context(), create=False))
    if secret is None:
        raise ConfigurationError(
            f"{schema.model}: '{schema.collection}' was never migrated (no migration key in "
            "the key vault); run privata-mongo migrate first"
        )
    clinical = target.split._clinical
    linked_twice = list(
        clinical.aggregate(
            [
                {"$match": dict(flows.MIGRATED)},
                {"$group": {"_id": f"${PSEUDONYM_FIELD}", "n": {"$sum": 1}}},
                {"$match": {"n": {"$gt": 1}}},
                {"$count": "duplicates"},
            ]
        )
    )
    ids = [row["_id"] for row in target.ledger.find({}, {"_id": 1})]
    present = 0
    for start in range(0, len(ids), 10_000):
        chunk = ids[start : start + 10_000]
        present += int(clinical.count_documents({"_id": {"$in": chunk}, **flows.MIGRATED}))
    # drawn in the process: not every server has ``$sample`` (FerretDB 1.x)
    chosen = secrets.SystemRandom().sample(ids, min(sample, len(ids)))
    sampled = []
    for start in range(0, len(chosen), 1000):
        sampled += list(target.ledger.find({"_id": {"$in": chosen[start : start + 1000]}}))
    expected = {repr(row["_id"]): bytes(row["h"]) for row in sampled}
    joined = list(target.split.find({"_id": {"$in": [row["_id"] for row in sampled]}}))
    found = {repr(d["_id"]): d for d in joined}
    mismatched = tuple(
        row["_id"]
        for row in sampled
        if repr(row["_id"]) not in found
        or flows.checksum(secret, found[repr(row["_id"])]) != expected[repr(row["_id"])]
    )
    return VerifyReport(
        model=schema.model,
        source=len(ids),
        plaintext=target.count(Side.CLINICAL, dict(flows.PLAINTEXT)),
        migrated=target.count(Side.CLINICAL, dict(flows.MIGRATED)),
        identity_rows=target.count(Side.IDENTITY, {}),
        duplicates=int(linked_twice[0]["duplicates"]) if linked_twice else 0,
        missing=len(ids) - present,
        sampled=len(sampled),
        mismatched=len(mismatched),
        mismatched_ids=mismatched,
    )


@dataclass(frozen=True, slots=True)
class UnmigrateReport:
    """What ``unmigrate`` did (counts only).

    Attributes:
        model: the model's name.
        restored: documents put back in plaintext form by this run.
        identity_rows: identity rows deleted (orphans of an interrupted run included).
        shredded: data keys destroyed (``shred``; 0 otherwise).
        batches: batches restored.
        seconds: wall-clock time of the run.
    """

    model: str
    restored: int
    identity_rows: int
    shredded: int
    batches: int
    seconds: float

    @property
    def rate(self) -> float:
        """Documents per second."""
        return self.restored / self.seconds if self.seconds else 0.0


def unmigrate(
    database: Any,
    model: Any,
    *,
    batch_size: int = DEFAULT_BATCH,
    shred: bool = False,
    progress: Progress | None = None,
    into: str | None = None,
) -> UnmigrateReport:
    """Put ``model``'s documents back in plaintext form, byte for byte as they were stored.

    Each document is joined as the application reads it (``join`` restores the stored field
    order and BSON types) and replaces its clinical row; the identity rows go after. Run it
    again after a kill: it restores what is left and removes the identity rows an interrupted
    batch left behind. The audit trail stays (it is the record of past processing); the ledger
    is dropped. The data keys stay in the key vault unless ``shred``: backups taken while the
    library was in use hold sealed identity rows that only those keys can read.

    ``into``: insert the plaintext documents into that new collection instead, reading the
    split collections only (the fast path on FerretDB); they stay, as do the keys, until the
    operator drops them (``docs/migration.md``). ``shred`` does not apply then.

    Raises:
        ConfigurationError: ``shred`` with ``into``, or ``into`` names the split collections.
        KeyUnavailable: a data key is missing without a tombstone, or the master key is wrong.
    """
    if batch_size < 1:
        raise ConfigurationError("batch_size must be at least 1")
    if into is not None:
        if shred:
            raise ConfigurationError(
                "unmigrate --into keeps the split collections, so their keys stay: run it "
                "without --shred, check the new collection, then shred (privata-mongo keys)"
            )
        from privata_mongo.migration._into import unmigrate_into

        return unmigrate_into(database, model, into, batch_size=batch_size, progress=progress)
    started = time.monotonic()
    target = _target(database, model)
    schema = target.schema
    total = target.count(Side.CLINICAL, dict(flows.MIGRATED))
    ctx = target.context()
    restored = deleted = batches = shredded = 0
    if progress is not None:
        progress(0, total)
    for rows in _batches(target, flows.MIGRATED, batch_size, ctx):
        done: flows.Converted = target.audited("unmigrate", _restoring(rows, shred))
        if not done.documents:
            raise _stuck(schema, "unmigrate")
        restored += done.documents
        deleted += done.identity_rows
        batches += 1
        shredded += len(done.pseudonyms) if shred else 0
        if progress is not None:
            progress(restored, max(total, restored))
    deleted += target.run(flows.remove_orphans(ctx, shred=shred))
    if shred:
        target.run(flows.forget_migration(ctx))
    target.ledger.drop()
    return UnmigrateReport(
        schema.model, restored, deleted, shredded, batches, time.monotonic() - started
    )


def swap_migration(database: Any, model: Any, *, into: str, sample: int = 100) -> SwapReport:
    """After ``migrate(..., into=into)``: the split form takes the source's name.

    ``verify_migration(..., into=into)`` must pass first (it is run here, ``sample`` joins).
    The source's indexes are created on the split collections, then the source is renamed
    ``<source>__plaintext``: a backup in the clear, kept until the operator drops it; and the
    target takes the source's name. Returns a ``SwapReport``.

    Raises:
        ConfigurationError: the verification failed (nothing is renamed), or the backup's
            name is taken.
    """
    from privata_mongo.migration._into import swap

    return swap(database, model, into, sample=sample)
