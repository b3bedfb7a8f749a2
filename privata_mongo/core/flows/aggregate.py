"""Aggregation pipelines over a split collection, with native results.

Leading ``$match`` stages are planned like a find filter. A pipeline whose later stages read no
identity field runs on the server; output documents that still carry the pseudonym link get
their identity fields joined. A pipeline that reads identity fields later on runs its clinical,
document-preserving prefix on the server, joins the (at most ``scan_limit``) documents that
come out, and evaluates the rest in the process with the core's pipeline engine, which follows
the server's semantics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from privata_mongo.core.mql.pipeline import pipeline_supported, run_pipeline
from privata_mongo.core.mql.values import UnsupportedOperator
from privata_mongo.core.ops import Aggregate, Document, Emit, Flow, NextBatch
from privata_mongo.core.plan import identity_references, plan_filter, references_identity
from privata_mongo.core.projection import ProjectionPlan
from privata_mongo.core.schema import Side
from privata_mongo.errors import UnsupportedQuery

from .common import chunks, join_batch, resolve, too_many
from .context import Context

__all__ = ["aggregate"]

_DOCUMENT_PRESERVING = frozenset(
    {"$match", "$sort", "$skip", "$limit", "$addFields", "$set", "$unset", "$sample", "$unwind"}
)
_JOINED = ProjectionPlan(None, None, fetch_identity=True)


def aggregate(
    ctx: Context, pipeline: Sequence[Mapping[str, Any]], options: Mapping[str, Any]
) -> Flow[None]:
    """Stream the documents a native ``aggregate`` would return.

    Raises:
        UnsupportedQuery: a stage that reads identity fields needs what the process cannot
            provide (another collection, randomness, an operator the engine lacks), or more
            than ``scan_limit`` documents would have to be read.
    """
    schema = ctx.schema
    stages = list(pipeline)
    resolved: list[Mapping[str, Any]] = []
    while stages and set(stages[0]) == {"$match"}:
        clinical = yield from resolve(ctx, plan_filter(schema, stages[0]["$match"]))
        resolved.append({"$match": clinical})
        stages.pop(0)
    if any(references_identity(schema, stage) for stage in stages):
        yield from _in_process(ctx, resolved, stages, options)
        return
    joins = all(set(stage) <= _DOCUMENT_PRESERVING for stage in stages)
    handle = yield Aggregate(Side.CLINICAL, (*resolved, *stages), options)
    plan = ProjectionPlan(None, None, fetch_identity=joins)
    while True:
        batch: list[Document] = yield NextBatch(handle, ctx.batch_size)
        if batch:
            yield Emit(tuple((yield from join_batch(ctx, batch, plan))))
        if len(batch) < ctx.batch_size:
            return


def _in_process(
    ctx: Context,
    resolved: list[Mapping[str, Any]],
    stages: list[Mapping[str, Any]],
    options: Mapping[str, Any],
) -> Flow[None]:
    schema = ctx.schema
    prefix: list[Mapping[str, Any]] = []
    while (
        stages
        and set(stages[0]) <= _DOCUMENT_PRESERVING
        and not references_identity(schema, stages[0])
    ):
        prefix.append(stages.pop(0))
    missing = pipeline_supported(stages)
    if missing is not None:
        raise UnsupportedQuery(
            f"{schema.model}: this pipeline reads identity fields, so it is evaluated in the "
            f"process, which cannot run {missing}; move that stage before the stages that "
            "read identity fields, or aggregate clinical fields only",
            model=schema.model,
        )
    bound = {"$limit": schema.scan_limit + 1}
    handle = yield Aggregate(Side.CLINICAL, (*resolved, *prefix, bound), options)
    rows: list[Document] = []
    while True:
        batch: list[Document] = yield NextBatch(handle, ctx.batch_size)
        rows.extend(batch)
        if len(batch) < ctx.batch_size:
            break
    if len(rows) > schema.scan_limit:
        raise too_many(ctx, "an aggregation", identity_references(schema, stages))
    joined: list[Document] = []
    for chunk in chunks(rows, ctx.batch_size):
        joined.extend((yield from join_batch(ctx, chunk, _JOINED)))
    try:
        results = run_pipeline(joined, stages, now=ctx.now())
    except UnsupportedOperator as exc:
        raise UnsupportedQuery(
            f"{schema.model}: {exc.operator} cannot be evaluated in the process on identity "
            "data; aggregate clinical fields only, or compute it in the application",
            model=schema.model,
        ) from None
    for chunk in chunks(results, ctx.batch_size):
        yield Emit(tuple(chunk))
