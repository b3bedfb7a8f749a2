"""A find projection applied in the process, operators included, with the server's semantics.

Identity rows are decrypted in the process, so their part of a find projection is applied here:
inclusion or exclusion of fields, and the two find-only operators on array fields, ``$slice``
(the first or last *n* elements, or ``[skip, limit]``) and ``$elemMatch`` (the first element
that matches, or no field at all). ``$elemMatch`` makes a projection an inclusion, ``$slice``
keeps the mode the other fields give it (every field is returned when it stands alone).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from privata_mongo.core.failures import OperationFailed
from privata_mongo.core.mql._bson_types import ARRAY_TYPES
from privata_mongo.core.mql._numbers import parse_integer
from privata_mongo.core.mql._projection_stage import compile_project
from privata_mongo.core.mql.expressions._compiler import new_variables
from privata_mongo.core.mql.match import compile_filter
from privata_mongo.core.mql.values import UnsupportedOperator

__all__ = ["compile_find_projection"]

Row = Mapping[str, Any]
_BAD_SLICE = 28724


def _integer(value: Any) -> int:
    try:
        return parse_integer(value)
    except ValueError:
        raise OperationFailed(
            "$slice only supports numbers and [skip, limit] arrays", _BAD_SLICE
        ) from None


def _slicer(spec: Any) -> Callable[[Sequence[Any]], list[Any]]:
    if isinstance(spec, ARRAY_TYPES):
        if len(spec) != 2:
            raise OperationFailed(
                "$slice array argument must be of the form [skip, limit]", _BAD_SLICE
            )
        skip, limit = _integer(spec[0]), _integer(spec[1])
        if limit <= 0:
            raise OperationFailed("$slice limit must be positive", _BAD_SLICE)

        def window(array: Sequence[Any]) -> list[Any]:
            start = max(len(array) + skip, 0) if skip < 0 else min(skip, len(array))
            return list(array[start : start + limit])

        return window
    count = _integer(spec)
    if count >= 0:
        return lambda array: list(array[:count])
    return lambda array: list(array[count:])


def compile_find_projection(
    projection: Mapping[str, Any], now: datetime.datetime
) -> Callable[[Row], dict[str, Any]]:
    """Compile a find projection (without ``_id``, which the caller keeps) into a transform.

    A find projection may compute fields from aggregation expressions (``{"a": "$b"}``,
    ``{"a": {"$literal": 1}}``), which read ``$$ROOT``/``$$CURRENT`` (the row) and ``$$NOW``
    (``now``, the operation's clock), so each row is evaluated with those bound, as every
    other entry point of the expression engine does (``new_variables``).

    Raises:
        OperationFailed: a malformed ``$slice``.
        UnsupportedOperator: an operator other than ``$slice``/``$elemMatch``, or one on a
            dotted path (``a.b``), which this engine does not evaluate.
    """
    base: dict[str, Any] = {}
    slices: dict[str, Callable[[Sequence[Any]], list[Any]]] = {}
    matches: dict[str, Callable[[Row], bool]] = {}
    for key, value in projection.items():
        if not isinstance(value, Mapping):
            base[key] = value
            continue
        if "." in key or len(value) != 1:
            raise UnsupportedOperator(f"{next(iter(value), '$')} on a dotted path")
        ((operator, argument),) = value.items()
        if operator == "$slice":
            slices[key] = _slicer(argument)
        elif operator == "$elemMatch":
            matches[key] = compile_filter({key: {"$elemMatch": argument}})
            base[key] = 1
        else:
            raise UnsupportedOperator(operator)
    if any(bool(v) for v in base.values()):
        base.update(dict.fromkeys(slices, 1))
    shape = compile_project(base) if base else None

    def transform(row: Row) -> dict[str, Any]:
        out = shape(row, new_variables(row, now)) if shape is not None else dict(row)
        for key, cut in slices.items():
            if isinstance(out.get(key), ARRAY_TYPES):
                out[key] = cut(out[key])
        for key, matcher in matches.items():
            array = out.pop(key, None)
            if isinstance(array, ARRAY_TYPES):
                first = next((e for e in array if matcher({key: [e]})), _NONE)
                if first is not _NONE:
                    out[key] = [first]
        return out

    return transform


_NONE = object()
