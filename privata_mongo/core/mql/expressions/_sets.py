"""Internal. The set operators, and ``$allElementsTrue``/``$anyElementTrue``.

Arrays are compared as sets with the expression order (``1`` and ``1.0`` are one element).
``$setUnion`` and ``$setIntersection`` return their result sorted, because the server builds
it in an ordered ``ValueSet``; ``$setDifference`` keeps the first array's order without
duplicates. A null or missing operand gives null for the union, intersection and difference,
and fails for ``$setEquals``/``$setIsSubset``.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from privata_mongo.core.mql._bson_types import type_name
from privata_mongo.core.mql.expressions._base import (
    Compiler,
    Expr,
    OperatorCompiler,
    Vars,
    expr_compare,
    expr_equal,
    fail,
    is_array,
    nullish,
    single,
    truthy,
)

_ORDER: Final = functools.cmp_to_key(expr_compare)


def _unique_sorted(values: list[Any]) -> list[Any]:
    result: list[Any] = []
    for value in sorted(values, key=_ORDER):
        if not result or not expr_equal(result[-1], value):
            result.append(value)
    return result


def _set_operator(name: str, spec: Any, compiler: Compiler) -> Expr:
    low, high = {"$setDifference": (2, 2), "$setIsSubset": (2, 2)}.get(name, (0, None))
    if name == "$setEquals":
        low = 2
    parts = compiler.arguments(name, spec, low, high)

    def run(variables: Vars) -> Any:
        values = [part(variables) for part in parts]
        if name in ("$setUnion", "$setIntersection", "$setDifference") and any(
            nullish(value) for value in values
        ):
            return None
        for position, value in enumerate(values):
            if not is_array(value):
                codes = _SET_CODES[name]
                raise fail(
                    f"All operands of {name} must be arrays. One argument is of type: "
                    f"{type_name(value)}",
                    codes[min(position, len(codes) - 1)],
                )
        if name == "$setUnion":
            return _unique_sorted([item for value in values for item in value])
        if name == "$setIntersection":
            if not values:
                return []
            common = _unique_sorted(list(values[0]))
            for value in values[1:]:
                common = [item for item in common if any(expr_equal(item, x) for x in value)]
            return common
        if name == "$setDifference":
            result: list[Any] = []
            for item in values[0]:
                seen = list(values[1]) + result
                if not any(expr_equal(item, other) for other in seen):
                    result.append(item)
            return result
        if name == "$setIsSubset":
            return all(any(expr_equal(item, x) for x in values[1]) for item in values[0])
        first = _unique_sorted(list(values[0]))
        for value in values[1:]:
            other = _unique_sorted(list(value))
            if len(other) != len(first) or not all(map(expr_equal, first, other)):
                return False
        return True

    return run


_SET_CODES: Final = {
    "$setUnion": (17043,),
    "$setIntersection": (17047,),
    "$setDifference": (17048, 17049),
    "$setEquals": (17044,),
    "$setIsSubset": (17046, 17042),
}


def _elements(name: str, spec: Any, compiler: Compiler) -> Expr:
    argument = single(name, compiler, spec)
    code, want = (17040, all) if name == "$allElementsTrue" else (17041, any)

    def run(variables: Vars) -> bool:
        value = argument(variables)
        if not is_array(value):
            raise fail(f"{name}'s argument must be an array, but is {type_name(value)}", code)
        return want(truthy(item) for item in value)

    return run


OPERATORS: Final[dict[str, OperatorCompiler]] = {
    **dict.fromkeys(
        ("$setUnion", "$setIntersection", "$setDifference", "$setEquals", "$setIsSubset"),
        _set_operator,
    ),
    "$allElementsTrue": _elements,
    "$anyElementTrue": _elements,
}
