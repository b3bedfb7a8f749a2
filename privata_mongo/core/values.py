"""MongoDB's value order, equality, path lookup and sort, computed in the process.

Identity fields live encrypted or in another collection, so some predicates, sorts and update
operators (``$min``, ``$max``) run here instead of on the server. They must order and compare
values exactly as the server does, or the wrapped application would see other documents, in
another order, than the native one. The rules follow the server's ``BSONElement::compareElements``
and ``canonicalizeBSONType`` (type bracketing, numbers compared exactly across int, long, double
and decimal, NaN below every number, embedded documents compared field by field in order), the
matcher's path traversal (``matcher/path.cpp``) and the sort key generator, which sorts a
document as a multikey index over the sort pattern would.
"""

from __future__ import annotations

import calendar
import datetime
import decimal
import functools
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from bson.binary import Binary
from bson.code import Code
from bson.datetime_ms import DatetimeMS
from bson.dbref import DBRef
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.son import SON
from bson.timestamp import Timestamp

from privata_mongo.core.failures import BAD_VALUE, OperationFailed

__all__ = [
    "MISSING",
    "UnsupportedOperator",
    "compare",
    "equal",
    "lookup",
    "sort_documents",
    "sort_key",
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


class _Sentinel:
    """A named singleton: falsy, and the same object after copy or pickle."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return self._name


MISSING: Final = _Sentinel("MISSING")
"""No value at this path: distinct from ``None`` (null), which is a value."""
_UNDEFINED: Final = _Sentinel("_UNDEFINED")  # an empty array's sort key: below null

# canonicalizeBSONType() in bsontypes.h; missing/undefined is 0 and ranks with null in sort.
MINKEY, UNDEFINED, NULL, NUMBER, STRING, OBJECT, ARRAY = -1, 0, 5, 10, 15, 20, 25
BINDATA, OBJECTID, BOOL, DATE, TIMESTAMP, REGEX, CODE, CODE_WS, MAXKEY = (
    30, 35, 40, 45, 47, 50, 60, 65, 127,
)  # fmt: skip

ARRAY_TYPES: Final = (list, tuple)

_RANK_BY_TYPE: Final[dict[type, int]] = {
    kind: rank
    for rank, kinds in (
        (NULL, (type(None),)), (BOOL, (bool,)), (STRING, (str,)), (OBJECT, (dict, SON, DBRef)),
        (NUMBER, (int, float, Int64, Decimal128, decimal.Decimal)), (ARRAY, (list, tuple)),
        (BINDATA, (bytes, Binary, uuid.UUID)), (OBJECTID, (ObjectId,)), (TIMESTAMP, (Timestamp,)),
        (DATE, (datetime.datetime, DatetimeMS)), (REGEX, (Regex, re.Pattern)),
        (MINKEY, (MinKey,)), (MAXKEY, (MaxKey,)),
    )
    for kind in kinds
}  # fmt: skip


def type_rank(value: Any) -> int:
    """The canonical BSON type of ``value``: its place in MongoDB's comparison/sort order.

    MinKey < null < numbers < strings < objects < arrays < binary < ObjectId < booleans < dates
    < timestamps < regexes < code < MaxKey. Every numeric type shares one rank; ``MISSING``
    ranks as null, as it does in a sort.

    Raises:
        TypeError: for a Python type that has no BSON representation.
    """
    rank = _RANK_BY_TYPE.get(type(value))
    if rank is not None:
        return rank
    if value is MISSING:
        return NULL
    if value is _UNDEFINED:
        return UNDEFINED
    if isinstance(value, Code):  # a str subclass: test it first
        return CODE if value.scope is None else CODE_WS
    for kind, kind_rank in _RANK_BY_TYPE.items():
        if isinstance(value, kind):
            return kind_rank
    if isinstance(value, Mapping):
        return OBJECT
    raise TypeError(f"values of type {type(value).__name__} have no BSON order")


def is_nan(value: Any) -> bool:
    """Whether ``value`` is a double or decimal NaN (the server's NaN, lowest of all numbers)."""
    if isinstance(value, float):
        return value != value
    if isinstance(value, Decimal128):
        return value.to_decimal().is_nan()
    return isinstance(value, decimal.Decimal) and value.is_nan()


def as_object(value: Any) -> Mapping[str, Any] | None:
    """``value`` as an embedded document, or None when it is not one (a DBRef is one)."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, DBRef):
        return value.as_doc()
    return None


def date_millis(value: datetime.datetime | DatetimeMS) -> int:
    """Milliseconds since the epoch, truncated as the driver encodes them (naive means UTC)."""
    if isinstance(value, DatetimeMS):
        return int(value)
    offset = value.utcoffset()
    if offset is not None:
        value = value - offset
    return calendar.timegm(value.timetuple()) * 1000 + value.microsecond // 1000


def regex_flags(value: Regex[Any] | re.Pattern[Any]) -> str:
    """The option letters the driver sends for a Python or BSON regex, in the driver's order."""
    flags = value.flags
    letters = (
        (re.IGNORECASE, "i"),
        (re.LOCALE, "l"),
        (re.MULTILINE, "m"),
        (re.DOTALL, "s"),
        (re.UNICODE, "u"),
        (re.VERBOSE, "x"),
    )
    return "".join(letter for bit, letter in letters if flags & bit)


def regex_pattern(value: Regex[Any] | re.Pattern[Any]) -> str:
    """The pattern text of a Python or BSON regex."""
    pattern = value.pattern
    return pattern.decode("utf-8") if isinstance(pattern, bytes) else str(pattern)


def _sign(x: Any, y: Any) -> int:
    return -1 if x < y else (1 if x > y else 0)


def _number(value: Any) -> Any:
    return value.to_decimal() if isinstance(value, Decimal128) else value


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
        return _sign(_number(a), _number(b))
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


def collect(
    document: Mapping[str, Any],
    parts: Sequence[str],
    traverse_leaf: bool,
    values: list[Any],
    offsets: list[int | None] | None = None,
) -> None:
    """Append every value the query engine considers at the dotted path ``parts``.

    This is the server's ``BSONElementIterator``: arrays met before the last component are
    traversed (their embedded documents are searched, other elements skipped, a numeric
    component also indexes the array); ``MISSING`` is yielded where a document lacks the path;
    an array at the end of the path yields its elements then itself (``traverse_leaf``) or only
    itself. ``offsets`` receives, for each value, the index in the outermost array traversed to
    reach it (None when no array was traversed): the positional ``$`` of an update.
    """
    _Walk(parts, traverse_leaf, values, offsets).document(document, 0, None)


def _array_index(piece: str) -> int:
    if piece.isascii() and piece.isdigit() and (piece == "0" or piece[0] != "0"):
        return int(piece)
    return -1


class _Walk:
    __slots__ = ("leaf", "offsets", "parts", "values")

    def __init__(
        self, parts: Sequence[str], leaf: bool, values: list[Any], offsets: list[int | None] | None
    ) -> None:
        self.parts, self.leaf, self.values, self.offsets = parts, leaf, values, offsets

    def emit(self, value: Any, offset: int | None) -> None:
        self.values.append(value)
        if self.offsets is not None:
            self.offsets.append(offset)

    def document(self, document: Mapping[str, Any], start: int, outer: int | None) -> None:
        parts, last = self.parts, len(self.parts) - 1
        current, i = document, start
        while True:
            value = current.get(parts[i], MISSING)
            if isinstance(value, ARRAY_TYPES):
                break
            sub = as_object(value) if i < last and value is not MISSING else None
            if sub is None:
                self.emit(value if i == last else MISSING, outer)
                return
            current, i = sub, i + 1
        self.array(value, i + 1, outer)

    def array(self, array: Sequence[Any], k: int, outer: int | None) -> None:
        if k == len(self.parts):
            if self.leaf:
                for j, element in enumerate(array):
                    self.emit(element, j if outer is None else outer)
            self.emit(array, outer)
            return
        index, more = _array_index(self.parts[k]), k + 1 < len(self.parts)
        for j, element in enumerate(array):
            sub = as_object(element)
            if sub is not None:
                self.document(sub, k, j if outer is None else outer)
            if j != index:
                continue
            if not more:
                self.emit(element, outer)
            elif sub is not None:
                self.document(sub, k + 1, outer)
            elif isinstance(element, ARRAY_TYPES):
                self.array(element, k + 1, outer)


def lookup(document: Mapping[str, Any], path: str) -> list[Any]:
    """Every value reachable at a dotted path, as the query engine reaches them.

    Arrays along the path are traversed (``a.b`` over ``a: [{b: 1}, {b: [2, 3]}]`` gives
    ``[1, 2, 3, [2, 3]]``); a numeric component also indexes an array; an array at the end of
    the path contributes its elements and then itself. Places where the path does not exist
    contribute nothing, so the result is ``[]`` when nothing is reachable.
    """
    values: list[Any] = []
    collect(document, path.split("."), True, values)
    return [value for value in values if value is not MISSING]


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
        if type(direction) not in (int, float, Int64) or direction not in (1, -1):
            raise OperationFailed(
                "$sort key ordering must be 1 (for ascending) or -1 (for descending)", 15975
            )
        spec.append((None if path == "$natural" else tuple(path.split(".")), int(direction)))
    return spec


def _index_keys(document: Mapping[str, Any], paths: Sequence[tuple[str, ...]]) -> list[list[Any]]:
    """The keys a multikey index over ``paths`` holds for ``document`` (``BtreeKeyGenerator``)."""
    fixed: list[Any] = [None] * len(paths)
    arrays: dict[tuple[str, ...], tuple[Sequence[Any], list[tuple[int, tuple[str, ...]]]]] = {}
    for field, parts in enumerate(paths):
        value: Any = document
        i = 0
        while i < len(parts):
            if isinstance(value, ARRAY_TYPES):
                index = _array_index(parts[i])
                if index < 0:
                    arrays.setdefault(parts[:i], (value, []))[1].append((field, parts[i:]))
                    value = MISSING
                    break
                value = value[index] if index < len(value) else MISSING
            else:
                sub = as_object(value)
                value = MISSING if sub is None else sub.get(parts[i], MISSING)
            if value is MISSING:
                break
            i += 1
        if isinstance(value, ARRAY_TYPES):
            arrays.setdefault(parts, (value, []))[1].append((field, ()))
        elif value is not MISSING:
            fixed[field] = value
    if not arrays:
        return [fixed]
    if len(arrays) > 1:
        raise OperationFailed("cannot sort with keys that are parallel arrays", BAD_VALUE)
    ((array, members),) = arrays.values()
    keys: list[list[Any]] = []
    for element in array or (_UNDEFINED,):
        key = list(fixed)
        deeper = [(field, rest) for field, rest in members if rest]
        for field, rest in members:
            if not rest:
                key[field] = element
        if not deeper:
            keys.append(key)
            continue
        sub = as_object(element) or {}
        for sub_key in _index_keys(sub, [rest for _, rest in deeper]):
            combined = list(key)
            for (field, _), value in zip(deeper, sub_key, strict=True):
                combined[field] = value
            keys.append(combined)
    return keys


def _best_key(
    document: Mapping[str, Any], spec: Sequence[tuple[tuple[str, ...] | None, int]], position: int
) -> Any:
    directions = [direction for _, direction in spec]
    paths = [path for path, _ in spec if path is not None]
    keys = _index_keys(document, paths)
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
