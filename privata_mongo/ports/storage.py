"""Storage ports: what the drivers need from one physical collection.

Each protocol is one capability with a few methods taking plain data (the core's ``Query`` and
op fields), so an application can bring its own adapter and prove it with the port contract
suite. Write errors of single documents are reported as ``core.failures.WriteFailed``, bulk
insert failures as an ``InsertOutcome``; any other error propagates in the backend's own type.
An adapter serving an identity collection never lets a stored value into an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from privata_mongo.core.ops import Document, InsertOutcome, Query, UpdateOutcome

__all__ = [
    "AsyncBatchCursor",
    "AsyncCollectionAdmin",
    "AsyncDocumentAnalytics",
    "AsyncDocumentModifier",
    "AsyncDocumentReader",
    "AsyncDocumentStore",
    "AsyncDocumentWriter",
    "BatchCursor",
    "CollectionAdmin",
    "DocumentAnalytics",
    "DocumentModifier",
    "DocumentReader",
    "DocumentStore",
    "DocumentWriter",
]


class BatchCursor(Protocol):
    """An open server cursor read in batches."""

    def next_batch(self, size: int, /) -> list[Document]:
        """Up to ``size`` documents; fewer means the cursor is exhausted."""

    def close(self) -> None:
        """Release the server cursor."""


class DocumentReader(Protocol):
    """Finding and counting documents."""

    def find(self, query: Query, /) -> BatchCursor:
        """Open a cursor for ``query``."""

    def count(self, filter: Mapping[str, Any], options: Mapping[str, Any], /) -> int:
        """``count_documents``."""

    def distinct(
        self, key: str, filter: Mapping[str, Any], options: Mapping[str, Any], /
    ) -> list[Any]:
        """``distinct``."""


class DocumentAnalytics(Protocol):
    """Pipelines, estimates and query plans."""

    def aggregate(
        self, pipeline: Sequence[Mapping[str, Any]], options: Mapping[str, Any], /
    ) -> BatchCursor:
        """Run a pipeline."""

    def estimated_count(self, options: Mapping[str, Any], /) -> int:
        """``estimated_document_count``."""

    def explain(self, query: Query, /) -> Document:
        """The server's plan for ``query``."""


class DocumentWriter(Protocol):
    """Inserting, updating and deleting by filter."""

    def insert(self, documents: Sequence[Mapping[str, Any]], ordered: bool, /) -> InsertOutcome:
        """``insert_many``; per-document failures are returned, not raised."""

    def update(
        self,
        filter: Mapping[str, Any],
        update: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        multi: bool,
        upsert: bool,
        options: Mapping[str, Any],
        /,
    ) -> UpdateOutcome:
        """``update_one``/``update_many``."""

    def delete(self, filter: Mapping[str, Any], multi: bool, options: Mapping[str, Any], /) -> int:
        """``delete_one``/``delete_many``; returns the deleted count."""


class DocumentModifier(Protocol):
    """Whole-document replacement and atomic find-and-modify."""

    def replace(
        self,
        filter: Mapping[str, Any],
        document: Mapping[str, Any],
        upsert: bool,
        options: Mapping[str, Any],
        /,
    ) -> UpdateOutcome:
        """``replace_one``."""

    def replace_many(self, pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], /) -> int:
        """Unordered bulk of replacements; returns how many filters matched."""

    def find_and_modify(
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


class CollectionAdmin(Protocol):
    """Indexes and the collection itself."""

    def create_index(self, keys: Sequence[tuple[str, Any]], options: Mapping[str, Any], /) -> str:
        """Create an index; ``drop_index("*")`` drops all but ``_id``."""

    def drop_index(self, name: str, /) -> None:
        """Drop an index by name."""

    def index_information(self) -> dict[str, Any]:
        """Indexes by name (empty for a collection that does not exist)."""

    def drop(self) -> None:
        """Drop the collection."""


class DocumentStore(
    DocumentReader,
    DocumentAnalytics,
    DocumentWriter,
    DocumentModifier,
    CollectionAdmin,
    Protocol,
):
    """Everything a physical collection offers the drivers."""


# -- async twins: the same capabilities, awaited ------------------------------------------------


class AsyncBatchCursor(Protocol):
    """An open server cursor read in batches, awaited."""

    async def next_batch(self, size: int, /) -> list[Document]:
        """Up to ``size`` documents; fewer means the cursor is exhausted."""

    async def close(self) -> None:
        """Release the server cursor."""


class AsyncDocumentReader(Protocol):
    """Finding and counting documents, awaited."""

    async def find(self, query: Query, /) -> AsyncBatchCursor:
        """Open a cursor for ``query``."""

    async def count(self, filter: Mapping[str, Any], options: Mapping[str, Any], /) -> int:
        """``count_documents``."""

    async def distinct(
        self, key: str, filter: Mapping[str, Any], options: Mapping[str, Any], /
    ) -> list[Any]:
        """``distinct``."""


class AsyncDocumentAnalytics(Protocol):
    """Pipelines, estimates and query plans, awaited."""

    async def aggregate(
        self, pipeline: Sequence[Mapping[str, Any]], options: Mapping[str, Any], /
    ) -> AsyncBatchCursor:
        """Run a pipeline."""

    async def estimated_count(self, options: Mapping[str, Any], /) -> int:
        """``estimated_document_count``."""

    async def explain(self, query: Query, /) -> Document:
        """The server's plan for ``query``."""


class AsyncDocumentWriter(Protocol):
    """Inserting, updating and deleting by filter, awaited."""

    async def insert(
        self, documents: Sequence[Mapping[str, Any]], ordered: bool, /
    ) -> InsertOutcome:
        """``insert_many``; per-document failures are returned, not raised."""

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

    async def delete(
        self, filter: Mapping[str, Any], multi: bool, options: Mapping[str, Any], /
    ) -> int:
        """``delete_one``/``delete_many``; returns the deleted count."""


class AsyncDocumentModifier(Protocol):
    """Whole-document replacement and atomic find-and-modify, awaited."""

    async def replace(
        self,
        filter: Mapping[str, Any],
        document: Mapping[str, Any],
        upsert: bool,
        options: Mapping[str, Any],
        /,
    ) -> UpdateOutcome:
        """``replace_one``."""

    async def replace_many(
        self, pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], /
    ) -> int:
        """Unordered bulk of replacements; returns how many filters matched."""

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


class AsyncCollectionAdmin(Protocol):
    """Indexes and the collection itself, awaited."""

    async def create_index(
        self, keys: Sequence[tuple[str, Any]], options: Mapping[str, Any], /
    ) -> str:
        """Create an index; ``drop_index("*")`` drops all but ``_id``."""

    async def drop_index(self, name: str, /) -> None:
        """Drop an index by name."""

    async def index_information(self) -> dict[str, Any]:
        """Indexes by name (empty for a collection that does not exist)."""

    async def drop(self) -> None:
        """Drop the collection."""


class AsyncDocumentStore(
    AsyncDocumentReader,
    AsyncDocumentAnalytics,
    AsyncDocumentWriter,
    AsyncDocumentModifier,
    AsyncCollectionAdmin,
    Protocol,
):
    """Everything a physical collection offers the async driver."""
