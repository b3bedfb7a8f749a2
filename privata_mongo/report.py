"""The compliance report of a database: what a review of its GDPR/HIPAA posture starts from.

``compliance_report(db, models)`` gathers, for the models given and the database they live
in: how each model is stored (``explain``), the key vault (keys by kind, shredded subjects,
keys a restore brought back), the audit chain (``audit.verify``), the erasure log, the
restricted and objecting documents, the break-glass accesses, the audited operations per
purpose over time, and the record of processing activities (``processing_record``). It reads
only; counts are computed by the server (``count_documents``, ``distinct``, ``$group``); the
erasure log and the break-glass list are read as documents (the latest ``ERASURES_SHOWN``
entries, and every break-glass access: each one is for review).
``ComplianceReport.to_markdown()`` and ``to_html()`` render it (``core.report``).

Nothing in it is a value of a classified field: names, pseudonyms, counts and times only (and
the reasons actors wrote for break-glass, which name the emergency, not the patient).
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Iterable
from typing import Any

from privata_mongo.adapters.clock import SystemClock
from privata_mongo.adapters.key_vault import tombstones_of
from privata_mongo.audit import audit_collection, break_glass_accesses, verify
from privata_mongo.config import current
from privata_mongo.core.pseudonym import is_pseudonym
from privata_mongo.core.report import (
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
from privata_mongo.core.rights.erasure import DONE
from privata_mongo.core.rights.receipt import ErasureReceipt
from privata_mongo.core.rights.register import EDGES
from privata_mongo.core.rights.restriction import RESTRICTION_FIELD
from privata_mongo.explain import explain
from privata_mongo.processing import processing_record
from privata_mongo.runtime.keys import real_client

__all__ = ["ERASURES_SHOWN", "ComplianceReport", "compliance_report"]

ERASURES_SHOWN = 100
"""The erasure-log entries listed, latest first (every entry is counted)."""


def _real(database: Any) -> Any:
    """The real database behind the application's privata one (a real one as it is)."""
    from privata_mongo.proxy.database import DatabaseBase

    return database.inner if isinstance(database, DatabaseBase) else database


def _storage(model: Any) -> ModelStorage:
    e = explain(model)
    return ModelStorage(
        model=e.model,
        collection=e.collection,
        identity_collection=e.identity_collection,
        encrypted=e.encrypted,
        searchable=tuple(e.searchable),
        fields=tuple(
            FieldRow(d.field, "identity" if d.identity else "clinical", d.rule.value, d.reason)
            for d in e.decisions
        ),
    )


def _keys(client: Any) -> KeyStatus:
    database, _, name = current().key_vault_namespace.partition(".")
    return _vault_status(client[database][name], None)


def _region_keys() -> tuple[KeyStatus, ...]:
    """Each configured region's key vault (``docs/residency.md``)."""
    found = []
    for name, region in (current().regions or {}).items():
        database, _, collection = region.key_vault_namespace.partition(".")
        owner = real_client(region.key_vault_client or region.identity_client)
        found.append(_vault_status(owner[database][collection], name))
    return tuple(found)


def _vault_status(vault: Any, region: str | None) -> KeyStatus:
    names = [n for d in vault.find({}, {"keyAltNames": 1}) for n in d.get("keyAltNames") or ()]
    subjects = {n for n in names if is_pseudonym(n)}
    tombstones = tombstones_of(vault)
    restored = tombstones.count_documents({"_id": {"$in": sorted(subjects)}}) if subjects else 0
    return KeyStatus(
        vault=vault.full_name,
        keys=len(names),
        subject_keys=len(subjects),
        library_keys=len(names) - len(subjects),
        shredded=tombstones.count_documents({}),
        restored=restored,
        region=region,
    )


def _chain(trail: Any) -> ChainStatus:
    outcome = verify(trail)
    return ChainStatus(
        collection=trail.full_name,
        ok=outcome.ok,
        records=outcome.records,
        streams=len(outcome.heads),
        problems=tuple(str(p) for p in outcome.problems),
    )


def _erasure_log(database: Any) -> Any:
    settings = current()
    if settings.erasure_client is not None:
        log_db = real_client(settings.erasure_client)[settings.erasure_database or database.name]
    elif settings.erasure_database is not None:
        log_db = database.client[settings.erasure_database]
    else:
        log_db = database
    return log_db[settings.erasure_collection]


def _erasure(entry: dict[str, Any]) -> ErasureEntry:
    stored = entry.get("receipt")
    if stored:
        receipt = ErasureReceipt.from_document(stored)
        return ErasureEntry(
            pseudonym=receipt.pseudonym,
            state=str(entry.get("state")),
            at=receipt.erased_at,
            actor=receipt.actor,
            purpose=receipt.purpose,
            key_shredded=receipt.key_shredded,
            deleted=sum(m.identity_deleted + m.clinical_deleted for m in receipt.models),
            kept=sum(m.clinical_kept for m in receipt.models),
        )
    return ErasureEntry(
        pseudonym=str(entry["_id"]),
        state=str(entry.get("state")),
        at=entry.get("started_at"),
        actor=entry.get("actor"),
        purpose=entry.get("purpose"),
        key_shredded=None,
        deleted=None,
        kept=None,
    )


def _restrictions(database: Any, models: Iterable[ModelStorage]) -> tuple[RestrictionCount, ...]:
    restricted = f"{RESTRICTION_FIELD}.r"
    objected = f"{RESTRICTION_FIELD}.o"
    counts = []
    for m in models:  # the clinical (or native) half: one document per document of the app
        collection = database[m.collection]
        # distinct, then a count per purpose: FerretDB 1.24 groups an unwound dotted path
        # under null, and the purposes objected to are few
        purposes = sorted(str(p) for p in collection.distinct(objected))
        counts.append(
            RestrictionCount(
                model=m.model,
                collection=m.collection,
                restricted=collection.count_documents({restricted: True}),
                objections={p: collection.count_documents({objected: p}) for p in purposes},
            )
        )
    return tuple(counts)


def _timeline(trail: Any) -> Timeline:
    edges = [d["at"] for edge in EDGES for d in trail.aggregate(list(edge))]
    if not edges:
        return timeline("day", (), ())
    unit, bounds = bucket_edges(min(edges), max(edges))
    rows = [
        list(trail.aggregate(timeline_pipeline(start, end)))
        for start, end in itertools.pairwise(bounds)
    ]
    return timeline(unit, bounds, rows)


def compliance_report(
    database: Any, models: Iterable[Any], *, now: datetime.datetime | None = None
) -> ComplianceReport:
    """The compliance report of ``models`` (mongoengine or Beanie classes) in ``database``.

    ``database`` is a pymongo database (the operator's) or the application's privata one; the
    audit trail, key vault and erasure log are found per the settings, as the application
    writes them.

    Raises:
        ConfigurationError: a model cannot be described, or its privacy declaration compiled.
        KeyUnavailable: the audit chain key cannot be read to verify the trail.
    """
    classes = list(models)
    real = _real(database)
    trail = audit_collection(real)
    storage = tuple(_storage(m) for m in classes)
    log = _erasure_log(real)
    latest = log.find({}, sort=[("started_at", -1), ("_id", 1)], limit=ERASURES_SHOWN)
    return ComplianceReport(
        database=real.name,
        generated_at=now or SystemClock().now(),
        models=storage,
        keys=_keys(real.client),
        audit=_chain(trail),
        erasures_done=log.count_documents({"state": DONE}),
        erasures_pending=log.count_documents({"state": {"$ne": DONE}}),
        erasures=tuple(_erasure(e) for e in latest),
        restrictions=_restrictions(real, storage),
        break_glass=tuple(
            BreakGlass(
                a.at, a.actor, a.reason, a.purpose, a.operation, a.model, len(a.subjects), a.outcome
            )
            for a in break_glass_accesses(trail)
        ),
        timeline=_timeline(trail),
        processing=processing_record(real, models=classes),
        region_keys=_region_keys(),
    )
