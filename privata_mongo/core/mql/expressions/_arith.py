"""Internal. ``$add``, ``$subtract``, ``$multiply``, ``$divide``, ``$mod``: the server's types.

The result type follows ``evaluate_math.cpp``: the widest operand type wins (int < long <
double < decimal); two ints give an int when the result fits in 32 bits and a long otherwise
(``createIntOrLong``); a long that would overflow falls back to a double in ``$add``,
``$subtract`` and ``$multiply``; a double meeting a decimal is converted with 15 significant
digits. A null or missing operand makes the result null (``$add``/``$multiply`` stop at the
first one, left to right, before any later operand is type-checked). ``$add`` and ``$subtract``
also do date arithmetic in milliseconds. Decimal arithmetic uses the decimal128 context.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable
from typing import Any, Final

from bson.int64 import Int64

from privata_mongo.core.failures import BAD_VALUE, TYPE_MISMATCH
from privata_mongo.core.mql._bson_types import DATE, date_millis, type_name, type_rank
from privata_mongo.core.mql.expressions._base import (
    DECIMAL,
    DECIMAL_CONTEXT,
    DOUBLE,
    INT,
    LONG,
    Compiler,
    Expr,
    OperatorCompiler,
    Vars,
    as_decimal,
    as_double,
    decimal_value,
    fail,
    fits_long,
    int_of_kind,
    int_or_long,
    nullish,
    number_kind,
)
from privata_mongo.core.mql.expressions._calendar import date_from_millis

OVERFLOW = 45


def _decimal_to_long(number: decimal.Decimal) -> int | None:
    """``Decimal128::toLong`` (ties to even), or None when it is not representable."""
    if not number.is_finite():
        return None
    whole = int(number.to_integral_value(rounding=decimal.ROUND_HALF_EVEN))
    return whole if fits_long(whole) else None


def _llround(number: float) -> int:
    """C's ``llround``: halves away from zero."""
    return math.floor(abs(number) + 0.5) * (1 if number >= 0 else -1)


def _millis_of(value: Any) -> int:
    """A number added to a date, converted as ``addToDateValue`` does; Overflow otherwise."""
    kind = number_kind(value)
    if kind == DOUBLE:
        if not (-(2.0**63) <= value < 2.0**63):
            raise fail("date overflow", OVERFLOW)
        return _llround(value)
    if kind == DECIMAL:
        whole = _decimal_to_long(as_decimal(value))
        if whole is None:
            raise fail("date overflow", OVERFLOW)
        return whole
    return int(value)


class _Sum:
    """``AddState``: separate long, double and decimal totals and the widest type so far."""

    __slots__ = ("date", "decimal", "double", "long", "widest")

    def __init__(self) -> None:
        self.widest, self.long, self.double = INT, 0, 0.0
        self.decimal = decimal.Decimal(0)
        self.date = False

    def add(self, value: Any) -> None:
        if type_rank(value) == DATE:
            if self.date:
                raise fail("only one date allowed in an $add expression", 16612)
            total = self.value()
            self.date, self.long = True, 0
            self._add_millis(total)
            self._add_millis(date_millis(value))
            return
        if self.date:
            self._add_millis(value)
            return
        kind = number_kind(value)
        assert kind is not None  # noqa: S101 - checked by the caller
        old, self.widest = self.widest, max(self.widest, kind)
        if old != self.widest:
            if self.widest == DOUBLE:
                self.double = float(self.long)
            elif self.widest == DECIMAL:
                self.decimal = (
                    as_decimal(self.double) if old == DOUBLE else decimal.Decimal(self.long)
                )
        if self.widest <= LONG:
            total = self.long + int(value)
            if fits_long(total):
                self.long = total
            else:
                self.widest, self.double = DOUBLE, float(self.long) + as_double(value)
        elif self.widest == DOUBLE:
            self.double += as_double(value)
        else:
            self.decimal = DECIMAL_CONTEXT.add(self.decimal, as_decimal(value))

    def _add_millis(self, value: Any) -> None:
        total = self.long + (_millis_of(value) if not isinstance(value, int) else value)
        if not fits_long(total):
            raise fail("date overflow", OVERFLOW)
        self.long = total

    def value(self) -> Any:
        if self.date:
            return date_from_millis(self.long)
        if self.widest <= LONG:
            return int_of_kind(self.long, self.widest)
        if self.widest == DOUBLE:
            return self.double
        return decimal_value(self.decimal)


def _add(name: str, spec: Any, compiler: Compiler) -> Expr:
    parts = compiler.arguments(name, spec, 0, None)

    def run(variables: Vars) -> Any:
        total = _Sum()
        for part in parts:
            value = part(variables)
            if nullish(value):
                return None
            if number_kind(value) is None and type_rank(value) != DATE:
                raise fail(
                    f"$add only supports numeric or date types, not {type_name(value)}",
                    TYPE_MISMATCH,
                )
            total.add(value)
        return total.value()

    return run


def subtract(left: Any, right: Any) -> Any:
    """``evaluateSubtract``: numbers, date minus date (a long), date minus milliseconds."""
    left_kind, right_kind = number_kind(left), number_kind(right)
    if left_kind is not None and right_kind is not None:
        widest = max(left_kind, right_kind)
        if widest == DECIMAL:
            return decimal_value(DECIMAL_CONTEXT.subtract(as_decimal(left), as_decimal(right)))
        if widest == DOUBLE:
            return as_double(left) - as_double(right)
        difference = int(left) - int(right)
        if widest == LONG:
            return Int64(difference) if fits_long(difference) else float(left) - float(right)
        return int_or_long(difference)
    if nullish(left) or nullish(right):
        return None
    if type_rank(left) == DATE:
        if type_rank(right) == DATE:
            return Int64(date_millis(left) - date_millis(right))
        if right_kind is not None:
            millis = date_millis(left) - _millis_of(right)
            if not fits_long(millis):
                raise fail("date overflow", OVERFLOW)
            return date_from_millis(millis)
        raise fail(f"can't $subtract {type_name(right)} from Date", TYPE_MISMATCH)
    raise fail(f"can't $subtract {type_name(right)} from {type_name(left)}", TYPE_MISMATCH)


def _subtract(name: str, spec: Any, compiler: Compiler) -> Expr:
    left, right = compiler.arguments(name, spec, 2, 2)
    return lambda variables: subtract(left(variables), right(variables))


def _multiply(name: str, spec: Any, compiler: Compiler) -> Expr:
    parts = compiler.arguments(name, spec, 0, None)

    def run(variables: Vars) -> Any:
        widest, double, long = INT, 1.0, 1
        product = decimal.Decimal(1)
        for part in parts:
            value = part(variables)
            if nullish(value):
                return None
            kind = number_kind(value)
            if kind is None:
                raise fail(
                    f"$multiply only supports numeric types, not {type_name(value)}",
                    TYPE_MISMATCH,
                )
            old, widest = widest, max(widest, kind)
            if widest == DECIMAL:
                if old != DECIMAL:
                    product = as_decimal(double) if old == DOUBLE else decimal.Decimal(long)
                product = DECIMAL_CONTEXT.multiply(product, as_decimal(value))
                continue
            double *= as_double(value)
            if widest != DOUBLE:
                long *= int(value)
                if not fits_long(long):
                    widest = DOUBLE
        if widest == DECIMAL:
            return decimal_value(product)
        if widest == DOUBLE:
            return double
        return int_of_kind(long, widest)

    return run


def _numeric_pair(code: int, function: Callable[[Any, int, Any, int], Any]) -> OperatorCompiler:
    """``$divide``/``$mod``: ``function`` of two numbers, else null for nullish, else ``code``.

    ``function`` receives both values with their number kinds.
    """

    def compile_pair(name: str, spec: Any, compiler: Compiler) -> Expr:
        left_expr, right_expr = compiler.arguments(name, spec, 2, 2)

        def run(variables: Vars) -> Any:
            left, right = left_expr(variables), right_expr(variables)
            left_kind, right_kind = number_kind(left), number_kind(right)
            if left_kind is not None and right_kind is not None:
                return function(left, left_kind, right, right_kind)
            if nullish(left) or nullish(right):
                return None
            raise fail(
                f"{name} only supports numeric types, not {type_name(left)} and {type_name(right)}",
                code,
            )

        return run

    return compile_pair


def _divide(left: Any, left_kind: int, right: Any, right_kind: int) -> Any:
    if DECIMAL in (left_kind, right_kind):
        denominator = as_decimal(right)
        if denominator.is_zero():
            raise fail("can't $divide by zero", BAD_VALUE)
        return decimal_value(DECIMAL_CONTEXT.divide(as_decimal(left), denominator))
    if as_double(right) == 0:
        raise fail("can't $divide by zero", BAD_VALUE)
    return as_double(left) / as_double(right)


def _c_mod(left: int, right: int) -> int:
    remainder = abs(left) % abs(right)
    return -remainder if left < 0 else remainder


def _mod(left: Any, left_kind: int, right: Any, right_kind: int) -> Any:
    if DECIMAL in (left_kind, right_kind):
        divisor = as_decimal(right)
        if divisor.is_zero():
            raise fail("can't $mod by zero", 5733415)
        return decimal_value(DECIMAL_CONTEXT.remainder(as_decimal(left), divisor))
    if as_double(right) == 0:
        raise fail("can't $mod by zero", 16610)
    if DOUBLE in (left_kind, right_kind):
        return math.fmod(as_double(left), as_double(right))
    remainder = _c_mod(int(left), int(right))
    return Int64(remainder) if LONG in (left_kind, right_kind) else remainder


OPERATORS: Final[dict[str, OperatorCompiler]] = {
    "$add": _add,
    "$subtract": _subtract,
    "$multiply": _multiply,
    "$divide": _numeric_pair(TYPE_MISMATCH, _divide),
    "$mod": _numeric_pair(16611, _mod),
}
