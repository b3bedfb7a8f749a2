"""Internal. The document an upsert starts from, derived from the update's query.

When an upsert inserts, the server does not start from an empty document: it seeds one with the
values the query fixes (``populateDocumentWithQueryFields``, after the query optimizer has
unwrapped ``$and``, a one-clause ``$or`` and a one-value ``$in``), then applies the update to it.
The seed is about the query, not about update operators, which is why it is not with the update
tree; ``update`` re-exports ``upsert_seed`` as public API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from bson.regex import Regex

from privata_mongo.core.mql._update_values import copy_value, fail
from privata_mongo.core.mql.values import equal

__all__ = ["upsert_seed"]

_NOT_SINGLE_VALUE_FIELD: Final = 54  # ErrorCodes::NotSingleValueField


def upsert_seed(filter: Mapping[str, Any]) -> dict[str, Any]:
    """The document an upsert starts from: the filter's equality predicates.

    As the server's ``populateDocumentWithQueryFields`` after query optimization: top-level
    equalities, ``$eq``, ``$and`` clauses, a ``$or`` of one clause, a ``$in`` of one value and
    the values of ``$all`` count; dotted paths become embedded documents; fields are added in
    path order. Other operators contribute nothing.

    Raises:
        WriteFailed: two equalities on the same path or on a path and its prefix (code 54).
    """
    equalities: dict[str, Any] = {}
    _equalities(filter, equalities)
    document: dict[str, Any] = {}
    for path in sorted(equalities):
        parts = path.split(".")
        target = document
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = copy_value(equalities[path])
    return document


def _is_operator_document(value: Any) -> bool:
    if not isinstance(value, Mapping) or not value:
        return False
    first = next(iter(value))
    return (
        isinstance(first, str)
        and first.startswith("$")
        and not ("$ref" in value and "$id" in value)
    )


def _is_regex(value: Any) -> bool:
    return isinstance(value, (Regex, re.Pattern))


def _equalities(filter: Mapping[str, Any], found: dict[str, Any]) -> None:
    for key, value in filter.items():
        if key == "$and" or (key == "$or" and isinstance(value, (list, tuple)) and len(value) == 1):
            for clause in value if isinstance(value, (list, tuple)) else ():
                if isinstance(clause, Mapping):
                    _equalities(clause, found)
        elif key.startswith("$"):
            continue
        elif _is_operator_document(value):
            for op, argument in value.items():
                for item in _equal_values(op, argument):
                    _add_equality(key, item, found)
        elif not _is_regex(value):
            _add_equality(key, value, found)


def _equal_values(op: str, argument: Any) -> list[Any]:
    """The values an operator fixes a path to, after the server's query optimizations."""
    if op == "$eq":
        return [argument]
    if op == "$in" and isinstance(argument, (list, tuple)):
        distinct: list[Any] = []
        for item in argument:
            if _is_regex(item):
                return []
            if not any(equal(item, seen) for seen in distinct):
                distinct.append(item)
        return distinct if len(distinct) == 1 else []
    if op == "$all" and isinstance(argument, (list, tuple)):
        if argument and isinstance(argument[0], Mapping) and "$elemMatch" in argument[0]:
            return []
        return [item for item in argument if not _is_regex(item)]
    return []


def _add_equality(path: str, value: Any, found: dict[str, Any]) -> None:
    for other in found:
        if other == path:
            message = f"path '{path}' is matched twice"
        elif path.startswith(other + ".") or other.startswith(path + "."):
            longer, shorter = (path, other) if len(path) > len(other) else (other, path)
            message = f"both paths '{longer}' and '{shorter}' are matched"
        else:
            continue
        raise fail(f"cannot infer query fields to set, {message}", _NOT_SINGLE_VALUE_FIELD)
    found[path] = value
