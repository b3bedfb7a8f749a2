"""An aggregation pipeline evaluated in the process, with MongoDB's own results.

Identity fields are encrypted client-side, so the server cannot evaluate a stage that reads
them. The planner then reads the matching documents (within its scan limit), joins them, and
hands them here, in natural order, with the rest of the pipeline. What comes out must be what
the server would have returned: the same values of the same BSON types, in the same order
where MongoDB defines one, and the same failures (error codes) for malformed stages and
expressions. Messages name stages, operators, fields and types, never a document's values.

The pipeline is parsed and validated once, each stage into a closure and each expression into
a compiled tree (the ``expressions`` package), then applied to the documents.
Stages that need the server (other collections, indexes, randomness, cluster state:
``$lookup``, ``$out``, ``$sample`` …) and operators only the server implements raise
``UnsupportedOperator``; ``pipeline_supported`` answers the same question without documents.

Output order: as the server's for every stage that defines one. ``$group`` (and so
``$sortByCount`` ties) leaves it unspecified; groups are emitted in order of first appearance
in the input. Dates computed here are naive ``datetime`` values in UTC (pymongo's default
decoding); dates passed through keep whatever form they came in.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from privata_mongo.core.failures import OperationFailed
from privata_mongo.core.mql import _group_stage, _projection_stage, _stages
from privata_mongo.core.mql._stages import Documents, Stage
from privata_mongo.core.mql.expressions._compiler import new_variables
from privata_mongo.core.mql.values import UnsupportedOperator

__all__ = ["pipeline_supported", "run_pipeline"]


def _per_document(transform: _projection_stage.Transform) -> Stage:
    def run(documents: Documents, now: datetime.datetime) -> Documents:
        return [transform(document, new_variables(document, now)) for document in documents]

    return run


_COMPILERS: Final[dict[str, Callable[[Any], Stage]]] = {
    "$match": _stages.compile_match,
    "$sort": _stages.compile_sort,
    "$skip": _stages.compile_skip,
    "$limit": _stages.compile_limit,
    "$unwind": _stages.compile_unwind,
    "$replaceRoot": _stages.compile_replace_root,
    "$replaceWith": _stages.compile_replace_with,
    "$project": lambda spec: _per_document(_projection_stage.compile_project(spec)),
    "$addFields": lambda spec: _per_document(
        _projection_stage.compile_add_fields("$addFields", spec)
    ),
    "$set": lambda spec: _per_document(_projection_stage.compile_add_fields("$set", spec)),
    "$unset": lambda spec: _per_document(_projection_stage.compile_unset(spec)),
    "$group": _group_stage.compile_group,
    "$count": _group_stage.compile_count,
    "$sortByCount": _group_stage.compile_sort_by_count,
    "$bucket": _group_stage.compile_bucket,
    "$facet": lambda spec: _group_stage.compile_facet(spec, _compile),
}


def _stage_name(stage: Any) -> str:
    if not isinstance(stage, Mapping):
        raise OperationFailed("Each element of the 'pipeline' array must be an object", 14)
    if len(stage) != 1:
        raise OperationFailed(
            "A pipeline stage specification object must contain exactly one field.", 40323
        )
    return str(next(iter(stage)))


def _compile(pipeline: Sequence[Any]) -> list[Stage]:
    if isinstance(pipeline, (str, bytes, Mapping)):
        raise OperationFailed("'pipeline' option must be specified as an array", 14)
    stages: list[Stage] = []
    for stage in pipeline:
        name = _stage_name(stage)
        compiler = _COMPILERS.get(name)
        if compiler is None:
            if name in _stages.UNSUPPORTED_STAGES:
                raise UnsupportedOperator(name)
            raise OperationFailed(f"Unrecognized pipeline stage name: '{name}'", 40324)
        stages.append(compiler(stage[name]))
    return stages


def run_pipeline(
    documents: Iterable[Mapping[str, Any]],
    pipeline: Sequence[Mapping[str, Any]],
    *,
    now: datetime.datetime,
) -> list[dict[str, Any]]:
    """Evaluate ``pipeline`` over ``documents`` (in natural order) as the server would.

    The input documents are not modified; output documents may share unchanged sub-values
    with them. ``now`` is the value of ``$$NOW`` for the whole evaluation.

    Raises:
        OperationFailed: the pipeline or an expression is malformed, or an expression fails
            on a document (a type mismatch, a division by zero …), with the server's code.
        UnsupportedOperator: a stage or operator that only the server can evaluate.
    """
    stages = _compile(pipeline)
    current: Documents = list(documents)
    for stage in stages:
        current = stage(current, now)
    return [dict(document) for document in current]


def pipeline_supported(pipeline: Sequence[Mapping[str, Any]]) -> str | None:
    """None if ``run_pipeline`` can evaluate ``pipeline``; else the first unsupported name.

    The answer comes from parsing alone: a malformed pipeline answers None (``run_pipeline``
    then fails as the server would). Two refusals can only happen while evaluating, because
    they depend on values: a regular expression computed from a document that Python cannot
    express faithfully (``$regexMatch``), and ``$convert`` of binary data.
    """
    try:
        _compile(pipeline)
    except UnsupportedOperator as unsupported:
        return unsupported.operator
    except OperationFailed:
        return None
    return None
