"""Restriction and objection carried along a subject's data map, onto native documents.

A document of a model without identity fields that references the subject (a visit with a
diagnosis and a reference to the patient) is the subject's health data as much as the patient
row is (GDPR Art. 4(1): data relating to an identifiable person), so a restriction (Art. 18) or
an objection (Art. 21) must reach it. Such a document carries no pseudonym; ``spread`` finds it
through the data map (``datamap.walk``) and writes the same marker on it, so the proxy leaves
it out of reads and refuses writes to it exactly as for split rows.

A native document can belong to several subjects' maps (a team listing two patients). Its
marker therefore also lists the subjects whose decisions it carries (``s``) and is recomputed
from their decisions each time one of them changes: restricted when any of them is restricted,
under the purposes every restricted one allows (the intersection), and leaving out the purposes
any of them objects to (the union), and consented to only for the purposes every one of them
consented to (the intersection: a visit shared by two patients is processed under consent only
with both consents). Lifting one subject's restriction then leaves the document restricted while
another subject's restriction holds. A subject's decision is read from its own rows (the
clinical copy of the marker, written first by ``restriction.change_marker``).

Only the marker's own keys (``s``, ``r``, ``a``, ``o``, ``c``) are written: any other key of
the marker stays as it is.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bson import DBRef

from privata_mongo.core.mql.values import MISSING, lookup
from privata_mongo.core.ops import Op
from privata_mongo.core.rights.access import Record
from privata_mongo.core.rights.datamap import LOOKUP_CHUNK, DataMap, Ref, Source, id_key, walk
from privata_mongo.core.rights.restriction import RESTRICTION_FIELD
from privata_mongo.core.schema import PSEUDONYM_FIELD

__all__ = [
    "MARKER_KEYS",
    "SUBJECTS",
    "Mark",
    "Markers",
    "StoredMarkers",
    "combined",
    "inherited",
    "marker_update",
    "merged",
    "spread",
]

SUBJECTS = "s"
"""Key of a native document's marker listing the subjects whose decisions it carries."""

MARKER_KEYS = (SUBJECTS, "r", "a", "o", "c")
"""The keys of a marker this module writes (others a marker may hold stay as they are)."""


@dataclass(frozen=True, slots=True)
class Markers(Op[list[dict[str, Any]]]):
    """Request: ``_id``, ``_pseudonym`` and marker of the stored rows matching ``filter``.

    Read from the stored collection of ``model``: bookkeeping only, no personal data.
    """

    model: str
    filter: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Mark(Op[int]):
    """Request: apply ``update`` (marker keys only) to stored rows; the number matched.

    The rows are the documents of native ``model`` matching ``filter``.
    """

    model: str
    filter: Mapping[str, Any]
    update: Mapping[str, Any]


def _marker(row: Mapping[str, Any]) -> Mapping[str, Any]:
    marker = row.get(RESTRICTION_FIELD)
    return marker if isinstance(marker, Mapping) else {}


def _subjects(row: Mapping[str, Any]) -> list[str]:
    listed = _marker(row).get(SUBJECTS)
    return [s for s in listed if isinstance(s, str)] if isinstance(listed, list) else []


def _decision(row: Mapping[str, Any]) -> dict[str, Any]:
    """A subject's own decision, from one of its rows: restricted (and allowed), objections."""
    marker = _marker(row)
    decision: dict[str, Any] = {}
    if marker.get("r") is True:
        decision["r"] = True
        decision["a"] = list(marker.get("a") or [])
    if marker.get("o"):
        decision["o"] = list(marker["o"])
    if marker.get("c"):
        decision["c"] = list(marker["c"])
    return decision


def merged(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One marker's keys from the markers of the parts a document carries; ``{}`` for none.

    Each part is a marker: one subject's decision with the subject in ``s``, or a native
    document's marker (already merged from its own subjects). Merging is associative, so a
    document referencing a visit merges the visit's marker as it would merge the visit's
    subjects one by one: restricted when any part is; allowed only under the purposes every
    restricted part allows; objected to for every purpose any part objects to; consented to
    for the purposes every part consented to (a part without consents takes them all away).
    A marker is written only when some part has a decision: otherwise every key is absent.
    """
    listed = list(parts)
    if not any(p.get("r") or p.get("o") or p.get("c") for p in listed):
        return {}
    values: dict[str, Any] = {}
    subjects = list(dict.fromkeys(s for p in listed for s in p.get(SUBJECTS) or ()))
    if subjects:
        values[SUBJECTS] = subjects
    restricted = [p for p in listed if p.get("r")]
    if restricted:
        allowed = list(restricted[0].get("a") or [])
        values["r"] = True
        values["a"] = [a for a in allowed if all(a in (p.get("a") or ()) for p in restricted)]
    objected = list(dict.fromkeys(o for p in listed for o in p.get("o") or ()))
    if objected:
        values["o"] = objected
    first = listed[0].get("c") or ()
    consented = [c for c in first if all(c in (p.get("c") or ()) for p in listed)]
    if consented:
        values["c"] = consented
    return values


def marker_update(values: Mapping[str, Any]) -> dict[str, Any]:
    """The update writing a marker's own keys as ``values`` says, removing the others."""
    update: dict[str, Any] = {}
    if values:
        update["$set"] = {f"{RESTRICTION_FIELD}.{k}": v for k, v in values.items()}
    gone = {f"{RESTRICTION_FIELD}.{k}": "" for k in MARKER_KEYS if k not in values}
    if gone:
        update["$unset"] = gone
    return update


def combined(subjects: Sequence[str], decisions: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The update writing the marker of a native document carrying ``subjects``' decisions.

    The subjects' decisions merged (``merged``); no subject left: the keys are removed.
    """
    parts = [{SUBJECTS: [s], **decisions[s]} for s in subjects]
    values = merged(parts)
    if subjects and not values:  # listed for the consents nobody gave (``spread``)
        values = {SUBJECTS: list(subjects)}
    return marker_update(values)


def _decisions(
    data_map: DataMap, known: dict[str, dict[str, Any]], wanted: Iterable[str]
) -> Generator[Any, Any, None]:
    """Read the decisions of ``wanted`` subjects from their rows, model by split model.

    A subject no split model holds any more (erased) has no decision.
    """
    missing = set(wanted) - set(known)
    for entry in data_map.models:
        if not missing:
            break
        if entry.split:
            rows = yield from Markers(entry.name, {PSEUDONYM_FIELD: {"$in": sorted(missing)}})
            for row in rows:
                subject = row.get(PSEUDONYM_FIELD)
                if isinstance(subject, str) and subject in missing:
                    known[subject] = _decision(row)
                    missing.discard(subject)
    known.update({subject: {} for subject in missing})


def spread(
    data_map: DataMap, pseudonym: str, operation: str, *, chunk: int = LOOKUP_CHUNK
) -> Generator[Any, Any, int]:
    """Write ``pseudonym``'s decision on every native document of its map; returns them.

    Runs after the subject's own rows were changed. Per native model and chunk of ids: one
    read of their markers, the decisions of the other subjects they carry (each read once),
    and one update per distinct set of subjects. Each native model's ``operation`` record
    names the subject and the documents changed.
    """
    found = yield from walk(data_map, pseudonym)
    decisions: dict[str, dict[str, Any]] = {}
    yield from _decisions(data_map, decisions, [pseudonym])
    total = 0
    for model, ids in found.documents.items():
        if data_map.model(model).split:
            continue
        count = 0
        for start in range(0, len(ids), chunk):
            rows = yield from Markers(model, {"_id": {"$in": list(ids[start : start + chunk])}})
            yield from _decisions(data_map, decisions, {s for r in rows for s in _subjects(r)})
            groups: dict[tuple[str, ...], list[Any]] = {}
            for row in rows:
                carried = dict.fromkeys([*_subjects(row), pseudonym])
                # a subject without any decision stays listed while another has one: it has
                # consented to nothing, which the intersection of consents must see
                kept = tuple(carried) if any(decisions[s] for s in carried) else ()
                groups.setdefault(kept, []).append(row["_id"])
            for kept, members in groups.items():
                update = combined(kept, decisions)
                count += yield from Mark(model, {"_id": {"$in": members}}, update)
        yield Record(operation, model, pseudonym, frozenset(), count)
        total += count
    return total


@dataclass(frozen=True, slots=True)
class StoredMarkers(Op[list[dict[str, Any]]]):
    """Request: ``_id``, ``_pseudonym`` and marker of the stored rows of ``collection``.

    The rows whose ``_id`` is one of ``ids``, read as stored (bookkeeping, no personal data).
    """

    collection: str
    ids: tuple[Any, ...]


def _referenced(source: Source, document: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The ``(collection, _id)`` of every document ``document`` references through ``source``."""
    found: list[tuple[str, Any]] = []
    for value in lookup(document, source.field):
        for item in value if isinstance(value, list) else [value]:
            if source.ref is Ref.GENERIC:
                item = item.get("_ref") if isinstance(item, Mapping) else None
            elif source.ref is Ref.CACHED:
                item = item.get("_id") if isinstance(item, Mapping) else None
            if isinstance(item, DBRef):
                found.append((item.collection, item.id))
            elif item is not None and item is not MISSING and source.collection is not None:
                found.append((source.collection, item))
    return found


def inherited(
    sources: Sequence[Source], documents: Sequence[Mapping[str, Any]], *, chunk: int = LOOKUP_CHUNK
) -> Generator[Any, Any, list[dict[str, Any]]]:
    """The marker each of ``documents`` (about to be written) inherits from what it references.

    A native document written after its subject's restriction, objection or consent (a new
    visit of a restricted patient) is that subject's data from its first write on, so it
    carries the marker ``spread`` would have given it: the merge (``merged``) of the markers of
    the documents it references, a split row standing for its subject's decision. One read per
    referenced collection and chunk of ids, whatever the number of documents; ``{}`` for a
    document that inherits nothing.
    """
    wanted: dict[str, dict[Any, Any]] = {}
    per_document: list[list[tuple[str, Any]]] = []
    for document in documents:
        pairs = [pair for source in sources for pair in _referenced(source, document)]
        per_document.append(pairs)
        for collection, value in pairs:
            wanted.setdefault(collection, {})[id_key(value)] = value
    markers: dict[tuple[str, Any], dict[str, Any]] = {}
    for collection, values in wanted.items():
        ids = list(values.values())
        for start in range(0, len(ids), chunk):
            rows = yield from StoredMarkers(collection, tuple(ids[start : start + chunk]))
            for row in rows:
                part = dict(_marker(row))
                subject = row.get(PSEUDONYM_FIELD)
                if isinstance(subject, str):
                    part = {SUBJECTS: [subject], **_decision(row)}
                markers[(collection, id_key(row.get("_id")))] = part
    return [merged(markers.get((c, id_key(v)), {}) for c, v in pairs) for pairs in per_document]
