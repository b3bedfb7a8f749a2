"""The regions a filter's identity probes are asked of, when the filter says where to look.

See ``core.residency.pins``. One clinical request (an aggregation grouping the documents of
the pinned values by region, on the application's server) replaces asking regions that cannot
hold a match; a filter without such a condition, or a deployment without regions, pays nothing.
"""

from __future__ import annotations

from privata_mongo.core.ops import Aggregate, Among, Document, FetchAll, Flow, NextBatch, Op
from privata_mongo.core.residency.pins import REGION_GROUP, pin_filter, regions_grouped
from privata_mongo.core.routing import FilterPlan
from privata_mongo.core.schema import Side

from .context import Context

__all__ = ["among", "probed_regions"]


def probed_regions(ctx: Context, plan: FilterPlan) -> Flow[tuple[str, ...] | None]:
    """The regions holding documents the plan's pin selects (``None``: every region)."""
    if ctx.residency is None or not plan.probes or not plan.pin:
        return None
    selected = pin_filter(ctx.residency, plan.pin)
    if selected is None:
        return None
    handle = yield from Aggregate(Side.CLINICAL, ({"$match": selected}, REGION_GROUP))
    rows: list[Document] = []
    while True:
        batch: list[Document] = yield from NextBatch(handle, ctx.batch_size)
        rows.extend(batch)
        if len(batch) < ctx.batch_size:
            return regions_grouped(rows)


def among(regions: tuple[str, ...] | None, op: FetchAll) -> Op[list[Document]]:
    """``op`` asked of ``regions`` only (unchanged when ``None``: every region)."""
    return op if regions is None else Among(regions, op)
