"""The record of processing activities (GDPR Art. 30) of the application's models.

``processing_record(db)`` reads the data map of every registered model (mongoengine and
Beanie), their ``privacy`` declarations (retention, erasure) and a summary of the audit trail
of each database given, computed by the server (``core.rights.register``: one ``$group``, and
the oldest and the newest record; never a scan of the trail into the process), and returns the
register as data (``ProcessingRecord``; ``to_dict``) and Markdown (``to_markdown``).
``processing_record_async`` takes async databases (Beanie's, an ``AsyncMongoClient``'s).

A source is a database, privata's or a real one (its audit collection per the settings is
read), or an audit collection itself (a ``CollectionAuditSink``'s collection on another
server).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterable
from typing import Any

from privata_mongo.audit import audit_collection
from privata_mongo.core.rights.datamap import DataMap, Edge, ModelEntry
from privata_mongo.core.rights.register import EDGES, SUMMARY, ProcessingRecord, register

__all__ = ["ProcessingRecord", "processing_record", "processing_record_async"]


def _trail(source: Any) -> Any:
    """The real audit collection of ``source`` (a database, or the collection itself)."""
    return audit_collection(source) if hasattr(source, "list_collection_names") else source


def _name(source: Any) -> str:
    """A database's name, or an audit collection's ``database.collection``."""
    if hasattr(source, "list_collection_names"):
        return str(source.name)
    return str(source.full_name)


def _described(models: Iterable[Any] | None) -> tuple[DataMap, dict[str, Any]]:
    """The data map of ``models`` (every registered model by default), and their ``privacy``.

    Each facade describes its own classes among ``models`` (mongoengine documents, Beanie
    documents), as ``privata_mongo.data_map()`` does for every registered one.
    """
    only = None if models is None else list(models)
    entries: list[ModelEntry] = []
    edges: list[Edge] = []
    privacy: dict[str, Any] = {}
    if "mongoengine" in sys.modules:
        from privata_mongo.mongoengine._datamap import data_map, model_classes
        from privata_mongo.mongoengine._describe import describe

        found = data_map(only)
        entries.extend(found.models)
        edges.extend(found.edges)
        privacy.update({n: describe(c).privacy for n, c in model_classes(only).items()})
    if "beanie" in sys.modules:
        from privata_mongo.beanie._datamap import data_map as beanie_map
        from privata_mongo.beanie._datamap import model_classes as beanie_classes
        from privata_mongo.beanie._describe import describe as describe_beanie

        found = beanie_map(only)
        entries.extend(found.models)
        edges.extend(found.edges)
        privacy.update({n: describe_beanie(c).privacy for n, c in beanie_classes(only).items()})
    return DataMap(tuple(entries), tuple(edges)), privacy


def processing_record(*sources: Any, models: Iterable[Any] | None = None) -> ProcessingRecord:
    """The Art. 30 register of the models and the trails of ``sources`` (sync databases).

    Args:
        sources: databases (``privata_mongo.mongoengine.get_db()``, a real one) or audit
            collections; their trails are summarised by the server and merged.
        models: the model classes to describe (mongoengine or Beanie documents); every
            registered model by default.

    Raises:
        ConfigurationError: a model's privacy declaration cannot be compiled.
    """
    rows: list[Any] = []
    times: list[Any] = []
    for source in sources:
        trail = _trail(source)
        rows.extend(trail.aggregate(list(SUMMARY)))
        times.extend(d["at"] for edge in EDGES for d in trail.aggregate(list(edge)))
    described, privacy = _described(models)
    return register(
        described,
        rows,
        databases=[_name(s) for s in sources],
        times=times,
        privacy=privacy,
    )


async def processing_record_async(
    *sources: Any, models: Iterable[Any] | None = None
) -> ProcessingRecord:
    """``processing_record`` for async databases or audit collections."""
    rows: list[Any] = []
    times: list[Any] = []
    for source in sources:
        trail = _trail(source)
        rows.extend(await _aggregated(trail, SUMMARY))
        for edge in EDGES:
            times.extend(d["at"] for d in await _aggregated(trail, edge))
    described, privacy = _described(models)
    return register(
        described,
        rows,
        databases=[_name(s) for s in sources],
        times=times,
        privacy=privacy,
    )


async def _aggregated(trail: Any, pipeline: Any) -> list[Any]:
    cursor = trail.aggregate(list(pipeline))
    if inspect.isawaitable(cursor):  # pymongo's async API: a coroutine of a cursor
        cursor = await cursor
    return list(await cursor.to_list(None))
