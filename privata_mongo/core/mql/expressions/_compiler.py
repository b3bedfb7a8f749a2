"""Internal. Compiles MongoDB aggregation expressions into closures, as ``Expression::parse`` does.

An operand is a field path (``"$a.b"``), a variable (``"$$ROOT"``, ``"$$CURRENT.y"``), an
operator document, an object of expressions, an array of expressions, or a literal. Parsing
happens once per pipeline, with the server's checks and error codes (several fields in an
operator object 15983, wrong arity 16020/28667, undefined variable 17276, bad field names
15998/16410/16412); evaluation is a call of the returned closure with the variables of one
document.

Field paths read like ``ExpressionFieldPath``: through an array, the path continues into the
embedded documents and skips every other element (nested arrays included), and what is not
found is *missing*, which an array literal turns into null and an object literal omits.

The process evaluates expressions only where the server cannot: over documents that carry
identity values, after a pipeline has been pushed down as far as it goes. What it needs there
is field paths, literals and the conditionals and comparisons of ``_logic`` (which ODMs use to
fetch linked documents); every other operator raises ``UnsupportedOperator``, and the caller
refuses the pipeline, naming the operator.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any, Final

from privata_mongo.core.mql._bson_types import ARRAY_TYPES, MISSING, as_object
from privata_mongo.core.mql.expressions import _logic
from privata_mongo.core.mql.expressions._base import (
    Compiler,
    Expr,
    OperatorCompiler,
    Vars,
    clean_array,
    constant,
    fail,
)
from privata_mongo.core.mql.values import UnsupportedOperator

__all__ = [
    "compile_expression",
    "is_expression_name",
    "is_operator_document",
    "new_variables",
    "path_parts",
    "validate_field_name",
]

_BUILTIN_VARIABLES: Final = frozenset({"ROOT", "CURRENT", "REMOVE", "NOW"})
_SERVER_VARIABLES: Final = frozenset(
    {"CLUSTER_TIME", "USER_ROLES", "SEARCH_META", "SEARCH_SCORE", "SEARCH_SCORE_DETAILS"}
    | {"DESCEND", "PRUNE", "KEEP", "IS_MR", "JS_SCOPE", "UNTYPED"}
)


def _literal(name: str, argument: Any, compiler: Compiler) -> Expr:
    return constant(argument)


_OPERATORS: Final[dict[str, OperatorCompiler]] = {"$literal": _literal, **_logic.OPERATORS}


def is_expression_name(name: str) -> bool:
    """Whether this module evaluates the expression operator ``name``."""
    return name in _OPERATORS


def is_operator_document(value: Any) -> bool:
    """Whether an object operand is an operator call (its first field starts with ``$``)."""
    return isinstance(value, Mapping) and bool(value) and str(next(iter(value))).startswith("$")


def validate_field_name(name: str) -> None:
    """``FieldPath::uassertValidFieldName``: not empty, no leading ``$``, no ``.``."""
    if not name:
        raise fail("FieldPath field names may not be empty strings.", 15998)
    if name.startswith("$"):
        raise fail("FieldPath field names may not start with '$'.", 16410)
    if "\0" in name:
        raise fail("FieldPath field names may not contain '\\0'.", 16411)
    if "." in name:
        raise fail("FieldPath field names may not contain '.'.", 16412)


def path_parts(path: str) -> tuple[str, ...]:
    """``FieldPath``: the components of a dotted path, validated as the server validates them."""
    if not path:
        raise fail("FieldPath cannot be constructed with empty string", 40352)
    parts = tuple(path.split("."))
    for part in parts:
        if not part:
            raise fail("FieldPath field names may not be empty strings.", 15998)
        if part.startswith("$"):
            raise fail("FieldPath field names may not start with '$'.", 16410)
    return parts


def _in_document(document: Mapping[str, Any], parts: tuple[str, ...], index: int) -> Any:
    value = document.get(parts[index], MISSING)
    if index == len(parts) - 1:
        return value
    sub = as_object(value)
    if sub is not None:
        return _in_document(sub, parts, index + 1)
    if isinstance(value, ARRAY_TYPES):
        return _in_array(value, parts, index + 1)
    return MISSING


def _in_array(array: Iterable[Any], parts: tuple[str, ...], index: int) -> list[Any]:
    found = []
    for element in array:
        sub = as_object(element)
        if sub is None:
            continue
        value = _in_document(sub, parts, index)
        if value is not MISSING:
            found.append(value)
    return found


def walk(value: Any, parts: tuple[str, ...]) -> Any:
    """``ExpressionFieldPath::evaluate`` below a variable's value."""
    if not parts:
        return value
    sub = as_object(value)
    if sub is not None:
        return _in_document(sub, parts, 0)
    if isinstance(value, ARRAY_TYPES):
        return _in_array(value, parts, 0)
    return MISSING


class _Scope:
    """The compiler of one scope: which user variables are defined here."""

    __slots__ = ("_variables",)

    def __init__(self, variables: frozenset[str]) -> None:
        self._variables = variables

    def compile(self, spec: Any) -> Expr:
        if isinstance(spec, str):
            return self._field_path(spec) if spec.startswith("$") else constant(spec)
        if isinstance(spec, Mapping):
            return self._object(spec)
        if isinstance(spec, ARRAY_TYPES):
            items = [self.compile(item) for item in spec]
            return lambda variables: clean_array(item(variables) for item in items)
        return constant(spec)

    def arguments(self, name: str, spec: Any, low: int, high: int | None) -> list[Expr]:
        specs = list(spec) if isinstance(spec, ARRAY_TYPES) else [spec]
        count = len(specs)
        if low == high and count != low:
            raise fail(
                f"Expression {name} takes exactly {low} arguments. {count} were passed in.", 16020
            )
        if count < low or (high is not None and count > high):
            limit = f", and at most {high}" if high is not None else ""
            raise fail(
                f"Expression {name} takes at least {low} arguments{limit}, "
                f"but {count} were passed in.",
                28667 if high is not None else 16020,
            )
        return [self.compile(item) for item in specs]

    def _object(self, spec: Mapping[str, Any]) -> Expr:
        if not spec:
            return lambda variables: {}
        first = str(next(iter(spec)))
        if first.startswith("$"):
            if len(spec) != 1:
                raise fail(
                    "an expression specification must contain exactly one field, "
                    f"the name of the expression. Found {len(spec)} fields",
                    15983,
                )
            return self._operator(first, spec[first])
        fields: list[tuple[str, Expr]] = []
        for key, value in spec.items():
            validate_field_name(key)
            fields.append((key, self.compile(value)))

        def run(variables: Vars) -> dict[str, Any]:
            result: dict[str, Any] = {}
            for key, value in fields:
                computed = value(variables)
                if computed is not MISSING:
                    result[key] = computed
            return result

        return run

    def _operator(self, name: str, argument: Any) -> Expr:
        handler = _OPERATORS.get(name)
        if handler is None:
            raise UnsupportedOperator(name)
        return handler(name, argument, self)

    def _field_path(self, raw: str) -> Expr:
        body = raw[1:]
        if not body:
            raise fail("'$' by itself is not a valid FieldPath", 16872)
        if not body.startswith("$"):
            parts = path_parts(body)
            if len(parts) == 1:
                key = parts[0]

                def top(variables: Vars) -> Any:
                    current = variables["CURRENT"]
                    if type(current) is dict:
                        return current.get(key, MISSING)
                    return walk(current, parts)

                return top
            return lambda variables: walk(variables["CURRENT"], parts)
        name = body[1:].partition(".")[0]
        self._check_readable(name)
        parts = path_parts(body[1:])[1:] if "." in body else ()
        return lambda variables: walk(variables.get(name, MISSING), parts)

    def _check_readable(self, name: str) -> None:
        if not name:
            raise fail("empty variable names are not allowed", 16869)
        first = name[0]
        if first.isascii() and not first.isalpha():
            raise fail(f"'{name}' starts with an invalid character for a user variable name", 16870)
        for char in name[1:]:
            if char.isascii() and not (char.isalnum() or char == "_"):
                raise fail(f"'{name}' contains an invalid character for a variable name", 16871)
        if name in self._variables or name in _BUILTIN_VARIABLES:
            return
        if name in _SERVER_VARIABLES:
            raise UnsupportedOperator(f"$${name}")
        raise fail(f"Use of undefined variable: {name}", 17276)


_TOP: Final = _Scope(frozenset())


def compile_expression(spec: Any, variables: Iterable[str] = ()) -> Expr:
    """Compile an aggregation expression once; call the result with ``new_variables(...)``.

    Raises:
        OperationFailed: the expression is malformed (the server's code).
        UnsupportedOperator: it uses an operator or system variable evaluated only by a server.
    """
    scope = _TOP if not variables else _Scope(frozenset(variables))
    return scope.compile(spec)


def new_variables(root: Any, now: datetime.datetime) -> Vars:
    """The variables of one evaluation over the document ``root``."""
    return {"ROOT": root, "CURRENT": root, "NOW": now, "REMOVE": MISSING}
