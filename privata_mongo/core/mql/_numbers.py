"""Internal. BSON numbers as the server computes with them: kinds, integer parsing, SafeNum.

The matcher and the update engine both need the server's number rules, and neither may drift
from the other: which values are numbers, how an argument is read as a 64-bit integer
(``parseIntegerElementTo…``), how a number is truncated for ``$mod`` and the bit tests, and
the update system's ``SafeNum`` arithmetic (int32 widening to int64, int64 overflow failing,
decimal arithmetic in the decimal128 context, doubles converted to decimal with 15 significant
digits). They live here, with no dependency on either engine.

Two integer parsers remain on purpose: ``parse_integer`` is the matcher's (any value of the
number rank, a bare reason the caller wraps in its own code), ``parse_long`` the update
system's (the four encoded number types only, a FailedToParse naming the field).
"""

from __future__ import annotations

import decimal
import math
from typing import Any, Final

from bson.decimal128 import Decimal128, create_decimal128_context
from bson.int64 import Int64

from privata_mongo.core.failures import FAILED_TO_PARSE, WriteFailed
from privata_mongo.core.mql._bson_types import NUMBER, type_rank

_DECIMAL: Final = create_decimal128_context()
INT32_MIN, INT32_END = -(2**31), 2**31
INT64_MIN, INT64_END = -(2**63), 2**63
INT32, INT64, DOUBLE, DECIMAL = 0, 1, 2, 3


def is_number(value: Any) -> bool:
    """Whether the server would see a number (int, long, double or decimal; not a boolean)."""
    return type_rank(value) == NUMBER


def plain(value: Any) -> Any:
    """A Decimal128 as ``decimal.Decimal``; other numbers unchanged."""
    return value.to_decimal() if isinstance(value, Decimal128) else value


def parse_integer(value: Any, *, non_negative: bool = False, int32: bool = False) -> int:
    """The server's ``parseIntegerElementTo…``: an integral number, else ValueError(reason)."""
    if not is_number(value):
        raise ValueError("Expected a number")
    if isinstance(value, float):
        if math.isnan(value):
            raise ValueError("Expected an integer, but found NaN")
        if not INT64_MIN <= value < INT64_END:
            raise ValueError("Cannot represent as a 64-bit integer")
        if value != int(value):
            raise ValueError("Expected an integer")
    elif isinstance(value, Decimal128):
        number = value.to_decimal()
        if not number.is_finite() or number != number.to_integral_value():
            raise ValueError("Cannot represent as a 64-bit integer")
        if not INT64_MIN <= number < INT64_END:
            raise ValueError("Cannot represent as a 64-bit integer")
    result = int(plain(value))
    if non_negative and result < 0:
        raise ValueError("Expected a positive number")
    if int32 and not -(2**31) <= result < 2**31:
        raise ValueError("Cannot represent the number in an int")
    return result


def truncate(value: Any) -> int | None:
    """A number truncated toward zero, or None when not finite or outside 64 bits."""
    number = plain(value)
    if isinstance(number, int):
        return number
    if number != number or number in (math.inf, -math.inf):
        return None
    whole = int(number)
    return whole if INT64_MIN <= whole < INT64_END else None


# ---- the update system: number kinds, SafeNum, integer arguments --------------------------


def number_kind(value: Any) -> int | None:
    """INT32, INT64, DOUBLE or DECIMAL for a BSON number; None for anything else (bool too)."""
    kind = type(value)
    if kind is int:
        return INT32 if INT32_MIN <= value < INT32_END else INT64
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
    if kind == INT32 and INT32_MIN <= result < INT32_END:
        return result
    if INT64_MIN <= result < INT64_END:
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
        raise WriteFailed(f"Expected a number in: {where}", FAILED_TO_PARSE)
    if kind == DOUBLE:
        if math.isnan(value):
            raise WriteFailed(f"Expected an integer, but found NaN in: {where}", FAILED_TO_PARSE)
        if not INT64_MIN <= value < INT64_END:
            raise WriteFailed(f"Cannot represent as a 64-bit integer: {where}", FAILED_TO_PARSE)
        if value != int(value):
            raise WriteFailed(f"Expected an integer: {where}", FAILED_TO_PARSE)
    elif kind == DECIMAL:
        number = value.to_decimal()
        if (
            not number.is_finite()
            or number != number.to_integral_value()
            or not INT64_MIN <= number < INT64_END
        ):
            raise WriteFailed(f"Cannot represent as a 64-bit integer: {where}", FAILED_TO_PARSE)
        return int(number)
    return int(value)
