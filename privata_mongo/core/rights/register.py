"""The record of processing activities (GDPR Art. 30), from the data map and the audit trail.

Art. 30 asks a controller to keep a register of its processing: the categories of data and of
data subjects, the purposes, the categories of recipients, the time limits for erasure. Most
of it is already known to privata: the data map says which models hold which categories of
data (identity fields, searchable ones, clinical ones), the models' ``privacy`` declarations
say their retention and erasure policy, and the audit trail says for which purposes, under
which legal bases and by whom the data was actually processed. ``register`` puts them
together; the trail is summarised by the server (``SUMMARY``, one ``$group`` over the
records), so the process receives one row per model, operation, purpose, legal basis and
actor, however long the trail is. Nothing in it is a personal value: the map holds field
names, the trail names and counts.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from privata_mongo.core.rights.datamap import DataMap, ModelEntry
from privata_mongo.core.rights.policy import erasure_policy, retention_policy

__all__ = ["EDGES", "SUMMARY", "Activity", "ModelRecord", "ProcessingRecord", "register"]

SUMMARY: tuple[dict[str, Any], ...] = (
    {"$match": {"operation": {"$exists": True}}},
    {
        "$group": {
            "_id": {
                "model": "$model",
                "operation": "$operation",
                "purpose": "$purpose",
                "legal_basis": "$legal_basis",
                "actor": "$actor",
                "count": "$count",
            },
            "records": {"$sum": 1},
        }
    },
)
"""The server-side summary of an audit trail: records per model, operation, purpose, legal
basis, actor and document count.

Portable to FerretDB 1.24, whose ``$group`` evaluates field paths in ``_id`` but not in an
accumulator (``{"$sum": "$count"}`` gives 0 there; ``$min``, ``$max``, ``$first`` and ``$push``
are not implemented): the records' document count is part of the key, and ``register``
multiplies it out. Rows grow with the distinct counts of a kind of activity, not with the
records. The period of the trail is asked apart (``EDGES``). Checkpoints and ledger entries
carry no ``operation`` and are left out.
"""

EDGES: tuple[tuple[dict[str, Any], ...], ...] = tuple(
    (
        {"$match": {"operation": {"$exists": True}}},
        {"$sort": {"at": direction}},
        {"$limit": 1},
        {"$project": {"_id": 0, "at": 1}},
    )
    for direction in (1, -1)
)
"""The oldest and the newest record of a trail (sorted on the server, whose trail is indexed
on time; one row each)."""

NOT_DECLARED = "not declared"


@dataclass(frozen=True, slots=True)
class Activity:
    """One row of the trail's summary: how often a model was processed in one way.

    Attributes:
        model: the model (logical collection) the records name.
        operation: ``read``, ``create``, ``access``, ``consent`` …
        purpose: the purpose declared by the access context (``None``: none was).
        legal_basis: the legal basis declared (``None``: none was).
        actor: who acted (``None``: nobody was declared).
        records: the audit records of this row.
        documents: the documents they processed (sum of the records' counts).
    """

    model: str
    operation: str
    purpose: str | None
    legal_basis: str | None
    actor: str | None
    records: int
    documents: int

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Activity:
        """The activity of one ``SUMMARY`` row (its records times their document count)."""
        key = row["_id"]
        records = int(row.get("records", 0))
        count = key.get("count")
        return cls(
            model=str(key.get("model")),
            operation=str(key.get("operation")),
            purpose=key.get("purpose"),
            legal_basis=key.get("legal_basis"),
            actor=key.get("actor"),
            records=records,
            documents=records * count if isinstance(count, int) else 0,
        )


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """One model's entry in the register.

    Attributes:
        name: the model's class name.
        collection: its (clinical) collection.
        split: it holds identity data, stored apart and encrypted.
        identity_fields: the categories of personal data (stored field names).
        searchable: identity fields the subject can be found by.
        clinical_fields: the other fields.
        purposes: the purposes the trail shows it processed for, sorted.
        legal_bases: the legal bases the trail shows, sorted.
        recipients: who processed it (the actors of the trail), sorted.
        operations: audit records per operation.
        retention: the declared retention period (``privacy["retention"]``, read by
            ``core.rights.policy``), ``None``: none.
        erasure: the declared erasure policy (``privacy["erasure"]``: ``pseudonymise`` or
            ``delete``), ``None``: none (an erasure then pseudonymises, the default).
    """

    name: str
    collection: str
    split: bool
    identity_fields: tuple[str, ...]
    searchable: tuple[str, ...]
    clinical_fields: tuple[str, ...]
    purposes: tuple[str, ...]
    legal_bases: tuple[str, ...]
    recipients: tuple[str, ...]
    operations: Mapping[str, int]
    retention: str | None = None
    erasure: str | None = None


@dataclass(frozen=True, slots=True)
class ProcessingRecord:
    """The register of processing activities (Art. 30), as data; ``to_markdown`` prints it.

    Attributes:
        databases: the databases whose trails were read.
        period: the times of the oldest and the newest record read (``None``: no record).
        models: one entry per model of the data map, then per model seen only in the trail.
        activities: the summary of the trails, sorted.
    """

    databases: tuple[str, ...]
    period: tuple[datetime.datetime, datetime.datetime] | None
    models: tuple[ModelRecord, ...]
    activities: tuple[Activity, ...]

    @property
    def purposes(self) -> tuple[str, ...]:
        """Every purpose declared in the trails, sorted."""
        return _sorted(a.purpose for a in self.activities)

    @property
    def legal_bases(self) -> tuple[str, ...]:
        """Every legal basis declared in the trails, sorted."""
        return _sorted(a.legal_basis for a in self.activities)

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every actor of the trails, sorted (the recipients of the data)."""
        return _sorted(a.actor for a in self.activities)

    def to_dict(self) -> dict[str, Any]:
        """The register as plain data (times as ``datetime``), for JSON or a database."""
        return {
            "databases": list(self.databases),
            "period": list(self.period) if self.period else None,
            "purposes": list(self.purposes),
            "legal_bases": list(self.legal_bases),
            "recipients": list(self.recipients),
            "models": [asdict(m) for m in self.models],
            "activities": [asdict(a) for a in self.activities],
        }

    def to_markdown(self) -> str:
        """The register as a Markdown document, for the controller's records."""
        lines = [
            "# Record of processing activities (GDPR Art. 30)",
            "",
            f"- Databases: {_list(self.databases)}",
            f"- Period: {_period(self.period)}",
            f"- Purposes: {_list(self.purposes)}",
            f"- Legal bases: {_list(self.legal_bases)}",
            f"- Recipients (actors): {_list(self.recipients)}",
        ]
        for model in self.models:
            storage = "split: identity encrypted apart" if model.split else "native"
            operations = ", ".join(f"{k} {v}" for k, v in sorted(model.operations.items()))
            lines += [
                "",
                f"## {model.name}",
                "",
                f"- Collection: `{model.collection}` ({storage})",
                f"- Identity data: {_list(model.identity_fields)}",
                f"- Searchable identity data: {_list(model.searchable)}",
                f"- Other data: {_list(model.clinical_fields)}",
                f"- Purposes: {_list(model.purposes)}",
                f"- Legal bases: {_list(model.legal_bases)}",
                f"- Recipients: {_list(model.recipients)}",
                f"- Operations (audit records): {operations or 'none'}",
                f"- Retention: {model.retention or NOT_DECLARED}",
                f"- Erasure: {model.erasure or NOT_DECLARED + ' (pseudonymise, the default)'}",
            ]
        lines += [
            "",
            "## Activities",
            "",
            "| model | operation | purpose | legal basis | actor | records | documents |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {a.model} | {a.operation} | {_cell(a.purpose)} | {_cell(a.legal_basis)} "
            f"| {_cell(a.actor)} | {a.records} | {a.documents} |"
            for a in self.activities
        ]
        return "\n".join(lines) + "\n"


def _sorted(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(sorted({v for v in values if v is not None}))


def _list(values: Sequence[str]) -> str:
    return ", ".join(values) if values else "none"


def _cell(value: str | None) -> str:
    return "—" if value is None else value.replace("|", "\\|")


def _period(period: tuple[datetime.datetime, datetime.datetime] | None) -> str:
    if period is None:
        return "no audit record"
    first, last = (t.isoformat(timespec="seconds") for t in period)
    return f"{first} to {last} (UTC)"


def _retention(name: str, privacy: Mapping[str, Any], entry: ModelEntry | None) -> str | None:
    """The model's retention period as text (``core.rights.policy``), ``None``: none declared."""
    if entry is None:
        return None
    period = retention_policy(name, privacy, entry.clinical_fields, split=entry.split)
    if period is None:
        return None
    return f"{period.days} days after {period.field}, then {period.then}"


def _erasure(name: str, privacy: Mapping[str, Any]) -> str | None:
    """The model's declared erasure policy, ``None`` when it declares none."""
    if privacy.get("erasure") is None:
        return None
    return erasure_policy(name, privacy)


def register(
    data_map: DataMap,
    rows: Iterable[Mapping[str, Any]],
    *,
    databases: Sequence[str],
    times: Iterable[datetime.datetime] = (),
    privacy: Mapping[str, Mapping[str, Any] | None],
) -> ProcessingRecord:
    """The register of ``data_map`` and the ``SUMMARY`` rows of the trails of ``databases``.

    ``privacy`` is each model's ``privacy`` declaration by model name (``retention`` and
    ``erasure`` are read from it when declared). ``times`` are the ``EDGES`` of the trails.
    Rows of several trails are merged.
    """
    merged: dict[tuple[Any, ...], Activity] = {}
    for row in rows:
        found = Activity.of(row)
        key = (found.model, found.operation, found.purpose, found.legal_basis, found.actor)
        seen = merged.get(key)
        if seen is not None:
            found = Activity(
                *key,
                records=seen.records + found.records,
                documents=seen.documents + found.documents,
            )
        merged[key] = found
    activities = tuple(sorted(merged.values(), key=_order))
    names = [m.name for m in data_map.models]
    names += sorted({a.model for a in activities} - set(names))
    models = []
    for name in names:
        entry = next((m for m in data_map.models if m.name == name), None)
        own = [a for a in activities if a.model == name]
        declaration = privacy.get(name) or {}
        operations: dict[str, int] = {}
        for a in own:
            operations[a.operation] = operations.get(a.operation, 0) + a.records
        models.append(
            ModelRecord(
                name=name,
                collection=entry.collection if entry else "(not in the data map)",
                split=entry.split if entry else False,
                identity_fields=entry.identity_fields if entry else (),
                searchable=entry.searchable if entry else (),
                clinical_fields=entry.clinical_fields if entry else (),
                purposes=_sorted(a.purpose for a in own),
                legal_bases=_sorted(a.legal_basis for a in own),
                recipients=_sorted(a.actor for a in own),
                operations=operations,
                retention=_retention(name, declaration, entry),
                erasure=_erasure(name, declaration),
            )
        )
    edges = sorted(times)
    period = (edges[0], edges[-1]) if edges else None
    return ProcessingRecord(tuple(databases), period, tuple(models), activities)


def _order(a: Activity) -> tuple[str, ...]:
    return (a.model, a.operation, a.purpose or "", a.legal_basis or "", a.actor or "")
