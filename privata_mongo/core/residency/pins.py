"""Where a filter's documents can be: the regions a condition on the region field allows.

A filter that ANDs an equality or ``$in`` on the resolver's field (``region_field``) selects
only documents with those values, and so only subjects of the regions holding such documents:
the identity probes of that filter need ask no other region. The regions are read from the
clinical rows (their ``REGION_FIELD``), not derived from ``region_values``: an update may
change the field without moving its subject (``transfer_region`` is the only move), and a
value may have been placed by the default or by a ``within_regions`` block, so only the stored
regions say exactly where such subjects are. A ``region_resolver`` callable cannot be inverted
(any field may decide), so it pins nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from privata_mongo.core.identity import is_operator_document
from privata_mongo.core.residency.placement import Residency
from privata_mongo.core.schema import REGION_FIELD

__all__ = ["pin_filter", "regions_grouped"]


def pin_filter(
    residency: Residency, conditions: Sequence[tuple[str, Any]]
) -> dict[str, Any] | None:
    """The clinical filter of the documents a filter's region-field conditions select.

    ``conditions`` are the filter's top-level conjunction on clinical fields
    (``FilterPlan.pin``). ``None``: the filter does not constrain the field by equality or
    ``$in`` (or the regions come from a resolver callable), so every region may hold a match.
    """
    field = residency.field_name
    if residency.resolver is not None or field is None:
        return None
    kept = [{field: c} for name, c in conditions if name == field and _selective(c)]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else {"$and": kept}


def _selective(condition: Any) -> bool:
    """An equality, ``$eq`` or ``$in``: a bounded set of values (and so of regions)."""
    if not is_operator_document(condition):
        return not isinstance(condition, Mapping)
    return set(condition) <= {"$eq", "$in"} and isinstance(condition.get("$in", []), list)


def regions_grouped(rows: Sequence[Mapping[str, Any]]) -> tuple[str, ...] | None:
    """The regions of ``$group``-by-region rows; ``None`` if some row has no region.

    A clinical row without a region (written before regions were configured) could have its
    identity row anywhere, so the probe then asks every region.
    """
    found: list[str] = []
    for row in rows:
        region = row.get("_id")
        if not isinstance(region, str):
            return None
        found.append(region)
    return tuple(sorted(found))


REGION_GROUP = {"$group": {"_id": f"${REGION_FIELD}"}}
"""The stage reading the regions of the selected documents."""
