"""pymongo's ``AsyncCursor`` and ``AsyncCommandCursor`` over a split collection, awaited.

The twin of ``cursor``: the options are ``_cursor_spec.CursorSpec``'s; only reading differs.
As in pymongo's async API, a cursor is not indexed (``cursor[3]``) but read with ``to_list``,
``next`` or ``async for``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from privata_mongo.core.ops import Document
from privata_mongo.proxy._cursor_spec import Batches, CursorSpec, check_length
from privata_mongo.proxy._passes_as import PassesAsNativeCursor

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["AsyncProxyCommandCursor", "AsyncProxyCursor", "batches_of"]


async def batches_of(documents: Sequence[Document]) -> AsyncIterator[tuple[Document, ...]]:
    """Documents already in memory as the one batch of a command cursor."""
    if documents:
        yield tuple(documents)


class _Reading:
    """Reading a stream of batches, awaited: what both async cursor kinds share."""

    _stream: _Stream | None = None

    def _open(self) -> _Stream:
        raise NotImplementedError

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Document:
        if self._stream is None:
            self._stream = self._open()
        return await self._stream.next()

    async def next(self) -> Document:
        """The next document (``StopAsyncIteration`` when there is none)."""
        return await self.__anext__()

    async def close(self) -> None:
        """Release server resources."""
        if self._stream is None:
            self._stream = _Stream(None)
        await self._stream.close()

    async def to_list(self, length: int | None = None) -> list[Document]:
        """The remaining documents (at most ``length``)."""
        check_length(length)
        out: list[Document] = []
        async for document in self:
            out.append(document)
            if length is not None and len(out) >= length:
                break
        return out

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _Stream(Batches):
    """The batches of one execution of a flow, awaited one after the other."""

    def __init__(self, batches: AsyncIterator[tuple[Document, ...]] | None) -> None:
        super().__init__(ended=batches is None)  # None: a cursor closed before it was read
        self._batches = batches

    async def next(self) -> Document:
        while (document := self.take()) is None:
            if self.exhausted or self._batches is None:
                raise StopAsyncIteration
            try:
                self.add(await anext(self._batches))
            except StopAsyncIteration:
                self.end()
                raise
        return document

    async def close(self) -> None:
        aclose = getattr(self._batches, "aclose", None)
        if aclose is not None:
            await aclose()
        self.end()


class AsyncProxyCursor(PassesAsNativeCursor, CursorSpec, _Reading):
    """pymongo's ``AsyncCursor`` API over a split collection; passes as the native class."""

    _cursor_kind = "find"

    def _open(self) -> _Stream:
        return _Stream(self._collection._stream_find(self._query()))

    async def __anext__(self) -> Document:
        if self._empty:
            raise StopAsyncIteration
        document = await super().__anext__()
        self._retrieved += 1
        return document

    async def rewind(self) -> Self:
        """Return to the unevaluated state; the next read runs the query again."""
        if self._stream is not None:
            await self._stream.close()
        self._stream = None
        self._retrieved = 0
        return self


class AsyncProxyCommandCursor(PassesAsNativeCursor, _Reading):
    """The cursor ``aggregate`` and ``list_indexes`` return, awaited: iterate it, or close it."""

    _cursor_kind = "command"

    def __init__(self, collection: Any, batches: AsyncIterator[tuple[Document, ...]]) -> None:
        self._collection = collection
        self._stream = _Stream(batches)

    @property
    def alive(self) -> bool:
        """Whether the cursor may still return documents."""
        return self._stream is not None and not self._stream.exhausted
