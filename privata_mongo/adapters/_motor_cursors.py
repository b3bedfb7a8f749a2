"""Internal. Motor's cursors behind pymongo's async cursor API, for ``adapters.motor``.

Motor's cursor chaining and ``clone`` hand back Motor's own cursor, ``rewind`` is not awaited,
``to_list(0)`` answers ``[]`` where pymongo refuses it, and ``aggregate``/``list_indexes`` send
their command on the first read; the classes here present pymongo's behaviour for those calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from privata_mongo.adapters._closing import AsyncClosing

if TYPE_CHECKING:
    from typing_extensions import Self

    from privata_mongo.adapters.motor import MotorCollectionAdapter

__all__ = ["MotorCommandCursorAdapter", "MotorCursorAdapter", "started"]


def _to_list_length(length: int | None) -> None:
    """Refuse a length below 1, as pymongo does (Motor would answer ``[]`` for 0)."""
    if isinstance(length, int) and length < 1:
        raise ValueError("to_list() length must be greater than 0")


class _CursorBase(AsyncClosing):
    """What both cursor adapters share: reading, closing, Motor's own attributes."""

    def __init__(self, motor_cursor: Any, collection: MotorCollectionAdapter) -> None:
        self._motor = motor_cursor
        self._collection = collection

    @property
    def motor(self) -> Any:
        """The Motor cursor."""
        return self._motor

    @property
    def collection(self) -> MotorCollectionAdapter:
        """The collection this cursor reads, adapted."""
        return self._collection

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        return await self._motor.next()

    async def next(self) -> Any:
        """The next document (``StopAsyncIteration`` when there is none)."""
        return await self._motor.next()

    async def to_list(self, length: int | None = None) -> list[Any]:
        """The remaining documents (at most ``length``, which must be positive)."""
        _to_list_length(length)
        documents: list[Any] = await self._motor.to_list(length)
        return documents

    async def close(self) -> None:
        """Kill the server cursor."""
        await self._motor.close()

    def batch_size(self, batch_size: int) -> Self:
        """How many documents each round trip fetches."""
        self._motor.batch_size(batch_size)
        return self

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._motor, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._motor!r})"


def _chaining(name: str) -> Callable[..., Any]:
    """A cursor option: Motor's method, returning the adapted cursor for further chaining."""

    def option(self: MotorCursorAdapter, *args: Any, **kwargs: Any) -> MotorCursorAdapter:
        getattr(self._motor, name)(*args, **kwargs)
        return self

    option.__name__ = option.__qualname__ = name
    option.__doc__ = f"``AsyncCursor.{name}``: set the option and return this cursor."
    return option


class MotorCursorAdapter(_CursorBase):
    """pymongo's ``AsyncCursor`` API over a Motor cursor (``find``)."""

    allow_disk_use = _chaining("allow_disk_use")
    collation = _chaining("collation")
    comment = _chaining("comment")
    hint = _chaining("hint")
    limit = _chaining("limit")
    max = _chaining("max")
    max_await_time_ms = _chaining("max_await_time_ms")
    max_scan = _chaining("max_scan")
    max_time_ms = _chaining("max_time_ms")
    min = _chaining("min")
    remove_option = _chaining("remove_option")
    skip = _chaining("skip")
    sort = _chaining("sort")
    where = _chaining("where")

    async def add_option(self, mask: int) -> Self:
        """Set a query flag (awaited in pymongo's async API)."""
        self._motor.add_option(mask)
        return self

    @property
    def retrieved(self) -> int:
        """How many documents the cursor has returned so far."""
        return int(self._motor.delegate.retrieved)

    def clone(self) -> MotorCursorAdapter:
        """An unevaluated copy with the same options."""
        return MotorCursorAdapter(self._motor.clone(), self._collection)

    def __copy__(self) -> MotorCursorAdapter:
        return self.clone()

    async def rewind(self) -> Self:
        """Return to the unevaluated state; the next read runs the query again."""
        self._motor.rewind()
        return self

    async def distinct(self, key: str) -> list[Any]:
        """Distinct values of ``key`` among the documents this cursor selects."""
        return list(await self._motor.distinct(key))

    async def explain(self) -> Any:
        """The server's plan for this query."""
        return await self._motor.explain()


class MotorCommandCursorAdapter(_CursorBase):
    """pymongo's ``AsyncCommandCursor`` API over Motor's (``aggregate``, ``list_indexes`` ...)."""

    async def try_next(self) -> Any:
        """The next document if one is buffered or fetched now, else ``None``."""
        return await self._motor.try_next()


async def started(cursor: Any, collection: MotorCollectionAdapter) -> MotorCommandCursorAdapter:
    """Send the command of a Motor latent cursor now, as pymongo does when it is awaited.

    Motor runs ``aggregate``/``list_indexes`` on the first read, so a failing pipeline would
    raise from ``to_list`` instead of from ``await collection.aggregate(...)``; the first batch
    stays buffered in the cursor.
    """
    if not cursor.started:
        await cursor._get_more()
    return MotorCommandCursorAdapter(cursor, collection)
