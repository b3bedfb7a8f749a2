"""``find_one_and_update``/``_replace``/``_delete`` over a split collection.

When neither the update, the upsert seed nor the sort reads identity fields, the server does
the whole operation atomically and only the returned document is joined. Otherwise the target
is selected first (sorting in the process if needed), written by the write flows, and the
returned document is read back with the application's projection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from privata_mongo.core.mql.update import compile_update
from privata_mongo.core.ops import Document, FindAndModify, Flow
from privata_mongo.core.projection import ProjectionPlan, plan_projection
from privata_mongo.core.routing import needs_process_sort, plan_filter, references_identity
from privata_mongo.core.schema import PSEUDONYM_FIELD, Side
from privata_mongo.errors import UnsupportedQuery

from .common import intends, join_batch, linked, resolve, touched
from .context import Context
from .read import read_by_ids, select_one
from .size_gate import refuse_growth_past_the_limit
from .upsert_region import linked_update, place_upsert, placed_region
from .write import (
    delete_rows,
    empty_identity,
    insert_replacement,
    insert_upserted,
    read_options,
    replace_target,
    upserted_document,
    write_documents,
)

__all__ = ["find_one_and_delete", "find_one_and_replace", "find_one_and_update"]

Sort = tuple[tuple[str, Any], ...]


def _keeping_link(projection: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A clinical projection that certainly returns the pseudonym link."""
    if projection is None:
        return None
    out = dict(projection)
    if any(v for k, v in out.items() if k != "_id" and not isinstance(v, Mapping)):
        out[PSEUDONYM_FIELD] = 1
    else:
        out.pop(PSEUDONYM_FIELD, None)
    return out


def _one(ctx: Context, plan: ProjectionPlan, ids: Sequence[Any]) -> Flow[Document | None]:
    """The document returned to the application; its subject is read with it."""
    documents, subjects = yield from read_by_ids(ctx, ids, plan)
    yield from touched(ctx, subjects, effect="read")
    return documents[0] if documents else None


def find_one_and_update(
    ctx: Context,
    filter: Mapping[str, Any],
    update: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    sort: Sort,
    upsert: bool,
    return_new: bool,
    projection: Mapping[str, Any] | None,
    options: Mapping[str, Any],
) -> Flow[Document | None]:
    """Update one document and return it before or after, joined and projected natively."""
    schema = ctx.schema
    plan = plan_filter(schema, filter)
    pplan = plan_projection(schema, projection)
    pipeline = not isinstance(update, Mapping)
    if pipeline and (
        references_identity(schema, list(update)) or (upsert and plan.identity_fields)
    ):
        raise UnsupportedQuery(
            f"{schema.model}: an update pipeline cannot read or write identity fields; use "
            "update operators ($set …) for those fields",
            model=schema.model,
        )
    compiled = None if not isinstance(update, Mapping) else compile_update(update)
    touches = compiled is not None and schema.touches_identity(compiled.fields)
    seeds = upsert and bool(plan.identity_fields)
    clinical_filter = yield from resolve(ctx, plan, options)
    if compiled is None or not isinstance(update, Mapping) or (not touches and not seeds):
        return (
            yield from _server_update(
                ctx, filter, clinical_filter, update, sort, upsert, return_new, pplan, options
            )
        )
    target = yield from select_one(ctx, clinical_filter, sort, read_options(options))
    if target is None:
        if not upsert:
            return None
        document = upserted_document(ctx, filter, compiled, options)
        yield from insert_upserted(ctx, document, options)
        return (yield from _one(ctx, pplan, [document["_id"]])) if return_new else None
    before = None if return_new else (yield from _one(ctx, pplan, [target["_id"]]))
    yield from intends(ctx, linked([target]))
    yield from write_documents(ctx, [target], compiled, update, clinical_filter, filter, options)
    return (yield from _one(ctx, pplan, [target["_id"]])) if return_new else before


def _server_update(
    ctx: Context,
    filter: Mapping[str, Any],
    clinical_filter: Mapping[str, Any],
    update: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    sort: Sort,
    upsert: bool,
    return_new: bool,
    pplan: ProjectionPlan,
    options: Mapping[str, Any],
) -> Flow[Document | None]:
    """The server updates atomically; a sort on identity fields first picks the target by id."""
    target_filter: Mapping[str, Any] = clinical_filter
    if needs_process_sort(ctx.schema, sort):
        target = yield from select_one(ctx, clinical_filter, sort, read_options(options))
        if target is not None:
            target_filter = {"_id": target["_id"]}
        sort = ()
    if isinstance(update, Mapping):
        yield from refuse_growth_past_the_limit(
            ctx,
            target_filter,
            clinical_filter,
            update,
            compile_update(update),
            False,
            options,
            sort,
        )
    pseudonym = ctx.new_pseudonym() if upsert else ""
    compiled = compile_update(update) if isinstance(update, Mapping) else None
    placement = yield from place_upsert(ctx, filter, compiled, options, pseudonym)
    region, refused = placed_region(placement)
    if refused is not None:  # an update only: refused if it would have created
        upsert, pseudonym = False, ""
    server_update: Any = linked_update(update, pseudonym, region) if upsert else update
    result: Document | None = yield from FindAndModify(
        Side.CLINICAL,
        "update",
        target_filter,
        server_update,
        sort,
        upsert,
        return_new,
        _keeping_link(pplan.clinical),
        options,
    )
    if refused is not None and result is None:
        raise refused.error
    yield from touched(ctx, linked([result] if result is not None else []))
    if return_new:
        inserted = result is not None and result.get(PSEUDONYM_FIELD) == pseudonym
    else:
        inserted = result is None
    if upsert and inserted:
        yield from empty_identity(ctx, pseudonym)
    if result is None:
        return None
    return (yield from join_batch(ctx, [result], pplan))[0]


def find_one_and_replace(
    ctx: Context,
    filter: Mapping[str, Any],
    replacement: Mapping[str, Any],
    sort: Sort,
    upsert: bool,
    return_new: bool,
    projection: Mapping[str, Any] | None,
    options: Mapping[str, Any],
) -> Flow[Document | None]:
    """Replace one document (keeping its pseudonym) and return it before or after."""
    pplan = plan_projection(ctx.schema, projection)
    clinical_filter = yield from resolve(ctx, plan_filter(ctx.schema, filter), options)
    target = yield from select_one(ctx, clinical_filter, sort, read_options(options))
    if target is None:
        if not upsert:
            return None
        document = yield from insert_replacement(ctx, filter, replacement, options)
        return (yield from _one(ctx, pplan, [document["_id"]])) if return_new else None
    before = None if return_new else (yield from _one(ctx, pplan, [target["_id"]]))
    yield from replace_target(ctx, target, replacement, options)
    return (yield from _one(ctx, pplan, [target["_id"]])) if return_new else before


def find_one_and_delete(
    ctx: Context,
    filter: Mapping[str, Any],
    sort: Sort,
    projection: Mapping[str, Any] | None,
    options: Mapping[str, Any],
) -> Flow[Document | None]:
    """Delete one document (clinical row first, ``delete_rows``) and return it as it was."""
    pplan = plan_projection(ctx.schema, projection)
    clinical_filter = yield from resolve(ctx, plan_filter(ctx.schema, filter), options)
    target = yield from select_one(ctx, clinical_filter, sort, read_options(options))
    if target is None:
        return None
    document = yield from _one(ctx, pplan, [target["_id"]])
    yield from delete_rows(ctx, [target], options)
    return document
