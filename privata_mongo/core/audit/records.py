"""Audit records and their hash chain: names and pseudonyms, never a value.

An ``AuditRecord`` says who (the access context), when (the clock port), what (operation and
model), whom (the pseudonyms of the data subjects concerned), which identity fields were
revealed or changed (names only), how many documents, and how it ended. It never carries a
value of any field and never the application-visible ``_id``: a record joined with the
clinical collection would otherwise re-identify what the split keeps apart.

Records are chained per *stream*: each writer (one per process and audit destination) owns a
stream id and numbers its records ``0, 1, 2 …``; every record carries the SHA-256 of its
predecessor in the stream (``prev``) and its own (``hash``, over a canonical encoding of every
other field). ``verify_chain`` recomputes all of it and names the position (stream, sequence)
of each record that was modified, removed or moved. The functions here are pure; the stateful
part (the next sequence number of a stream) lives in the driver layer.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "GENESIS",
    "MAX_SUBJECTS",
    "AccessContext",
    "AuditRecord",
    "ChainProblem",
    "canonical",
    "digest",
    "link",
    "records_for",
    "verify_chain",
]

GENESIS = "0" * 64
"""The ``prev`` of the first record of every stream."""

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
    """

    actor: str | None = None
    purpose: str | None = None
    legal_basis: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit entry before it is chained (see ``link``).

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

    def body(self) -> dict[str, Any]:
        """The record as a plain document, without chain fields."""
        return {
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


def _normal(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        # MongoDB stores milliseconds: hash what a round trip through the server returns.
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, Mapping):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    return value


def canonical(document: Mapping[str, Any]) -> bytes:
    """The bytes a record's hash covers: every field but ``_id`` and ``hash``, keys sorted."""
    body = {k: v for k, v in document.items() if k not in ("_id", "hash")}
    return json.dumps(_normal(body), sort_keys=True, separators=(",", ":")).encode()


def digest(document: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of ``canonical(document)``."""
    return hashlib.sha256(canonical(document)).hexdigest()


def link(record: AuditRecord, stream: str, seq: int, prev: str) -> dict[str, Any]:
    """The stored document of ``record`` at position ``seq`` of ``stream`` after ``prev``."""
    document: dict[str, Any] = {"stream": stream, "seq": seq, "prev": prev, **record.body()}
    document["hash"] = digest(document)
    return document


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """A position where the chain does not hold.

    Attributes:
        stream: the stream id.
        seq: the sequence number concerned.
        kind: ``modified`` (the record's content does not match its hash), ``missing`` (no
            record at this position), ``moved`` (the record does not follow its predecessor:
            reordered, or a record before it was replaced), ``duplicate`` (two records claim
            this position), ``truncated`` (the stream ends before an anchor).
        detail: a sentence for the operator (names and positions only).
    """

    stream: str
    seq: int
    kind: str
    detail: str = field(default="")


def verify_chain(
    documents: Iterable[Mapping[str, Any]],
    anchors: Mapping[str, tuple[int, str]] | None = None,
) -> list[ChainProblem]:
    """Every problem of the chains in ``documents``, in (stream, sequence) order.

    ``anchors`` maps a stream to ``(seq, hash)`` of a record whose hash was kept elsewhere
    (``head`` of an earlier verification): without one, removing the *last* records of a
    stream, or rewriting a stream and recomputing every later hash, cannot be told apart from
    a stream that simply ended there — SHA-256 has no secret.
    """
    streams: dict[str, dict[int, list[Mapping[str, Any]]]] = {}
    problems: list[ChainProblem] = []
    for document in documents:
        stream, seq = document.get("stream"), document.get("seq")
        if not isinstance(stream, str) or not isinstance(seq, int):
            problems.append(ChainProblem(str(stream), -1, "modified", "chain fields missing"))
            continue
        streams.setdefault(stream, {}).setdefault(seq, []).append(document)
    for stream in sorted(streams):
        problems.extend(_verify_stream(stream, streams[stream], (anchors or {}).get(stream)))
    for stream, (seq, _) in sorted((anchors or {}).items()):
        if stream not in streams:
            problems.append(ChainProblem(stream, seq, "truncated", "the anchored stream is gone"))
    return problems


def _verify_stream(
    stream: str, by_seq: Mapping[int, list[Mapping[str, Any]]], anchor: tuple[int, str] | None
) -> list[ChainProblem]:
    problems: list[ChainProblem] = []
    last = max(by_seq)
    prev_hash: str | None = GENESIS
    for seq in range(last + 1):
        found = by_seq.get(seq)
        if not found:
            problems.append(ChainProblem(stream, seq, "missing", "no record at this position"))
            prev_hash = None
            continue
        if len(found) > 1:
            problems.append(ChainProblem(stream, seq, "duplicate", f"{len(found)} records"))
        document = found[0]
        own = digest(document)
        if own != document.get("hash"):
            problems.append(
                ChainProblem(stream, seq, "modified", "content does not match its hash")
            )
        elif prev_hash is not None and document.get("prev") != prev_hash:
            problems.append(
                ChainProblem(stream, seq, "moved", "does not follow the record before it")
            )
        prev_hash = own if own == document.get("hash") else None
    if anchor is not None:
        seq, expected = anchor
        found = by_seq.get(seq)
        if seq > last:
            problems.append(ChainProblem(stream, seq, "truncated", f"the stream ends at {last}"))
        elif found and found[0].get("hash") != expected:
            problems.append(
                ChainProblem(stream, seq, "modified", "does not match the saved anchor")
            )
    return problems
