"""The FastAPI example as the load levels serve it: the cache switch, then the example's app.

``PRIVATA_LOAD_CACHE`` (``memory`` or a ``redis://`` URI) is handed to
``privata_mongo.configure(cache=...)`` only when this version of privata has that setting, so
the levels can run with the cache as soon as it exists and run without it until then.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from stress.load.profiling import at_shutdown, start_if_asked
from stress.load.profiling import served as profiled

start_if_asked()

import privata_mongo  # noqa: E402 - profiled from its import on
from stress.load.cache import CACHE_ENV, CACHE_STATS_ENV, cache_supported  # noqa: E402

_cache = os.environ.get(CACHE_ENV, "").strip()
if _cache and cache_supported():
    privata_mongo.configure(cache=_cache)
    _stats = os.environ.get(CACHE_STATS_ENV, "").strip()
    if _stats:

        def _dump_stats() -> None:
            counted = privata_mongo.cache_stats()
            found = {"hits": counted.hits, "misses": counted.misses}
            (Path(_stats) / f"cache-{os.getpid()}.json").write_text(json.dumps(found))

        at_shutdown(_dump_stats)

from examples.fastapi_app.app import app  # noqa: E402 - after the configuration it reads

served = profiled(app)
"""What uvicorn serves: ``app``, dumping its profile at shutdown under ``--profile``."""

__all__ = ["CACHE_ENV", "app", "cache_supported", "served"]
