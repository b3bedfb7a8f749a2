"""Describe mongoengine document classes to the core, and find the classes of a collection.

This is the only module that reads mongoengine's class internals (``_fields``, ``_meta``, the
document registry); everything it learns is handed to the core as a plain ``ModelSpec``.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import mongoengine
from mongoengine.base.common import _document_registry

from privata_mongo.config import current, layout_policy
from privata_mongo.core.classify import compile_schema
from privata_mongo.core.schema import FieldSpec, ModelSchema, ModelSpec, Side
from privata_mongo.errors import ConfigurationError

__all__ = ["collection_classes", "describe", "resolve", "schema_for", "schema_of_model"]

_CONTAINERS = (mongoengine.ListField, mongoengine.MapField, mongoengine.DictField)
_lock = threading.RLock()  # re-entrant: a cached reference compiles the referenced schema
_describing = threading.local()
# Values hold the classes, so an id in a key is never reused by another class while cached.
_cache: dict[tuple[Any, ...], tuple[tuple[Any, ...], ModelSchema]] = {}


def _marker(model: str, attribute: str, field: Any) -> bool | None:
    value = getattr(field, "pii", None)
    if value is None or isinstance(value, bool):
        return value
    raise ConfigurationError(f"{model}.{attribute}: pii= must be True or False")


def _cached_fields(field: Any) -> tuple[FieldSpec, ...]:
    """The fields a ``CachedReferenceField`` copies, classified as the referenced model says."""
    target = field.document_type
    in_progress: set[int] = getattr(_describing, "classes", set())
    if id(target) in in_progress:
        # Two models caching each other: fall back to the copied fields' own markers and names.
        return tuple(_field_spec(target.__name__, n, target._fields[n]) for n in field.fields)
    try:
        schema: ModelSchema | None = schema_of_model(target)
    except ConfigurationError:
        # The referenced model's own error is raised when that model is used, never here:
        # until it is fixed, every copied field is treated as identity data (never a leak).
        schema = None
    return tuple(
        FieldSpec(
            name=target._fields[n].db_field,
            attribute=n,
            marker=schema is None or schema.side_of(target._fields[n].db_field) is Side.IDENTITY,
        )
        for n in field.fields
    )


def _children(field: Any, model: str, depth: int = 0) -> tuple[FieldSpec, ...]:
    if depth > 8:
        return ()  # self-referencing embedded documents: deep enough to find markers
    if isinstance(field, mongoengine.CachedReferenceField):
        return _cached_fields(field)
    if isinstance(field, mongoengine.EmbeddedDocumentField):
        document = field.document_type
        return tuple(
            _field_spec(document.__name__, name, f, depth + 1)
            for name, f in document._fields.items()
        )
    if isinstance(field, _CONTAINERS) and getattr(field, "field", None) is not None:
        return _children(field.field, model, depth + 1)
    return ()


def _field_spec(model: str, attribute: str, field: Any, depth: int = 0) -> FieldSpec:
    return FieldSpec(
        name=field.db_field or attribute,
        attribute=attribute,
        marker=_marker(model, attribute, field),
        searchable=bool(getattr(field, "searchable", False)),
        unique=bool(getattr(field, "unique", False)),
        primary_key=bool(getattr(field, "primary_key", False)) or field.db_field == "_id",
        children=_children(field, model, depth),
    )


def describe(cls: Any) -> ModelSpec:
    """The neutral description of one document class."""
    in_progress: set[int] = getattr(_describing, "classes", set())
    _describing.classes = in_progress | {id(cls)}
    try:
        return _describe(cls)
    finally:
        _describing.classes = in_progress


def _describe(cls: Any) -> ModelSpec:
    fields: list[FieldSpec] = []
    names = [n for n in cls._fields_ordered if n != "_cls"]
    id_first = sorted(names, key=lambda n: cls._fields[n].db_field != "_id")
    for name in id_first:
        fields.append(_field_spec(cls.__name__, name, cls._fields[name]))
        if cls._fields[name].db_field == "_id" and "_cls" in cls._fields:
            fields.append(FieldSpec(name="_cls", attribute="_cls"))
    return ModelSpec(
        name=cls.__name__,
        collection=cls._get_collection_name(),
        fields=tuple(fields),
        privacy=cls._meta.get("privacy"),
        dynamic=bool(cls._dynamic),
    )


def collection_classes(collection: str) -> list[Any]:
    """Concrete document classes stored in ``collection``, base classes first."""
    found = []
    for cls in list(_document_registry.values()):
        if not issubclass(cls, mongoengine.Document) or cls._meta.get("abstract"):
            continue
        if cls._get_collection_name() == collection:
            found.append(cls)
    return sorted(found, key=lambda c: len(c.__mro__))


def schema_for(classes: list[Any]) -> ModelSchema:
    """The compiled schema of a collection's classes.

    Cached per collection name (``switch_collection`` renames it), class set and settings.
    """
    settings = current()
    key = (id(settings), classes[0]._get_collection_name(), *(id(c) for c in classes))
    with _lock:
        cached = _cache.get(key)
        if cached is None:
            schema = compile_schema([describe(c) for c in classes], layout_policy(settings))
            cached = _cache[key] = ((settings, *classes), schema)
    return cached[1]


def resolve(database: str, collection: str) -> ModelSchema | None:
    """The schema resolver handed to the proxy: ``None`` for collections no model declares."""
    classes = collection_classes(collection)
    if not classes:
        return None
    schema = schema_for(classes)
    if schema.enabled:
        return schema
    from privata_mongo.mongoengine._datamap import marked  # the map reads every model

    sources = marked(collection)
    return schema if sources is None else replace(schema, marked=True, marked_by=sources)


def schema_of_model(cls: Any) -> ModelSchema:
    """The schema of the collection ``cls`` is stored in (with its sibling classes)."""
    if not (isinstance(cls, type) and issubclass(cls, mongoengine.Document)):
        raise ConfigurationError(f"{cls!r} is not a mongoengine Document class")
    model: Any = cls
    classes = collection_classes(model._get_collection_name()) or [cls]
    if cls not in classes:
        classes.append(cls)
    return schema_for(classes)
