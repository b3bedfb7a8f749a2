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

import copy
import inspect
from collections.abc import Callable, Generator, Mapping, MutableMapping, Sequence
from functools import partial
from typing import Any

from bson import ObjectId
from pymongo import InsertOne, ReplaceOne, UpdateMany, UpdateOne
from pymongo.collection import Collection

from privata_mongo.core.ops import Steps
from privata_mongo.core.rights.datamap import Source
from privata_mongo.core.rights.restriction import (
    RESTRICTION_FIELD,
    Visibility,
    conjoined,
    refuse_marker,
    restricted_error,
    written_names,
)
from privata_mongo.core.rights.spread import (
    MARKER_KEYS,
    SUBJECTS,
    StoredMarkers,
    inherited,
    marker_update,
)
from privata_mongo.core.schema import PSEUDONYM_FIELD
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


def _drive(steps: Generator[Any, Any, Any]) -> Any:
    """Run ``steps``, each value it yields being a call's result or (async) its awaitable.

    A sync collection's calls return their results, so the steps run to the end here; the
    first awaitable switches to a coroutine that awaits it and every later one, which is what
    the async collection's method returns (as pymongo's async methods do).
    """
    try:
        value = next(steps)
        while not inspect.isawaitable(value):
            value = steps.send(value)
    except StopIteration as done:
        return done.value

    async def rest(pending: Any) -> Any:
        try:
            while True:
                pending = steps.send(await pending if inspect.isawaitable(pending) else pending)
        except StopIteration as done:
            return done.value

    return rest(value)


def _rows(cursor: Any) -> Any:
    """Every document of a cursor: a list, or (async cursor) an awaitable of one."""
    return cursor.to_list(None) if hasattr(cursor, "__aiter__") else list(cursor)


def _request(request: Any, clause: Mapping[str, Any] | None, marker: Mapping[str, Any]) -> Any:
    """A copy of a bulk request: its filter restricted by ``clause``, its document marked."""
    if clause is None and not marker:
        return request
    made = copy.copy(request)
    if getattr(made, "_filter", None) is not None:
        made._filter = _filtered(made._filter, clause)
    if marker:
        made._doc = _with_marker(made._doc, marker, insert=isinstance(made, InsertOne))
    return made


def _with_marker(document: Any, marker: Mapping[str, Any], *, insert: bool = False) -> Any:
    """``document`` carrying ``marker`` (a copy); an inserted one gives the caller its ``_id``.

    pymongo gives an inserted document without ``_id`` a new ``ObjectId`` in place; the copy
    written must have the same one. A replacement keeps the ``_id`` it replaces.
    """
    if not marker:
        return document
    if insert and isinstance(document, MutableMapping) and "_id" not in document:
        document["_id"] = ObjectId()
    return {**document, RESTRICTION_FIELD: dict(marker)}


class MarkedCollection(PlainCollection):
    """A native collection that can hold restriction markers (see the module docstring)."""

    def __init__(self, database: Any, inner: Any, sources: Sequence[Source] = ()) -> None:
        super().__init__(database, inner)
        self._sources = tuple(sources)

    def with_options(self, **options: Any) -> MarkedCollection:
        """The same collection with other read/write options."""
        return MarkedCollection(self._database, self._inner.with_options(**options), self._sources)

    def _inherit(self, documents: Sequence[Any]) -> Generator[Any, Any, list[dict[str, Any]]]:
        """The marker each document about to be written inherits (``spread.inherited``)."""
        if not self._sources or not documents:
            return [{} for _ in documents]
        steps = Steps(inherited(self._sources, [dict(d) for d in documents]))
        request: Any = steps.advance()
        projection = {"_id": 1, PSEUDONYM_FIELD: 1, RESTRICTION_FIELD: 1}
        while isinstance(request, StoredMarkers):
            raw = self._database.inner[request.collection]
            rows = yield _rows(raw.find({"_id": {"$in": list(request.ids)}}, projection))
            request = steps.advance(rows)
        return steps.value

    def _touches(self, update: Any) -> bool:
        """Whether ``update`` writes a reference the documents inherit their marker along."""
        roots = {s.field.split(".", 1)[0] for s in self._sources}
        return any(str(n).split(".", 1)[0] in roots for n in written_names(update))

    def _ids(self, target: Any, *, one: bool) -> Generator[Any, Any, list[Any]]:
        cursor = self._inner.find(_filtered(target, None) or {}, {"_id": 1})
        if one:
            cursor = cursor.limit(1)
        rows = yield _rows(cursor)
        return [row["_id"] for row in rows]

    def _remark(self, ids: Sequence[Any]) -> Generator[Any, Any, None]:
        """Write again the markers ``ids`` inherit, after a write changed their references."""
        if not ids:
            return
        fields = {s.field: 1 for s in self._sources}
        rows = yield _rows(
            self._inner.find({"_id": {"$in": list(ids)}}, {**fields, RESTRICTION_FIELD: 1})
        )
        markers = yield from self._inherit(rows)
        groups: dict[str, tuple[dict[str, Any], list[Any]]] = {}
        for row, marker in zip(rows, markers, strict=True):
            stored = row.get(RESTRICTION_FIELD) or {}
            if {k: v for k, v in stored.items() if k in MARKER_KEYS} == marker:
                continue
            groups.setdefault(repr(sorted(marker.items())), (marker, []))[1].append(row["_id"])
        for marker, members in groups.values():
            yield self._inner.update_many({"_id": {"$in": members}}, marker_update(marker))

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
        stages = self._database.restricted(self._visible(pipeline))
        return self._inner.aggregate_raw_batches(stages, *args, **kwargs)

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
        returned = name.startswith("find_one_and_")
        if change is not None and self._sources:
            write = self._inheriting(name, bound, change, target)
        else:
            write = partial(self._call, name, bound)
        if not returned:
            return self._guarded(target, rules, write)
        # the document returned loses the marker here, not by a projection: FerretDB 1.24
        # takes none in findAndModify
        return self._guarded(target, rules, lambda: _stripped(write()))

    def _inheriting(
        self, name: str, bound: inspect.BoundArguments, change: str, target: Any
    ) -> Callable[[], Any]:
        """The write ``name``, its documents carrying the markers they inherit.

        A replacement carries the marker of what it references (the stored one would be lost
        with the document it replaces). An update writing a reference, or an upsert, reads the
        ids it will change first and writes their markers again once it is done.
        """
        named = bound.arguments
        one = name != "update_many"
        upsert = bool(named.get("upsert"))

        def steps() -> Generator[Any, Any, Any]:
            if change == "replacement":
                (marker,) = yield from self._inherit([named[change]])
                named[change] = _with_marker(named[change], marker)
                return (yield self._call(name, bound))
            if not (upsert or self._touches(named.get(change))):
                return (yield self._call(name, bound))
            before = yield from self._ids(target, one=one)
            result = yield self._call(name, bound)
            after: list[Any] = []
            if upsert:  # the document inserted matches the filter it was made from
                after = yield from self._ids(target, one=one)
            yield from self._remark([*before, *(i for i in after if i not in before)])
            return result

        return lambda: _drive(steps())

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
        """A native insert of a document carrying the marker it inherits.

        A document naming the marker is refused.
        """
        refuse_marker(self._inner.name, document)

        def steps() -> Generator[Any, Any, Any]:
            (marker,) = yield from self._inherit([document])
            return (
                yield self._inner.insert_one(
                    _with_marker(document, marker, insert=True), *args, **kwargs
                )
            )

        return _drive(steps())

    def insert_many(self, documents: Any, *args: Any, **kwargs: Any) -> Any:
        """A native insert of documents carrying the markers they inherit.

        One read per referenced collection for all the documents; a document naming the
        marker is refused.
        """
        documents = list(documents)
        for document in documents:
            refuse_marker(self._inner.name, document)

        def steps() -> Generator[Any, Any, Any]:
            markers = yield from self._inherit(documents)
            written = [
                _with_marker(d, m, insert=True) for d, m in zip(documents, markers, strict=True)
            ]
            return (yield self._inner.insert_many(written, *args, **kwargs))

        return _drive(steps())

    def bulk_write(self, requests: Any, *args: Any, **kwargs: Any) -> Any:
        """A native bulk write, refused as a whole before anything is written.

        Refused when a request names the marker, or would change a restricted document (one
        probe over every request's filter). Each filter selects only the documents the
        operation's purpose may change, as a single write's does; inserted and replacing
        documents carry the markers they inherit, and the documents an update re-references
        (or an upsert makes) get theirs written again after the bulk write.
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

        def steps() -> Generator[Any, Any, Any]:
            documents = [r for r in requests if isinstance(r, InsertOne | ReplaceOne)]
            markers = yield from self._inherit([r._doc for r in documents])
            inherit = {id(r): m for r, m in zip(documents, markers, strict=True)}
            updates = [
                r
                for r in requests
                if isinstance(r, UpdateOne | UpdateMany) and (r._upsert or self._touches(r._doc))
            ]
            before: list[Any] = []
            for update in updates:
                before += yield from self._ids(update._filter, one=isinstance(update, UpdateOne))
            written = [_request(r, rules.visible, inherit.get(id(r), {})) for r in requests]
            result = yield self._inner.bulk_write(written, *args, **kwargs)
            if updates:
                upserted = list((getattr(result, "upserted_ids", None) or {}).values())
                yield from self._remark([*before, *(i for i in upserted if i not in before)])
            return result

        def call() -> Any:
            return _drive(steps())

        return self._guarded(target, rules, call) if target is not None else call()

    def __repr__(self) -> str:
        return f"MarkedCollection({self._inner.full_name!r})"
