"""Aggregation pipelines over a split collection, pushed down to the clinical collection.

``core.pushdown`` plans the pipeline: what the server runs (identity conditions as pseudonym
sets, identity projections carried as the pseudonym, a ``$group`` over identity values as
partial groups per pseudonym), and what the process does with the server's output. This flow
resolves the probes, runs the server part, and then, per the plan:

- joins the documents that come out with the identity values they carry (``Finish``);
- merges partial groups, reading identity rows once per batch of them (``GroupMerge``);
- orders ids on identity fields and reads that page by id (``IdentitySort``);
- or joins the documents and runs the rest of the pipeline in the process (``Materialize``),
  batch by batch while stages take one document at a time; a stage that needs all documents
  (a ``$sort``, a ``$group``) then holds at most ``scan_limit`` of them.

Stages after the boundary run in the process with the core's pipeline engine
(``core.mql.pipeline``), ``$lookup`` by reading the foreign collection through its own flows
(``ReadPeer``), so joined documents carry their identity fields as natively. Every refusal
happens before the first read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from privata_mongo.core.mql.budget import Deadline
from privata_mongo.core.mql.group_merge import identity_value
from privata_mongo.core.mql.pipeline import pipeline_supported, run_pipeline
from privata_mongo.core.mql.values import MISSING, UnsupportedOperator, equal, lookup
from privata_mongo.core.ops import Aggregate, Document, Emit, Flow, NextBatch, ReadPeer
from privata_mongo.core.projection import ProjectionPlan
from privata_mongo.core.pushdown import (
    Exposure,
    Finish,
    GroupMerge,
    IdentitySort,
    MatchSlot,
    Materialize,
    PipelinePlan,
    plan_pipeline,
    split_joins,
)
from privata_mongo.core.pushdown.group_split import subject_of
from privata_mongo.core.schema import PSEUDONYM_FIELD, Side
from privata_mongo.core.split import join
from privata_mongo.errors import UnsupportedQuery

from .common import (
    chunks,
    computed_from,
    deleted_meanwhile,
    fetch_identities,
    linked,
    operation_deadline,
    refuse_collation,
    resolve,
    strip_link,
    too_many,
)
from .context import Context
from .read import ordered_ids, read_by_ids

__all__ = ["aggregate", "split_joins"]

_JOINED = ProjectionPlan(None, None, fetch_identity=True)
_PER_DOCUMENT = frozenset(
    {"$match", "$project", "$addFields", "$set", "$unset", "$unwind", "$replaceRoot"}
    | {"$replaceWith", "$lookup"}
)
"""Tail stages that take one document at a time: run batch by batch, nothing held."""
_FIND_OPTIONS = {
    "collation": "collation",
    "hint": "hint",
    "comment": "comment",
    "maxTimeMS": "max_time_ms",
    "allowDiskUse": "allow_disk_use",
    "session": "session",
}


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
        UnsupportedQuery: a stage needs identity values where neither the server nor the
            process can provide them (the message names the stage and the remedy), or a
            stage that needs all documents in the process would hold more than
            ``scan_limit`` of them.
    """
    plan = plan_pipeline(ctx.schema, pipeline, split)
    _check_tail(ctx, plan.tail)
    refuse_collation(ctx, plan.identity_fields, options)
    server: list[Mapping[str, Any]] = []
    for stage in plan.server:
        if isinstance(stage, MatchSlot):
            server.append({"$match": (yield from resolve(ctx, stage.plan, options))})
        else:
            server.append(stage)
    server = _restricted(ctx, server)
    boundary = plan.boundary
    tail = _Tail(ctx, plan.tail, operation_deadline(ctx, options))
    if isinstance(boundary, Finish):
        yield from _finish(ctx, server, options, boundary.exposure)
    elif isinstance(boundary, GroupMerge):
        yield from _group(ctx, server, options, boundary, tail)
    elif isinstance(boundary, IdentitySort):
        yield from _sorted(ctx, server, options, boundary, tail)
    else:
        yield from _materialize(ctx, plan, server, options, boundary, tail)


_FIRST_ONLY = frozenset({"$geoNear", "$search", "$searchMeta", "$vectorSearch"})
"""Stages the server accepts only first in a pipeline: the restriction comes right after."""


def _restricted(ctx: Context, server: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The server pipeline, first selecting only the subjects visible under the purpose.

    One ``$match`` ahead of everything the application wrote, so every count, group, page
    and ``$lookup`` the server computes is over the same documents a find would return.
    """
    rules = ctx.restriction
    if rules is None or rules.visible is None:
        return server
    match = {"$match": dict(rules.visible)}
    at = 1 if server and next(iter(server[0]), "") in _FIRST_ONLY else 0
    return [*server[:at], match, *server[at:]]


def _check_tail(ctx: Context, stages: Sequence[Mapping[str, Any]]) -> None:
    """Refuse, before any I/O, a stage the process cannot run after the boundary."""
    model = ctx.schema.model
    for stage in stages:
        (name,) = stage.keys() or ("stage",)
        if name == "$lookup":
            spec = stage["$lookup"]
            if not isinstance(spec, Mapping) or "localField" not in spec or "let" in spec:
                raise UnsupportedQuery(
                    f"{model}: only the localField/foreignField form of $lookup can run in the "
                    "process after identity values are read; move it before those stages",
                    model=model,
                )
            continue
        missing = pipeline_supported([stage])
        if missing is not None:
            raise UnsupportedQuery(
                f"{model}: the pipeline needs identity values in the process before {name}, "
                f"and the process cannot run {missing}; move that stage before the stages that "
                "read identity fields, or compute it in the application",
                model=model,
            )


def _finish(
    ctx: Context, server: list[Mapping[str, Any]], options: Mapping[str, Any], exposure: Exposure
) -> Flow[None]:
    handle = yield from Aggregate(Side.CLINICAL, tuple(server), options)
    while True:
        batch: list[Document] = yield from NextBatch(handle, ctx.batch_size)
        if batch:
            yield Emit(tuple((yield from _join(ctx, batch, exposure))), linked(batch))
        if len(batch) < ctx.batch_size:
            return


def _join(ctx: Context, batch: list[Document], exposure: Exposure) -> Flow[list[Document]]:
    """Give each document the identity values ``exposure`` says it holds (one read)."""
    if exposure.empty:
        return [strip_link(d) for d in batch]
    pseudonyms = [d[PSEUDONYM_FIELD] for d in batch if PSEUDONYM_FIELD in d]
    identities: dict[str, Document] = {}
    if pseudonyms:
        identities = yield from fetch_identities(ctx, pseudonyms, exposure.projection())
        gone = yield from deleted_meanwhile(ctx, pseudonyms, identities)
        batch = [d for d in batch if d.get(PSEUDONYM_FIELD) not in gone]
    out: list[Document] = []
    for document in batch:
        row = identities.get(document.get(PSEUDONYM_FIELD, ""))
        shown = {k: v for k, v in row.items() if exposure.exposed(k)} if row else None
        joined = join(document, shown, ctx.schema)
        for name, source in exposure.renames:
            value = identity_value(row, source)
            if value is MISSING:
                joined.pop(name, None)
            else:
                joined[name] = value
        out.append(joined)
    return out


def _materialize(
    ctx: Context,
    plan: PipelinePlan,
    server: list[Mapping[str, Any]],
    options: Mapping[str, Any],
    boundary: Materialize,
    tail: _Tail,
) -> Flow[None]:
    limit = ctx.schema.scan_limit
    if tail.holds:
        server = [*server, {"$limit": limit + 1}]
    handle = yield from Aggregate(Side.CLINICAL, tuple(server), options)
    read = 0
    while True:
        batch: list[Document] = yield from NextBatch(handle, ctx.batch_size)
        read += len(batch)
        if tail.holds and read > limit:
            raise too_many(ctx, "an aggregation", plan.identity_fields)
        if batch:
            yield from tail.feed((yield from _join(ctx, batch, boundary.exposure)), batch)
        if len(batch) < ctx.batch_size:
            break
    yield from tail.finish()


def _sorted(
    ctx: Context,
    server: list[Mapping[str, Any]],
    options: Mapping[str, Any],
    boundary: IdentitySort,
    tail: _Tail,
) -> Flow[None]:
    if boundary.limit == 0:
        return
    filters = [stage["$match"] for stage in server]
    clinical: Mapping[str, Any] = filters[0] if len(filters) == 1 else {}
    if len(filters) > 1:
        clinical = {"$and": filters}
    found = {_FIND_OPTIONS[k]: v for k, v in options.items() if k in _FIND_OPTIONS}
    ids = yield from ordered_ids(
        ctx, clinical, boundary.sort, boundary.skip, boundary.limit or 0, found
    )
    for chunk in chunks(ids, ctx.batch_size):
        documents, subjects = yield from read_by_ids(ctx, chunk, _JOINED)
        yield from tail.feed(documents, _rows(documents, subjects))
    yield from tail.finish()


def _group(
    ctx: Context,
    server: list[Mapping[str, Any]],
    options: Mapping[str, Any],
    boundary: GroupMerge,
    tail: _Tail,
) -> Flow[None]:
    split = boundary.split
    table = split.table()
    # one server batch of partial groups per identity read: round trips follow the batches
    options = {"batchSize": ctx.batch_size, **options}
    handle = yield from Aggregate(Side.CLINICAL, tuple(server), options)
    contributors: list[Mapping[str, Any]] = []  # a partial group is one subject's documents
    while True:
        batch: list[Document] = yield from NextBatch(handle, ctx.batch_size)
        pseudonyms = [p for p in (subject_of(row) for row in batch) if p]
        contributors.extend({PSEUDONYM_FIELD: p} for p in pseudonyms)
        identities: dict[str, Document] = {}
        kept = batch
        if pseudonyms and split.identity_fields:
            identities = yield from fetch_identities(ctx, pseudonyms, split.projection)
            gone = yield from deleted_meanwhile(ctx, pseudonyms, identities)
            kept = [row for row in batch if subject_of(row) not in gone]
        split.merge(table, kept, identities)
        if len(batch) < ctx.batch_size:
            break
    for chunk in chunks(table.documents(), ctx.batch_size):
        yield from tail.feed(list(chunk), contributors)
    yield from tail.finish()


def _rows(documents: Sequence[Document], subjects: Sequence[str]) -> list[Document]:
    """The ``_id`` and link of documents read by id, for naming what results came from."""
    if len(documents) != len(subjects):  # a row without a link: name every subject read
        return [{PSEUDONYM_FIELD: s} for s in subjects]
    return [
        {"_id": d.get("_id"), PSEUDONYM_FIELD: s} for d, s in zip(documents, subjects, strict=True)
    ]


@dataclass
class _Tail:
    """The stages after the boundary: per batch while they take one document at a time."""

    ctx: Context
    stages: Sequence[Mapping[str, Any]]
    deadline: Deadline | None = None
    streamed: list[Mapping[str, Any]] = field(default_factory=list)
    rest: list[Mapping[str, Any]] = field(default_factory=list)
    held: list[Document] = field(default_factory=list)
    sources: list[Mapping[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        stages = list(self.stages)
        while stages and next(iter(stages[0]), "") in _PER_DOCUMENT:
            self.streamed.append(stages.pop(0))
        self.rest = stages

    @property
    def holds(self) -> bool:
        """Whether a stage needs every document at once."""
        return bool(self.rest)

    def feed(self, documents: list[Document], sources: Sequence[Mapping[str, Any]]) -> Flow[None]:
        """Run the per-document stages over one batch; emit it, or hold it for the rest.

        ``sources`` are the clinical rows (``_id`` and link) the batch was read from: each
        emitted batch names the data subjects its documents came from (``computed_from``).
        """
        done = yield from run_stages(self.ctx, documents, self.streamed, self.deadline)
        if self.rest:
            self.held.extend(done)
            self.sources.extend(sources)
        elif done:
            yield Emit(tuple(done), computed_from(sources, done))

    def finish(self) -> Flow[None]:
        """Run the stages that need every document, and emit their output."""
        if not self.rest:
            return
        results = yield from run_stages(self.ctx, self.held, self.rest, self.deadline)
        sources, self.held, self.sources = self.sources, [], []
        for chunk in chunks(results, self.ctx.batch_size):
            yield Emit(tuple(chunk), computed_from(sources, chunk))


def run_stages(
    ctx: Context,
    documents: list[Document],
    stages: Sequence[Mapping[str, Any]],
    deadline: Deadline | None = None,
) -> Flow[list[Document]]:
    """Evaluate ``stages`` over joined documents: ``$lookup`` by reading the foreign collection.

    ``deadline``: the operation's time limit, which the in-process evaluation honours.
    """
    pending: list[Mapping[str, Any]] = []
    for stage in stages:
        if "$lookup" not in stage:
            pending.append(stage)
            continue
        documents = _engine(ctx, documents, pending, deadline)
        pending = []
        documents = yield from _lookup(ctx, documents, stage["$lookup"], deadline)
    return _engine(ctx, documents, pending, deadline)


def _engine(
    ctx: Context,
    documents: list[Document],
    stages: Sequence[Mapping[str, Any]],
    deadline: Deadline | None,
) -> list[Document]:
    if not stages:
        return documents
    try:
        return run_pipeline(documents, stages, now=ctx.now(), deadline=deadline)
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
    ctx: Context, documents: list[Document], spec: Mapping[str, Any], deadline: Deadline | None
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
            joined = yield from run_stages(ctx, joined, spec["pipeline"], deadline)
        out.append({**document, target: joined})
    return out
