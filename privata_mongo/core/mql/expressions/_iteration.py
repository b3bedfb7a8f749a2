"""Internal. ``$filter``, ``$map`` and ``$reduce``: the array operators that bind variables.

Each compiles its body once, in a nested scope where ``as`` (default ``this``) or
``this``/``value`` are defined variables, and evaluates it once per element with those
variables set (``ExpressionFilter``/``ExpressionMap``/``ExpressionReduce``). A missing result
of ``$map``'s body becomes null in the output array; ``$filter`` keeps an element when its
condition is true in the server's sense and stops after ``limit`` elements.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from privata_mongo.core.mql._bson_types import type_name
from privata_mongo.core.mql.expressions._base import (
    Compiler,
    Expr,
    OperatorCompiler,
    Vars,
    as_long,
    clean_array,
    fail,
    integral32,
    is_array,
    nullish,
    truthy,
    validate_variable_name,
)


def _named(name: str, spec: Any, allowed: tuple[str, ...], codes: tuple[int, int]) -> None:
    if not isinstance(spec, Mapping):
        raise fail(f"{name} only supports an object as its argument", codes[0])
    for key in spec:
        if key not in allowed:
            raise fail(f"Unrecognized parameter to {name}: {key}", codes[1])


def _bound_name(spec: Mapping[str, Any]) -> str:
    name = spec.get("as", "this")
    name = name if isinstance(name, str) else ""
    validate_variable_name(name)
    return name


def _filter(name: str, spec: Any, compiler: Compiler) -> Expr:
    _named(name, spec, ("input", "as", "cond", "limit"), (28646, 28647))
    if "input" not in spec:
        raise fail("Missing 'input' parameter to $filter", 28648)
    if "cond" not in spec:
        raise fail("Missing 'cond' parameter to $filter", 28650)
    source = compiler.compile(spec["input"])
    variable = _bound_name(spec)
    condition = compiler.scoped([variable]).compile(spec["cond"])
    limit_expr = compiler.compile(spec["limit"]) if "limit" in spec else None

    def run(variables: Vars) -> Any:
        array = source(variables)
        if nullish(array):
            return None
        if not is_array(array):
            raise fail(f"input to $filter must be an array not {type_name(array)}", 28651)
        if not array:
            return list(array)
        remaining = None
        if limit_expr is not None:
            limit = limit_expr(variables)
            if not nullish(limit):
                if not integral32(limit):
                    raise fail(
                        "$filter: limit must be represented as a 32-bit integral value", 327391
                    )
                remaining = as_long(limit)
                if remaining <= 0:
                    raise fail("$filter: limit must be greater than 0", 327392)
        inner, result = dict(variables), []
        for element in array:
            inner[variable] = element
            if truthy(condition(inner)):
                result.append(element)
                if remaining is not None and len(result) == remaining:
                    break
        return result

    return run


def _map(name: str, spec: Any, compiler: Compiler) -> Expr:
    _named(name, spec, ("input", "as", "in"), (16878, 16879))
    if "input" not in spec:
        raise fail("Missing 'input' parameter to $map", 16880)
    if "in" not in spec:
        raise fail("Missing 'in' parameter to $map", 16882)
    source = compiler.compile(spec["input"])
    variable = _bound_name(spec)
    body = compiler.scoped([variable]).compile(spec["in"])

    def run(variables: Vars) -> Any:
        array = source(variables)
        if nullish(array):
            return None
        if not is_array(array):
            raise fail(f"input to $map must be an array not {type_name(array)}", 16883)
        inner, result = dict(variables), []
        for element in array:
            inner[variable] = element
            result.append(body(inner))
        return clean_array(result)

    return run


def _reduce(name: str, spec: Any, compiler: Compiler) -> Expr:
    if not isinstance(spec, Mapping):
        raise fail("$reduce requires an object as an argument", 40075)
    for key in spec:
        if key not in ("input", "initialValue", "in"):
            raise fail(f"$reduce found an unknown argument: {key}", 40076)
    for key, code in (("input", 40077), ("initialValue", 40078), ("in", 40079)):
        if key not in spec:
            raise fail(f"$reduce requires '{key}' to be specified", code)
    source, initial = compiler.compile(spec["input"]), compiler.compile(spec["initialValue"])
    body = compiler.scoped(["this", "value"]).compile(spec["in"])

    def run(variables: Vars) -> Any:
        array = source(variables)
        if nullish(array):
            return None
        if not is_array(array):
            raise fail(
                f"$reduce requires that 'input' be an array, found: {type_name(array)}", 40080
            )
        accumulated = initial(variables)
        inner = dict(variables)
        for element in array:
            inner["this"], inner["value"] = element, accumulated
            accumulated = body(inner)
        return accumulated

    return run


OPERATORS: Final[dict[str, OperatorCompiler]] = {
    "$filter": _filter,
    "$map": _map,
    "$reduce": _reduce,
}
