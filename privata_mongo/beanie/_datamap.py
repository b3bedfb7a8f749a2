"""The data map of the Beanie models given to ``init_beanie``: classes, fields, links.

Reads pydantic's field annotations for ``Link``, ``BackLink`` and lists of them; the
classification comes from the compiled schema.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable
from typing import Any

import beanie

from privata_mongo.beanie._describe import REGISTRY, collection_name, schema_of_model
from privata_mongo.config import current
from privata_mongo.core.rights.datamap import DataMap, Edge, ModelEntry, Ref, Source, declared
from privata_mongo.core.rights.policy import erasure_policy, retention_policy
from privata_mongo.errors import PrivataError

__all__ = ["data_map", "marked", "model_classes"]

_marked: dict[tuple[int, ...], dict[str, tuple[Source, ...]]] = {}


def model_classes(only: Iterable[Any] | None = None) -> dict[str, Any]:
    """The root document class of each collection known to ``init_beanie`` (or of ``only``)."""
    bases: dict[str, Any] = {}
    collections: set[str] = set()
    if only is None:
        with REGISTRY._lock:
            known = list(REGISTRY._classes.values())
    else:
        known = [c for c in only if isinstance(c, type) and issubclass(c, beanie.Document)]
    for cls in sorted(known, key=lambda c: (len(c.__mro__), c.__name__)):
        collection = collection_name(cls)
        if collection not in collections:
            collections.add(collection)
            bases[cls.__name__] = cls
    return bases


def _link(annotation: Any, many: bool = False) -> tuple[Ref, Any, bool] | None:
    """``(ref, target class, many)`` of a field typed ``Link[T]``, or ``list[BackLink[T]]``."""
    origin = typing.get_origin(annotation)
    if origin is beanie.Link or origin is beanie.BackLink:
        ref = Ref.DBREF if origin is beanie.Link else Ref.BACK
        return ref, typing.get_args(annotation)[0], many
    if origin in (list, tuple, set):
        for argument in typing.get_args(annotation):
            found = _link(argument, True)
            if found is not None:
                return found
    elif origin is typing.Union or isinstance(annotation, types.UnionType):
        for argument in typing.get_args(annotation):
            found = _link(argument, many)
            if found is not None:
                return found
    return None


def data_map(only: Iterable[Any] | None = None, *, usable: bool = False) -> DataMap:
    """Every Beanie model given to ``init_beanie`` (or of ``only``), its fields and links.

    ``usable``: leave out the models whose schema cannot be compiled (a misdeclared model
    fails where it is used, not in the map other collections are served by).
    """
    entries: list[ModelEntry] = []
    edges: list[Edge] = []
    classes = model_classes(only)
    by_collection = {collection_name(c): n for n, c in classes.items()}
    for name, cls in sorted(classes.items()):
        try:
            schema = schema_of_model(cls)
        except PrivataError:
            if not usable:
                raise
            continue
        identity = tuple(d.field for d in schema.decisions if d.identity) if schema.enabled else ()
        clinical = tuple(d.field for d in schema.decisions if d.field not in identity)
        privacy = getattr(cls.__dict__.get("Settings"), "privacy", None)
        entries.append(
            ModelEntry(
                name=name,
                collection=schema.collection,
                identity_fields=identity,
                clinical_fields=clinical,
                searchable=tuple(f for f in identity if f in schema.searchable),
                erasure=erasure_policy(name, privacy),
                retention=retention_policy(name, privacy, clinical, split=bool(identity)),
            )
        )
        settings = cls.__dict__.get("Settings")
        edges.extend(declared(name, getattr(settings, "references", None)))
        for attribute, info in cls.model_fields.items():
            found = _link(info.annotation)
            if found is None:
                continue
            ref, target, many = found
            target_name = by_collection.get(collection_name(target), target.__name__)
            edges.append(Edge(name, info.alias or attribute, target_name, ref, many))
    return DataMap(tuple(entries), tuple(edges))


def marked(collection: str) -> tuple[Source, ...] | None:
    """The references a marked ``collection`` inherits markers along; ``None``: not marked.

    A marked collection is a native one whose documents can be in a subject's map.

    The map of every model given to ``init_beanie`` is built once per set of classes and
    settings.
    """
    with REGISTRY._lock:
        key = (id(current()), *map(id, REGISTRY._classes.values()))
    found = _marked.get(key)
    if found is None:
        described = data_map(usable=True)
        found = {described.model(n).collection: described.sources(n) for n in described.reachable()}
        _marked.clear()
        _marked[key] = found
    return found.get(collection)
