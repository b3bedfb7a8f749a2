"""Internal. The audit trail a driver appends to: chains records, then hands them to a sink.

A trail owns one *stream*: a random id and the next sequence number, so records get
consecutive positions and each carries the hash of the one before (``core.audit.link``).
Positions are assigned under a lock, the sink is called outside it; concurrent threads and
tasks therefore share one stream without waiting on each other's I/O. If an append fails, the
trail starts a new stream: the old one ends with the last record stored (``verify`` sees a
complete chain), unless another append of the same stream was in flight and succeeded, which
``verify`` then reports as a missing position — the application saw ``AuditUnavailable`` for it.

A forked process (a pre-fork server's worker: gunicorn, uwsgi, ``multiprocessing``) inherits
its parent's trails, stream id and next position included; several workers appending the same
positions of one stream would collide (all but one append failing after their write applied).
So a child starts a new stream of its own for every trail it inherited, before its first
append: ``os.register_at_fork`` tells it, and a process id check catches a fork that bypassed
it. Records the parent had buffered stay the parent's to store.

In buffered mode (``buffer > 0``, off by default) chained records are kept in memory and
appended ``buffer`` at a time: an operation no longer waits for the audit write, and a crash
loses at most ``buffer - 1`` records (``flush()`` at shutdown writes the rest).
"""

from __future__ import annotations

import inspect
import logging
import os
import secrets
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from privata_mongo.core.audit import GENESIS, AuditRecord, link
from privata_mongo.errors import AuditUnavailable
from privata_mongo.ports.audit import AsyncAuditSink, AuditSink

__all__ = ["AsyncAuditTrail", "AuditTrail"]

logger = logging.getLogger(__name__)


def _random_stream() -> str:
    return secrets.token_hex(8)


class _Chain:
    """Positions of one stream; restarted as a new stream after a failed append or a fork."""

    def __init__(self, buffer: int, new_stream: Callable[[], str]) -> None:
        self._lock = threading.Lock()
        self._new_stream = new_stream
        self._buffer = buffer
        self._pending: list[dict[str, Any]] = []
        self._pid = os.getpid()
        self._restart()
        _chains.add(self)

    def _restart(self) -> None:
        self.stream = self._new_stream()
        self._seq = 0
        self._prev = GENESIS

    def in_this_process(self) -> None:
        """Start a stream of this process's own if the chain was inherited through a fork."""
        if self._pid != os.getpid():
            self.forked()

    def forked(self) -> None:
        """In a child process: a new lock (the parent's may be held), no pending, a new stream."""
        self._lock = threading.Lock()
        self._pending = []
        self._pid = os.getpid()
        self._restart()

    def take(self, records: Sequence[AuditRecord], flush: bool = False) -> list[dict[str, Any]]:
        """Chain ``records``; returns what must be appended now (all of it unless buffered)."""
        with self._lock:
            for record in records:
                document = link(record, self.stream, self._seq, self._prev)
                self._seq += 1
                self._prev = document["hash"]
                self._pending.append(document)
            if not flush and len(self._pending) < self._buffer:
                return []
            out, self._pending = self._pending, []
            return out

    def failed(self, stream: str) -> None:
        with self._lock:
            if self.stream == stream:
                self._restart()


_chains: weakref.WeakSet[_Chain] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """Every chain of the process starts a new stream in a forked child."""
    for chain in list(_chains):
        chain.forked()


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _unavailable(exc: BaseException) -> AuditUnavailable:
    logger.error("audit append failed (%s); no personal data was returned", type(exc).__name__)
    return AuditUnavailable(
        f"the audit trail could not be written ({type(exc).__name__}); the operation returned "
        "no personal data. Writes already applied by the operation stay applied (see "
        "docs/audit.md); check the audit destination and retry"
    )


class AuditTrail:
    """Chains records and appends them to a blocking ``AuditSink``.

    Args:
        sink: the destination.
        buffer: records kept in memory before an append (0: append at every operation).
        new_stream: a fresh random stream id, at the start and after a failed append.
    """

    def __init__(
        self, sink: AuditSink, buffer: int = 0, new_stream: Callable[[], str] = _random_stream
    ) -> None:
        self._sink = sink
        self._chain = _Chain(buffer, new_stream)

    @property
    def stream(self) -> str:
        """The current stream id."""
        return self._chain.stream

    def append(self, records: Sequence[AuditRecord], flush: bool = False) -> None:
        """Chain and store ``records``.

        Raises:
            AuditUnavailable: the sink failed; the records were not (all) stored.
        """
        self._chain.in_this_process()
        stream = self._chain.stream
        documents = self._chain.take(records, flush)
        if not documents:
            return
        try:
            self._sink.append(documents)
        except Exception as exc:
            self._chain.failed(stream)
            raise _unavailable(exc) from exc

    def flush(self) -> None:
        """Store what buffered mode holds."""
        self.append((), flush=True)


class AsyncAuditTrail:
    """The async twin of ``AuditTrail``; a blocking sink (a list in tests) also works."""

    def __init__(
        self,
        sink: AsyncAuditSink | AuditSink,
        buffer: int = 0,
        new_stream: Callable[[], str] = _random_stream,
    ) -> None:
        self._sink = sink
        self._chain = _Chain(buffer, new_stream)

    @property
    def stream(self) -> str:
        """The current stream id."""
        return self._chain.stream

    async def append(self, records: Sequence[AuditRecord], flush: bool = False) -> None:
        """Chain and store ``records``.

        Raises:
            AuditUnavailable: the sink failed; the records were not (all) stored.
        """
        self._chain.in_this_process()
        stream = self._chain.stream
        documents: Sequence[Mapping[str, Any]] = self._chain.take(records, flush)
        if not documents:
            return
        try:
            done = self._sink.append(documents)
            if inspect.isawaitable(done):
                await done
        except Exception as exc:
            self._chain.failed(stream)
            raise _unavailable(exc) from exc

    async def flush(self) -> None:
        """Store what buffered mode holds."""
        await self.append((), flush=True)
