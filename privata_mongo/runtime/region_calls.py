"""Calls the rights make on one region's stores directly, an unreachable region named.

Erasure visits each region's identity store and key vault itself (it must find a key wherever
it is held, and shreds it there). A region whose server cannot be reached fails such a call
with the driver's connection error; the application gets ``RegionUnavailable`` naming the
region instead, as from every other operation (``drivers._dispatch.failure_of``), on the sync
facade (the call raises) and on the async one (the awaited call raises).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo.errors import ConnectionFailure

from privata_mongo.config import Settings
from privata_mongo.errors import RegionUnavailable
from privata_mongo.runtime.regions import identity_collection

__all__ = ["identity_stores", "region_call"]


def region_call(region: str | None, call: Callable[[], Any]) -> Any:
    """``call()`` (or the awaitable it returns), its connection failure named ``region``.

    ``region`` ``None``: the deployment has no regions; failures pass unchanged.
    """
    if region is None:
        return call()
    try:
        made = call()
    except (ConnectionFailure, OSError) as exc:
        raise RegionUnavailable(region) from exc
    if inspect.isawaitable(made):
        return _awaited(region, made)
    return made


async def _awaited(region: str, made: Awaitable[Any]) -> Any:
    try:
        return await made
    except (ConnectionFailure, OSError) as exc:
        raise RegionUnavailable(region) from exc


def identity_stores(
    settings: Settings, database: str, name: str, base: Any
) -> list[tuple[str | None, Any]]:
    """The real identity collections named ``name``: each region's, or ``base`` without regions.

    Each with its region's name (``None`` without regions), for the operator tools and rights
    that visit every region's store themselves (erasure, migration into new collections).
    """
    regions = settings.regions
    if not regions:
        return [(None, base)]
    return [(region, identity_collection(r, database, name)) for region, r in regions.items()]
