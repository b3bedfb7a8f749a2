"""An update of clinical fields, refused as the server refuses it when the document grows too big.

Natively the server refuses an update whose resulting document is larger than 16 MiB
(``Resulting document after update is larger than 16777216``, 17419). Split, such an update
runs on the server over the clinical half alone, which may stay under the limit while the
whole document, identity values included, passes it. So before the update is sent, the server
is asked which of the documents it selects could pass the limit: each clinical row's size
(``$bsonSize``) plus its identity row's stored size (sealed, so never smaller than the identity
values it holds) plus the most the update can add (``limits.growth_bound``). That read returns
only the ids of such candidates, usually none; each candidate is then read, joined and updated
in the process, and its exact resulting size decides. The update is refused before anything is
written (natively, an ``update_many`` would have updated the documents before the one that
failed).

A server that cannot measure documents (FerretDB 1.x, MongoDB before 4.4) answers the first such
read with an unknown-operator error; it enforces no limit of its own either, so the update goes
ahead unmeasured, as natively, and the connection does not ask again (``ServerSizes``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from privata_mongo.core.limits import MAX_BSON_SIZE, UNMEASURED, grew_too_large, growth_bound
from privata_mongo.core.mql.update import CompiledUpdate
from privata_mongo.core.ops import Aggregate, Document, FetchAll, Flow, NextBatch, Query
from privata_mongo.core.schema import PSEUDONYM_FIELD, Side
from privata_mongo.core.split import join

from .common import chunks, fetch_identities
from .context import Context

__all__ = ["refuse_growth_past_the_limit"]

# Options of the update that shape which documents it selects; the measuring read takes them.
_SELECTING = ("collation", "hint", "let", "session", "comment")


def _candidates_pipeline(
    ctx: Context,
    clinical_filter: Mapping[str, Any],
    multi: bool,
    growth: int | None,
    sort: Sequence[tuple[str, Any]],
) -> tuple[dict[str, Any], ...]:
    """The ids of the selected documents that could pass the limit (every one if unbounded)."""
    identity_size = {
        "from": ctx.schema.identity_collection,
        "let": {"pseudonym": f"${PSEUDONYM_FIELD}"},
        "pipeline": [
            {"$match": {"$expr": {"$eq": ["$_id", "$$pseudonym"]}}},
            {"$project": {"_id": 0, "size": {"$bsonSize": "$$ROOT"}}},
        ],
        "as": "identity",
    }
    stages: list[dict[str, Any]] = [
        {"$match": dict(clinical_filter)},
        *([{"$sort": dict(sort)}] if sort and not multi else []),
        *([] if multi else [{"$limit": 1}]),
        {"$project": {PSEUDONYM_FIELD: 1, "size": {"$bsonSize": "$$ROOT"}}},
        {"$lookup": identity_size},
        {"$project": {"_id": 1, "size": {"$add": ["$size", {"$sum": "$identity.size"}]}}},
    ]
    if growth is not None:
        stages.append({"$match": {"size": {"$gt": MAX_BSON_SIZE - growth}}})
    stages.append({"$project": {"_id": 1}})
    return tuple(stages)


def _candidates(
    ctx: Context,
    clinical_filter: Mapping[str, Any],
    multi: bool,
    growth: int | None,
    options: Mapping[str, Any],
    sort: Sequence[tuple[str, Any]],
) -> Flow[list[Any] | None]:
    """The candidates' ids; ``None`` when the server cannot measure documents."""
    pipeline = _candidates_pipeline(ctx, clinical_filter, multi, growth, sort)
    ids: list[Any] = []
    try:
        handle = yield from Aggregate(Side.CLINICAL, pipeline, options)
        while True:
            batch: list[Document] = yield from NextBatch(handle, ctx.batch_size)
            ids.extend(row["_id"] for row in batch)
            if len(batch) < ctx.batch_size:
                return ids
    except Exception as exc:
        if getattr(exc, "code", None) not in UNMEASURED:
            raise
        return None


def refuse_growth_past_the_limit(
    ctx: Context,
    clinical_filter: Mapping[str, Any],
    filter: Mapping[str, Any],
    update: Mapping[str, Any],
    compiled: CompiledUpdate,
    multi: bool,
    options: Mapping[str, Any],
    sort: Sequence[tuple[str, Any]] = (),
) -> Flow[None]:
    """Raise the server's 17419 when the update would take a whole document past 16 MiB.

    Args:
        ctx: the operation's context (``server_sizes`` says whether to measure).
        clinical_filter: the clinical query the update will be sent with.
        filter: the application's filter (for the positional ``$`` operator).
        update: the update document (operators on clinical fields only).
        compiled: ``update``, compiled.
        multi: ``update_many`` (every match) or ``update_one`` (the first).
        options: the update's options.
        sort: which match a single-document update changes (``find_one_and_update``), on
            clinical fields.
    """
    sizes = ctx.server_sizes
    if sizes is None or not sizes.available:
        return
    growth = growth_bound(update)
    if growth == 0:
        return
    selecting = {k: options[k] for k in _SELECTING if k in options}
    ids = yield from _candidates(ctx, clinical_filter, multi, growth, selecting, sort)
    if ids is None:
        sizes.available = False
        return
    for chunk in chunks(ids, ctx.batch_size):
        rows = yield from FetchAll(
            Side.CLINICAL,
            Query(
                {"$and": [{"_id": {"$in": list(chunk)}}, dict(clinical_filter)]}, options=selecting
            ),
        )
        linked = [row[PSEUDONYM_FIELD] for row in rows if PSEUDONYM_FIELD in row]
        identities = yield from fetch_identities(ctx, linked)
        for row in rows:
            document = join(row, identities.get(row.get(PSEUDONYM_FIELD, "")), ctx.schema)
            after = compiled.apply(
                document,
                now=ctx.now(),
                array_filters=options.get("array_filters"),
                query=filter,
            ).document
            too_large = grew_too_large(after)
            if too_large is not None:
                raise too_large
