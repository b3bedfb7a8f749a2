"""Internal. pymongo's collection methods, each planned once as a core flow, for both twins.

Every method here has the signature of pymongo's own ``Collection`` method and turns one call
into a ``Planned``: the core flow to run, and how its result becomes pymongo's result type. The
sync ``PrivateCollection`` runs the flow with ``drivers.sync``, the async one awaits
``drivers.aio``; neither holds any logic of its own, so pymongo's surface is written out once,
here, and the twins are a line per method. Options the core does not interpret (``session``,
``comment``, ``hint`` …) travel unchanged to the store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bson.son import SON
from pymongo import ReturnDocument
from pymongo.errors import InvalidOperation
from pymongo.results import (
    BulkWriteResult,
    DeleteResult,
    InsertManyResult,
    InsertOneResult,
    UpdateResult,
)

from privata_mongo.core.audit.wrapper import AuditSpec, audited
from privata_mongo.core.flows import admin, aggregate, bulk, modify, read, write
from privata_mongo.core.flows.common import resolve
from privata_mongo.core.flows.context import Context
from privata_mongo.core.ops import Document, Explain, Flow, Query, UpdateOutcome
from privata_mongo.core.plan import identity_references, plan_filter
from privata_mongo.core.schema import ModelSchema, Side
from privata_mongo.proxy.cursor import index_list
from privata_mongo.proxy.errors import bulk_counts
from privata_mongo.runtime import Runtime

__all__ = ["Planned", "Planner", "list_index_documents", "options_of"]

R = TypeVar("R")


def options_of(**named: Any) -> dict[str, Any]:
    """Keyword options the application passed, without the ones left at their default."""
    return {k: v for k, v in named.items() if v is not None}


@dataclass(frozen=True, slots=True)
class Planned(Generic[R]):
    """One pymongo call as a flow, and how to turn the flow's result into pymongo's.

    Attributes:
        flow: the core flow to run.
        finish: shapes the flow's result (an ``UpdateOutcome`` …) into pymongo's type.
        link: the clinical link index must exist first (the call may insert documents).
        unlink: the call drops the collection, link index included.
        single: a failed one-document insert is a ``WriteError``, as ``insert_one`` raises.
        documents: for ``insert_many``, what ``BulkWriteError`` may show of each document.
    """

    flow: Flow[Any]
    finish: Callable[[Any], R]
    link: bool = False
    unlink: bool = False
    single: bool = True
    documents: Sequence[Mapping[str, Any]] | None = None


class _BulkRecorder:
    """Receives pymongo's request objects (``InsertOne`` …) through their own ``_add_to_bulk``."""

    def __init__(self, new_id: Callable[[], Any]) -> None:
        self.requests: list[bulk.BulkRequest] = []
        self._new_id = new_id

    def add_insert(self, document: MutableMapping[str, Any]) -> None:
        if "_id" not in document:
            document["_id"] = self._new_id()
        self.requests.append(bulk.BulkInsert(document))

    def add_update(
        self,
        selector: Mapping[str, Any],
        update: Any,
        multi: bool,
        upsert: bool,
        collation: Any = None,
        array_filters: Any = None,
        hint: Any = None,
        sort: Any = None,
    ) -> None:
        options = options_of(collation=collation, array_filters=array_filters, hint=hint)
        self.requests.append(
            bulk.BulkUpdate(selector, update, multi, bool(upsert), options, _sort(sort))
        )

    def add_replace(
        self,
        selector: Mapping[str, Any],
        replacement: Mapping[str, Any],
        upsert: bool,
        collation: Any = None,
        hint: Any = None,
        sort: Any = None,
    ) -> None:
        options = options_of(collation=collation, hint=hint)
        self.requests.append(
            bulk.BulkReplace(selector, replacement, bool(upsert), options, _sort(sort))
        )

    def add_delete(
        self, selector: Mapping[str, Any], limit: int, collation: Any = None, hint: Any = None
    ) -> None:
        options = options_of(collation=collation, hint=hint)
        self.requests.append(bulk.BulkDelete(selector, limit == 0, options))


def _same(value: Any) -> Any:
    return value


def _sort(sort: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(index_list(sort)) if sort is not None else ()


def _projection(projection: Any) -> Mapping[str, Any] | None:
    if projection is None or isinstance(projection, Mapping):
        return projection
    return dict.fromkeys(projection, 1)


def list_index_documents(information: Mapping[str, Any]) -> list[Document]:
    """``list_indexes`` documents from ``index_information``."""
    out: list[Document] = []
    for name, info in information.items():
        document = SON([("v", info.get("v", 2)), ("key", SON(info["key"])), ("name", name)])
        document.update({k: v for k, v in info.items() if k not in ("v", "key")})
        out.append(document)
    return out


class Planner:
    """The planned form of every pymongo collection method a split collection serves.

    Args:
        runtime: the connection's runtime (settings, keys, clock, ids).
        schema: the collection's privacy schema as of now (it follows ``configure``).
        split: the split collections among the names a pipeline joins.
        acknowledged: whether writes are acknowledged (the real write concern's answer).
        mongomock_style: shape synthesised replies as mongomock shapes its own.
    """

    def __init__(
        self,
        runtime: Runtime,
        schema: Callable[[], ModelSchema],
        split: Callable[[Sequence[Mapping[str, Any]]], frozenset[str]],
        acknowledged: bool,
        mongomock_style: bool,
    ) -> None:
        self._runtime = runtime
        self._schema = schema
        self._split = split
        self._acknowledged = acknowledged
        self._mongomock_style = mongomock_style

    def context(self) -> Context:
        """The flow context of an operation starting now."""
        return self._runtime.context(self._schema())

    def _audited(
        self, ctx: Context, operation: str, build: Callable[[Context], Flow[R]], *requests: Any
    ) -> Flow[R]:
        """The flow ``build`` makes, with its audit (see ``core.audit.wrapper``) unless it is off.

        ``requests`` are what the application sent (filter, update, pipeline …): the identity
        fields they name are recorded (names only).
        """
        settings = self._runtime.settings()
        if not settings.audit:
            return build(ctx)
        names = frozenset().union(*(identity_references(ctx.schema, r) for r in requests))
        audit = AuditSpec(operation, names, max_subjects=settings.audit_max_subjects)
        return audited(ctx, build, audit)

    # -- reads -------------------------------------------------------------------------------

    def find(self, query: Query) -> Flow[None]:
        """The streaming flow of a cursor."""
        ctx = self.context()
        return self._audited(
            ctx, "read", lambda c: read.find(c, query), query.filter, dict(query.sort)
        )

    def explain(self, query: Query) -> Planned[Document]:
        """The server's plan for the clinical part of a find."""
        ctx = self.context()

        def flow() -> Flow[Document]:
            clinical = yield from resolve(ctx, plan_filter(ctx.schema, query.filter))
            plan = yield from Explain(Side.CLINICAL, Query(clinical, sort=query.sort))
            return plan

        return Planned(flow(), _same)

    def aggregate(
        self,
        /,
        pipeline: Sequence[Mapping[str, Any]],
        session: Any = None,
        let: Any = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> Flow[None]:
        """The streaming flow of an aggregation (split collections it joins are read joined)."""
        ctx = self.context()
        options = {**options_of(session=session, let=let, comment=comment), **kwargs}
        options.pop("cursor", None)  # pymongo accepts and ignores the legacy cursor={} option
        stages, split = list(pipeline), self._split(pipeline)
        return self._audited(
            ctx, "aggregate", lambda c: aggregate.aggregate(c, stages, options, split), stages
        )

    def count_documents(
        self, /, filter: Mapping[str, Any], session: Any = None, comment: Any = None, **kwargs: Any
    ) -> Planned[int]:
        """``count_documents``."""
        ctx = self.context()
        options = {**options_of(session=session, comment=comment), **kwargs}
        flow = self._audited(ctx, "count", lambda c: read.count(c, filter, options), filter)
        return Planned(flow, int)

    def estimated_document_count(self, /, comment: Any = None, **kwargs: Any) -> Planned[int]:
        """``estimated_document_count``."""
        ctx = self.context()
        options = {**options_of(comment=comment), **kwargs}
        flow = self._audited(ctx, "count", lambda c: read.estimated_count(c, options))
        return Planned(flow, int)

    def distinct(
        self,
        /,
        key: str,
        filter: Mapping[str, Any] | None = None,
        session: Any = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> Planned[list[Any]]:
        """``distinct``."""
        ctx = self.context()
        options = {**options_of(session=session, comment=comment), **kwargs}
        flow = self._audited(
            ctx, "distinct", lambda c: read.distinct(c, key, filter, options), filter, {key: 1}
        )
        return Planned(flow, list)

    # -- writes ------------------------------------------------------------------------------

    def insert_one(
        self,
        document: Any,
        bypass_document_validation: bool | None = None,
        session: Any = None,
        comment: Any = None,
    ) -> Planned[InsertOneResult]:
        """``insert_one``; like pymongo, an ``_id`` is added to the caller's mapping."""
        if not isinstance(document, MutableMapping):
            raise TypeError(
                "document must be an instance of dict, bson.son.SON, "
                "bson.raw_bson.RawBSONDocument, or a type that inherits from "
                "collections.MutableMapping"
            )
        ctx = self.context()
        if "_id" not in document:
            document["_id"] = ctx.new_object_id()
        flow = self._audited(
            ctx, "create", lambda c: write.insert(c, [document], ordered=True), dict(document)
        )
        return Planned(
            flow, lambda _: InsertOneResult(document["_id"], self._acknowledged), link=True
        )

    def insert_many(
        self,
        documents: Sequence[Any],
        ordered: bool = True,
        bypass_document_validation: bool | None = None,
        session: Any = None,
        comment: Any = None,
    ) -> Planned[InsertManyResult]:
        """``insert_many``: each document is written whole (both halves) or not at all."""
        if isinstance(documents, Mapping) or not documents:
            raise TypeError("documents must be a non-empty list")
        ctx = self.context()
        for document in documents:
            if "_id" not in document:
                document["_id"] = ctx.new_object_id()
        ids = [d["_id"] for d in documents]
        schema = ctx.schema
        visible = [
            {k: v for k, v in d.items() if schema.side_of(k) is Side.CLINICAL} for d in documents
        ]
        batch = list(documents)
        return Planned(
            self._audited(
                ctx, "create", lambda c: write.insert(c, batch, ordered), *map(dict, documents)
            ),
            lambda _: InsertManyResult(ids, self._acknowledged),
            link=True,
            single=False,
            documents=visible,
        )

    def _update(
        self,
        filter: Mapping[str, Any],
        update: Any,
        multi: bool,
        upsert: bool,
        options: dict[str, Any],
        sort: Any = None,
    ) -> Planned[UpdateResult]:
        ctx, order = self.context(), _sort(sort)
        flow = self._audited(
            ctx,
            "update",
            lambda c: write.update(c, filter, update, multi, upsert, options, order),
            filter,
            update,
        )
        return Planned(flow, self._update_result, link=upsert)

    def update_one(
        self,
        filter: Mapping[str, Any],
        update: Any,
        upsert: bool = False,
        bypass_document_validation: bool | None = None,
        collation: Any = None,
        array_filters: Any = None,
        hint: Any = None,
        session: Any = None,
        let: Any = None,
        comment: Any = None,
        sort: Any = None,
    ) -> Planned[UpdateResult]:
        """``update_one``: the first matching document (by ``sort`` when given)."""
        options = options_of(
            collation=collation,
            array_filters=array_filters,
            hint=hint,
            session=session,
            let=let,
            comment=comment,
        )
        return self._update(filter, update, False, upsert, options, sort)

    def update_many(
        self,
        filter: Mapping[str, Any],
        update: Any,
        upsert: bool = False,
        array_filters: Any = None,
        bypass_document_validation: bool | None = None,
        collation: Any = None,
        hint: Any = None,
        session: Any = None,
        let: Any = None,
        comment: Any = None,
    ) -> Planned[UpdateResult]:
        """``update_many``."""
        options = options_of(
            collation=collation,
            array_filters=array_filters,
            hint=hint,
            session=session,
            let=let,
            comment=comment,
        )
        return self._update(filter, update, True, upsert, options)

    def replace_one(
        self,
        filter: Mapping[str, Any],
        replacement: Mapping[str, Any],
        upsert: bool = False,
        bypass_document_validation: bool | None = None,
        collation: Any = None,
        hint: Any = None,
        session: Any = None,
        let: Any = None,
        comment: Any = None,
        sort: Any = None,
    ) -> Planned[UpdateResult]:
        """``replace_one``, keeping the replaced document's pseudonym."""
        ctx = self.context()
        options = options_of(
            collation=collation, hint=hint, session=session, let=let, comment=comment
        )
        order = _sort(sort)
        flow = self._audited(
            ctx,
            "update",
            lambda c: write.replace_one(c, filter, replacement, upsert, options, order),
            filter,
            replacement,
        )
        return Planned(flow, self._update_result, link=upsert)

    def _delete(
        self, filter: Mapping[str, Any], multi: bool, options: dict[str, Any]
    ) -> Planned[DeleteResult]:
        ctx = self.context()
        return Planned(
            self._audited(ctx, "delete", lambda c: write.delete(c, filter, multi, options), filter),
            lambda n: DeleteResult({"n": n, "ok": 1.0}, self._acknowledged),
        )

    def delete_one(
        self,
        filter: Mapping[str, Any],
        collation: Any = None,
        hint: Any = None,
        session: Any = None,
        let: Any = None,
        comment: Any = None,
    ) -> Planned[DeleteResult]:
        """``delete_one`` (identity row first)."""
        options = options_of(
            collation=collation, hint=hint, session=session, let=let, comment=comment
        )
        return self._delete(filter, False, options)

    def delete_many(
        self,
        filter: Mapping[str, Any],
        collation: Any = None,
        hint: Any = None,
        session: Any = None,
        let: Any = None,
        comment: Any = None,
    ) -> Planned[DeleteResult]:
        """``delete_many`` (identity rows first)."""
        options = options_of(
            collation=collation, hint=hint, session=session, let=let, comment=comment
        )
        return self._delete(filter, True, options)

    def _update_result(self, outcome: UpdateOutcome) -> UpdateResult:
        return UpdateResult(self._raw_result(outcome), self._acknowledged)

    def _raw_result(self, outcome: UpdateOutcome) -> dict[str, Any]:
        """The server's reply when one operation made it; else one shaped as this backend's."""
        if outcome.raw is not None:
            return dict(outcome.raw)
        upserted = outcome.upserted_id is not None
        raw: dict[str, Any] = {
            "n": 1 if upserted else outcome.matched,
            "nModified": outcome.modified,
            "ok": 1.0,
            "updatedExisting": outcome.matched > 0,
        }
        if upserted:
            raw["upserted"] = outcome.upserted_id
        if self._mongomock_style:
            # mongomock's reply carries these too; matching it keeps full_result native there.
            raw.update(err=None, ok=1, upserted=outcome.upserted_id)
        return raw

    def bulk_write(
        self,
        requests: Sequence[Any],
        ordered: bool = True,
        bypass_document_validation: bool | None = None,
        session: Any = None,
        comment: Any = None,
        let: Any = None,
    ) -> Planned[BulkWriteResult]:
        """``bulk_write``: each request runs through its own method's flow."""
        ctx = self.context()
        recorder = _BulkRecorder(ctx.new_object_id)
        for request in requests:
            adder = getattr(request, "_add_to_bulk", None)
            if adder is None:
                raise TypeError(f"{request!r} is not a valid request")
            adder(recorder)
        if not recorder.requests:
            raise InvalidOperation("No operations to execute")
        return Planned(
            self._audited(ctx, "bulk_write", lambda c: bulk.bulk(c, recorder.requests, ordered)),
            lambda outcome: BulkWriteResult(
                {**bulk_counts(outcome), "writeErrors": [], "writeConcernErrors": []},
                self._acknowledged,
            ),
            link=True,
        )

    # -- find-and-modify ---------------------------------------------------------------------

    def find_one_and_update(
        self,
        /,
        filter: Mapping[str, Any],
        update: Any,
        projection: Any = None,
        sort: Any = None,
        upsert: bool = False,
        return_document: bool = ReturnDocument.BEFORE,
        array_filters: Any = None,
        hint: Any = None,
        session: Any = None,
        let: Any = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> Planned[Document | None]:
        """``find_one_and_update``: the document as it was (or is, ``ReturnDocument.AFTER``)."""
        ctx = self.context()
        options = {
            **options_of(
                array_filters=array_filters, hint=hint, session=session, let=let, comment=comment
            ),
            **kwargs,
        }
        order, shown, new = _sort(sort), _projection(projection), bool(return_document)
        flow = self._audited(
            ctx,
            "update",
            lambda c: modify.find_one_and_update(
                c, filter, update, order, upsert, new, shown, options
            ),
            filter,
            update,
        )
        return Planned(flow, _same, link=upsert)

    def find_one_and_replace(
        self,
        /,
        filter: Mapping[str, Any],
        replacement: Mapping[str, Any],
        projection: Any = None,
        sort: Any = None,
        upsert: bool = False,
        return_document: bool = ReturnDocument.BEFORE,
        hint: Any = None,
        session: Any = None,
        let: Any = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> Planned[Document | None]:
        """``find_one_and_replace``, keeping the pseudonym; the document before or after."""
        ctx = self.context()
        options = {**options_of(hint=hint, session=session, let=let, comment=comment), **kwargs}
        order, shown, new = _sort(sort), _projection(projection), bool(return_document)
        flow = self._audited(
            ctx,
            "update",
            lambda c: modify.find_one_and_replace(
                c, filter, replacement, order, upsert, new, shown, options
            ),
            filter,
            replacement,
        )
        return Planned(flow, _same, link=upsert)

    def find_one_and_delete(
        self,
        /,
        filter: Mapping[str, Any],
        projection: Any = None,
        sort: Any = None,
        hint: Any = None,
        session: Any = None,
        let: Any = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> Planned[Document | None]:
        """``find_one_and_delete``: the document as it was."""
        ctx = self.context()
        options = {**options_of(hint=hint, session=session, let=let, comment=comment), **kwargs}
        order, shown = _sort(sort), _projection(projection)
        flow = self._audited(
            ctx,
            "delete",
            lambda c: modify.find_one_and_delete(c, filter, order, shown, options),
            filter,
        )
        return Planned(flow, _same)

    # -- indexes and the collection itself ----------------------------------------------------

    def ensure_link(self) -> Planned[None]:
        """The clinical collection's internal index on the pseudonym link."""
        return Planned(admin.ensure_link_index(self.context()), _same)

    def create_index(
        self, /, keys: Any, session: Any = None, comment: Any = None, **kwargs: Any
    ) -> Planned[str]:
        """Create an index on the side that stores its fields."""
        options = {**options_of(session=session, comment=comment), **kwargs}
        flow = admin.create_index(self.context(), tuple(index_list(keys)), options)
        return Planned(flow, str, link=True)

    def create_indexes(
        self, /, indexes: Sequence[Any], session: Any = None, comment: Any = None, **kwargs: Any
    ) -> Planned[list[str]]:
        """Create several ``IndexModel`` indexes, each on the side that stores its fields."""
        ctx = self.context()
        common = {**options_of(session=session, comment=comment), **kwargs}

        def flow() -> Flow[list[str]]:
            names = []
            for model in indexes:
                document = dict(model.document)
                keys = tuple(document.pop("key").items())
                names.append((yield from admin.create_index(ctx, keys, {**document, **common})))
            return names

        return Planned(flow(), list, link=True)

    def index_information(
        self, session: Any = None, comment: Any = None
    ) -> Planned[dict[str, Any]]:
        """Indexes of both halves by name, as one collection would list them."""
        return Planned(admin.index_information(self.context()), dict)

    def list_indexes(self, session: Any = None, comment: Any = None) -> Planned[list[Document]]:
        """Index documents of both halves, as one collection would list them."""
        return Planned(admin.index_information(self.context()), list_index_documents)

    def drop_index(
        self, /, index_or_name: Any, session: Any = None, comment: Any = None, **kwargs: Any
    ) -> Planned[None]:
        """Drop an index by name or keys."""
        if isinstance(index_or_name, str):
            name = index_or_name
        else:
            name = admin.index_name(tuple(index_list(index_or_name)))
        return Planned(admin.drop_index(self.context(), name), _same)

    def drop_indexes(
        self, /, session: Any = None, comment: Any = None, **kwargs: Any
    ) -> Planned[None]:
        """Drop every application index of both halves."""
        return Planned(admin.drop_indexes(self.context()), _same)

    def drop(
        self, session: Any = None, comment: Any = None, encrypted_fields: Any = None
    ) -> Planned[None]:
        """Drop both halves (identity first)."""
        return Planned(admin.drop(self.context()), _same, unlink=True)
