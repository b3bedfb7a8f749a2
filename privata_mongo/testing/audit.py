"""An in-memory audit sink for applications' tests: records in a list, failures on demand.

Use it with ``privata_mongo.configure(audit_sink=ListAuditSink())`` to assert what an
operation recorded, or set ``fail`` to an exception to check that nothing personal is returned
when the audit trail is down.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["ListAuditSink"]


class ListAuditSink:
    """``AuditSink`` (and, since ``append`` never blocks, ``AsyncAuditSink``) over a list.

    Attributes:
        records: the records appended so far, as stored documents.
        fail: an exception ``append`` raises instead of storing (``None``: store).
    """

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.fail: BaseException | None = None

    def append(self, records: Sequence[Mapping[str, Any]], /) -> None:
        """Store copies of ``records``, or raise ``fail``."""
        if self.fail is not None:
            raise self.fail
        self.records.extend(dict(r) for r in records)

    def clear(self) -> None:
        """Forget every record."""
        self.records.clear()
