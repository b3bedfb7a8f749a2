"""Internal. Array aggregation operators that read, slice and build arrays.

They follow ``evaluate_array.cpp``: a null or missing array gives null (``$size`` and ``$in``
fail instead), an index must be a 32-bit integral number, and a position past the end is
*missing*, so ``$project`` omits the field. ``$objectToArray``/``$arrayToObject`` convert
between documents and ``{k, v}`` pairs. The operators that bind variables live in
``_iteration``, the set operators in ``_sets``.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from privata_mongo.core.mql._bson_types import MISSING, as_object, type_name
from privata_mongo.core.mql.expressions._base import (
    Compiler,
    Expr,
    OperatorCompiler,
    Vars,
    as_long,
    expr_compare,
    expr_equal,
    fail,
    integral32,
    is_array,
    is_number,
    nullish,
    single,
    unary,
)

_ORDER: Final = functools.cmp_to_key(expr_compare)


def _size(name: str, spec: Any, compiler: Compiler) -> Expr:
    argument = single(name, compiler, spec)

    def run(variables: Vars) -> int:
        value = argument(variables)
        if not is_array(value):
            raise fail(
                f"The argument to $size must be an array, but was of type: {type_name(value)}",
                17124,
            )
        return len(value)

    return run


def element_at(name: str, array: Any, index: Any, unary: bool) -> Any:
    """``arrayElemAt``: null for nullish operands, missing past either end."""
    if nullish(array) or nullish(index):
        return None
    if not is_array(array):
        which = "argument" if unary else "first argument"
        raise fail(f"{name}'s {which} must be an array, but is {type_name(array)}", 28689)
    if not is_number(index):
        raise fail(
            f"{name}'s second argument must be a numeric value, but is {type_name(index)}", 28690
        )
    if not integral32(index):
        raise fail(f"{name}'s second argument must be representable as a 32-bit integer", 28691)
    position = as_long(index)
    if position < 0:
        position += len(array)
    return array[position] if 0 <= position < len(array) else MISSING


def _element_at(name: str, spec: Any, compiler: Compiler) -> Expr:
    array, index = compiler.arguments(name, spec, 2, 2)
    return lambda variables: element_at(name, array(variables), index(variables), False)


def _end(position: int) -> OperatorCompiler:
    def compile_end(name: str, spec: Any, compiler: Compiler) -> Expr:
        array = single(name, compiler, spec)
        return lambda variables: element_at(name, array(variables), position, True)

    return compile_end


def _in(name: str, spec: Any, compiler: Compiler) -> Expr:
    needle, haystack = compiler.arguments(name, spec, 2, 2)

    def run(variables: Vars) -> bool:
        value, array = needle(variables), haystack(variables)
        if not is_array(array):
            raise fail(
                f"$in requires an array as a second argument, found: {type_name(array)}", 40081
            )
        return any(expr_equal(value, item) for item in array)

    return run


def _concat_arrays(name: str, spec: Any, compiler: Compiler) -> Expr:
    parts = compiler.arguments(name, spec, 0, None)

    def run(variables: Vars) -> Any:
        result: list[Any] = []
        for part in parts:
            value = part(variables)
            if nullish(value):
                return None
            if not is_array(value):
                raise fail(f"$concatArrays only supports arrays, not {type_name(value)}", 28664)
            result.extend(value)
        return result

    return run


def _slice(name: str, spec: Any, compiler: Compiler) -> Expr:
    parts = compiler.arguments(name, spec, 2, 3)

    def run(variables: Vars) -> Any:
        array, first = parts[0](variables), parts[1](variables)
        if nullish(array) or nullish(first):
            return None
        if not is_array(array):
            raise fail(
                f"First argument to $slice must be an array, but is of type: {type_name(array)}",
                28724,
            )
        if not is_number(first):
            raise fail(
                f"Second argument to $slice must be a numeric value, but is of type: "
                f"{type_name(first)}",
                28725,
            )
        if not integral32(first):
            raise fail("Second argument to $slice can't be represented as a 32-bit integer", 28726)
        size, number = len(array), as_long(first)
        if len(parts) == 2:
            if number >= 0:
                return list(array[: min(size, number)])
            return list(array[max(0, size + number) :])
        start = max(0, size + number) if number < 0 else min(size, number)
        count = parts[2](variables)
        if nullish(count):
            return None
        if not is_number(count):
            raise fail(
                f"Third argument to $slice must be numeric, but is of type: {type_name(count)}",
                28727,
            )
        if not integral32(count):
            raise fail("Third argument to $slice can't be represented as a 32-bit integer", 28728)
        if as_long(count) <= 0:
            raise fail("Third argument to $slice must be positive", 28729)
        return list(array[start : min(start + as_long(count), size)])

    return run


def _is_array(name: str, spec: Any, compiler: Compiler) -> Expr:
    argument = single(name, compiler, spec)
    return lambda variables: is_array(argument(variables))


def _reverse(name: str, value: Any) -> Any:
    if not is_array(value):
        raise fail(
            f"The argument to $reverseArray must be an array, but was of type: {type_name(value)}",
            34435,
        )
    return list(reversed(value))


def _range(name: str, spec: Any, compiler: Compiler) -> Expr:
    parts = compiler.arguments(name, spec, 2, 3)

    def bound(value: Any, what: str, codes: tuple[int, int]) -> int:
        if not is_number(value):
            raise fail(
                f"$range requires a numeric {what}, found value of type: {type_name(value)}",
                codes[0],
            )
        if not integral32(value):
            raise fail(
                f"$range requires a {what} that can be represented as a 32-bit integer", codes[1]
            )
        return as_long(value)

    def run(variables: Vars) -> list[int]:
        start = bound(parts[0](variables), "starting value", (34443, 34444))
        end = bound(parts[1](variables), "ending value", (34445, 34446))
        step = 1
        if len(parts) == 3:
            step = bound(parts[2](variables), "step value", (34447, 34448))
            if step == 0:
                raise fail("$range requires a non-zero step value", 34449)
        return list(range(start, end, step))

    return run


def _index_of_array(name: str, spec: Any, compiler: Compiler) -> Expr:
    parts = compiler.arguments(name, spec, 2, 4)

    def bound(variables: Vars, index: int, what: str) -> int:
        value = parts[index](variables)
        if not integral32(value):
            raise fail(
                f"{name} requires an integral {what}, found a value of type: {type_name(value)}",
                9711600,
            )
        number = as_long(value)
        if number < 0:
            raise fail(f"{name} requires a nonnegative {what}", 9711601)
        return number

    def run(variables: Vars) -> Any:
        array = parts[0](variables)
        if nullish(array):
            return None
        if not is_array(array):
            raise fail(
                f"$indexOfArray requires an array as a first argument, found: {type_name(array)}",
                40090,
            )
        start = bound(variables, 2, "starting index") if len(parts) > 2 else 0
        end = (
            min(len(array), bound(variables, 3, "ending index")) if len(parts) > 3 else (len(array))
        )
        target = parts[1](variables)
        for position in range(start, end):
            if expr_equal(array[position], target):
                return position
        return -1

    return run


def _object_to_array(name: str, value: Any) -> Any:
    document = as_object(value)
    if document is None:
        raise fail(f"$objectToArray requires a document input, found: {type_name(value)}", 40390)
    return [{"k": key, "v": item} for key, item in document.items()]


def _array_to_object(name: str, value: Any) -> Any:
    if not is_array(value):
        raise fail(f"$arrayToObject requires an array input, found: {type_name(value)}", 40386)
    result: dict[str, Any] = {}
    pairs = bool(value) and is_array(value[0])
    if value and not pairs and as_object(value[0]) is None:
        raise fail("Unrecognised input type format for $arrayToObject", 40398)
    for element in value:
        key, item = _pair(element, pairs)
        if "\0" in key:
            raise fail("Key field cannot contain an embedded null byte", 4940400)
        result[key] = item
    return result


def _pair(element: Any, pairs: bool) -> tuple[str, Any]:
    if pairs:
        if not is_array(element):
            raise fail("$arrayToObject requires a consistent input format.", 40396)
        if len(element) != 2:
            raise fail("$arrayToObject requires an array of size 2 arrays", 40397)
        if not isinstance(element[0], str):
            raise fail(
                "$arrayToObject requires an array of key-value pairs, where the key "
                "must be of type string.",
                40395,
            )
        return str(element[0]), element[1]
    document = as_object(element)
    if document is None:
        raise fail("$arrayToObject requires a consistent input format.", 40391)
    if len(document) != 2:
        raise fail("$arrayToObject requires an object keys of 'k' and 'v'.", 40392)
    if "k" not in document or "v" not in document:
        raise fail("$arrayToObject requires an object with keys 'k' and 'v'.", 40393)
    if not isinstance(document["k"], str):
        raise fail(
            "$arrayToObject requires an object with keys 'k' and 'v', where the value "
            "of 'k' must be of type string.",
            40394,
        )
    return str(document["k"]), document["v"]


OPERATORS: Final[dict[str, OperatorCompiler]] = {
    "$size": _size,
    "$arrayElemAt": _element_at,
    "$first": _end(0),
    "$last": _end(-1),
    "$in": _in,
    "$concatArrays": _concat_arrays,
    "$slice": _slice,
    "$isArray": _is_array,
    "$reverseArray": unary(_reverse),
    "$range": _range,
    "$indexOfArray": _index_of_array,
    "$objectToArray": unary(_object_to_array),
    "$arrayToObject": unary(_array_to_object),
}
