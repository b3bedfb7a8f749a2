"""The storage port over a pymongo-shaped collection: pymongo itself, or mongomock.

mongomock mirrors pymongo's ``Collection`` API and raises pymongo's own error classes, so one
adapter serves both. Which call serves each request is the table in ``pymongo_calls``, shared
with the async twin (``pymongo_async_store``); this module only makes the calls.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, TypeVar

from pymongo.collection import Collection
from pymongo.errors import OperationFailure

from privata_mongo.adapters.pymongo_calls import IdentityRedaction, StoreErrors, call_for
from privata_mongo.core.ops import Document, Op

__all__ = ["PymongoCursor", "PymongoStore"]

R = TypeVar("R")


class PymongoCursor:
    """A pymongo (or mongomock) cursor read in batches."""

    def __init__(self, cursor: Any, errors: StoreErrors) -> None:
        self._cursor = cursor
        self._errors = errors
        self._iterator: Iterator[Document] = iter(cursor)

    def next_batch(self, size: int, /) -> list[Document]:
        """Up to ``size`` documents; fewer means the cursor is exhausted."""
        try:
            return list(itertools.islice(self._iterator, size))
        except OperationFailure as exc:
            self._errors.raise_(exc)

    def close(self) -> None:
        """Release the server cursor."""
        close = getattr(self._cursor, "close", None)
        if close is not None:
            close()


class PymongoStore:
    """``DocumentStore`` over one pymongo-shaped collection.

    Args:
        collection: a ``pymongo.collection.Collection`` or a ``mongomock.Collection``.
        redaction: set for identity collections.
    """

    def __init__(self, collection: Any, redaction: IdentityRedaction | None = None) -> None:
        self.collection = collection
        self.errors = StoreErrors(redaction)
        self._bulk_replace = isinstance(collection, Collection)

    def __repr__(self) -> str:
        return f"PymongoStore({self.collection.full_name!r})"

    def execute(self, op: Op[R], /) -> R:
        """Execute one storage request (see ``ports.storage``)."""
        call = call_for(op, self.errors, bulk_replace=self._bulk_replace)
        method = getattr(self.collection, call.method)
        try:
            results = []
            for args, kwargs in call.calls:
                value = method(*args, **kwargs)
                if call.then is not None:
                    value = getattr(value, call.then)()
                if call.result == "cursor":
                    return PymongoCursor(value, self.errors)  # type: ignore[return-value]
                results.append(list(value) if call.result == "all" else value)
        except OperationFailure as exc:
            return (call.failed or self.errors.raise_)(exc)  # type: ignore[no-any-return]
        return call.finish(results)  # type: ignore[no-any-return]
