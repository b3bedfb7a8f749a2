"""Small helpers that turn Beanie documents and query results into plain observations."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from beanie import BackLink, Link
from pydantic import BaseModel, ValidationError

from compat_suite.harness import error_name

__all__ = ["doc", "docs", "names", "plain", "stored", "validation"]

# Values two runs never share, observed by presence: Beanie's revision ids (random UUIDs) and
# soft-delete stamps (the wall clock).
_UNCOMPARABLE = frozenset({"revision_id", "deleted_at"})


def plain(value: Any) -> Any:
    """Field values as plain data.

    A (fetched) document or embedded model becomes its class name and fields; an unfetched
    ``Link`` the id and collection it points to; a ``BackLink`` (virtual, never stored) its
    target class name.
    """
    if isinstance(value, Link):
        return {"link": value.ref.id, "collection": value.ref.collection}
    if isinstance(value, BackLink):
        return {"back_link": value.document_class.__name__}
    if isinstance(value, BaseModel):
        fields = {name: getattr(value, name) for name in type(value).model_fields}
        return {"class": type(value).__name__, **_fields(fields)}
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def _fields(values: dict[str, Any]) -> dict[str, Any]:
    observed = {}
    for name, value in values.items():
        if name in _UNCOMPARABLE:
            observed[name] = value is not None
        else:
            observed[name] = plain(value)
    return observed


def doc(document: Any, *fields: str) -> dict[str, Any] | None:
    """A document as plain data: class and the named fields (every model field if none)."""
    if document is None:
        return None
    if not fields or isinstance(document, Link):
        return plain(document)  # type: ignore[no-any-return]
    return {"class": type(document).__name__, **_fields({n: getattr(document, n) for n in fields})}


def docs(documents: Iterable[Any], *fields: str) -> list[dict[str, Any] | None]:
    """``doc`` over an iterable, in its order."""
    return [doc(d, *fields) for d in documents]


def names(documents: Iterable[Any]) -> list[Any]:
    """First names in iteration order: the cheapest way to observe which documents and order.

    A link that was not resolved is observed as such (``plain``), not as an error.
    """
    return [d.first_name if hasattr(d, "first_name") else plain(d) for d in documents]


def stored(raw: dict[str, Any] | None, key_order: bool = True) -> dict[str, Any] | None:
    """A raw document (read through Beanie's collection) with its key order, ``_id`` first.

    Where ``_id`` stands is backend trivia (see the mongoengine half); every other key keeps
    its place, unless ``key_order`` is false (keys sorted: a scenario observing values only).
    Revision ids are observed by presence.
    """
    if raw is None:
        return None
    keys = list(raw) if key_order else sorted(raw)
    if "_id" in keys:
        keys.remove("_id")
        keys.insert(0, "_id")
    values = {k: (v is not None if k in _UNCOMPARABLE else v) for k, v in raw.items()}
    return {"keys": keys, "values": values}


def validation(exc: BaseException) -> dict[str, Any]:
    """An exception's type and, for pydantic's ``ValidationError``, which fields failed how.

    Messages and inputs are not observed: they may quote personal data.
    """
    observed: dict[str, Any] = {"type": error_name(exc)}
    if isinstance(exc, ValidationError):
        observed["errors"] = [(list(e["loc"]), e["type"]) for e in exc.errors()]
    return observed
