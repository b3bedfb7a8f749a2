"""An in-memory audit sink for applications' tests: records in a list, failures on demand.

Use it with ``privata_mongo.configure(audit_sink=ListAuditSink())`` to assert what an
operation recorded, or set ``fail`` to an exception to check that nothing personal is returned
when the audit trail is down.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

__all__ = ["ListAuditSink"]


class ListAuditSink:
    """``AuditSink`` (and, since ``append`` never blocks, ``AsyncAuditSink``) over a list.

    It keeps the trail's checkpoints and ledger too (``CheckpointStore``), apart from the
    records; iterating the sink gives both, which is what ``privata_mongo.audit.verify`` reads.

    Attributes:
        records: the records appended so far, as stored documents.
        checkpoints: the checkpoint and ledger documents, by ``_id``.
        fail: an exception ``append`` raises instead of storing (``None``: store).
    """

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.checkpoints: dict[str, dict[str, Any]] = {}
        self.fail: BaseException | None = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The records, then the checkpoints and ledger."""
        yield from self.records
        yield from self.checkpoints.values()

    def get(self, id: str, /) -> Mapping[str, Any] | None:
        """The checkpoint or ledger document ``id``."""
        found = self.checkpoints.get(id)
        return None if found is None else dict(found)

    def put(self, document: Mapping[str, Any], /) -> None:
        """Replace the checkpoint ``document["_id"]``, or raise ``fail``."""
        if self.fail is not None:
            raise self.fail
        self.checkpoints[document["_id"]] = dict(document)

    def swap(self, previous: Mapping[str, Any] | None, document: Mapping[str, Any], /) -> bool:
        """Replace ``previous`` by ``document`` if it is still the stored one."""
        if self.fail is not None:
            raise self.fail
        if self.checkpoints.get(document["_id"]) != (None if previous is None else previous):
            return False
        self.checkpoints[document["_id"]] = dict(document)
        return True

    def append(self, records: Sequence[Mapping[str, Any]], /) -> None:
        """Store copies of ``records``, or raise ``fail``."""
        if self.fail is not None:
            raise self.fail
        self.records.extend(dict(r) for r in records)

    def clear(self) -> None:
        """Forget every record (checkpoints and the ledger stay: the trail goes on)."""
        self.records.clear()
