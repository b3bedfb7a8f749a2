"""The blind index: HMAC terms that let the server find equal identity values it cannot read.

A searchable identity field stores, next to the sealed row, one term per value: HMAC-SHA-256
under the blind index key over a format tag, the database's name, the identity collection's
name, the field's name and the BSON encoding of the *normalised* value. Normalising keeps the
server's own equality (numbers by value across BSON types, datetimes at millisecond precision
in UTC, strings exactly), so a term selects exactly what native equality would select. The key
itself comes from the key ring (``KeyRing.index_key``); everything here is pure.

The key is one per key vault, and databases (tenants) may share a vault: the database's name
is part of the term so that one e-mail address in two tenants' databases gives two unrelated
terms. Terms of the first format (``legacy_blind_term``: no format tag, no database) are still
computed, so that lookups can find rows written before, until they are re-indexed.
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

__all__ = [
    "INDEX_KEY_NAME",
    "TERM_FORMAT",
    "Blind",
    "blind_term",
    "blind_terms",
    "legacy_blind_term",
    "normalise_value",
]

INDEX_KEY_NAME = "privata:blind-index"
"""``keyAltName`` of the data key the blind index key is derived from."""

TERM_FORMAT = b"privata:blind:2"
"""The tag that opens every term's message: terms of another format never equal these."""


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


def blind_term(key: bytes, database: str, scope: str, field: str, value: Any) -> Any:
    """The term of ``value`` in ``database``, ``scope`` (the identity collection) and ``field``.

    ``None`` stays ``None`` so that ``{field: None}`` keeps matching absent and null values.
    Terms differ per database, collection and field, so equal values in two of those places
    cannot be linked by their terms; within one field of one collection of one database, equal
    values have equal terms (that is what lets the server find them).
    """
    if value is None:
        return None
    parts = (TERM_FORMAT, database.encode(), scope.encode(), field.encode(), _encoded(value))
    return Binary(hmac.new(key, b"\0".join(parts), hashlib.sha256).digest())


def legacy_blind_term(key: bytes, scope: str, field: str, value: Any) -> Any:
    """The term of the first format, written before terms named their database.

    The same for the same collection name in every database that shares the key vault, so
    it is only computed to find rows not yet re-indexed, never stored.
    """
    if value is None:
        return None
    message = b"\0".join((scope.encode(), field.encode(), _encoded(value)))
    return Binary(hmac.new(key, message, hashlib.sha256).digest())


def _encoded(value: Any) -> bytes:
    return bson.encode({"v": normalise_value(value)})


def blind_terms(key: bytes, database: str, scope: str, field: str, value: Any) -> Any:
    """What a row stores for ``value``: its term, plus one per element of an array."""
    whole = blind_term(key, database, scope, field, value)
    if isinstance(value, (list, tuple)):
        return [blind_term(key, database, scope, field, v) for v in value] + [whole]
    return whole
