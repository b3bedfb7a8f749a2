"""Internal. What every aggregation-expression module shares: types, failures, value helpers.

An aggregation expression is compiled once into a plain closure ``Expr`` that takes the
variables of one evaluation (``ROOT``, ``CURRENT``, ``NOW``, ``REMOVE``) and returns a value,
or ``MISSING`` where the server's ``Value`` would be missing (a field that does not exist,
``$$REMOVE``). The operator module (conditionals and comparisons) only sees the ``Compiler``
protocol below, so it can compile its arguments without importing the compiler itself.

The helpers mirror the server's ``Value`` methods that the operators and accumulators lean on:
``coerceToBool`` (``truthy``), ``nullish``, ``getWidestNumeric`` and ``createIntOrLong``, and
the expression order, in which a missing value is *not* null: it ranks with ``undefined``,
below null and above MinKey (``canonicalizeBSONType``).
"""

from __future__ import annotations

import copy
import decimal
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Protocol

from bson.decimal128 import Decimal128
from bson.int64 import Int64

from privata_mongo.core.failures import OperationFailed
from privata_mongo.core.mql._bson_types import ARRAY_TYPES, MISSING, UNDEFINED
from privata_mongo.core.mql._numbers import double_to_decimal
from privata_mongo.core.mql.values import compare, type_rank

Vars = dict[str, Any]
"""The variables of one evaluation: ``ROOT``, ``CURRENT``, ``NOW``, ``REMOVE``."""
Expr = Callable[[Vars], Any]
"""A compiled expression: variables in, value (or ``MISSING``) out."""

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT, LONG, DOUBLE, DECIMAL = 0, 1, 2, 3

DECIMAL_CONTEXT: Final = decimal.Context(
    prec=34, rounding=decimal.ROUND_HALF_EVEN, Emin=-6143, Emax=6144, capitals=1, clamp=1, traps=[]
)
"""IEEE 754 decimal128 arithmetic, as the server's ``Decimal128`` computes (no traps)."""


class Compiler(Protocol):
    """What an operator needs to compile its arguments: the compiler of the current scope."""

    def compile(self, spec: Any) -> Expr:
        """Compile an operand: a field path, a variable, a literal, an array or an object."""

    def arguments(self, name: str, spec: Any, low: int, high: int | None) -> list[Expr]:
        """Compile an operator's argument list (a single operand counts as one argument).

        ``low``/``high`` are the server's arity; ``high`` None means no upper bound.
        """


OperatorCompiler = Callable[[str, Any, Compiler], Expr]
"""Compiles one operator: its name, its raw argument, the compiler of its scope."""


def fail(message: str, code: int) -> OperationFailed:
    """A server failure; messages name operators and types, never values."""
    return OperationFailed(message, code)


def nullish(value: Any) -> bool:
    """The server's ``Value::nullish``: null or missing."""
    return value is None or value is MISSING


def truthy(value: Any) -> bool:
    """The server's ``coerceToBool``: false only for false, null, missing and numeric zero.

    A NaN is true (it is not equal to zero); empty strings, arrays and documents are true.
    """
    if value is None or value is MISSING or value is False:
        return False
    kind = type(value)
    if kind is int or kind is float or kind is Int64:
        return bool(value != 0)
    if kind is Decimal128:
        return not value.to_decimal().is_zero()
    if kind is decimal.Decimal:
        return not value.is_zero()
    return True


def number_kind(value: Any) -> int | None:
    """INT, LONG, DOUBLE or DECIMAL for a number (a Python int is an int32 when it fits)."""
    kind = type(value)
    if kind is int:
        return INT if INT32_MIN <= value <= INT32_MAX else LONG
    if kind is float:
        return DOUBLE
    if kind is Int64:
        return LONG
    if kind is Decimal128 or kind is decimal.Decimal:
        return DECIMAL
    return None


def is_number(value: Any) -> bool:
    """Whether the server's ``Value::numeric`` holds (booleans are not numbers)."""
    return number_kind(value) is not None


def as_double(value: Any) -> float:
    """``coerceToDouble`` of a number (decimals rounded half to even)."""
    if isinstance(value, Decimal128):
        return float(value.to_decimal())
    return float(value)


def as_decimal(value: Any) -> decimal.Decimal:
    """``coerceToDecimal`` of a number; a double keeps 15 significant digits, as the server's."""
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if isinstance(value, decimal.Decimal):
        return value
    if isinstance(value, float):
        return double_to_decimal(value)
    return decimal.Decimal(int(value))


def decimal_value(number: decimal.Decimal) -> Decimal128:
    """A Python decimal rounded into decimal128 and wrapped for BSON."""
    return Decimal128(DECIMAL_CONTEXT.plus(number) if number.is_finite() else number)


def int_or_long(number: int) -> int:
    """``createIntOrLong``: an int32 when it fits, else an Int64."""
    return number if INT32_MIN <= number <= INT32_MAX else Int64(number)


def int_of_kind(number: int, kind: int | None) -> int:
    """An integer result whose widest operand was ``kind``: a long stays a long, else an int."""
    return Int64(number) if kind == LONG else int_or_long(number)


def fits_long(number: int) -> bool:
    """Whether an integer is representable as a 64-bit long (else the server overflows)."""
    return INT64_MIN <= number <= INT64_MAX


def expr_rank(value: Any) -> int:
    """The canonical type rank in expressions: missing ranks with undefined, below null."""
    return UNDEFINED if value is MISSING else type_rank(value)


def expr_compare(a: Any, b: Any) -> int:
    """-1, 0 or 1: the expression order (``$cmp``, ``$eq``, ``$min``); missing below null."""
    if a is MISSING or b is MISSING:
        if a is b:
            return 0
        left, right = expr_rank(a), expr_rank(b)
        return -1 if left < right else (1 if left > right else 0)
    return compare(a, b)


def expr_equal(a: Any, b: Any) -> bool:
    """Equality in expressions: ``1 == 1.0``, and missing is not null."""
    return expr_compare(a, b) == 0


def is_array(value: Any) -> bool:
    """Whether the value is a BSON array."""
    return isinstance(value, ARRAY_TYPES)


def clean_array(values: Iterable[Any]) -> list[Any]:
    """An array built from expression results: a missing element becomes null."""
    return [None if value is MISSING else value for value in values]


def constant(value: Any) -> Expr:
    """An expression that always returns ``value`` (a fresh copy when it is mutable)."""
    if isinstance(value, (Mapping, list)):
        return lambda variables: copy.deepcopy(value)
    return lambda variables: value


def single(name: str, compiler: Compiler, spec: Any) -> Expr:
    """The one argument of a unary operator (``[x]`` and ``x`` are the same)."""
    return compiler.arguments(name, spec, 1, 1)[0]
