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

from privata_mongo.core.ops import Op
from privata_mongo.core.rights.access import Record
from privata_mongo.core.rights.datamap import LOOKUP_CHUNK, DataMap, walk
from privata_mongo.core.rights.restriction import RESTRICTION_FIELD
from privata_mongo.core.schema import PSEUDONYM_FIELD

__all__ = ["SUBJECTS", "Mark", "Markers", "combined", "spread"]

SUBJECTS = "s"
"""Key of a native document's marker listing the subjects whose decisions it carries."""

_KEYS = (SUBJECTS, "r", "a", "o", "c")


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


def combined(subjects: Sequence[str], decisions: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The update writing the marker of a native document carrying ``subjects``' decisions.

    Restricted when any subject is; allowed only under the purposes every restricted subject
    allows; objected to for every purpose any subject objects to; consented to for the purposes
    every subject consented to. No subject left: the keys are removed.
    """
    restricted = [decisions[s] for s in subjects if decisions[s].get("r")]
    objected = list(dict.fromkeys(p for s in subjects for p in decisions[s].get("o", ())))
    values: dict[str, Any] = {}
    if subjects:
        values[SUBJECTS] = list(subjects)
    if restricted:
        allowed = [p for p in restricted[0]["a"] if all(p in d["a"] for d in restricted)]
        values["r"] = True
        values["a"] = allowed
    if objected:
        values["o"] = objected
    consented = [
        p
        for p in (decisions[subjects[0]].get("c", ()) if subjects else ())
        if all(p in decisions[s].get("c", ()) for s in subjects)
    ]
    if consented:
        values["c"] = consented
    update: dict[str, Any] = {}
    if values:
        update["$set"] = {f"{RESTRICTION_FIELD}.{k}": v for k, v in values.items()}
    gone = {f"{RESTRICTION_FIELD}.{k}": "" for k in _KEYS if k not in values}
    if gone:
        update["$unset"] = gone
    return update


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
