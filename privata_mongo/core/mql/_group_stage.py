"""Internal. The grouping stages: ``$group``, ``$count``, ``$sortByCount``, ``$bucket``, ``$facet``.

``$group`` evaluates ``_id`` per document (missing counts as null) and finds its group by
MongoDB equality (``1`` and ``1.0`` are one group; the first value seen becomes the ``_id``).
MongoDB leaves the order of groups unspecified; this implementation emits them in order of
first appearance in the input, which is deterministic and what mongomock's users expect. An
accumulator whose value is missing shows null, as ``DocumentSourceGroup::makeDocument`` does.
``$count``, ``$sortByCount`` and ``$bucket`` are the server's own desugarings into ``$group``
(and ``$sort``), so their edge cases (no output for no input, the unmatched ``$bucket``
failure of the generated ``$switch``) follow. ``$facet`` runs each sub-pipeline over the same
input and returns one document.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from privata_mongo.core.mql._bson_types import ARRAY_TYPES, MISSING, type_name
from privata_mongo.core.mql._stages import Documents, Stage
from privata_mongo.core.mql.expressions._accumulators import (
    Factory,
    compile_accumulator,
    count_factory,
)
from privata_mongo.core.mql.expressions._base import (
    Expr,
    expr_compare,
    expr_equal,
    expr_rank,
    fail,
    int_or_long,
)
from privata_mongo.core.mql.expressions._compiler import (
    compile_expression,
    is_operator_document,
    new_variables,
    validate_field_name,
)
from privata_mongo.core.mql.expressions._value_keys import value_key
from privata_mongo.core.mql.values import UnsupportedOperator, sort_documents

_Output = list[tuple[str, Expr, Factory]]


def _compile_id(spec: Any) -> Expr:
    if isinstance(spec, Mapping) and spec and not str(next(iter(spec))).startswith("$"):
        for value in spec.values():
            if isinstance(value, bool) or type_name(value) in ("int", "long", "double", "decimal"):
                raise fail("$group does not support inclusion-style expressions", 17390)
    return compile_expression(spec)


def _grouped(
    documents: Documents, now: datetime.datetime, key: Expr, outputs: _Output
) -> list[tuple[Any, list[Any]]]:
    """Groups in order of first appearance: (``_id``, accumulator states)."""
    groups: dict[Any, tuple[Any, list[Any]]] = {}
    loose: list[tuple[Any, list[Any]]] = []
    order: list[tuple[Any, list[Any]]] = []
    for document in documents:
        variables = new_variables(document, now)
        identity = key(variables)
        identity = None if identity is MISSING else identity
        hashed = value_key(identity)
        group = (
            groups.get(hashed)
            if hashed is not None
            else next((entry for entry in loose if expr_equal(entry[0], identity)), None)
        )
        if group is None:
            group = (identity, [factory() for _, _, factory in outputs])
            if hashed is not None:
                groups[hashed] = group
            else:
                loose.append(group)
            order.append(group)
        for (_, expression, _), state in zip(outputs, group[1], strict=True):
            state.process(expression(variables))
    return order


def _documents(groups: list[tuple[Any, list[Any]]], outputs: _Output) -> Documents:
    result: Documents = []
    for identity, states in groups:
        document: dict[str, Any] = {"_id": identity}
        for (name, _, _), state in zip(outputs, states, strict=True):
            value = state.result()
            document[name] = None if value is MISSING else value
        result.append(document)
    return result


def _group_stage(key: Expr, outputs: _Output) -> Stage:
    return lambda documents, now: _documents(_grouped(documents, now, key, outputs), outputs)


def compile_group(spec: Any) -> Stage:
    """``$group``: ``_id`` expression and accumulator fields."""
    if not isinstance(spec, Mapping):
        raise fail("a group's fields must be specified in an object", 15947)
    if "_id" not in spec:
        raise fail("a group specification must include an _id", 15955)
    key = _compile_id(spec["_id"])
    outputs: _Output = []
    for name, value in spec.items():
        if name == "_id":
            continue
        expression, factory = compile_accumulator(str(name), value, compile_expression)
        outputs.append((str(name), expression, factory))
    return _group_stage(key, outputs)


def compile_count(spec: Any) -> Stage:
    """``$count``: ``{$group: {_id: null, <name>: {$sum: 1}}}`` then ``$project: {_id: 0}``."""
    if not isinstance(spec, str) or not spec:
        raise fail("the count field must be a non-empty string", 40156)
    if spec.startswith("$"):
        raise fail("the count field cannot be a $-prefixed path", 40158)
    if "\0" in spec:
        raise fail("the count field cannot contain a null byte", 40159)
    if "." in spec:
        raise fail("the count field cannot contain '.'", 40160)
    name = str(spec)
    return lambda documents, now: [{name: int_or_long(len(documents))}] if documents else []


def compile_sort_by_count(spec: Any) -> Stage:
    """``$sortByCount``: group by the expression, count, sort by count descending."""
    if isinstance(spec, Mapping):
        if not is_operator_document(spec):
            raise fail(
                "the sortByCount field must be defined as a $-prefixed path or an "
                "expression inside an object",
                40147,
            )
    elif isinstance(spec, str):
        if not spec.startswith("$"):
            raise fail(
                "the sortByCount field must be defined as a $-prefixed path or an "
                "expression inside an object",
                40148,
            )
    else:
        raise fail(
            f"the sortByCount field must be specified as a string or as an object, not "
            f"{type_name(spec)}",
            40149,
        )
    group = _group_stage(compile_expression(spec), [("count", lambda variables: 1, count_factory)])
    return lambda documents, now: list(sort_documents(group(documents, now), [("count", -1)]))


def _bucket_boundaries(boundaries: Any) -> list[Any]:
    if not isinstance(boundaries, ARRAY_TYPES) or len(boundaries) < 2:
        raise fail(
            "The $bucket 'boundaries' field must be an array with at least two values", 40192
        )
    rank = expr_rank(boundaries[0])
    for lower, upper in itertools.pairwise(boundaries):
        if expr_rank(upper) != rank:
            raise fail(
                "All values in the 'boundaries' option to $bucket must have the same type", 40193
            )
        if expr_compare(lower, upper) >= 0:
            raise fail(
                "The 'boundaries' option to $bucket must be sorted in ascending order", 40194
            )
    return list(boundaries)


def compile_bucket(spec: Any) -> Stage:
    """``$bucket``: documents grouped into ``[boundary, next boundary)`` ranges, sorted."""
    if not isinstance(spec, Mapping):
        raise fail(
            f"Argument to $bucket stage must be an object, but found type: {type_name(spec)}", 40201
        )
    for key in spec:
        if key not in ("groupBy", "boundaries", "default", "output"):
            raise fail(f"Unrecognized option to $bucket: {key}", 40197)
    if "groupBy" not in spec or "boundaries" not in spec:
        raise fail("$bucket requires 'groupBy' and 'boundaries' to be specified", 40198)
    group_by = spec["groupBy"]
    if not (isinstance(group_by, str) and group_by.startswith("$")) and not (
        is_operator_document(group_by)
    ):
        raise fail(
            "The $bucket 'groupBy' field must be defined as a $-prefixed path or an expression",
            40202,
        )
    boundaries = _bucket_boundaries(spec["boundaries"])
    has_default, default = "default" in spec, spec.get("default")
    inside = expr_compare(boundaries[0], default) <= 0 and expr_compare(default, boundaries[-1]) < 0
    if has_default and expr_rank(default) == expr_rank(boundaries[0]) and inside:
        raise fail(
            "The $bucket 'default' field must be less than the lowest boundary or "
            "greater than or equal to the highest boundary.",
            40199,
        )
    outputs: _Output = []
    output_spec = spec.get("output", {"count": {"$sum": 1}})
    if not isinstance(output_spec, Mapping):
        raise fail("The $bucket 'output' field must be an object", 40196)
    for name, value in output_spec.items():
        expression, factory = compile_accumulator(str(name), value, compile_expression)
        outputs.append((str(name), expression, factory))
    value_of = compile_expression(group_by)

    def bucket_of(variables: Any) -> Any:
        value = value_of(variables)
        for lower, upper in itertools.pairwise(boundaries):
            if expr_compare(lower, value) <= 0 < expr_compare(upper, value):
                return lower
        if not has_default:
            raise fail(
                "$switch could not find a matching branch for an input, and no default "
                "was specified.",
                40066,
            )
        return default

    group = _group_stage(bucket_of, outputs)
    return lambda documents, now: list(sort_documents(group(documents, now), [("_id", 1)]))


_FACET_BANNED: Final = frozenset(
    {
        "$facet",
        "$out",
        "$merge",
        "$geoNear",
        "$collStats",
        "$indexStats",
        "$planCacheStats",
        "$changeStream",
        "$search",
        "$searchMeta",
        "$vectorSearch",
        "$documents",
    }
)


def compile_facet(spec: Any, compile_stages: Callable[[Sequence[Any]], list[Stage]]) -> Stage:
    """``$facet``: every sub-pipeline over the same input, one output document."""
    if not isinstance(spec, Mapping) or not spec:
        raise fail("the $facet specification must be a non-empty object", 40169)
    facets: list[tuple[str, list[Stage]]] = []
    for name, pipeline in spec.items():
        validate_field_name(str(name))
        if not isinstance(pipeline, ARRAY_TYPES):
            raise fail(
                f"arguments to $facet must be arrays, {name} is type {type_name(pipeline)}", 40170
            )
        if not pipeline:
            raise fail("sub-pipeline in $facet stage cannot be empty", 40171)
        for stage in pipeline:
            stage_name = next(iter(stage), "") if isinstance(stage, Mapping) else ""
            if stage_name in _FACET_BANNED:
                if stage_name not in ("$facet", "$out", "$merge"):
                    raise UnsupportedOperator(stage_name)
                raise fail(f"{stage_name} is not allowed to be used within a $facet stage", 40600)
        facets.append((str(name), compile_stages(pipeline)))

    def run(documents: Documents, now: datetime.datetime) -> Documents:
        output: dict[str, Any] = {}
        for name, stages in facets:
            result = list(documents)
            for stage in stages:
                result = stage(result, now)
            output[name] = result
        return [output]

    return run
