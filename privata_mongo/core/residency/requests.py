"""Internal. What the residency router needs to know of each request, and how answers merge.

Which requests are identity-side, key or read requests; which pseudonyms a request names; and
how the answers of several regions become the one answer a single store would have given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from privata_mongo.core.ops import (
    Aggregate,
    AnyOp,
    Count,
    CreateIndex,
    Delete,
    DiscardKeys,
    Distinct,
    Drop,
    DropIndex,
    EstimatedCount,
    Explain,
    FetchAll,
    Find,
    FindAndModify,
    FindErased,
    IndexInformation,
    Insert,
    LoadKeys,
    Replace,
    ReplaceKeys,
    ReplaceMany,
    ShredKeys,
    StoreKeys,
    Update,
    UpdateOutcome,
)
from privata_mongo.core.pseudonym import is_pseudonym
from privata_mongo.core.schema import PSEUDONYM_FIELD, REGION_FIELD

__all__ = [
    "FILTERED",
    "KEY_REQUESTS",
    "READS",
    "STORE_REQUESTS",
    "Fanned",
    "key_name",
    "linked_projection",
    "merged",
    "no_answer",
    "subject_ids",
]

STORE_REQUESTS = (
    Find,
    FetchAll,
    Count,
    EstimatedCount,
    Distinct,
    Explain,
    Aggregate,
    Insert,
    Update,
    Replace,
    ReplaceMany,
    Delete,
    FindAndModify,
    CreateIndex,
    DropIndex,
    IndexInformation,
    Drop,
)
READS = (Find, FetchAll, Count, EstimatedCount, Distinct, Explain, LoadKeys, FindErased)
"""Requests a region may be left out of when the operation allows partial results."""
FILTERED = (Count, Distinct, Update, Replace, Delete, FindAndModify)
KEY_REQUESTS = (LoadKeys, StoreKeys, ReplaceKeys, ShredKeys, FindErased, DiscardKeys)


@dataclass(slots=True)
class Fanned:
    """A cursor over one identity query asked of several regions, read region after region."""

    handles: list[tuple[str, object]]
    position: int = 0


def key_name(document: Mapping[str, Any]) -> str | None:
    """The subject a data key document belongs to (``None``: a key of no subject)."""
    names = document.get("keyAltNames") or ()
    name = next(iter(names), None)
    return name if isinstance(name, str) and is_pseudonym(name) else None


def subject_ids(filter: Mapping[str, Any]) -> list[str] | None:
    """The pseudonyms a filter on identity rows is restricted to (``None``: any row)."""
    value = filter.get("_id")
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping) and set(value) == {"$in"}:
        return list(value["$in"])
    for clause in filter.get("$and", ()):
        found = subject_ids(clause)
        if found is not None:
            return found
    return None


def linked_projection(projection: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """A clinical projection that reads the region wherever it reads the pseudonym."""
    if not projection or not projection.get(PSEUDONYM_FIELD) or REGION_FIELD in projection:
        return projection
    return {**projection, REGION_FIELD: 1}


def no_answer(op: AnyOp) -> Any:
    """The answer of no region at all (every region asked was left out)."""
    if isinstance(op, Count | EstimatedCount):
        return 0
    if isinstance(op, Explain):
        return {}
    return []


def merged(op: AnyOp, results: list[Any]) -> Any:
    """One answer from the answers of several regions, as one store would have given it."""
    if isinstance(op, FetchAll):
        rows = [r for part in results for r in part]
        return rows[: op.query.limit] if op.query.limit > 0 else rows
    if isinstance(op, Count | EstimatedCount | Delete | ReplaceMany):
        return sum(results)
    if isinstance(op, Distinct):
        values: list[Any] = []
        for part in results:
            values.extend(v for v in part if v not in values)
        return values
    if isinstance(op, Update | Replace):
        return UpdateOutcome(
            sum(r.matched for r in results),
            sum(r.modified for r in results),
            next((r.upserted_id for r in results if r.upserted_id is not None), None),
        )
    if isinstance(op, FindAndModify):
        return None
    return results[0]
