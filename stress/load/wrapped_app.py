"""The FastAPI example as the load levels serve it: the cache switch, then the example's app.

``PRIVATA_LOAD_CACHE`` (``memory`` or a ``redis://`` URI) is handed to
``privata_mongo.configure(cache=...)`` only when this version of privata has that setting, so
the levels can run with the cache as soon as it exists and run without it until then.
"""

from __future__ import annotations

import os

from stress.load.profiling import served as profiled
from stress.load.profiling import start_if_asked

start_if_asked()

import privata_mongo  # noqa: E402 - profiled from its import on
from stress.load.cache import CACHE_ENV, cache_supported  # noqa: E402

_cache = os.environ.get(CACHE_ENV, "").strip()
if _cache and cache_supported():
    privata_mongo.configure(cache=_cache)

from examples.fastapi_app.app import app  # noqa: E402 - after the configuration it reads

served = profiled(app)
"""What uvicorn serves: ``app``, dumping its profile at shutdown under ``--profile``."""

__all__ = ["CACHE_ENV", "app", "cache_supported", "served"]
