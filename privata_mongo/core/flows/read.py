"""Read flows: find, count, distinct and aggregate over a split collection.

Whenever the filter, sort and projection allow it, the clinical collection does the work with
the server's own semantics (filter, sort, skip, limit, projection), and identity rows are read
once per batch of results. Only what the server cannot evaluate — a sort on an identity field,
a ``distinct`` of one — is done in the process, bounded by the scan limit. Pipelines are in
``flows.aggregate``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import cmp_to_key
from typing import Any

from privata_mongo.core.mql.values import (
    compare,
    equal,
    lookup,
    sort_directions,
    sort_documents,
)
from privata_mongo.core.ops import (
    Count,
    Distinct,
    Document,
    Emit,
    EstimatedCount,
    FetchAll,
    Find,
    Flow,
    NextBatch,
    Query,
)
from privata_mongo.core.projection import ProjectionPlan, plan_projection
from privata_mongo.core.routing import needs_process_sort, plan_filter
from privata_mongo.core.schema import PSEUDONYM_FIELD, Side, top_field
from privata_mongo.core.split import join

from .common import (
    Kept,
    chunks,
    fetch_identities,
    join_batch,
    joined_projection,
    linked,
    refuse_collation,
    resolve,
    stamped,
    too_many,
    touched,
)
from .context import Context

__all__ = [
    "count",
    "distinct",
    "estimated_count",
    "find",
    "ordered_ids",
    "read_by_ids",
    "select_one",
]


def find(ctx: Context, query: Query) -> Flow[None]:
    """Stream the documents a native ``find`` would return, in the same order, as batches."""
    plan = plan_projection(ctx.schema, query.projection)
    kept = Kept(joined_projection(plan)) if plan.fetch_identity else None
    filter_plan = plan_filter(ctx.schema, query.filter)
    clinical_filter = yield from resolve(ctx, filter_plan, query.options, kept)
    if needs_process_sort(ctx.schema, query.sort):
        yield from _find_sorted_in_process(ctx, query, clinical_filter, plan)
        return
    size = query.batch_size or ctx.batch_size
    if query.limit:
        size = min(size, abs(query.limit))
    clinical_projection = stamped(plan.clinical) if plan.fetch_identity else plan.clinical
    handle = yield from Find(
        Side.CLINICAL, replace(query, filter=clinical_filter, projection=clinical_projection)
    )
    emitted = 0
    while True:
        batch: list[Document] = yield from NextBatch(handle, size)
        if batch:
            joined = yield from join_batch(ctx, batch, plan, versions=True, kept=kept)
            yield Emit(tuple(joined), linked(batch))
        emitted += len(batch)
        if len(batch) < size or (query.limit and emitted >= abs(query.limit)):
            return


def ordered_ids(
    ctx: Context,
    clinical_filter: Mapping[str, Any],
    sort: Sequence[tuple[str, Any]],
    skip: int,
    limit: int,
    options: Mapping[str, Any],
) -> Flow[list[Any]]:
    """The ids of a page sorted on identity fields, ordered in the process.

    Only the sort keys of at most ``scan_limit`` documents are read; ties keep natural order,
    as the server's sort does for a collection scan.
    """
    schema = ctx.schema
    directions = sort_directions(sort)
    refuse_collation(
        ctx, (top_field(p) for p, _ in sort if schema.side_of(p) is Side.IDENTITY), options
    )
    keys = {"_id": 1, PSEUDONYM_FIELD: 1}
    keys.update({p: 1 for p, _ in sort if schema.side_of(p) is Side.CLINICAL})
    rows = yield from FetchAll(
        Side.CLINICAL,
        Query(clinical_filter, projection=keys, limit=schema.scan_limit + 1, options=options),
    )
    if len(rows) > schema.scan_limit:
        fields = {top_field(p) for p, _ in sort if schema.side_of(p) is Side.IDENTITY}
        raise too_many(ctx, "a sort", fields)
    identity_keys = {p: 1 for p, _ in sort if schema.side_of(p) is Side.IDENTITY}
    identities = yield from fetch_identities(
        ctx, [r[PSEUDONYM_FIELD] for r in rows if PSEUDONYM_FIELD in r], identity_keys
    )
    keyed = [join(r, identities.get(r.get(PSEUDONYM_FIELD, "")), schema) for r in rows]
    ordered = sort_documents(keyed, directions)
    end = None if not limit else skip + abs(limit)
    return [d["_id"] for d in ordered[skip:end]]


def read_by_ids(
    ctx: Context, ids: Sequence[Any], plan: ProjectionPlan, batch_size: int = 0
) -> Flow[tuple[list[Document], tuple[str, ...]]]:
    """Read documents by id with a projection plan, in the order of ``ids``.

    Returns the documents and the data subjects they belong to (read with their rows).
    """
    projection = dict(stamped(plan.clinical) or {}) if plan.clinical is not None else None
    hide_id = plan.hide_id
    if projection is not None and projection.get("_id", 1) in (0, False):
        projection.pop("_id")  # needed to restore the order; removed again after the join
        hide_id = True
    out: list[Document] = []
    subjects: list[str] = []
    for chunk in chunks(ids, batch_size or ctx.batch_size):
        found = yield from FetchAll(
            Side.CLINICAL, Query({"_id": {"$in": list(chunk)}}, projection=projection)
        )
        by_id = {repr(d["_id"]): d for d in found}
        batch = [by_id[repr(i)] for i in chunk if repr(i) in by_id]
        out.extend((yield from join_batch(ctx, batch, replace(plan, hide_id=hide_id), True)))
        subjects.extend(linked(batch))
    return out, tuple(subjects)


def select_one(
    ctx: Context,
    clinical_filter: Mapping[str, Any],
    sort: Sequence[tuple[str, Any]],
    options: Mapping[str, Any],
) -> Flow[Document | None]:
    """The full clinical row a ``find_one_and_*`` would act on, or ``None``."""
    if needs_process_sort(ctx.schema, sort):
        ids = yield from ordered_ids(ctx, clinical_filter, sort, 0, 1, options)
        if not ids:
            return None
        clinical_filter = {"_id": ids[0]}
        sort = ()
    rows = yield from FetchAll(
        Side.CLINICAL, Query(clinical_filter, sort=tuple(sort), limit=1, options=options)
    )
    return rows[0] if rows else None


def _find_sorted_in_process(
    ctx: Context, query: Query, clinical_filter: Mapping[str, Any], plan: ProjectionPlan
) -> Flow[None]:
    """Sort on identity fields: order the ids in the process, then read the page natively."""
    ids = yield from ordered_ids(
        ctx, clinical_filter, query.sort, query.skip, query.limit, query.options
    )
    for chunk in chunks(ids, query.batch_size or ctx.batch_size):
        documents, subjects = yield from read_by_ids(ctx, chunk, plan)
        if documents:
            yield Emit(tuple(documents), subjects)


def count(ctx: Context, filter: Mapping[str, Any], options: Mapping[str, Any]) -> Flow[int]:
    """``count_documents`` with native semantics for skip, limit, hint and collation."""
    clinical_filter = yield from resolve(ctx, plan_filter(ctx.schema, filter), options)
    counted: int = yield from Count(Side.CLINICAL, clinical_filter, options)
    return counted


def estimated_count(ctx: Context, options: Mapping[str, Any]) -> Flow[int]:
    """``estimated_document_count``: one clinical document per logical document.

    Under restriction or objection the server's estimate would count subjects the
    operation cannot see, so the visible documents are counted instead; so are they in a
    ``within_regions`` block, whose clause the residency router adds to the count (an exact
    count of the pinned regions' subjects, not metadata: it reads the collection or an index
    on the region).
    """
    rules = ctx.restriction
    visible = None if rules is None else rules.visible
    if visible is None and ctx.residency is not None and ctx.residency.pinned:
        visible = {}
    if visible is not None:
        exact: int = yield from Count(Side.CLINICAL, dict(visible), options)
        return exact
    counted: int = yield from EstimatedCount(Side.CLINICAL, options)
    return counted


def distinct(
    ctx: Context, key: str, filter: Mapping[str, Any] | None, options: Mapping[str, Any]
) -> Flow[list[Any]]:
    """``distinct``: server-side for clinical keys, in the process for identity keys.

    Values come sorted in BSON comparison order, as the server returns them (MongoDB and
    FerretDB alike), arrays contributing their elements, duplicates compared with MongoDB's
    equality (the first seen of equal values is kept).
    """
    schema = ctx.schema
    clinical_filter = yield from resolve(ctx, plan_filter(schema, filter), options)
    if schema.side_of(key) is Side.CLINICAL:
        values: list[Any] = yield from Distinct(Side.CLINICAL, key, clinical_filter, options)
        return values
    refuse_collation(ctx, [top_field(key)], options)
    rows = yield from FetchAll(
        Side.CLINICAL,
        Query(
            clinical_filter,
            projection={PSEUDONYM_FIELD: 1, "_id": 0},
            limit=schema.scan_limit + 1,
            options=options,
        ),
    )
    if len(rows) > schema.scan_limit:
        raise too_many(ctx, "distinct", {top_field(key)})
    pseudonyms = [r[PSEUDONYM_FIELD] for r in rows if PSEUDONYM_FIELD in r]
    # every value is read to be compared, so every subject scanned is revealed, not only the
    # owners of the values returned
    yield from touched(ctx, linked(rows), {top_field(key)}, effect="read")
    identities = yield from fetch_identities(ctx, pseudonyms, {key: 1})
    values = [
        item
        for pseudonym in pseudonyms
        if (identity := identities.get(pseudonym))
        for value in lookup(identity, key)
        for item in (value if isinstance(value, list) else [value])
    ]
    found: list[Any] = []
    for item in sorted(values, key=cmp_to_key(compare)):  # stable: the first seen stays
        if not found or not equal(item, found[-1]):
            found.append(item)
    return found
