"""Internal. The async cursors of the embedded backend.

mongomock evaluates a query in one step, so a cursor here reads its whole result from mongomock
on first use and hands it out from memory; what pymongo's ``AsyncCursor`` and
``AsyncCommandCursor`` promise to their callers (chaining until the first read, ``to_list``
lengths, ``alive``, ``rewind``/``clone``, ``StopAsyncIteration`` at the end) holds unchanged.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from bson.code import Code
from pymongo.collation import Collation, validate_collation_or_none
from pymongo.errors import InvalidOperation

from privata_mongo.adapters._closing import AsyncClosing
from privata_mongo.embedded._forward import Document, SortSpec, projection_document, sort_list

if TYPE_CHECKING:
    from typing_extensions import Self

    from privata_mongo.embedded._collection import AsyncMockCollection

__all__ = ["AsyncMockCommandCursor", "AsyncMockCursor"]

_FILTER_TYPE_ERROR = (
    "filter must be an instance of dict, bson.son.SON, or any other type that inherits from "
    "collections.Mapping"
)


def _integer(name: str, value: object) -> int:
    """``value`` if it is an int (not a bool), as pymongo checks its cursor options."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {type(value)}")
    return value


def _non_negative(name: str, value: object) -> int:
    if _integer(name, value) < 0:
        raise ValueError(f"{name} must be >= 0")
    return _integer(name, value)


@dataclass(frozen=True, slots=True)
class _Query:
    """What a cursor asks mongomock for, checked as pymongo checks it; chaining replaces it."""

    filter: Document
    projection: Document | None
    skip: int = 0
    limit: int = 0
    sort: list[tuple[str, Any]] = field(default_factory=list)
    batch_size: int = 0
    collation: dict[str, Any] | None = None
    hint: Any = None
    max_time_ms: int | None = None
    allow_disk_use: bool | None = None
    comment: Any = None


class AsyncMockCursor(AsyncClosing):
    """The result of ``AsyncMockCollection.find``: pymongo's ``AsyncCursor`` over mongomock.

    Options may be chained until the first document is read, as with pymongo; the query itself
    (and any error it raises) runs on that first read.
    """

    def __init__(
        self,
        collection: AsyncMockCollection,
        filter: Mapping[str, Any] | None = None,
        projection: Mapping[str, Any] | Iterable[str] | None = None,
        *,
        skip: int = 0,
        limit: int = 0,
        sort: SortSpec | None = None,
        batch_size: int = 0,
        collation: Mapping[str, Any] | Collation | None = None,
        hint: Any = None,
        max_time_ms: int | None = None,
        allow_disk_use: bool | None = None,
        comment: Any = None,
    ) -> None:
        if filter is not None and not isinstance(filter, Mapping):
            raise TypeError(_FILTER_TYPE_ERROR)
        self._collection = collection
        self._query = _Query(
            dict(filter or {}),
            projection_document(projection),
            skip=_non_negative("skip", skip),
            limit=_integer("limit", limit),
            sort=sort_list(sort) if sort else [],
            batch_size=_non_negative("batch_size", batch_size),
            collation=validate_collation_or_none(collation),
            hint=hint,
            max_time_ms=max_time_ms,
            allow_disk_use=allow_disk_use,
            comment=comment,
        )
        self._buffer: deque[Document] | None = None
        self._killed = False

    def __repr__(self) -> str:
        return f"AsyncMockCursor({self._collection.full_name!r}, {self._query.filter!r})"

    @property
    def collection(self) -> AsyncMockCollection:
        """The collection this cursor reads."""
        return self._collection

    @property
    def alive(self) -> bool:
        """Whether the cursor may still return documents."""
        if self._buffer is None:
            return not self._killed
        return bool(self._buffer)

    def _chain(self, **options: Any) -> Self:
        """Change options (already checked, as pymongo checks before it looks at the cursor)."""
        if self._buffer is not None:
            raise InvalidOperation("cannot set options after executing query")
        self._query = replace(self._query, **options)
        return self

    def sort(self, key_or_list: SortSpec, direction: Any = None) -> Self:
        """Order the results (``"key"``, ``("key", -1)``, a list of pairs or a mapping)."""
        pairs = sort_list(key_or_list, direction)
        if not pairs:
            raise ValueError("key_or_list must not be the empty list")
        return self._chain(sort=pairs)

    def skip(self, skip: int) -> Self:
        """Skip the first ``skip`` results."""
        return self._chain(skip=_non_negative("skip", skip))

    def limit(self, limit: int) -> Self:
        """Return at most ``abs(limit)`` results; 0 means no limit."""
        return self._chain(limit=_integer("limit", limit))

    def batch_size(self, batch_size: int) -> Self:
        """Accepted for pymongo compatibility; results are in memory already."""
        return self._chain(batch_size=_non_negative("batch_size", batch_size))

    def hint(self, index: Any) -> Self:
        """Accepted as mongomock accepts it: mongomock scans every document anyway."""
        return self._chain(hint=index)

    def collation(self, collation: Mapping[str, Any] | Collation | None) -> Self:
        """Pass a collation on to mongomock (which does not apply collations)."""
        return self._chain(collation=validate_collation_or_none(collation))

    def comment(self, comment: Any) -> Self:
        """Attach a comment (a log annotation on a server; nothing to log here)."""
        return self._chain(comment=comment)

    def max_time_ms(self, max_time_ms: int | None) -> Self:
        """Accepted for pymongo compatibility; an in-process query never times out."""
        if max_time_ms is not None and not isinstance(max_time_ms, int):
            raise TypeError("max_time_ms must be an integer or None")
        return self._chain(max_time_ms=max_time_ms)

    def allow_disk_use(self, allow_disk_use: bool) -> Self:
        """Accepted for pymongo compatibility; everything is in memory."""
        if not isinstance(allow_disk_use, bool):
            raise TypeError("allow_disk_use must be a bool")
        return self._chain(allow_disk_use=allow_disk_use)

    def where(self, code: str | Code) -> Self:
        """Add a ``$where`` clause (mongomock refuses it when the query runs)."""
        where = code if isinstance(code, Code) else Code(code)
        return self._chain(filter={**self._query.filter, "$where": where})

    def clone(self) -> AsyncMockCursor:
        """An unevaluated copy with the same options."""
        clone = copy.copy(self)
        clone._query = copy.deepcopy(self._query)
        clone._buffer, clone._killed = None, False
        return clone

    async def rewind(self) -> Self:
        """Forget what was read: the next read runs the query again."""
        self._buffer = None
        self._killed = False
        return self

    def _mongomock_cursor(self) -> Any:
        query = self._query
        cursor = self._collection.inner.find(
            query.filter,
            query.projection,
            skip=query.skip,
            limit=query.limit,
            sort=query.sort or None,
            collation=query.collation,
            max_time_ms=query.max_time_ms,
            allow_disk_use=bool(query.allow_disk_use),
        )
        return cursor.hint(query.hint) if query.hint is not None else cursor

    def _documents(self) -> deque[Document]:
        if self._buffer is None:
            self._buffer = deque() if self._killed else deque(self._mongomock_cursor())
        return self._buffer

    async def next(self) -> Document:
        """The next document; ``StopAsyncIteration`` at the end."""
        documents = self._documents()
        if not documents:
            raise StopAsyncIteration
        return documents.popleft()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Document:
        return await self.next()

    async def to_list(self, length: int | None = None) -> list[Document]:
        """The remaining documents, or at most ``length`` of them."""
        return _take(self._documents(), length)

    async def close(self) -> None:
        """Discard what is left; the cursor is dead afterwards."""
        self._killed = True
        self._buffer = deque()

    async def distinct(self, key: str) -> list[Any]:
        """Distinct values of ``key`` among the documents the filter matches."""
        if not isinstance(key, str):
            raise TypeError("key must be an instance of str")
        values: list[Any] = self._collection.inner.find(self._query.filter).distinct(key)
        return values

    async def explain(self) -> Document:
        """Not available: mongomock has no query planner (its sync cursor has no explain).

        Raises:
            NotImplementedError: always, so the embedded backend never reports a made-up plan.
        """
        raise NotImplementedError(
            "the embedded backend (mongomock) has no query planner; run explain() against "
            "a MongoDB server"
        )


class AsyncMockCommandCursor(AsyncClosing):
    """The result of ``aggregate`` and ``list_indexes``: pymongo's ``AsyncCommandCursor`` shape."""

    def __init__(self, documents: Iterable[Document]) -> None:
        self._buffer: deque[Document] = deque(documents)

    def __repr__(self) -> str:
        return f"AsyncMockCommandCursor({len(self._buffer)} left)"

    @property
    def alive(self) -> bool:
        """Whether documents are left."""
        return bool(self._buffer)

    def batch_size(self, batch_size: int) -> Self:
        """Accepted for pymongo compatibility; results are in memory already."""
        _non_negative("batch_size", batch_size)
        return self

    async def next(self) -> Document:
        """The next document; ``StopAsyncIteration`` at the end."""
        if not self._buffer:
            raise StopAsyncIteration
        return self._buffer.popleft()

    async def try_next(self) -> Document | None:
        """The next document, or ``None`` at the end."""
        return self._buffer.popleft() if self._buffer else None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Document:
        return await self.next()

    async def to_list(self, length: int | None = None) -> list[Document]:
        """The remaining documents, or at most ``length`` of them."""
        return _take(self._buffer, length)

    async def close(self) -> None:
        """Discard what is left."""
        self._buffer.clear()


def _take(documents: deque[Document], length: int | None) -> list[Document]:
    if length is not None and length < 1:
        raise ValueError("to_list() length must be greater than 0")
    count = len(documents) if length is None else min(length, len(documents))
    return [documents.popleft() for _ in range(count)]
