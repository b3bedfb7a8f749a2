"""Describe Beanie document classes to the core, and find the classes of a collection.

The only module that reads Beanie's and pydantic's class internals (``model_fields``,
``Settings``, ``Indexed``); what it learns goes to the core as a plain ``ModelSpec``. Markers:
``Annotated[str, PII()]``, ``Field(json_schema_extra={"pii": True})``, and in ``Settings`` a
``privacy = {...}`` mapping with the same keys as mongoengine's ``meta["privacy"]``.
"""

from __future__ import annotations

import threading
import types
import typing
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import beanie
from pydantic import BaseModel

from privata_mongo.beanie._markers import PII
from privata_mongo.config import current, layout_policy
from privata_mongo.core.classify import compile_schema
from privata_mongo.core.schema import FieldSpec, ModelSchema, ModelSpec
from privata_mongo.errors import ConfigurationError

__all__ = ["ModelRegistry", "collection_name", "describe", "schema_of_model"]

_lock = threading.RLock()
_cache: dict[tuple[Any, ...], tuple[tuple[Any, ...], ModelSchema]] = {}


def _marker(model: str, name: str, info: Any) -> tuple[bool | None, bool]:
    """The explicit ``(pii, searchable)`` of a pydantic field, from metadata or schema extras."""
    pii: bool | None = None
    searchable = False
    for item in info.metadata:
        if isinstance(item, PII):
            pii, searchable = item.pii, item.searchable
    extra = info.json_schema_extra
    if isinstance(extra, dict):
        if "pii" in extra:
            value = extra["pii"]
            if not isinstance(value, bool):
                raise ConfigurationError(f"{model}.{name}: json_schema_extra 'pii' must be a bool")
            pii = value
        searchable = searchable or bool(extra.get("searchable", False))
    return pii, searchable


def _unique(info: Any) -> bool:
    indexed = getattr(info.annotation, "_indexed", None)
    for item in info.metadata:
        indexed = getattr(item, "_indexed", indexed)
    return bool(indexed and indexed[1].get("unique"))


def _models_in(annotation: Any) -> Iterable[type[BaseModel]]:
    """Embedded pydantic models reachable in a field's type (through Optional, list, dict…)."""
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel) and not issubclass(annotation, beanie.Document):
            yield annotation
        return
    origin = typing.get_origin(annotation)
    if origin is beanie.Link or origin is beanie.BackLink:
        return
    if origin is not None or isinstance(annotation, types.UnionType):
        for argument in typing.get_args(annotation):
            yield from _models_in(argument)


def _field_spec(model: str, name: str, info: Any, depth: int = 0) -> FieldSpec:
    pii, searchable = _marker(model, name, info)
    children: list[FieldSpec] = []
    if depth < 8:
        for embedded in _models_in(info.annotation):
            children.extend(
                _field_spec(embedded.__name__, n, i, depth + 1)
                for n, i in embedded.model_fields.items()
            )
    stored = "_id" if name == "id" else (info.alias or name)
    return FieldSpec(
        name=stored,
        attribute=name,
        marker=pii,
        searchable=searchable,
        unique=_unique(info),
        primary_key=stored == "_id",
        children=tuple(children),
    )


def _settings(cls: type) -> Any:
    return cls.__dict__.get("Settings")


def _root(cls: type) -> type | None:
    """The ``is_root`` class of an inheritance tree ``cls`` belongs to (``None`` outside one)."""
    root = None
    for klass in cls.__mro__:
        settings = _settings(klass)
        if settings is not None and getattr(settings, "is_root", False):
            root = klass
    return root


def collection_name(cls: type) -> str:
    """The collection a Beanie document class is stored in (its root's, for inheritance)."""
    root = _root(cls) or cls
    settings = _settings(root)
    name = getattr(settings, "name", None) if settings is not None else None
    return str(name or root.__name__)


def describe(cls: type[Any]) -> ModelSpec:
    """The neutral description of one Beanie document class."""
    fields = [_field_spec(cls.__name__, n, i) for n, i in cls.model_fields.items()]
    fields.sort(key=lambda f: f.name != "_id")
    root = _root(cls)
    if root is not None:
        # Beanie stores the class marker of an inheritance tree right after ``_id``.
        class_id = str(getattr(_settings(root), "class_id", None) or "_class_id")
        fields.insert(1, FieldSpec(name=class_id, attribute=class_id))
    settings = _settings(cls)
    privacy = getattr(settings, "privacy", None) if settings is not None else None
    return ModelSpec(
        name=cls.__name__, collection=collection_name(cls), fields=tuple(fields), privacy=privacy
    )


def _schema_for(classes: list[type[Any]]) -> ModelSchema:
    settings = current()
    key = (id(settings), collection_name(classes[0]), *(id(c) for c in classes))
    with _lock:
        cached = _cache.get(key)
        if cached is None:
            schema = compile_schema([describe(c) for c in classes], layout_policy(settings))
            cached = _cache[key] = ((settings, *classes), schema)
    return cached[1]


class ModelRegistry:
    """The Beanie document classes ``init_beanie`` was given, as the proxy's schema resolver."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Any]] = {}
        self._lock = threading.Lock()

    def add(self, classes: Iterable[Any]) -> None:
        """Remember document classes (views and union documents are stored natively).

        A class defined again under the same name replaces the earlier one, as a module
        reloaded in development would.
        """
        with self._lock:
            for cls in classes:
                if isinstance(cls, type) and issubclass(cls, beanie.Document):
                    self._classes[f"{cls.__module__}.{cls.__qualname__}"] = cls

    def classes_of(self, collection: str) -> list[type[Any]]:
        """The known classes stored in ``collection``, base classes first."""
        with self._lock:
            found = [c for c in self._classes.values() if collection_name(c) == collection]
        return sorted(found, key=lambda c: len(c.__mro__))

    def __call__(self, database: str, collection: str) -> ModelSchema | None:
        classes = self.classes_of(collection)
        if not classes:
            return None
        schema = _schema_for(classes)
        if schema.enabled or self is not REGISTRY:
            return schema
        from privata_mongo.beanie._datamap import marked  # the map reads every model

        sources = marked(collection)
        return schema if sources is None else replace(schema, marked=True, marked_by=sources)


def schema_of_model(cls: Any) -> ModelSchema:
    """The schema of the collection a Beanie document class is stored in."""
    if not (isinstance(cls, type) and issubclass(cls, beanie.Document)):
        raise ConfigurationError(f"{cls!r} is not a Beanie Document class")
    registry = ModelRegistry()
    registry.add([cls, *REGISTRY.classes_of(collection_name(cls))])
    return _schema_for(registry.classes_of(collection_name(cls)))


REGISTRY = ModelRegistry()
"""Every document class passed to ``privata_mongo.beanie.init_beanie`` in this process."""
