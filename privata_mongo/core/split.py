"""Split a logical document into its identity and clinical halves; ``join`` is the inverse.

The clinical half keeps the native ``_id``, every clinical field in its original order, and the
pseudonym as its last field. The identity half is keyed by the pseudonym and holds only the
identity fields, plus the revision token used for compare-and-swap writes.

``join`` restores the native document key for key and in order: identity fields are put back
at the position the model declares them, which is where the ODMs write them. A document whose
order the declaration cannot restore (an upsert's document, whose new fields the server appends
in lexicographic order; a raw insert in another order) carries its key names in the identity
row (``ORDER_FIELD``), and ``join`` follows them instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from privata_mongo.core.rights.restriction import RESTRICTION_FIELD
from privata_mongo.core.schema import (
    LEASE_FIELD,
    ORDER_FIELD,
    PSEUDONYM_FIELD,
    REVISION_FIELD,
    VERSION_FIELD,
    ModelSchema,
    Side,
)

__all__ = ["identity_values", "join", "split", "split_for_storage"]

_LINKS = frozenset({PSEUDONYM_FIELD, VERSION_FIELD, RESTRICTION_FIELD})
"""Bookkeeping of a clinical row the application never sees (the restriction marker too)."""


def split(
    document: Mapping[str, Any], schema: ModelSchema, pseudonym: str, revision: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(identity, clinical)`` for one logical document (``stored`` adds the order)."""
    identity: dict[str, Any] = {"_id": pseudonym, REVISION_FIELD: revision}
    clinical: dict[str, Any] = {}
    for key, value in document.items():
        if schema.side_of(key) is Side.IDENTITY:
            identity[key] = value
        elif key not in _LINKS:
            clinical[key] = value
    clinical[PSEUDONYM_FIELD] = pseudonym
    return identity, clinical


def split_for_storage(
    document: Mapping[str, Any], schema: ModelSchema, pseudonym: str, revision: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The halves as they are stored: ``split``, plus the key order ``join`` needs, if any.

    The order is recorded in the identity half only when the declared order would not
    restore it, so documents the ODMs write (in declared order) are stored as ``split``
    returns them.
    """
    identity, clinical = split(document, schema, pseudonym, revision)
    if identity_values(identity):
        # ``_id`` is left out: it stays where the clinical half has it (a server puts it first).
        order = [k for k in document if k not in (PSEUDONYM_FIELD, "_id")]
        joined = [k for k in join(clinical, identity, schema) if k != "_id"]
        if joined != order:
            identity[ORDER_FIELD] = order
    return identity, clinical


_BOOKKEEPING = frozenset(
    {"_id", REVISION_FIELD, ORDER_FIELD, LEASE_FIELD, VERSION_FIELD, RESTRICTION_FIELD}
)


def identity_values(identity: Mapping[str, Any]) -> dict[str, Any]:
    """The identity fields of a stored identity document, without its bookkeeping."""
    return {k: v for k, v in identity.items() if k not in _BOOKKEEPING}


def _positions(identity: Mapping[str, Any] | None, schema: ModelSchema) -> Callable[[str], int]:
    """Where each key stands in the document: its recorded position, else its declared one.

    Keys a recorded order does not name were added later by the server, which appends them:
    they come after every recorded key.
    """
    declared = schema.rank
    unknown = len(declared)
    order = identity.get(ORDER_FIELD) if identity else None
    if not order:
        return lambda key: declared.get(key, unknown)
    recorded = {key: i for i, key in enumerate(order)}
    after = len(recorded)
    return lambda key: recorded.get(key, after + declared.get(key, unknown))


def join(
    clinical: Mapping[str, Any], identity: Mapping[str, Any] | None, schema: ModelSchema
) -> dict[str, Any]:
    """Merge the halves back into the document the application would have read natively.

    ``identity`` is ``None`` when the document has no identity row (never written, or erased);
    the result then simply lacks identity fields. Keys the schema does not declare count as
    declared after all others.
    """
    values = identity_values(identity) if identity else {}
    position = _positions(identity, schema)
    pending = sorted(values, key=position)
    result: dict[str, Any] = {}
    for key, value in clinical.items():
        if key in _LINKS:
            continue
        rank = position(key)
        if key != "_id":
            # Undeclared keys (dynamic fields) come after every declared one, as the ODMs
            # write them; ``_id`` may stand anywhere (mongomock stores it last).
            while pending and position(pending[0]) < rank:
                name = pending.pop(0)
                result[name] = values[name]
        result[key] = value
    for name in pending:
        result[name] = values[name]
    return result
