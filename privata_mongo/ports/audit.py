"""The audit port: somewhere records can be appended to, and nothing else.

An audit destination can only ``append``: no method of the port reads, changes or deletes a
record, so code holding a sink cannot rewrite history through it. Records arrive as finished,
chained plain documents (stream, sequence, hashes, names and pseudonyms, never a value); the
sink stores them as they are. A sink that cannot store them raises; the driver turns that into
``AuditUnavailable`` and the operation returns no personal data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from privata_mongo.core.audit import AuditRecord

__all__ = ["AsyncAuditSink", "AsyncAuditTrailPort", "AuditSink", "AuditTrailPort"]


class AuditSink(Protocol):
    """Stores audit records, in order, durably enough for the deployment's audit policy."""

    def append(self, records: Sequence[Mapping[str, Any]], /) -> None:
        """Store ``records``; raise if any of them may not have been stored."""


class AsyncAuditSink(Protocol):
    """The async twin of ``AuditSink``."""

    async def append(self, records: Sequence[Mapping[str, Any]], /) -> None:
        """Store ``records``; raise if any of them may not have been stored."""


class AuditTrailPort(Protocol):
    """Where a driver hands an operation's records: it chains them, then stores them in a sink."""

    def append(self, records: Sequence[AuditRecord], /) -> None:
        """Chain and store ``records``; raise ``AuditUnavailable`` if they may not be stored."""


class AsyncAuditTrailPort(Protocol):
    """The async twin of ``AuditTrailPort``."""

    async def append(self, records: Sequence[AuditRecord], /) -> None:
        """Chain and store ``records``; raise ``AuditUnavailable`` if they may not be stored."""
