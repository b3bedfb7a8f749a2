"""Updates that touch identity fields: applied in the process, written by compare-and-swap.

The identity half of such an update cannot run on the server (its values are encrypted), so
the documents are read and joined, the update is applied to them here with the server's
semantics, and each new identity row replaces the old one only if its revision token ``_rev``
is still the one read. The clinical half then runs on the server; if it fails, the identity
rows written are restored. Both halves are written under the document's write lease
(``flows.lease``): concurrent updates of one document wait for each other instead of failing,
and each applies to the state the previous one left, as on a server that updates a document
atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from privata_mongo.core import cache
from privata_mongo.core.failures import WriteFailed
from privata_mongo.core.limits import grew_too_large
from privata_mongo.core.mql.update import CompiledUpdate
from privata_mongo.core.ops import Document, FetchAll, Flow, Insert, Query, ReplaceMany, Update
from privata_mongo.core.rights.restriction import RESTRICTION_FIELD
from privata_mongo.core.routing import split_update
from privata_mongo.core.schema import (
    LEASE_FIELD,
    PSEUDONYM_FIELD,
    REVISION_FIELD,
    VERSION_FIELD,
    Side,
)
from privata_mongo.core.split import identity_values, join, split_for_storage

from .common import fetch_identities, linked, seal, touched, unseal
from .context import Context
from .lease import backoff, deadline, release, take

__all__ = [
    "WRITE_CONFLICT",
    "Rewrite",
    "restore_identities",
    "write_documents",
    "write_identities",
]

logger = logging.getLogger(__name__)

WRITE_CONFLICT = 112


@dataclass(frozen=True, slots=True)
class Rewrite:
    """One document of an update: its clinical row, old identity row, and new logical form."""

    clinical: Mapping[str, Any]
    old: Document | None
    new: Document
    modified: bool


def _apply_all(
    ctx: Context,
    batch: Sequence[Mapping[str, Any]],
    identities: Mapping[str, Document],
    compiled: CompiledUpdate,
    filter: Mapping[str, Any],
    options: Mapping[str, Any],
) -> tuple[list[Rewrite], WriteFailed | None]:
    """Apply the update in the process, stopping at the first document the server would reject."""
    planned: list[Rewrite] = []
    for document in batch:
        old = identities.get(document.get(PSEUDONYM_FIELD, ""))
        try:
            applied = compiled.apply(
                join(document, old, ctx.schema),
                now=ctx.now(),
                array_filters=options.get("array_filters"),
                query=filter,
            )
        except WriteFailed as exc:
            return planned, exc
        too_large = grew_too_large(applied.document)
        if too_large is not None:
            return planned, too_large
        planned.append(Rewrite(document, old, applied.document, applied.modified))
    return planned, None


def write_documents(
    ctx: Context,
    batch: Sequence[Mapping[str, Any]],
    compiled: CompiledUpdate,
    update: Mapping[str, Any],
    clinical_filter: Mapping[str, Any],
    filter: Mapping[str, Any],
    options: Mapping[str, Any],
) -> Flow[int]:
    """Apply an update that touches identity fields to a batch of clinical documents.

    The whole update is applied in the process to each joined document first: an update the
    server would reject fails here before anything is written, and the documents before the
    failing one are still written (as ``update_many`` does natively). A document whose
    identity half changes is written under its write lease (``lease``), read afresh once
    held, so concurrent updates of one document apply one after the other; documents another
    writer holds are updated once it releases them. Returns how many documents changed.
    """
    identity_update, clinical_update = split_update(ctx.schema, update)
    if not identity_update:
        return (
            yield from _seeding_only(
                ctx, batch, compiled, clinical_update, clinical_filter, filter, options
            )
        )
    until = deadline(ctx)
    pending = list(batch)
    modified = attempt = 0
    while True:
        done, pending = yield from _leased(
            ctx, pending, compiled, clinical_update, clinical_filter, filter, options
        )
        modified += done
        if not pending:
            return modified
        logger.debug(
            "%s: %d document(s) held by another writer; waiting", ctx.schema.model, len(pending)
        )
        yield from backoff(ctx, attempt, until)
        attempt += 1


def _seeding_only(
    ctx: Context,
    batch: Sequence[Mapping[str, Any]],
    compiled: CompiledUpdate,
    clinical_update: Mapping[str, Any],
    clinical_filter: Mapping[str, Any],
    filter: Mapping[str, Any],
    options: Mapping[str, Any],
) -> Flow[int]:
    """An update whose identity fields only seed an upsert: the existing rows keep theirs."""
    pseudonyms = [d[PSEUDONYM_FIELD] for d in batch if PSEUDONYM_FIELD in d]
    olds = yield from fetch_identities(ctx, pseudonyms)
    planned, error = _apply_all(ctx, batch, olds, compiled, filter, options)
    if clinical_update and planned:
        yield from touched(ctx, linked(p.clinical for p in planned))
        yield Update(
            Side.CLINICAL,
            {"$and": [{"_id": {"$in": [p.clinical["_id"] for p in planned]}}, clinical_filter]},
            clinical_update,
            True,
            False,
            options,
        )
    if error is not None:
        raise error
    return sum(p.modified for p in planned)


def _leased(
    ctx: Context,
    batch: Sequence[Mapping[str, Any]],
    compiled: CompiledUpdate,
    clinical_update: Mapping[str, Any],
    clinical_filter: Mapping[str, Any],
    filter: Mapping[str, Any],
    options: Mapping[str, Any],
) -> Flow[tuple[int, list[Mapping[str, Any]]]]:
    """One round: lease what is free, update it, release; returns the count and the rest."""
    held = yield from take(ctx, [d[PSEUDONYM_FIELD] for d in batch if PSEUDONYM_FIELD in d])
    later = [d for d in batch if d.get(PSEUDONYM_FIELD) in held.busy]
    ready = [d for d in batch if d.get(PSEUDONYM_FIELD) not in held.busy]
    try:
        unsealed = yield from unseal(ctx, list(held.rows.values()))
        olds = {row["_id"]: row for row in unsealed}
        planned, error = _apply_all(ctx, ready, olds, compiled, filter, options)
        conflicts, swapped = yield from write_identities(ctx, planned, held.lease)
        if conflicts:
            # Our lease expired and another writer took the row over: update it again later.
            lost = {id(c) for c in conflicts}
            planned = [p for p in planned if id(p.clinical) not in lost]
            later.extend(conflicts)
        # Documents whose identity row was replaced carry this writer's version on both halves
        # (``VERSION_FIELD``): a reader that finds the halves' versions unequal read them
        # across an update, and reads again.
        stamped = [p for p in planned if p.clinical.get(PSEUDONYM_FIELD) in swapped]
        unstamped = [p for p in planned if p.clinical.get(PSEUDONYM_FIELD) not in swapped]
        if stamped:
            stamp = {**clinical_update}
            stamp["$set"] = {**stamp.get("$set", {}), VERSION_FIELD: held.owner}
            yield from _clinical_half(ctx, stamped, stamp, clinical_filter, options, held.owner)
        if clinical_update and unstamped:
            yield from _clinical_half(ctx, unstamped, clinical_update, clinical_filter, options)
        planned = stamped + unstamped
    except Exception:
        yield from release(ctx, held)
        raise
    yield from release(ctx, held)
    if error is not None:
        raise error
    return sum(p.modified for p in planned), later


def _clinical_half(
    ctx: Context,
    planned: Sequence[Rewrite],
    clinical_update: Mapping[str, Any],
    clinical_filter: Mapping[str, Any],
    options: Mapping[str, Any],
    stamp: str | None = None,
) -> Flow[None]:
    """The clinical part on the server; the identity rows are restored if it fails.

    A single document that no longer matches the filter (a concurrent clinical update changed
    it after it was selected) is left as it was, identity half included, as the server leaves
    a document its update no longer matches.

    ``stamp``: the version the update writes on each row. If the update raises without a write
    error (a reply lost), the rows are read back: when every one carries the stamp, the update
    was applied and the operation goes on as if the reply had come. Otherwise the error is
    raised and the identity rows keep the new values; the application's retry applies the
    update to them, which changes the identity half no further.
    """
    ids = [p.clinical["_id"] for p in planned]
    yield from touched(ctx, linked(p.clinical for p in planned))
    try:
        outcome = yield from Update(
            Side.CLINICAL,
            {"$and": [{"_id": {"$in": ids}}, clinical_filter]},
            clinical_update,
            True,
            False,
            options,
        )
    except WriteFailed:
        yield from restore_identities(ctx, planned)
        raise
    except Exception:
        if stamp is None or not (yield from _stamped(ids, stamp)):
            raise
        return
    if len(planned) == 1 and outcome.matched == 0:
        yield from restore_identities(ctx, planned)


def _stamped(ids: Sequence[Any], stamp: str) -> Flow[bool]:
    """Whether every clinical row of ``ids`` carries the version ``stamp`` (False if unknown)."""
    try:
        rows = yield from FetchAll(
            Side.CLINICAL,
            Query({"_id": {"$in": list(ids)}, VERSION_FIELD: stamp}, projection={"_id": 1}),
        )
    except Exception:
        return False
    return len(rows) == len(ids)


def _identity_row(ctx: Context, pseudonym: str, document: Mapping[str, Any]) -> Document:
    identity, _ = split_for_storage(document, ctx.schema, pseudonym, ctx.new_revision())
    return identity


def _changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> set[str]:
    """Names of the identity fields whose values differ between two plain identity rows."""
    before, after = identity_values(old), identity_values(new)
    keys = before.keys() | after.keys()
    return {k for k in keys if k not in before or k not in after or before[k] != after[k]}


def _kept_marker(row: Document, clinical: Mapping[str, Any]) -> Document:
    """The new identity row with the subject's restriction marker, which a rewrite keeps.

    The clinical row carries the same marker (``core.rights.restriction``), so it is copied
    from there: the identity row was read with only the fields the update needed.
    """
    if RESTRICTION_FIELD not in clinical:
        return row
    return {**row, RESTRICTION_FIELD: clinical[RESTRICTION_FIELD]}


def write_identities(
    ctx: Context, planned: Sequence[Rewrite], lease: Mapping[str, Any] | None = None
) -> Flow[tuple[list[Mapping[str, Any]], frozenset[str]]]:
    """Compare-and-swap the new identity rows.

    Returns the clinical rows that conflicted and the pseudonyms whose rows were replaced.
    ``lease``: the writer's lease, kept on each replaced row (the clinical half is still to
    be written), whose owner token becomes the row's version (``VERSION_FIELD``). The subjects
    written and the names of the fields that changed are stated (``touched``): compared here,
    on the plain rows, they are exact even when the stored rows are sealed.
    """
    swaps: list[tuple[Mapping[str, Any], Document, Mapping[str, Any]]] = []
    changed: set[str] = set()
    inserts: list[Document] = []
    for p in planned:
        pseudonym = p.clinical.get(PSEUDONYM_FIELD)
        if pseudonym is None:
            continue
        row = _identity_row(ctx, pseudonym, p.new)
        if p.old is None:
            inserts.append(row)
        elif identity_values(p.old) != identity_values(row):
            swaps.append(
                ({"_id": pseudonym, REVISION_FIELD: p.old.get(REVISION_FIELD)}, row, p.clinical)
            )
            changed |= _changed(p.old, row)
    if inserts:
        sealed = yield from seal(ctx, inserts)
        if (too_large := grew_too_large(*sealed)) is not None:
            raise too_large
        outcome = yield from Insert(Side.IDENTITY, tuple(sealed), False)
        stored = [row for i, row in enumerate(inserts) if i not in outcome.failed()]
        yield from touched(
            ctx, [row["_id"] for row in stored], {k for row in stored for k in identity_values(row)}
        )
    if not swaps:
        return [], frozenset()
    rows = yield from seal(ctx, [row for _, row, _ in swaps])
    if (too_large := grew_too_large(*rows)) is not None:
        raise too_large  # before any row is swapped
    if lease is not None:
        rows = [{**row, LEASE_FIELD: lease, VERSION_FIELD: lease["o"]} for row in rows]
    rows = [_kept_marker(row, c) for row, (_, _, c) in zip(rows, swaps, strict=True)]
    matched: int = yield from ReplaceMany(
        Side.IDENTITY, tuple((f, r) for (f, _, _), r in zip(swaps, rows, strict=False))
    )
    yield from cache.forget_rows(ctx, [f["_id"] for f, _, _ in swaps])
    yield from touched(ctx, [f["_id"] for f, _, _ in swaps], changed)
    names = frozenset(f["_id"] for f, _, _ in swaps)
    if matched == len(swaps):
        return [], names
    written = yield from FetchAll(
        Side.IDENTITY,
        Query({"_id": {"$in": [f["_id"] for f, _, _ in swaps]}}, projection={REVISION_FIELD: 1}),
    )
    revisions = {w["_id"]: w.get(REVISION_FIELD) for w in written}
    lost = [(f["_id"], c) for f, row, c in swaps if revisions.get(f["_id"]) != row[REVISION_FIELD]]
    return [c for _, c in lost], names - {p for p, _ in lost}


def restore_identities(ctx: Context, planned: Sequence[Rewrite]) -> Flow[None]:
    """Undo ``_write_identities`` after the clinical half failed."""
    restore: list[tuple[Mapping[str, Any], Document]] = []
    for p in planned:
        pseudonym = p.clinical.get(PSEUDONYM_FIELD)
        if pseudonym is None or p.old is None:
            continue
        restore.append(({"_id": pseudonym}, {**p.old, REVISION_FIELD: ctx.new_revision()}))
    if restore:
        sealed = yield from seal(ctx, [row for _, row in restore])
        yield ReplaceMany(Side.IDENTITY, tuple(zip((f for f, _ in restore), sealed, strict=False)))
        yield from cache.forget_rows(ctx, [f["_id"] for f, _ in restore])
