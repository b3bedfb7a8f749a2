"""Updates that touch identity fields: applied in the process, written by compare-and-swap.

The identity half of such an update cannot run on the server (its values are encrypted), so
the documents are read and joined, the update is applied to them here with the server's
semantics, and each new identity row replaces the old one only if its revision token ``_rev``
is still the one read (a concurrent writer makes the swap miss, and the document is read and
updated again, at most ``CAS_ATTEMPTS`` times). The clinical half then runs on the server; if
it fails, the identity rows written are restored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from privata_mongo.core.failures import WriteFailed
from privata_mongo.core.limits import grew_too_large
from privata_mongo.core.mql.update import CompiledUpdate
from privata_mongo.core.ops import Document, FetchAll, Flow, Insert, Query, ReplaceMany, Update
from privata_mongo.core.routing import split_update
from privata_mongo.core.schema import PSEUDONYM_FIELD, REVISION_FIELD, Side
from privata_mongo.core.split import identity_values, join, split_for_storage

from .common import fetch_identities, linked, seal, touched
from .context import Context

__all__ = [
    "CAS_ATTEMPTS",
    "WRITE_CONFLICT",
    "Rewrite",
    "restore_identities",
    "write_documents",
    "write_identities",
]

logger = logging.getLogger(__name__)

WRITE_CONFLICT = 112
CAS_ATTEMPTS = 5


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
    failing one are still written (as ``update_many`` does natively). Identity rows that
    changed concurrently are re-read and the update re-applied, as the server retries a write
    conflict. Returns how many documents changed.
    """
    schema = ctx.schema
    identity_update, clinical_update = split_update(schema, update)
    pseudonyms = [d[PSEUDONYM_FIELD] for d in batch if PSEUDONYM_FIELD in d]
    olds = yield from fetch_identities(ctx, pseudonyms)
    planned, error = _apply_all(ctx, batch, olds, compiled, filter, options)
    if identity_update:
        pending = planned
        for _ in range(CAS_ATTEMPTS):
            conflicts = yield from write_identities(ctx, pending)
            if not conflicts:
                break
            logger.info(
                "%s: %d identity row(s) changed concurrently; re-applying the update",
                schema.model,
                len(conflicts),
            )
            fresh = yield from fetch_identities(ctx, [c[PSEUDONYM_FIELD] for c in conflicts])
            pending, retry_error = _apply_all(ctx, conflicts, fresh, compiled, filter, options)
            redone = {id(p.clinical): p for p in pending}
            conflicted = {id(c) for c in conflicts}
            planned = [
                redone.get(id(p.clinical), p)
                for p in planned
                if id(p.clinical) not in conflicted or id(p.clinical) in redone
            ]
            error = error or retry_error
        else:
            raise WriteFailed(
                f"{schema.model}: identity rows kept changing concurrently during the update; "
                "retry the operation",
                WRITE_CONFLICT,
            )
    if clinical_update and planned:
        ids = [p.clinical["_id"] for p in planned]
        yield from touched(ctx, linked(p.clinical for p in planned))
        try:
            yield Update(
                Side.CLINICAL,
                {"$and": [{"_id": {"$in": ids}}, clinical_filter]},
                clinical_update,
                True,
                False,
                options,
            )
        except WriteFailed:
            if identity_update:
                yield from restore_identities(ctx, planned)
            raise
    if error is not None:
        raise error
    return sum(p.modified for p in planned)


def _identity_row(ctx: Context, pseudonym: str, document: Mapping[str, Any]) -> Document:
    identity, _ = split_for_storage(document, ctx.schema, pseudonym, ctx.new_revision())
    return identity


def _changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> set[str]:
    """Names of the identity fields whose values differ between two plain identity rows."""
    before, after = identity_values(old), identity_values(new)
    keys = before.keys() | after.keys()
    return {k for k in keys if k not in before or k not in after or before[k] != after[k]}


def write_identities(ctx: Context, planned: Sequence[Rewrite]) -> Flow[list[Mapping[str, Any]]]:
    """Compare-and-swap the new identity rows; returns the clinical rows that conflicted.

    The subjects written and the names of the fields that changed are stated (``touched``):
    compared here, on the plain rows, they are exact even when the stored rows are sealed.
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
        return []
    rows = yield from seal(ctx, [row for _, row, _ in swaps])
    if (too_large := grew_too_large(*rows)) is not None:
        raise too_large  # before any row is swapped
    matched: int = yield from ReplaceMany(
        Side.IDENTITY, tuple((f, r) for (f, _, _), r in zip(swaps, rows, strict=False))
    )
    yield from touched(ctx, [f["_id"] for f, _, _ in swaps], changed)
    if matched == len(swaps):
        return []
    written = yield from FetchAll(
        Side.IDENTITY,
        Query({"_id": {"$in": [f["_id"] for f, _, _ in swaps]}}, projection={REVISION_FIELD: 1}),
    )
    revisions = {w["_id"]: w.get(REVISION_FIELD) for w in written}
    return [
        clinical for f, row, clinical in swaps if revisions.get(f["_id"]) != row[REVISION_FIELD]
    ]


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
