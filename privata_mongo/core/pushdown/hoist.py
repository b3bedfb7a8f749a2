"""Move filters ahead in a pipeline, and read what they read, without evaluating anything.

A ``$match`` commutes with a stage that writes nothing it reads and keeps or drops documents
one by one: ``$sort``, ``$set``/``$addFields``, ``$unset``, an exclusion ``$project``,
``$unwind`` and ``$lookup`` (its ``as`` field). Moving it ahead of them changes no result and
lets the planner resolve its identity conditions against the collection's own documents
(``core.pushdown``); it never crosses ``$skip``, ``$limit``, an inclusion ``$project`` or a
stage that makes new documents. Adjacent filters are merged into one, so that clinical
conditions bound the identity conditions evaluated in the process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from privata_mongo.core.mql.reads import expression_reads
from privata_mongo.core.pushdown.exposure import unwind_paths
from privata_mongo.core.schema import top_field

__all__ = ["FilterReads", "filter_reads", "hoist_filters", "rename_filter", "stage_name"]

_LOGICAL = ("$and", "$or", "$nor")


@dataclass(frozen=True, slots=True)
class FilterReads:
    """The paths a query filter reads: as field keys, and inside ``$expr``."""

    keys: frozenset[str]
    expr: frozenset[str]
    whole: bool

    @property
    def tops(self) -> frozenset[str]:
        """The top-level fields read."""
        return frozenset(top_field(p) for p in self.keys | self.expr)


def filter_reads(filter: Mapping[str, Any]) -> FilterReads:
    """The paths ``filter`` reads (``whole``: it may read any field, e.g. ``$where``)."""
    keys: set[str] = set()
    expr: set[str] = set()
    whole = False
    for key, condition in filter.items():
        if key in _LOGICAL and isinstance(condition, list):
            for child in condition:
                if isinstance(child, Mapping):
                    inner = filter_reads(child)
                    keys |= inner.keys
                    expr |= inner.expr
                    whole = whole or inner.whole
        elif key == "$expr":
            reads = expression_reads(condition)
            if reads is None:
                whole = True
            else:
                expr |= reads
        elif key in ("$comment", "$text"):
            continue
        elif key.startswith("$"):
            whole = True
        else:
            keys.add(key)
    return FilterReads(frozenset(keys), frozenset(expr), whole)


def stage_name(stage: Any) -> str:
    """The name of a pipeline stage (``""`` for a malformed one)."""
    return str(next(iter(stage))) if isinstance(stage, Mapping) and len(stage) == 1 else ""


def _written(stage: Mapping[str, Any]) -> set[str] | None:
    """Top-level fields a document-preserving stage writes; ``None``: not such a stage."""
    name = stage_name(stage)
    spec = stage.get(name)
    if name == "$sort":
        return set()
    if name in ("$set", "$addFields") and isinstance(spec, Mapping):
        return {top_field(str(k)) for k in spec}
    if name == "$project" and isinstance(spec, Mapping) and spec:
        excluded = all(isinstance(v, (bool, int, float)) and not v for v in spec.values())
        return {top_field(str(k)) for k in spec} if excluded else None
    if name == "$unset":
        names = [spec] if isinstance(spec, str) else spec
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            return {top_field(n) for n in names}
        return None
    if name == "$unwind":
        path, index = unwind_paths(spec)
        if path is None:
            return None
        return {top_field(path)} | ({top_field(index)} if index else set())
    if name == "$lookup" and isinstance(spec, Mapping) and isinstance(spec.get("as"), str):
        return {top_field(spec["as"])}
    return None


def _merge_filters(first: Mapping[str, Any], second: Mapping[str, Any]) -> dict[str, Any]:
    if not first:
        return dict(second)
    if not second:
        return dict(first)
    if set(first).isdisjoint(second):
        return {**first, **second}
    return {"$and": [dict(first), dict(second)]}


def hoist_filters(
    stages: list[tuple[int, Mapping[str, Any]]],
) -> list[tuple[int, Mapping[str, Any]]]:
    """Move each ``$match`` ahead of the stages it commutes with, merging adjacent filters."""
    out: list[tuple[int, Mapping[str, Any]]] = []
    for index, stage in stages:
        spec = stage.get("$match") if stage_name(stage) == "$match" else None
        if not isinstance(spec, Mapping) or "$text" in spec:
            out.append((index, stage))
            continue
        reads = filter_reads(spec)
        position = len(out)
        while position > 0 and not reads.whole:
            before = out[position - 1][1]
            if stage_name(before) == "$match":
                break
            written = _written(before)
            if written is None or written & reads.tops:
                break
            position -= 1
        previous = out[position - 1] if position > 0 else None
        if previous is not None and isinstance(previous[1].get("$match"), Mapping):
            merged = _merge_filters(previous[1]["$match"], spec)
            out[position - 1] = (previous[0], {"$match": merged})
        else:
            out.insert(position, (index, {"$match": spec}))
    return out


def rename_filter(filter: Mapping[str, Any], renames: Mapping[str, str]) -> dict[str, Any]:
    """Rewrite field keys that name a copied identity field into the path it copies."""
    items: list[tuple[str, Any]] = []
    for key, condition in filter.items():
        if key in _LOGICAL and isinstance(condition, list):
            children = [
                rename_filter(c, renames) if isinstance(c, Mapping) else c for c in condition
            ]
            items.append((key, children))
            continue
        top, _, rest = key.partition(".")
        if not key.startswith("$") and top in renames:
            key = f"{renames[top]}.{rest}" if rest else renames[top]
        items.append((key, condition))
    keys = [k for k, _ in items]
    if len(set(keys)) == len(keys):
        return dict(items)
    return {"$and": [{k: v} for k, v in items]}
