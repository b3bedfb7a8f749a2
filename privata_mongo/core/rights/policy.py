"""What happens to a model's documents when their data subject is erased, or ages out.

A model says it in its privacy declaration (``meta["privacy"]`` in mongoengine,
``Settings.privacy`` in Beanie), beside the classification keys:

- ``"erasure"``: ``"pseudonymise"`` (the default) or ``"delete"``, for the model's documents
  found in an erased subject's data map. Medical records have legal retention periods (years
  after the last treatment in most jurisdictions), and a clinical row whose identity is gone
  is no longer personal data once its key is shredded, so keeping it is the default; a model
  holding nothing worth keeping without its subject (notes, contact logs) says ``"delete"``.
  The subject's own identity rows always go, whatever the policy.
- ``"retention"``: ``{"days": N, "field": "<date field>", "then": "erase" | "pseudonymise"}``:
  a subject all of whose documents of this model are older than ``N`` days by ``field`` is
  erased (through the erasure, with each model's ``erasure`` policy) or pseudonymised (its
  identity rows and key go, every clinical row stays), by ``Rights.enforce_retention()``.

Both are validated here, once per model, with a ``ConfigurationError`` naming the model and the
accepted values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from privata_mongo.errors import ConfigurationError

__all__ = [
    "DELETE",
    "ERASE",
    "PSEUDONYMISE",
    "Retention",
    "erasure_policy",
    "retention_policy",
]

PSEUDONYMISE = "pseudonymise"
"""Keep the clinical documents; they no longer join any identity (the default)."""

DELETE = "delete"
"""Delete the documents of the subject's data map."""

ERASE = "erase"
"""Retention: erase the subject (each model's ``erasure`` policy applies)."""

_POLICIES = (PSEUDONYMISE, DELETE)
_RETENTION_THEN = (ERASE, PSEUDONYMISE)


@dataclass(frozen=True, slots=True)
class Retention:
    """A model's retention period.

    Attributes:
        days: how long a document is kept after the date in ``field``.
        field: the stored name of a clinical date field of the model.
        then: ``erase`` or ``pseudonymise`` the subject once every one of its documents of
            the model is past the period.
    """

    days: int
    field: str
    then: str = ERASE


def _privacy(privacy: Any) -> Mapping[str, Any]:
    return privacy if isinstance(privacy, Mapping) else {}


def erasure_policy(model: str, privacy: Any) -> str:
    """The model's erasure policy (``pseudonymise`` when it declares none).

    Raises:
        ConfigurationError: the declared value is not one of the policies.
    """
    value = _privacy(privacy).get("erasure", PSEUDONYMISE)
    if value not in _POLICIES:
        raise ConfigurationError(
            f"{model}: privacy 'erasure' must be 'pseudonymise' (keep the clinical documents, "
            "the default) or 'delete' (delete them when their subject is erased)"
        )
    return str(value)


def retention_policy(
    model: str, privacy: Any, fields: tuple[str, ...], *, split: bool = True
) -> Retention | None:
    """The model's retention period, or ``None`` when it declares none.

    ``fields`` are the model's clinical fields (stored names): the date field must be one, so
    the server can compare it without decrypting anything. Only a model holding identity
    fields (``split``) can declare one: its documents carry the subject's pseudonym, which is
    what ages out; a document of another model belongs to a subject only through the map.

    Raises:
        ConfigurationError: the declaration is not ``{"days": N, "field": ..., "then": ...}``
            with a positive whole ``days``, a clinical ``field`` and ``then`` one of
            ``erase``/``pseudonymise``, or the model holds no identity fields.
    """
    value = _privacy(privacy).get("retention")
    if value is None:
        return None
    shape = (
        f"{model}: privacy 'retention' must be {{'days': N, 'field': '<clinical date field>', "
        "'then': 'erase' | 'pseudonymise'}"
    )
    if not isinstance(value, Mapping) or set(value) - {"days", "field", "then"}:
        raise ConfigurationError(shape)
    if not split:
        raise ConfigurationError(
            f"{model}: privacy 'retention' applies to a model holding identity fields (its "
            "documents name their data subject); declare it on the subject's model"
        )
    days, field, then = value.get("days"), value.get("field"), value.get("then", ERASE)
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        raise ConfigurationError(f"{shape}; 'days' must be a positive whole number")
    if not isinstance(field, str) or field not in fields:
        raise ConfigurationError(
            f"{shape}; 'field' must name a clinical field of the model "
            f"(clinical: {', '.join(fields) or 'none'})"
        )
    if then not in _RETENTION_THEN:
        raise ConfigurationError(f"{shape}; 'then' must be 'erase' or 'pseudonymise'")
    return Retention(days, field, str(then))
