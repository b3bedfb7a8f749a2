"""Which fields of a document an aggregation expression reads, from its syntax alone.

A planner that must not send an expression to a server lacking some fields asks this before
anything runs. The answer is conservative: user variables (``$$this``, ``$$x``) read nothing of
the document, while ``$$ROOT``, ``$$CURRENT`` and ``$getField`` may read any field. Field
names of an object expression are checked as the server parses them (``validate_field_name``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from privata_mongo.core.mql.expressions._compiler import validate_field_name

__all__ = ["expression_reads", "plain_path", "validate_field_name"]

_WHOLE_DOCUMENT: Final = frozenset({"ROOT", "CURRENT"})
_READS_ANY_FIELD: Final = frozenset({"$getField", "$setField", "$unsetField"})


def expression_reads(value: Any) -> set[str] | None:
    """The document paths an expression reads; ``None`` when it may read the whole document."""
    found: set[str] = set()
    if isinstance(value, str):
        path = plain_path(value)
        if path is not None:
            found.add(path)
        elif value.startswith("$$") and value[2:] in _WHOLE_DOCUMENT:
            return None
    elif isinstance(value, Mapping):
        if len(value) == 1 and "$literal" in value:
            return found
        for key, item in value.items():
            if key in _READS_ANY_FIELD:
                return None
            inner = expression_reads(item)
            if inner is None:
                return None
            found |= inner
    elif isinstance(value, (list, tuple)):
        for item in value:
            inner = expression_reads(item)
            if inner is None:
                return None
            found |= inner
    return found


def plain_path(value: Any) -> str | None:
    """The path of an operand that is a field path (``"$a.b"``, ``"$$ROOT.a.b"``), else ``None``."""
    if not isinstance(value, str) or not value.startswith("$"):
        return None
    if value.startswith("$$"):
        variable, _, rest = value[2:].partition(".")
        return rest if variable in _WHOLE_DOCUMENT and rest else None
    return value[1:] or None
