"""Internal. The stages that take documents one at a time (and ``$sort``).

These are ``$match``, ``$sort``, ``$skip``, ``$limit``, ``$unwind``, ``$replaceRoot`` and
``$replaceWith``.

Each ``compile_*`` function validates its stage specification once, as the server's
``DocumentSource::createFromBson`` does (same error codes), and returns a ``Stage``: a function
from the input documents (and the evaluation's ``NOW``) to the output documents. Stages never
modify their input documents; a stage that changes a document builds a new one.

``$match`` evaluates filters with the in-process matcher (``match``), plus a top-level
``$expr``, which is an aggregation expression evaluated here. ``$sort`` is stable and orders
like the server's sort (``values.sort_documents``). ``$unwind`` reads its path through embedded
documents only, as ``Document::getNestedField`` does: an array met before the end of the path
makes the value missing.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bson.int64 import Int64

from privata_mongo.core.mql._bson_types import ARRAY_TYPES, MISSING, as_object, as_sent, type_name
from privata_mongo.core.mql._numbers import parse_integer
from privata_mongo.core.mql.expressions._base import fail, is_number, nullish, truthy
from privata_mongo.core.mql.expressions._compiler import (
    compile_expression,
    new_variables,
    path_parts,
)
from privata_mongo.core.mql.match import compile_filter
from privata_mongo.core.mql.values import UnsupportedOperator, sort_documents

Documents = list[Mapping[str, Any]]
Stage = Callable[[Documents, datetime.datetime], Documents]
"""A compiled stage: input documents and ``$$NOW`` in, output documents out."""


def compile_match(spec: Any) -> Stage:
    """``$match``: the query language, and a top-level ``$expr``."""
    if not isinstance(spec, Mapping):
        raise fail("the match filter must be an expression in an object", 15959)
    query = {key: value for key, value in spec.items() if key != "$expr"}
    matcher = compile_filter(query)
    condition = compile_expression(spec["$expr"]) if "$expr" in spec else None

    def run(documents: Documents, now: datetime.datetime) -> Documents:
        selected = [document for document in documents if matcher(document)]
        if condition is None:
            return selected
        return [doc for doc in selected if truthy(condition(new_variables(doc, now)))]

    return run


def compile_sort(spec: Any) -> Stage:
    """``$sort``: stable, with the server's order over types, arrays and missing fields."""
    if not isinstance(spec, Mapping):
        raise fail("the $sort key specification must be an object", 15973)
    if not spec:
        raise fail("$sort stage must have at least one sort key", 15976)
    keys: list[tuple[str, int]] = []
    for path, direction in ((as_sent(k), as_sent(v)) for k, v in spec.items()):
        path_parts(str(path))
        if isinstance(direction, Mapping):
            raise UnsupportedOperator("$meta")
        if not is_number(direction):
            raise fail(
                "$sort key ordering must be specified using a number or {$meta: 'textScore'}", 15974
            )
        if direction not in (1, -1):
            raise fail("$sort key ordering must be 1 (for ascending) or -1 (for descending)", 15975)
        keys.append((str(path), int(direction)))

    def run(documents: Documents, now: datetime.datetime) -> Documents:
        return list(sort_documents(documents, keys))

    return run


def _count_argument(stage: str, spec: Any, code: int) -> int:
    try:
        return parse_integer(spec, non_negative=True)
    except ValueError as error:
        raise fail(f"invalid argument to {stage} stage: {error}", code) from None


def compile_skip(spec: Any) -> Stage:
    """``$skip``: a non-negative 64-bit integer."""
    count = _count_argument("$skip", spec, 5107200)
    return lambda documents, now: documents[count:]


def compile_limit(spec: Any) -> Stage:
    """``$limit``: a positive 64-bit integer."""
    count = _count_argument("$limit", spec, 5107201)
    if count == 0:
        raise fail("the limit must be positive", 15958)
    return lambda documents, now: documents[:count]


def _unwind_options(spec: Any) -> tuple[str, str | None, bool]:
    if isinstance(spec, str):
        path, index, preserve = spec, None, False
    elif isinstance(spec, Mapping):
        path, index, preserve = "", None, False
        for key, value in spec.items():
            if key == "path":
                if not isinstance(value, str):
                    raise fail(
                        f"expected a string as the path for $unwind stage, got {type_name(value)}",
                        28808,
                    )
                path = value
            elif key == "includeArrayIndex":
                if not isinstance(value, str) or not value:
                    raise fail(
                        "expected a non-empty string for the includeArrayIndex option "
                        "to $unwind stage",
                        28810,
                    )
                if value.startswith("$"):
                    raise fail(
                        "includeArrayIndex option to $unwind stage should not be "
                        "prefixed with a '$'",
                        28822,
                    )
                index = value
            elif key == "preserveNullAndEmptyArrays":
                if not isinstance(value, bool):
                    raise fail(
                        "expected a boolean for the preserveNullAndEmptyArrays option to "
                        "$unwind stage",
                        28809,
                    )
                preserve = value
            else:
                raise fail(f"unrecognized option to $unwind stage: {key}", 28811)
        if "path" not in spec:
            raise fail("no path specified to $unwind stage", 28812)
    else:
        raise fail(
            f"expected either a string or an object as specification for $unwind stage, "
            f"got {type_name(spec)}",
            15981,
        )
    if not str(path).startswith("$"):
        raise fail("path option to $unwind stage should be prefixed with a '$'", 28818)
    return str(path)[1:], index, preserve


def get_nested(document: Mapping[str, Any], parts: Sequence[str]) -> Any:
    """``Document::getNestedField``: through embedded documents only."""
    value: Any = document
    for part in parts:
        sub = as_object(value)
        if sub is None:
            return MISSING
        value = sub.get(part, MISSING)
    return value


def set_nested(document: Mapping[str, Any], parts: Sequence[str], value: Any) -> dict[str, Any]:
    """A copy of ``document`` with ``value`` at the path (non-documents on the way replaced)."""
    out = dict(document)
    if len(parts) == 1:
        if value is MISSING:
            out.pop(parts[0], None)
        else:
            out[parts[0]] = value
        return out
    sub = as_object(out.get(parts[0]))
    out[parts[0]] = set_nested(sub if sub is not None else {}, parts[1:], value)
    return out


def compile_unwind(spec: Any) -> Stage:
    """``$unwind``: one document per array element; ``includeArrayIndex`` is a long."""
    path, index, preserve = _unwind_options(spec)
    parts = path_parts(path)
    index_parts = path_parts(index) if index is not None else None

    def emit(out: Documents, document: Mapping[str, Any], position: Any) -> None:
        if index_parts is not None:
            document = set_nested(document, index_parts, position)
        out.append(document)

    def run(documents: Documents, now: datetime.datetime) -> Documents:
        out: Documents = []
        for document in documents:
            value = get_nested(document, parts)
            if isinstance(value, ARRAY_TYPES):
                if not value:
                    if preserve:
                        emit(out, set_nested(document, parts, MISSING), None)
                    continue
                for position, element in enumerate(value):
                    emit(out, set_nested(document, parts, element), Int64(position))
            elif nullish(value):
                if preserve:
                    emit(out, document, None)
            else:
                emit(out, document, None)
        return out

    return run


def _new_root(stage: str, expression: Any) -> Stage:
    compiled = compile_expression(expression)

    def run(documents: Documents, now: datetime.datetime) -> Documents:
        out: Documents = []
        for document in documents:
            value = compiled(new_variables(document, now))
            root = as_object(value)
            if root is None or isinstance(value, ARRAY_TYPES):
                raise fail(
                    f"'newRoot' expression must evaluate to an object, but resulting "
                    f"value was of type '{type_name(value)}'",
                    40228,
                )
            out.append(dict(root))
        return out

    return run


def compile_replace_root(spec: Any) -> Stage:
    """``$replaceRoot``: ``{newRoot: <expression>}``, which must give a document."""
    if not isinstance(spec, Mapping):
        raise fail(
            f"expected an object as specification for $replaceRoot stage, got {type_name(spec)}",
            40229,
        )
    for key in spec:
        if key != "newRoot":
            raise fail(f"BSON field '$replaceRoot.{key}' is an unknown field.", 40415)
    if "newRoot" not in spec:
        raise fail("BSON field '$replaceRoot.newRoot' is missing but a required field", 40414)
    return _new_root("$replaceRoot", spec["newRoot"])


def compile_replace_with(spec: Any) -> Stage:
    """``$replaceWith``: ``$replaceRoot`` with the expression given directly."""
    return _new_root("$replaceWith", spec)
