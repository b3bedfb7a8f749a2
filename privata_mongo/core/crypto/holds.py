"""The data keys a running operation uses, kept from eviction until it is done with them.

One data key per data subject means the key ring cannot keep every key a process reads, so it
evicts (``KeyRing``, past its ``size``). An operation loads the keys of the rows it reads and
opens the rows right after; if another operation (another thread, another task) filled the
ring in between, an eviction would take a key the first one is about to use. A time grace
("never evict a key loaded in the last N seconds") guards that only as far as N outlasts every
operation, and it lets the ring grow with whatever a process reads in N seconds.

A hold is exact instead: while a flow runs under ``holding``, every key the ring hands it
(loaded, found in memory, confirmed by the shared cache) is pinned until the flow no longer
needs it — the end of the flow, or each ``Emit`` of a stream, since a batch handed to its
consumer is already opened and the next batch loads its own keys. The ring therefore holds at
most its ``size``, or the keys of the operations running at that moment if those are more:
bounded by the batches in flight, not by the number of documents read.

The current hold travels in a ``ContextVar`` set only while the flow's own code runs (between
its requests): threads and asyncio tasks each step their own flows, so each sees its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

from privata_mongo.core.ops import Emit, Flow, Steps

__all__ = ["Hold", "Pinned", "current", "holding"]

T = TypeVar("T")


class Pinned(Protocol):
    """What keeps pinned entries: told which of its keys a finished hold no longer needs."""

    def release(self, keys: Iterable[bytes]) -> None:
        """Unpin ``keys`` once each (a key several holds pinned stays until the last lets go)."""


class Hold:
    """The keys one running operation has been handed, by the ring that holds them."""

    __slots__ = ("_pinned",)

    def __init__(self) -> None:
        self._pinned: dict[Pinned, set[bytes]] = {}

    def take(self, owner: Pinned, key: bytes) -> bool:
        """Count ``key`` of ``owner`` as used by this operation; ``False`` if it already was."""
        keys = self._pinned.setdefault(owner, set())
        if key in keys:
            return False
        keys.add(key)
        return True

    def release(self) -> None:
        """Let go of every key taken so far."""
        pinned, self._pinned = self._pinned, {}
        for owner, keys in pinned.items():
            owner.release(keys)


_current: ContextVar[Hold | None] = ContextVar("privata_key_hold", default=None)


def current() -> Hold | None:
    """The hold of the flow whose code is running now, if it runs under ``holding``."""
    return _current.get()


def holding(flow: Flow[T]) -> Flow[T]:
    """``flow`` with the keys it uses held until it emits a batch or ends, however it ends.

    Requests, answers and errors pass through unchanged; the hold is current only while
    ``flow`` itself runs.
    """
    hold = Hold()
    steps = Steps(flow)
    result: Any = None
    error: BaseException | None = None
    try:
        while True:
            token = _current.set(hold)
            try:
                op = steps.advance(result, error)
            finally:
                _current.reset(token)
            if op is None:
                return steps.value
            if isinstance(op, Emit):
                hold.release()
            result, error = None, None
            try:
                result = yield from op
            except GeneratorExit:
                raise
            except Exception as exc:  # handed back into the flow, which decides
                error = exc
    finally:
        token = _current.set(hold)  # the flow's own ``finally`` blocks run as the flow
        try:
            steps.close()
        finally:
            _current.reset(token)
            hold.release()
