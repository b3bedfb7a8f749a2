"""Split a logical document into its identity and clinical halves; ``join`` is the inverse.

The clinical half keeps the native ``_id``, every clinical field in its original order, and the
pseudonym as its last field. The identity half is keyed by the pseudonym and holds only the
identity fields, plus the revision token used for compare-and-swap writes.

``join`` restores the native document: identity fields are put back at the position the model
declares them, so for documents the ODM wrote (whose keys follow the declaration order) the
result equals the original key for key and in order; for other documents it equals the
original as a mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from privata_mongo.core.schema import (
    LEASE_FIELD,
    PSEUDONYM_FIELD,
    REVISION_FIELD,
    VERSION_FIELD,
    ModelSchema,
    Side,
)

__all__ = ["identity_values", "join", "split"]

_BOOKKEEPING = frozenset({"_id", REVISION_FIELD, LEASE_FIELD, VERSION_FIELD})
_LINKS = frozenset({PSEUDONYM_FIELD, VERSION_FIELD})


def split(
    document: Mapping[str, Any], schema: ModelSchema, pseudonym: str, revision: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(identity, clinical)`` for one logical document."""
    identity: dict[str, Any] = {"_id": pseudonym, REVISION_FIELD: revision}
    clinical: dict[str, Any] = {}
    for key, value in document.items():
        if schema.side_of(key) is Side.IDENTITY:
            identity[key] = value
        elif key not in _LINKS:
            clinical[key] = value
    clinical[PSEUDONYM_FIELD] = pseudonym
    return identity, clinical


def identity_values(identity: Mapping[str, Any]) -> dict[str, Any]:
    """The identity fields of a stored identity document, without its bookkeeping."""
    return {k: v for k, v in identity.items() if k not in _BOOKKEEPING}


def join(
    clinical: Mapping[str, Any], identity: Mapping[str, Any] | None, schema: ModelSchema
) -> dict[str, Any]:
    """Merge the halves back into the document the application would have read natively.

    ``identity`` is ``None`` when the document has no identity row (never written, or erased);
    the result then simply lacks identity fields. Keys the schema does not declare count as
    declared after all others.
    """
    values = identity_values(identity) if identity else {}
    pending = sorted(values, key=lambda k: schema.rank.get(k, len(schema.rank)))
    result: dict[str, Any] = {}
    for key, value in clinical.items():
        if key in _LINKS:
            continue
        rank = schema.rank.get(key, len(schema.rank))
        if key != "_id":
            # Undeclared keys (dynamic fields) come after every declared one, as the ODMs
            # write them; ``_id`` may stand anywhere (mongomock stores it last).
            while pending and schema.rank.get(pending[0], len(schema.rank)) < rank:
                name = pending.pop(0)
                result[name] = values[name]
        result[key] = value
    for name in pending:
        result[name] = values[name]
    return result
