"""The data map: which models hold personal data, and which documents reference which.

A facade describes its models and their reference fields as plain ``ModelEntry`` and ``Edge``
values; ``DataMap`` is the whole schema as a graph. ``walk`` finds every document that belongs
to one data subject: the subject's own documents (their clinical rows carry its pseudonym) and,
transitively, every document that references one of them. It is a generator that asks its
caller for the ids matching a filter (``Lookup``, an ``Op`` typed by its result), so the sync
and the async facade share it, and unit tests drive it with no database. Each level of the walk asks
once per edge into the level's models and chunk of ``LOOKUP_CHUNK`` ids found, so round trips
grow with the depth of the map and the chunks of a level, never one by one with documents.
"""

from __future__ import annotations

import enum
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bson import DBRef

from privata_mongo.core.ops import Op
from privata_mongo.core.rights.policy import PSEUDONYMISE, Retention
from privata_mongo.core.schema import PSEUDONYM_FIELD
from privata_mongo.errors import ConfigurationError

__all__ = [
    "LOOKUP_CHUNK",
    "DataMap",
    "Edge",
    "Lookup",
    "ModelEntry",
    "Ref",
    "Source",
    "SubjectMap",
    "declared",
    "id_key",
    "walk",
]


LOOKUP_CHUNK = 1_000
"""The most ids one ``Lookup`` names in its ``$in``.

A server without an index on the reference field (FerretDB's SQLite backend, mongomock) tests
every document of the collection against the whole list: one lookup naming the 50,000 ids of a
level kept FerretDB 1.24 busy for more than five minutes. A thousand ObjectIds are about 17 KB
of BSON, far below the 16 MiB command limit, and the same batch as the reads that follow
(``access.access``, ``access.export``), so each request stays small and bounded whatever the
size of the subject's record.
"""


class Ref(enum.Enum):
    """How a reference is stored, which decides the filter that finds its holders."""

    ID = "id"
    """The referenced ``_id`` itself (mongoengine ``ReferenceField``, ``LazyReferenceField``)."""
    DBREF = "dbref"
    """A ``DBRef`` (``dbref=True`` fields, Beanie ``Link``)."""
    GENERIC = "generic"
    """``{"_cls": ..., "_ref": DBRef}`` (mongoengine ``GenericReferenceField``)."""
    CACHED = "cached"
    """``{"_id": ..., copied fields}`` (mongoengine ``CachedReferenceField``)."""
    BACK = "backlink"
    """Not stored: the reverse of a ``Link`` of the target (Beanie ``BackLink``); shown in the
    map, walked through the forward link."""


@dataclass(frozen=True, slots=True)
class Edge:
    """One reference field: documents of ``source`` point at documents of ``target``.

    Attributes:
        source: the model holding the field.
        field: the field's stored name.
        target: the referenced model (``None`` for a generic reference: any model).
        ref: how the reference is stored.
        many: a list of references.
    """

    source: str
    field: str
    target: str | None
    ref: Ref
    many: bool = False

    def holders(self, collection: str, ids: Sequence[Any]) -> dict[str, Any]:
        """The filter selecting the ``source`` documents that reference any of ``ids``."""
        values = list(ids)
        if self.ref is Ref.ID:
            return {self.field: {"$in": values}}
        if self.ref is Ref.DBREF:
            return {self.field: {"$in": [DBRef(collection, i) for i in values]}}
        if self.ref is Ref.GENERIC:
            return {f"{self.field}._ref": {"$in": [DBRef(collection, i) for i in values]}}
        if self.ref is Ref.CACHED:
            return {f"{self.field}._id": {"$in": values}}
        raise ValueError(f"{self.source}.{self.field}: a back link is not stored")

    def __str__(self) -> str:
        target = self.target or "*"
        many = "[]" if self.many else ""
        return f"{self.source}.{self.field}{many} -> {target} ({self.ref.value})"


def declared(source: str, references: Any) -> tuple[Edge, ...]:
    """The edges a model declares for plain id fields: ``{"patient_id": "Patient"}``.

    A field holding another document's ``_id`` as a plain value (``PydanticObjectId``,
    ``ObjectIdField``) says nothing about what it references; a model names the target in
    ``meta["references"]`` (mongoengine) or ``Settings.references`` (Beanie), by class name
    or class, so the data map follows it.

    Raises:
        ConfigurationError: the declaration is not a mapping of field names to models.
    """
    if references is None:
        return ()
    if not isinstance(references, Mapping):
        raise ConfigurationError(
            f"{source}: references must map stored field names to models, e.g. "
            '{"patient_id": "Patient"}'
        )
    edges = []
    for name, target in references.items():
        target_name = target if isinstance(target, str) else getattr(target, "__name__", None)
        if not isinstance(name, str) or not isinstance(target_name, str):
            raise ConfigurationError(
                f"{source}: references must map stored field names to model names or classes"
            )
        edges.append(Edge(source, name, target_name, Ref.ID))
    return tuple(edges)


@dataclass(frozen=True, slots=True)
class Source:
    """A reference a native model's documents inherit a restriction marker along.

    What ``proxy.marked`` needs to find, in a document being written, the documents it
    references: the stored field, how the reference is stored, and the referenced model's
    collection (``None`` for a generic reference or a link: the stored ``DBRef`` names it).
    """

    field: str
    ref: Ref
    collection: str | None


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model of the map: where it is stored and how its fields are classified.

    Attributes:
        name: the model's class name.
        collection: its (clinical) collection.
        identity_fields: stored names of its identity fields (empty: the model is native).
        clinical_fields: stored names of its other declared fields.
        searchable: identity fields with a blind index (a subject can be found by them).
        erasure: what an erasure does with the model's documents of the subject's map
            (``core.rights.policy``: ``pseudonymise`` or ``delete``).
        retention: the model's retention period, if it declares one.
    """

    name: str
    collection: str
    identity_fields: tuple[str, ...] = ()
    clinical_fields: tuple[str, ...] = ()
    searchable: tuple[str, ...] = ()
    erasure: str = PSEUDONYMISE
    retention: Retention | None = None

    @property
    def split(self) -> bool:
        """Whether the model's documents carry a pseudonym (it holds identity fields)."""
        return bool(self.identity_fields)


@dataclass(frozen=True, slots=True)
class DataMap:
    """The schema of every registered model as a graph: models, classified fields, edges."""

    models: tuple[ModelEntry, ...]
    edges: tuple[Edge, ...] = ()

    def model(self, name: str) -> ModelEntry:
        """The entry of model ``name``.

        Raises:
            KeyError: no registered model has that name.
        """
        for entry in self.models:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def into(self, target: str) -> tuple[Edge, ...]:
        """The stored edges that can point at documents of ``target`` (generic ones too)."""
        return tuple(e for e in self.edges if e.ref is not Ref.BACK and e.target in (target, None))

    def reachable(self) -> frozenset[str]:
        """The native models whose documents a subject's walk can reach (its data map).

        A native model belongs to a subject's map when it references, directly or through
        other models, a model holding identity fields: its documents can carry a restriction
        marker (``core.rights.spread``), so its reads need the restriction clauses. A generic
        reference can point at any model, so it makes its model reachable whenever a split
        model exists.
        """
        found = {m.name for m in self.models if m.split}
        grown = bool(found)
        while grown:
            grown = False
            for edge in self.edges:
                into = edge.target is None or edge.target in found
                if edge.ref is not Ref.BACK and into and edge.source not in found:
                    found.add(edge.source)
                    grown = True
        return frozenset(m.name for m in self.models if m.name in found and not m.split)

    def sources(self, model: str) -> tuple[Source, ...]:
        """The references of native ``model`` its documents inherit a marker along.

        Every stored reference into a model whose documents can carry a marker: a split model
        (its clinical rows carry the subject's decision) or a native model of the map; a
        generic reference, which can point at any of them.
        """
        marking = {m.name for m in self.models if m.split} | self.reachable()
        found: list[Source] = []
        for edge in self.edges:
            if edge.source != model or edge.ref is Ref.BACK:
                continue
            if edge.target is None:
                found.append(Source(edge.field, edge.ref, None))
            elif edge.target in marking:
                found.append(Source(edge.field, edge.ref, self.model(edge.target).collection))
        return tuple(dict.fromkeys(found))

    def __str__(self) -> str:
        lines = []
        for entry in self.models:
            kind = "split" if entry.split else "native"
            lines.append(f"{entry.name} ({entry.collection}, {kind})")
            if entry.identity_fields:
                lines.append(f"  identity: {', '.join(entry.identity_fields)}")
                if entry.searchable:
                    lines.append(f"  searchable: {', '.join(entry.searchable)}")
            if entry.clinical_fields:
                lines.append(f"  clinical: {', '.join(entry.clinical_fields)}")
            lines.extend(f"  ref {e}" for e in self.edges if e.source == entry.name)
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Lookup(Op[list[Any]]):
    """A request of ``walk``: the ``_id`` of every document of ``model`` matching ``filter``.

    ``raw`` filters name a stored field the application cannot query (the pseudonym link);
    they select ids only, no personal data.
    """

    model: str
    filter: Mapping[str, Any]
    raw: bool = False


@dataclass(frozen=True, slots=True)
class SubjectMap:
    """Every document of one data subject, by model, and the depth at which it was found.

    Attributes:
        pseudonym: the subject.
        documents: model name to the ids of its documents, in the order found.
        depth: the number of levels walked (1: the subject's own documents only).
        lookups: the number of reads the walk asked for.
    """

    pseudonym: str
    documents: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    depth: int = 0
    lookups: int = 0

    @property
    def count(self) -> int:
        """Documents found, over every model."""
        return sum(len(ids) for ids in self.documents.values())


def id_key(value: Any) -> Any:
    """A hashable stand-in for an id (ids may be documents, which are not hashable)."""
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def walk(
    data_map: DataMap, pseudonym: str, *, max_depth: int = 32, chunk: int = LOOKUP_CHUNK
) -> Generator[Any, Any, SubjectMap]:
    """Find every document belonging to ``pseudonym``; the caller answers each ``Lookup``.

    Level 1 is the subject's own documents (one lookup per split model). Each later level
    looks, once per edge into the models found at the previous level and per ``chunk`` of
    their ids, for the documents that reference them; documents already found are not followed
    again, so cycles end. The walk holds ids only (about 150 bytes each with their bookkeeping,
    15 MB for 100,000 documents), never a document.
    """
    found: dict[str, dict[Any, Any]] = {}
    lookups = 0
    frontier: dict[str, list[Any]] = {}
    for entry in data_map.models:
        if entry.split:
            lookups += 1
            ids = yield from Lookup(entry.name, {PSEUDONYM_FIELD: pseudonym}, raw=True)
            _add(found, frontier, entry.name, ids)
    depth = 1
    while frontier and depth < max_depth:
        level, frontier = frontier, {}
        for target, ids in level.items():
            collection = data_map.model(target).collection
            for edge in data_map.into(target):
                for start in range(0, len(ids), chunk):
                    lookups += 1
                    part = ids[start : start + chunk]
                    holders = yield from Lookup(edge.source, edge.holders(collection, part))
                    _add(found, frontier, edge.source, holders)
        if frontier:
            depth += 1
    documents = {model: tuple(ids.values()) for model, ids in found.items() if ids}
    return SubjectMap(pseudonym, documents, depth if documents else 0, lookups)


def _add(
    found: dict[str, dict[Any, Any]],
    frontier: dict[str, list[Any]],
    model: str,
    ids: Iterable[Any],
) -> None:
    seen = found.setdefault(model, {})
    for value in ids:
        key = id_key(value)
        if key not in seen:
            seen[key] = value
            frontier.setdefault(model, []).append(value)
