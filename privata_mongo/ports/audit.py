"""The audit port: somewhere records can be appended to, and nothing else.

An audit destination can only ``append``: no method of the port reads, changes or deletes a
record, so code holding a sink cannot rewrite history through it. Records arrive as finished,
chained plain documents (stream, sequence, hashes, names and pseudonyms, never a value); the
sink stores them as they are. A sink that cannot store them raises; the driver turns that into
``AuditUnavailable`` and the operation returns no personal data.

A sink that also keeps *checkpoints* (``CheckpointStore``: the collection sinks and the list
sink do) lets ``verify`` detect the removal of a stream's newest records or of a whole stream
without the caller holding anchors: the trail replaces each stream's checkpoint after every
append and registers every new stream in the ledger (``core.audit.chain``). Both documents are
sealed with the chain key, so the store only keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from privata_mongo.core.audit import AuditRecord

__all__ = [
    "AsyncAuditSink",
    "AsyncAuditTrailPort",
    "AsyncCheckpointStore",
    "AuditSink",
    "AuditTrailPort",
    "CheckpointStore",
]


class AuditSink(Protocol):
    """Stores audit records, in order, durably enough for the deployment's audit policy."""

    def append(self, records: Sequence[Mapping[str, Any]], /) -> None:
        """Store ``records``; raise if any of them may not have been stored."""


class AsyncAuditSink(Protocol):
    """The async twin of ``AuditSink``."""

    async def append(self, records: Sequence[Mapping[str, Any]], /) -> None:
        """Store ``records``; raise if any of them may not have been stored."""


@runtime_checkable
class CheckpointStore(Protocol):
    """Keeps the checkpoint and ledger documents of a trail, by ``_id``."""

    def get(self, id: str, /) -> Mapping[str, Any] | None:
        """The document ``id`` (``None``: absent)."""

    def put(self, document: Mapping[str, Any], /) -> None:
        """Store ``document``, replacing the one with its ``_id``."""

    def swap(self, previous: Mapping[str, Any] | None, document: Mapping[str, Any], /) -> bool:
        """Replace ``previous`` by ``document`` only if it is still stored (``None``: absent).

        Returns whether it did: ``False`` means another writer changed it first.
        """


@runtime_checkable
class AsyncCheckpointStore(Protocol):
    """The async twin of ``CheckpointStore``."""

    async def get(self, id: str, /) -> Mapping[str, Any] | None:
        """The document ``id`` (``None``: absent)."""

    async def put(self, document: Mapping[str, Any], /) -> None:
        """Store ``document``, replacing the one with its ``_id``."""

    async def swap(
        self, previous: Mapping[str, Any] | None, document: Mapping[str, Any], /
    ) -> bool:
        """Replace ``previous`` by ``document`` only if it is still stored (``None``: absent)."""


class AuditTrailPort(Protocol):
    """Where a driver hands an operation's records: it chains them, then stores them in a sink."""

    def append(self, records: Sequence[AuditRecord], /) -> None:
        """Chain and store ``records``; raise ``AuditUnavailable`` if they may not be stored."""


class AsyncAuditTrailPort(Protocol):
    """The async twin of ``AuditTrailPort``."""

    async def append(self, records: Sequence[AuditRecord], /) -> None:
        """Chain and store ``records``; raise ``AuditUnavailable`` if they may not be stored."""
