"""pymongo's ``Cursor`` and ``CommandCursor`` over a split collection, read synchronously.

The options are ``_cursor_spec.CursorSpec``'s, shared with the async twin (``aio_cursor``);
this shell only reads. Documents come from the core's find flow, batch by batch, so a large
result is never held in memory at once; indexing and slicing re-run the query with skip and
limit, as pymongo does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from privata_mongo.core.ops import Document
from privata_mongo.proxy._cursor_spec import Batches, CursorSpec, check_length
from privata_mongo.proxy._passes_as import PassesAsNativeCursor

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["ProxyCommandCursor", "ProxyCursor", "batches_of"]


def batches_of(documents: Sequence[Document]) -> Iterator[tuple[Document, ...]]:
    """Documents already in memory as the one batch of a command cursor."""
    if documents:
        yield tuple(documents)


class _Reading:
    """Reading a stream of batches: what both of pymongo's cursor kinds share."""

    _stream: _Stream | None = None

    def _open(self) -> _Stream:
        raise NotImplementedError

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Document:
        if self._stream is None:
            self._stream = self._open()
        return self._stream.next()

    next = __next__

    def close(self) -> None:
        """Release server resources."""
        if self._stream is None:
            self._stream = _Stream(iter(()))
        self._stream.close()

    def to_list(self, length: int | None = None) -> list[Document]:
        """The remaining documents (at most ``length``)."""
        check_length(length)
        out: list[Document] = []
        for document in self:
            out.append(document)
            if length is not None and len(out) >= length:
                break
        return out

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Stream(Batches):
    """The batches of one execution of a flow, read one after the other."""

    def __init__(self, batches: Iterator[tuple[Document, ...]]) -> None:
        super().__init__()
        self._batches = batches

    def next(self) -> Document:
        while (document := self.take()) is None:
            if self.exhausted:
                raise StopIteration
            try:
                self.add(next(self._batches))
            except StopIteration:
                self.end()
                raise
        return document

    def close(self) -> None:
        close = getattr(self._batches, "close", None)
        if close is not None:
            close()
        self.end()


class ProxyCursor(PassesAsNativeCursor, CursorSpec, _Reading):
    """pymongo's ``Cursor`` API over a split collection; passes as the native cursor class."""

    _cursor_kind = "find"

    def _open(self) -> _Stream:
        return _Stream(self._collection._stream_find(self._query()))

    def __next__(self) -> Document:
        if self._empty:
            raise StopIteration
        document = super().__next__()
        self._retrieved += 1
        return document

    next = __next__

    def rewind(self) -> Self:
        """Return to the unevaluated state; the next read runs the query again."""
        if self._stream is not None:
            self._stream.close()
        self._stream = None
        self._retrieved = 0
        return self

    def __getitem__(self, index: int | slice) -> Any:
        clone = self._indexed(index)
        if clone is None:
            return self
        for document in clone:
            return document
        raise IndexError("no such item for Cursor instance")


class ProxyCommandCursor(PassesAsNativeCursor, _Reading):
    """The cursor ``aggregate`` and ``list_indexes`` return: iterate it, or close it."""

    _cursor_kind = "command"

    def __init__(self, collection: Any, batches: Iterator[tuple[Document, ...]]) -> None:
        self._collection = collection
        self._stream = _Stream(batches)

    @property
    def alive(self) -> bool:
        """Whether the cursor may still return documents."""
        return self._stream is not None and not self._stream.exhausted
