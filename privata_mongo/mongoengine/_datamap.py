"""The data map of the mongoengine models: every registered document class and its references.

Reads mongoengine's class internals (the document registry, ``_fields``) and hands the core
plain ``ModelEntry`` and ``Edge`` values; the classification comes from the compiled schema.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import mongoengine
from mongoengine.base.common import _document_registry
from mongoengine.errors import NotRegistered

from privata_mongo.config import current
from privata_mongo.core.rights.datamap import DataMap, Edge, ModelEntry, Ref, Source, declared
from privata_mongo.core.rights.policy import erasure_policy, retention_policy
from privata_mongo.errors import PrivataError
from privata_mongo.mongoengine._describe import collection_classes, schema_of_model

__all__ = ["data_map", "marked", "model_classes"]

_marked: dict[tuple[int, ...], dict[str, tuple[Source, ...]]] = {}


def model_classes(only: Iterable[Any] | None = None) -> dict[str, Any]:
    """The base document class of each collection, by class name (of ``only``, if given).

    Classes sharing a collection (inheritance) are one model: the base class reads every
    document of its collection.
    """
    bases: dict[str, Any] = {}
    collections: set[str] = set()
    registered = [
        c
        for c in (list(_document_registry.values()) if only is None else list(only))
        if issubclass(c, mongoengine.Document) and not c._meta.get("abstract")
    ]
    for cls in sorted(registered, key=lambda c: (len(c.__mro__), c.__name__)):
        collection = cls._get_collection_name()
        if collection not in collections:
            collections.add(collection)
            bases[cls.__name__] = cls
    return bases


def _base_name(cls: Any) -> str:
    classes = collection_classes(cls._get_collection_name())
    return str(classes[0].__name__ if classes else cls.__name__)


def _edge(source: str, name: str, field: Any, many: bool = False) -> Edge | None:
    if isinstance(field, mongoengine.ListField) and field.field is not None:
        return _edge(source, name, field.field, many=True)
    if isinstance(field, mongoengine.CachedReferenceField):
        return Edge(source, name, _base_name(field.document_type), Ref.CACHED, many)
    if isinstance(field, mongoengine.GenericReferenceField | mongoengine.GenericLazyReferenceField):
        return Edge(source, name, None, Ref.GENERIC, many)
    if isinstance(field, mongoengine.ReferenceField | mongoengine.LazyReferenceField):
        ref = Ref.DBREF if field.dbref else Ref.ID
        return Edge(source, name, _base_name(field.document_type), ref, many)
    return None


def _model(name: str, cls: Any) -> tuple[ModelEntry, list[Edge]]:
    schema = schema_of_model(cls)
    identity = tuple(d.field for d in schema.decisions if d.identity) if schema.enabled else ()
    clinical = tuple(d.field for d in schema.decisions if d.field not in identity)
    privacy = cls._meta.get("privacy")
    entry = ModelEntry(
        name=name,
        collection=schema.collection,
        identity_fields=identity,
        clinical_fields=clinical,
        searchable=tuple(f for f in identity if f in schema.searchable),
        erasure=erasure_policy(name, privacy),
        retention=retention_policy(name, privacy, clinical, split=bool(identity)),
    )
    edges: list[Edge] = []
    for klass in collection_classes(schema.collection) or [cls]:
        for attribute, field in klass._fields.items():
            edge = _edge(name, field.db_field or attribute, field)
            if edge is not None and edge not in edges:
                edges.append(edge)
        for edge in declared(name, klass._meta.get("references")):
            if edge not in edges:
                edges.append(edge)
    return entry, edges


def data_map(only: Iterable[Any] | None = None, *, usable: bool = False) -> DataMap:
    """Every registered mongoengine model (or those of ``only``), fields and reference edges.

    ``usable``: leave out the models that cannot be described (a misdeclared model, or one
    referencing a class not defined yet): such a model fails where it is used, not in the
    map other collections are served by.
    """
    entries: list[ModelEntry] = []
    edges: list[Edge] = []
    for name, cls in sorted(model_classes(only).items()):
        try:
            entry, found = _model(name, cls)
        except (PrivataError, NotRegistered):
            if not usable:
                raise
            continue
        entries.append(entry)
        edges.extend(e for e in found if e not in edges)
    return DataMap(tuple(entries), tuple(edges))


def marked(collection: str) -> tuple[Source, ...] | None:
    """The references a marked ``collection`` inherits markers along; ``None``: not marked.

    A marked collection is a native one whose documents can be in a subject's map.

    The map of every registered model is built once per set of classes and settings.
    """
    key = (id(current()), *map(id, _document_registry.values()))
    found = _marked.get(key)
    if found is None:
        described = data_map(usable=True)
        found = {described.model(n).collection: described.sources(n) for n in described.reachable()}
        _marked.clear()
        _marked[key] = found
    return found.get(collection)
