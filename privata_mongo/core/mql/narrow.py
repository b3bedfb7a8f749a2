"""A filter in the plainest equivalent form, so that a server's planner sees its equalities.

The flows build filters from parts — an id list, the restriction clause, the lease conditions,
the application's own filter — and the parts meet as ``{"$and": [...]}`` and ``{"_id": {"$in":
[x]}}``. A server that plans only what it recognises treats those as opaque: FerretDB v1.24
pushes a filter down to its storage only for a top-level ``_id`` equality, so a
``{"$and": [{"_id": {"$in": [x]}}, {...}]}`` scans the collection where ``{"_id": x, ...}``
reads one row (45 ms against 0.5 ms on a collection of 1,100 documents). MongoDB plans both
the same way; the plain form costs it nothing.

``narrowed`` applies only rewrites that keep the set of matching documents identical:

- a top-level ``$and`` whose members' keys do not repeat becomes one document (the keys of a
  filter document are a conjunction already), members first flattened the same way; a
  condition repeated word for word is kept once;
- ``{field: {"$in": [v]}}`` with one scalar value becomes ``{field: v}`` (equality and
  membership of one value match the same documents for a value that is not an array, a
  document or a regular expression, which keep their ``$in`` form).
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from bson import Binary, Decimal128, Int64, ObjectId, Timestamp

__all__ = ["narrowed"]

_SCALARS: tuple[type, ...] = (str, int, float, ObjectId, datetime.datetime, uuid.UUID, Decimal)
_SCALARS += (Decimal128, Int64, Timestamp, Binary, bytes)


def _one_value(condition: Any) -> tuple[bool, Any]:
    """``(True, v)`` when ``condition`` is ``{"$in": [v]}`` for one plain scalar ``v``."""
    if not isinstance(condition, Mapping) or list(condition) != ["$in"]:
        return False, None
    values = condition["$in"]
    if not isinstance(values, list | tuple) or len(values) != 1:
        return False, None
    (value,) = values
    if isinstance(value, re.Pattern) or not isinstance(value, _SCALARS):
        return False, None
    return True, value


def narrowed(filter: Mapping[str, Any]) -> dict[str, Any]:
    """``filter`` with its ``$and`` flattened and its one-value ``$in`` made equalities."""
    merged: dict[str, Any] = {}
    rest: list[Any] = []
    for key, value in filter.items():
        if key == "$and" and isinstance(value, list | tuple) and value:
            for member in value:
                if not isinstance(member, Mapping):
                    rest.append(member)
                    continue
                flat = narrowed(member)
                repeated = {k: v for k, v in flat.items() if k in merged and merged[k] == v}
                flat = {k: v for k, v in flat.items() if k not in repeated}
                if set(flat).isdisjoint(merged) and "$and" not in flat:
                    merged.update(flat)
                elif flat:
                    rest.append(flat)
            continue
        if key in merged:
            rest.append({key: value})
            continue
        single, one = _one_value(value) if not key.startswith("$") else (False, None)
        merged[key] = one if single else value
    if rest:
        if "$and" in merged:
            rest = [{"$and": merged.pop("$and")}, *rest]
        merged["$and"] = rest
    return merged
