"""Write flows: insert, update, replace and delete over a split collection.

The ordering rules, each chosen so that a crash between two writes never leaves personal data
that cannot be found and erased:

* insert: identity first, then clinical; a clinical failure deletes the identity rows it
  orphaned, so a logical document is written whole or not at all.
* update/replace touching identity fields: the new identity document is computed in the process
  (where encrypted values can be read), written with a compare-and-swap on its revision token,
  then the clinical part runs on the server; a clinical failure restores the identity rows.
* delete: clinical first, then identity and the key's shred, so no read finds half a
  document; what remains after a crash is an identity row no read reaches, which the
  recovery sweeper deletes (with its key) from the delete's intent.

Updates that touch no identity field and need no identity seed run on the server in one call,
with the server's own semantics and atomicity. Such a call names nobody, so when the operation
is audited the flow first reads the pseudonyms its filter selects (unless it already holds the
target) and states them (``touched``) before the update runs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

from privata_mongo.core import cache
from privata_mongo.core.crypto.keys import discard_keys, shred_deleted
from privata_mongo.core.failures import DUPLICATE_KEY, BulkWriteFailed, WriteFailed, WriteFailure
from privata_mongo.core.limits import grew_too_large, too_large_to_insert
from privata_mongo.core.mql.update import (
    CompiledUpdate,
    compile_update,
    replace_document,
    upsert_seed,
)
from privata_mongo.core.ops import (
    Delete,
    Document,
    FetchAll,
    Find,
    Flow,
    Insert,
    InsertOutcome,
    Located,
    NextBatch,
    Query,
    Replace,
    Update,
    UpdateOutcome,
)
from privata_mongo.core.residency import region_of
from privata_mongo.core.rights.restriction import RESTRICTION_FIELD
from privata_mongo.core.routing import FilterPlan, plan_filter, references_identity
from privata_mongo.core.schema import (
    PSEUDONYM_FIELD,
    REGION_FIELD,
    REVISION_FIELD,
    VERSION_FIELD,
    Side,
)
from privata_mongo.core.split import identity_values, join, split_for_storage
from privata_mongo.errors import UnsupportedQuery

from .common import chunks, intends, linked, resolve, seal, touched, unfinished, unseal
from .context import Context
from .identity_writes import (
    WRITE_CONFLICT,
    Rewrite,
    restore_identities,
    write_documents,
    write_identities,
)
from .lease import hold, release
from .read import select_one
from .size_gate import refuse_growth_past_the_limit
from .upsert_region import linked_update, place_upsert, placed_region

__all__ = [
    "delete",
    "delete_rows",
    "empty_identity",
    "insert",
    "insert_replacement",
    "insert_upserted",
    "read_options",
    "replace_one",
    "replace_target",
    "update",
    "upserted_document",
    "with_link",
    "write_documents",
]

logger = logging.getLogger(__name__)


def insert(
    ctx: Context,
    documents: Sequence[Mapping[str, Any]],
    ordered: bool,
    options: Mapping[str, Any] | None = None,
) -> Flow[None]:
    """Insert logical documents (each already has its ``_id``).

    ``options`` are the application's (``session``, ``comment``,
    ``bypass_document_validation`` …): the clinical insert carries them all, the identity
    insert the ones that concern the whole operation (``shared_options``).

    The pseudonyms are drawn here, in the process, so the subjects are known before anything
    is written: an audited insert states them first (``intends``). An insert whose reply was
    lost (a network error after the request was sent) is looked up rather than assumed
    failed: rows that landed are kept and the insert goes on, so the application sees the
    success it would have seen (``_insert_pairs``).

    The data keys made for subjects whose document was not written are deleted again: their
    pseudonyms are fresh, so no stored row can use them (``discard_keys``). Keys of rows whose
    fate is unknown (a raised error the lookup could not prove applied) are kept for the
    recovery sweeper.

    Raises:
        BulkWriteFailed: some documents were not written; the ones counted as inserted were
            written to both collections, the others to neither.
    """
    pairs = [
        split_for_storage(d, ctx.schema, ctx.new_pseudonym(), ctx.new_revision()) for d in documents
    ]
    ctx = yield from placed(ctx, documents, pairs)
    yield from intends(
        ctx,
        [identity["_id"] for identity, _ in pairs],
        {name for identity, _ in pairs for name in identity_values(identity)},
        "create",
    )
    sealed = yield from seal(ctx, [identity for identity, _ in pairs], fresh=True)
    keyed = [i for i, (identity, _) in enumerate(pairs) if identity_values(identity)]
    unsettled: set[int] = set()  # documents whose identity row may be stored after an error
    try:
        written, failures = yield from _insert_pairs(
            ctx, documents, pairs, sealed, ordered, options or {}, unsettled
        )
    except Exception:
        yield from discard_keys(ctx, [pairs[i][0]["_id"] for i in keyed if i not in unsettled])
        raise
    stored = set(written)
    yield from discard_keys(ctx, [pairs[i][0]["_id"] for i in keyed if i not in stored])
    if failures:
        reported = sorted(failures.values(), key=lambda f: f.index)
        raise BulkWriteFailed(tuple(reported[:1] if ordered else reported), len(written))


def placed(
    ctx: Context,
    documents: Sequence[Mapping[str, Any]],
    pairs: Sequence[tuple[Document, Document]],
) -> Flow[Context]:
    """Decide the region of each new subject, record it in the clinical halves and state it.

    Decided before anything is written, in the process, from the document as the application
    gave it (``core.residency.region_of``): an unknown region fails the insert with nothing
    stored. Without regions configured nothing changes and nothing is yielded.
    """
    if ctx.residency is None:
        return ctx
    placement: dict[str, str] = {}
    for document, (identity, clinical) in zip(documents, pairs, strict=True):
        region = region_of(ctx.residency, document)
        clinical[REGION_FIELD] = region
        placement[identity["_id"]] = region
    yield Located(placement)
    return replace(ctx, placement=placement)


def _landed(
    side: Side, rows: Sequence[Mapping[str, Any]], options: Mapping[str, Any]
) -> Flow[list[int] | None]:
    """Which of ``rows`` are stored (indexes), after a write whose reply did not come back.

    A row counts when a stored one has its ``_id`` (and, on the clinical side, its link, so a
    document another writer stored under the same ``_id`` is not taken for it). ``None`` if the
    lookup fails too: the write's fate stays unknown.
    """
    if not rows:
        return []
    projection = {"_id": 1, PSEUDONYM_FIELD: 1}
    try:
        found = yield from FetchAll(
            side,
            Query(
                {"_id": {"$in": [r["_id"] for r in rows]}}, projection=projection, options=options
            ),
        )
    except Exception:
        return None
    keys = [(f.get("_id"), f.get(PSEUDONYM_FIELD)) for f in found]
    return [i for i, r in enumerate(rows) if (r["_id"], r.get(PSEUDONYM_FIELD)) in keys]


def _insert_pairs(
    ctx: Context,
    documents: Sequence[Mapping[str, Any]],
    pairs: Sequence[tuple[Document, Document]],
    sealed: Sequence[Mapping[str, Any]],
    ordered: bool,
    options: Mapping[str, Any],
    unsettled: set[int],
) -> Flow[tuple[list[int], dict[int, WriteFailure]]]:
    """Identity rows, then the clinical halves of those stored; the written and the failed.

    A write that raises (rather than reporting write errors) may have applied: the rows are
    looked up (``_landed``). If all of them landed, the insert goes on as if the reply had
    come. A row not found proves nothing: a server that was stalled (a pause, a full queue)
    still holds the request and may apply it after the lookup, so nothing is undone and no
    key is discarded; the error is raised, the rows' indexes go to ``unsettled``, and the
    operation's intent leaves them to the recovery sweeper, which looks once the request can
    no longer be in flight. Only an error that proves the write was refused (``ctx.refused``:
    a write error the server reported, a document the driver would not encode) is final, and
    the identity rows of the refused documents are removed at once.
    """
    # a document too large in any form fails alone, as the server fails it: neither half of
    # it is written, and no half of another document fails for it
    failures = {
        i: f
        for i, (document, row, (_, clinical)) in enumerate(
            zip(documents, sealed, pairs, strict=True)
        )
        if (f := too_large_to_insert(i, document, row, clinical)) is not None
    }
    candidates = _written(range(len(pairs)), failures, ordered)
    shared = shared_options(options)
    rows = tuple(sealed[i] for i in candidates)
    try:
        outcome = (
            (yield from Insert(Side.IDENTITY, rows, ordered, shared))
            if candidates
            else InsertOutcome()
        )
    except Exception as exc:
        if ctx.refused(exc):
            raise  # no row was stored: the caller discards their keys
        landed = yield from _landed(Side.IDENTITY, rows, shared)
        if landed is None or len(landed) < len(candidates):
            unsettled.update(candidates)
            raise
        outcome = InsertOutcome()
    identity_failed = {
        candidates[f.index]: replace(f, index=candidates[f.index]) for f in outcome.failures
    }
    failures.update(identity_failed)
    attempted = _written(candidates, identity_failed, ordered)
    yield from touched(
        ctx,
        [pairs[i][0]["_id"] for i in attempted],
        {name for i in attempted for name in identity_values(pairs[i][0])},
    )
    clinical_ok: list[int] = []
    if attempted:
        halves = tuple(pairs[i][1] for i in attempted)
        try:
            clinical: InsertOutcome = yield from Insert(Side.CLINICAL, halves, ordered, options)
        except Exception as exc:
            if ctx.refused(exc):  # no clinical half was stored: nor is any identity half kept
                yield from _undo(ctx, attempted, pairs, shared, unsettled)
                raise
            landed = yield from _landed(Side.CLINICAL, halves, shared)
            if landed is None or len(landed) < len(attempted):
                yield from touched(ctx, written=len(landed or ()))
                unsettled.update(attempted)
                raise
            clinical = InsertOutcome()
        for f in clinical.failures:
            failures[attempted[f.index]] = replace(f, index=attempted[f.index])
        clinical_ok = _written(
            attempted, {attempted[f.index]: f for f in clinical.failures}, ordered
        )
        yield from touched(ctx, written=len(clinical_ok))
    orphans = [i for i in attempted if i not in set(clinical_ok)]
    if orphans:
        logger.debug(
            "%s: removing %d identity row(s) whose clinical half failed",
            ctx.schema.model,
            len(orphans),
        )
        yield from _undo(ctx, orphans, pairs, shared, unsettled, reraise=True)
    return clinical_ok, failures


def _undo(
    ctx: Context,
    indexes: Sequence[int],
    pairs: Sequence[tuple[Document, Document]],
    options: Mapping[str, Any],
    unsettled: set[int],
    reraise: bool = False,
) -> Flow[None]:
    """Delete the identity rows of ``indexes`` (whose clinical half is not stored).

    If the delete fails, the rows stay (``unsettled``, for the recovery sweeper, which finds
    them through the operation's intent); the error is raised only with ``reraise``, since the
    caller is usually raising an error of its own.
    """
    if not indexes:
        return
    pseudonyms = [pairs[i][0]["_id"] for i in indexes]
    try:
        yield Delete(Side.IDENTITY, {"_id": {"$in": pseudonyms}}, multi=True, options=options)
    except Exception:
        unsettled.update(indexes)
        if reraise:
            raise


def insert_upserted(
    ctx: Context, document: Mapping[str, Any], options: Mapping[str, Any]
) -> Flow[None]:
    """Insert the document an upsert creates; a duplicate ``_id`` names its key, as natively.

    An upsert whose filter names an ``_id`` that exists but did not match (a stale revision in
    Beanie's ``save``) fails on that ``_id``. A server says so in the error's ``keyPattern``,
    which Beanie reads to raise ``RevisionIdWasChanged``; a backend that reports no key
    (mongomock) gets it here, from one read of that ``_id``, made only on such a failure.
    """
    try:
        yield from insert(ctx, [document], True, write_options(options))
    except BulkWriteFailed as exc:
        first = exc.failures[0] if exc.failures else None
        if first is None or first.code != DUPLICATE_KEY or "keyPattern" in first.details:
            raise
        found = yield from FetchAll(
            Side.CLINICAL, Query({"_id": document["_id"]}, projection={"_id": 1}, limit=1)
        )
        if not found:
            raise
        key = {"keyPattern": {"_id": 1}, "keyValue": {"_id": document["_id"]}}
        named = replace(first, details={**first.details, **key})
        raise BulkWriteFailed((named, *exc.failures[1:]), exc.inserted) from None


def _written(
    indexes: Sequence[int] | range, failures: Mapping[int, WriteFailure], ordered: bool
) -> list[int]:
    """Which of ``indexes`` a write stored: up to the first failure if ordered."""
    if ordered and failures:
        first = min(failures)
        return [i for i in indexes if i < first]
    return [i for i in indexes if i not in failures]


def with_link(update: Mapping[str, Any], pseudonym: str) -> dict[str, Any]:
    """The update plus ``$setOnInsert`` of a fresh link, for server-side upserts."""
    on_insert = dict(update.get("$setOnInsert", {}))
    on_insert[PSEUDONYM_FIELD] = pseudonym
    return {**update, "$setOnInsert": on_insert}


def empty_identity(ctx: Context, pseudonym: str) -> Flow[None]:
    """The identity row of a document the server created without identity values."""
    row = {"_id": pseudonym, REVISION_FIELD: ctx.new_revision()}
    sealed = yield from seal(ctx, [row])
    outcome = yield from Insert(Side.IDENTITY, tuple(sealed), True)
    if not outcome.failures:
        yield from touched(ctx, [pseudonym])


def update(
    ctx: Context,
    filter: Mapping[str, Any],
    update: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    multi: bool,
    upsert: bool,
    options: Mapping[str, Any],
    sort: tuple[tuple[str, Any], ...] = (),
) -> Flow[UpdateOutcome]:
    """``update_one``/``update_many`` with native results and counts.

    ``sort`` (``update_one`` only) picks which matching document is updated.
    """
    schema = ctx.schema
    plan = plan_filter(schema, filter)
    # An invalid update fails before any I/O, as on the server.
    compiled = compile_update(update) if isinstance(update, Mapping) else None
    clinical_filter = yield from resolve(ctx, plan, options)
    targets: tuple[str, ...] | None = None  # the subjects of the update, once known
    if sort and not multi:
        target = yield from select_one(ctx, clinical_filter, sort, read_options(options))
        if target is not None:
            clinical_filter = {"$and": [{"_id": target["_id"]}, clinical_filter]}
            targets = linked([target])
    if compiled is None or not isinstance(update, Mapping):
        stages = cast(Sequence[Mapping[str, Any]], update)
        flow = _pipeline_update(
            ctx, plan, filter, clinical_filter, stages, multi, upsert, options, targets
        )
        return (yield from flow)
    touches_identity = schema.touches_identity(compiled.fields)
    seeds_identity = upsert and bool(plan.identity_fields)
    if not touches_identity and not seeds_identity:
        yield from refuse_growth_past_the_limit(
            ctx, clinical_filter, filter, update, compiled, multi, options
        )
        pseudonym = ctx.new_pseudonym() if upsert else ""
        placement = yield from place_upsert(ctx, filter, compiled, options, pseudonym)
        region, refused = placed_region(placement)
        if refused is not None:  # an update only: refused if it would have created
            upsert, pseudonym = False, ""
        yield from _server_side_subjects(ctx, clinical_filter, multi, options, targets, pseudonym)
        outcome: UpdateOutcome = yield from Update(
            Side.CLINICAL,
            clinical_filter,
            linked_update(update, pseudonym, region) if upsert else update,
            multi,
            upsert,
            options,
        )
        if refused is not None and not outcome.matched:
            raise refused.error
        if outcome.upserted_id is not None:
            yield from empty_identity(ctx, pseudonym)
        return outcome
    # A single-document update reads its row at once; a multi-document one reads the ids
    # first (so no document is visited twice), then each batch of rows as it comes to it.
    single: list[Document] | None = None
    if multi:
        ids = yield from _target_ids(ctx, clinical_filter, options)
    else:
        single = yield from FetchAll(
            Side.CLINICAL, Query(clinical_filter, limit=1, options=read_options(options))
        )
        ids = [row["_id"] for row in single]
    matched = modified = 0
    for chunk in chunks(ids, ctx.batch_size):
        batch = single
        if batch is None:
            batch = yield from FetchAll(
                Side.CLINICAL, Query({"$and": [{"_id": {"$in": list(chunk)}}, clinical_filter]})
            )
        yield from intends(ctx, linked(batch))
        modified += yield from write_documents(
            ctx, batch, compiled, update, clinical_filter, filter, options
        )
        matched += len(batch)
    if matched or not upsert:
        return UpdateOutcome(matched, modified)
    document = upserted_document(ctx, filter, compiled, options)
    yield from insert_upserted(ctx, document, options)
    return UpdateOutcome(0, 0, document["_id"])


def _target_ids(
    ctx: Context, clinical_filter: Mapping[str, Any], options: Mapping[str, Any]
) -> Flow[list[Any]]:
    """The ids a multi-document update will touch, read first so none is visited twice."""
    rows = yield from FetchAll(
        Side.CLINICAL,
        Query(clinical_filter, projection={"_id": 1}, options=read_options(options)),
    )
    return [row["_id"] for row in rows]


def _server_side_subjects(
    ctx: Context,
    clinical_filter: Mapping[str, Any],
    multi: bool,
    options: Mapping[str, Any],
    targets: tuple[str, ...] | None,
    fresh: str = "",
) -> Flow[None]:
    """State the subjects a server-side update will change, reading them if not yet known.

    Only an audited operation pays for the read (one round trip, the price of an exact subject
    list); under concurrent writers it names the documents matched just before the update.
    ``fresh``: the pseudonym an upsert would give a new document, named in the intent too.
    """
    if not ctx.audit:
        return
    if targets is None:
        rows = yield from FetchAll(
            Side.CLINICAL,
            Query(
                clinical_filter,
                projection={PSEUDONYM_FIELD: 1, "_id": 0},
                limit=0 if multi else 1,
                options=read_options(options),
            ),
        )
        targets = linked(rows)
    yield from intends(ctx, [*targets, fresh] if fresh else targets)
    yield from touched(ctx, targets)


_READ_OPTIONS = {
    "hint": "hint",
    "collation": "collation",
    "session": "session",
    "let": "let",
    "comment": "comment",
    "maxTimeMS": "max_time_ms",
}
_SHARED_OPTIONS = ("session", "comment")
_WRITE_OPTIONS = ("session", "comment", "bypass_document_validation")
_DELETE_OPTIONS = ("session", "comment", "let", "bypass_document_validation")


def read_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options of a write that also shape the read selecting its targets (pymongo's names).

    The selection is the write's own query, so what the application said about that query
    (index hint, collation, variables, time limit) and about the operation (session,
    comment) applies to it.
    """
    return {name: options[k] for k, name in _READ_OPTIONS.items() if k in options}


def shared_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options about the whole operation, sent with the identity half's requests too."""
    return {k: options[k] for k in _SHARED_OPTIONS if k in options}


def write_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options of a write that an insert it makes (an upsert's document) also takes."""
    return {k: options[k] for k in _WRITE_OPTIONS if k in options}


def upserted_document(
    ctx: Context, filter: Mapping[str, Any], compiled: CompiledUpdate, options: Mapping[str, Any]
) -> Document:
    """The document an upsert inserts: the filter's equalities with the update applied."""
    applied = compiled.apply(
        upsert_seed(filter),
        now=ctx.now(),
        inserting=True,
        array_filters=options.get("array_filters"),
        query=filter,
    )
    document = applied.document
    if "_id" not in document:
        document = {"_id": ctx.new_object_id(), **document}
    return document


def _pipeline_update(
    ctx: Context,
    plan: FilterPlan,
    filter: Mapping[str, Any],
    clinical_filter: Mapping[str, Any],
    pipeline: Sequence[Mapping[str, Any]],
    multi: bool,
    upsert: bool,
    options: Mapping[str, Any],
    targets: tuple[str, ...] | None,
) -> Flow[UpdateOutcome]:
    """Aggregation-pipeline updates run on the server, so they may not read identity fields.

    ``targets``: the subjects of the update when the caller has already selected its target.
    """
    schema = ctx.schema
    if references_identity(schema, list(pipeline)) or (upsert and plan.identity_fields):
        raise UnsupportedQuery(
            f"{schema.model}: an update pipeline cannot read or write identity fields, which "
            "the server cannot see; use update operators ($set …) for those fields",
            model=schema.model,
        )
    pseudonym = ctx.new_pseudonym() if upsert else ""
    placement = yield from place_upsert(ctx, filter, None, options, pseudonym)
    region, refused = placed_region(placement)
    if refused is not None:  # an update only: refused if it would have created
        upsert, pseudonym = False, ""
    stages = linked_update(pipeline, pseudonym, region) if upsert else tuple(pipeline)
    yield from _server_side_subjects(ctx, clinical_filter, multi, options, targets, pseudonym)
    outcome: UpdateOutcome = yield from Update(
        Side.CLINICAL, clinical_filter, tuple(stages), multi, upsert, options
    )
    if refused is not None and not outcome.matched:
        raise refused.error
    if outcome.upserted_id is not None:
        yield from empty_identity(ctx, pseudonym)
    return outcome


def replace_one(
    ctx: Context,
    filter: Mapping[str, Any],
    replacement: Mapping[str, Any],
    upsert: bool,
    options: Mapping[str, Any],
    sort: tuple[tuple[str, Any], ...] = (),
) -> Flow[UpdateOutcome]:
    """``replace_one`` with native counts; ``sort`` picks which match is replaced."""
    clinical_filter = yield from resolve(ctx, plan_filter(ctx.schema, filter), options)
    found = yield from select_one(ctx, clinical_filter, sort, read_options(options))
    if found is not None:
        modified = yield from replace_target(ctx, found, replacement, options)
        return UpdateOutcome(1, int(modified))
    if not upsert:
        return UpdateOutcome(0, 0)
    document = yield from insert_replacement(ctx, filter, replacement, options)
    return UpdateOutcome(0, 0, document["_id"])


def insert_replacement(
    ctx: Context,
    filter: Mapping[str, Any],
    replacement: Mapping[str, Any],
    options: Mapping[str, Any] | None = None,
) -> Flow[Document]:
    """The upsert of a replacement: its ``_id`` comes from the filter when it names one."""
    document = replace_document(None, replacement)
    if "_id" not in document:
        seeded = upsert_seed(filter).get("_id")
        document = {"_id": seeded if seeded is not None else ctx.new_object_id(), **document}
    yield from insert_upserted(ctx, document, options or {})
    return document


def replace_target(
    ctx: Context,
    clinical: Mapping[str, Any],
    replacement: Mapping[str, Any],
    options: Mapping[str, Any],
) -> Flow[bool]:
    """Replace one logical document, keeping its pseudonym: it is the same data subject.

    Returns whether the document changed.
    """
    schema = ctx.schema
    pseudonym = clinical.get(PSEUDONYM_FIELD)
    yield from intends(ctx, [pseudonym] if isinstance(pseudonym, str) else [])
    held = (yield from hold(ctx, pseudonym)) if pseudonym else None
    try:
        rows = yield from unseal(ctx, list(held.rows.values()) if held else [])
        old_identity = rows[0] if rows else None
        before = join(clinical, old_identity, schema)
        after = replace_document(before, replacement)
        if pseudonym is None:
            pseudonym = ctx.new_pseudonym()
        new_identity, new_clinical = split_for_storage(after, schema, pseudonym, ctx.new_revision())
        if RESTRICTION_FIELD in clinical:  # a replacement keeps the subject's restriction
            new_clinical[RESTRICTION_FIELD] = clinical[RESTRICTION_FIELD]
        too_large = grew_too_large(after, new_clinical)  # the identity row: as it is sealed
        if too_large is not None:
            raise too_large
        planned = [Rewrite(clinical, old_identity, after, True)]
        if old_identity is None:
            sealed = yield from seal(ctx, [new_identity])
            if (too_large := grew_too_large(*sealed)) is not None:
                raise too_large
            outcome = yield from Insert(Side.IDENTITY, tuple(sealed), True)
            if not outcome.failures:
                yield from touched(ctx, [pseudonym], identity_values(new_identity))
        elif identity_values(old_identity) != identity_values(new_identity):
            conflicts, _ = yield from write_identities(ctx, planned, held.lease if held else None)
            if held is not None:
                new_clinical[VERSION_FIELD] = held.owner  # the version written with the row
            if conflicts:
                raise WriteFailed(
                    f"{schema.model}: the document's write lease expired during the replace "
                    "and another writer took it over; retry the operation, or raise "
                    "write_lease_ms",
                    WRITE_CONFLICT,
                )
        elif VERSION_FIELD in old_identity:
            new_clinical[VERSION_FIELD] = old_identity[VERSION_FIELD]  # the row is unchanged
        try:
            yield Replace(Side.CLINICAL, {"_id": clinical["_id"]}, new_clinical, False, options)
        except WriteFailed:
            if old_identity is not None:
                yield from restore_identities(ctx, planned)
            raise
    except Exception:
        if held is not None:
            yield from release(ctx, held)
        raise
    if held is not None:
        yield from release(ctx, held)
    yield from touched(ctx, [pseudonym])
    return before != after or list(before) != list(after)


def delete(
    ctx: Context, filter: Mapping[str, Any], multi: bool, options: Mapping[str, Any]
) -> Flow[int]:
    """``delete_one``/``delete_many``: the clinical rows first, then the identity rows."""
    clinical_filter = yield from resolve(ctx, plan_filter(ctx.schema, filter), options)
    handle = yield from Find(
        Side.CLINICAL,
        Query(
            clinical_filter,
            projection={"_id": 1, PSEUDONYM_FIELD: 1},
            limit=0 if multi else 1,
            options=read_options(options),
        ),
    )
    deleted = 0
    while True:
        batch: list[Document] = yield from NextBatch(handle, ctx.batch_size)
        if batch:
            deleted += yield from delete_rows(ctx, batch, options)
        if len(batch) < ctx.batch_size or not multi:
            return deleted


def delete_rows(
    ctx: Context, rows: Sequence[Mapping[str, Any]], options: Mapping[str, Any]
) -> Flow[int]:
    """Delete the given clinical rows, then their identity rows; returns the clinical count.

    The clinical rows go first, so no reader finds a clinical row whose identity row is gone:
    every read starts from the clinical collection, and a document whose clinical row is
    deleted is no longer found. A reader that read a clinical row just before it went finds
    the identity row (deleted after it), or finds it gone and reads the clinical row again
    (``common.join_batch``): either way the document is whole or absent, as natively.

    Each identity row deleted erases every identity field of its subject, and its data key
    is shredded (with a tombstone) right after it: a backup taken before the delete then no
    longer decrypts the subject, and keys do not pile up. A failure after the clinical delete
    (the identity delete or the shred) leaves identity rows no read reaches, named by the
    delete's intent: the recovery sweeper (``flows.recovery``) deletes them and shreds their
    keys. A failure of the clinical delete leaves the document whole for a retry.
    """
    pseudonyms = [r[PSEUDONYM_FIELD] for r in rows if PSEUDONYM_FIELD in r]
    shared = shared_options(options)
    yield from intends(ctx, pseudonyms, ctx.schema.identity_fields, "delete")
    # The rows were selected with the query's own options (hint, collation …); the delete by
    # id takes the ones about the operation.
    count: int = yield from Delete(
        Side.CLINICAL,
        {"_id": {"$in": [r["_id"] for r in rows]}},
        multi=True,
        options={k: v for k, v in options.items() if k in _DELETE_OPTIONS},
    )
    # From here the documents are gone for every reader, identity fields included.
    yield from touched(ctx, pseudonyms, ctx.schema.identity_fields)
    try:
        for chunk in chunks(pseudonyms, ctx.batch_size):
            yield Delete(Side.IDENTITY, {"_id": {"$in": list(chunk)}}, multi=True, options=shared)
            yield from cache.forget_rows(ctx, chunk)
            # Retention seam: a policy that keeps keys past a delete (a legal hold, a retention
            # period) would take its subjects out of ``chunk`` here. None exists yet, and no
            # other document can need these keys: a pseudonym names one logical document
            # (every insert draws a fresh one; the split overwrites a ``_pseudonym`` a
            # document brings).
            yield from shred_deleted(ctx, chunk)
    except Exception:
        # No retry can find these identity rows (it selects clinical rows): the intent
        # stays, whatever the error, and the sweeper completes the delete.
        yield from unfinished(ctx)
        raise
    return count
