"""``explain(Model)``: how privata stores a model, and why each field is classified so.

For auditors and reviewers: every top-level field, the collection it is stored in, and the
rule that decided it (marker, model meta, configured mapping, nested field, name default).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from privata_mongo.core.schema import Decision, ModelSchema
from privata_mongo.errors import ConfigurationError

__all__ = ["Explanation", "explain"]


@dataclass(frozen=True, slots=True)
class Explanation:
    """The storage plan of one model's collection."""

    model: str
    collection: str
    identity_collection: str | None
    decisions: tuple[Decision, ...]
    searchable: tuple[str, ...] = ()
    encrypted: bool = False

    @property
    def identity_fields(self) -> tuple[str, ...]:
        """Fields stored in the identity collection, in declaration order."""
        return tuple(d.attribute for d in self.decisions if d.identity)

    def __str__(self) -> str:
        if self.identity_collection is None:
            head = f"{self.model}: no identity fields; stored natively in '{self.collection}'"
        else:
            head = (
                f"{self.model}: clinical '{self.collection}', identity '{self.identity_collection}'"
            )
        lines = [head, *(f"  {d}" for d in self.decisions)]
        if self.identity_collection is not None and self.encrypted:
            shown = ", ".join(self.searchable) or "none"
            lines.append(
                "  identity rows encrypted (CSFLE); "
                f"searchable on the server (blind index): {shown}"
            )
        return "\n".join(lines)

    @classmethod
    def of(cls, model: str, schema: ModelSchema) -> Explanation:
        """The explanation of a compiled schema."""
        return cls(
            model=model,
            collection=schema.collection,
            identity_collection=schema.identity_collection if schema.enabled else None,
            decisions=schema.decisions,
            searchable=tuple(
                d.attribute for d in schema.decisions if d.identity and d.field in schema.searchable
            ),
            encrypted=schema.sealed,
        )


def explain(model: Any) -> Explanation:
    """Explain how ``model`` (a mongoengine or Beanie ``Document`` class) is stored.

    Raises:
        ConfigurationError: ``model`` is not a model class of a supported ODM, or its privacy
            declarations are invalid.
    """
    if not isinstance(model, type):
        raise ConfigurationError(f"{model!r} is not a model class privata can explain")
    mongoengine = sys.modules.get("mongoengine")
    if mongoengine is not None and issubclass(model, mongoengine.Document):
        from privata_mongo.mongoengine._describe import schema_of_model

        return Explanation.of(model.__name__, schema_of_model(model))
    beanie = sys.modules.get("beanie")
    if beanie is not None and issubclass(model, beanie.Document):
        from privata_mongo.beanie._describe import schema_of_model as beanie_schema

        return Explanation.of(model.__name__, beanie_schema(model))
    raise ConfigurationError(f"{model!r} is not a model class privata can explain")
