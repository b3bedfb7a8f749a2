"""Collections as the ODMs see them: pymongo's ``Collection`` API.

``PrivateCollection`` fronts a split collection: each method runs one core flow through the
sync driver and answers with pymongo's own result and error types. ``PlainCollection`` fronts a
collection of a model without identity fields: it forwards to the real collection and only
keeps the proxy objects (database, ``with_options``) in the loop.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.results import DeleteResult, InsertManyResult, InsertOneResult, UpdateResult

from privata_mongo.adapters.clock import SystemClock
from privata_mongo.adapters.pymongo_store import IdentityRedaction, PymongoStore
from privata_mongo.config import current
from privata_mongo.core.failures import BulkWriteFailed
from privata_mongo.core.flows import admin, aggregate, modify, read, write
from privata_mongo.core.flows.common import resolve
from privata_mongo.core.flows.context import Context
from privata_mongo.core.ops import Document, Explain, Flow, Query, UpdateOutcome
from privata_mongo.core.plan import plan_filter
from privata_mongo.core.pseudonym import format_pseudonym
from privata_mongo.core.schema import ModelSchema, Side
from privata_mongo.drivers.sync import Binding, run, stream
from privata_mongo.errors import UnsupportedQuery
from privata_mongo.proxy.cursor import ProxyCommandCursor, ProxyCursor, index_list
from privata_mongo.proxy.errors import bulk_error, native_errors

if TYPE_CHECKING:
    from typing_extensions import Self

    from privata_mongo.proxy.database import ProxyDatabase

__all__ = ["PlainCollection", "PrivateCollection"]

T = Any


_CLOCK = SystemClock()


def _context(schema: ModelSchema) -> Context:
    settings = current()
    return Context(
        schema=schema,
        new_pseudonym=lambda: format_pseudonym(secrets.token_bytes(16)),
        new_revision=lambda: secrets.token_hex(8),
        new_object_id=ObjectId,
        now=_CLOCK.now,
        batch_size=settings.batch_size,
    )


def _options(**named: Any) -> dict[str, Any]:
    """Keyword options the application passed, without the ones left at their default."""
    return {k: v for k, v in named.items() if v is not None}


class PrivateCollection:
    """A logical collection stored as an identity and a clinical collection."""

    def __init__(
        self,
        database: ProxyDatabase,
        clinical: Any,
        identity: Any,
        schema: ModelSchema,
    ) -> None:
        self._database = database
        self._clinical = clinical
        self._identity = identity
        self._schema = schema
        self._ctx = _context(schema)
        namespace = f"{clinical.database.name}.{clinical.name}"
        self._binding = Binding(
            PymongoStore(clinical),
            PymongoStore(identity, IdentityRedaction(schema.model, namespace)),
        )
        self._linked = False

    # -- plumbing ---------------------------------------------------------------------------

    def _run(self, flow: Flow[Any], single: bool = True) -> Any:
        with native_errors(single):
            return run(flow, self._binding)

    def _stream_find(self, query: Query) -> Iterator[tuple[Document, ...]]:
        with native_errors():
            yield from stream(read.find(self._ctx, query), self._binding)

    def _explain(self, query: Query) -> Document:
        def flow() -> Flow[Document]:
            clinical_filter = yield from resolve(self._ctx, plan_filter(self._schema, query.filter))
            plan: Document = yield Explain(Side.CLINICAL, Query(clinical_filter, sort=query.sort))
            return plan

        return self._run(flow())  # type: ignore[no-any-return]

    def _ensure_link(self) -> None:
        if not self._linked:
            self._run(admin.ensure_link_index(self._ctx))
            self._linked = True

    # -- attributes ---------------------------------------------------------------------------

    @property
    def schema(self) -> ModelSchema:
        """The privacy schema of this collection."""
        return self._schema

    @property
    def name(self) -> str:
        """The collection's (clinical, native) name."""
        return str(self._clinical.name)

    @property
    def full_name(self) -> str:
        """``database.collection``."""
        return str(self._clinical.full_name)

    @property
    def database(self) -> ProxyDatabase:
        """The proxy database this collection belongs to."""
        return self._database

    @property
    def codec_options(self) -> Any:
        """The real codec options."""
        return self._clinical.codec_options

    @property
    def read_preference(self) -> Any:
        """The real read preference."""
        return self._clinical.read_preference

    @property
    def write_concern(self) -> Any:
        """The real write concern."""
        return self._clinical.write_concern

    @property
    def read_concern(self) -> Any:
        """The real read concern."""
        return self._clinical.read_concern

    def with_options(self, **options: Any) -> PrivateCollection:
        """The same split collection with other read/write options on both halves."""
        twin = PrivateCollection(
            self._database,
            self._clinical.with_options(**options),
            self._identity.with_options(**options),
            self._schema,
        )
        twin._linked = self._linked
        return twin

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(
                f"Collection has no attribute {name!r}. To access the {self.name}.{name} "
                f"collection, use database['{self.name}.{name}']."
            )
        return self._database[f"{self.name}.{name}"]

    def __getitem__(self, name: str) -> Any:
        return self._database[f"{self.name}.{name}"]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PrivateCollection):
            return bool(self._clinical == other._clinical)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.full_name)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __repr__(self) -> str:
        return f"PrivateCollection({self.full_name!r}, identity={self._identity.name!r})"

    def __bool__(self) -> bool:
        raise NotImplementedError(
            "Collection objects do not implement truth value testing or bool(). "
            "Please compare with None instead: collection is not None"
        )

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> None:
        raise TypeError("'Collection' object is not iterable")

    # -- reads ----------------------------------------------------------------------------------

    def find(self, *args: Any, **kwargs: Any) -> ProxyCursor:
        """A cursor over the logical documents matching ``filter``."""
        return ProxyCursor(self, *args, **kwargs)

    def find_one(self, filter: Any = None, *args: Any, **kwargs: Any) -> Document | None:
        """The first matching document, or ``None``."""
        if filter is not None and not isinstance(filter, Mapping):
            filter = {"_id": filter}
        kwargs["limit"] = -1
        for document in self.find(filter, *args, **kwargs):
            return document
        return None

    def count_documents(
        self, filter: Mapping[str, Any], session: Any = None, comment: Any = None, **kwargs: Any
    ) -> int:
        """How many logical documents match ``filter``."""
        options = {**_options(session=session, comment=comment), **kwargs}
        return int(self._run(read.count(self._ctx, filter, options)))

    def estimated_document_count(self, comment: Any = None, **kwargs: Any) -> int:
        """How many logical documents there are, from collection metadata."""
        return int(
            self._run(read.estimated_count(self._ctx, {**_options(comment=comment), **kwargs}))
        )

    def distinct(
        self,
        key: str,
        filter: Mapping[str, Any] | None = None,
        session: Any = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> list[Any]:
        """Distinct values of ``key`` among the matching documents."""
        options = {**_options(session=session, comment=comment), **kwargs}
        return list(self._run(read.distinct(self._ctx, key, filter, options)))

    def aggregate(
        self,
        pipeline: Sequence[Mapping[str, Any]],
        session: Any = None,
        let: Any = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> ProxyCommandCursor:
        """Run an aggregation pipeline with native results."""
        options = {**_options(session=session, let=let, comment=comment), **kwargs}
        options.pop("cursor", None)  # pymongo accepts and ignores the legacy cursor={} option
        refuse_split_joins(self._database, pipeline)

        def batches() -> Iterator[tuple[Document, ...]]:
            with native_errors():
                flow = aggregate.aggregate(self._ctx, list(pipeline), options)
                yield from stream(flow, self._binding)

        return ProxyCommandCursor(self, batches())

    # -- writes ---------------------------------------------------------------------------------

    def insert_one(
        self,
        document: Any,
        bypass_document_validation: bool | None = None,
        session: Any = None,
        comment: Any = None,
    ) -> InsertOneResult:
        """Insert one document; like pymongo, an ``_id`` is added to the caller's mapping."""
        if not isinstance(document, MutableMapping):
            raise TypeError(
                "document must be an instance of dict, bson.son.SON, "
                "bson.raw_bson.RawBSONDocument, or a type that inherits from "
                "collections.MutableMapping"
            )
        if "_id" not in document:
            document["_id"] = ObjectId()
        self._ensure_link()
        self._run(write.insert(self._ctx, [document], ordered=True))
        return InsertOneResult(document["_id"], self.write_concern.acknowledged)

    def insert_many(
        self,
        documents: Sequence[Any],
        ordered: bool = True,
        bypass_document_validation: bool | None = None,
        session: Any = None,
        comment: Any = None,
    ) -> InsertManyResult:
        """Insert documents; each is written whole (both halves) or not at all."""
        if isinstance(documents, Mapping) or not documents:
            raise TypeError("documents must be a non-empty list")
        for document in documents:
            if "_id" not in document:
                document["_id"] = ObjectId()
        self._ensure_link()
        with native_errors(single=False):
            try:
                run(write.insert(self._ctx, list(documents), ordered), self._binding)
            except BulkWriteFailed as exc:
                visible = [self._without_identity(d) for d in documents]
                raise bulk_error(exc.failures, exc.inserted, visible) from None
        return InsertManyResult([d["_id"] for d in documents], self.write_concern.acknowledged)

    def _without_identity(self, document: Mapping[str, Any]) -> Document:
        return {k: v for k, v in document.items() if self._schema.side_of(k) is Side.CLINICAL}

    def _update(
        self,
        filter: Mapping[str, Any],
        update: Any,
        multi: bool,
        upsert: bool,
        options: dict[str, Any],
        sort: Any = None,
    ) -> UpdateResult:
        if upsert:
            self._ensure_link()
        order = tuple(index_list(sort)) if sort is not None else ()
        flow = write.update(self._ctx, filter, update, multi, upsert, options, order)
        outcome = self._run(flow)
        return UpdateResult(self._raw_result(outcome), self.write_concern.acknowledged)

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
        if type(self._clinical).__module__.startswith("mongomock"):
            # mongomock's reply carries these too; matching it keeps full_result native there.
            raw.update(err=None, ok=1, upserted=outcome.upserted_id)
        return raw

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
    ) -> UpdateResult:
        """Update the first matching document."""
        options = _options(
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
    ) -> UpdateResult:
        """Update every matching document."""
        options = _options(
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
    ) -> UpdateResult:
        """Replace the first matching document, keeping its pseudonym."""
        if upsert:
            self._ensure_link()
        options = _options(
            collation=collation, hint=hint, session=session, let=let, comment=comment
        )
        order = tuple(index_list(sort)) if sort is not None else ()
        flow = write.replace_one(self._ctx, filter, replacement, upsert, options, order)
        outcome = self._run(flow)
        return UpdateResult(self._raw_result(outcome), self.write_concern.acknowledged)

    def delete_one(
        self,
        filter: Mapping[str, Any],
        collation: Any = None,
        hint: Any = None,
        session: Any = None,
        let: Any = None,
        comment: Any = None,
    ) -> DeleteResult:
        """Delete the first matching document (identity row first)."""
        options = _options(
            collation=collation, hint=hint, session=session, let=let, comment=comment
        )
        deleted = self._run(write.delete(self._ctx, filter, False, options))
        return DeleteResult({"n": deleted, "ok": 1.0}, self.write_concern.acknowledged)

    def delete_many(
        self,
        filter: Mapping[str, Any],
        collation: Any = None,
        hint: Any = None,
        session: Any = None,
        let: Any = None,
        comment: Any = None,
    ) -> DeleteResult:
        """Delete every matching document (identity rows first)."""
        options = _options(
            collation=collation, hint=hint, session=session, let=let, comment=comment
        )
        deleted = self._run(write.delete(self._ctx, filter, True, options))
        return DeleteResult({"n": deleted, "ok": 1.0}, self.write_concern.acknowledged)

    def find_one_and_update(
        self,
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
    ) -> Document | None:
        """Update one document and return it as it was (or is, with ``ReturnDocument.AFTER``)."""
        if upsert:
            self._ensure_link()
        options = {
            **_options(
                array_filters=array_filters, hint=hint, session=session, let=let, comment=comment
            ),
            **kwargs,
        }
        order = tuple(index_list(sort)) if sort is not None else ()
        flow = modify.find_one_and_update(
            self._ctx,
            filter,
            update,
            order,
            upsert,
            bool(return_document),
            _projection(projection),
            options,
        )
        result: Document | None = self._run(flow)
        return result

    def find_one_and_replace(
        self,
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
    ) -> Document | None:
        """Replace one document (keeping its pseudonym) and return it before or after."""
        if upsert:
            self._ensure_link()
        options = {**_options(hint=hint, session=session, let=let, comment=comment), **kwargs}
        order = tuple(index_list(sort)) if sort is not None else ()
        flow = modify.find_one_and_replace(
            self._ctx,
            filter,
            replacement,
            order,
            upsert,
            bool(return_document),
            _projection(projection),
            options,
        )
        result: Document | None = self._run(flow)
        return result

    def find_one_and_delete(
        self,
        filter: Mapping[str, Any],
        projection: Any = None,
        sort: Any = None,
        hint: Any = None,
        session: Any = None,
        let: Any = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> Document | None:
        """Delete one document and return it as it was."""
        options = {**_options(hint=hint, session=session, let=let, comment=comment), **kwargs}
        order = tuple(index_list(sort)) if sort is not None else ()
        result: Document | None = self._run(
            modify.find_one_and_delete(self._ctx, filter, order, _projection(projection), options)
        )
        return result

    # -- indexes and the collection itself -----------------------------------------------------

    def create_index(
        self, keys: Any, session: Any = None, comment: Any = None, **kwargs: Any
    ) -> str:
        """Create an index on the side that stores its fields."""
        normalised = tuple(index_list(keys))
        self._ensure_link()
        return str(
            self._run(
                admin.create_index(
                    self._ctx, normalised, {**_options(session=session, comment=comment), **kwargs}
                )
            )
        )

    def create_indexes(
        self, indexes: Sequence[Any], session: Any = None, comment: Any = None, **kwargs: Any
    ) -> list[str]:
        """Create several ``IndexModel`` indexes."""
        names = []
        for model in indexes:
            document = dict(model.document)
            keys = tuple(document.pop("key").items())
            names.append(
                self.create_index(keys, session=session, comment=comment, **document, **kwargs)
            )
        return names

    def index_information(self, session: Any = None, comment: Any = None) -> dict[str, Any]:
        """Indexes of both halves by name, as one collection would list them."""
        return dict(self._run(admin.index_information(self._ctx)))

    def list_indexes(self, session: Any = None, comment: Any = None) -> Iterator[Document]:
        """Index documents of both halves, as one collection would list them."""
        from bson.son import SON

        for name, info in self.index_information().items():
            document = SON([("v", info.get("v", 2)), ("key", SON(info["key"])), ("name", name)])
            document.update({k: v for k, v in info.items() if k not in ("v", "key")})
            yield document

    def drop_index(
        self, index_or_name: Any, session: Any = None, comment: Any = None, **kwargs: Any
    ) -> None:
        """Drop an index by name or keys."""
        name = (
            index_or_name
            if isinstance(index_or_name, str)
            else admin.index_name(tuple(index_list(index_or_name)))
        )
        self._run(admin.drop_index(self._ctx, name))

    def drop_indexes(self, session: Any = None, comment: Any = None, **kwargs: Any) -> None:
        """Drop every application index of both halves."""
        self._run(admin.drop_indexes(self._ctx))

    def drop(self, session: Any = None, comment: Any = None, encrypted_fields: Any = None) -> None:
        """Drop both halves (identity first)."""
        self._run(admin.drop(self._ctx))
        self._linked = False


_JOIN_STAGES = {"$lookup": "from", "$graphLookup": "from", "$unionWith": "coll"}


def refuse_split_joins(database: ProxyDatabase, pipeline: Sequence[Mapping[str, Any]]) -> None:
    """Refuse server-side joins into split collections, which would miss identity fields.

    Raises:
        UnsupportedQuery: a ``$lookup``/``$graphLookup``/``$unionWith`` reads a split
            collection.
    """
    for stage in pipeline:
        for name, spec in stage.items():
            if name == "$facet" and isinstance(spec, Mapping):
                for inner in spec.values():
                    refuse_split_joins(database, inner)
                continue
            key = _JOIN_STAGES.get(name)
            if key is None:
                continue
            target = spec if isinstance(spec, str) else spec.get(key)
            schema = database.schema_of(target) if isinstance(target, str) else None
            if schema is not None:
                raise UnsupportedQuery(
                    f"{name} from '{target}': {schema.model} documents are stored split, and a "
                    "join on the server would return them without their identity fields; read "
                    "them with a second query (mongoengine: select_related)",
                    model=schema.model,
                )
            if isinstance(spec, Mapping) and isinstance(spec.get("pipeline"), list):
                refuse_split_joins(database, spec["pipeline"])


def _projection(projection: Any) -> Mapping[str, Any] | None:
    if projection is None:
        return None
    if isinstance(projection, Mapping):
        return projection
    return dict.fromkeys(projection, 1)


class PlainCollection:
    """A collection of a model without identity fields: stored and served natively."""

    def __init__(self, database: ProxyDatabase, inner: Any) -> None:
        self._database = database
        self._inner = inner

    @property
    def database(self) -> ProxyDatabase:
        """The proxy database this collection belongs to."""
        return self._database

    @property
    def inner(self) -> Any:
        """The real collection."""
        return self._inner

    def with_options(self, **options: Any) -> PlainCollection:
        """The same collection with other read/write options."""
        return PlainCollection(self._database, self._inner.with_options(**options))

    def find(self, *args: Any, **kwargs: Any) -> Any:
        """A native cursor; its ``collection`` is the real collection."""
        return self._inner.find(*args, **kwargs)

    def aggregate(self, pipeline: Sequence[Mapping[str, Any]], *args: Any, **kwargs: Any) -> Any:
        """A native aggregation, unless it joins a split collection."""
        refuse_split_joins(self._database, pipeline)
        return self._inner.aggregate(pipeline, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        attribute = getattr(self._inner, name)
        if not name.startswith("_") and hasattr(attribute, "insert_one"):
            # pymongo returns a sub-collection for unknown attribute names: keep it proxied.
            return self._database[f"{self._inner.name}.{name}"]
        return attribute

    def __getitem__(self, name: str) -> Any:
        return self._database[f"{self._inner.name}.{name}"]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PlainCollection):
            return bool(self._inner == other._inner)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._inner.full_name)

    def __repr__(self) -> str:
        return f"PlainCollection({self._inner.full_name!r})"

    def __bool__(self) -> bool:
        raise NotImplementedError(
            "Collection objects do not implement truth value testing or bool(). "
            "Please compare with None instead: collection is not None"
        )
