"""The async twin of ``collection``: pymongo's ``AsyncCollection`` API over a split collection.

Each method awaits the same plan (``_operations``) the sync collection runs, with the async
driver; read them side by side. A model without identity fields is served by the shared
``PlainCollection``, whose forwarded methods are the real async collection's own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, TypeVar

from pymongo import ReturnDocument
from pymongo.results import (
    BulkWriteResult,
    DeleteResult,
    InsertManyResult,
    InsertOneResult,
    UpdateResult,
)

from privata_mongo.adapters.pymongo_async_store import AsyncPymongoStore
from privata_mongo.adapters.pymongo_calls import IdentityRedaction
from privata_mongo.context import resolve_access
from privata_mongo.core.ops import Document, Query
from privata_mongo.drivers._dispatch import Binding
from privata_mongo.drivers.aio import AsyncBinding, run, stream
from privata_mongo.encryption import async_key_vault, async_kms_transport
from privata_mongo.proxy._audit import AsyncAuditPoint
from privata_mongo.proxy._collection_base import SplitCollectionBase
from privata_mongo.proxy._operations import (
    Planned,
    list_index_documents,
    options_of,
    split_targets,
)
from privata_mongo.proxy.aio_cursor import AsyncProxyCommandCursor, AsyncProxyCursor
from privata_mongo.proxy.errors import native_errors

__all__ = ["AsyncPrivateCollection"]

R = TypeVar("R")


async def _batches_of(documents: list[Document]) -> AsyncIterator[tuple[Document, ...]]:
    yield tuple(documents)


class AsyncPrivateCollection(SplitCollectionBase):
    """A logical collection stored as an identity and a clinical collection, awaited."""

    def _bind(self) -> AsyncBinding:
        namespace = f"{self._clinical.database.name}.{self._clinical.name}"
        return Binding(
            AsyncPymongoStore(self._clinical),
            AsyncPymongoStore(self._identity, IdentityRedaction(self._schema.model, namespace)),
            access=resolve_access,
            peers=self._read_peer,
            audit=AsyncAuditPoint(self._database),
            keys=async_key_vault(self._clinical.database.client) if self._schema.sealed else None,
            kms=async_kms_transport() if self._schema.sealed else None,
        )

    async def _read_peer(self, collection: str, filter: Mapping[str, Any]) -> list[Document]:
        documents: list[Document] = await self._database[collection].find(filter).to_list()
        return documents

    async def _call(self, planned: Planned[R]) -> R:
        if planned.link and not self._linked:
            self._linked = True
            await self._call(self._ops.ensure_link())
        with native_errors(planned.single, planned.documents):
            return planned.finish(await run(planned.flow, self._binding))

    async def _stream(self, flow: Any) -> AsyncIterator[tuple[Document, ...]]:
        with native_errors():
            async for batch in stream(flow, self._binding):
                yield batch

    def _stream_find(self, query: Query) -> AsyncIterator[tuple[Document, ...]]:
        return self._stream(self._ops.find(query))

    async def _explain(self, query: Query) -> Document:
        return await self._call(self._ops.explain(query))

    # -- reads ----------------------------------------------------------------------------------

    def find(self, *args: Any, **kwargs: Any) -> AsyncProxyCursor:
        """A cursor over the logical documents matching ``filter``."""
        return AsyncProxyCursor(self, *args, **kwargs)

    async def find_one(self, filter: Any = None, *args: Any, **kwargs: Any) -> Document | None:
        """The first matching document, or ``None``."""
        if filter is not None and not isinstance(filter, Mapping):
            filter = {"_id": filter}
        kwargs["limit"] = -1
        async for document in self.find(filter, *args, **kwargs):
            return document
        return None

    async def count_documents(
        self, filter: Mapping[str, Any], session: Any = None, comment: Any = None, **kwargs: Any
    ) -> int:
        """How many logical documents match ``filter``."""
        options = {**options_of(session=session, comment=comment), **kwargs}
        return await self._call(self._ops.count_documents(filter, options))

    async def estimated_document_count(self, comment: Any = None, **kwargs: Any) -> int:
        """How many logical documents there are, from collection metadata."""
        options = {**options_of(comment=comment), **kwargs}
        return await self._call(self._ops.estimated_document_count(options))

    async def distinct(
        self,
        key: str,
        filter: Mapping[str, Any] | None = None,
        session: Any = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> list[Any]:
        """Distinct values of ``key`` among the matching documents."""
        options = {**options_of(session=session, comment=comment), **kwargs}
        return await self._call(self._ops.distinct(key, filter, options))

    async def aggregate(
        self,
        pipeline: Sequence[Mapping[str, Any]],
        session: Any = None,
        let: Any = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> AsyncProxyCommandCursor:
        """Run an aggregation pipeline with native results."""
        split = split_targets(self._database.schema_of, pipeline)
        options = {**options_of(session=session, let=let, comment=comment), **kwargs}
        flow = self._ops.aggregate(pipeline, options, split)
        return AsyncProxyCommandCursor(self, self._stream(flow))

    # -- writes ---------------------------------------------------------------------------------

    async def insert_one(
        self,
        document: Any,
        bypass_document_validation: bool | None = None,
        session: Any = None,
        comment: Any = None,
    ) -> InsertOneResult:
        """Insert one document; like pymongo, an ``_id`` is added to the caller's mapping."""
        return await self._call(self._ops.insert_one(document))

    async def insert_many(
        self,
        documents: Sequence[Any],
        ordered: bool = True,
        bypass_document_validation: bool | None = None,
        session: Any = None,
        comment: Any = None,
    ) -> InsertManyResult:
        """Insert documents; each is written whole (both halves) or not at all."""
        return await self._call(self._ops.insert_many(documents, ordered))

    async def update_one(
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
        return await self._call(self._ops.update(filter, update, False, upsert, options, sort))

    async def update_many(
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
        return await self._call(self._ops.update(filter, update, True, upsert, options))

    async def replace_one(
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
        return await self._call(self._ops.replace_one(filter, replacement, upsert, options, sort))

    async def delete_one(
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
        return await self._call(self._ops.delete(filter, False, options))

    async def delete_many(
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
        return await self._call(self._ops.delete(filter, True, options))

    async def find_one_and_update(
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
        return await self._call(planned)

    async def find_one_and_replace(
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
        return await self._call(planned)

    async def find_one_and_delete(
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
        return await self._call(self._ops.find_one_and_delete(filter, projection, sort, options))

    async def bulk_write(
        self,
        requests: Sequence[Any],
        ordered: bool = True,
        bypass_document_validation: bool | None = None,
        session: Any = None,
        comment: Any = None,
        let: Any = None,
    ) -> BulkWriteResult:
        """Run pymongo request objects in order, each through its own method's rules."""
        return await self._call(self._ops.bulk_write(requests, ordered))

    # -- indexes and the collection itself -----------------------------------------------------

    async def create_index(
        self, keys: Any, session: Any = None, comment: Any = None, **kwargs: Any
    ) -> str:
        """Create an index on the side that stores its fields."""
        options = {**options_of(session=session, comment=comment), **kwargs}
        return await self._call(self._ops.create_index(keys, options))

    async def create_indexes(
        self, indexes: Sequence[Any], session: Any = None, comment: Any = None, **kwargs: Any
    ) -> list[str]:
        """Create several ``IndexModel`` indexes."""
        names = []
        for model in indexes:
            document = dict(model.document)
            keys = tuple(document.pop("key").items())
            names.append(
                await self.create_index(
                    keys, session=session, comment=comment, **document, **kwargs
                )
            )
        return names

    async def index_information(self, session: Any = None, comment: Any = None) -> dict[str, Any]:
        """Indexes of both halves by name, as one collection would list them."""
        return await self._call(self._ops.index_information())

    async def list_indexes(
        self, session: Any = None, comment: Any = None
    ) -> AsyncProxyCommandCursor:
        """Index documents of both halves, as one collection would list them."""
        documents = list_index_documents(await self.index_information())
        return AsyncProxyCommandCursor(self, _batches_of(documents))

    async def drop_index(
        self, index_or_name: Any, session: Any = None, comment: Any = None, **kwargs: Any
    ) -> None:
        """Drop an index by name or keys."""
        await self._call(self._ops.drop_index(index_or_name))

    async def drop_indexes(self, session: Any = None, comment: Any = None, **kwargs: Any) -> None:
        """Drop every application index of both halves."""
        await self._call(self._ops.drop_indexes())

    async def drop(
        self, session: Any = None, comment: Any = None, encrypted_fields: Any = None
    ) -> None:
        """Drop both halves (identity first)."""
        await self._call(self._ops.drop())
        self._linked = False
