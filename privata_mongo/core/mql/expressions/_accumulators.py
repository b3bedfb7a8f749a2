"""Internal. ``$group`` accumulators: one state per group and output field.

Each accumulator is a small state object fed one value per document, as the server's
``AccumulatorState``: ``$sum`` and ``$avg`` ignore non-numbers and keep integers exact, sum
doubles without intermediate rounding (the server's double-double summation) and widen to a
double when a long would overflow; ``$min``/``$max`` ignore null and missing; ``$first`` keeps
a missing first value (the group output shows it as null); ``$push`` and ``$addToSet`` skip
missing values. These are the accumulators that merge from partial groups (``group_merge``),
and the ones the process evaluates; the others raise ``UnsupportedOperator``.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any, Final, Protocol

from bson.int64 import Int64

from privata_mongo.core.failures import TYPE_MISMATCH
from privata_mongo.core.mql._bson_types import MISSING
from privata_mongo.core.mql.expressions._base import (
    DECIMAL,
    DECIMAL_CONTEXT,
    DOUBLE,
    INT,
    LONG,
    Expr,
    as_decimal,
    as_double,
    decimal_value,
    expr_compare,
    fail,
    fits_long,
    int_of_kind,
    is_array,
    nullish,
    number_kind,
)
from privata_mongo.core.mql.expressions._value_keys import value_key
from privata_mongo.core.mql.values import UnsupportedOperator


class Accumulator(Protocol):
    """One group's running state for one output field."""

    def process(self, value: Any) -> None:
        """Feed the value one document contributes (``MISSING`` when it has none)."""

    def result(self) -> Any:
        """The accumulated value (``MISSING`` where the server's value would be missing)."""


Factory = Callable[[], Accumulator]


class Sum:
    """``AccumulatorSum``/``AccumulatorAvg``'s total: exact integers, exact doubles, decimals.

    ``weight`` counts a value several times at once (a partial group's identity value, which
    each of its documents carries), with the same result as adding it that many times.
    """

    __slots__ = ("count", "decimal", "exact", "integer", "kind", "seen_double", "special")

    def __init__(self) -> None:
        self.kind, self.integer, self.count = INT, 0, 0
        self.exact = Fraction(0)
        self.special: list[float] = []
        self.seen_double = False
        self.decimal = decimal.Decimal(0)

    def process(self, value: Any, weight: int = 1) -> None:
        kind = number_kind(value)
        if kind is None or weight <= 0:
            return
        self.count += weight
        self.kind = max(self.kind, kind)
        if kind == DECIMAL:
            added = as_decimal(value)
            if weight != 1:
                added = DECIMAL_CONTEXT.multiply(added, decimal.Decimal(weight))
            self.decimal = DECIMAL_CONTEXT.add(self.decimal, added)
        elif kind == DOUBLE:
            self.seen_double = True
            if math.isfinite(value):
                self.exact += Fraction(value) * weight
            else:
                self.special.append(value)
        else:
            self.integer += int(value) * weight

    def _exact(self) -> Fraction | float:
        if self.special:
            special = self.special
            return sum(special) if not any(math.isnan(v) for v in special) else math.nan
        return Fraction(self.integer) + self.exact

    def double(self) -> float:
        exact = self._exact()
        return exact if isinstance(exact, float) else float(exact)

    def as_decimal(self) -> decimal.Decimal:
        exact = self._exact()
        if isinstance(exact, float):
            return decimal.Decimal(exact)
        return DECIMAL_CONTEXT.divide(
            decimal.Decimal(exact.numerator), decimal.Decimal(exact.denominator)
        )

    def result(self) -> Any:
        if self.kind <= LONG and not self.seen_double and fits_long(self.integer):
            return int_of_kind(self.integer, self.kind)
        if self.kind == DECIMAL:
            return decimal_value(DECIMAL_CONTEXT.add(self.decimal, self.as_decimal()))
        return self.double()


def mean(total: Sum, count: int) -> Any:
    """``$avg``: the total over the count of numbers (null for none), a decimal if any was."""
    if count == 0:
        return None
    if total.kind == DECIMAL:
        summed = DECIMAL_CONTEXT.add(total.decimal, total.as_decimal())
        return decimal_value(DECIMAL_CONTEXT.divide(summed, decimal.Decimal(count)))
    return total.double() / count


class _ConstantSum:
    """``{$sum: <number literal>}``: the server's constant path, naive int/long/double adds."""

    __slots__ = ("kind", "total")

    def __init__(self, kind: int) -> None:
        self.kind = kind
        self.total: int | float = 0.0 if kind == DOUBLE else 0

    def process(self, value: Any) -> None:
        if self.kind == INT:
            total = int(self.total) + int(value)
            if -(2**31) <= total < 2**31:
                self.total = total
                return
            self.kind = LONG
        if self.kind == LONG:
            total = int(self.total) + int(value)
            if fits_long(total):
                self.total = total
                return
            self.kind, self.total = DOUBLE, float(self.total)
        self.total = float(self.total) + as_double(value)

    def result(self) -> Any:
        if self.kind == INT:
            return int(self.total)
        return Int64(int(self.total)) if self.kind == LONG else float(self.total)


class _Avg(Sum):
    __slots__ = ()

    def result(self) -> Any:
        return mean(self, self.count)


class MinMax:
    """``$min``/``$max``: BSON order; null and missing are ignored."""

    __slots__ = ("sense", "value")

    def __init__(self, sense: int) -> None:
        self.sense, self.value = sense, MISSING

    def process(self, value: Any) -> None:
        if nullish(value):
            return
        if self.value is MISSING or expr_compare(self.value, value) * self.sense > 0:
            self.value = value

    def result(self) -> Any:
        return None if self.value is MISSING else self.value


class _First:
    __slots__ = ("seen", "value")

    def __init__(self) -> None:
        self.seen, self.value = False, MISSING

    def process(self, value: Any) -> None:
        if not self.seen:
            self.seen, self.value = True, value

    def result(self) -> Any:
        return self.value


class _Last:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = MISSING

    def process(self, value: Any) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value


class Push:
    """``$push``/``$addToSet`` (``unique``): missing values are skipped."""

    __slots__ = ("keys", "unique", "values")

    def __init__(self, unique: bool) -> None:
        self.unique = unique
        self.values: list[Any] = []
        self.keys: set[Any] = set()

    def process(self, value: Any) -> None:
        if value is MISSING:
            return
        if self.unique:
            key = value_key(value)
            if key is None:
                if any(expr_compare(value, other) == 0 for other in self.values):
                    return
            elif key in self.keys:
                return
            else:
                self.keys.add(key)
        self.values.append(value)

    def result(self) -> Any:
        return self.values


_FACTORIES: Final[dict[str, Factory]] = {
    "$sum": Sum,
    "$avg": _Avg,
    "$min": lambda: MinMax(1),
    "$max": lambda: MinMax(-1),
    "$first": _First,
    "$last": _Last,
    "$push": lambda: Push(False),
    "$addToSet": lambda: Push(True),
}


def count_factory() -> Accumulator:
    """The accumulator of ``{$sum: 1}`` (``$count``, ``$sortByCount``)."""
    return _ConstantSum(INT)


def compile_accumulator(
    field: str, spec: Any, compile_operand: Callable[[Any], Expr]
) -> tuple[Expr, Factory]:
    """Parse one ``$group`` output field (``{name: {$op: <expression>}}``), as the server does.

    Raises:
        OperationFailed: 40234/40235/40236/40238/40237/15952 as ``parseAccumulationStatement``.
        UnsupportedOperator: an accumulator only the server evaluates.
    """
    if not (isinstance(spec, Mapping) and spec and str(next(iter(spec))).startswith("$")):
        raise fail(f"The field '{field}' must be an accumulator object", 40234)
    if "." in field:
        raise fail(f"The field name '{field}' cannot contain '.'", 40235)
    if field.startswith("$"):
        raise fail(f"The field name '{field}' cannot be an operator name", 40236)
    if len(spec) != 1:
        raise fail(f"The field '{field}' must specify one accumulator", 40238)
    name, argument = next(iter(spec.items()))
    if is_array(argument):
        raise fail(f"The {name} accumulator is a unary operator", 40237)
    if name == "$count":
        if not (isinstance(argument, Mapping) and not argument):
            raise fail("$count takes no arguments, i.e. $count: {}", TYPE_MISMATCH)
        return (lambda variables: 1), count_factory
    expression = compile_operand(argument)
    factory = _FACTORIES.get(name)
    if factory is None:
        raise UnsupportedOperator(name)
    kind = number_kind(argument)
    if name == "$sum" and kind is not None and kind != DECIMAL:
        return expression, lambda: _ConstantSum(INT if kind == INT else kind)
    return expression, factory
