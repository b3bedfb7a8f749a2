"""The audit trail for auditors: verify its hash chains, ask who accessed whom.

Every function takes a *source*: the audit collection (a pymongo or mongomock collection, the
real one: ``audit_collection(db)`` finds it for a privata database), or any iterable of record
documents (a ``ListAuditSink``'s ``records``, an export). Queries run on the server when the
source is a collection (the sink creates indexes on subject, actor and time), in the process
otherwise, with the same semantics. Subjects are named by pseudonym: ``subject_of`` gives the
pseudonym of a document the application knows by its ``_id``.

Records never hold values, so these answers never do either.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from privata_mongo.config import current
from privata_mongo.core.audit import ChainProblem, verify_chain
from privata_mongo.core.mql.match import compile_filter
from privata_mongo.core.schema import PSEUDONYM_FIELD

__all__ = [
    "Access",
    "ChainProblem",
    "Verification",
    "accesses",
    "audit_collection",
    "flush",
    "flush_async",
    "subject_of",
    "touched_by",
    "verify",
    "who_accessed",
]


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of ``verify``.

    Attributes:
        problems: each position where a chain does not hold (empty: every chain is intact).
        records: how many records were read.
        heads: per stream, ``(seq, hash)`` of its last record: keep them outside the
            database and pass them as ``anchors`` next time, so removing the newest records
            or rewriting a whole stream is detected too.
    """

    problems: list[ChainProblem]
    records: int
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every chain is intact."""
        return not self.problems


@dataclass(frozen=True, slots=True)
class Access:
    """One audited operation, as an auditor reads it (names and pseudonyms only)."""

    at: datetime.datetime
    actor: str | None
    purpose: str | None
    legal_basis: str | None
    request_id: str | None
    operation: str
    model: str
    fields: tuple[str, ...]
    outcome: str
    subjects: tuple[str, ...]


def _real(database: Any) -> Any:
    """The real database behind a privata database (a real one is returned as it is)."""
    from privata_mongo.proxy.database import DatabaseBase

    return database.inner if isinstance(database, DatabaseBase) else database


def audit_collection(database: Any) -> Any:
    """The real audit collection of a privata (or plain) database, per the settings."""
    return _real(database).get_collection(current().audit_collection)


def _documents(
    source: Any, filter: Mapping[str, Any], sort: Sequence[tuple[str, int]]
) -> list[Mapping[str, Any]]:
    if hasattr(source, "find"):
        return list(source.find(dict(filter), sort=list(sort)))
    matcher = compile_filter(filter)
    found = [d for d in source if matcher(d)]
    for key, direction in reversed(sort):
        found.sort(key=_sort_key(key), reverse=direction < 0)
    return found


def _sort_key(key: str) -> Callable[[Mapping[str, Any]], tuple[bool, Any]]:
    def of(document: Mapping[str, Any]) -> tuple[bool, Any]:
        return (document.get(key) is None, document.get(key))

    return of


def verify(
    source: Iterable[Mapping[str, Any]] | Any,
    anchors: Mapping[str, tuple[int, str]] | None = None,
) -> Verification:
    """Check every hash chain in ``source``; each problem names its stream and sequence.

    Detects a modified record (its content no longer matches its hash), a removed one (a
    missing position), records moved or swapped (a position that does not follow its
    predecessor, or whose content belongs elsewhere), and with ``anchors`` a cut or rewritten
    end of a stream.
    """
    documents = _documents(source, {}, [("stream", 1), ("seq", 1)])
    heads: dict[str, tuple[int, str]] = {}
    for document in documents:
        stream, seq = document.get("stream"), document.get("seq")
        if not isinstance(stream, str) or not isinstance(seq, int):
            continue
        if stream not in heads or heads[stream][0] < seq:
            heads[stream] = (seq, str(document.get("hash")))
    return Verification(verify_chain(documents, anchors), len(documents), heads)


def accesses(
    source: Iterable[Mapping[str, Any]] | Any,
    *,
    subject: str | None = None,
    actor: str | None = None,
    start: datetime.datetime | None = None,
    end: datetime.datetime | None = None,
    operations: Iterable[str] | None = None,
) -> list[Access]:
    """Audited operations matching every criterion given, oldest first.

    ``start`` is inclusive, ``end`` exclusive (naive UTC, as records store time).
    """
    filter: dict[str, Any] = {}
    if subject is not None:
        filter["subjects"] = subject
    if actor is not None:
        filter["actor"] = actor
    span: dict[str, Any] = {}
    if start is not None:
        span["$gte"] = start
    if end is not None:
        span["$lt"] = end
    if span:
        filter["at"] = span
    if operations is not None:
        filter["operation"] = {"$in": list(operations)}
    documents = _documents(source, filter, [("at", 1), ("stream", 1), ("seq", 1)])
    return [
        Access(
            at=d["at"],
            actor=d.get("actor"),
            purpose=d.get("purpose"),
            legal_basis=d.get("legal_basis"),
            request_id=d.get("request_id"),
            operation=d.get("operation", ""),
            model=d.get("model", ""),
            fields=tuple(d.get("fields", ())),
            outcome=d.get("outcome", ""),
            subjects=tuple(d.get("subjects", ())),
        )
        for d in documents
    ]


def who_accessed(
    source: Iterable[Mapping[str, Any]] | Any,
    subject: str,
    start: datetime.datetime | None = None,
    end: datetime.datetime | None = None,
) -> list[Access]:
    """Who touched data subject ``subject`` (a pseudonym) between ``start`` and ``end``, and why.

    Each ``Access`` carries the actor, purpose, legal basis, operation and identity fields.
    """
    return accesses(source, subject=subject, start=start, end=end)


def touched_by(
    source: Iterable[Mapping[str, Any]] | Any,
    actor: str,
    start: datetime.datetime | None = None,
    end: datetime.datetime | None = None,
) -> dict[str, set[str]]:
    """Which data subjects ``actor`` touched, per model: ``{model: {pseudonym, …}}``."""
    touched: dict[str, set[str]] = {}
    for access in accesses(source, actor=actor, start=start, end=end):
        touched.setdefault(access.model, set()).update(access.subjects)
    return touched


def subject_of(database: Any, collection: str, id: Any) -> str | None:
    """The pseudonym of the document ``id`` of ``collection`` (``None``: not split or absent).

    Reads the raw clinical row, not audited: it returns no personal data, only the link.
    """
    row = _real(database).get_collection(collection).find_one({"_id": id}, {PSEUDONYM_FIELD: 1})
    pseudonym = row.get(PSEUDONYM_FIELD) if row else None
    return pseudonym if isinstance(pseudonym, str) else None


def flush(database: Any) -> None:
    """Store the records buffered mode holds for ``database`` (a sync privata database)."""
    trail = database.client.runtime.trail(_real(database))
    if trail is not None:
        trail.flush()


async def flush_async(database: Any) -> None:
    """Store the records buffered mode holds for ``database`` (an async privata database)."""
    trail = database.client.runtime.trail(_real(database))
    if trail is not None:
        await trail.flush()
