"""Internal. The options of a find, chained as pymongo chains them, shared by both cursor twins.

Options may be set until the first document is read (then ``InvalidOperation``), exactly as in
pymongo; slicing replaces skip and limit; ``clone`` copies the options into a fresh, unread
cursor of the same twin (``copy.copy`` and ``copy.deepcopy`` too, as in pymongo). ``distinct``
and ``explain`` ask the cursor's collection, which answers synchronously or with a coroutine, as
its twin does. The twins (``cursor``,
``aio_cursor``) add only reading: iterated, or awaited.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pymongo.errors import InvalidOperation

from privata_mongo.core.mql.values import sort_pairs
from privata_mongo.core.ops import Document, Query
from privata_mongo.core.projection import normalise_projection

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Batches", "CursorSpec", "check_length", "index_list"]

# Cursor options pymongo's find() accepts that the core passes through uninterpreted.
_PASSED_OPTIONS = (
    "hint",
    "collation",
    "comment",
    "max_time_ms",
    "allow_disk_use",
    "no_cursor_timeout",
    "session",
    "max",
    "min",
    "return_key",
    "show_record_id",
    "let",
    "allow_partial_results",
    "cursor_type",
    "max_await_time_ms",
)


def index_list(key_or_list: Any, direction: Any = None) -> list[tuple[str, Any]]:
    """Normalise the arguments of ``sort``/``create_index`` as pymongo does."""
    return sort_pairs(key_or_list, direction)


def check_length(length: int | None) -> None:
    """``to_list(length)`` takes ``None`` or a positive count, as pymongo's cursors do.

    Raises:
        ValueError: ``length`` is below 1 (pymongo's own message).
    """
    if isinstance(length, int) and length < 1:
        raise ValueError("to_list() length must be greater than 0")


class Batches:
    """The batch being read from one execution of a flow, and whether the stream has ended.

    Both twins' streams keep their documents here; each only fetches the next batch when
    ``take`` finds none, iterating or awaiting.
    """

    def __init__(self, ended: bool = False) -> None:
        self._documents: deque[Document] = deque()
        self.exhausted = ended

    def take(self) -> Document | None:
        """The next buffered document, or ``None`` when the next batch must be fetched."""
        return self._documents.popleft() if self._documents else None

    def add(self, batch: Iterable[Document]) -> None:
        """Buffer a fetched batch."""
        self._documents.extend(batch)

    def end(self) -> None:
        """The stream ended or was closed: nothing more to read."""
        self.exhausted = True
        self._documents.clear()


class CursorSpec:
    """The options of a find, chained as pymongo chains them, for both cursor twins.

    Options may be set until the first document is read (then ``InvalidOperation``); the
    twins add iteration, synchronous or awaited.
    """

    def __init__(
        self,
        collection: Any,
        filter: Mapping[str, Any] | None = None,
        projection: Mapping[str, Any] | Sequence[str] | None = None,
        skip: int = 0,
        limit: int = 0,
        sort: Any = None,
        batch_size: int = 0,
        **options: Any,
    ) -> None:
        if filter is not None and not isinstance(filter, Mapping):
            raise TypeError(
                "filter must be an instance of dict, bson.son.SON, or any other type "
                "that inherits from collections.Mapping"
            )
        self._collection = collection
        self._filter: dict[str, Any] = dict(filter or {})
        self._projection = normalise_projection(projection)
        self._skip = 0
        self._limit = 0
        self._batch_size = 0
        self._sort: list[tuple[str, Any]] = []
        self._options: dict[str, Any] = {}
        self._empty = False
        self._stream: Any = None  # a _Stream, or the async twin's; set when reading starts
        self._retrieved = 0
        self.skip(skip)
        self.limit(limit)
        self.batch_size(batch_size)
        if sort is not None:
            self.sort(sort)
        for name, value in options.items():
            if name not in _PASSED_OPTIONS:
                raise TypeError(f"find() got an unexpected keyword argument '{name}'")
            if value is not None and value is not False:
                self._options[name] = value

    # -- pymongo surface ------------------------------------------------------------------

    @property
    def collection(self) -> Any:
        """The collection this cursor reads."""
        return self._collection

    @property
    def retrieved(self) -> int:
        """How many documents have been returned so far."""
        return self._retrieved

    @property
    def alive(self) -> bool:
        """Whether the cursor may still return documents."""
        return not self._empty and (self._stream is None or not self._stream.exhausted)

    @property
    def address(self) -> Any:
        """The server address, as the client reports it."""
        return getattr(self._collection.database.client, "address", None)

    def _check_okay_to_chain(self) -> None:
        if self._stream is not None:
            raise InvalidOperation("cannot set options after executing query")

    def limit(self, limit: int) -> Self:
        """Limit the number of documents (0: no limit; negative: one batch)."""
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TypeError("limit must be an integer")
        self._check_okay_to_chain()
        self._empty = False
        self._limit = limit
        return self

    def skip(self, skip: int) -> Self:
        """Skip the first ``skip`` documents."""
        if isinstance(skip, bool) or not isinstance(skip, int):
            raise TypeError("skip must be an integer")
        if skip < 0:
            raise ValueError("skip must be >= 0")
        self._check_okay_to_chain()
        self._skip = skip
        return self

    def batch_size(self, batch_size: int) -> Self:
        """How many documents each batch should carry."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise TypeError("batch_size must be an integer")
        if batch_size < 0:
            raise ValueError("batch_size must be >= 0")
        self._check_okay_to_chain()
        self._batch_size = batch_size
        return self

    def sort(self, key_or_list: Any, direction: Any = None) -> Self:
        """Sort by one key and direction, or a list of ``(key, direction)`` pairs."""
        self._check_okay_to_chain()
        self._sort = index_list(key_or_list, direction)
        return self

    def _set(self, name: str, value: Any) -> Self:
        self._check_okay_to_chain()
        if value is None:
            self._options.pop(name, None)
        else:
            self._options[name] = value
        return self

    def hint(self, index: Any) -> Self:
        """Force an index (a name, or keys)."""
        if index is not None and not isinstance(index, str):
            index = index_list(index)
        return self._set("hint", index)

    def collation(self, collation: Any) -> Self:
        """Compare strings with a collation."""
        return self._set("collation", collation)

    def comment(self, comment: Any) -> Self:
        """Attach a comment to the server operation."""
        return self._set("comment", comment)

    def max_time_ms(self, max_time_ms: int | None) -> Self:
        """Server-side time limit."""
        return self._set("max_time_ms", max_time_ms)

    def max_await_time_ms(self, max_await_time_ms: int | None) -> Self:
        """Time limit of a tailable await cursor's getMore."""
        return self._set("max_await_time_ms", max_await_time_ms)

    def allow_disk_use(self, allow_disk_use: bool) -> Self:
        """Let the server spill large sorts to disk."""
        return self._set("allow_disk_use", allow_disk_use or None)

    def max(self, spec: Any) -> Self:
        """Exclusive upper index bound."""
        return self._set("max", spec)

    def min(self, spec: Any) -> Self:
        """Inclusive lower index bound."""
        return self._set("min", spec)

    def where(self, code: Any) -> Self:
        """Add a ``$where`` clause (refused on split models: it cannot see identity fields)."""
        self._check_okay_to_chain()
        self._filter = {**self._filter, "$where": code}
        return self

    def _copy_into(self, twin: CursorSpec) -> None:
        twin._skip, twin._limit, twin._batch_size = self._skip, self._limit, self._batch_size
        twin._sort = list(self._sort)
        twin._options = dict(self._options)
        twin._empty = self._empty

    def _slice(self, index: slice) -> None:
        """Apply ``cursor[a:b]`` as pymongo does: skip and limit replaced, ``[a:a]`` empty."""
        if index.step is not None:
            raise IndexError("Cursor instances do not support slice steps")
        skip = 0
        if index.start is not None:
            if index.start < 0:
                raise IndexError("Cursor instances do not support negative indices")
            skip = index.start
        limit = 0
        if index.stop is not None:
            limit = index.stop - skip
            if limit < 0:
                raise IndexError(f"stop index must be greater than start index for slice {index!r}")
            if limit == 0:
                self._empty = True
        self._skip = skip
        self._limit = limit

    def _indexed(self, index: int | slice) -> Self | None:
        """``cursor[index]`` as pymongo applies it.

        A slice limits this cursor (``None``); an integer gives the clone that reads that one
        document.
        """
        self._check_okay_to_chain()
        self._empty = False
        if isinstance(index, slice):
            self._slice(index)
            return None
        if isinstance(index, int):
            if index < 0:
                raise IndexError("Cursor instances do not support negative indices")
            return self.clone().skip(index + self._skip).limit(-1)
        raise TypeError(f"index {index!r} cannot be applied to Cursor instances")

    def _distinct_options(self) -> dict[str, Any]:
        return {k: v for k, v in self._options.items() if k in ("collation", "session", "comment")}

    def _query(self) -> Query:
        return Query(
            filter=self._filter,
            projection=self._projection,
            sort=tuple(self._sort),
            skip=self._skip,
            limit=self._limit,
            batch_size=self._batch_size,
            options=dict(self._options),
        )

    def clone(self) -> Self:
        """An unevaluated copy with the same options."""
        twin = type(self)(self._collection, self._filter, self._projection)
        self._copy_into(twin)
        return twin

    def __copy__(self) -> Self:
        return self.clone()

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        """An unevaluated copy whose filter and projection are copies too, as pymongo's.

        The collection is shared, never copied: it holds the client.
        """
        twin = type(self)(
            self._collection,
            copy.deepcopy(self._filter, memo),
            copy.deepcopy(self._projection, memo),
        )
        self._copy_into(twin)
        return twin

    def distinct(self, key: str) -> Any:
        """Distinct values of ``key`` among the documents this cursor selects (awaitable async)."""
        return self._collection.distinct(key, self._filter, **self._distinct_options())

    def explain(self) -> Any:
        """The server's plan for the clinical part of this query (awaitable async)."""
        return self._collection._explain(self._query())
