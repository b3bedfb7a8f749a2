"""Models compiled once into plain, frozen data: which fields are identity, where they live.

A facade describes each model class neutrally (``ModelSpec``: fields with their database names,
markers and nested fields); ``classify.compile_schema`` turns the descriptions of all classes
stored in one collection into a ``ModelSchema``. Everything downstream (split, join, planning,
audit) reads only the schema, never the ODM's classes, which is what lets one core serve
mongoengine and Beanie alike.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from privata_mongo.core.rights.datamap import Source

__all__ = [
    "BLIND_FIELD",
    "LEASE_FIELD",
    "ORDER_FIELD",
    "PSEUDONYM_FIELD",
    "REGION_FIELD",
    "REVISION_FIELD",
    "SEALED_FIELD",
    "VERSION_FIELD",
    "Decision",
    "FieldSpec",
    "ModelSchema",
    "ModelSpec",
    "Rule",
    "Side",
    "normalise_name",
    "top_field",
]

PSEUDONYM_FIELD = "_pseudonym"
"""Field of a clinical document holding the pseudonym that links it to its identity document."""

REGION_FIELD = "_region"
"""Field of a clinical document naming the region of its subject's identity data.

Written only when regions are configured (``core.residency``); hidden from the application
like the pseudonym.
"""

REVISION_FIELD = "_rev"
"""Field of an identity document changed on every write: the compare-and-swap token."""


LEASE_FIELD = "_lease"
"""Field of an identity document held by a writer: ``{"o": owner token, "x": expiry}``."""


VERSION_FIELD = "_ver"
"""Field on both halves of a document written under a lease: the writer's token, the same on
both once the update is complete (a reader that finds them unequal read across an update)."""


SEALED_FIELD = "_enc"
"""Field of an encrypted identity row holding all its identity values as one CSFLE value."""

BLIND_FIELD = "_idx"
"""Field of an encrypted identity row holding the blind index terms of its searchable fields."""

ORDER_FIELD = "_keys"
"""Field of an identity row holding the document's top-level key names in stored order.

Written only when the declared order cannot restore the document's order (an upsert's
document, a raw insert in another order): names only, sealed with the values when rows are
encrypted."""


class Side(enum.Enum):
    """The two physical collections behind one logical collection."""

    CLINICAL = "clinical"
    IDENTITY = "identity"


class Rule(enum.Enum):
    """Which rule decided a field's classification, in order of precedence."""

    MARKER = "field marker"
    META = "model meta"
    MAPPING = "configured mapping"
    NESTED = "contains a classified field"
    NAME = "name default"
    RESERVED = "reserved field"
    PRIMARY_KEY = "primary key"
    UNCLASSIFIED = "no rule applies"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a model as a facade describes it, ODM-neutral.

    Attributes:
        name: the name stored in the database (mongoengine's ``db_field``, Beanie's alias).
        attribute: the name the application uses.
        marker: an explicit ``pii=True``/``pii=False`` on the field, ``None`` when absent.
        searchable: an explicit ``searchable=True`` on the field (equality lookups server-side).
        unique: the field carries a unique index declared on itself.
        primary_key: the field is stored as ``_id``.
        children: the fields of an embedded document (also inside lists and maps).
    """

    name: str
    attribute: str
    marker: bool | None = None
    searchable: bool = False
    unique: bool = False
    primary_key: bool = False
    children: tuple[FieldSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model class as a facade describes it.

    ``privacy`` is the model's ``meta["privacy"]`` (mongoengine) or ``Settings.privacy``
    (Beanie) exactly as declared, validated by ``compile_schema``. ``dynamic`` models accept
    fields they do not declare (mongoengine's ``DynamicDocument``).
    """

    name: str
    collection: str
    fields: tuple[FieldSpec, ...]
    privacy: Mapping[str, Any] | None = None
    dynamic: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """How one top-level field was classified, and why: the unit of ``explain()``."""

    field: str
    attribute: str
    identity: bool
    rule: Rule
    reason: str
    safe_harbor: str | None = None
    """The HIPAA Safe Harbor paragraph (``A`` to ``R``) of the name default that decided it."""

    def __str__(self) -> str:
        side = "identity" if self.identity else "clinical"
        shown = (
            self.attribute if self.attribute == self.field else f"{self.attribute} ({self.field})"
        )
        return f"{shown}: {side} — {self.rule.value}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ModelSchema:
    """The compiled privacy schema of one logical collection.

    Attributes:
        models: names of the model classes stored in the collection (base class first).
        collection: the clinical collection; it keeps the native name, ids and order.
        identity_collection: where identity fields live, keyed by pseudonym.
        decisions: one per top-level field, in declaration order.
        identity_fields: database names of the top-level identity fields.
        searchable: identity fields declared for equality lookups without decryption.
        rank: declaration position of every known top-level field (for native key order).
        scan_limit: most identity rows one query may read into the process.
        undeclared_identity: normalised names that make an undeclared field identity data
            (the name defaults and mapping), so dynamic fields such as ``email`` are split too.
        dynamic: the collection's models accept undeclared fields.
        sealed: identity rows are encrypted (``core.crypto``): only ``searchable`` fields can
            be searched on the server, through their blind index.
        marked: a native collection whose documents can belong to a data subject's map (its
            model references a model holding identity fields, directly or through others), so
            they can carry a restriction marker and its reads and writes need the clauses
            (``proxy.marked``). Set by the facade that knows every model.
        marked_by: the references of a marked collection's documents along which a document
            being written inherits its marker (``core.rights.spread.inherited``).
    """

    models: tuple[str, ...]
    collection: str
    identity_collection: str
    decisions: tuple[Decision, ...]
    identity_fields: frozenset[str]
    searchable: frozenset[str]
    rank: Mapping[str, int] = field(default_factory=dict)
    scan_limit: int = 10_000
    undeclared_identity: frozenset[str] = frozenset()
    dynamic: bool = False
    sealed: bool = False
    marked: bool = False
    marked_by: tuple[Source, ...] = ()

    @classmethod
    def native(cls, collection: str) -> ModelSchema:
        """The schema of a collection no model splits: every field clinical, nothing linked."""
        return cls(
            models=(collection,),
            collection=collection,
            identity_collection=collection,
            decisions=(),
            identity_fields=frozenset(),
            searchable=frozenset(),
        )

    @property
    def model(self) -> str:
        """The name used in messages: the base model of the collection."""
        return self.models[0] if self.models else self.collection

    @property
    def enabled(self) -> bool:
        """Whether documents are split at all; a model without identity fields is native.

        A dynamic model is split whenever undeclared fields could be identity data.
        """
        return bool(self.identity_fields) or (self.dynamic and bool(self.undeclared_identity))

    def side_of(self, path: str) -> Side:
        """The collection that stores ``path`` (a field name or a dotted path)."""
        top = top_field(path)
        if top in self.identity_fields:
            return Side.IDENTITY
        if top in self.rank or top.startswith(("_", "$")) or not self.undeclared_identity:
            return Side.CLINICAL
        if normalise_name(top) in self.undeclared_identity:
            return Side.IDENTITY
        return Side.CLINICAL

    def touches_identity(self, paths: Iterable[str]) -> bool:
        """Whether any of ``paths`` is stored on the identity side."""
        return any(self.side_of(p) is Side.IDENTITY for p in paths)


def normalise_name(name: str) -> str:
    """Compare names the way people write them: ``firstName``, ``first_name``, ``FirstName``."""
    return name.replace("_", "").replace("-", "").lower()


def top_field(path: str) -> str:
    """The top-level field of a dotted path (``address.city`` → ``address``)."""
    head, _, _ = path.partition(".")
    return head
