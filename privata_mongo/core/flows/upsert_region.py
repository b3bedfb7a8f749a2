"""The region of a subject a server-side upsert creates, decided before the server writes.

An upsert the server runs alone (no identity field read or written) creates its clinical row
on the server, so the region cannot be stamped on a document in the process as an insert's is
(``write.placed``). It is decided from the document the upsert would produce (the filter's
equalities with the update applied, ``$set`` and ``$setOnInsert`` included), exactly as an
insert of that document would be placed, and written by the upsert's own ``$setOnInsert``.
A pipeline update cannot be evaluated here, so its new document is placed by the filter's
equalities alone. A region the resolver gives that the operation may not use (not configured,
or outside ``within_regions``) refuses the upsert only when it would create a document: the
update is then sent without ``upsert``, and the refusal raised if it matched nothing, as an
insert of that document would have been refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, overload

from privata_mongo.core.failures import NativeFailure
from privata_mongo.core.mql.update import CompiledUpdate, upsert_seed
from privata_mongo.core.ops import Flow, Located
from privata_mongo.core.residency import region_of
from privata_mongo.core.schema import PSEUDONYM_FIELD, REGION_FIELD
from privata_mongo.errors import UnknownRegion

from .context import Context

__all__ = ["Refused", "linked_update", "place_upsert", "placed_region"]


class Refused:
    """An upsert whose new document the operation may not place: it may only update."""

    __slots__ = ("error",)

    def __init__(self, error: UnknownRegion) -> None:
        self.error = error


def _produced(
    ctx: Context,
    filter: Mapping[str, Any],
    compiled: CompiledUpdate | None,
    options: Mapping[str, Any],
) -> Mapping[str, Any]:
    """The document the upsert would insert, as far as the process can tell."""
    try:
        seed = upsert_seed(filter)
    except NativeFailure:  # the server reports the filter's conflict itself
        return {}
    if compiled is None:
        return seed
    try:
        return compiled.apply(
            seed,
            now=ctx.now(),
            inserting=True,
            array_filters=options.get("array_filters"),
            query=filter,
        ).document
    except (NativeFailure, TypeError):  # the server reports the update's error itself
        return seed


def place_upsert(
    ctx: Context,
    filter: Mapping[str, Any],
    compiled: CompiledUpdate | None,
    options: Mapping[str, Any],
    pseudonym: str,
) -> Flow[str | Refused | None]:
    """The region of the subject ``pseudonym`` the upsert would create, stated to the router.

    ``None`` without regions configured or without an upsert (no ``pseudonym``): nothing is
    yielded; ``Refused`` when the resolver's region may not be used by this operation.
    """
    if ctx.residency is None or not pseudonym:
        return None
    try:
        region = region_of(ctx.residency, _produced(ctx, filter, compiled, options))
    except UnknownRegion as exc:
        return Refused(exc)
    yield Located({pseudonym: region})
    return region


def placed_region(placement: str | Refused | None) -> tuple[str | None, Refused | None]:
    """The region to stamp on a created document, and the refusal, of a ``place_upsert``."""
    if isinstance(placement, Refused):
        return None, placement
    return placement, None


@overload
def linked_update(
    update: Mapping[str, Any], pseudonym: str, region: str | None
) -> Mapping[str, Any]: ...
@overload
def linked_update(
    update: Sequence[Mapping[str, Any]], pseudonym: str, region: str | None
) -> tuple[Mapping[str, Any], ...]: ...
def linked_update(
    update: Mapping[str, Any] | Sequence[Mapping[str, Any]], pseudonym: str, region: str | None
) -> Mapping[str, Any] | tuple[Mapping[str, Any], ...]:
    """``update`` giving a document it creates a fresh link (and its region, if any).

    An operator update gets them by ``$setOnInsert``; a pipeline by a last ``$set`` that
    keeps an existing document's own.
    """
    fields: dict[str, Any] = {PSEUDONYM_FIELD: pseudonym}
    if region is not None:
        fields[REGION_FIELD] = region
    if isinstance(update, Mapping):
        on_insert = dict(update.get("$setOnInsert", {}))
        on_insert.update(fields)
        return {**update, "$setOnInsert": on_insert}
    kept = {name: {"$ifNull": [f"${name}", value]} for name, value in fields.items()}
    return (*update, {"$set": kept})
