"""Cache adapters: aiocache (memory, Redis) awaited, and two blocking ones for the sync facade.

``AiocacheCache`` serves the async port over any aiocache backend: ``SimpleMemoryCache`` (one
event loop's memory) or ``RedisCache`` (shared by every process that names the same server).
Adding where absent is Redis's ``SET NX PX`` (one pipelined round trip for a batch of rows),
a hold is an empty value with its own expiry, and a multi-get is one ``MGET``.

The sync facade measured two ways of blocking on a cache (``docs/performance.md``, *Cache*):
an in-process TTL cache (cachetools' ``TLRUCache`` under a lock, ``MemoryCache``) and aiocache
driven through one background event loop thread (``LoopCache``). In-process memory is served
by the first (no thread hop); Redis by the second (aiocache's Redis client on a loop of its
own, so one mechanism serves both flavours).

Every adapter counts the names it was asked for that it held (hits) and did not (misses) in a
``CacheCounters`` shared by the adapters of one cache URI, for ``privata_mongo.cache_stats``.
A backend error becomes ``CacheUnavailable`` naming the backend, never a key or a value.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiocache.base import BaseCache  # type: ignore[import-untyped]
from aiocache.serializers import BaseSerializer  # type: ignore[import-untyped]
from cachetools import TLRUCache

from privata_mongo.errors import CacheUnavailable

__all__ = ["AiocacheCache", "CacheCounters", "CacheStats", "LoopCache", "MemoryCache"]

T = TypeVar("T")

_HOLD = b""
"""What a hold stores: no cached value is empty (rows and key documents are BSON)."""


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Hits and misses counted since the process started (or since a reset).

    Attributes:
        hits: names asked for that the cache held.
        misses: names asked for that it did not hold (absent, expired or under a hold).
    """

    hits: int = 0
    misses: int = 0

    @property
    def hit_rate(self) -> float:
        """Hits over lookups (0.0 before the first lookup)."""
        asked = self.hits + self.misses
        return self.hits / asked if asked else 0.0


class CacheCounters:
    """Thread-safe hit and miss counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def count(self, hits: int, misses: int) -> None:
        """Add one lookup's hits and misses."""
        with self._lock:
            self._hits += hits
            self._misses += misses

    def snapshot(self, *, reset: bool = False) -> CacheStats:
        """The counts now; ``reset`` starts them again from zero."""
        with self._lock:
            stats = CacheStats(self._hits, self._misses)
            if reset:
                self._hits = self._misses = 0
        return stats


class _Bytes(BaseSerializer):  # type: ignore[misc]
    """Values are bytes already: stored and read back unchanged (no text decoding)."""

    DEFAULT_ENCODING = None

    def dumps(self, value: bytes) -> bytes:
        return value

    def loads(self, value: bytes | None) -> bytes | None:
        return value


BYTES = _Bytes()
"""The serializer an aiocache backend given to ``AiocacheCache`` is built with."""


def _unavailable(backend: str, exc: BaseException) -> CacheUnavailable:
    return CacheUnavailable(
        f"the {backend} cache could not be reached ({type(exc).__name__}); check "
        "configure(cache=...) and that the server is running"
    )


def _found(keys: Sequence[str], values: Sequence[Any]) -> dict[str, bytes]:
    return {k: bytes(v) for k, v in zip(keys, values, strict=True) if v}


class AiocacheCache:
    """The async cache port over an aiocache backend built with ``BYTES``.

    Args:
        backend: an aiocache ``SimpleMemoryCache`` or ``RedisCache``.
        ttl: seconds an added entry lives.
        counters: where hits and misses are counted.
    """

    def __init__(self, backend: BaseCache, ttl: float, counters: CacheCounters) -> None:
        self.backend = backend
        self.ttl = float(ttl)
        self.counters = counters
        self._name = getattr(backend, "NAME", "aiocache")
        self._redis = getattr(backend, "client", None) if self._name == "redis" else None

    async def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        try:
            return await make()
        except CacheUnavailable:
            raise
        except Exception as exc:
            raise _unavailable(self._name, exc) from None

    async def get(self, keys: Sequence[str], /) -> dict[str, bytes]:
        """The held entries of ``keys`` (one ``MGET`` on Redis)."""
        names = list(keys)
        values = await self._call(lambda: self.backend.multi_get(names))
        found = _found(names, values)
        self.counters.count(len(found), len(names) - len(found))
        return found

    async def add(self, entries: Mapping[str, bytes], /) -> None:
        """Store each entry whose name is absent (``SET NX PX``, pipelined, on Redis)."""
        if not entries:
            return
        if self._redis is not None:
            await self._call(lambda: self._add_redis(entries))
            return
        for key, value in entries.items():
            await self._add_one(key, value)

    async def _add_one(self, key: str, value: bytes) -> None:
        try:
            await self.backend.add(key, value, ttl=self.ttl)
        except ValueError:
            return  # present, or held: not replaced
        except Exception as exc:
            raise _unavailable(self._name, exc) from None

    async def _add_redis(self, entries: Mapping[str, bytes]) -> None:
        milliseconds = max(1, int(self.ttl * 1000))
        async with self._redis.pipeline(transaction=False) as pipe:  # type: ignore[union-attr]
            for key, value in entries.items():
                pipe.set(self.backend.build_key(key), value, nx=True, px=milliseconds)
            await pipe.execute()

    async def invalidate(self, keys: Sequence[str], hold: float, /) -> None:
        """Replace ``keys`` by holds (one ``MSET`` and its expiries on Redis)."""
        if not keys:
            return
        pairs = [(key, _HOLD) for key in keys]
        await self._call(lambda: self.backend.multi_set(pairs, ttl=float(hold)))

    async def close(self) -> None:
        """Close the backend's connections (and, on Redis, its connection pool)."""
        if self._redis is not None:
            await self._redis.aclose(close_connection_pool=True)
            return
        await self.backend.close()


class MemoryCache:
    """The sync cache port in this process's memory: cachetools' ``TLRUCache`` under a lock.

    Entries live ``ttl`` seconds and holds their own; at most ``maxsize`` names are kept (the
    least recently used go first).
    """

    def __init__(
        self,
        ttl: float,
        counters: CacheCounters,
        *,
        maxsize: int = 100_000,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = float(ttl)
        self.counters = counters
        self._lock = threading.Lock()
        self._holds: dict[str, float] = {}
        self._entries: TLRUCache[str, bytes] = TLRUCache(maxsize, self._expiry, timer=timer)

    def _expiry(self, key: str, value: bytes, now: float) -> float:
        if value == _HOLD:
            return now + self._holds.pop(key, self.ttl)
        return now + self.ttl

    def get(self, keys: Sequence[str], /) -> dict[str, bytes]:
        """The held entries of ``keys``."""
        names = list(keys)
        with self._lock:
            values = [self._entries.get(key) for key in names]
        found = _found(names, values)
        self.counters.count(len(found), len(names) - len(found))
        return found

    def add(self, entries: Mapping[str, bytes], /) -> None:
        """Store each entry whose name is absent (or expired)."""
        with self._lock:
            for key, value in entries.items():
                if key not in self._entries:
                    self._entries[key] = value

    def invalidate(self, keys: Sequence[str], hold: float, /) -> None:
        """Replace ``keys`` by holds of ``hold`` seconds."""
        with self._lock:
            for key in keys:
                self._holds[key] = float(hold)
                self._entries[key] = _HOLD

    def values(self) -> list[bytes]:
        """Every value held now (for tests that check what a cache holds)."""
        with self._lock:
            return list(self._entries.values())


class LoopCache:
    """The sync cache port over an ``AiocacheCache`` run on one background event loop thread.

    The loop (a daemon thread) is started at the first call; every call blocks on the
    coroutine it hands the loop, for at most ``timeout`` seconds.

    Args:
        make: builds the async cache, called once on the loop's thread (aiocache's Redis
            client is bound to the loop that first uses it).
        timeout: seconds one call may take before it fails with ``CacheUnavailable``.
    """

    def __init__(self, make: Callable[[], AiocacheCache], *, timeout: float = 5.0) -> None:
        self._make = make
        self._timeout = timeout
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._inner: AiocacheCache | None = None

    def _start(self) -> tuple[asyncio.AbstractEventLoop, AiocacheCache]:
        with self._lock:
            if self._loop is None or self._inner is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="privata-cache", daemon=True
                )
                thread.start()
                self._thread = thread

                async def made() -> AiocacheCache:
                    return self._make()

                self._inner = asyncio.run_coroutine_threadsafe(made(), loop).result()
                self._loop = loop
            return self._loop, self._inner

    def _run(self, coroutine: Callable[[AiocacheCache], Coroutine[Any, Any, T]]) -> T:
        loop, inner = self._start()
        future = asyncio.run_coroutine_threadsafe(coroutine(inner), loop)
        try:
            return future.result(self._timeout)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise _unavailable("background", exc) from None

    @property
    def counters(self) -> CacheCounters:
        """The counters of the cache it runs."""
        return self._start()[1].counters

    def get(self, keys: Sequence[str], /) -> dict[str, bytes]:
        """The held entries of ``keys``."""
        return self._run(lambda c: c.get(keys))

    def add(self, entries: Mapping[str, bytes], /) -> None:
        """Store each entry whose name is absent."""
        self._run(lambda c: c.add(entries))

    def invalidate(self, keys: Sequence[str], hold: float, /) -> None:
        """Replace ``keys`` by holds of ``hold`` seconds."""
        self._run(lambda c: c.invalidate(keys, hold))

    def close(self) -> None:
        """Close the cache's connections and stop its loop (a later call starts a new one)."""
        with self._lock:
            loop, inner, thread = self._loop, self._inner, self._thread
            self._loop = self._inner = self._thread = None
        if loop is None or inner is None or thread is None:
            return
        with contextlib.suppress(Exception):  # an unreachable server's connections
            asyncio.run_coroutine_threadsafe(inner.close(), loop).result(self._timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(self._timeout)
        loop.close()
