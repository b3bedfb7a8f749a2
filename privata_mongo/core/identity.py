"""The identity index: the one place that knows how identity fields can be searched.

Every predicate on an identity field passes through ``IdentityIndex.pushdown``. A predicate it
can translate runs on the server against the identity collection; anything else (regex, range,
``$elemMatch``, dotted paths into identity documents) is evaluated in the process after the
identity rows are read, bounded by the scan limit.

Identity values are stored as plaintext today, but only equality-shaped predicates are pushed
down, exactly the ones a keyed blind index can answer once values are encrypted. Encryption
then changes how values are translated here, not which queries work or how fast they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from bson.regex import Regex

from privata_mongo.core.schema import ModelSchema, Side

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
            return {path: condition}
        return None
