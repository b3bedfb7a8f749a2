"""Internal. Boolean, comparison and conditional aggregation operators.

``$and``/``$or``/``$not`` use the server's truthiness (``coerceToBool``: only false, null,
missing and numeric zero are false) and short-circuit as ``ExpressionAnd``/``ExpressionOr`` do.
The comparisons (``$eq`` … ``$cmp``) use the expression order, which differs from the query
order in one place: a *missing* operand is not null (``{$eq: ["$nope", null]}`` is false), it
ranks below null. ``$cond``, ``$ifNull`` and ``$switch`` evaluate only the branch they return,
so a failing expression in an untaken branch does not fail the document.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from privata_mongo.core.mql._bson_types import ARRAY_TYPES
from privata_mongo.core.mql.expressions._base import (
    Compiler,
    Expr,
    OperatorCompiler,
    Vars,
    expr_compare,
    fail,
    nullish,
    single,
    truthy,
)


def _and(name: str, spec: Any, compiler: Compiler) -> Expr:
    parts = compiler.arguments(name, spec, 0, None)
    return lambda variables: all(truthy(part(variables)) for part in parts)


def _or(name: str, spec: Any, compiler: Compiler) -> Expr:
    parts = compiler.arguments(name, spec, 0, None)
    return lambda variables: any(truthy(part(variables)) for part in parts)


def _not(name: str, spec: Any, compiler: Compiler) -> Expr:
    part = single(name, compiler, spec)
    return lambda variables: not truthy(part(variables))


_TESTS: Final[dict[str, Callable[[int], bool]]] = {
    "$eq": lambda c: c == 0,
    "$ne": lambda c: c != 0,
    "$gt": lambda c: c > 0,
    "$gte": lambda c: c >= 0,
    "$lt": lambda c: c < 0,
    "$lte": lambda c: c <= 0,
}


def _comparison(name: str, spec: Any, compiler: Compiler) -> Expr:
    left, right = compiler.arguments(name, spec, 2, 2)
    if name == "$cmp":
        return lambda variables: expr_compare(left(variables), right(variables))
    test = _TESTS[name]
    return lambda variables: test(expr_compare(left(variables), right(variables)))


def _cond(name: str, spec: Any, compiler: Compiler) -> Expr:
    if isinstance(spec, Mapping):
        branches: dict[str, Expr] = {}
        for key, value in spec.items():
            if key not in ("if", "then", "else"):
                raise fail(f"Unrecognized parameter to $cond: {key}", 17083)
            branches[key] = compiler.compile(value)
        for key, code in (("if", 17080), ("then", 17081), ("else", 17082)):
            if key not in branches:
                raise fail(f"Missing '{key}' parameter to $cond", code)
        test, then, otherwise = branches["if"], branches["then"], branches["else"]
    else:
        test, then, otherwise = compiler.arguments(name, spec, 3, 3)
    return lambda variables: then(variables) if truthy(test(variables)) else otherwise(variables)


def _if_null(name: str, spec: Any, compiler: Compiler) -> Expr:
    count = len(spec) if isinstance(spec, ARRAY_TYPES) else 1
    if count < 2:
        raise fail(f"$ifNull needs at least two arguments, had: {count}", 1257300)
    parts = compiler.arguments(name, spec, 2, None)
    *candidates, last = parts

    def run(variables: Vars) -> Any:
        for candidate in candidates:
            value = candidate(variables)
            if not nullish(value):
                return value
        return last(variables)

    return run


def _switch(name: str, spec: Any, compiler: Compiler) -> Expr:
    if not isinstance(spec, Mapping):
        raise fail("$switch requires an object as an argument", 40060)
    branches: list[tuple[Expr, Expr]] = []
    default: Expr | None = None
    for key, value in spec.items():
        if key == "branches":
            if not isinstance(value, ARRAY_TYPES):
                raise fail("$switch expected an array for 'branches'", 40061)
            branches.extend(_branch(branch, compiler) for branch in value)
        elif key == "default":
            default = compiler.compile(value)
        else:
            raise fail(f"$switch found an unknown argument: {key}", 40067)
    if not branches:
        raise fail("$switch requires at least one branch.", 40068)

    def run(variables: Vars) -> Any:
        for test, then in branches:
            if truthy(test(variables)):
                return then(variables)
        if default is None:
            raise fail(
                "$switch could not find a matching branch for an input, and no default was "
                "specified.",
                40066,
            )
        return default(variables)

    return run


def _branch(branch: Any, compiler: Compiler) -> tuple[Expr, Expr]:
    if not isinstance(branch, Mapping):
        raise fail("$switch expected each branch to be an object", 40062)
    test: Expr | None = None
    then: Expr | None = None
    for key, value in branch.items():
        if key == "case":
            test = compiler.compile(value)
        elif key == "then":
            then = compiler.compile(value)
        else:
            raise fail(f"$switch found an unknown argument to a branch: {key}", 40063)
    if test is None:
        raise fail("$switch requires each branch have a 'case' expression", 40064)
    if then is None:
        raise fail("$switch requires each branch have a 'then' expression.", 40065)
    return test, then


OPERATORS: Final[dict[str, OperatorCompiler]] = {
    "$and": _and,
    "$or": _or,
    "$not": _not,
    **dict.fromkeys(("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$cmp"), _comparison),
    "$cond": _cond,
    "$ifNull": _if_null,
    "$switch": _switch,
}
