"""The blind index: HMAC terms that let the server find equal identity values it cannot read.

A searchable identity field stores, next to the sealed row, one term per value: HMAC-SHA-256
under the blind index key over the identity collection's name, the field's name and the BSON
encoding of the *normalised* value. Normalising keeps the server's own equality (numbers by
value across BSON types, datetimes at millisecond precision in UTC, strings exactly), so a term
selects exactly what native equality would select. The key itself comes from the key ring
(``KeyRing.index_key``); everything here is pure.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import bson
from bson.binary import Binary
from bson.int64 import Int64

__all__ = ["INDEX_KEY_NAME", "Blind", "blind_term", "blind_terms", "normalise_value"]

INDEX_KEY_NAME = "privata:blind-index"
"""``keyAltName`` of the data key the blind index key is derived from."""


@dataclass(frozen=True, slots=True)
class Blind:
    """A value to be replaced by its blind index term once the index key is loaded.

    ``IdentityIndex.pushdown`` puts these into server predicates; the flow that runs the
    predicate swaps them for ``blind_term(key, scope, field, value)``.
    """

    field: str
    value: Any


def normalise_value(value: Any) -> Any:
    """The canonical form of a value for equality, as the server compares values.

    Numbers compare by value across BSON types (``1 == 1.0 == Int64(1)``), datetimes at
    millisecond precision in UTC; strings are compared exactly (no case folding: a blind index
    must select what the server's own equality would select).
    """
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Int64):
        return int(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    if isinstance(value, Mapping):
        return {str(k): normalise_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise_value(v) for v in value]
    return value


def blind_term(key: bytes, scope: str, field: str, value: Any) -> Any:
    """The blind index term of ``value`` in ``scope`` (identity collection) and ``field``.

    ``None`` stays ``None`` so that ``{field: None}`` keeps matching absent and null values.
    Terms differ per collection and field, so equal values in two places cannot be linked.
    """
    if value is None:
        return None
    message = b"\0".join(
        (scope.encode(), field.encode(), bson.encode({"v": normalise_value(value)}))
    )
    return Binary(hmac.new(key, message, hashlib.sha256).digest())


def blind_terms(key: bytes, scope: str, field: str, value: Any) -> Any:
    """What a row stores for ``value``: its term, plus one per element of an array."""
    whole = blind_term(key, scope, field, value)
    if isinstance(value, (list, tuple)):
        return [blind_term(key, scope, field, v) for v in value] + [whole]
    return whole
