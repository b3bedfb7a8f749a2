"""Internal. The async cursors of the embedded backend, and the argument rules it shares.

mongomock evaluates a query in one step, so a cursor here reads its whole result from mongomock
on first use and hands it out from memory; what pymongo's ``AsyncCursor`` and
``AsyncCommandCursor`` promise to their callers (chaining until the first read, ``to_list``
lengths, ``alive``, ``rewind``/``clone``, ``StopAsyncIteration`` at the end) holds unchanged.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from bson.code import Code
from pymongo.collation import Collation, validate_collation_or_none
from pymongo.errors import InvalidOperation

from privata_mongo.adapters._closing import AsyncClosing
from privata_mongo.core.mql.values import sort_pairs

if TYPE_CHECKING:
    from typing_extensions import Self

    from privata_mongo.embedded._collection import AsyncMockCollection

__all__ = [
    "AsyncMockCommandCursor",
    "AsyncMockCursor",
    "Document",
    "SortSpec",
    "UpdateSpec",
    "no_session",
    "projection_document",
    "sort_list",
    "unsupported",
]

Document: TypeAlias = dict[str, Any]
SortSpec: TypeAlias = "str | Sequence[str | tuple[str, Any]] | Mapping[str, Any]"
"""What pymongo accepts as a sort: a key, a list of keys or (key, direction) pairs, a mapping."""
UpdateSpec: TypeAlias = "Mapping[str, Any] | Sequence[Mapping[str, Any]]"
"""An update: an operator document or an aggregation pipeline."""

_FILTER_TYPE_ERROR = (
    "filter must be an instance of dict, bson.son.SON, or any other type that inherits from "
    "collections.Mapping"
)


def no_session(session: object) -> None:
    """Refuse a session: mongomock has neither sessions nor transactions."""
    if session is not None:
        raise NotImplementedError(
            "the embedded (mongomock) backend has no sessions or transactions; "
            "run session-bound code against a MongoDB server"
        )


def unsupported(option: str, value: object) -> None:
    """Refuse an option mongomock would silently ignore although it changes the result."""
    if value:
        raise NotImplementedError(f"{option} is not supported by the embedded (mongomock) backend")


def sort_list(key_or_list: SortSpec, direction: Any = None) -> list[tuple[str, Any]]:
    """A sort in every form pymongo accepts, as the (key, direction) pairs BSON would send."""
    return sort_pairs(key_or_list, direction)


def projection_document(projection: Mapping[str, Any] | Iterable[str] | None) -> Document | None:
    """A projection in either pymongo form (a mapping, a list of included fields) as a mapping."""
    if projection is None:
        return None
    if isinstance(projection, Mapping):
        return dict(projection)
    return dict.fromkeys(projection, 1)


def _integer(name: str, value: object) -> int:
    """``value`` if it is an int (not a bool), as pymongo checks its cursor options."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {type(value)}")
    return value


def _non_negative(name: str, value: object) -> int:
    if _integer(name, value) < 0:
        raise ValueError(f"{name} must be >= 0")
    return _integer(name, value)


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
        self._filter: Document = dict(filter or {})
        self._projection = projection_document(projection)
        self._sort = sort_list(sort) if sort else []
        self._skip = _non_negative("skip", skip)
        self._limit = _integer("limit", limit)
        self._batch_size = _non_negative("batch_size", batch_size)
        self._collation = validate_collation_or_none(collation)
        self._hint = hint
        self._max_time_ms = max_time_ms
        self._allow_disk_use = allow_disk_use
        self._comment = comment
        self._buffer: deque[Document] | None = None
        self._killed = False

    def __repr__(self) -> str:
        return f"AsyncMockCursor({self._collection.full_name!r}, {self._filter!r})"

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

    def _chainable(self) -> None:
        if self._buffer is not None:
            raise InvalidOperation("cannot set options after executing query")

    def sort(self, key_or_list: SortSpec, direction: Any = None) -> Self:
        """Order the results (``"key"``, ``("key", -1)``, a list of pairs or a mapping)."""
        self._chainable()
        pairs = sort_list(key_or_list, direction)
        if not pairs:
            raise ValueError("key_or_list must not be the empty list")
        self._sort = pairs
        return self

    def skip(self, skip: int) -> Self:
        """Skip the first ``skip`` results."""
        self._chainable()
        self._skip = _non_negative("skip", skip)
        return self

    def limit(self, limit: int) -> Self:
        """Return at most ``abs(limit)`` results; 0 means no limit."""
        self._chainable()
        self._limit = _integer("limit", limit)
        return self

    def batch_size(self, batch_size: int) -> Self:
        """Accepted for pymongo compatibility; results are in memory already."""
        self._chainable()
        self._batch_size = _non_negative("batch_size", batch_size)
        return self

    def hint(self, index: Any) -> Self:
        """Accepted as mongomock accepts it: mongomock scans every document anyway."""
        self._chainable()
        self._hint = index
        return self

    def collation(self, collation: Mapping[str, Any] | Collation | None) -> Self:
        """Pass a collation on to mongomock (which does not apply collations)."""
        self._chainable()
        self._collation = validate_collation_or_none(collation)
        return self

    def comment(self, comment: Any) -> Self:
        """Attach a comment (a log annotation on a server; nothing to log here)."""
        self._chainable()
        self._comment = comment
        return self

    def max_time_ms(self, max_time_ms: int | None) -> Self:
        """Accepted for pymongo compatibility; an in-process query never times out."""
        self._chainable()
        if max_time_ms is not None and not isinstance(max_time_ms, int):
            raise TypeError("max_time_ms must be an integer or None")
        self._max_time_ms = max_time_ms
        return self

    def allow_disk_use(self, allow_disk_use: bool) -> Self:
        """Accepted for pymongo compatibility; everything is in memory."""
        self._chainable()
        if not isinstance(allow_disk_use, bool):
            raise TypeError("allow_disk_use must be a bool")
        self._allow_disk_use = allow_disk_use
        return self

    def where(self, code: str | Code) -> Self:
        """Add a ``$where`` clause (mongomock refuses it when the query runs)."""
        self._chainable()
        self._filter["$where"] = code if isinstance(code, Code) else Code(code)
        return self

    def clone(self) -> AsyncMockCursor:
        """An unevaluated copy with the same options."""
        return AsyncMockCursor(
            self._collection,
            copy.deepcopy(self._filter),
            copy.deepcopy(self._projection),
            skip=self._skip,
            limit=self._limit,
            sort=list(self._sort),
            batch_size=self._batch_size,
            collation=self._collation,
            hint=self._hint,
            max_time_ms=self._max_time_ms,
            allow_disk_use=self._allow_disk_use,
            comment=self._comment,
        )

    async def rewind(self) -> Self:
        """Forget what was read: the next read runs the query again."""
        self._buffer = None
        self._killed = False
        return self

    def _mongomock_cursor(self) -> Any:
        cursor = self._collection.inner.find(
            self._filter,
            self._projection,
            skip=self._skip,
            limit=self._limit,
            sort=self._sort or None,
            collation=self._collation,
            max_time_ms=self._max_time_ms,
            allow_disk_use=bool(self._allow_disk_use),
        )
        return cursor.hint(self._hint) if self._hint is not None else cursor

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
        values: list[Any] = self._collection.inner.find(self._filter).distinct(key)
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
