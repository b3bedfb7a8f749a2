"""The sync facade's cache: an in-process TTL cache against aiocache through one background loop.

``python -m stress.bench_cache [--redis redis://127.0.0.1:6379/0] [-n 5000]``

Each option serves the sync cache port (``ports.cache.Cache``); the figures are microseconds
per call (median of ``-n`` calls after a warm-up) for what a get by id asks of the cache: one
``get`` of a row and its key (a hit), an ``add`` of two entries, an ``invalidate`` of one.

- ``cachetools``: ``MemoryCache`` (``TLRUCache`` under a lock), what ``memory://`` serves;
- ``aiocache memory via loop``: ``LoopCache`` over aiocache's ``SimpleMemoryCache``;
- ``aiocache redis via loop``: ``LoopCache`` over aiocache's ``RedisCache``, what ``redis://``
  serves (with ``--redis``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from aiocache import RedisCache, SimpleMemoryCache

from privata_mongo.adapters.cache import BYTES, AiocacheCache, CacheCounters, LoopCache, MemoryCache
from privata_mongo.config import parse_cache_uri

ROW = b"\x00" * 300
KEY = b"\x01" * 180


def _median_us(call: Callable[[], Any], n: int) -> float:
    for _ in range(min(200, n)):
        call()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def measure(cache: Any, n: int) -> dict[str, float]:
    """Median µs per get (hit), add and invalidate on ``cache``."""
    cache.add({"row:a": ROW, "key:a": KEY})
    counter = iter(range(10**9))
    return {
        "get": _median_us(lambda: cache.get(["row:a", "key:a"]), n),
        "add": _median_us(
            lambda: cache.add({f"row:{next(counter)}": ROW, f"key:{next(counter)}": KEY}), n
        ),
        "invalidate": _median_us(lambda: cache.invalidate([f"row:{next(counter)}"], 10.0), n),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m stress.bench_cache", description=__doc__)
    parser.add_argument("--redis", help="a redis:// URI to measure too")
    parser.add_argument("-n", type=int, default=5000)
    args = parser.parse_args()
    options: dict[str, Any] = {
        "cachetools": MemoryCache(300.0, CacheCounters()),
        "aiocache memory via loop": LoopCache(
            lambda: AiocacheCache(SimpleMemoryCache(serializer=BYTES), 300.0, CacheCounters())
        ),
    }
    if args.redis:
        _, redis_options = parse_cache_uri(args.redis)
        options["aiocache redis via loop"] = LoopCache(
            lambda: AiocacheCache(
                RedisCache(serializer=BYTES, namespace="bench", **redis_options),
                300.0,
                CacheCounters(),
            )
        )
    print(f"| sync cache | get (µs) | add (µs) | invalidate (µs) |  n = {args.n}")
    print("|---|---|---|---|")
    for name, cache in options.items():
        figures = measure(cache, args.n)
        print(
            f"| {name} | {figures['get']:.1f} | {figures['add']:.1f} | "
            f"{figures['invalidate']:.1f} |"
        )


if __name__ == "__main__":
    main()
