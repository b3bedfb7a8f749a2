"""Restriction through joins: a pipeline reaching a marked collection sees only what a find would.

A native collection of the data map (``proxy.marked``) filters its own reads, but a pipeline of
*another* collection reaches its documents by a join (``$lookup``, ``$graphLookup``,
``$unionWith``) that the server runs without passing through it. Every such join is therefore
given the same read clause (``restriction.visibility``), as one more stage of the joined
collection's own pipeline, so a restricted subject's visit is as absent from a patient's
``$lookup`` as from ``Visit.objects``:

- a ``$lookup`` or ``$unionWith`` with a sub-pipeline gets ``{"$match": clause}`` first in it
  (MongoDB runs sub-pipelines with ``localField`` since 5.0);
- a ``$graphLookup`` gets the clause joined to its ``restrictSearchWithMatch``;
- a ``$unionWith`` naming only a collection gets a sub-pipeline holding the clause;
- a top-level ``$lookup`` of the ``localField``/``foreignField`` form is not rewritten: it runs
  in the process (``local_joins``), reading the joined collection through its proxy, which
  filters it. That form is the one every backend can run (mongomock has no sub-pipelines,
  FerretDB v1.24 no ``$lookup`` at all), and the one the ODMs write.

Sub-pipelines are rewritten at every depth, through ``$facet`` too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from privata_mongo.core.rights.restriction import conjoined

__all__ = ["local_joins", "restricted_joins"]

_TARGET = {"$lookup": "from", "$graphLookup": "from", "$unionWith": "coll"}


def _local(name: str, spec: Any) -> bool:
    """Whether a stage is a ``$lookup`` of the plain ``localField``/``foreignField`` form."""
    return (
        name == "$lookup"
        and isinstance(spec, Mapping)
        and "localField" in spec
        and "pipeline" not in spec
        and "let" not in spec
    )


def local_joins(pipeline: Sequence[Any], marked: Callable[[str], bool]) -> frozenset[str]:
    """The marked collections a top-level plain ``$lookup`` joins: the process joins them."""
    found: set[str] = set()
    for stage in pipeline:
        if not isinstance(stage, Mapping):
            continue
        for name, spec in stage.items():
            if _local(name, spec) and isinstance(spec["from"], str) and marked(spec["from"]):
                found.add(spec["from"])
    return frozenset(found)


def restricted_joins(
    pipeline: Sequence[Mapping[str, Any]],
    marked: Callable[[str], bool],
    clause: Mapping[str, Any] | None,
    *,
    top: bool = True,
) -> list[Any]:
    """``pipeline`` with the read ``clause`` in every join into a marked collection.

    ``top`` pipelines leave their plain ``$lookup`` stages to the process (``local_joins``).
    Without a clause (nothing is hidden) the pipeline is returned as it is.
    """
    if clause is None:
        return list(pipeline)
    return [_stage(stage, marked, clause, top) for stage in pipeline]


def _stage(stage: Any, marked: Callable[[str], bool], clause: Mapping[str, Any], top: bool) -> Any:
    if not isinstance(stage, Mapping) or len(stage) != 1:
        return stage
    ((name, spec),) = stage.items()
    if name == "$facet" and isinstance(spec, Mapping):
        return {
            name: {
                k: restricted_joins(v, marked, clause, top=False) if isinstance(v, list) else v
                for k, v in spec.items()
            }
        }
    key = _TARGET.get(name)
    if key is None:
        return stage
    if name == "$unionWith" and isinstance(spec, str):
        spec = {"coll": spec}
    if not isinstance(spec, Mapping):
        return stage
    made = dict(spec)
    inner = made.get("pipeline")
    if isinstance(inner, list):
        made["pipeline"] = restricted_joins(inner, marked, clause, top=False)
    target = made.get(key)
    if not (isinstance(target, str) and marked(target)) or (top and _local(name, spec)):
        return {name: made} if made != dict(spec) else stage
    if name == "$graphLookup":
        restrict = made.get("restrictSearchWithMatch")
        made["restrictSearchWithMatch"] = conjoined(
            restrict if isinstance(restrict, Mapping) else {}, clause
        )
    else:
        made["pipeline"] = [{"$match": dict(clause)}, *(made.get("pipeline") or [])]
    return {name: made}
