"""Internal. The audit trail a driver appends to: chains records, then hands them to a sink.

A trail owns one *stream*: a random id and the next sequence number, so records get
consecutive positions and each carries the MAC of the one before (``core.audit.link``), under
the chain key the trail is given (read from the key vault at its first append, then kept).
When the sink keeps checkpoints (``ports.audit.CheckpointStore``), a new stream is registered in
the ledger before its first records are stored (compare-and-swap, retried while other writers
register theirs), and the stream's checkpoint is replaced after every append.
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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from privata_mongo.core.audit import (
    GENESIS,
    LEDGER_ID,
    AuditRecord,
    checkpoint,
    ledger,
    ledger_streams,
    link,
)
from privata_mongo.errors import AuditUnavailable
from privata_mongo.ports.audit import AsyncAuditSink, AuditSink, CheckpointStore

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

    def take(
        self, records: Sequence[AuditRecord], key: bytes, flush: bool = False
    ) -> list[dict[str, Any]]:
        """Chain ``records``; returns what must be appended now (all of it unless buffered)."""
        with self._lock:
            for record in records:
                document = link(record, self.stream, self._seq, self._prev, key)
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


_LEDGER_ATTEMPTS = 50
"""Compare-and-swap rounds a new stream's registration tries (each lost round is another
writer's registration succeeding, so this bounds contention, not a wait)."""


def _new_streams(documents: Sequence[Mapping[str, Any]]) -> list[str]:
    """The streams ``documents`` start (they hold position 0): register them first."""
    return list(dict.fromkeys(d["stream"] for d in documents if d["seq"] == 0))


def _checkpoints(documents: Sequence[Mapping[str, Any]], key: bytes) -> list[dict[str, Any]]:
    """The checkpoint of each stream of ``documents``: its newest record among them."""
    newest: dict[str, Mapping[str, Any]] = {}
    for document in documents:
        held = newest.get(document["stream"])
        if held is None or held["seq"] < document["seq"]:
            newest[document["stream"]] = document
    return [checkpoint(s, d["seq"], d["hash"], key) for s, d in newest.items()]


def _registered(
    current: Mapping[str, Any] | None, stream: str, key: bytes
) -> dict[str, Any] | None:
    """The ledger naming ``stream`` too (``None``: it already does).

    Raises:
        RuntimeError: the stored ledger does not match its MAC: extending it would seal what
            was altered, so the trail refuses (``verify`` names the problem).
    """
    if current is None:
        return ledger((stream,), 0, key)
    streams = ledger_streams(current, key)
    if streams is None:
        raise RuntimeError("the audit ledger does not match its MAC")
    if stream in streams:
        return None
    return ledger((*streams, stream), int(current["version"]) + 1, key)


def _unavailable(exc: BaseException) -> AuditUnavailable:
    logger.error("audit append failed (%s); no personal data was returned", type(exc).__name__)
    return AuditUnavailable(
        f"the audit trail could not be written ({type(exc).__name__}); the operation returned "
        "no personal data. Writes already applied by the operation stay applied (see "
        "docs/audit.md); check the audit destination and retry"
    )


async def _maybe(value: Any) -> Any:
    """``value``, awaited if it is awaitable (an async trail also takes a blocking sink)."""
    return await value if inspect.isawaitable(value) else value


class AuditTrail:
    """Chains records and appends them to a blocking ``AuditSink``.

    Args:
        sink: the destination.
        buffer: records kept in memory before an append (0: append at every operation).
        new_stream: a fresh random stream id, at the start and after a failed append.
        key: the chain key, or what reads it from the key vault at the first append.
    """

    def __init__(
        self,
        sink: AuditSink,
        buffer: int = 0,
        new_stream: Callable[[], str] = _random_stream,
        *,
        key: bytes | Callable[[], bytes],
    ) -> None:
        self._sink = sink
        self._chain = _Chain(buffer, new_stream)
        self._key_source = key
        self._key: bytes | None = key if isinstance(key, bytes) else None

    def _chain_key(self) -> bytes:
        if self._key is None:
            source = self._key_source
            self._key = source if isinstance(source, bytes) else source()
        return self._key

    def _store(self, documents: Sequence[Mapping[str, Any]], key: bytes) -> None:
        sink = self._sink
        if isinstance(sink, CheckpointStore):
            for stream in _new_streams(documents):
                self._register(sink, stream, key)
        sink.append(documents)
        if isinstance(sink, CheckpointStore):
            for document in _checkpoints(documents, key):
                sink.put(document)

    @staticmethod
    def _register(sink: CheckpointStore, stream: str, key: bytes) -> None:
        for _ in range(_LEDGER_ATTEMPTS):
            current = sink.get(LEDGER_ID)
            updated = _registered(current, stream, key)
            if updated is None or sink.swap(current, updated):
                return
        raise RuntimeError("the audit ledger kept changing; the stream was not registered")

    def key(self) -> bytes:
        """The chain key (read at the first call, then kept): intents are sealed with it too."""
        return self._chain_key()

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
        try:
            key = self._chain_key()
        except Exception as exc:
            raise _unavailable(exc) from exc
        stream = self._chain.stream
        documents = self._chain.take(records, key, flush)
        if not documents:
            return
        try:
            self._store(documents, key)
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
        *,
        key: bytes | Callable[[], Awaitable[bytes]],
    ) -> None:
        self._sink = sink
        self._chain = _Chain(buffer, new_stream)
        self._key_source = key
        self._key: bytes | None = key if isinstance(key, bytes) else None

    async def _chain_key(self) -> bytes:
        if self._key is None:
            source = self._key_source
            self._key = source if isinstance(source, bytes) else await source()
        return self._key

    async def _store(self, documents: Sequence[Mapping[str, Any]], key: bytes) -> None:
        sink: Any = self._sink
        keeps = all(hasattr(sink, name) for name in ("get", "put", "swap"))
        if keeps:
            for stream in _new_streams(documents):
                await self._register(sink, stream, key)
        await _maybe(sink.append(documents))
        if keeps:
            for document in _checkpoints(documents, key):
                await _maybe(sink.put(document))

    @staticmethod
    async def _register(sink: Any, stream: str, key: bytes) -> None:
        for _ in range(_LEDGER_ATTEMPTS):
            current = await _maybe(sink.get(LEDGER_ID))
            updated = _registered(current, stream, key)
            if updated is None or await _maybe(sink.swap(current, updated)):
                return
        raise RuntimeError("the audit ledger kept changing; the stream was not registered")

    async def key(self) -> bytes:
        """The chain key (read at the first call, then kept): intents are sealed with it too."""
        return await self._chain_key()

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
        try:
            key = await self._chain_key()
        except Exception as exc:
            raise _unavailable(exc) from exc
        stream = self._chain.stream
        documents: Sequence[Mapping[str, Any]] = self._chain.take(records, key, flush)
        if not documents:
            return
        try:
            await self._store(documents, key)
        except Exception as exc:
            self._chain.failed(stream)
            raise _unavailable(exc) from exc

    async def flush(self) -> None:
        """Store what buffered mode holds."""
        await self.append((), flush=True)
