"""Aggregation push-down: plan a pipeline so the server runs all it can over the clinical half.

``planner`` walks the stages and decides, for each, whether the server runs it (identity
conditions as pseudonym sets, identity sorts as ordered-id reads, identity groups as partial
groups per pseudonym) or the process does (``Materialize``). ``exposure`` tracks which identity
fields the documents hold, and under which names, at each stage; ``hoist`` moves filters ahead of
the document-preserving stages they commute with; ``group_split`` splits a ``$group`` the way a
sharded cluster does, into per-pseudonym partial groups and their merges.
"""

from privata_mongo.core.pushdown.exposure import NOTHING
from privata_mongo.core.pushdown.planner import (
    Exposure,
    Finish,
    GroupMerge,
    IdentitySort,
    MatchSlot,
    Materialize,
    PipelinePlan,
    plan_pipeline,
    split_joins,
)

__all__ = [
    "NOTHING",
    "Exposure",
    "Finish",
    "GroupMerge",
    "IdentitySort",
    "MatchSlot",
    "Materialize",
    "PipelinePlan",
    "plan_pipeline",
    "split_joins",
]
