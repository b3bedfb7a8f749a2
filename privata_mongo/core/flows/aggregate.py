"""Aggregation pipelines over a split collection, with native results.

Leading ``$match`` stages are planned like a find filter. A pipeline whose later stages read no
identity field and join no split collection runs on the server; output documents that still
carry the pseudonym link get their identity fields joined. Otherwise the clinical,
document-preserving prefix runs on the server, the (at most ``scan_limit``) documents that come
out are joined, and the rest is evaluated in the process: stages by the core's pipeline engine
(the server's semantics), ``$lookup`` into a split collection by reading that collection through
its own flows (``ReadPeer``), so the joined documents carry their identity fields as natively.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from privata_mongo.core.mql.pipeline import pipeline_supported, run_pipeline
from privata_mongo.core.mql.values import MISSING, UnsupportedOperator, equal, lookup
from privata_mongo.core.ops import Aggregate, Document, Emit, Flow, NextBatch, ReadPeer
from privata_mongo.core.projection import ProjectionPlan
from privata_mongo.core.routing import identity_references, plan_filter, references_identity
from privata_mongo.core.schema import Side
from privata_mongo.errors import UnsupportedQuery

from .common import chunks, computed_from, join_batch, linked, refuse_collation, resolve, too_many
from .context import Context

__all__ = ["aggregate", "split_joins"]

_DOCUMENT_PRESERVING = frozenset(
    {"$match", "$sort", "$skip", "$limit", "$addFields", "$set", "$unset", "$sample", "$unwind"}
)
_JOINED = ProjectionPlan(None, None, fetch_identity=True)
_JOINS = {"$lookup": "from", "$graphLookup": "from", "$unionWith": "coll"}


def split_joins(pipeline: Sequence[Mapping[str, Any]]) -> set[str]:
    """Collections a pipeline joins (``$lookup`` …), at any depth: the caller says which split."""
    found: set[str] = set()
    for stage in pipeline:
        for name, spec in stage.items():
            if name == "$facet" and isinstance(spec, Mapping):
                for inner in spec.values():
                    found |= split_joins(inner)
            key = _JOINS.get(name)
            if key is None:
                continue
            target = spec if isinstance(spec, str) else spec.get(key)
            if isinstance(target, str):
                found.add(target)
            if isinstance(spec, Mapping) and isinstance(spec.get("pipeline"), list):
                found |= split_joins(spec["pipeline"])
    return found


def _joins_split(stage: Mapping[str, Any], split: frozenset[str]) -> bool:
    return bool(split_joins([stage]) & split)


def aggregate(
    ctx: Context,
    pipeline: Sequence[Mapping[str, Any]],
    options: Mapping[str, Any],
    split: frozenset[str] = frozenset(),
) -> Flow[None]:
    """Stream the documents a native ``aggregate`` would return.

    ``split`` names the split collections of the database, which a server-side ``$lookup``
    could not join.

    Raises:
        UnsupportedQuery: a stage after identity fields are read (or a split collection is
            joined) needs what the process cannot provide (randomness, an operator the engine
            lacks, ``$graphLookup``/``$unionWith`` into a split collection), or more than
            ``scan_limit`` documents would have to be read.
    """
    schema = ctx.schema
    stages = list(pipeline)
    resolved: list[Mapping[str, Any]] = []
    while stages and set(stages[0]) == {"$match"}:
        clinical = yield from resolve(ctx, plan_filter(schema, stages[0]["$match"]), options)
        resolved.append({"$match": clinical})
        stages.pop(0)
    if any(references_identity(schema, s) or _joins_split(s, split) for s in stages):
        refuse_collation(ctx, identity_references(schema, stages), options)
        yield from _in_process(ctx, resolved, stages, options, split)
        return
    joins = all(set(stage) <= _DOCUMENT_PRESERVING for stage in stages)
    handle = yield from Aggregate(Side.CLINICAL, (*resolved, *stages), options)
    plan = ProjectionPlan(None, None, fetch_identity=joins)
    while True:
        batch: list[Document] = yield from NextBatch(handle, ctx.batch_size)
        if batch:
            yield Emit(tuple((yield from join_batch(ctx, batch, plan))), linked(batch))
        if len(batch) < ctx.batch_size:
            return


def _in_process(
    ctx: Context,
    resolved: list[Mapping[str, Any]],
    stages: list[Mapping[str, Any]],
    options: Mapping[str, Any],
    split: frozenset[str],
) -> Flow[None]:
    schema = ctx.schema
    prefix: list[Mapping[str, Any]] = []
    while (
        stages
        and set(stages[0]) <= _DOCUMENT_PRESERVING
        and not references_identity(schema, stages[0])
    ):
        prefix.append(stages.pop(0))
    _check_supported(ctx, stages, split)
    bound = {"$limit": schema.scan_limit + 1}
    handle = yield from Aggregate(Side.CLINICAL, (*resolved, *prefix, bound), options)
    rows: list[Document] = []
    while True:
        batch: list[Document] = yield from NextBatch(handle, ctx.batch_size)
        rows.extend(batch)
        if len(batch) < ctx.batch_size:
            break
    if len(rows) > schema.scan_limit:
        raise too_many(ctx, "an aggregation", identity_references(schema, stages))
    joined: list[Document] = []
    for chunk in chunks(rows, ctx.batch_size):
        joined.extend((yield from join_batch(ctx, chunk, _JOINED)))
    results = yield from run_stages(ctx, joined, stages)
    for chunk in chunks(results, ctx.batch_size):
        yield Emit(tuple(chunk), computed_from(rows, chunk))


def _check_supported(
    ctx: Context, stages: Sequence[Mapping[str, Any]], split: frozenset[str]
) -> None:
    """Refuse, before any I/O, a pipeline the process cannot finish."""
    model = ctx.schema.model
    for stage in stages:
        (name,) = stage.keys() or ("stage",)
        if name in ("$graphLookup", "$unionWith") and _joins_split(stage, split):
            raise UnsupportedQuery(
                f"{model}: {name} into a split collection cannot be evaluated (its documents "
                "are stored in two parts); read them with a separate query",
                model=model,
            )
        if name == "$lookup":
            spec = stage["$lookup"]
            if not isinstance(spec, Mapping) or "localField" not in spec or "let" in spec:
                raise UnsupportedQuery(
                    f"{model}: only the localField/foreignField form of $lookup can run in the "
                    "process after identity fields are read; move it before those stages",
                    model=model,
                )
            continue
        missing = pipeline_supported([stage])
        if missing is not None:
            raise UnsupportedQuery(
                f"{model}: this pipeline reads identity fields or joins a split collection, "
                f"so it is evaluated in the process, which cannot run {missing}; move that "
                "stage before the stages that need the process, or aggregate clinical fields only",
                model=model,
            )


def run_stages(
    ctx: Context, documents: list[Document], stages: Sequence[Mapping[str, Any]]
) -> Flow[list[Document]]:
    """Evaluate ``stages`` over joined documents: ``$lookup`` by reading the foreign collection."""
    pending: list[Mapping[str, Any]] = []
    for stage in stages:
        if "$lookup" not in stage:
            pending.append(stage)
            continue
        documents = _engine(ctx, documents, pending)
        pending = []
        documents = yield from _lookup(ctx, documents, stage["$lookup"])
    return _engine(ctx, documents, pending)


def _engine(
    ctx: Context, documents: list[Document], stages: Sequence[Mapping[str, Any]]
) -> list[Document]:
    if not stages:
        return documents
    try:
        return run_pipeline(documents, stages, now=ctx.now())
    except UnsupportedOperator as exc:
        raise UnsupportedQuery(
            f"{ctx.schema.model}: {exc.operator} cannot be evaluated in the process on "
            "identity data; aggregate clinical fields only, or compute it in the application",
            model=ctx.schema.model,
        ) from None


def _values(document: Mapping[str, Any], path: str) -> list[Any]:
    """The values a ``$lookup`` compares at ``path``: array elements, and null when missing."""
    found: list[Any] = []
    for value in lookup(document, path):
        if isinstance(value, list):
            found.extend(value)
        else:
            found.append(value)
    return found or [None]


def _lookup(
    ctx: Context, documents: list[Document], spec: Mapping[str, Any]
) -> Flow[list[Document]]:
    """``$lookup`` (localField/foreignField, optional sub-pipeline) by reading the peer."""
    local, foreign, target = spec["localField"], spec["foreignField"], spec["as"]
    wanted: list[Any] = []
    for document in documents:
        for value in _values(document, local):
            if value is not MISSING and not any(equal(value, w) for w in wanted):
                wanted.append(value)
    matches: list[Document] = []
    if wanted:
        condition: dict[str, Any] = {foreign: {"$in": [w for w in wanted if w is not None]}}
        if any(w is None for w in wanted):
            condition = {"$or": [condition, {foreign: None}]}
        matches = yield from ReadPeer(spec["from"], condition)
    out: list[Document] = []
    for document in documents:
        mine = _values(document, local)
        joined = [m for m in matches if any(equal(a, b) for a in mine for b in _values(m, foreign))]
        if isinstance(spec.get("pipeline"), list):
            joined = yield from run_stages(ctx, joined, spec["pipeline"])
        out.append({**document, target: joined})
    return out
