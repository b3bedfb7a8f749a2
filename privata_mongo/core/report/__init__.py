"""Internal: the compliance report of a database, as data and as pages (pure code).

``data`` holds the report's parts (frozen dataclasses: storage of the models, key status,
audit-chain status, erasures, restrictions, break-glass accesses, accesses per purpose over
time, the processing record) and the pieces the gatherer asks the server for (the time
buckets and their ``$group``); ``markdown`` and ``html`` render it, ``chart`` draws the
accesses as an inline SVG. ``privata_mongo.report`` gathers it from a database.

Nothing in a report is a value of a classified field: it holds model, field and collection
names, pseudonyms, counts, times, and the free-text reasons actors gave for break-glass.
"""

from __future__ import annotations

from privata_mongo.core.report.data import (
    BreakGlass,
    ChainStatus,
    ComplianceReport,
    ErasureEntry,
    FieldRow,
    KeyStatus,
    ModelStorage,
    RestrictionCount,
    Timeline,
    bucket_edges,
    timeline,
    timeline_pipeline,
)
from privata_mongo.core.report.html import to_html
from privata_mongo.core.report.markdown import to_markdown

__all__ = [
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
    "to_html",
    "to_markdown",
]
