"""Audit records and their hash chain: names and pseudonyms, never a value.

An ``AuditRecord`` says who (the access context), when (the clock port), what (operation and
model), whom (the pseudonyms of the data subjects concerned), which identity fields were
revealed or changed (names only), how many documents, and how it ended. It never carries a
value of any field and never the application-visible ``_id``: a record joined with the
clinical collection would otherwise re-identify what the split keeps apart.

How records are chained and verified (keyed MACs, checkpoints, the ledger) is in ``chain``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_SUBJECTS", "SEVERITY_BREAK_GLASS", "AccessContext", "AuditRecord", "records_for"]

SEVERITY_BREAK_GLASS = "break_glass"
"""The ``severity`` of every record of an access made under break-glass."""

MAX_SUBJECTS = 10_000
"""Most pseudonyms one record carries: 10,000 of 37 bytes stay far below the 16 MB limit."""


@dataclass(frozen=True, slots=True)
class AccessContext:
    """Who touches personal data, and why (GDPR Art. 30: purposes and legal basis).

    Attributes:
        actor: the person or service acting (a user name or service id, not a patient's).
        purpose: why (``"treatment"``, ``"billing"``, ``"research"`` …).
        legal_basis: the legal basis of the processing (``"art6_1b"``, ``"art9_2h"`` …).
        request_id: correlates the records with the application's own logs.
        emergency: the reason given for break-glass access (HIPAA §164.312(a)(2)(ii)), which
            lifts restriction; every record made under it has the severity ``break_glass``.
        subject_request: the data-subject right being answered (``access``, ``erase`` …),
            whose reads and writes see the subject whatever its restriction and objections:
            answering the subject is not the processing they restricted or objected to, and
            lifting a restriction has to find the subject. Records made under it name it.
    """

    actor: str | None = None
    purpose: str | None = None
    legal_basis: str | None = None
    request_id: str | None = None
    emergency: str | None = None
    subject_request: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit entry before it is chained (see ``chain.link``).

    Attributes:
        at: when, from the clock port (naive UTC, millisecond precision).
        access: who and why.
        operation: ``create``, ``read``, ``update``, ``delete``, ``count``, ``distinct``,
            ``aggregate``, ``bulk_write`` …
        model: the model (logical collection) concerned.
        subjects: pseudonyms of the data subjects concerned (at most ``MAX_SUBJECTS``).
        fields: names of identity fields revealed or changed.
        count: documents returned, written or counted by the operation (the whole operation's
            figure; for a result split over several records, the part in this record).
        outcome: ``ok``, ``denied``, or ``error:<ExceptionType>``.
        part: index of this record among the records of one batch (chunked subjects).
        regions: the regions holding the identity data of ``subjects``, when regions are
            configured (``core.residency``); left out of the document otherwise, so records
            of a deployment with one region keep their shape.
        missing_regions: the regions a partial answer left out (``partial_results``: an
            access or export answered with what the reachable regions hold); left out of the
            document when the answer is whole.
    """

    at: datetime.datetime
    access: AccessContext
    operation: str
    model: str
    subjects: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    count: int = 0
    outcome: str = "ok"
    part: int = 0
    regions: tuple[str, ...] = ()
    missing_regions: tuple[str, ...] = ()

    def body(self) -> dict[str, Any]:
        """The record as a plain document, without chain fields."""
        return (
            {
                "at": self.at,
                "actor": self.access.actor,
                "purpose": self.access.purpose,
                "legal_basis": self.access.legal_basis,
                "request_id": self.access.request_id,
                "operation": self.operation,
                "model": self.model,
                "subjects": list(self.subjects),
                "fields": list(self.fields),
                "count": self.count,
                "outcome": self.outcome,
                "part": self.part,
            }
            | self._emergency()
            | self._request()
            | ({"regions": list(self.regions)} if self.regions else {})
            | ({"missing_regions": list(self.missing_regions)} if self.missing_regions else {})
        )

    def _emergency(self) -> dict[str, Any]:
        """The severity and reason of a break-glass access; nothing for any other record.

        Left out otherwise, so records made before break-glass existed keep their shape.
        """
        if self.access.emergency is None:
            return {}
        return {"severity": SEVERITY_BREAK_GLASS, "reason": self.access.emergency}

    def _request(self) -> dict[str, Any]:
        """The data-subject right a record was made for; nothing for any other record."""
        if self.access.subject_request is None:
            return {}
        return {"subject_request": self.access.subject_request}


def records_for(
    *,
    at: datetime.datetime,
    access: AccessContext,
    operation: str,
    model: str,
    subjects: Sequence[str],
    fields: Iterable[str],
    count: int,
    outcome: str = "ok",
    max_subjects: int = MAX_SUBJECTS,
) -> tuple[AuditRecord, ...]:
    """The records of one audited step: one, or one per ``max_subjects`` pseudonyms."""
    unique = list(dict.fromkeys(subjects))
    names = tuple(sorted(set(fields)))
    size = max(max_subjects, 1)
    parts = [unique[i : i + size] for i in range(0, len(unique), size)] or [[]]
    return tuple(
        AuditRecord(at, access, operation, model, tuple(p), names, count, outcome, index)
        for index, p in enumerate(parts)
    )
