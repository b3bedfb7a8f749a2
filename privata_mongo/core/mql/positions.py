"""Where the server takes the operators that apply to a whole document, checked before sending.

``$where``, ``$expr`` and ``$text`` test the document a query runs on. MongoDB's parser refuses
them anywhere else, before it evaluates anything: inside ``$elemMatch``'s object form, at any
depth and through ``$and``/``$or``/``$nor``, "<op> can only be applied to the top-level
document"; at a field (an operator document, ``$not``, ``$elemMatch``'s value form), "$where
cannot be applied to a field" and "unknown operator: $expr" — all ``BadValue`` (code 2,
``expression_parser.cpp``). The refusal comes back only after the command has left the process
with its operands, which are then in the driver's command log, and an operand of such an
operator may carry an identity value (``{"$eq": ["$email", "ada@example.org"]}``). So the
planner checks the positions first (``check_positions``) and raises the server's own error;
nothing is sent. The walk mirrors the server's parse: the same documents are sub-documents,
the same operator documents are field levels (``core.mql.match`` evaluates them the same way).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from privata_mongo.core.failures import BAD_VALUE, OperationFailed
from privata_mongo.core.mql._bson_types import ARRAY_TYPES

__all__ = ["check_positions"]

_LOGICAL: Final = frozenset({"$and", "$or", "$nor"})
_WHOLE_DOCUMENT: Final = frozenset({"$where", "$expr", "$text"})
_PATHLESS: Final = frozenset(
    {"$and", "$or", "$nor", "$comment", "$where", "$expr", "$text", "$jsonSchema"}
    | {"$alwaysTrue", "$alwaysFalse", "$sampleRate", "$ref", "$id", "$db"}
)


def check_positions(filter: Mapping[str, Any]) -> None:
    """Raise the server's error for a whole-document operator below the top of ``filter``.

    Raises:
        OperationFailed: ``BadValue`` (2), with the server's message.
    """
    _document(filter, top=True)


def _document(filter: Mapping[str, Any], *, top: bool) -> None:
    for key, value in filter.items():
        if key in _LOGICAL:
            if isinstance(value, ARRAY_TYPES):
                for clause in value:
                    if isinstance(clause, Mapping):
                        _document(clause, top=top)
        elif key in _WHOLE_DOCUMENT:
            if not top:
                raise OperationFailed(
                    f"{key} can only be applied to the top-level document", BAD_VALUE
                )
        elif not str(key).startswith("$") and _is_expression(value):
            _operators(value)


def _operators(spec: Mapping[str, Any]) -> None:
    """One field's operator document (the server's ``parseSub``)."""
    for op, argument in spec.items():
        if op == "$where":
            raise OperationFailed("$where cannot be applied to a field", BAD_VALUE)
        if op in _WHOLE_DOCUMENT:
            raise OperationFailed(f"unknown operator: {op}", BAD_VALUE)
        if op == "$not" and isinstance(argument, Mapping):
            _operators(argument)
        elif op == "$elemMatch" and isinstance(argument, Mapping):
            _elem_match(argument)
        elif op == "$all" and isinstance(argument, ARRAY_TYPES):
            for item in argument:
                if isinstance(item, Mapping) and isinstance(item.get("$elemMatch"), Mapping):
                    _elem_match(item["$elemMatch"])


def _elem_match(argument: Mapping[str, Any]) -> None:
    """``$elemMatch``: operators on each element (value form), or a filter on it (object form)."""
    if _is_expression(argument, allow_incomplete_dbref=True) and (
        next(iter(argument)) not in _PATHLESS
    ):
        _operators(argument)
    else:
        _document(argument, top=False)


def _is_expression(value: Any, *, allow_incomplete_dbref: bool = False) -> bool:
    """The server's ``isExpressionDocument``: a non-empty object whose first key starts with $."""
    if not isinstance(value, Mapping) or not value:
        return False
    if not str(next(iter(value))).startswith("$"):
        return False
    if allow_incomplete_dbref:
        return not ({"$ref", "$id", "$db"} & value.keys())
    return not ("$ref" in value and "$id" in value)
