"""Internal. How the answers of several clinical stores merge into the answer of one.

Pure functions and data for ``core.residency.clinical``: the merged cursor (``Merged``: each
store's cursor and its rows not yet merged), the projection that keeps the sort keys a merge
needs (``keyed_projection``), which aggregation pipelines merge and how (``mergeable``), and
the union of ``distinct`` values (``united``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from privata_mongo.core.mql.values import compare, equal, sort_directions
from privata_mongo.core.ops import Document

__all__ = [
    "HOME",
    "Merged",
    "Part",
    "Shape",
    "Store",
    "asked_limit",
    "find_window",
    "keyed_projection",
    "mergeable",
    "stripped",
    "united",
]

HOME: None = None
"""The application's clinical store: regions without a clinical store of their own."""

Store = str | None
"""A region with a clinical store of its own, or ``HOME``."""

_PER_DOCUMENT = frozenset({"$match", "$project", "$addFields", "$set", "$unset"})
_WINDOW = frozenset({"$skip", "$limit"})


@dataclass(slots=True)
class Part:
    """One store's cursor of a merged query, and its rows read and not yet merged."""

    store: Store
    handle: object
    buffer: list[Document] = field(default_factory=list)
    done: bool = False


@dataclass(slots=True)
class Merged:
    """A cursor over one clinical query asked of several stores, merged as it is read.

    Attributes:
        parts: each store's cursor and the rows read from it and not yet merged.
        sort: the server sort the rows are merged by (``[]``: store after store).
        skip: rows to drop after the merge (each store was asked from its first row).
        limit: rows to return at most (``None``: all).
        strip: paths added to the projection only to merge by, removed before the flow sees
            the rows.
    """

    parts: list[Part]
    sort: list[tuple[str, int]]
    skip: int = 0
    limit: int | None = None
    strip: tuple[str, ...] = ()
    skipped: int = 0
    returned: int = 0


def find_window(skip: int, limit: int) -> tuple[int, int | None]:
    """Skip and limit of a find (a negative limit is a limit too)."""
    return skip, (abs(limit) or None)


def asked_limit(skip: int, limit: int | None) -> int:
    """The limit each store is asked with: the rows up to the page's end (``0``: all)."""
    return 0 if limit is None else skip + limit


def keyed_projection(
    projection: Mapping[str, Any] | None, sort: Sequence[tuple[str, int]]
) -> tuple[Mapping[str, Any] | None, tuple[str, ...]]:
    """``projection`` reading the sort keys too, and the paths it added for that.

    Rows of several stores are merged by their sort keys, which a projection may leave out.
    """
    if not projection or not sort:
        return projection, ()
    paths = [p for p, _ in sort if p != "$natural"]
    fields = [v for k, v in projection.items() if k != "_id"]
    inclusive = any(v not in (0, False) for v in fields) or (
        not fields and projection.get("_id", 1) not in (0, False)
    )
    out = dict(projection)
    added: list[str] = []
    for path in paths:
        covered = any(path == k or path.startswith(k + ".") for k in projection)
        if inclusive and not covered and not any(k.startswith(path + ".") for k in projection):
            out[path] = 1
            added.append(path)
        elif not inclusive and (covered or path == "_id") and out.get(path, 1) in (0, False):
            out.pop(path, None)
            added.append(path)
    if "_id" in paths and projection.get("_id", 1) in (0, False) and "_id" not in added:
        out.pop("_id", None)
        added.append("_id")
    return out, tuple(added)


def stripped(row: Document, paths: Sequence[str]) -> Document:
    """``row`` without the ``paths`` a projection read only for the merge."""
    if not paths:
        return row
    out = dict(row)
    for path in paths:
        head, _, rest = path.partition(".")
        if not rest:
            out.pop(head, None)
        elif isinstance(out.get(head), Mapping):
            out[head] = stripped(out[head], [rest])
    return out


def _fold_window(stages: Sequence[Mapping[str, Any]]) -> tuple[int, int | None]:
    skip, limit = 0, None
    for stage in stages:
        (name,) = stage
        value = int(stage[name])
        if name == "$skip":
            limit = None if limit is None else max(limit - value, 0)
            skip += value
        else:
            limit = value if limit is None else min(limit, value)
    return skip, limit


@dataclass(frozen=True, slots=True)
class Shape:
    """How a pipeline asked of several stores merges into one store's answer.

    Attributes:
        head: the stages before the window, run in each store.
        sort: the window's ``$sort`` (``[]``: none), applied to the merged rows.
        skip: rows the window skips, after the merge.
        limit: rows the window keeps (``None``: all).
        tail: the stages after the window, run in each store on the rows the window kept.
    """

    head: list[Mapping[str, Any]]
    sort: list[tuple[str, int]]
    skip: int
    limit: int | None
    tail: list[Mapping[str, Any]]


def _per_document(stage: Mapping[str, Any], own: str) -> bool:
    """Whether ``stage`` acts on each document alone, so running it per store changes nothing.

    A ``$lookup`` qualifies only into the model's own identity collection (``own``): in a
    region's store that is the region's own (another collection may not be there at all).
    """
    if len(stage) != 1:
        return False
    (name,) = stage
    if name == "$lookup":
        spec = stage[name]
        return isinstance(spec, Mapping) and bool(own) and spec.get("from") == own
    return name in _PER_DOCUMENT


def mergeable(pipeline: Sequence[Mapping[str, Any]], own: str = "") -> Shape | None:
    """How ``pipeline`` run in several stores merges (``None``: merging would not do).

    A pipeline merges when it is stages that act on each document alone, then at most one
    window (a ``$sort`` and/or ``$skip``/``$limit`` stages), then (only after a bounded
    window) more stages acting on each document alone: the window is applied to the merged
    rows, and the stages after it run in each store on the rows of that store it kept.
    """
    at = 0
    while at < len(pipeline) and _per_document(pipeline[at], own):
        at += 1
    head, rest = list(pipeline[:at]), list(pipeline[at:])
    sort: list[tuple[str, int]] = []
    if rest and len(rest[0]) == 1 and "$sort" in rest[0]:
        spec = rest[0]["$sort"]
        if not isinstance(spec, Mapping):
            return None
        sort = sort_directions(list(spec.items()))
        rest = rest[1:]
    window = 0
    while window < len(rest) and len(rest[window]) == 1 and next(iter(rest[window])) in _WINDOW:
        window += 1
    skip, limit = _fold_window(rest[:window])
    tail = rest[window:]
    if not all(_per_document(stage, own) for stage in tail):
        return None
    if tail and limit is None and (sort or window):
        return None  # the window's rows would all be read to run the tail on them
    if tail and not sort and not window:
        return Shape(head + tail, [], 0, None, [])
    return Shape(head, sort, skip, limit, tail)


def united(parts: Sequence[Sequence[Any]]) -> list[Any]:
    """The ``distinct`` values of several stores, each once, in the stores' order.

    MongoDB and FerretDB answer in BSON order, so the union is sorted; a store that keeps
    first-seen order (mongomock) gets its values store after store. Duplicates compare with
    MongoDB's equality (``1 == 1.0``), the first seen is kept.
    """
    key = functools.cmp_to_key(compare)
    values = [v for part in parts for v in part]
    if all(list(part) == sorted(part, key=key) for part in parts):
        values = sorted(values, key=key)
    found: list[Any] = []
    for value in values:
        if not any(equal(value, seen) for seen in found):
            found.append(value)
    return found
