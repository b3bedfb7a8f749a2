"""The async storage port over an async pymongo-shaped collection.

Serves pymongo's ``AsyncCollection`` and any collection with the same awaitable API (the
embedded async adapter over mongomock, Motor through its adapter). The twin of
``pymongo_store``: same arguments, same error translation, awaited.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pymongo import ReplaceOne
from pymongo.errors import BulkWriteError, OperationFailure, WriteError

from privata_mongo.adapters.pymongo_store import (
    IdentityRedaction,
    StoreErrors,
    find_and_modify_arguments,
    find_arguments,
)
from privata_mongo.core.ops import Document, InsertOutcome, Query, UpdateOutcome

__all__ = ["AsyncPymongoCursor", "AsyncPymongoStore"]


class AsyncPymongoCursor:
    """An async pymongo cursor read in batches."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    async def next_batch(self, size: int, /) -> list[Document]:
        """Up to ``size`` documents; fewer means the cursor is exhausted."""
        batch: list[Document] = await self._cursor.to_list(size)
        return batch

    async def close(self) -> None:
        """Release the server cursor."""
        await self._cursor.close()


class AsyncPymongoStore(StoreErrors):
    """``AsyncDocumentStore`` over one async pymongo-shaped collection.

    Args:
        collection: a ``pymongo.asynchronous.collection.AsyncCollection`` or a collection of
            the same shape.
        redaction: set for identity collections.
    """

    def __init__(self, collection: Any, redaction: IdentityRedaction | None = None) -> None:
        super().__init__(redaction)
        self.collection = collection

    def __repr__(self) -> str:
        return f"AsyncPymongoStore({self.collection.full_name!r})"

    def _find(self, query: Query) -> Any:
        args, kwargs = find_arguments(query)
        return self.collection.find(*args, **kwargs)

    # AsyncDocumentReader

    async def find(self, query: Query, /) -> AsyncPymongoCursor:
        """Open a cursor for ``query``."""
        return AsyncPymongoCursor(self._find(query))

    async def count(self, filter: Mapping[str, Any], options: Mapping[str, Any], /) -> int:
        """``count_documents``."""
        try:
            return int(await self.collection.count_documents(filter, **options))
        except OperationFailure as exc:
            raise self._operation(exc) from None

    async def distinct(
        self, key: str, filter: Mapping[str, Any], options: Mapping[str, Any], /
    ) -> list[Any]:
        """``distinct``."""
        try:
            return list(await self.collection.distinct(key, filter, **options))
        except OperationFailure as exc:
            raise self._operation(exc) from None

    # AsyncDocumentAnalytics

    async def aggregate(
        self, pipeline: Sequence[Mapping[str, Any]], options: Mapping[str, Any], /
    ) -> AsyncPymongoCursor:
        """Run a pipeline."""
        try:
            return AsyncPymongoCursor(await self.collection.aggregate(list(pipeline), **options))
        except OperationFailure as exc:
            raise self._operation(exc) from None

    async def estimated_count(self, options: Mapping[str, Any], /) -> int:
        """``estimated_document_count``."""
        return int(await self.collection.estimated_document_count(**options))

    async def explain(self, query: Query, /) -> Document:
        """The server's plan for ``query``."""
        plan: Document = await self._find(query).explain()
        return plan

    # AsyncDocumentWriter

    async def insert(
        self, documents: Sequence[Mapping[str, Any]], ordered: bool, /
    ) -> InsertOutcome:
        """``insert_many``; per-document failures are returned, not raised."""
        if not documents:
            return InsertOutcome()
        try:
            await self.collection.insert_many(list(documents), ordered=ordered)
        except (BulkWriteError, WriteError) as exc:
            return self._insert_failures(exc)
        return InsertOutcome()

    async def update(
        self,
        filter: Mapping[str, Any],
        update: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        multi: bool,
        upsert: bool,
        options: Mapping[str, Any],
        /,
    ) -> UpdateOutcome:
        """``update_one``/``update_many``."""
        method = self.collection.update_many if multi else self.collection.update_one
        document = update if isinstance(update, Mapping) else list(update)
        try:
            result = await method(filter, document, upsert=upsert, **options)
        except OperationFailure as exc:
            raise self._operation(exc) from None
        return UpdateOutcome(
            result.matched_count, result.modified_count or 0, result.upserted_id, result.raw_result
        )

    async def delete(
        self, filter: Mapping[str, Any], multi: bool, options: Mapping[str, Any], /
    ) -> int:
        """``delete_one``/``delete_many``; returns the deleted count."""
        method = self.collection.delete_many if multi else self.collection.delete_one
        try:
            return int((await method(filter, **options)).deleted_count)
        except OperationFailure as exc:
            raise self._operation(exc) from None

    # AsyncDocumentModifier

    async def replace(
        self,
        filter: Mapping[str, Any],
        document: Mapping[str, Any],
        upsert: bool,
        options: Mapping[str, Any],
        /,
    ) -> UpdateOutcome:
        """``replace_one``."""
        try:
            result = await self.collection.replace_one(filter, document, upsert=upsert, **options)
        except OperationFailure as exc:
            raise self._operation(exc) from None
        return UpdateOutcome(result.matched_count, result.modified_count or 0, result.upserted_id)

    async def replace_many(
        self, pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], /
    ) -> int:
        """Unordered bulk of replacements; returns how many filters matched."""
        if not pairs:
            return 0
        try:
            result = await self.collection.bulk_write(
                [ReplaceOne(dict(f), dict(d)) for f, d in pairs], ordered=False
            )
        except OperationFailure as exc:
            raise self._operation(exc) from None
        return int(result.matched_count)

    async def find_and_modify(
        self,
        action: Literal["update", "replace", "delete"],
        filter: Mapping[str, Any],
        document: Any,
        sort: Sequence[tuple[str, Any]],
        upsert: bool,
        return_new: bool,
        projection: Mapping[str, Any] | None,
        options: Mapping[str, Any],
        /,
    ) -> Document | None:
        """``find_one_and_update``/``_replace``/``_delete``."""
        common, which = find_and_modify_arguments(sort, return_new, projection, options)
        try:
            if action == "delete":
                found: Document | None = await self.collection.find_one_and_delete(filter, **common)
            elif action == "replace":
                found = await self.collection.find_one_and_replace(
                    filter, document, upsert=upsert, return_document=which, **common
                )
            else:
                body = document if isinstance(document, Mapping) else list(document)
                found = await self.collection.find_one_and_update(
                    filter, body, upsert=upsert, return_document=which, **common
                )
        except OperationFailure as exc:
            raise self._operation(exc) from None
        return found

    # AsyncCollectionAdmin

    async def create_index(
        self, keys: Sequence[tuple[str, Any]], options: Mapping[str, Any], /
    ) -> str:
        """Create an index."""
        try:
            return str(await self.collection.create_index(list(keys), **options))
        except OperationFailure as exc:
            raise self._operation(exc) from None

    async def drop_index(self, name: str, /) -> None:
        """Drop an index by name; ``"*"`` drops all but ``_id``."""
        if name == "*":
            await self.collection.drop_indexes()
        else:
            await self.collection.drop_index(name)

    async def index_information(self) -> dict[str, Any]:
        """Indexes by name (empty for a collection that does not exist)."""
        try:
            return dict(await self.collection.index_information())
        except OperationFailure:
            return {}

    async def drop(self) -> None:
        """Drop the collection."""
        await self.collection.drop()
