"""The rest of an aggregation pipeline, evaluated in the process with MongoDB's own results.

Identity fields are encrypted client-side, so the server cannot evaluate a stage that reads
them. The planner (``core.pushdown``) pushes every stage it can down to the server: filters as
pseudonym sets, projections carried as the pseudonym, groups as partial groups merged by
``group_merge``. What remains runs here, over few documents (merged groups, a page sorted on
identity fields) or batch by batch (stages taking one document at a time): the same values of
the same BSON types, in the same order where MongoDB defines one, and the same failures (error
codes) for malformed stages and expressions. Messages name stages, operators, fields and
types, never a document's values.

The stages are ``$match``, ``$sort``, ``$skip``, ``$limit``, ``$unwind``, ``$project``,
``$addFields``/``$set``, ``$unset``, ``$replaceRoot``/``$replaceWith``, ``$group``, ``$count``
and ``$sortByCount``; the expressions are field paths, literals, conditionals and comparisons
(the ``expressions`` package). Anything else raises ``UnsupportedOperator``, and
``pipeline_supported`` answers the same question without documents.

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
from privata_mongo.core.mql.budget import Deadline, deadline_scope
from privata_mongo.core.mql.expressions._compiler import new_variables
from privata_mongo.core.mql.values import UnsupportedOperator

__all__ = ["STAGES", "pipeline_supported", "run_pipeline"]


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
}

STAGES: Final = frozenset(_COMPILERS)
"""The stages ``run_pipeline`` evaluates."""


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
            raise UnsupportedOperator(name)
        stages.append(compiler(stage[name]))
    return stages


def run_pipeline(
    documents: Iterable[Mapping[str, Any]],
    pipeline: Sequence[Mapping[str, Any]],
    *,
    now: datetime.datetime,
    deadline: Deadline | None = None,
) -> list[dict[str, Any]]:
    """Evaluate ``pipeline`` over ``documents`` (in natural order) as the server would.

    The input documents are not modified; output documents may share unchanged sub-values
    with them. ``now`` is the value of ``$$NOW`` for the whole evaluation. ``deadline``, the
    operation's time limit, is checked between stages and, in ``$match``, between documents and
    around each regex match.

    Raises:
        OperationFailed: the pipeline or an expression is malformed, or an expression fails
            on a document (a type mismatch, a division by zero …), with the server's code.
        UnsupportedOperator: a stage or operator this engine does not evaluate.
    """
    with deadline_scope(deadline):
        stages = _compile(pipeline)
    current: Documents = list(documents)
    for stage in stages:
        if deadline is not None:
            deadline.check()
        current = stage(current, now)
    return [dict(document) for document in current]


def pipeline_supported(pipeline: Sequence[Mapping[str, Any]]) -> str | None:
    """None if ``run_pipeline`` can evaluate ``pipeline``; else the first unsupported name.

    The answer comes from parsing alone: a malformed pipeline answers None (``run_pipeline``
    then fails as the server would).
    """
    try:
        _compile(pipeline)
    except UnsupportedOperator as unsupported:
        return unsupported.operator
    except OperationFailed:
        return None
    return None
