"""The parts of a compliance report, and the time buckets of its chart of accesses.

The chart counts audited operations per purpose over the period of the trail. The server
counts them (one ``$group`` per time bucket, ``timeline_pipeline``), so the process receives
a row per purpose and document count per bucket, however long the trail is. A bucket is a
``$match`` on a time range rather than a date expression in the group key because FerretDB
1.24 implements no date operator (``$dateTrunc``, ``$dateToString``, ``$dayOfYear``) nor
``$bucket``/``$facet``; and, as in ``core.rights.register``, the records' document count is
part of the key, since ``{"$sum": "$count"}`` gives 0 there. ``bucket_edges`` keeps the buckets
to at most ``MOST_BUCKETS`` (so as many round trips), aligned to a second, minute, hour, day,
week or a multiple of 30 days, whichever is the finest that fits.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from privata_mongo.core.rights.register import ProcessingRecord

__all__ = [
    "MOST_BUCKETS",
    "NO_PURPOSE",
    "BreakGlass",
    "ChainStatus",
    "ComplianceReport",
    "ErasureEntry",
    "FieldRow",
    "KeyStatus",
    "ModelStorage",
    "RestrictionCount",
    "Timeline",
    "bucket_edges",
    "timeline",
    "timeline_pipeline",
]

MOST_BUCKETS = 48
"""The most time buckets of the chart (each one aggregation on the server)."""
NO_PURPOSE = "(no purpose declared)"
"""The series of operations whose access context declared no purpose."""

_EPOCH = datetime.datetime(1969, 12, 29)  # a Monday at midnight: weeks start on Mondays
_UNITS = (
    ("second", 1),
    ("minute", 60),
    ("hour", 3600),
    ("day", 86400),
    ("week", 7 * 86400),
    ("30 days", 30 * 86400),
)


@dataclass(frozen=True, slots=True)
class FieldRow:
    """One field of a model: where it is stored and the rule that decided it."""

    field: str
    side: str
    rule: str
    reason: str


@dataclass(frozen=True, slots=True)
class ModelStorage:
    """How one model's documents are stored (``privata_mongo.explain``)."""

    model: str
    collection: str
    identity_collection: str | None
    encrypted: bool
    searchable: tuple[str, ...]
    fields: tuple[FieldRow, ...]


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """The key vault: its keys by kind, and the subjects whose key was shredded.

    ``restored`` counts keys present again although a tombstone says they were shredded (a
    backup of the vault was restored: ``rights replay-erasures`` shreds them again).
    ``region`` names the region whose vault it is (``None``: the deployment's base vault).
    """

    vault: str
    keys: int
    subject_keys: int
    library_keys: int
    shredded: int
    restored: int
    region: str | None = None


@dataclass(frozen=True, slots=True)
class ChainStatus:
    """The outcome of ``privata_mongo.audit.verify`` over the audit collection."""

    collection: str
    ok: bool
    records: int
    streams: int
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ErasureEntry:
    """One entry of the erasure log (``None`` counts: the erasure is still pending)."""

    pseudonym: str
    state: str
    at: datetime.datetime | None
    actor: str | None
    purpose: str | None
    key_shredded: bool | None
    deleted: int | None
    kept: int | None


@dataclass(frozen=True, slots=True)
class RestrictionCount:
    """The restricted and objecting documents of one model's collection."""

    model: str
    collection: str
    restricted: int
    objections: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class BreakGlass:
    """One operation under break-glass, for review: who, when, why, on what."""

    at: datetime.datetime
    actor: str | None
    reason: str | None
    purpose: str | None
    operation: str
    model: str
    subjects: int
    outcome: str


@dataclass(frozen=True, slots=True)
class Timeline:
    """Audited operations per purpose and time bucket.

    Attributes:
        unit: the width of a bucket (``minute``, ``day`` …).
        edges: the buckets' boundaries (one more than the buckets; empty: no record).
        series: per purpose, the operations of each bucket; the busiest purpose first.
        documents: per purpose, the documents those operations processed.
    """

    unit: str
    edges: tuple[datetime.datetime, ...]
    series: Mapping[str, tuple[int, ...]]
    documents: Mapping[str, int]

    @property
    def total(self) -> int:
        """Every operation counted."""
        return sum(sum(counts) for counts in self.series.values())


@dataclass(frozen=True, slots=True)
class ComplianceReport:
    """Everything a compliance review of one database starts from (names, never values)."""

    database: str
    generated_at: datetime.datetime
    models: tuple[ModelStorage, ...]
    keys: KeyStatus
    audit: ChainStatus
    erasures_done: int
    erasures_pending: int
    erasures: tuple[ErasureEntry, ...]
    restrictions: tuple[RestrictionCount, ...]
    break_glass: tuple[BreakGlass, ...]
    timeline: Timeline
    processing: ProcessingRecord
    notes: tuple[str, ...] = field(default=())
    region_keys: tuple[KeyStatus, ...] = field(default=())
    """Each region's key vault (``docs/residency.md``); empty without regions."""

    def to_markdown(self) -> str:
        """The report as one Markdown document."""
        from privata_mongo.core.report.markdown import to_markdown

        return to_markdown(self)

    def to_html(self) -> str:
        """The report as one self-contained HTML page (inline style and SVG, no script)."""
        from privata_mongo.core.report.html import to_html

        return to_html(self)


def _floor(at: datetime.datetime, step: datetime.timedelta) -> datetime.datetime:
    return _EPOCH + step * ((at - _EPOCH) // step)


def bucket_edges(
    first: datetime.datetime, last: datetime.datetime, most: int = MOST_BUCKETS
) -> tuple[str, tuple[datetime.datetime, ...]]:
    """The unit and boundaries of at most ``most`` aligned buckets from ``first`` to ``last``."""
    chosen: tuple[str, datetime.timedelta] | None = None
    for name, seconds in _UNITS:
        step = datetime.timedelta(seconds=seconds)
        if (last - _floor(first, step)) // step + 1 <= most:
            chosen = (name, step)
            break
    if chosen is None:  # longer than ``most`` times 30 days: wider buckets of 30 days
        step = datetime.timedelta(seconds=_UNITS[-1][1])
        factor = math.ceil(((last - _floor(first, step)) // step + 1) / most)
        chosen = (f"{30 * factor} days", step * factor)
    name, step = chosen
    start = _floor(first, step)
    count = (last - start) // step + 1
    return name, tuple(start + step * i for i in range(count + 1))


def timeline_pipeline(start: datetime.datetime, end: datetime.datetime) -> list[dict[str, Any]]:
    """The server-side count of one bucket: operations per purpose and document count."""
    return [
        {"$match": {"operation": {"$exists": True}, "at": {"$gte": start, "$lt": end}}},
        {"$group": {"_id": {"purpose": "$purpose", "count": "$count"}, "records": {"$sum": 1}}},
    ]


def timeline(
    unit: str,
    edges: Sequence[datetime.datetime],
    rows: Sequence[Sequence[Mapping[str, Any]]],
) -> Timeline:
    """The timeline of the ``timeline_pipeline`` rows of each bucket between ``edges``."""
    buckets = max(len(edges) - 1, 0)
    counts: dict[str, list[int]] = {}
    documents: dict[str, int] = {}
    for i, bucket in enumerate(rows[:buckets]):
        for row in bucket:
            key = row["_id"]
            purpose = key.get("purpose")
            name = purpose if isinstance(purpose, str) and purpose else NO_PURPOSE
            records = int(row.get("records", 0))
            counts.setdefault(name, [0] * buckets)[i] += records
            count = key.get("count")
            documents[name] = documents.get(name, 0) + (
                records * count if isinstance(count, int) else 0
            )
    order = sorted(counts, key=lambda n: (-sum(counts[n]), n))
    return Timeline(
        unit,
        tuple(edges),
        {n: tuple(counts[n]) for n in order},
        {n: documents.get(n, 0) for n in order},
    )
