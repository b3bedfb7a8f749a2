"""Internal. pymongo's collection methods, planned once for the sync and the async collection.

Each method turns one pymongo call into a core flow plus the function that shapes the flow's
result into pymongo's own result type. The sync ``PrivateCollection`` runs the flow with
``drivers.sync``, the async one awaits ``drivers.aio``; neither holds any logic of its own, so
the two twins stay thin enough to read side by side.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bson import ObjectId
from pymongo.errors import InvalidOperation
from pymongo.results import (
    BulkWriteResult,
    DeleteResult,
    InsertManyResult,
    InsertOneResult,
    UpdateResult,
)

from privata_mongo.adapters.clock import SystemClock
from privata_mongo.config import current
from privata_mongo.core.crypto.ring import KeyRing
from privata_mongo.core.flows import admin, aggregate, bulk, modify, read, write
from privata_mongo.core.flows.audited import AuditSpec, audited
from privata_mongo.core.flows.common import resolve
from privata_mongo.core.flows.context import Context
from privata_mongo.core.ops import Document, Explain, Flow, Query, UpdateOutcome
from privata_mongo.core.plan import identity_references, plan_filter
from privata_mongo.core.pseudonym import format_pseudonym
from privata_mongo.core.schema import ModelSchema, Side
from privata_mongo.proxy.cursor import index_list
from privata_mongo.proxy.errors import bulk_counts

__all__ = [
    "Operations",
    "Planned",
    "list_index_documents",
    "options_of",
    "split_targets",
]

R = TypeVar("R")
_CLOCK = SystemClock()


def options_of(**named: Any) -> dict[str, Any]:
    """Keyword options the application passed, without the ones left at their default."""
    return {k: v for k, v in named.items() if v is not None}


def context_for(schema: ModelSchema, crypto: KeyRing | None = None) -> Context:
    """The flow context of a collection: its schema and the process's sources of randomness."""
    settings = current()
    return Context(
        crypto=crypto,
        schema=schema,
        new_pseudonym=lambda: format_pseudonym(secrets.token_bytes(16)),
        new_revision=lambda: secrets.token_hex(8),
        new_object_id=ObjectId,
        now=_CLOCK.now,
        batch_size=settings.batch_size,
    )


@dataclass(frozen=True, slots=True)
class Planned(Generic[R]):
    """One pymongo call as a flow, and how to turn the flow's result into pymongo's.

    Attributes:
        flow: the core flow to run.
        finish: shapes the flow's result (an ``UpdateOutcome`` …) into pymongo's type.
        link: the clinical link index must exist first (the call may insert documents).
        single: a failed one-document insert is a ``WriteError``, as ``insert_one`` raises.
        documents: for ``insert_many``, what ``BulkWriteError`` may show of each document.
    """

    flow: Flow[Any]
    finish: Callable[[Any], R]
    link: bool = False
    single: bool = True
    documents: Sequence[Mapping[str, Any]] | None = None


class _BulkRecorder:
    """Receives pymongo's request objects (``InsertOne`` …) through their own ``_add_to_bulk``."""

    def __init__(self) -> None:
        self.requests: list[bulk.BulkRequest] = []

    def add_insert(self, document: MutableMapping[str, Any]) -> None:
        if "_id" not in document:
            document["_id"] = ObjectId()
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


class Operations:
    """The planned form of every pymongo collection method a split collection serves.

    Args:
        schema: the collection's privacy schema.
        acknowledged: whether writes are acknowledged (the real write concern's answer).
        mongomock_style: shape synthesised replies as mongomock shapes its own.
        crypto: the key ring sealing identity rows (``None`` when they are not encrypted).
    """

    def __init__(
        self,
        schema: ModelSchema,
        acknowledged: bool,
        mongomock_style: bool,
        crypto: KeyRing | None = None,
    ) -> None:
        self.schema = schema
        self.ctx = context_for(schema, crypto)
        self._acknowledged = acknowledged
        self._mongomock_style = mongomock_style

    def _audited(self, operation: str, flow: Flow[R], *requests: Any, **spec: Any) -> Flow[R]:
        """``flow`` with its audit (see ``core.flows.audited``), unless auditing is off.

        ``requests`` are what the application sent (filter, update, pipeline …): the identity
        fields they name are recorded (names only).
        """
        settings = current()
        if not settings.audit:
            return flow
        names = frozenset().union(*(identity_references(self.schema, r) for r in requests))
        audit = AuditSpec(operation, names, max_subjects=settings.audit_max_subjects, **spec)
        return audited(self.ctx, flow, audit)

    # -- reads -------------------------------------------------------------------------------

    def find(self, query: Query) -> Flow[None]:
        """The streaming flow of a cursor."""
        return self._audited("read", read.find(self.ctx, query), query.filter, dict(query.sort))

    def aggregate(
        self,
        pipeline: Sequence[Mapping[str, Any]],
        options: dict[str, Any],
        split: frozenset[str] = frozenset(),
    ) -> Flow[None]:
        """The streaming flow of an aggregation (``split``: the split collections it joins)."""
        options.pop("cursor", None)  # pymongo accepts and ignores the legacy cursor={} option
        flow = aggregate.aggregate(self.ctx, list(pipeline), options, split)
        return self._audited("aggregate", flow, list(pipeline))

    def count_documents(self, filter: Mapping[str, Any], options: dict[str, Any]) -> Planned[int]:
        """``count_documents``."""
        return Planned(self._audited("count", read.count(self.ctx, filter, options), filter), int)

    def estimated_document_count(self, options: dict[str, Any]) -> Planned[int]:
        """``estimated_document_count``."""
        return Planned(self._audited("count", read.estimated_count(self.ctx, options)), int)

    def distinct(
        self, key: str, filter: Mapping[str, Any] | None, options: dict[str, Any]
    ) -> Planned[list[Any]]:
        """``distinct``."""
        identity_key = self.schema.side_of(key) is Side.IDENTITY
        flow = self._audited(
            "distinct",
            read.distinct(self.ctx, key, filter, options),
            filter,
            {key: 1},
            scanned_are_subjects=identity_key,
        )
        return Planned(flow, list)

    def explain(self, query: Query) -> Planned[Document]:
        """The server's plan for the clinical part of a find."""

        def flow() -> Flow[Document]:
            clinical_filter = yield from resolve(self.ctx, plan_filter(self.schema, query.filter))
            plan: Document = yield from Explain(
                Side.CLINICAL, Query(clinical_filter, sort=query.sort)
            )
            return plan

        return Planned(flow(), _same)

    # -- writes ------------------------------------------------------------------------------

    def insert_one(self, document: Any) -> Planned[InsertOneResult]:
        """``insert_one``; like pymongo, an ``_id`` is added to the caller's mapping."""
        if not isinstance(document, MutableMapping):
            raise TypeError(
                "document must be an instance of dict, bson.son.SON, "
                "bson.raw_bson.RawBSONDocument, or a type that inherits from "
                "collections.MutableMapping"
            )
        if "_id" not in document:
            document["_id"] = ObjectId()
        flow = self._audited(
            "create", write.insert(self.ctx, [document], ordered=True), dict(document)
        )
        return Planned(
            flow, lambda _: InsertOneResult(document["_id"], self._acknowledged), link=True
        )

    def insert_many(self, documents: Sequence[Any], ordered: bool) -> Planned[InsertManyResult]:
        """``insert_many``: each document is written whole (both halves) or not at all."""
        if isinstance(documents, Mapping) or not documents:
            raise TypeError("documents must be a non-empty list")
        for document in documents:
            if "_id" not in document:
                document["_id"] = ObjectId()
        ids = [d["_id"] for d in documents]
        visible = [self._without_identity(d) for d in documents]
        return Planned(
            self._audited(
                "create", write.insert(self.ctx, list(documents), ordered), *map(dict, documents)
            ),
            lambda _: InsertManyResult(ids, self._acknowledged),
            link=True,
            single=False,
            documents=visible,
        )

    def _without_identity(self, document: Mapping[str, Any]) -> Document:
        return {k: v for k, v in document.items() if self.schema.side_of(k) is Side.CLINICAL}

    def update(
        self,
        filter: Mapping[str, Any],
        update: Any,
        multi: bool,
        upsert: bool,
        options: dict[str, Any],
        sort: Any = None,
    ) -> Planned[UpdateResult]:
        """``update_one`` / ``update_many``."""
        flow = self._audited(
            "update",
            write.update(self.ctx, filter, update, multi, upsert, options, _sort(sort)),
            filter,
            update,
        )
        return Planned(flow, self._update_result, link=upsert)

    def replace_one(
        self,
        filter: Mapping[str, Any],
        replacement: Mapping[str, Any],
        upsert: bool,
        options: dict[str, Any],
        sort: Any = None,
    ) -> Planned[UpdateResult]:
        """``replace_one``, keeping the replaced document's pseudonym."""
        flow = self._audited(
            "update",
            write.replace_one(self.ctx, filter, replacement, upsert, options, _sort(sort)),
            filter,
            replacement,
        )
        return Planned(flow, self._update_result, link=upsert)

    def delete(
        self, filter: Mapping[str, Any], multi: bool, options: dict[str, Any]
    ) -> Planned[DeleteResult]:
        """``delete_one`` / ``delete_many`` (identity rows first)."""
        return Planned(
            self._audited("delete", write.delete(self.ctx, filter, multi, options), filter),
            lambda n: DeleteResult({"n": n, "ok": 1.0}, self._acknowledged),
        )

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

    def bulk_write(self, requests: Sequence[Any], ordered: bool) -> Planned[BulkWriteResult]:
        """``bulk_write``: each request runs through its own method's flow."""
        recorder = _BulkRecorder()
        for request in requests:
            adder = getattr(request, "_add_to_bulk", None)
            if adder is None:
                raise TypeError(f"{request!r} is not a valid request")
            adder(recorder)
        if not recorder.requests:
            raise InvalidOperation("No operations to execute")
        return Planned(
            self._audited("bulk_write", bulk.bulk(self.ctx, recorder.requests, ordered)),
            lambda outcome: BulkWriteResult(
                {**bulk_counts(outcome), "writeErrors": [], "writeConcernErrors": []},
                self._acknowledged,
            ),
            link=True,
        )

    # -- find-and-modify ---------------------------------------------------------------------

    def find_one_and_update(
        self,
        filter: Mapping[str, Any],
        update: Any,
        projection: Any,
        sort: Any,
        upsert: bool,
        return_new: bool,
        options: dict[str, Any],
    ) -> Planned[Document | None]:
        """``find_one_and_update``."""
        flow = modify.find_one_and_update(
            self.ctx,
            filter,
            update,
            _sort(sort),
            upsert,
            return_new,
            _projection(projection),
            options,
        )
        return Planned(self._audited("update", flow, filter, update), _same, link=upsert)

    def find_one_and_replace(
        self,
        filter: Mapping[str, Any],
        replacement: Mapping[str, Any],
        projection: Any,
        sort: Any,
        upsert: bool,
        return_new: bool,
        options: dict[str, Any],
    ) -> Planned[Document | None]:
        """``find_one_and_replace``."""
        flow = modify.find_one_and_replace(
            self.ctx,
            filter,
            replacement,
            _sort(sort),
            upsert,
            return_new,
            _projection(projection),
            options,
        )
        return Planned(self._audited("update", flow, filter, replacement), _same, link=upsert)

    def find_one_and_delete(
        self, filter: Mapping[str, Any], projection: Any, sort: Any, options: dict[str, Any]
    ) -> Planned[Document | None]:
        """``find_one_and_delete``."""
        flow = modify.find_one_and_delete(
            self.ctx, filter, _sort(sort), _projection(projection), options
        )
        return Planned(self._audited("delete", flow, filter), _same)

    # -- indexes and the collection itself ----------------------------------------------------

    def ensure_link(self) -> Planned[None]:
        """The clinical collection's internal index on the pseudonym link."""
        return Planned(admin.ensure_link_index(self.ctx), _same)

    def create_index(self, keys: Any, options: dict[str, Any]) -> Planned[str]:
        """Create an index on the side that stores its fields."""
        flow = admin.create_index(self.ctx, tuple(index_list(keys)), options)
        return Planned(flow, str, link=True)

    def index_information(self) -> Planned[dict[str, Any]]:
        """Indexes of both halves by name."""
        return Planned(admin.index_information(self.ctx), dict)

    def drop_index(self, index_or_name: Any) -> Planned[None]:
        """Drop an index by name or keys."""
        if isinstance(index_or_name, str):
            name = index_or_name
        else:
            name = admin.index_name(tuple(index_list(index_or_name)))
        return Planned(admin.drop_index(self.ctx, name), _same)

    def drop_indexes(self) -> Planned[None]:
        """Drop every application index of both halves."""
        return Planned(admin.drop_indexes(self.ctx), _same)

    def drop(self) -> Planned[None]:
        """Drop both halves (identity first)."""
        return Planned(admin.drop(self.ctx), _same)


def list_index_documents(information: Mapping[str, Any]) -> list[Document]:
    """``list_indexes`` documents from ``index_information``."""
    from bson.son import SON

    out: list[Document] = []
    for name, info in information.items():
        document = SON([("v", info.get("v", 2)), ("key", SON(info["key"])), ("name", name)])
        document.update({k: v for k, v in info.items() if k not in ("v", "key")})
        out.append(document)
    return out


def split_targets(
    schema_of: Callable[[str], ModelSchema | None], pipeline: Sequence[Mapping[str, Any]]
) -> frozenset[str]:
    """The split collections a pipeline joins, which the server cannot join for it."""
    return frozenset(name for name in aggregate.split_joins(pipeline) if schema_of(name))
