"""Split a find projection between the clinical and the identity collection.

The clinical side keeps the projection's own semantics (inclusion, exclusion, ``$slice``,
``$elemMatch``, ``$meta``) for clinical fields, so the server shapes those exactly as it would
natively; identity fields get the same treatment on the identity side. When a projection
returns no identity field at all, the identity collection is not read: a query that does not
need personal data does not touch it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from privata_mongo.core.schema import PSEUDONYM_FIELD, ModelSchema, Side
from privata_mongo.errors import UnsupportedQuery

__all__ = ["ProjectionPlan", "including", "normalise_projection", "plan_projection"]


@dataclass(frozen=True, slots=True)
class ProjectionPlan:
    """How one projection reads the two collections.

    Attributes:
        clinical: projection for the clinical find (``None``: every field).
        identity: projection for the identity find (``None``: every field).
        fetch_identity: whether the identity collection must be read at all.
        hide_id: the application excluded ``_id`` (kept internally to join and order).
    """

    clinical: Mapping[str, Any] | None
    identity: Mapping[str, Any] | None
    fetch_identity: bool
    hide_id: bool = False


def normalise_projection(
    projection: Mapping[str, Any] | Sequence[str] | None,
) -> dict[str, Any] | None:
    """Pymongo accepts a list of names for an inclusion projection; make it a mapping."""
    if projection is None:
        return None
    if isinstance(projection, Mapping):
        return dict(projection)
    return dict.fromkeys(projection, 1)


def _mode(projection: Mapping[str, Any]) -> str:
    """``include``, ``exclude`` or ``all`` (only ``$slice``/``$meta``: every field is returned)."""
    mode = "all"
    for key, value in projection.items():
        if key == "_id":
            continue
        if isinstance(value, Mapping):
            if "$elemMatch" in value:
                mode = "include"
            continue
        return "include" if value else "exclude"
    return mode


def including(projection: Mapping[str, Any] | None, *names: str) -> Mapping[str, Any] | None:
    """``projection`` that also returns ``names`` (bookkeeping fields), if it selects fields."""
    if projection is None or _mode(projection) != "include":
        return projection
    return {**projection, **dict.fromkeys(names, 1)}


_SHAPING = frozenset({"$slice", "$elemMatch", "$meta"})
"""Projection operators that shape the field they are on; any other value computes a field."""


def _read_paths(expression: Any) -> set[str]:
    """The top-level fields an aggregation expression reads (``"$a.b"`` reads ``a``)."""
    if isinstance(expression, str):
        if expression.startswith("$$"):
            variable, _, rest = expression[2:].partition(".")
            return {rest.split(".", 1)[0]} if variable in ("ROOT", "CURRENT") and rest else set()
        return {expression[1:].split(".", 1)[0]} if expression.startswith("$") else set()
    if isinstance(expression, Mapping):
        if "$literal" in expression:
            return set()
        return {p for value in expression.values() for p in _read_paths(value)}
    if isinstance(expression, (list, tuple)):
        return {p for value in expression for p in _read_paths(value)}
    return set()


def _computed(value: Any) -> bool:
    if isinstance(value, str):
        return value.startswith("$")
    if isinstance(value, Mapping):
        return bool(value) and not set(value) <= _SHAPING
    return False


def _refuse_crossing(schema: ModelSchema, spec: Mapping[str, Any]) -> None:
    """Refuse a computed field whose expression reads the other half of the document.

    The clinical half is projected by the server and the identity half in the process, each
    seeing only its own fields: an expression reading across would silently compute from
    missing fields (MongoDB would read the whole document). Refused, naming the fields. Paths
    the model does not declare are missing on both halves alike and are left to the server.
    """
    for key, value in spec.items():
        if key == "_id" or not _computed(value):
            continue
        side = schema.side_of(key)
        read = sorted(p for p in _read_paths(value) if p in schema.rank and p != "_id")
        crossing = [p for p in read if schema.side_of(p) is not side]
        if crossing:
            raise UnsupportedQuery(
                f"{schema.model}: the projected field {key!r} is computed from "
                f"{', '.join(repr(p) for p in crossing)}, stored on the other side of the split "
                "(identity and clinical fields are projected apart); project the fields and "
                "compute the value in the application, or use an aggregation",
                model=schema.model,
                field=key,
            )


def plan_projection(
    schema: ModelSchema, projection: Mapping[str, Any] | Sequence[str] | None
) -> ProjectionPlan:
    """Plan ``projection`` over the split collection of ``schema``.

    Raises:
        UnsupportedQuery: a computed field reads fields of the other side of the split.
    """
    spec = normalise_projection(projection)
    if not schema.enabled or spec is None or not spec:
        return ProjectionPlan(spec or None, None, schema.enabled)
    _refuse_crossing(schema, spec)
    mode = _mode(spec)
    clinical: dict[str, Any] = {}
    identity: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "_id":
            clinical[key] = value
        elif schema.side_of(key) is Side.IDENTITY:
            identity[key] = value
        else:
            clinical[key] = value
    if mode == "include":
        fetch = bool(identity)
        if fetch and all(isinstance(v, Mapping) and "$slice" in v for v in identity.values()):
            # Alone, ``$slice`` keeps every field; next to a clinical inclusion it includes its
            # own field only: say so on the identity side by excluding the other fields.
            identity.update({f: 0 for f in schema.identity_fields if f not in identity})
        # The link is read even when no identity field is: the audit trail names the data
        # subjects of every document returned (it is stripped before the application sees it).
        clinical[PSEUDONYM_FIELD] = 1
        hide_id = clinical.get("_id", 1) in (0, False)
        if fetch and hide_id:
            # The id is needed internally to order and join; it is removed again afterwards.
            clinical.pop("_id")
        return ProjectionPlan(clinical, identity or None, fetch, hide_id and fetch)
    excluded = {k for k, v in identity.items() if not isinstance(v, Mapping) and not v}
    fetch = schema.dynamic or not schema.identity_fields <= excluded
    return ProjectionPlan(clinical or None, identity or None, fetch)
