"""Internal. The numeric functions of one or two numbers, as ``evaluate_math.cpp`` computes them.

These are ``$abs``, ``$ceil``, ``$floor``, ``$exp``, ``$ln``, ``$log``, ``$log10``, ``$sqrt``,
``$pow``, ``$round`` and ``$trunc``. A null or missing argument gives null; a non-number fails
(28765 and friends). Integers stay integers where the server keeps them (``$abs`` of an int
widens to a long only for ``-2**31``, ``$pow`` of two ints is exact while it fits in 64 bits,
``$round`` of an int with a negative place count); doubles use C's functions (a domain error is
NaN, not an exception); decimals use the decimal128 context. ``$round`` of a double first takes
its exact value to 34 digits, so ``2.675`` rounds to ``2.67`` as on the server.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable
from typing import Any, Final

from bson.int64 import Int64

from privata_mongo.core.mql._bson_types import type_name
from privata_mongo.core.mql.expressions._base import (
    DECIMAL,
    DECIMAL_CONTEXT,
    DOUBLE,
    INT64_MIN,
    LONG,
    Compiler,
    Expr,
    OperatorCompiler,
    Vars,
    as_decimal,
    as_double,
    as_long,
    decimal_value,
    fail,
    fits_long,
    int_of_kind,
    integral32,
    nullish,
    number_kind,
    unary,
)


def _unary(function: Callable[[str, Any], Any]) -> OperatorCompiler:
    """An operator of one numeric argument: null for nullish, 28765 for a non-number."""

    def apply(name: str, value: Any) -> Any:
        if number_kind(value) is None:
            raise fail(f"{name} only supports numeric types, not {type_name(value)}", 28765)
        return function(name, value)

    return unary(apply)


def _binary(
    roles: tuple[str, str],
    codes: tuple[int, int],
    function: Callable[[Any, int, Any, int], Any],
) -> OperatorCompiler:
    """An operator of two numeric arguments (``$log``, ``$pow``): null when either is nullish.

    Each argument is then checked in turn, failing with its own code and role in the message;
    ``function`` receives both values with their number kinds.
    """

    def compile_binary(name: str, spec: Any, compiler: Compiler) -> Expr:
        first_expr, second_expr = compiler.arguments(name, spec, 2, 2)

        def run(variables: Vars) -> Any:
            first, second = first_expr(variables), second_expr(variables)
            if nullish(first) or nullish(second):
                return None
            first_kind, second_kind = number_kind(first), number_kind(second)
            if first_kind is None:
                raise fail(f"{name}'s {roles[0]} must be numeric, not {type_name(first)}", codes[0])
            if second_kind is None:
                raise fail(
                    f"{name}'s {roles[1]} must be numeric, not {type_name(second)}", codes[1]
                )
            return function(first, first_kind, second, second_kind)

        return run

    return compile_binary


def _abs(name: str, value: Any) -> Any:
    kind = number_kind(value)
    if kind == DOUBLE:
        return abs(value)
    if kind == DECIMAL:
        return decimal_value(as_decimal(value).copy_abs())
    if int(value) == INT64_MIN:
        raise fail("can't take $abs of long long min", 28680)
    return int_of_kind(abs(int(value)), kind)


def _rounding(rounding: str, float_function: Callable[[float], float]) -> Callable[[str, Any], Any]:
    def apply(name: str, value: Any) -> Any:
        kind = number_kind(value)
        if kind == DOUBLE:
            return float_function(value) if math.isfinite(value) else value
        if kind == DECIMAL:
            result = as_decimal(value).quantize(
                decimal.Decimal(1), rounding=rounding, context=DECIMAL_CONTEXT
            )
            return decimal_value(result)
        return value

    return apply


def _exp(name: str, value: Any) -> Any:
    if number_kind(value) == DECIMAL:
        return decimal_value(DECIMAL_CONTEXT.exp(as_decimal(value)))
    try:
        return math.exp(as_double(value))
    except OverflowError:
        return math.inf


def _positive_log(
    code: int,
    decimal_log: Callable[[decimal.Decimal], decimal.Decimal],
    float_log: Callable[[float], float],
) -> Callable[[str, Any], Any]:
    def apply(name: str, value: Any) -> Any:
        if number_kind(value) == DECIMAL and as_decimal(value) > 0:
            return decimal_value(decimal_log(as_decimal(value)))
        number = as_double(value)
        if not (number > 0 or math.isnan(number)):
            raise fail(f"{name}'s argument must be a positive number", code)
        return float_log(number)

    return apply


def _sqrt(name: str, value: Any) -> Any:
    if number_kind(value) == DECIMAL:
        number = as_decimal(value)
        if number < 0:
            raise fail("$sqrt's argument must be greater than or equal to 0", 28714)
        return decimal_value(DECIMAL_CONTEXT.sqrt(number))
    double = as_double(value)
    if double < 0:
        raise fail("$sqrt's argument must be greater than or equal to 0", 28714)
    return math.sqrt(double)


def _log(argument: Any, argument_kind: int, base: Any, base_kind: int) -> Any:
    if DECIMAL in (argument_kind, base_kind):
        x, b = as_decimal(argument), as_decimal(base)
        if x > 0 and b > 0 and b != 1:
            ln = DECIMAL_CONTEXT.ln
            return decimal_value(DECIMAL_CONTEXT.divide(ln(x), ln(b)))
    x_double, b_double = as_double(argument), as_double(base)
    if not (x_double > 0 or math.isnan(x_double)):
        raise fail("$log's argument must be a positive number", 28758)
    if not ((b_double > 0 and b_double != 1) or math.isnan(b_double)):
        raise fail("$log's base must be a positive number not equal to 1", 28759)
    return _c_log(x_double) / _c_log(b_double)


def _c_log(number: float) -> float:
    return number if math.isnan(number) or number == math.inf else math.log(number)


def c_pow(base: float, exponent: float) -> float:
    """C's ``pow``: NaN for a domain error, a signed infinity on overflow."""
    try:
        return math.pow(base, exponent)
    except ValueError:
        return math.nan
    except OverflowError:
        odd = exponent == int(exponent) and int(exponent) % 2 == 1
        return -math.inf if base < 0 and odd else math.inf


def _pow(base: Any, base_kind: int, exponent: Any, exponent_kind: int) -> Any:
    if DECIMAL in (base_kind, exponent_kind):
        b, e = as_decimal(base), as_decimal(exponent)
        if b.is_zero() and e.is_signed() and not e.is_zero():
            raise fail("$pow cannot take a base of 0 and a negative exponent", 28764)
        return decimal_value(DECIMAL_CONTEXT.power(b, e))
    b_double, e_double = as_double(base), as_double(exponent)
    if b_double == 0 and e_double < 0:
        raise fail("$pow cannot take a base of 0 and a negative exponent", 28764)
    if DOUBLE in (base_kind, exponent_kind):
        return c_pow(b_double, e_double)
    b_int, e_int = int(base), int(exponent)
    if b_int not in (0, 1, -1) and (e_int < 0 or e_int > 63):
        return c_pow(float(b_int), float(e_int))
    result = b_int**e_int if e_int >= 0 else (1 if b_int == 1 else (-1) ** (-e_int))
    if not fits_long(result):
        return c_pow(float(b_int), float(e_int))
    return int_of_kind(result, max(base_kind, exponent_kind))


def _round_or_trunc(rounding: str) -> OperatorCompiler:
    def compile_rounding(name: str, spec: Any, compiler: Compiler) -> Expr:
        parts = compiler.arguments(name, spec, 1, 2)

        def run(variables: Vars) -> Any:
            value = parts[0](variables)
            if nullish(value):
                return None
            kind = number_kind(value)
            if kind is None:
                raise fail(f"{name} only supports numeric types, not {type_name(value)}", 51081)
            places = 0
            if len(parts) > 1:
                precision = parts[1](variables)
                if nullish(precision):
                    return None
                if number_kind(precision) is None or not integral32(precision):
                    raise fail(f"precision argument to  {name} must be a integral value", 51082)
                places = as_long(precision)
                if not -20 <= places <= 100:
                    raise fail(
                        f"cannot apply {name} with precision value outside [-20, 100]", 51083
                    )
            return _round_number(value, kind, places, rounding, name)

        return run

    return compile_rounding


def _round_number(value: Any, kind: int, places: int, rounding: str, name: str) -> Any:
    quantum = decimal.Decimal((0, (1,), -places))
    if kind == DECIMAL:
        number = as_decimal(value)
        if number.is_infinite():
            return value
        return decimal_value(number.quantize(quantum, rounding=rounding, context=DECIMAL_CONTEXT))
    if kind == DOUBLE:
        if math.isinf(value):
            return value
        exact = DECIMAL_CONTEXT.create_decimal_from_float(value)
        return float(exact.quantize(quantum, rounding=rounding, context=DECIMAL_CONTEXT))
    if places >= 0:
        return value
    whole = int(
        decimal.Decimal(int(value)).quantize(quantum, rounding=rounding, context=DECIMAL_CONTEXT)
    )
    if not fits_long(whole):
        raise fail(f"invalid conversion from Decimal128 result in {name}", 51080)
    return Int64(whole) if kind == LONG or whole > 2**31 - 1 else whole


OPERATORS: Final[dict[str, OperatorCompiler]] = {
    "$abs": _unary(_abs),
    "$ceil": _unary(_rounding(decimal.ROUND_CEILING, lambda x: float(math.ceil(x)))),
    "$floor": _unary(_rounding(decimal.ROUND_FLOOR, lambda x: float(math.floor(x)))),
    "$exp": _unary(_exp),
    "$ln": _unary(_positive_log(28766, DECIMAL_CONTEXT.ln, _c_log)),
    "$log10": _unary(
        _positive_log(
            28761, DECIMAL_CONTEXT.log10, lambda x: x if x != x or x == math.inf else math.log10(x)
        )
    ),
    "$sqrt": _unary(_sqrt),
    "$pow": _binary(("base", "exponent"), (28762, 28763), _pow),
    "$log": _binary(("argument", "base"), (28756, 28757), _log),
    "$round": _round_or_trunc(decimal.ROUND_HALF_EVEN),
    "$trunc": _round_or_trunc(decimal.ROUND_DOWN),
}
