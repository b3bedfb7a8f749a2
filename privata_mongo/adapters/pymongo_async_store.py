"""The storage port over an async pymongo-shaped collection.

Serves pymongo's ``AsyncCollection`` and any collection with the same awaitable API (the
embedded backend over mongomock, Motor through its adapter). The twin of ``pymongo_store``:
the same table of calls (``pymongo_calls``), awaited where pymongo's async API awaits.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pymongo.errors import OperationFailure

from privata_mongo.adapters.pymongo_calls import IdentityRedaction, StoreErrors, call_for
from privata_mongo.core.ops import Document, Op

__all__ = ["AsyncPymongoCursor", "AsyncPymongoStore"]

R = TypeVar("R")


class AsyncPymongoCursor:
    """An async pymongo cursor read in batches."""

    def __init__(self, cursor: Any, errors: StoreErrors) -> None:
        self._cursor = cursor
        self._errors = errors

    async def next_batch(self, size: int, /) -> list[Document]:
        """Up to ``size`` documents; fewer means the cursor is exhausted."""
        try:
            batch: list[Document] = await self._cursor.to_list(size)
        except OperationFailure as exc:
            self._errors.raise_(exc)
        return batch

    async def close(self) -> None:
        """Release the server cursor."""
        await self._cursor.close()


class AsyncPymongoStore:
    """``AsyncDocumentStore`` over one async pymongo-shaped collection.

    Args:
        collection: a ``pymongo.asynchronous.collection.AsyncCollection`` or a collection of
            the same shape.
        redaction: set for identity collections.
    """

    def __init__(self, collection: Any, redaction: IdentityRedaction | None = None) -> None:
        self.collection = collection
        self.errors = StoreErrors(redaction)

    def __repr__(self) -> str:
        return f"AsyncPymongoStore({self.collection.full_name!r})"

    async def execute(self, op: Op[R], /) -> R:
        """Execute one storage request (see ``ports.storage``)."""
        call = call_for(op, self.errors)
        method = getattr(self.collection, call.method)
        try:
            results = []
            for args, kwargs in call.calls:
                value = method(*args, **kwargs)
                if call.awaited:
                    value = await value
                if call.then is not None:
                    value = await getattr(value, call.then)()
                if call.result == "cursor":
                    return AsyncPymongoCursor(value, self.errors)  # type: ignore[return-value]
                results.append(await value.to_list(None) if call.result == "all" else value)
        except OperationFailure as exc:
            return (call.failed or self.errors.raise_)(exc)  # type: ignore[no-any-return]
        return call.finish(results)  # type: ignore[no-any-return]
