"""The cache switch of the load levels: ``PRIVATA_LOAD_CACHE`` (``memory`` or a redis:// URI)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from privata_mongo.config import Settings

CACHE_ENV = "PRIVATA_LOAD_CACHE"
CACHE_STATS_ENV = "LOAD_CACHE_STATS_DIR"
"""Where each worker writes its cache's hits and misses at shutdown (``cache-<pid>.json``)."""


def hit_rate(directory: Path) -> dict[str, Any]:
    """The hits and misses every worker counted, summed, and their rate (``None``: no lookup)."""
    hits = misses = 0
    files = sorted(directory.glob("cache-*.json"))
    for file in files:
        counted = json.loads(file.read_text())
        hits += int(counted["hits"])
        misses += int(counted["misses"])
    rate = hits / (hits + misses) if hits + misses else None
    return {"workers": len(files), "hits": hits, "misses": misses, "hit_rate": rate}


def cache_supported() -> bool:
    """Whether this version's ``configure`` has a ``cache`` setting to hand the switch to."""
    return "cache" in {f.name for f in dataclasses.fields(Settings)}
