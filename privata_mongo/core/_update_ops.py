"""Internal. The leaf operators of the in-process update engine, each parsed once.

A leaf is what the server calls a ``ModifierNode``: ``$set``, ``$inc``, ``$push`` … on one path.
Its constructor validates the argument as the server's ``init`` does (same codes), and at apply
time it either builds the value of a field that does not exist yet (``new_value``) or computes
the new value of an existing one (``update``), returning ``NOOP`` when the server would count no
modification. Number arithmetic follows the server's ``SafeNum`` (int32 widening to int64, int64
overflow failing, decimal arithmetic in the decimal128 context, doubles converted to decimal with
15 significant digits), and equality/order come from ``values``. Messages name operators, paths
and types, never a value of the document or of the update.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import bson
from bson.decimal128 import Decimal128, create_decimal128_context
from bson.int64 import Int64
from bson.timestamp import Timestamp

from privata_mongo.core.failures import (
    BAD_VALUE,
    FAILED_TO_PARSE,
    TYPE_MISMATCH,
    OperationFailed,
    WriteFailed,
)
from privata_mongo.core.match import Matcher, compile_filter
from privata_mongo.core.values import compare, date_millis, equal

__all__ = [
    "NOOP",
    "OPERATORS",
    "Leaf",
    "Placeholder",
    "Rename",
    "array_index",
    "copy_value",
    "fail",
    "identical",
    "make_leaf",
    "path_compare",
    "type_name",
]

NOOP: Final = object()
"""Returned by ``Leaf.update`` when the field keeps its value (the server's ``kNoOp``)."""

_DECIMAL: Final = create_decimal128_context()
_INT32_MIN, _INT32_END = -(2**31), 2**31
_INT64_MIN, _INT64_END = -(2**63), 2**63
INT32, INT64, DOUBLE, DECIMAL = 0, 1, 2, 3


def fail(message: str, code: int) -> WriteFailed:
    """A WriteFailed to raise at the call site, so that the flow of each check stays visible."""
    return WriteFailed(message, code)


# ---- types, copies, identity ---------------------------------------------------------------

_TYPE_NAMES: Final[dict[type, str]] = {
    float: "double",
    str: "string",
    dict: "object",
    list: "array",
    tuple: "array",
    bytes: "binData",
    bool: "bool",
    type(None): "null",
    Int64: "long",
    Decimal128: "decimal",
    Timestamp: "timestamp",
    datetime.datetime: "date",
}


def type_name(value: Any) -> str:
    """The server's name for the BSON type of ``value`` (``int``, ``long``, ``object`` …)."""
    kind = type(value)
    if kind is int:
        return "int" if _INT32_MIN <= value < _INT32_END else "long"
    name = _TYPE_NAMES.get(kind)
    if name is not None:
        return name
    if isinstance(value, Mapping):
        return "object"
    names = {
        "ObjectId": "objectId",
        "Binary": "binData",
        "UUID": "binData",
        "Regex": "regex",
        "Pattern": "regex",
        "Code": "javascript",
        "MinKey": "minKey",
        "MaxKey": "maxKey",
        "DBRef": "object",
        "DatetimeMS": "date",
    }
    return names.get(kind.__name__, kind.__name__)


def copy_value(value: Any) -> Any:
    """A copy of ``value`` whose documents are dicts and arrays lists; scalars are shared."""
    kind = type(value)
    if kind is dict or (kind is not list and kind is not tuple and isinstance(value, Mapping)):
        return {key: copy_value(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [copy_value(item) for item in value]
    return value


def identical(a: Any, b: Any) -> bool:
    """The server's ``binaryEqualValues``: same BSON type and the same bytes.

    ``1`` and ``1.0`` differ, ``0.0`` and ``-0.0`` differ, embedded documents must have the same
    fields in the same order with identical values.
    """
    kind = type(a)
    if kind is not type(b):
        return _encoded_equal(a, b)
    if kind is str or kind is bool or a is None or kind is int:
        return bool(a == b)
    if kind is float:
        return struct.pack("<d", a) == struct.pack("<d", b)
    return _encoded_equal(a, b)


def _encoded_equal(a: Any, b: Any) -> bool:
    try:
        return bson.encode({"": a}) == bson.encode({"": b})
    except Exception:  # a value the default codec cannot encode (a native UUID …)
        return type(a) is type(b) and bool(a == b)


def array_index(part: str) -> int | None:
    """The server's ``parseUnsignedBase10Integer``: digits only (leading zeros allowed)."""
    if part and part.isascii() and part.isdigit():
        return int(part)
    return None


def _index_like(name: str) -> bool:
    """A leading ASCII digit and no zero padding: compared as a number by ``path_compare``."""
    return bool(name) and name[0] in "0123456789" and not (name[0] == "0" and len(name) > 1)


def path_compare(a: str, b: str) -> int:
    """``pathsupport::cmpPathsAndArrayIndexes``: the order update children are applied in.

    Field names compare as strings, except that two names that both look like array indexes
    (a leading digit, no zero padding) compare shorter first, so ``"9"`` precedes ``"10"``.
    """
    if _index_like(a) and _index_like(b) and len(a) != len(b):
        return -1 if len(a) < len(b) else 1
    return -1 if a < b else (1 if a > b else 0)


# ---- numbers (SafeNum) -----------------------------------------------------------------------


def number_kind(value: Any) -> int | None:
    """INT32, INT64, DOUBLE or DECIMAL for a BSON number; None for anything else (bool too)."""
    kind = type(value)
    if kind is int:
        return INT32 if _INT32_MIN <= value < _INT32_END else INT64
    if kind is float:
        return DOUBLE
    if kind is Int64:
        return INT64
    if kind is Decimal128:
        return DECIMAL
    return None


def _to_decimal(value: Any, kind: int) -> decimal.Decimal:
    if kind == DECIMAL:
        return value.to_decimal()  # type: ignore[no-any-return]
    if kind != DOUBLE:
        return decimal.Decimal(int(value))
    return double_to_decimal(value)


def double_to_decimal(value: float) -> decimal.Decimal:
    """``Decimal128(double, kRoundTo15Digits)``: exactly 15 significant digits, ties to even."""
    if value == 0 or math.isinf(value) or math.isnan(value):
        return decimal.Decimal(value)
    exact = _DECIMAL.create_decimal_from_float(value)
    quantum = exact.adjusted() - 14
    rounded = exact.quantize(decimal.Decimal((0, (1,), quantum)), context=_DECIMAL)
    if len(rounded.as_tuple().digits) > 15:
        rounded = exact.quantize(decimal.Decimal((0, (1,), quantum + 1)), context=_DECIMAL)
    return rounded


def _integer(result: int, kind: int) -> Any:
    """An integer result in the server's type, or None when it overflows int64 (invalid)."""
    if kind == INT32 and _INT32_MIN <= result < _INT32_END:
        return result
    if _INT64_MIN <= result < _INT64_END:
        return Int64(result)
    return None


def arithmetic(op: str, left: Any, right: Any) -> Any:
    """``SafeNum`` addition (``$inc``) or multiplication (``$mul``); None when invalid."""
    lk, rk = number_kind(left), number_kind(right)
    if lk is None or rk is None:
        return None
    if lk <= INT64 and rk <= INT64:
        result = int(left) + int(right) if op == "$inc" else int(left) * int(right)
        return _integer(result, INT32 if lk == INT32 and rk == INT32 else INT64)
    if lk == DECIMAL or rk == DECIMAL:
        a, b = _to_decimal(left, lk), _to_decimal(right, rk)
        value = _DECIMAL.add(a, b) if op == "$inc" else _DECIMAL.multiply(a, b)
        return Decimal128(value)
    a_float, b_float = float(left), float(right)
    return a_float + b_float if op == "$inc" else a_float * b_float


def numbers_identical(a: Any, b: Any) -> bool:
    """``SafeNum::isIdentical``: same number type and equal value (decimals numerically)."""
    kind = number_kind(a)
    if kind != number_kind(b):
        return False
    if kind == DECIMAL:
        x, y = a.to_decimal(), b.to_decimal()
        return not (x.is_nan() or y.is_nan()) and bool(x == y)
    return bool(a == b)


def parse_long(value: Any, where: str) -> int:
    """``parseIntegerElementToLong``: an integral number, else FailedToParse (code 9)."""
    kind = number_kind(value)
    if kind is None:
        raise fail(f"Expected a number in: {where}", FAILED_TO_PARSE)
    if kind == DOUBLE:
        if math.isnan(value):
            raise fail(f"Expected an integer, but found NaN in: {where}", FAILED_TO_PARSE)
        if not _INT64_MIN <= value < _INT64_END:
            raise fail(f"Cannot represent as a 64-bit integer: {where}", FAILED_TO_PARSE)
        if value != int(value):
            raise fail(f"Expected an integer: {where}", FAILED_TO_PARSE)
    elif kind == DECIMAL:
        number = value.to_decimal()
        if (
            not number.is_finite()
            or number != number.to_integral_value()
            or not _INT64_MIN <= number < _INT64_END
        ):
            raise fail(f"Cannot represent as a 64-bit integer: {where}", FAILED_TO_PARSE)
        return int(number)
    return int(value)


# ---- leaves ------------------------------------------------------------------------------


class Leaf:
    """One operator on one path; subclasses override ``update`` and ``new_value``."""

    __slots__ = ("op", "path")

    creates: bool = True  # the server's allowCreation()
    insert_only: bool = False  # $setOnInsert
    unsets: bool = False  # $unset: removes the field instead of replacing it
    non_viable_ok: bool = False  # allowNonViablePath(): a missing path is never an error

    def __init__(self, op: str, path: str) -> None:
        self.op = op
        self.path = path

    def new_value(self, now: datetime.datetime) -> Any:
        """The value of the field this leaf creates (``setValueForNewElement``)."""
        raise NotImplementedError

    def update(self, value: Any, path: str, now: datetime.datetime) -> Any:
        """The field's new value, or ``NOOP`` (``updateExistingElement``)."""
        raise NotImplementedError


class _Set(Leaf):
    __slots__ = ("value",)

    def __init__(self, op: str, path: str, value: Any) -> None:
        super().__init__(op, path)
        self.value = copy_value(value)

    def new_value(self, now: datetime.datetime) -> Any:
        return copy_value(self.value)

    def update(self, value: Any, path: str, now: datetime.datetime) -> Any:
        return NOOP if identical(value, self.value) else copy_value(self.value)


class _SetOnInsert(_Set):
    __slots__ = ()
    insert_only = True


class _Unset(Leaf):
    __slots__ = ()
    creates = False
    unsets = True
    non_viable_ok = True


class _Arithmetic(Leaf):
    __slots__ = ("operand",)

    def __init__(self, op: str, path: str, operand: Any) -> None:
        super().__init__(op, path)
        if number_kind(operand) is None:
            verb = "increment" if op == "$inc" else "multiply"
            raise fail(
                f"Cannot {verb} with non-numeric argument: {{{path}: <{type_name(operand)}>}}",
                TYPE_MISMATCH,
            )
        self.operand = operand

    def new_value(self, now: datetime.datetime) -> Any:
        if self.op == "$inc":
            return self.operand
        return arithmetic("$mul", self.operand, 0)

    def update(self, value: Any, path: str, now: datetime.datetime) -> Any:
        if number_kind(value) is None:
            field = path.rsplit(".", 1)[-1]
            raise fail(
                f"Cannot apply {self.op} to a value of non-numeric type. The field '{field}' "
                f"has non-numeric type {type_name(value)}",
                TYPE_MISMATCH,
            )
        result = arithmetic(self.op, self.operand, value)
        if result is not None and numbers_identical(result, value):
            return NOOP
        if result is None:
            raise fail(
                f"Failed to apply {self.op} operations to the current value of field '{path}'",
                BAD_VALUE,
            )
        return result


class _Compare(Leaf):
    __slots__ = ("value",)

    def __init__(self, op: str, path: str, value: Any) -> None:
        super().__init__(op, path)
        self.value = copy_value(value)

    def new_value(self, now: datetime.datetime) -> Any:
        return copy_value(self.value)

    def update(self, value: Any, path: str, now: datetime.datetime) -> Any:
        order = compare(value, self.value)
        if order == 0 or (order > 0 if self.op == "$max" else order < 0):
            return NOOP
        return copy_value(self.value)


class _CurrentDate(Leaf):
    __slots__ = ("date",)

    def __init__(self, op: str, path: str, spec: Any) -> None:
        super().__init__(op, path)
        if isinstance(spec, bool):
            self.date = True
        elif isinstance(spec, Mapping):
            found = False
            for key, kind in spec.items():
                if key != "$type":
                    raise fail(f"Unrecognized $currentDate option: {key}", BAD_VALUE)
                if kind in ("date", "timestamp"):
                    self.date, found = kind == "date", True
            if not found:
                raise fail(
                    "The '$type' string field is required to be 'date' or 'timestamp': "
                    "{$currentDate: {field : {$type: 'date'}}}",
                    BAD_VALUE,
                )
        else:
            raise fail(
                f"{type_name(spec)} is not valid type for $currentDate. Please use a boolean "
                "('true') or a $type expression ({$type: 'timestamp/date'}).",
                BAD_VALUE,
            )

    def new_value(self, now: datetime.datetime) -> Any:
        if self.date:  # BSON dates hold milliseconds
            return now.replace(microsecond=now.microsecond // 1000 * 1000)
        return Timestamp(date_millis(now) // 1000, 1)

    def update(self, value: Any, path: str, now: datetime.datetime) -> Any:
        return self.new_value(now)


class _Push(Leaf):
    __slots__ = ("items", "position", "slice", "sort")

    def __init__(self, op: str, path: str, spec: Any) -> None:
        super().__init__(op, path)
        self.position: int | None = None
        self.slice: int | None = None
        self.sort: Callable[[list[Any]], list[Any]] | None = None
        if not (isinstance(spec, Mapping) and "$each" in spec):
            self.items = [copy_value(spec)]
            return
        for clause in spec:
            if clause not in ("$each", "$slice", "$sort", "$position"):
                raise fail(f"Unrecognized clause in $push: {clause}", BAD_VALUE)
        each = spec["$each"]
        if not isinstance(each, (list, tuple)):
            raise fail(
                "The argument to $each in $push must be an array but it was of type: "
                + type_name(each),
                BAD_VALUE,
            )
        self.items = [copy_value(item) for item in each]
        if "$slice" in spec:
            self.slice = self._integer(spec["$slice"], "$slice", " but was given type")
        if "$sort" in spec:
            self.sort = _sorter(spec["$sort"])
        if "$position" in spec:
            self.position = self._integer(spec["$position"], "$position", ", not of type")

    @staticmethod
    def _integer(value: Any, clause: str, wording: str) -> int:
        try:
            return parse_long(value, clause)
        except WriteFailed:
            raise fail(
                f"The value for {clause} must be an integer value{wording}: " + type_name(value),
                BAD_VALUE,
            ) from None

    def new_value(self, now: datetime.datetime) -> Any:
        result = self._push([])
        return result[0] if result is not NOOP else []

    def update(self, value: Any, path: str, now: datetime.datetime) -> Any:
        if type(value) is not list:
            raise fail(
                f"The field '{path}' must be an array but is of type {type_name(value)}",
                BAD_VALUE,
            )
        result = self._push(value)
        return NOOP if result is NOOP else result[0]

    def _push(self, array: list[Any]) -> Any:
        """``performPush``: insert, sort, slice; NOOP when the array is left as it was."""
        changed = bool(self.items)
        array = list(array)
        if self.items:
            size, position = len(array), self.position
            if position is None or size == 0 or position > size:
                at = size
            elif position > 0:
                at = position
            elif position < 0 and -position < size:
                at = size + position
            else:
                at = 0
            array[at:at] = [copy_value(item) for item in self.items]
        if self.sort is not None:
            changed = True
            array = self.sort(array)
        if self.slice is not None and len(array) > abs(self.slice):
            changed = True
            keep = abs(self.slice)
            array = array[:keep] if self.slice >= 0 else array[len(array) - keep :]
        return (array,) if changed else NOOP


def _sorter(spec: Any) -> Callable[[list[Any]], list[Any]]:
    """The ``$sort`` of ``$push``: the whole element (1/-1) or fields of embedded documents."""
    if number_kind(spec) is not None:
        if spec not in (1, -1):
            raise fail("The $sort element value must be either 1 or -1", BAD_VALUE)
        reverse = spec < 0
        key = functools.cmp_to_key(compare)
        return lambda array: sorted(array, key=key, reverse=reverse)
    if not isinstance(spec, Mapping):
        raise fail(
            "The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort "
            "embedded fields",
            BAD_VALUE,
        )
    if not spec:
        raise fail("The $sort pattern is empty when it should be a set of fields.", BAD_VALUE)
    fields: list[tuple[list[str], int]] = []
    for field, direction in spec.items():
        if number_kind(direction) is None or direction not in (1, -1):
            raise fail("The $sort element value must be either 1 or -1", BAD_VALUE)
        if field == "":
            raise fail("The $sort field cannot be empty", BAD_VALUE)
        if "" in field.split("."):
            raise fail(
                f"The $sort field is a dotted field but has an empty part: {field}", BAD_VALUE
            )
        fields.append((field.split("."), -1 if direction < 0 else 1))

    def sort_key(element: Any) -> list[Any]:
        document = element if type(element) is dict else {"": element}
        return [_dotted(document, parts) for parts, _ in fields]

    def ordering(a: list[Any], b: list[Any]) -> int:
        for (_, direction), x, y in zip(fields, a, b, strict=True):
            c = compare(x, y)
            if c:
                return c * direction
        return 0

    by_key = functools.cmp_to_key(ordering)
    return lambda array: sorted(array, key=lambda element: by_key(sort_key(element)))


def _dotted(document: Any, parts: Sequence[str]) -> Any:
    """``getFieldDotted`` (no array traversal, numeric parts index arrays); null if missing."""
    value = document
    for part in parts:
        if type(value) is dict:
            value = value.get(part, _ABSENT)
        elif type(value) is list:
            index = array_index(part)
            value = value[index] if index is not None and index < len(value) else _ABSENT
        else:
            value = _ABSENT
        if value is _ABSENT:
            return None
    return value


_ABSENT: Final = object()


class _AddToSet(Leaf):
    __slots__ = ("items",)

    def __init__(self, op: str, path: str, spec: Any) -> None:
        super().__init__(op, path)
        values: Sequence[Any] = [spec]
        if isinstance(spec, Mapping) and next(iter(spec), None) == "$each":
            each = spec["$each"]
            if not isinstance(each, (list, tuple)):
                raise fail(
                    "The argument to $each in $addToSet must be an array but it was of type "
                    + type_name(each),
                    TYPE_MISMATCH,
                )
            if len(spec) > 1:
                raise fail("Found unexpected fields after $each in $addToSet", BAD_VALUE)
            values = each
        self.items: list[Any] = []
        for item in values:
            if not any(equal(item, kept) for kept in self.items):
                self.items.append(copy_value(item))

    def new_value(self, now: datetime.datetime) -> Any:
        return [copy_value(item) for item in self.items]

    def update(self, value: Any, path: str, now: datetime.datetime) -> Any:
        if type(value) is not list:
            field = path.rsplit(".", 1)[-1]
            raise fail(
                f"Cannot apply $addToSet to non-array field. Field named '{field}' has "
                f"non-array type {type_name(value)}",
                BAD_VALUE,
            )
        added = [item for item in self.items if not any(equal(old, item) for old in value)]
        if not added:
            return NOOP
        return value + [copy_value(item) for item in added]


class _Pop(Leaf):
    __slots__ = ("front",)
    creates = False

    def __init__(self, op: str, path: str, spec: Any) -> None:
        super().__init__(op, path)
        number = parse_long(spec, path)
        if number not in (1, -1):
            raise fail(f"$pop expects 1 or -1 for the path {path}", FAILED_TO_PARSE)
        self.front = number == -1

    def update(self, value: Any, path: str, now: datetime.datetime) -> Any:
        if type(value) is not list:
            raise fail(
                f"Path '{path}' contains an element of non-array type '{type_name(value)}'",
                TYPE_MISMATCH,
            )
        if not value:
            return NOOP
        return value[1:] if self.front else value[:-1]


class _Cull(Leaf):
    """``$pull`` and ``$pullAll`` (the server's ``ArrayCullingNode``)."""

    __slots__ = ("test",)
    creates = False

    def __init__(self, op: str, path: str, spec: Any) -> None:
        super().__init__(op, path)
        self.test: Callable[[Any], bool]
        if op == "$pullAll":
            if not isinstance(spec, (list, tuple)):
                raise fail(
                    f"$pullAll requires an array argument but was given a {type_name(spec)}",
                    BAD_VALUE,
                )
            items = [copy_value(item) for item in spec]
            self.test = lambda element: any(equal(element, item) for item in items)
        else:
            self.test = _pull_test(spec)

    def update(self, value: Any, path: str, now: datetime.datetime) -> Any:
        if type(value) is not list:
            raise fail(f"Cannot apply {self.op} to a non-array value", BAD_VALUE)
        kept = [element for element in value if not self.test(element)]
        return NOOP if len(kept) == len(value) else kept


# MatchExpressionParser::parsePathAcceptingKeyword: an object starting with one of these is a
# condition on the element itself; any other object is a query on embedded documents.
_PATH_KEYWORDS: Final = frozenset(
    {"$all", "$bitsAllClear", "$bitsAllSet", "$bitsAnyClear", "$bitsAnySet", "$elemMatch"}
    | {"$eq", "$exists", "$geoIntersects", "$geoWithin", "$gt", "$gte", "$in", "$lt", "$lte"}
    | {"$maxDistance", "$minDistance", "$mod", "$ne", "$near", "$nearSphere", "$nin", "$not"}
    | {"$options", "$regex", "$size", "$type", "$within"}
)


def _pull_test(spec: Any) -> Callable[[Any], bool]:
    """The condition of ``$pull``: a query on embedded documents, a condition, or a value."""
    first = next(iter(spec), None) if isinstance(spec, Mapping) else None
    is_keyword = isinstance(first, str) and (
        first in _PATH_KEYWORDS or first.startswith("$_internal")
    )
    if isinstance(spec, Mapping) and not is_keyword:
        matcher = _compiled(spec)
        return lambda element: type(element) is dict and matcher(element)
    if isinstance(spec, Mapping) or type_name(spec) == "regex":
        wrapped = _compiled({"": spec})
        return lambda element: wrapped({"": element})
    target = copy_value(spec)
    return lambda element: equal(element, target)


def _compiled(filter: Mapping[str, Any]) -> Matcher:
    """A filter compiled by the matcher; its parse errors become write errors."""
    try:
        return compile_filter(filter)
    except OperationFailed as failure:
        raise fail(failure.message, failure.code) from None


class _Bit(Leaf):
    __slots__ = ("ops",)

    def __init__(self, op: str, path: str, spec: Any) -> None:
        super().__init__(op, path)
        if not isinstance(spec, Mapping):
            raise fail(
                f"The $bit modifier is not compatible with a {type_name(spec)}. You must pass "
                "in an embedded document: {$bit: {field: {and/or/xor: #}}",
                BAD_VALUE,
            )
        self.ops: list[tuple[str, Any]] = []
        for name, operand in spec.items():
            if name not in ("and", "or", "xor"):
                raise fail(
                    f"The $bit modifier only supports 'and', 'or', and 'xor', not '{name}' "
                    "which is an unknown operator",
                    BAD_VALUE,
                )
            if number_kind(operand) not in (INT32, INT64):
                raise fail(
                    "The $bit modifier field must be an Integer(32/64 bit); a "
                    f"'{type_name(operand)}' is not supported here",
                    BAD_VALUE,
                )
            self.ops.append((name, operand))
        if not self.ops:
            raise fail(
                "You must pass in at least one bitwise operation. The format is: "
                "{$bit: {field: {and/or/xor: #}}",
                BAD_VALUE,
            )

    def _apply(self, value: Any) -> Any:
        for name, operand in self.ops:
            both32 = number_kind(value) == INT32 and number_kind(operand) == INT32
            a, b = int(value), int(operand)
            result = a & b if name == "and" else (a | b if name == "or" else a ^ b)
            value = result if both32 else Int64(result)
        return value

    def new_value(self, now: datetime.datetime) -> Any:
        return self._apply(0)

    def update(self, value: Any, path: str, now: datetime.datetime) -> Any:
        if number_kind(value) not in (INT32, INT64):
            field = path.rsplit(".", 1)[-1]
            raise fail(
                "Cannot apply $bit to a value of non-integral type. The field "
                f"{field} has non-integer type {type_name(value)}",
                BAD_VALUE,
            )
        result = self._apply(value)
        return NOOP if numbers_identical(result, value) else result


class Rename(Leaf):
    """The destination of ``$rename``; its source is found in the document when applied."""

    __slots__ = ("source",)

    def __init__(self, op: str, path: str, source: str) -> None:
        super().__init__(op, path)
        self.source = source
        if "\0" in path:
            raise fail("The 'to' field for $rename cannot contain an embedded null byte", BAD_VALUE)
        src, dst = source.split("."), path.split(".")
        if src == dst:
            raise fail("The source and target field for $rename must differ", BAD_VALUE)
        shorter = min(len(src), len(dst))
        if src[:shorter] == dst[:shorter]:
            raise fail(
                "The source and target field for $rename must not be on the same path",
                BAD_VALUE,
            )
        for side, parts, name in (("source", src, source), ("destination", dst, path)):
            if any(part == "$" or _is_identifier(part) for part in parts):
                raise fail(f"The {side} field for $rename may not be dynamic: {name}", BAD_VALUE)


class Placeholder(Leaf):
    """The source of ``$rename``: only there so that other operators conflict with it."""

    __slots__ = ()
    creates = False
    non_viable_ok = True


def _is_identifier(part: str) -> bool:
    return len(part) >= 3 and part.startswith("$[") and part.endswith("]")


_LEAVES: Final[dict[str, Callable[[str, str, Any], Leaf]]] = {
    "$set": _Set,
    "$setOnInsert": _SetOnInsert,
    "$unset": lambda op, path, value: _Unset(op, path),
    "$inc": _Arithmetic,
    "$mul": _Arithmetic,
    "$min": _Compare,
    "$max": _Compare,
    "$currentDate": _CurrentDate,
    "$push": _Push,
    "$addToSet": _AddToSet,
    "$pop": _Pop,
    "$pull": _Cull,
    "$pullAll": _Cull,
    "$bit": _Bit,
}

OPERATORS: Final = frozenset(_LEAVES) | {"$rename"}


def make_leaf(op: str, path: str, argument: Any) -> Leaf:
    """The leaf for ``{op: {path: argument}}``, validated as the server's ``init`` does."""
    return _LEAVES[op](op, path, argument)
