"""Internal. The cache requests of a flow with regions, each sent to its subject's region.

A region's identity rows and wrapped data keys are cached only in that region's cache
(``config.region_cache``: its own, the deployment's in-process one, or none), so a cache never
holds another region's ciphertext or keys. Every cache entry names its subject's pseudonym
(``core.cache``); the router knows the regions of the subjects it met. A name of a subject it
does not know is read from every region asked (reading copies nothing), never put anywhere
(it could be put in the wrong region's cache: the next read fills the right one), and
invalidated in every region, so that no write leaves a stale copy behind in any of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from privata_mongo.core.cache import entry_subject
from privata_mongo.core.ops import CacheGet, CacheInvalidate, CachePut, Flow, InRegion
from privata_mongo.core.residency.placement import Residency

__all__ = ["routed_cache"]


def _grouped(
    names: Sequence[str], where: Mapping[str, str]
) -> tuple[dict[str, list[str]], list[str]]:
    known: dict[str, list[str]] = {}
    unknown: list[str] = []
    for name in names:
        subject = entry_subject(name)
        region = where.get(subject) if subject is not None else None
        if region is None:
            unknown.append(name)
        else:
            known.setdefault(region, []).append(name)
    return known, unknown


def routed_cache(
    op: CacheGet | CachePut | CacheInvalidate, where: Mapping[str, str], residency: Residency
) -> Flow[Any]:
    """Serve ``op`` from the caches of its subjects' regions (``where``: pseudonym → region)."""
    if isinstance(op, CachePut):
        values = dict(op.entries)
        known, _ = _grouped(list(values), where)  # names of unknown subjects are not put
        for region, names in known.items():
            yield InRegion(region, CachePut(tuple((n, values[n]) for n in names)))
        return None
    known, unknown = _grouped(op.keys, where)
    everywhere = residency.asked if isinstance(op, CacheGet) else residency.regions
    for region in everywhere if unknown else ():
        known.setdefault(region, []).extend(unknown)
    if isinstance(op, CacheInvalidate):
        for region, names in known.items():
            yield InRegion(region, CacheInvalidate(tuple(names), op.hold))
        return None
    found: dict[str, bytes] = {}
    for region, names in known.items():
        part: dict[str, bytes] = yield from InRegion(region, CacheGet(tuple(names)))
        found.update(part)
    return found
