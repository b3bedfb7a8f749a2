"""Push an aggregation pipeline down to the clinical collection, stage by stage.

The server cannot read identity fields, but it can carry the pseudonym that stands for them.
The planner walks the pipeline knowing, at each point, which identity fields the documents
would hold and under which names (an ``Exposure``), and rewrites every stage it can for the
clinical collection:

- a ``$match`` becomes a clinical filter: its identity conditions are probes, resolved to
  pseudonym sets before the aggregation runs (``plan.plan_filter``). First it moves ahead of the
  document-preserving stages it commutes with (``$sort``, and ``$set``/``$addFields``/``$unset``
  /``$unwind``/``$lookup`` that do not write a field it reads; never across ``$skip``/``$limit``
  /``$project``), which lets a sort on identity fields that follows find only filters before it;
- ``$project``/``$set``/``$unset`` that include, exclude or copy an identity field (``{name:
  "$first_name"}``) are kept on the server for their clinical part, and the identity part is
  remembered: the identity values are joined by pseudonym when the documents come out;
- a ``$sort`` on identity fields right after the filters is an ordered-id read (``read.
  ordered_ids``): the sort keys are read, the ids ordered in the process, the page read by id;
- a ``$group`` keyed on, or accumulating, identity fields is split as a sharded cluster splits
  it (``group_split``): the server computes partial groups per pseudonym, the process merges.

Where a stage reads identity values in a way the server cannot serve, the documents are joined
and the rest of the pipeline runs in the process (``Materialize``), with what the in-process
engine evaluates. What neither can do is refused, naming the stage and the remedy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from privata_mongo.core.mql.pipeline import STAGES
from privata_mongo.core.mql.reads import expression_reads
from privata_mongo.core.pushdown.exposure import NOTHING, Exposure, reshape
from privata_mongo.core.pushdown.group_split import GroupSplit, split_group
from privata_mongo.core.pushdown.hoist import filter_reads, hoist_filters, rename_filter, stage_name
from privata_mongo.core.routing import FilterPlan, identity_references, plan_filter
from privata_mongo.core.schema import ModelSchema, Side, top_field
from privata_mongo.errors import UnsupportedQuery

__all__ = [
    "Exposure",
    "Finish",
    "GroupMerge",
    "IdentitySort",
    "MatchSlot",
    "Materialize",
    "PipelinePlan",
    "plan_pipeline",
    "split_joins",
]

_JOINS = {"$lookup": "from", "$graphLookup": "from", "$unionWith": "coll"}
_TAIL_STAGES = STAGES | {"$lookup"}
"""Stages the process can run once the documents are joined (``mql.pipeline`` and lookups)."""


@dataclass(frozen=True, slots=True)
class MatchSlot:
    """A ``$match`` stage whose identity probes are resolved before the pipeline runs."""

    plan: FilterPlan


@dataclass(frozen=True, slots=True)
class Finish:
    """The server runs everything; the documents that come out are joined as ``exposure``."""

    exposure: Exposure


@dataclass(frozen=True, slots=True)
class Materialize:
    """Join the server's output as ``exposure``, then run ``tail`` in the process."""

    exposure: Exposure


@dataclass(frozen=True, slots=True)
class IdentitySort:
    """Order the ids on identity fields (``read.ordered_ids``), read that page, then ``tail``.

    ``limit`` is ``None`` for no limit (``0`` would be an empty page).
    """

    sort: tuple[tuple[str, int], ...]
    skip: int = 0
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class GroupMerge:
    """The server's last stage computes partial groups; the process merges them."""

    split: GroupSplit


Boundary = Finish | Materialize | IdentitySort | GroupMerge


@dataclass(frozen=True, slots=True)
class PipelinePlan:
    """How one pipeline runs: server stages, then what the process does with their output.

    Attributes:
        server: the clinical pipeline (``MatchSlot`` where a filter waits for its probes).
        boundary: what the process does with the server's documents.
        tail: stages evaluated in the process after the boundary.
        identity_fields: identity fields the process reads (collations cannot reach them).
    """

    server: tuple[Mapping[str, Any] | MatchSlot, ...]
    boundary: Boundary
    tail: tuple[Mapping[str, Any], ...] = ()
    identity_fields: frozenset[str] = frozenset()


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


def _mentioned(value: Any) -> set[str]:
    """Every top-level name a specification mentions, as a field path or as a key."""
    found: set[str] = set()
    if isinstance(value, str) and value.startswith("$") and not value.startswith("$$"):
        found.add(top_field(value[1:]))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and not key.startswith("$"):
                found.add(top_field(key))
            found |= _mentioned(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            found |= _mentioned(item)
    return found


@dataclass
class _Walk:
    """The planner's state between stages."""

    schema: ModelSchema
    split: frozenset[str]
    exposure: Exposure = field(default_factory=Exposure)
    server: list[Mapping[str, Any] | MatchSlot] = field(default_factory=list)
    only_filters: bool = True
    preserving: bool = True
    order: tuple[tuple[str, int], ...] | None = None
    identity: set[str] = field(default_factory=set)

    def refuse(self, index: int, name: str, why: str, remedy: str) -> UnsupportedQuery:
        model = self.schema.model
        return UnsupportedQuery(
            f"{model}: pipeline stage {index} ({name}) {why}; {remedy}",
            model=model,
            field=", ".join(sorted(self.identity)) or None,
        )

    def sources(self, paths: set[str] | frozenset[str]) -> dict[str, str]:
        """The paths among ``paths`` that read identity values, with their identity source."""
        return self.exposure.sources(self.schema, paths)

    def reads_identity(self, *expressions: Any) -> bool:
        """Whether any of these aggregation expressions reads an identity value."""
        for expression in expressions:
            reads = expression_reads(expression)
            if reads is None or self.sources(reads):
                return True
        return False

    def mentions_identity(self, stage: Mapping[str, Any]) -> bool:
        """Conservatively, for a stage the planner does not parse: any identity name in it."""
        if self.reads_identity(stage):
            return True
        return any(self.exposure.source(self.schema, name) for name in _mentioned(stage))

    def note(self, sources: Mapping[str, str] | set[str]) -> None:
        values = sources.values() if isinstance(sources, Mapping) else sources
        self.identity |= {top_field(s) for s in values}

    def keep(self, stage: Mapping[str, Any], *, preserving: bool = False) -> None:
        self.server.append(stage)
        self.only_filters = False
        self.preserving = self.preserving and preserving


def plan_pipeline(
    schema: ModelSchema,
    pipeline: Sequence[Mapping[str, Any]],
    split: frozenset[str] = frozenset(),
) -> PipelinePlan:
    """Plan ``pipeline`` over ``schema``'s split collection (``split``: split collections).

    Raises:
        UnsupportedQuery: a stage needs identity values where neither the server nor the
            process can provide them; the message names the stage and the remedy.
    """
    stages = hoist_filters(list(enumerate(pipeline, start=1)))
    walk = _Walk(schema, split)
    if not schema.enabled:
        walk.exposure = NOTHING
    for position, (index, stage) in enumerate(stages):
        step = _step(walk, index, stage)
        if step is None:
            continue
        boundary, prefix = step if isinstance(step, tuple) else (step, [])
        tail = [(index, s) for s in prefix] + stages[position + 1 :]
        return _finish(walk, boundary, tail)
    return PipelinePlan(tuple(walk.server), Finish(walk.exposure), (), frozenset(walk.identity))


def _finish(
    walk: _Walk, boundary: Boundary, tail: list[tuple[int, Mapping[str, Any]]]
) -> PipelinePlan:
    """The plan once the server's part ends: the rest runs in the process, if it can."""
    stages = [stage for _, stage in tail]
    if isinstance(boundary, IdentitySort):
        boundary, stages = _window(boundary, stages)
        tail = tail[len(tail) - len(stages) :]
    for index, stage in tail:
        name = stage_name(stage) or "stage"
        if name not in _TAIL_STAGES or (
            name == "$lookup" and not _lookup_in_process(stage["$lookup"])
        ):
            what = "this form of $lookup" if name == "$lookup" else name
            raise walk.refuse(
                index,
                name,
                f"comes after stages that need identity values in the process, which cannot run "
                f"{what}",
                "move it before the stages that read identity fields, or run it in the application",
            )
    return PipelinePlan(tuple(walk.server), boundary, tuple(stages), frozenset(walk.identity))


def _lookup_in_process(spec: Any) -> bool:
    return isinstance(spec, Mapping) and "localField" in spec and "let" not in spec


def _window(sort: IdentitySort, tail: list[Mapping[str, Any]]) -> tuple[IdentitySort, list[Any]]:
    """Fold the ``$skip``/``$limit`` stages after an identity sort into its ordered-id read."""
    skip, limit = 0, None
    consumed = 0
    for stage in tail:
        name = stage_name(stage)
        count = _count(stage.get(name)) if name in ("$skip", "$limit") else None
        if count is None or (name == "$limit" and count == 0):
            break
        if name == "$skip":
            skip += count
            limit = None if limit is None else max(limit - count, 0)
        else:
            limit = count if limit is None else min(limit, count)
        consumed += 1
    return replace(sort, skip=skip, limit=limit), tail[consumed:]


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if value < 0 or int(value) != value:
        return None
    return int(value)


_Step = Boundary | tuple[Boundary, list[Mapping[str, Any]]] | None
"""A stage's plan: ``None`` (kept on the server), or where the server's part ends (and the
stages the process runs first)."""
_Handler = Callable[["_Walk", int, Any], _Step]


def _step(walk: _Walk, index: int, stage: Mapping[str, Any]) -> _Step:
    """Plan one stage: keep it on the server (``None``), or end the server part there."""
    name = stage_name(stage)
    if walk.exposure.empty:
        return _step_clinical(walk, index, stage, name)
    handler = _HANDLERS.get(name)
    if handler is None:
        return _any_stage(walk, index, stage)
    return handler(walk, index, stage[name])


def _step_clinical(walk: _Walk, index: int, stage: Mapping[str, Any], name: str) -> _Step:
    """No identity value is left in the documents: only joins into split collections matter."""
    if name == "$lookup" and split_joins([stage]) & walk.split:
        return Materialize(NOTHING), [stage]
    if name in ("$graphLookup", "$unionWith", "$facet") and split_joins([stage]) & walk.split:
        raise _split_join(walk, index, name)
    walk.keep(stage)
    return None


def _split_join(walk: _Walk, index: int, name: str) -> UnsupportedQuery:
    model = walk.schema.model
    return UnsupportedQuery(
        f"{model}: {name} into a split collection (pipeline stage {index}) cannot be evaluated "
        "(its documents are stored in two parts); read them with a separate query",
        model=model,
    )


def _match(walk: _Walk, index: int, spec: Any) -> _Step:
    if not isinstance(spec, Mapping):
        walk.keep({"$match": spec})
        return None
    reads = filter_reads(spec)
    schema = walk.schema
    renamed = {n for n, _ in walk.exposure.renames}
    gone = {
        top
        for top in reads.tops
        if schema.side_of(top) is Side.IDENTITY and not walk.exposure.exposed(top)
    } - renamed
    in_expr = walk.sources(reads.expr)  # $expr over identity values: evaluated in the process
    if reads.whole or gone or in_expr:
        walk.note(in_expr)
        return Materialize(walk.exposure), [{"$match": spec}]
    filter = rename_filter(spec, dict(walk.exposure.renames)) if renamed else spec
    plan = plan_filter(schema, filter)
    if not plan.probes:
        walk.server.append({"$match": filter})
        return None
    walk.note(set(plan.identity_fields))
    if not walk.preserving:
        plan = FilterPlan(plan.template, tuple(replace(p, narrowing=None) for p in plan.probes))
    walk.server.append(MatchSlot(plan))
    return None


def _sort(walk: _Walk, index: int, spec: Any) -> _Step:
    if not isinstance(spec, Mapping):
        walk.keep({"$sort": spec}, preserving=True)
        return None
    sources = walk.sources({str(k) for k in spec})
    if not sources:
        walk.keep({"$sort": spec}, preserving=True)
        directions = [v for v in spec.values() if v in (1, -1) and not isinstance(v, bool)]
        ordered = len(directions) == len(spec)
        walk.order = tuple((str(k), int(v)) for k, v in spec.items()) if ordered else None
        return None
    walk.note(sources)
    if any(isinstance(v, Mapping) for v in spec.values()):
        raise walk.refuse(
            index,
            "$sort",
            "sorts identity fields by $meta",
            "sort them by 1 or -1, or sort in the application",
        )
    if walk.only_filters and all(v in (1, -1) for v in spec.values()):
        return IdentitySort(tuple((str(k), int(v)) for k, v in spec.items()))
    return Materialize(walk.exposure), [{"$sort": spec}]


def _window_stage(name: str) -> _Handler:
    """``$skip``/``$limit``/``$sample``: fewer documents, the same fields."""

    def step(walk: _Walk, index: int, spec: Any) -> _Step:
        walk.keep({name: spec}, preserving=True)
        if name == "$sample":
            walk.order = None  # in random order
        return None

    return step


def _reshaping(name: str) -> _Handler:
    """``$project``, ``$set``/``$addFields``, ``$unset``, ``$unwind``: split by ``reshape``."""

    def step(walk: _Walk, index: int, spec: Any) -> _Step:
        reshaped = reshape(walk.schema, walk.exposure, name, spec)
        if reshaped is None:
            walk.note(identity_references(walk.schema, {name: spec}) - walk.exposure.removed)
            return Materialize(walk.exposure), [{name: spec}]
        walk.note(set(reshaped.copied))
        walk.exposure = reshaped.exposure
        walk.only_filters = False  # the documents are no longer the collection's rows
        if reshaped.stage is not None:
            walk.keep(reshaped.stage)
        written = reshaped.written
        if walk.order is not None and (
            written is None or written & {top_field(k) for k, _ in walk.order}
        ):
            walk.order = None
        return None

    return step


def _lookup(walk: _Walk, index: int, spec: Any) -> _Step:
    stage = {"$lookup": spec}
    if split_joins([stage]) & walk.split:
        return Materialize(walk.exposure), [stage]
    if not isinstance(spec, Mapping):
        walk.keep(stage)
        return None
    local = spec.get("localField")
    reads_local = isinstance(local, str) and walk.exposure.source(walk.schema, local) is not None
    variables = spec.get("let")
    if reads_local or (isinstance(variables, Mapping) and walk.reads_identity(variables)):
        return Materialize(walk.exposure), [stage]
    target = spec.get("as")
    if isinstance(target, str):
        if "." in target and walk.exposure.source(walk.schema, target) is not None:
            return Materialize(walk.exposure), [stage]
        walk.exposure = walk.exposure.without({top_field(target)})
        if walk.order is not None and top_field(target) in {top_field(k) for k, _ in walk.order}:
            walk.order = None
    walk.keep(stage)
    return None


def _group(walk: _Walk, index: int, spec: Any) -> _Step:
    if not walk.reads_identity(spec):
        _leave(walk, {"$group": spec})
        return None
    merge = split_group(walk.schema, walk.exposure, spec, walk.order, index)
    walk.note(set(merge.identity_fields))
    walk.server.append(merge.stage)
    return GroupMerge(merge)


def _sort_by_count(walk: _Walk, index: int, spec: Any) -> _Step:
    if not walk.reads_identity(spec):
        _leave(walk, {"$sortByCount": spec})
        return None
    if not (isinstance(spec, str) and spec.startswith("$")) and not (
        isinstance(spec, Mapping) and len(spec) == 1 and str(next(iter(spec))).startswith("$")
    ):
        walk.keep({"$sortByCount": spec})  # malformed: the server reports it in its own words
        return None
    grouped = {"_id": spec, "count": {"$sum": 1}}
    merge = split_group(walk.schema, walk.exposure, grouped, walk.order, index)
    walk.note(set(merge.identity_fields))
    walk.server.append(merge.stage)
    return GroupMerge(merge), [{"$sort": {"count": -1}}]


def _reshape(name: str) -> _Handler:
    """``$replaceRoot``/``$replaceWith``: new documents, joined in the process if needed."""

    def step(walk: _Walk, index: int, spec: Any) -> _Step:
        if walk.reads_identity(spec):
            return Materialize(walk.exposure), [{name: spec}]
        _leave(walk, {name: spec})
        return None

    return step


def _leave(walk: _Walk, stage: Mapping[str, Any]) -> None:
    """A stage that makes new documents: nothing is joined after it."""
    walk.keep(stage)
    walk.exposure = NOTHING
    walk.order = None


def _terminal(name: str) -> _Handler:
    """``$out``/``$merge`` write the server's documents: clinical rows, as they are stored."""

    def step(walk: _Walk, index: int, spec: Any) -> _Step:
        if walk.exposure.renames:
            raise walk.refuse(
                index,
                name,
                "would write documents whose copied identity fields the server does not hold",
                "copy identity fields in the application, not in the pipeline",
            )
        walk.keep({name: spec})
        return None

    return step


def _any_stage(walk: _Walk, index: int, stage: Mapping[str, Any]) -> _Step:
    """A stage the planner does not rewrite: on the server if it reads no identity value."""
    name = stage_name(stage) or "stage"
    if name in ("$graphLookup", "$unionWith", "$facet") and split_joins([stage]) & walk.split:
        raise _split_join(walk, index, name)
    if walk.mentions_identity(stage):
        walk.note(identity_references(walk.schema, stage))
        raise walk.refuse(
            index,
            name,
            "reads identity fields, which the server cannot read, and the process cannot run "
            f"{name}",
            "use $group on the identity field (it is merged in the process), filter with $match, "
            "or compute it in the application",
        )
    _leave(walk, stage)
    return None


_HANDLERS: dict[str, _Handler] = {
    "$match": _match,
    "$sort": _sort,
    "$skip": _window_stage("$skip"),
    "$limit": _window_stage("$limit"),
    "$sample": _window_stage("$sample"),
    "$project": _reshaping("$project"),
    "$addFields": _reshaping("$addFields"),
    "$set": _reshaping("$set"),
    "$unset": _reshaping("$unset"),
    "$unwind": _reshaping("$unwind"),
    "$lookup": _lookup,
    "$group": _group,
    "$sortByCount": _sort_by_count,
    "$replaceRoot": _reshape("$replaceRoot"),
    "$replaceWith": _reshape("$replaceWith"),
    "$out": _terminal("$out"),
    "$merge": _terminal("$merge"),
}
