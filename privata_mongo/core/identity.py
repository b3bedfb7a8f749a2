"""The identity index: the one place that knows how identity fields can be searched.

Every predicate on an identity field passes through ``IdentityIndex.pushdown``. A predicate it
can translate runs on the server against the identity collection; anything else (regex, range,
``$elemMatch``, dotted paths into identity documents) is evaluated in the process after the
identity rows are read, bounded by the scan limit.

Only equality-shaped predicates are pushed down, exactly the ones a keyed blind index can
answer. When identity rows are encrypted (``schema.sealed``), the stored row has no plaintext
field to compare against: equality, ``$in`` and ``$exists`` on a *searchable* field become the
same predicates on its blind index terms (``_idx.<field>``, values wrapped in ``Blind`` until the
flow has loaded the index key), and every predicate on a non-searchable field is evaluated in
the process after decryption.

No operand the application wrote reaches the server unless it is the value being searched for
(and then, when sealed, only as its blind term): ``$exists`` is sent as the boolean the server
would read its operand as, and every other operator is evaluated in the process.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from bson.regex import Regex

from privata_mongo.core.crypto import Blind
from privata_mongo.core.mql.match import true_value
from privata_mongo.core.schema import BLIND_FIELD, ModelSchema, Side

__all__ = ["IdentityIndex", "is_operator_document"]


def is_operator_document(value: object) -> bool:
    """Whether a filter condition is an operator document (``{"$gt": 3}``), not a literal."""
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(k, str) and k.startswith("$") for k in value)
    )


def _is_regex(value: object) -> bool:
    return isinstance(value, (re.Pattern, Regex))


class IdentityIndex:
    """Translates identity predicates into server predicates on the identity collection."""

    def __init__(self, schema: ModelSchema) -> None:
        self._schema = schema

    def pushdown(self, path: str, condition: Any) -> dict[str, Any] | None:
        """The server predicate equivalent to ``{path: condition}``, or ``None``.

        ``None`` means the predicate must be evaluated in the process.
        """
        if "." in path or self._schema.side_of(path) is not Side.IDENTITY:
            return None
        if self._schema.sealed:
            if path not in self._schema.searchable:
                return None
            return self._blind(path, condition)
        if not is_operator_document(condition):
            return None if _is_regex(condition) else {path: condition}
        if len(condition) != 1:
            return None
        ((op, operand),) = condition.items()
        if op == "$eq" and not _is_regex(operand):
            return {path: condition}
        if op == "$in" and isinstance(operand, Sequence) and not isinstance(operand, str):
            return None if any(_is_regex(v) for v in operand) else {path: condition}
        if op == "$exists":
            return {path: _exists(operand)}
        return None

    def _blind(self, path: str, condition: Any) -> dict[str, Any] | None:
        """The predicate on the blind index terms of a searchable field."""
        stored = f"{BLIND_FIELD}.{path}"
        if not is_operator_document(condition):
            if _is_regex(condition) or isinstance(condition, Mapping):
                return None  # embedded-document equality stays exact in the process
            return {stored: Blind(path, condition)}
        if len(condition) != 1:
            return None
        ((op, operand),) = condition.items()
        if op == "$eq" and not _is_regex(operand) and not isinstance(operand, Mapping):
            return {stored: Blind(path, operand)}
        if op == "$in" and isinstance(operand, Sequence) and not isinstance(operand, str):
            if any(_is_regex(v) or isinstance(v, Mapping) for v in operand):
                return None
            return {stored: {"$in": [Blind(path, v) for v in operand]}}
        if op == "$exists":
            return {stored: _exists(operand)}
        return None


def _exists(operand: Any) -> dict[str, bool]:
    """``$exists`` with its operand as the boolean the server reads it as.

    An application may pass any value (``{"email": {"$exists": "ada@example.org"}}`` is legal
    and means ``True``); only the boolean is sent, so no value reaches the server or its logs.
    """
    return {"$exists": true_value(operand)}
