"""A native collection whose documents can belong to a data subject's map: restriction applies.

A model without identity fields that references a model holding them, directly or through
other models (``DataMap.reachable``), stores documents that are a subject's data too, and
``Rights.restrict``/``object`` mark them (``core.rights.spread``). Its collection is still
stored and served natively; this class only adds, server-side, what a split collection's
planner adds: the read clause to every filter and pipeline (so counts, pages, ``distinct`` and
aggregation agree with what a find returns), a probe of the guard clause before every write
(a restricted document refuses the whole write before anything is written), the objection
clause to every write's filter, and a projection keeping the marker out of every document
returned. An update, replacement or insert naming the marker is refused, as on split
collections. Collections of other native models are served by ``PlainCollection`` unchanged,
so the cost falls only where a marker can be.

The arguments of each call are bound to pymongo's own signature (one rule for positional and
keyword forms), changed, and passed to the real collection; an async collection's awaitable
is returned as it is, or awaited after the guard's probe.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pymongo.collection import Collection

from privata_mongo.core.rights.restriction import (
    RESTRICTION_FIELD,
    Visibility,
    conjoined,
    refuse_marker,
    restricted_error,
)
from privata_mongo.core.rights.spread import SUBJECTS
from privata_mongo.proxy.plain import PlainCollection

__all__ = ["MarkedCollection"]

_READS = ("find", "find_one", "count_documents", "distinct")
_WRITES = (
    "update_one",
    "update_many",
    "replace_one",
    "delete_one",
    "delete_many",
    "find_one_and_update",
    "find_one_and_replace",
    "find_one_and_delete",
)


def _find(self: Any, filter: Any = None, projection: Any = None, *args: Any, **kwargs: Any) -> None:
    """The arguments of ``find`` and ``find_one`` as ``Cursor`` takes them.

    pymongo declares only ``*args, **kwargs`` on both.
    """


_OWNED: dict[type, type] = {}


def _owned(cursor: Any, collection: Any) -> Any:
    """``cursor``, answering ``collection`` for its ``collection`` attribute.

    mongoengine counts a queryset on ``cursor.collection``; a native cursor names the real
    collection there, which would count the documents the clause leaves out. The cursor's own
    class is kept as the base of a subclass of the same name that only overrides that property
    (the cursor itself still runs on the real collection: pymongo reads ``_collection``).
    """
    base = type(cursor)
    if not isinstance(getattr(base, "collection", None), property):
        cursor.collection = collection  # mongomock's: a plain attribute, read for options and
        return cursor  # data, which this collection delegates to the real one
    owned = _OWNED.get(base)
    if owned is None:

        def clone_base(cursor: Any, session: Any) -> Any:  # a clone names it too
            made = base._clone_base(cursor, session)
            made._privata_collection = cursor._privata_collection
            return made

        namespace = {
            "collection": property(lambda c: c._privata_collection),
            "_clone_base": clone_base,
            "__module__": base.__module__,
            "__qualname__": base.__qualname__,
        }
        owned = _OWNED[base] = type(base.__name__, (base,), namespace)
    cursor.__class__ = owned
    cursor._privata_collection = collection
    return cursor


_SIGNATURES = {
    name: inspect.signature(getattr(Collection, name))
    for name in (*_READS, *_WRITES, "aggregate", "estimated_document_count")
}
_SIGNATURES["find"] = _SIGNATURES["find_one"] = inspect.signature(_find)
_SIGNATURES["find_raw_batches"] = inspect.signature(_find)
_CHANGE = {"update_one": "update", "update_many": "update", "find_one_and_update": "update"}
_CHANGE |= {"replace_one": "replacement", "find_one_and_replace": "replacement"}
_LAST = frozenset({"$out", "$merge"})
_FIRST_ONLY = frozenset({"$geoNear", "$search", "$searchMeta", "$vectorSearch"})


def _filtered(filter: Any, clause: Mapping[str, Any] | None) -> Any:
    if clause is None:
        return filter
    if filter is None:
        return dict(clause)
    if not isinstance(filter, Mapping):
        filter = {"_id": filter}  # find_one(some_id)
    return conjoined(filter, clause)


def _inclusive(projection: Mapping[str, Any]) -> bool:
    kept = [k for k, v in projection.items() if not isinstance(v, Mapping) and v not in (0, False)]
    return any(k != "_id" for k in kept) or kept == list(projection)


def _hidden(projection: Any) -> Any:
    """``projection`` with the marker left out of the documents returned."""
    if projection is None:
        return {RESTRICTION_FIELD: 0}
    if isinstance(projection, Mapping):
        kept = {k: v for k, v in projection.items() if k.split(".", 1)[0] != RESTRICTION_FIELD}
        if kept and _inclusive(kept):
            return kept
        return {**kept, RESTRICTION_FIELD: 0}
    if isinstance(projection, Sequence) and not isinstance(projection, str):
        kept_names = [n for n in projection if str(n).split(".", 1)[0] != RESTRICTION_FIELD]
        return kept_names or {RESTRICTION_FIELD: 0}
    return projection


def _stripped(document: Any) -> Any:
    """``document`` (or what its awaitable gives) without the marker."""
    if inspect.isawaitable(document):

        async def then() -> Any:
            return _stripped(await document)

        return then()
    if isinstance(document, Mapping) and RESTRICTION_FIELD in document:
        kind: Any = type(document)  # dict, SON or RawBSONDocument's decoded form: kept
        return kind((k, v) for k, v in document.items() if k != RESTRICTION_FIELD)
    return document


class MarkedCollection(PlainCollection):
    """A native collection that can hold restriction markers (see the module docstring)."""

    def with_options(self, **options: Any) -> MarkedCollection:
        """The same collection with other read/write options."""
        return MarkedCollection(self._database, self._inner.with_options(**options))

    def _rules(self, *, write: bool) -> Visibility:
        # under a consent basis a native document is visible only with the consent of every
        # subject it carries (``core.rights.spread``); one never marked is proven by nobody
        runtime = self._database.client.runtime
        return runtime.restriction(write=write)  # type: ignore[no-any-return]

    def _call(self, name: str, bound: inspect.BoundArguments) -> Any:
        return getattr(self._inner, name)(*bound.args[1:], **bound.kwargs)

    def _bind(self, name: str, args: Any, kwargs: Any) -> inspect.BoundArguments:
        return _SIGNATURES[name].bind(self, *args, **kwargs)

    def _read(self, name: str, args: Any, kwargs: Any) -> Any:
        bound = self._bind(name, args, kwargs)
        named = bound.arguments
        named["filter"] = _filtered(named.get("filter"), self._rules(write=False).visible)
        if name in ("find", "find_one", "find_raw_batches"):
            named["projection"] = _hidden(named.get("projection"))
        return self._call(name, bound)

    def find(self, *args: Any, **kwargs: Any) -> Any:
        """A native cursor over the documents visible under the operation's purpose.

        Its ``collection`` is this collection, so what counts on it sees the same documents.
        """
        return _owned(self._read("find", args, kwargs), self)

    def find_one(self, *args: Any, **kwargs: Any) -> Any:
        """The first visible document (``None`` for a restricted one)."""
        return self._read("find_one", args, kwargs)

    def count_documents(self, *args: Any, **kwargs: Any) -> Any:
        """The visible documents matching the filter."""
        return self._read("count_documents", args, kwargs)

    def distinct(self, *args: Any, **kwargs: Any) -> Any:
        """The distinct values of the visible documents."""
        return self._read("distinct", args, kwargs)

    def estimated_document_count(self, *args: Any, **kwargs: Any) -> Any:
        """Counted, not estimated, while a clause applies.

        The server's estimate would count the documents the clause leaves out.
        """
        visible = self._rules(write=False).visible
        if visible is None:
            return self._inner.estimated_document_count(*args, **kwargs)
        named = self._bind("estimated_document_count", args, kwargs).arguments
        options = dict(named.get("kwargs") or {})
        if named.get("comment") is not None:
            options["comment"] = named["comment"]
        return self._inner.count_documents(dict(visible), **options)

    def find_raw_batches(self, *args: Any, **kwargs: Any) -> Any:
        """Raw BSON batches of the visible documents, without the marker."""
        return self._read("find_raw_batches", args, kwargs)

    def aggregate_raw_batches(
        self, pipeline: Sequence[Mapping[str, Any]], *args: Any, **kwargs: Any
    ) -> Any:
        """Raw BSON batches of the pipeline over the visible documents, without the marker."""
        return self._inner.aggregate_raw_batches(self._visible(pipeline), *args, **kwargs)

    def aggregate(self, pipeline: Sequence[Mapping[str, Any]], *args: Any, **kwargs: Any) -> Any:
        """The pipeline over the visible documents, the marker left out of its output."""
        return super().aggregate(self._visible(pipeline), *args, **kwargs)

    def _visible(self, pipeline: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        visible = self._rules(write=False).visible
        stages = [dict(s) for s in pipeline]
        if visible is not None:
            at = 1 if stages and next(iter(stages[0]), "") in _FIRST_ONLY else 0
            stages.insert(at, {"$match": dict(visible)})
        end = len(stages) - 1 if stages and next(iter(stages[-1]), "") in _LAST else len(stages)
        stages.insert(end, {"$project": {RESTRICTION_FIELD: 0}})
        return stages

    def _write(self, name: str, args: Any, kwargs: Any) -> Any:
        bound = self._bind(name, args, kwargs)
        named = bound.arguments
        change = _CHANGE.get(name)
        if change is not None:
            refuse_marker(self._inner.name, named.get(change))
        rules = self._rules(write=True)
        target = named.get("filter")
        named["filter"] = _filtered(target, rules.visible)
        if not name.startswith("find_one_and_"):
            return self._guarded(target, rules, lambda: self._call(name, bound))
        # the document returned loses the marker here, not by a projection: FerretDB 1.24
        # takes none in findAndModify
        return self._guarded(target, rules, lambda: _stripped(self._call(name, bound)))

    def _guarded(self, target: Any, rules: Visibility, call: Callable[[], Any]) -> Any:
        """Run ``call`` unless a document ``target`` selects is restricted (one probe first)."""
        if rules.guard is None:
            return call()
        projection = {"_id": 0, f"{RESTRICTION_FIELD}.{SUBJECTS}": 1}
        probe = self._inner.find_one(
            conjoined(_filtered(target, None) or {}, rules.guard), projection
        )
        if inspect.isawaitable(probe):

            async def then() -> Any:
                self._refuse(await probe, rules)
                return await call()

            return then()
        self._refuse(probe, rules)
        return call()

    def _refuse(self, found: Any, rules: Visibility) -> None:
        if found is None:
            return
        marker = found.get(RESTRICTION_FIELD) or {}
        subjects = [s for s in marker.get(SUBJECTS) or () if isinstance(s, str)]
        raise restricted_error(self._inner.name, rules.purpose, subjects)

    def update_one(self, *args: Any, **kwargs: Any) -> Any:
        """Refused if it would change a restricted document; objecting subjects left out."""
        return self._write("update_one", args, kwargs)

    def update_many(self, *args: Any, **kwargs: Any) -> Any:
        """As ``update_one``, over every matching document."""
        return self._write("update_many", args, kwargs)

    def replace_one(self, *args: Any, **kwargs: Any) -> Any:
        """As ``update_one``; a replacement naming the marker is refused."""
        return self._write("replace_one", args, kwargs)

    def delete_one(self, *args: Any, **kwargs: Any) -> Any:
        """Refused if it would delete a restricted document."""
        return self._write("delete_one", args, kwargs)

    def delete_many(self, *args: Any, **kwargs: Any) -> Any:
        """As ``delete_one``, over every matching document."""
        return self._write("delete_many", args, kwargs)

    def find_one_and_update(self, *args: Any, **kwargs: Any) -> Any:
        """As ``update_one``; the document returned never shows the marker."""
        return self._write("find_one_and_update", args, kwargs)

    def find_one_and_replace(self, *args: Any, **kwargs: Any) -> Any:
        """As ``replace_one``; the document returned never shows the marker."""
        return self._write("find_one_and_replace", args, kwargs)

    def find_one_and_delete(self, *args: Any, **kwargs: Any) -> Any:
        """As ``delete_one``; the document returned never shows the marker."""
        return self._write("find_one_and_delete", args, kwargs)

    def insert_one(self, document: Any, *args: Any, **kwargs: Any) -> Any:
        """A native insert; a document naming the marker is refused."""
        refuse_marker(self._inner.name, document)
        return self._inner.insert_one(document, *args, **kwargs)

    def insert_many(self, documents: Any, *args: Any, **kwargs: Any) -> Any:
        """A native insert; a document naming the marker is refused."""
        documents = list(documents)
        for document in documents:
            refuse_marker(self._inner.name, document)
        return self._inner.insert_many(documents, *args, **kwargs)

    def bulk_write(self, requests: Any, *args: Any, **kwargs: Any) -> Any:
        """A native bulk write, refused as a whole before anything is written.

        Refused when a request names the marker, or would change a restricted document (one
        probe over every request's filter).
        """
        requests = list(requests)
        filters = []
        for request in requests:
            refuse_marker(self._inner.name, getattr(request, "_doc", None))
            target = getattr(request, "_filter", None)
            if target is not None:
                filters.append(_filtered(target, None) or {})
        rules = self._rules(write=True)
        target = {"$or": filters} if filters else None

        def call() -> Any:
            return self._inner.bulk_write(requests, *args, **kwargs)

        return self._guarded(target, rules, call) if target is not None else call()

    def __repr__(self) -> str:
        return f"MarkedCollection({self._inner.full_name!r})"
