"""The cache port: bytes under names, added only where absent, invalidated by holds.

Privacy lives in the types: a cache stores ``bytes`` only, and the core gives it only bytes
that are stored anyway (identity rows with their ciphertext, wrapped data key documents;
``core.cache``). Three calls are all the flows need: read some names, add entries where their
name is absent, and replace names by *holds* — a hold reads as absent and cannot be added
over until it expires, which is what keeps a slow reader from putting an old row back after a
writer invalidated it. An adapter that cannot reach its backend raises ``CacheUnavailable``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

__all__ = ["AsyncCache", "Cache"]


class Cache(Protocol):
    """A cache of bytes shared by the operations of one or several processes."""

    def get(self, keys: Sequence[str], /) -> dict[str, bytes]:
        """The entries of ``keys`` it holds (names under a hold or absent are left out)."""

    def add(self, entries: Mapping[str, bytes], /) -> None:
        """Store ``entries`` for the cache's TTL, each only if its name is absent."""

    def invalidate(self, keys: Sequence[str], hold: float, /) -> None:
        """Replace ``keys`` by holds of ``hold`` seconds."""


class AsyncCache(Protocol):
    """``Cache``, awaited."""

    async def get(self, keys: Sequence[str], /) -> dict[str, bytes]:
        """The entries of ``keys`` it holds (names under a hold or absent are left out)."""

    async def add(self, entries: Mapping[str, bytes], /) -> None:
        """Store ``entries`` for the cache's TTL, each only if its name is absent."""

    async def invalidate(self, keys: Sequence[str], hold: float, /) -> None:
        """Replace ``keys`` by holds of ``hold`` seconds."""
