"""Every cache adapter keeps the port's contract: bytes in, added only where absent, holds.

``MemoryCache`` (cachetools), ``AiocacheCache`` over aiocache's memory and Redis backends, and
``LoopCache`` (the sync facade's way to Redis) run the same checks; an unreachable Redis is
``CacheUnavailable`` and names no key.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiocache import RedisCache, SimpleMemoryCache

from privata_mongo.adapters.cache import (
    BYTES,
    AiocacheCache,
    CacheCounters,
    LoopCache,
    MemoryCache,
)
from privata_mongo.config import parse_cache_uri
from privata_mongo.errors import CacheUnavailable


class _Blocking:
    """An ``AiocacheCache`` driven on a loop of the test's own, as the sync port."""

    def __init__(self, cache: AiocacheCache) -> None:
        self.cache = cache
        self.loop = asyncio.new_event_loop()

    def get(self, keys: Any) -> Any:
        return self.loop.run_until_complete(self.cache.get(keys))

    def add(self, entries: Any) -> None:
        self.loop.run_until_complete(self.cache.add(entries))

    def invalidate(self, keys: Any, hold: float) -> None:
        self.loop.run_until_complete(self.cache.invalidate(keys, hold))

    def close(self) -> None:
        self.loop.run_until_complete(self.cache.close())
        self.loop.close()


def _redis(uri: str, namespace: str) -> AiocacheCache:
    _, options = parse_cache_uri(uri)
    backend = RedisCache(serializer=BYTES, namespace=namespace, **options)
    return AiocacheCache(backend, 0.5, CacheCounters())


@pytest.fixture(params=["cachetools", "aiocache memory", "aiocache redis", "loop redis"])
def cache(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Each adapter, with entries living 0.5 s."""
    namespace = f"contract{id(request)}"
    if request.param == "cachetools":
        yield MemoryCache(0.5, CacheCounters())
        return
    if request.param == "aiocache memory":
        blocking = _Blocking(
            AiocacheCache(SimpleMemoryCache(serializer=BYTES), 0.5, CacheCounters())
        )
        yield blocking
        blocking.close()
        return
    uri: str = request.getfixturevalue("redis_uri")
    if request.param == "aiocache redis":
        blocking = _Blocking(_redis(uri, namespace))
        yield blocking
        blocking.close()
        return
    looped = LoopCache(lambda: _redis(uri, namespace))
    yield looped
    looped.close()


def _eventually(check: Callable[[], bool], seconds: float = 3.0) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_entries_are_added_only_where_absent(cache: Any) -> None:
    cache.add({"a": b"one"})
    cache.add({"a": b"two", "b": b"bee"})
    assert cache.get(["a", "b", "c"]) == {"a": b"one", "b": b"bee"}


def test_a_hold_reads_as_absent_and_cannot_be_added_over_until_it_ends(cache: Any) -> None:
    cache.add({"a": b"one"})
    cache.invalidate(["a", "z"], 0.3)
    assert cache.get(["a", "z"]) == {}
    cache.add({"a": b"stale", "z": b"stale"})
    assert cache.get(["a", "z"]) == {}
    assert _eventually(lambda: (cache.add({"a": b"new"}), cache.get(["a"]))[1] == {"a": b"new"})


def test_entries_expire_after_the_ttl(cache: Any) -> None:
    cache.add({"a": b"one"})
    assert cache.get(["a"]) == {"a": b"one"}
    assert _eventually(lambda: cache.get(["a"]) == {})


def test_hits_and_misses_are_counted(cache: Any) -> None:
    counters: CacheCounters = cache.counters if hasattr(cache, "counters") else cache.cache.counters
    cache.add({"a": b"one"})
    cache.get(["a", "b"])
    assert counters.snapshot(reset=True) == type(counters.snapshot())(1, 1)
    assert counters.snapshot().hits == 0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_an_unreachable_redis_is_cache_unavailable_naming_no_key() -> None:
    cache = LoopCache(lambda: _redis(f"redis://127.0.0.1:{_closed_port()}/0", "down"))
    try:
        for call in (
            lambda: cache.get(["row:secret-name"]),
            lambda: cache.add({"row:secret-name": b"v"}),
            lambda: cache.invalidate(["row:secret-name"], 1.0),
        ):
            with pytest.raises(CacheUnavailable) as caught:
                call()
            assert "secret-name" not in str(caught.value)
    finally:
        cache.close()
