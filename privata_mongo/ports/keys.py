"""Key ports: the key vault that holds data keys, and the shredder that destroys them.

They are separate on purpose: a component that may read and create keys is not thereby able to
destroy them (erasure is a right exercised deliberately, and audited), and an application may
back the shredder with a different, more guarded credential. Key documents are the wrapped
documents of MongoDB's key-vault format; neither port ever sees key material in the clear.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from privata_mongo.core.ops import Document

__all__ = ["AsyncKeyShredder", "AsyncKeyVault", "KeyShredder", "KeyVault"]


class KeyVault(Protocol):
    """Reading and writing wrapped data key documents."""

    def find(self, names: Sequence[str] | None, /) -> list[Document]:
        """The key documents with one of ``names`` as ``keyAltName`` (all when ``None``)."""

    def insert(self, documents: Sequence[Mapping[str, Any]], /) -> None:
        """Insert new key documents; a ``keyAltName`` already taken is skipped, not an error."""

    def replace(self, documents: Sequence[Mapping[str, Any]], /) -> None:
        """Store re-wrapped ``masterKey``/``keyMaterial`` of existing keys, by ``_id``."""


class KeyShredder(Protocol):
    """Destroying data keys (crypto-shredding), and remembering which were destroyed."""

    def shred(self, names: Sequence[str], /) -> int:
        """Delete the keys named ``names`` and record a tombstone per name; the deleted count."""

    def erased(self, names: Sequence[str], /) -> list[str]:
        """Which of ``names`` have a tombstone."""

    def discard(self, names: Sequence[str], /) -> None:
        """Delete keys made for a write that failed (fresh pseudonyms only), no tombstone."""


class AsyncKeyVault(Protocol):
    """``KeyVault``, awaited."""

    async def find(self, names: Sequence[str] | None, /) -> list[Document]:
        """The key documents with one of ``names`` as ``keyAltName`` (all when ``None``)."""

    async def insert(self, documents: Sequence[Mapping[str, Any]], /) -> None:
        """Insert new key documents; a ``keyAltName`` already taken is skipped, not an error."""

    async def replace(self, documents: Sequence[Mapping[str, Any]], /) -> None:
        """Store re-wrapped ``masterKey``/``keyMaterial`` of existing keys, by ``_id``."""


class AsyncKeyShredder(Protocol):
    """``KeyShredder``, awaited."""

    async def shred(self, names: Sequence[str], /) -> int:
        """Delete the keys named ``names`` and record a tombstone per name; the deleted count."""

    async def erased(self, names: Sequence[str], /) -> list[str]:
        """Which of ``names`` have a tombstone."""

    async def discard(self, names: Sequence[str], /) -> None:
        """Delete keys made for a write that failed (fresh pseudonyms only), no tombstone."""
