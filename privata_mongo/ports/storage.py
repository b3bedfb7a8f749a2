"""Storage ports: what the drivers need from one physical collection.

A store executes the core's storage requests (``STORE_OPS``: ``Find``, ``Insert``, ``Update`` …)
against one collection and answers each with the result type its ``Op[R]`` declares, so the
core's vocabulary is the only description of what storage can do: a new request is one new
case in an adapter, not a new method on every port, twin and shim. Requests that open a server
cursor (``Find``, ``Aggregate``) answer with a ``BatchCursor``.

Write errors of single documents are reported as ``core.failures.WriteFailed``, insert
failures as an ``InsertOutcome``; any other error propagates in the backend's own type. An
adapter serving an identity collection never lets a stored value into an error. An application
can bring its own adapter and prove it with the contract suite (``privata_mongo.testing``).
"""

from __future__ import annotations

import typing
from typing import Protocol, TypeVar

from privata_mongo.core.ops import (
    Aggregate,
    Count,
    CreateIndex,
    Delete,
    Distinct,
    Document,
    Drop,
    DropIndex,
    EstimatedCount,
    Explain,
    FetchAll,
    Find,
    FindAndModify,
    IndexInformation,
    Insert,
    Op,
    Replace,
    ReplaceMany,
    Update,
)

__all__ = [
    "CURSOR_OPS",
    "STORE_OPS",
    "AsyncBatchCursor",
    "AsyncDocumentStore",
    "BatchCursor",
    "DocumentStore",
    "StoreOp",
]

R = TypeVar("R")

StoreOp = (
    Find
    | FetchAll
    | Count
    | EstimatedCount
    | Distinct
    | Explain
    | Aggregate
    | Insert
    | Update
    | Replace
    | ReplaceMany
    | Delete
    | FindAndModify
    | CreateIndex
    | DropIndex
    | IndexInformation
    | Drop
)
"""The requests a store executes."""

STORE_OPS: tuple[type[Op[object]], ...] = typing.get_args(StoreOp)
"""``StoreOp`` as a tuple of classes, for ``isinstance``."""

CURSOR_OPS: tuple[type[Op[object]], ...] = (Find, Aggregate)
"""The requests whose result is an open ``BatchCursor`` the driver closes after the flow."""


class BatchCursor(Protocol):
    """An open server cursor read in batches."""

    def next_batch(self, size: int, /) -> list[Document]:
        """Up to ``size`` documents; fewer means the cursor is exhausted."""

    def close(self) -> None:
        """Release the server cursor."""


class DocumentStore(Protocol):
    """One physical collection, executing storage requests."""

    def execute(self, op: Op[R], /) -> R:
        """Execute one of ``STORE_OPS`` and return its result."""


class AsyncBatchCursor(Protocol):
    """An open server cursor read in batches, awaited."""

    async def next_batch(self, size: int, /) -> list[Document]:
        """Up to ``size`` documents; fewer means the cursor is exhausted."""

    async def close(self) -> None:
        """Release the server cursor."""


class AsyncDocumentStore(Protocol):
    """``DocumentStore``, awaited."""

    async def execute(self, op: Op[R], /) -> R:
        """Execute one of ``STORE_OPS`` and return its result."""
