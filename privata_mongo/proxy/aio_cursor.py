"""The async twin of ``cursor``: pymongo's ``AsyncCursor`` API over a split collection.

Options chain exactly as in the sync cursor (``CursorSpec``); reading is awaited. As in pymongo's
async API, a cursor is not indexed (``cursor[3]``) but read with ``to_list``, ``next`` or
``async for``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from privata_mongo.core.ops import Document
from privata_mongo.proxy.cursor import CursorSpec, check_length

if TYPE_CHECKING:
    from typing_extensions import Self

    from privata_mongo.proxy.aio_collection import AsyncPrivateCollection

__all__ = ["AsyncProxyCommandCursor", "AsyncProxyCursor", "batches_of"]


class _AsyncStream:
    """Buffers the batches of one execution of a flow, awaited."""

    def __init__(self, batches: AsyncIterator[tuple[Document, ...]] | None) -> None:
        self._batches = batches
        self._buffer: deque[Document] = deque()
        self.exhausted = batches is None  # None: a cursor closed before it was read

    async def next(self) -> Document:
        while not self._buffer:
            if self.exhausted or self._batches is None:
                raise StopAsyncIteration
            try:
                self._buffer.extend(await anext(self._batches))
            except StopAsyncIteration:
                self.exhausted = True
                raise
        return self._buffer.popleft()

    async def close(self) -> None:
        aclose = getattr(self._batches, "aclose", None)
        if aclose is not None:
            await aclose()
        self.exhausted = True
        self._buffer.clear()


async def batches_of(documents: Sequence[Document]) -> AsyncIterator[tuple[Document, ...]]:
    """Documents already in memory as the one batch of a command cursor."""
    if documents:
        yield tuple(documents)


async def _to_list(cursor: Any, length: int | None) -> list[Document]:
    check_length(length)
    out: list[Document] = []
    async for document in cursor:
        out.append(document)
        if length is not None and len(out) >= length:
            break
    return out


class AsyncProxyCursor(CursorSpec):
    """pymongo's ``AsyncCursor`` API over a split collection."""

    _collection: AsyncPrivateCollection
    _stream: _AsyncStream | None

    def clone(self) -> AsyncProxyCursor:
        """An unevaluated copy with the same options."""
        twin = AsyncProxyCursor(self._collection, self._filter, self._projection)
        self._copy_into(twin)
        return twin

    async def rewind(self) -> Self:
        """Return to the unevaluated state; the next read runs the query again."""
        if self._stream is not None:
            await self._stream.close()
        self._stream = None
        self._retrieved = 0
        return self

    async def close(self) -> None:
        """Release server resources."""
        if self._stream is None:
            self._stream = _AsyncStream(None)
        await self._stream.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Document:
        if self._empty:
            raise StopAsyncIteration
        if self._stream is None:
            self._stream = _AsyncStream(self._collection._stream_find(self._query()))
        document = await self._stream.next()
        self._retrieved += 1
        return document

    async def next(self) -> Document:
        """The next document (``StopAsyncIteration`` when there is none)."""
        return await self.__anext__()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def to_list(self, length: int | None = None) -> list[Document]:
        """The remaining documents (at most ``length``)."""
        return await _to_list(self, length)

    async def distinct(self, key: str) -> list[Any]:
        """Distinct values of ``key`` among the documents this cursor selects."""
        found: list[Any] = await self._collection.distinct(
            key, self._filter, **self._distinct_options()
        )
        return found

    async def explain(self) -> Document:
        """The server's plan for the clinical part of this query."""
        return await self._collection._explain(self._query())


class AsyncProxyCommandCursor:
    """The cursor ``aggregate`` returns, awaited: iterate it, or close it."""

    def __init__(self, collection: Any, batches: AsyncIterator[tuple[Document, ...]]) -> None:
        self._collection = collection
        self._stream = _AsyncStream(batches)

    @property
    def alive(self) -> bool:
        """Whether the cursor may still return documents."""
        return not self._stream.exhausted

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Document:
        return await self._stream.next()

    async def next(self) -> Document:
        """The next document (``StopAsyncIteration`` when there is none)."""
        return await self._stream.next()

    async def close(self) -> None:
        """Release server resources."""
        await self._stream.close()

    async def to_list(self, length: int | None = None) -> list[Document]:
        """The remaining documents (at most ``length``)."""
        return await _to_list(self, length)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
