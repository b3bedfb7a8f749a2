"""Collections as the sync ODMs see them: pymongo's ``Collection`` API.

``PrivateCollection`` fronts a split collection: each method plans one core flow
(``_operations``), runs it with the sync driver and answers with pymongo's own result and error
types. ``PlainCollection`` fronts a collection of a model without identity fields: it forwards to
the real collection and only keeps the proxy objects (database, ``with_options``) in the loop.
The async twins are in ``aio_collection``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pymongo import ReturnDocument
from pymongo.results import (
    BulkWriteResult,
    DeleteResult,
    InsertManyResult,
    InsertOneResult,
    UpdateResult,
)

from privata_mongo.adapters.pymongo_calls import IdentityRedaction
from privata_mongo.adapters.pymongo_store import PymongoStore
from privata_mongo.context import resolve_access
from privata_mongo.core.ops import Document, Query
from privata_mongo.core.schema import ModelSchema
from privata_mongo.drivers._dispatch import Binding
from privata_mongo.drivers.sync import SyncBinding, run, stream
from privata_mongo.encryption import key_vault, kms_transport
from privata_mongo.proxy._audit import AuditPoint
from privata_mongo.proxy._collection_base import SplitCollectionBase
from privata_mongo.proxy._operations import (
    Planned,
    list_index_documents,
    options_of,
    split_targets,
)
from privata_mongo.proxy.cursor import ProxyCommandCursor, ProxyCursor
from privata_mongo.proxy.errors import native_errors

if TYPE_CHECKING:
    from privata_mongo.proxy.database import DatabaseBase

__all__ = ["PlainCollection", "PrivateCollection"]

R = TypeVar("R")


class PrivateCollection(SplitCollectionBase):
    """A logical collection stored as an identity and a clinical collection."""

    def _bind(self) -> SyncBinding:
        namespace = f"{self._clinical.database.name}.{self._clinical.name}"
        return Binding(
            PymongoStore(self._clinical),
            PymongoStore(self._identity, IdentityRedaction(self._schema.model, namespace)),
            access=resolve_access,
            peers=self._read_peer,
            audit=AuditPoint(self._database),
            keys=key_vault(self._clinical.database.client) if self._schema.sealed else None,
            kms=kms_transport() if self._schema.sealed else None,
        )

    def _read_peer(self, collection: str, filter: Mapping[str, Any]) -> list[Document]:
        return list(self._database[collection].find(filter))

    def _call(self, planned: Planned[R]) -> R:
        if planned.link and not self._linked:
            self._linked = True
            self._call(self._ops.ensure_link())
        with native_errors(planned.single, planned.documents):
            return planned.finish(run(planned.flow, self._binding))

    def _stream(self, flow: Any) -> Iterator[tuple[Document, ...]]:
        with native_errors():
            yield from stream(flow, self._binding)

    def _stream_find(self, query: Query) -> Iterator[tuple[Document, ...]]:
        return self._stream(self._ops.find(query))

    def _explain(self, query: Query) -> Document:
        return self._call(self._ops.explain(query))

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
        options = {**options_of(session=session, comment=comment), **kwargs}
        return self._call(self._ops.count_documents(filter, options))

    def estimated_document_count(self, comment: Any = None, **kwargs: Any) -> int:
        """How many logical documents there are, from collection metadata."""
        options = {**options_of(comment=comment), **kwargs}
        return self._call(self._ops.estimated_document_count(options))

    def distinct(
        self,
        key: str,
        filter: Mapping[str, Any] | None = None,
        session: Any = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> list[Any]:
        """Distinct values of ``key`` among the matching documents."""
        options = {**options_of(session=session, comment=comment), **kwargs}
        return self._call(self._ops.distinct(key, filter, options))

    def aggregate(
        self,
        pipeline: Sequence[Mapping[str, Any]],
        session: Any = None,
        let: Any = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> ProxyCommandCursor:
        """Run an aggregation pipeline with native results."""
        split = split_targets(self._database.schema_of, pipeline)
        options = {**options_of(session=session, let=let, comment=comment), **kwargs}
        flow = self._ops.aggregate(pipeline, options, split)
        return ProxyCommandCursor(self, self._stream(flow))

    # -- writes ---------------------------------------------------------------------------------

    def insert_one(
        self,
        document: Any,
        bypass_document_validation: bool | None = None,
        session: Any = None,
        comment: Any = None,
    ) -> InsertOneResult:
        """Insert one document; like pymongo, an ``_id`` is added to the caller's mapping."""
        return self._call(self._ops.insert_one(document))

    def insert_many(
        self,
        documents: Sequence[Any],
        ordered: bool = True,
        bypass_document_validation: bool | None = None,
        session: Any = None,
        comment: Any = None,
    ) -> InsertManyResult:
        """Insert documents; each is written whole (both halves) or not at all."""
        return self._call(self._ops.insert_many(documents, ordered))

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
        """Update the first matching document (by ``sort`` when given)."""
        options = options_of(
            collation=collation,
            array_filters=array_filters,
            hint=hint,
            session=session,
            let=let,
            comment=comment,
        )
        return self._call(self._ops.update(filter, update, False, upsert, options, sort))

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
        options = options_of(
            collation=collation,
            array_filters=array_filters,
            hint=hint,
            session=session,
            let=let,
            comment=comment,
        )
        return self._call(self._ops.update(filter, update, True, upsert, options))

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
        options = options_of(
            collation=collation, hint=hint, session=session, let=let, comment=comment
        )
        return self._call(self._ops.replace_one(filter, replacement, upsert, options, sort))

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
        options = options_of(
            collation=collation, hint=hint, session=session, let=let, comment=comment
        )
        return self._call(self._ops.delete(filter, False, options))

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
        options = options_of(
            collation=collation, hint=hint, session=session, let=let, comment=comment
        )
        return self._call(self._ops.delete(filter, True, options))

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
        options = {
            **options_of(
                array_filters=array_filters, hint=hint, session=session, let=let, comment=comment
            ),
            **kwargs,
        }
        planned = self._ops.find_one_and_update(
            filter, update, projection, sort, upsert, bool(return_document), options
        )
        return self._call(planned)

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
        options = {**options_of(hint=hint, session=session, let=let, comment=comment), **kwargs}
        planned = self._ops.find_one_and_replace(
            filter, replacement, projection, sort, upsert, bool(return_document), options
        )
        return self._call(planned)

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
        options = {**options_of(hint=hint, session=session, let=let, comment=comment), **kwargs}
        return self._call(self._ops.find_one_and_delete(filter, projection, sort, options))

    def bulk_write(
        self,
        requests: Sequence[Any],
        ordered: bool = True,
        bypass_document_validation: bool | None = None,
        session: Any = None,
        comment: Any = None,
        let: Any = None,
    ) -> BulkWriteResult:
        """Run pymongo request objects in order, each through its own method's rules."""
        return self._call(self._ops.bulk_write(requests, ordered))

    # -- indexes and the collection itself -----------------------------------------------------

    def create_index(
        self, keys: Any, session: Any = None, comment: Any = None, **kwargs: Any
    ) -> str:
        """Create an index on the side that stores its fields."""
        options = {**options_of(session=session, comment=comment), **kwargs}
        return self._call(self._ops.create_index(keys, options))

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
        return self._call(self._ops.index_information())

    def list_indexes(self, session: Any = None, comment: Any = None) -> Iterator[Document]:
        """Index documents of both halves, as one collection would list them."""
        return iter(list_index_documents(self.index_information()))

    def drop_index(
        self, index_or_name: Any, session: Any = None, comment: Any = None, **kwargs: Any
    ) -> None:
        """Drop an index by name or keys."""
        self._call(self._ops.drop_index(index_or_name))

    def drop_indexes(self, session: Any = None, comment: Any = None, **kwargs: Any) -> None:
        """Drop every application index of both halves."""
        self._call(self._ops.drop_indexes())

    def drop(self, session: Any = None, comment: Any = None, encrypted_fields: Any = None) -> None:
        """Drop both halves (identity first)."""
        self._call(self._ops.drop())
        self._linked = False


class PlainCollection:
    """A collection of a model without identity fields: stored and served natively."""

    def __init__(self, database: DatabaseBase, inner: Any) -> None:
        self._database = database
        self._inner = inner

    @property
    def database(self) -> DatabaseBase:
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
        """A native aggregation, unless it joins a split collection the server cannot join.

        Such a pipeline runs through the flows like a split collection's, with nothing of
        this collection's own to join (the async twin's returns a coroutine, as pymongo's).
        """
        if not split_targets(self._database.schema_of, pipeline):
            return self._inner.aggregate(pipeline, *args, **kwargs)
        schema = ModelSchema.native(self._inner.name)
        runner = self._database.split_collection(self._database, self._inner, self._inner, schema)
        return runner.aggregate(pipeline, *args, **kwargs)

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
