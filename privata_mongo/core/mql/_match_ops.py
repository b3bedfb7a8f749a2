"""Internal. The leaf operators of the in-process matcher, each compiled once into a test.

A test takes one value the path traversal produced (possibly ``MISSING``) and answers the
server's ``matchesSingleElement`` for that operator: type bracketing for comparisons, the null
and MinKey/MaxKey exceptions, NaN rules, ``$in`` with regexes, ``$type`` codes and aliases,
``$mod`` truncation and the bit tests. Argument errors are raised here with the server's codes;
messages never quote a value. Regex patterns are translated in ``_pcre`` and matched at a
bounded cost by ``_regex_engine``; the number rules (integer arguments, truncation) come from
``_numbers``.
"""

from __future__ import annotations

import math
import operator
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Final

from bson.code import Code
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId
from bson.regex import Regex

from privata_mongo.core.failures import BAD_VALUE, FAILED_TO_PARSE, TYPE_MISMATCH, OperationFailed
from privata_mongo.core.mql._bson_types import (
    ARRAY_TYPES,
    BOOL,
    DATE,
    MAXKEY,
    MINKEY,
    MISSING,
    NULL,
    NUMBER,
    STRING,
    date_millis,
    is_nan,
    regex_flags,
    regex_pattern,
    type_rank,
)
from privata_mongo.core.mql._numbers import (
    INT64_END,
    INT64_MIN,
    is_number,
    parse_integer,
    plain,
    truncate,
)
from privata_mongo.core.mql._regex_engine import UNLIMITED, compile_search
from privata_mongo.core.mql.budget import Deadline
from privata_mongo.core.mql.values import compare, equal

Test = Callable[[Any], bool]

_PY_OPERATORS: Final = {
    "$lt": operator.lt, "$lte": operator.le, "$eq": operator.eq, "$gte": operator.ge,
    "$gt": operator.gt,
}  # fmt: skip
_ACCEPT: Final = {"$lt": (-1,), "$lte": (-1, 0), "$eq": (0,), "$gte": (0, 1), "$gt": (1,)}


def comparison(op: str, rhs: Any) -> Test:
    """``$eq $lt $lte $gt $gte``: same canonical type only, except null, MinKey and MaxKey."""
    rank = type_rank(rhs)
    below_max = rank == MAXKEY and op in ("$lt", "$lte")
    above_min = rank == MINKEY and op in ("$gt", "$gte")
    other_type = below_max or above_min
    on_missing = other_type or (rank == NULL and op in ("$eq", "$lte", "$gte"))
    accept, rhs_nan = _ACCEPT[op], is_nan(rhs)
    nan_rule = rank == NUMBER and op != "$eq"

    def generic(value: Any) -> bool:
        if value is MISSING:
            return on_missing
        if type_rank(value) != rank:
            return other_type
        if nan_rule:
            value_nan = is_nan(value)
            if value_nan or rhs_nan:
                return value_nan and rhs_nan and op in ("$lte", "$gte")
        return compare(value, rhs) in accept

    python_op, kind = _PY_OPERATORS[op], type(rhs)
    if kind in (int, float, str) and not rhs_nan:
        fast = (str,) if kind is str else (int, float)

        def fast_test(value: Any) -> bool:  # the common case: no rank lookup
            if type(value) in fast:
                return bool(python_op(value, rhs))
            return generic(value)

        return fast_test
    if rhs is None and op == "$eq":
        return lambda value: value is None or value is MISSING or generic(value)
    return generic


_NULL_KEY, _NAN_KEY, _BOOL_KEY, _DATE_KEY = object(), object(), object(), object()


def _hash_key(value: Any) -> Any:
    """A hashable stand-in equal exactly when MongoDB's equality holds, or None."""
    kind = type(value)
    if kind is str or kind is ObjectId:
        return value
    if kind is int or kind is float or kind is Int64:
        return _NAN_KEY if value != value else value
    if value is None:
        return _NULL_KEY
    if kind is bool:
        return (_BOOL_KEY, value)
    if kind is Decimal128:
        number = value.to_decimal()
        return _NAN_KEY if number.is_nan() else number
    if type_rank(value) == DATE:
        return (_DATE_KEY, date_millis(value))
    return None


def membership(items: Sequence[Any], regexes: Sequence[Test]) -> Test:
    """``$in``: equal to one item, or matched by one regex; a null item also matches missing."""
    has_null = any(item is None for item in items)
    keys: set[Any] = set()
    others: list[Any] = []
    for item in items:
        key = _hash_key(item)
        if key is None:
            others.append(item)
        else:
            keys.add(key)

    def test(value: Any) -> bool:
        if value is MISSING:
            return has_null
        key = _hash_key(value)
        if key is not None:
            if key in keys:
                return True
        elif any(equal(value, other) for other in others):
            return True
        return any(regex(value) for regex in regexes)

    return test


# ---- regular expressions -------------------------------------------------------------------


def regex_test(pattern: str, options: str, deadline: Deadline = UNLIMITED) -> Test:
    """A regex predicate: it searches strings and equals stored regexes of the same source.

    The search's cost is bounded (``_regex_engine``): linear where RE2 can take the pattern,
    else within what ``deadline`` leaves.
    """
    search = compile_search(pattern, options, deadline)

    def test(value: Any) -> bool:
        if type(value) is str:
            return search(value)
        if isinstance(value, str):
            return not isinstance(value, Code) and search(str(value))
        if isinstance(value, (Regex, re.Pattern)):
            return regex_pattern(value) == pattern and regex_flags(value) == options
        return False

    return test


# ---- numbers: $size, $mod, bit tests, $type codes ----------------------------------------------


def mod_test(argument: Any) -> Test:
    """``$mod: [divisor, remainder]``: C-style remainder of the truncated value."""
    if not isinstance(argument, ARRAY_TYPES):
        raise OperationFailed("malformed mod, needs to be an array", BAD_VALUE)
    names = ("divisor", "remainder")
    for position, name in enumerate(names):
        if len(argument) <= position:
            raise OperationFailed("malformed mod, not enough elements", BAD_VALUE)
        if not is_number(argument[position]):
            raise OperationFailed(f"malformed mod, {name} not a number", BAD_VALUE)
    if len(argument) > 2:
        raise OperationFailed("malformed mod, too many elements", BAD_VALUE)
    coerced: list[int] = []
    for name, value in zip(names, argument, strict=True):
        if is_nan(value) or plain(value) in (math.inf, -math.inf):
            reason = "Unable to coerce NaN/Inf to integral type"
        elif (number := truncate(value)) is None:
            reason = "Out of bounds coercing to integral value"
        else:
            coerced.append(number)
            continue
        raise OperationFailed(f"malformed mod, {name} value is invalid :: caused by :: {reason}", 2)
    divisor, remainder = coerced
    if divisor == 0:
        raise OperationFailed("divisor cannot be 0", BAD_VALUE)

    def test(value: Any) -> bool:
        if not is_number(value):
            return False
        dividend = truncate(value)
        if dividend is None:
            return False
        if divisor == -1:
            return remainder == 0
        rest = abs(dividend) % abs(divisor)
        return (-rest if dividend < 0 else rest) == remainder

    return test


def size_test(argument: Any) -> Test:
    """``$size``: an array of exactly that many elements."""
    try:
        size = parse_integer(argument, non_negative=True, int32=True)
    except ValueError as reason:
        raise OperationFailed(f"Failed to parse $size. {reason}", BAD_VALUE) from None
    return lambda value: isinstance(value, ARRAY_TYPES) and len(value) == size


def _bit_position(item: Any) -> int:
    try:
        return parse_integer(item, non_negative=True, int32=True)
    except ValueError as reason:
        raise OperationFailed(f"Failed to parse bit position. {reason}", BAD_VALUE) from None


def bits_test(op: str, argument: Any) -> Test:
    """``$bitsAllSet $bitsAllClear $bitsAnySet $bitsAnyClear`` over integers and binary data."""
    positions: list[int] = []
    if isinstance(argument, ARRAY_TYPES):
        positions = [_bit_position(item) for item in argument]
        mask = sum({1 << min(position, 63) for position in positions})
    elif is_number(argument):
        try:
            mask = parse_integer(argument, non_negative=True)
        except ValueError as reason:
            raise OperationFailed(str(reason), FAILED_TO_PARSE) from None
        positions = [bit for bit in range(64) if mask >> bit & 1]
    elif isinstance(argument, (bytes, uuid.UUID)):
        data = argument.bytes if isinstance(argument, uuid.UUID) else bytes(argument)
        mask = 0
        for index, byte in enumerate(data):
            if byte and index < 8:  # the server widens a signed char: high bytes sign-extend
                mask |= ((byte - 256 if byte > 127 else byte) << 8 * index) % 2**64
            elif byte:
                mask |= 1 << 63
            positions.extend(8 * index + bit for bit in range(8) if byte >> bit & 1)
    else:
        message = f"{op} takes an Array, a number, or a BinData but received another type"
        raise OperationFailed(message, BAD_VALUE)
    want_set, want_all = op in ("$bitsAllSet", "$bitsAnySet"), op.startswith("$bitsAll")

    def on_number(number: int) -> bool:
        bits = number & mask if want_set else ~number & mask
        return bits == mask if want_all else bits != 0

    def test(value: Any) -> bool:
        if isinstance(value, (bytes, uuid.UUID)):
            data = value.bytes if isinstance(value, uuid.UUID) else bytes(value)
            found = [len(data) * 8 > p and bool(data[p // 8] >> p % 8 & 1) for p in positions]
            hits = [bit == want_set for bit in found]
            return all(hits) if want_all else any(hits)
        if not is_number(value) or is_nan(value):
            return False
        if isinstance(value, float) and not (
            INT64_MIN <= value < INT64_END and value == int(value)
        ):
            return False
        number = truncate(value)
        return number is not None and on_number(number)

    return test


TYPE_ALIASES: Final = {
    "double": 1, "string": 2, "object": 3, "array": 4, "binData": 5, "undefined": 6,
    "objectId": 7, "bool": 8, "date": 9, "null": 10, "regex": 11, "dbPointer": 12,
    "javascript": 13, "symbol": 14, "javascriptWithScope": 15, "int": 16, "timestamp": 17,
    "long": 18, "decimal": 19, "minKey": -1, "maxKey": 127,
}  # fmt: skip
_NUMERIC_CODES: Final = frozenset({1, 16, 18, 19})
_CODE_BY_RANK: Final = {
    NULL: 10, STRING: 2, 20: 3, 25: 4, 30: 5, 35: 7, BOOL: 8, DATE: 9, 47: 17, 50: 11,
    60: 13, 65: 15, MINKEY: -1, MAXKEY: 127,
}  # fmt: skip


def type_code(value: Any) -> int:
    """The BSON type number the driver would encode ``value`` as (``$type``'s codes)."""
    rank = type_rank(value)
    if rank != NUMBER:
        return _CODE_BY_RANK[rank]
    if isinstance(value, float):
        return 1
    if isinstance(value, Int64):
        return 18
    if isinstance(value, int):
        return 16 if -(2**31) <= value < 2**31 else 18
    return 19


def type_test(path: str, argument: Any) -> Test:
    """``$type``: a type code, an alias, ``"number"``, or an array of them."""
    codes: set[int] = set()
    for item in argument if isinstance(argument, ARRAY_TYPES) else (argument,):
        if isinstance(item, str):
            if item == "number":
                codes |= _NUMERIC_CODES
            elif item in TYPE_ALIASES:
                codes.add(TYPE_ALIASES[item])
            elif item == "missing":
                raise OperationFailed(
                    "'missing' is not a legal type name. To query for non-existence of a "
                    "field, use {$exists:false}.",
                    BAD_VALUE,
                )
            else:
                raise OperationFailed("Unknown type name alias", BAD_VALUE)
        elif is_number(item):
            try:
                code = parse_integer(item, int32=True)
            except ValueError:
                raise OperationFailed("Invalid numerical type code", BAD_VALUE) from None
            if code == 0:
                raise OperationFailed(
                    "Invalid numerical type code: 0. Instead use {$exists:false}.", BAD_VALUE
                )
            if code not in TYPE_ALIASES.values():
                raise OperationFailed("Invalid numerical type code", BAD_VALUE)
            codes.add(code)
        else:
            raise OperationFailed("type must be represented as a number or a string", TYPE_MISMATCH)
    if not codes:
        raise OperationFailed(f"{path} must match at least one type", FAILED_TO_PARSE)
    frozen = frozenset(codes)
    return lambda value: value is not MISSING and type_code(value) in frozen
