"""The cache switch of the load levels: ``PRIVATA_LOAD_CACHE`` (``memory`` or a redis:// URI)."""

from __future__ import annotations

import dataclasses

from privata_mongo.config import Settings

CACHE_ENV = "PRIVATA_LOAD_CACHE"


def cache_supported() -> bool:
    """Whether this version's ``configure`` has a ``cache`` setting to hand the switch to."""
    return "cache" in {f.name for f in dataclasses.fields(Settings)}
