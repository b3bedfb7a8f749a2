"""MongoDB's value order, equality, path lookup and sort, computed in the process.

Identity fields live encrypted or in another collection, so some predicates, sorts and update
operators (``$min``, ``$max``) run here instead of on the server. They must order and compare
values exactly as the server does, or the wrapped application would see other documents, in
another order, than the native one. The rules follow the server's ``BSONElement::compareElements``
and ``canonicalizeBSONType`` (type bracketing, numbers compared exactly across int, long, double
and decimal, NaN below every number, embedded documents compared field by field in order), the
matcher's path traversal (``matcher/path.cpp``) and the sort key generator, which sorts a
document as a multikey index over the sort pattern would.

This module holds the order, equality and sort; the type ranks (``type_rank``, ``MISSING``)
live in ``_bson_types`` and the path walks (``lookup``) in ``_traverse``, and are re-exported
here, which is where callers import them from.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bson.binary import Binary
from bson.int64 import Int64

from privata_mongo.core.failures import OperationFailed
from privata_mongo.core.mql._bson_types import (
    ARRAY,
    BINDATA,
    BOOL,
    CODE,
    CODE_WS,
    DATE,
    MISSING,
    NUMBER,
    OBJECT,
    OBJECTID,
    REGEX,
    STRING,
    TIMESTAMP,
    as_object,
    as_sent,
    date_millis,
    is_nan,
    regex_flags,
    regex_pattern,
    sort_pairs,
    type_rank,
)
from privata_mongo.core.mql._numbers import plain
from privata_mongo.core.mql._traverse import index_keys, lookup

__all__ = [
    "MISSING",
    "UnsupportedOperator",
    "as_sent",
    "compare",
    "equal",
    "lookup",
    "sort_directions",
    "sort_documents",
    "sort_key",
    "sort_pairs",
    "type_rank",
]


class UnsupportedOperator(Exception):
    """An operator the process cannot evaluate (``$where``, ``$text``, geo, ``$meta`` …).

    The caller decides what to do (send the predicate to the server, or refuse the query); the
    message names the operator only.
    """

    def __init__(self, operator: str) -> None:
        super().__init__(f"{operator} cannot be evaluated in the process")
        self.operator = operator


def _sign(x: Any, y: Any) -> int:
    return -1 if x < y else (1 if x > y else 0)


def _binary(value: Any) -> tuple[int, int, bytes]:
    if isinstance(value, Binary):
        return len(value), value.subtype, bytes(value)
    if isinstance(value, uuid.UUID):
        return 16, 4, value.bytes
    return len(value), 0, bytes(value)


def _compare_documents(a: Mapping[str, Any], b: Mapping[str, Any]) -> int:
    right = iter(b.items())
    for key, value in a.items():
        other = next(right, None)
        if other is None:
            return 1
        c = _compare_elements(key, value, other[0], other[1])
        if c:
            return c
    return 0 if next(right, None) is None else -1


def _compare_arrays(a: Sequence[Any], b: Sequence[Any]) -> int:
    for x, y in zip(a, b, strict=False):
        c = compare(x, y)
        if c:
            return c
    return _sign(len(a), len(b))


def _compare_elements(key_a: str, a: Any, key_b: str, b: Any) -> int:
    rank_a, rank_b = type_rank(a), type_rank(b)
    if rank_a != rank_b:
        return _sign(rank_a, rank_b)
    if key_a != key_b:
        return _sign(key_a, key_b)
    return _compare_same_rank(a, b, rank_a)


def _compare_same_rank(a: Any, b: Any, rank: int) -> int:
    if rank == NUMBER:
        a_nan, b_nan = is_nan(a), is_nan(b)
        if a_nan or b_nan:
            return 0 if a_nan and b_nan else (-1 if a_nan else 1)
        return _sign(plain(a), plain(b))
    if rank in (STRING, BOOL, CODE):
        return _sign(a, b)
    if rank == OBJECT:
        return _compare_documents(as_object(a) or {}, as_object(b) or {})
    if rank == ARRAY:
        return _compare_arrays(a, b)
    if rank == BINDATA:
        return _sign(_binary(a), _binary(b))
    if rank == OBJECTID:
        return _sign(a.binary, b.binary)
    if rank == DATE:
        return _sign(date_millis(a), date_millis(b))
    if rank == TIMESTAMP:
        return _sign((a.time, a.inc), (b.time, b.inc))
    if rank == REGEX:
        return _sign((regex_pattern(a), regex_flags(a)), (regex_pattern(b), regex_flags(b)))
    if rank == CODE_WS:
        return _sign(str(a), str(b)) or _compare_documents(a.scope, b.scope)
    return 0  # MinKey, MaxKey, null, undefined: one value each


def compare(a: Any, b: Any) -> int:
    """-1, 0 or 1: MongoDB's total order over BSON values, across types.

    Values of different canonical types order by type (``type_rank``); numbers compare exactly
    across int, Int64, float and Decimal128 (NaN equals NaN and sorts below every other number);
    strings compare by UTF-8 bytes (no collation); embedded documents compare element by
    element in field order (type, then field name, then value), arrays element-wise, the
    shorter first on a tie. ``MISSING`` compares as null.
    """
    ta, tb = type(a), type(b)
    if (ta is int or ta is float) and (tb is int or tb is float) and a == a and b == b:
        return _sign(a, b)
    if ta is str and tb is str:
        return _sign(a, b)
    rank_a, rank_b = type_rank(a), type_rank(b)
    if rank_a != rank_b:
        return _sign(rank_a, rank_b)
    return _compare_same_rank(a, b, rank_a)


def equal(a: Any, b: Any) -> bool:
    """MongoDB equality: ``1 == 1.0 == Int64(1) == Decimal128("1")``, NaN equals NaN.

    Embedded documents are equal only with the same fields in the same order; ``True`` never
    equals ``1`` (booleans and numbers are different types).
    """
    return compare(a, b) == 0


def _compare_keys(a: tuple[Sequence[Any], Sequence[int]], b: tuple[Sequence[Any], Any]) -> int:
    for mine, theirs, direction in zip(a[0], b[0], a[1], strict=True):
        c = compare(mine, theirs)
        if c:
            return c * direction
    return 0


_SortKey = functools.cmp_to_key(_compare_keys)


def _sort_spec(sort: Sequence[tuple[str, int]]) -> list[tuple[tuple[str, ...] | None, int]]:
    spec: list[tuple[tuple[str, ...] | None, int]] = []
    for path, direction in sort:
        if isinstance(direction, Mapping):
            raise UnsupportedOperator("$meta")
        direction = as_sent(direction)
        if type(direction) not in (int, float, Int64) or direction not in (1, -1):
            raise OperationFailed(
                "$sort key ordering must be 1 (for ascending) or -1 (for descending)", 15975
            )
        path = as_sent(path)
        spec.append((None if path == "$natural" else tuple(path.split(".")), int(direction)))
    return spec


def sort_directions(sort: Sequence[tuple[str, Any]]) -> list[tuple[str, int]]:
    """``sort`` with its directions as ints, checked as the server checks a sort first.

    Raises:
        OperationFailed: a direction is not 1 or -1 (code 15975), before anything is read.
        UnsupportedOperator: a ``{"$meta": …}`` key.
    """
    _sort_spec(sort)
    return [(path, int(as_sent(direction))) for path, direction in sort]


def _best_key(
    document: Mapping[str, Any], spec: Sequence[tuple[tuple[str, ...] | None, int]], position: int
) -> Any:
    directions = [direction for _, direction in spec]
    paths = [path for path, _ in spec if path is not None]
    keys = index_keys(document, paths)
    chosen: list[Any] = keys[0]
    if len(keys) > 1:
        chosen = min(keys, key=lambda key: _SortKey((key, directions)))
    best = iter(chosen)
    return _SortKey(([position if path is None else next(best) for path, _ in spec], directions))


def sort_key(document: Mapping[str, Any], sort: Sequence[tuple[str, int]]) -> Any:
    """A key for ``sorted()`` that orders documents as the server's sort does.

    Missing fields sort as null; an array sorts by its smallest element ascending and its
    largest descending (an empty array below null); several keys through one array are chosen
    together, as in a compound multikey index. ``$natural`` contributes nothing here (see
    ``sort_documents``).

    Raises:
        OperationFailed: two keys run through different arrays ("parallel arrays", code 2), or
            a direction is not 1 or -1 (code 15975).
        UnsupportedOperator: a ``{"$meta": …}`` key.
    """
    return _best_key(document, _sort_spec(sort), 0)


def sort_documents(
    documents: Iterable[Mapping[str, Any]], sort: Sequence[tuple[str, int]]
) -> list[Mapping[str, Any]]:
    """The documents in sort order; ties keep their input (natural) order.

    ``("$natural", 1)`` orders by input position and ``("$natural", -1)`` reverses it.
    """
    docs = list(documents)
    spec = _sort_spec(sort)
    if not spec:
        return docs
    keys = [_best_key(document, spec, position) for position, document in enumerate(docs)]
    order = sorted(range(len(docs)), key=keys.__getitem__)
    return [docs[i] for i in order]
