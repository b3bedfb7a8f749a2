"""A MongoDB query matcher that runs in the process, with the server's own semantics.

Predicates on identity fields cannot always run on the server (the values are encrypted, or
live in another collection), so the planner evaluates them here. An application must not be
able to tell: the same filter has to select the same documents, fail with the same error code
when malformed, and name the same array element for the positional ``$`` of an update. This
module parses a filter once, as ``MatchExpressionParser`` does, into plain closures; what the
closures are and how they run along a path is in ``_predicates``, the leaf operators live in
``_match_ops`` (regexes in ``_pcre``) and the value order in ``values``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from bson.regex import Regex

from privata_mongo.core.failures import BAD_VALUE, FAILED_TO_PARSE, OperationFailed
from privata_mongo.core.mql import _match_ops as ops
from privata_mongo.core.mql._bson_types import (
    ARRAY_TYPES,
    MISSING,
    as_object,
    is_nan,
    regex_flags,
    regex_pattern,
)
from privata_mongo.core.mql._numbers import is_number, parse_integer, plain
from privata_mongo.core.mql._predicates import (
    Field,
    Leaf,
    Negation,
    Predicate,
    Record,
    all_match,
    always,
    any_match,
    path_predicate,
)
from privata_mongo.core.mql.budget import Deadline, deadline_scope, scoped_deadline
from privata_mongo.core.mql.values import UnsupportedOperator

__all__ = ["Matcher", "UnsupportedOperator", "compile_filter", "matches", "true_value"]

_GEO: Final = frozenset(
    {"$near", "$nearSphere", "$geoNear", "$geoWithin", "$within", "$geoIntersects"}
)
_PATHLESS: Final = frozenset(
    {"$and", "$or", "$nor", "$comment", "$where", "$expr", "$text", "$jsonSchema"}
    | {"$alwaysTrue", "$alwaysFalse", "$sampleRate", "$ref", "$id", "$db"}
)
_KEYWORDS: Final = frozenset(
    {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$all", "$elemMatch"}
    | {"$exists", "$type", "$size", "$mod", "$regex", "$options"}
    | {"$bitsAllSet", "$bitsAllClear", "$bitsAnySet", "$bitsAnyClear"}
    | _GEO
)


def _regex_test(pattern: str, options: str) -> ops.Test:
    deadline = scoped_deadline()
    if deadline is None:
        return ops.regex_test(pattern, options)
    return ops.regex_test(pattern, options, deadline)


def _fail(message: str, code: int = BAD_VALUE) -> OperationFailed:
    return OperationFailed(message, code)


def _is_regex(value: Any) -> bool:
    return isinstance(value, (re.Pattern, Regex))


def _is_expression(value: Any, allow_incomplete_dbref: bool = False) -> bool:
    """The server's ``isExpressionDocument``: a non-empty object whose first key starts with $."""
    if not isinstance(value, Mapping) or not value:
        return False
    if not str(next(iter(value))).startswith("$"):
        return False
    if allow_incomplete_dbref:
        return not ({"$ref", "$id", "$db"} & value.keys())
    return not ("$ref" in value and "$id" in value)


def _regex_leaf(value: Any) -> Leaf:
    return Leaf(_regex_test(regex_pattern(value), regex_flags(value)))


class Matcher:
    """A compiled filter; calling it tests one document (within its deadline, if any)."""

    __slots__ = ("_deadline", "_predicate")

    def __init__(self, predicate: Predicate, deadline: Deadline | None = None) -> None:
        self._predicate = predicate
        self._deadline = deadline if deadline is not None and deadline.at is not None else None

    def __call__(self, document: Mapping[str, Any]) -> bool:
        """Whether the server's find would select ``document``.

        Raises:
            OperationFailed: code 50, the filter's deadline passed before or during the test.
        """
        if self._deadline is not None:
            self._deadline.check()
        return self._predicate(document, None)

    def positional(self, document: Mapping[str, Any]) -> int | None:
        """The array index the positional ``$`` of an update would use for ``document``.

        It is the index, in the outermost array the query traversed, of the first element that
        matched; None when the document does not match or no array element decided the match.
        As on the server (``MatchDetails``), negations (``$ne``, ``$nin``, ``$not``,
        ``$exists: false``, ``$nor``) and ``$or`` of several clauses record nothing, and within
        an implicit ``$and`` the last predicate that recorded an index wins.
        """
        record: Record = [None]
        return record[0] if self._predicate(document, record) else None


def compile_filter(filter: Mapping[str, Any], deadline: Deadline | None = None) -> Matcher:
    """Parse and validate a filter once, as the server does, into a reusable ``Matcher``.

    ``deadline``: the operation's time limit; the filter's regex matches stop there (code 50),
    and without it a match on the backtracking engine stops at ``budget.MATCH_BUDGET``. The
    matcher checks it before each document it tests. Without one, the deadline of an enclosing
    ``budget.deadline_scope`` applies (a pipeline's ``$match`` stages).

    Raises:
        OperationFailed: the filter is malformed; the code is the server's (2 BadValue for an
            unknown operator or a bad argument, 9, 14, 51091, 51108 … where the server uses
            them). The message names operators and paths, never a value.
        UnsupportedOperator: the filter uses an operator that cannot run in the process
            (``$where``, ``$expr``, ``$text``, ``$jsonSchema``, geo operators, ``$sampleRate``,
            internal operators, or a PCRE construct Python's ``re`` cannot express).
        TypeError: ``filter`` is not a mapping.
    """
    if not isinstance(filter, Mapping):
        raise TypeError("filter must be a mapping")
    if deadline is None:
        deadline = scoped_deadline()
    with deadline_scope(deadline):  # the regex tests built while parsing read it
        return Matcher(_document(filter, top=True), deadline)


def matches(document: Mapping[str, Any], filter: Mapping[str, Any]) -> bool:
    """``compile_filter(filter)(document)``; compile once instead when testing many documents."""
    return compile_filter(filter)(document)


# ---- the document level: paths and pathless operators --------------------------------------


def _document(filter: Mapping[str, Any], top: bool) -> Predicate:
    predicates: list[Predicate] = []
    for key, value in filter.items():
        if not isinstance(key, str):
            raise TypeError("filter keys must be strings")
        if key.startswith("$"):
            predicate = _pathless(key, value, top)
            if predicate is not None:
                predicates.append(predicate)
            continue
        parts = tuple(key.split("."))
        if _is_expression(value):
            predicates.extend(path_predicate(parts, field) for field in _operators(key, value, top))
        elif _is_regex(value):
            predicates.append(path_predicate(parts, _regex_leaf(value)))
        else:
            predicates.append(path_predicate(parts, Leaf(ops.comparison("$eq", value))))
    return all_match(predicates)


def _pathless(key: str, value: Any, top: bool) -> Predicate | None:
    if key == "$comment":
        return None
    if key in ("$and", "$or", "$nor"):
        if not isinstance(value, ARRAY_TYPES):
            raise _fail(f"{key} must be an array")
        if not value:
            raise _fail("$and/$or/$nor must be a nonempty array")
        if not all(isinstance(clause, Mapping) for clause in value):
            raise _fail("$or/$and/$nor entries need to be full objects")
        clauses = [_document(clause, top) for clause in value]
        if key == "$and":
            return all_match(clauses)
        if key == "$or" and len(clauses) == 1:  # the server's optimizer unwraps it
            return clauses[0]
        return any_match(clauses, negate=key == "$nor")
    if key in ("$alwaysTrue", "$alwaysFalse"):
        try:
            one = parse_integer(value)
        except ValueError as reason:
            raise _fail(str(reason), FAILED_TO_PARSE) from None
        if one != 1:
            raise _fail(f"{key} must be an integer value of 1", FAILED_TO_PARSE)
        return always(key == "$alwaysTrue")
    if key in ("$ref", "$id", "$db"):
        return path_predicate((key,), Leaf(ops.comparison("$eq", value)))
    if key in ("$where", "$expr", "$text", "$sampleRate") and not top:
        raise _fail(f"{key} can only be applied to the top-level document")
    if key in _PATHLESS or key.startswith("$_internal"):
        raise UnsupportedOperator(key)
    hint = (
        ". If you are trying to negate an entire expression, use $nor."
        if key == "$not"
        else ". If you have a field name that starts with a '$' symbol, consider using "
        "$getField or $setField."
    )
    raise _fail(f"unknown top level operator: {key}{hint}")


# ---- the field level: {path: {$op: argument, …}} --------------------------------------------


def _operators(path: str, spec: Mapping[str, Any], top: bool) -> list[Field]:
    """The server's ``parseSub``: every operator of one path's operator document."""
    if next(iter(spec), None) in ("$near", "$nearSphere", "$geoNear"):
        raise UnsupportedOperator(next(iter(spec)))
    fields: list[Field] = []
    for op, argument in spec.items():
        handler = _HANDLERS.get(op)
        if handler is not None:
            fields.extend(handler(path, op, argument, spec, top))
        elif op == "$where":
            raise _fail("$where cannot be applied to a field")
        elif op in _GEO or str(op).startswith("$_internal"):
            raise UnsupportedOperator(op)
        else:
            raise _fail(f"unknown operator: {op}")
    return fields


_Handler = Callable[[str, str, Any, Mapping[str, Any], bool], list[Field]]


def _comparison(path: str, op: str, argument: Any, spec: Any, top: bool) -> list[Field]:
    if _is_regex(argument) and op != "$eq":
        if op == "$ne":
            raise _fail("Can't have regex as arg to $ne.")
        raise _fail(f"Can't have RegEx as arg to predicate over field '{path}'.")
    leaf = Leaf(ops.comparison("$eq" if op == "$ne" else op, argument))
    return [Negation((leaf,))] if op == "$ne" else [leaf]


def _membership(path: str, op: str, argument: Any, spec: Any, top: bool) -> list[Field]:
    if not isinstance(argument, ARRAY_TYPES):
        raise _fail(f"{op} needs an array")
    items: list[Any] = []
    regexes: list[ops.Test] = []
    for item in argument:
        if _is_expression(item):
            raise _fail("cannot nest $ under $in")
        if _is_regex(item):
            regexes.append(_regex_leaf(item).test)
        else:
            items.append(item)
    leaf = Leaf(ops.membership(items, regexes))
    return [Negation((leaf,))] if op == "$nin" else [leaf]


def _exists(path: str, op: str, argument: Any, spec: Any, top: bool) -> list[Field]:
    leaf = Leaf(lambda value: value is not MISSING)
    return [leaf] if true_value(argument) else [Negation((leaf,))]


def true_value(value: Any) -> bool:
    """BSON truthiness (``BSONElement::trueValue``): false, null, and zero are false.

    The server reads ``$exists`` operands by this rule, so a normalised operand keeps a
    predicate's meaning while no longer carrying the value the application passed.
    """
    if value is None or isinstance(value, bool):
        return bool(value)
    if is_number(value):
        return is_nan(value) or plain(value) != 0
    return True


def _regex(path: str, op: str, argument: Any, spec: Mapping[str, Any], top: bool) -> list[Field]:
    if op == "$options":
        if "$regex" not in spec:
            raise _fail("$options needs a $regex")
        return []
    pattern, options = "", ""
    for key, value in spec.items():
        if key == "$regex":
            if isinstance(value, str):
                pattern = value
            elif _is_regex(value):
                pattern = regex_pattern(value)
                if regex_flags(value):
                    if options:
                        raise _fail("options set in both $regex and $options", 51074)
                    options = regex_flags(value)
            else:
                raise _fail("$regex has to be a string")
        elif key == "$options":
            if not isinstance(value, str):
                raise _fail("$options has to be a string")
            if options:
                raise _fail("options set in both $regex and $options", 51075)
            options = value
    return [Leaf(_regex_test(pattern, options))]


def _not(path: str, op: str, argument: Any, spec: Any, top: bool) -> list[Field]:
    if _is_regex(argument):
        return [Negation((_regex_leaf(argument),))]
    if not isinstance(argument, Mapping):
        raise _fail("$not needs a regex or a document")
    if not argument:
        raise _fail("$not cannot be empty")
    return [Negation(tuple(_operators(path, argument, top)))]


def _all_of(path: str, op: str, argument: Any, spec: Any, top: bool) -> list[Field]:
    if not isinstance(argument, ARRAY_TYPES):
        raise _fail("$all needs an array")
    if not argument:
        return [Leaf(lambda value: False)]
    first = argument[0]
    if isinstance(first, Mapping) and next(iter(first), None) == "$elemMatch":
        fields: list[Field] = []
        for item in argument:
            if not isinstance(item, Mapping) or next(iter(item), None) != "$elemMatch":
                raise _fail("$all/$elemMatch has to be consistent")
            fields.extend(_elem_match(path, "$elemMatch", item["$elemMatch"], item, top))
        return fields
    leaves: list[Field] = []
    for item in argument:
        if _is_regex(item):
            leaves.append(_regex_leaf(item))
        elif isinstance(item, Mapping) and next(iter(item), None) in _KEYWORDS:
            raise _fail("no $ expressions in $all")
        else:
            leaves.append(Leaf(ops.comparison("$eq", item)))
    return leaves


def _value_test(fields: Sequence[Field]) -> ops.Test:
    """The fields as one test on a single value (``matchesSingleElement``), for $elemMatch."""
    tests: list[ops.Test] = []
    for field in fields:
        if isinstance(field, Leaf):
            tests.append(field.test)
        else:
            tests.append(_negated(_value_test(field.children)))
    if len(tests) == 1:
        return tests[0]
    return lambda value: all(test(value) for test in tests)


def _negated(test: ops.Test) -> ops.Test:
    return lambda value: not test(value)


def _as_document(element: Any) -> Mapping[str, Any] | None:
    if isinstance(element, ARRAY_TYPES):
        return {str(index): item for index, item in enumerate(element)}
    return as_object(element)


def _elem_match(path: str, op: str, argument: Any, spec: Any, top: bool) -> list[Field]:
    if not isinstance(argument, Mapping):
        raise _fail("$elemMatch needs an Object")
    if _is_expression(argument, True) and next(iter(argument)) not in _PATHLESS:
        element_test = _value_test(_operators("", argument, top=False))

        def locate(value: Any) -> int:
            for index, element in enumerate(value):
                if element_test(element):
                    return index
            return -1

    else:
        predicate = _document(argument, top=False)

        def locate(value: Any) -> int:
            for index, element in enumerate(value):
                document = _as_document(element)
                if document is not None and predicate(document, None):
                    return index
            return -1

    def test(value: Any) -> bool:
        return isinstance(value, ARRAY_TYPES) and locate(value) >= 0

    return [Leaf(test, traverse=False, locate=locate)]


def _simple(make: Callable[[Any], ops.Test], traverse: bool = True) -> _Handler:
    return lambda path, op, argument, spec, top: [Leaf(make(argument), traverse=traverse)]


_HANDLERS: Final[dict[str, _Handler]] = {
    **dict.fromkeys(("$eq", "$ne", "$gt", "$gte", "$lt", "$lte"), _comparison),
    "$in": _membership,
    "$nin": _membership,
    "$exists": _exists,
    "$regex": _regex,
    "$options": _regex,
    "$not": _not,
    "$all": _all_of,
    "$elemMatch": _elem_match,
    "$size": _simple(ops.size_test, traverse=False),
    "$mod": _simple(ops.mod_test),
    "$type": lambda path, op, argument, spec, top: [Leaf(ops.type_test(path, argument))],
    **{
        bits: (lambda path, op, argument, spec, top: [Leaf(ops.bits_test(op, argument))])
        for bits in ("$bitsAllSet", "$bitsAllClear", "$bitsAnySet", "$bitsAnyClear")
    },
}
