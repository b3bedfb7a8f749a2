"""Small helpers that turn documents and querysets into plain observations."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["doc", "docs", "names", "plain", "stored"]


def plain(value: Any) -> Any:
    """Field values as plain data: (embedded) documents become their ``to_mongo()`` dicts."""
    if hasattr(value, "to_mongo") and callable(value.to_mongo):
        return {"class": type(value).__name__, **value.to_mongo().to_dict()}
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def doc(document: Any, *fields: str) -> dict[str, Any] | None:
    """A document as plain data: class, pk and the named fields (all of ``to_mongo()`` if none).

    ``to_mongo()`` is computed from the instance's state, so for a loaded document it shows
    exactly what the read returned (embedded documents as dicts, references as ids).
    """
    if document is None:
        return None
    if not fields:
        return {"class": type(document).__name__, "son": document.to_mongo().to_dict()}
    values: dict[str, Any] = {"class": type(document).__name__, "pk": document.pk}
    for name in fields:
        values[name] = plain(getattr(document, name))
    return values


def docs(documents: Iterable[Any], *fields: str) -> list[dict[str, Any] | None]:
    """``doc`` over an iterable, in its order."""
    return [doc(d, *fields) for d in documents]


def names(documents: Iterable[Any]) -> list[str]:
    """First names in iteration order: the cheapest way to observe which documents and order."""
    return [d.first_name for d in documents]


def stored(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """A raw (as_pymongo) document with its key order made observable, ``_id`` aside.

    Where ``_id`` stands is backend trivia: a server puts it first, mongomock keeps it wherever
    the client put it (last, for documents pymongo gave an id). Every other key keeps its place.
    """
    if raw is None:
        return None
    keys = list(raw)
    if "_id" in keys:
        keys.remove("_id")
        keys.insert(0, "_id")
    return {"keys": keys, "values": dict(raw)}
