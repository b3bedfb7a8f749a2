"""The caches the settings name, one per URI and flavour, and their hit counts.

``configure(cache="memory://")`` caches in this process's memory; ``configure(cache=
"redis://host:port/db")`` in a Redis server every process of the deployment shares, which is
what makes one process's erasure visible to the others within the key recheck interval
(``docs/cache.md``). The sync facade's memory cache is cachetools' TTL cache, its Redis cache
aiocache's client on one background loop; the async side uses aiocache on the running loop
(one instance per event loop: aiocache's memory expiry and Redis connections belong to the
loop that made them). Caches are made when an operation first asks for them and kept for the
process, so every connection of one flavour shares one.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from privata_mongo.adapters.cache import (
    BYTES,
    AiocacheCache,
    CacheCounters,
    CacheStats,
    LoopCache,
    MemoryCache,
)
from privata_mongo.config import Settings, parse_cache_uri, region_cache
from privata_mongo.errors import ConfigurationError

__all__ = [
    "NAMESPACE",
    "AsyncCurrentCache",
    "CurrentCache",
    "async_cache",
    "cache_stats",
    "close_async_caches",
    "close_caches",
    "sync_cache",
]

NAMESPACE = "privata"
"""The prefix of every name the cache stores (``privata:row:…``, ``privata:key:…``)."""

_lock = threading.Lock()
_counters: dict[str, CacheCounters] = {}
_sync: dict[tuple[str, float, str], MemoryCache | LoopCache] = {}
_async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, float, str], Any]] = (
    weakref.WeakKeyDictionary()
)


def _named(settings: Settings, region: str | None) -> tuple[str | None, str]:
    """The URI and scope of the deployment's cache, or of region ``region``'s entries."""
    if region is None:
        return settings.cache, ""
    return region_cache(settings, region)


def _counted(uri: str) -> CacheCounters:
    with _lock:
        return _counters.setdefault(uri, CacheCounters())


def _aiocache(uri: str, ttl: float) -> AiocacheCache:
    kind, options = parse_cache_uri(uri)
    if kind == "memory":
        from aiocache import SimpleMemoryCache  # type: ignore[import-untyped]

        backend = SimpleMemoryCache(serializer=BYTES, namespace=NAMESPACE)
    else:
        try:
            from aiocache import RedisCache
        except ImportError:
            raise ConfigurationError(
                "a redis:// cache needs the redis package: pip install 'privata-mongo[cache-redis]'"
            ) from None
        backend = RedisCache(serializer=BYTES, namespace=NAMESPACE, **options)
    return AiocacheCache(backend, ttl, _counted(uri))


def sync_cache(settings: Settings, region: str | None = None) -> MemoryCache | LoopCache | None:
    """The blocking cache the settings name (``None``: no cache).

    With ``region``, the cache of that region's entries (``config.region_cache``): its own,
    the deployment's in-process one, or none.
    """
    uri, scope = _named(settings, region)
    if uri is None:
        return None
    key = (uri, settings.cache_ttl, scope)
    held = _sync.get(key)
    if held is not None:
        return held
    with _lock:
        held = _sync.get(key)
        if held is None:
            kind, _ = parse_cache_uri(uri)
            ttl = settings.cache_ttl
            if kind == "memory":
                counters = _counters.setdefault(uri, CacheCounters())
                held = MemoryCache(ttl, counters)
            else:
                held = LoopCache(lambda: _aiocache(uri, ttl))
            _sync[key] = held
    return held


def async_cache(settings: Settings, region: str | None = None) -> AiocacheCache | None:
    """The awaited cache the settings name on the running event loop (``None``: no cache).

    With ``region``, the cache of that region's entries, as ``sync_cache``.
    """
    uri, scope = _named(settings, region)
    if uri is None:
        return None
    loop = asyncio.get_running_loop()
    key = (uri, settings.cache_ttl, scope)
    with _lock:
        held = _async.setdefault(loop, {})
        cache = held.get(key)
    if cache is None:
        made = _aiocache(uri, settings.cache_ttl)
        with _lock:
            cache = held.setdefault(key, made)
    result: AiocacheCache = cache
    return result


def cache_stats(*, reset: bool = False) -> CacheStats:
    """Hits and misses of every cache of this process since it started (or the last reset).

    Args:
        reset: start counting again from zero after reading.
    """
    with _lock:
        counters = list(_counters.values())
    hits = misses = 0
    for counter in counters:
        stats = counter.snapshot(reset=reset)
        hits += stats.hits
        misses += stats.misses
    return CacheStats(hits, misses)


def close_caches() -> None:
    """Close the sync caches of the process (connections, background loop); for shutdown.

    A later operation makes a new one.
    """
    with _lock:
        held = list(_sync.values())
        _sync.clear()
    for cache in held:
        if isinstance(cache, LoopCache):
            cache.close()


async def close_async_caches() -> None:
    """Close the running event loop's caches (their Redis connections); for shutdown."""
    loop = asyncio.get_running_loop()
    with _lock:
        held = list(_async.pop(loop, {}).values())
    for cache in held:
        await cache.close()


class CurrentCache:
    """The cache the settings name when a request runs (none: nothing is held).

    With ``region``, the cache of that region's entries (``config.region_cache``), so a
    region's identity rows and wrapped keys are only ever put in, read from and invalidated
    in its own cache.
    """

    def __init__(self, settings: Callable[[], Settings], region: str | None = None) -> None:
        self._settings = settings
        self._region = region

    def get(self, keys: Sequence[str], /) -> dict[str, bytes]:
        """The held entries of ``keys``."""
        cache = sync_cache(self._settings(), self._region)
        return {} if cache is None else cache.get(keys)

    def add(self, entries: Mapping[str, bytes], /) -> None:
        """Store each entry whose name is absent."""
        cache = sync_cache(self._settings(), self._region)
        if cache is not None:
            cache.add(entries)

    def invalidate(self, keys: Sequence[str], hold: float, /) -> None:
        """Replace ``keys`` by holds of ``hold`` seconds."""
        cache = sync_cache(self._settings(), self._region)
        if cache is not None:
            cache.invalidate(keys, hold)


class AsyncCurrentCache:
    """``CurrentCache`` for the awaited driver (aiocache on the running loop)."""

    def __init__(self, settings: Callable[[], Settings], region: str | None = None) -> None:
        self._settings = settings
        self._region = region

    async def get(self, keys: Sequence[str], /) -> dict[str, bytes]:
        """The held entries of ``keys``."""
        cache = async_cache(self._settings(), self._region)
        return {} if cache is None else await cache.get(keys)

    async def add(self, entries: Mapping[str, bytes], /) -> None:
        """Store each entry whose name is absent."""
        cache = async_cache(self._settings(), self._region)
        if cache is not None:
            await cache.add(entries)

    async def invalidate(self, keys: Sequence[str], hold: float, /) -> None:
        """Replace ``keys`` by holds of ``hold`` seconds."""
        cache = async_cache(self._settings(), self._region)
        if cache is not None:
            await cache.invalidate(keys, hold)
