"""The regions of a deployment as the runtime wires them: residency, stores and key vaults.

``config.Region`` says where a region's identity data and data keys live; this module turns
the settings into the core's ``Residency`` (names, resolver, each region's master key) and
builds, per split collection and region, the ports the drivers serve ``InRegion`` requests
with: the region's identity collection (same name, on the region's client), its key vault and
the cache of its entries (``config.region_cache``).
Both follow the settings, as the key vault does: a ``configure`` applies to later operations.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from privata_mongo.adapters.pymongo_async_store import AsyncPymongoStore
from privata_mongo.adapters.pymongo_calls import IdentityRedaction
from privata_mongo.adapters.pymongo_store import PymongoStore
from privata_mongo.config import Settings
from privata_mongo.context import partial_allowed, pinned_regions
from privata_mongo.core.residency import Residency, Wrapping
from privata_mongo.drivers._dispatch import Binding
from privata_mongo.errors import UnknownRegion
from privata_mongo.runtime.cache import AsyncCurrentCache, CurrentCache
from privata_mongo.runtime.keys import KeyRings, real_client, region_provider

__all__ = ["RegionPorts", "clinical_collection", "clinical_collections", "residency_of"]

_lock = threading.Lock()
_made: dict[int, tuple[Settings, Residency | None]] = {}


def residency_of(settings: Settings) -> Residency | None:
    """The core's view of the configured regions now (``None``: one region, nothing routed).

    Restricted to the regions of the innermost ``within_regions`` block, if any.

    Raises:
        UnknownRegion: ``within_regions`` names a region that is not configured.
    """
    made = _configured(settings)
    if made is None:
        return None
    partial = partial_allowed()
    if partial is not None:
        made = replace(made, partial=True, skipped=partial.regions.add)
    pinned = pinned_regions()
    if not pinned:
        return made
    unknown = [r for r in pinned if r not in made.regions]
    if unknown:
        raise UnknownRegion(
            f"within_regions names {len(unknown)} region(s) that are not configured; "
            f"configured regions: {', '.join(made.regions)}"
        )
    return replace(made, pinned=pinned)


def _configured(settings: Settings) -> Residency | None:
    held = _made.get(id(settings))
    if held is not None and held[0] is settings:
        return held[1]
    made: Residency | None = None
    regions = settings.regions
    if regions:
        made = Residency(
            regions=tuple(regions),
            default=settings.default_region or next(iter(regions)),
            field_name=settings.region_field,
            values=dict(settings.region_values),
            resolver=settings.region_resolver,
            wrapping={
                name: Wrapping(region_provider(name, region), region.master_key)
                for name, region in regions.items()
            },
            clinical=frozenset(n for n, r in regions.items() if r.clinical_client is not None),
        )
    with _lock:
        # The settings are kept with their residency, so an id is not reused while cached;
        # only the latest settings are kept (they change at start-up, and in tests).
        _made.clear()
        _made[id(settings)] = (settings, made)
    return made


def identity_database(region: Any, database: str) -> Any:
    """The real database of ``region``'s identity collections.

    ``database`` is the application's database name, used unless the region names its own.
    """
    return real_client(region.identity_client)[region.identity_database or database]


def identity_collection(region: Any, database: str, name: str) -> Any:
    """The real identity collection ``name`` in ``region``'s identity store."""
    return identity_database(region, database)[name]


def clinical_collection(region: Any, clinical: Any) -> Any:
    """The real collection of ``region``'s clinical rows of the clinical collection ``clinical``.

    The application's collection itself when the region has no clinical store of its own.
    """
    if region.clinical_client is None:
        return clinical
    database = region.clinical_database or clinical.database.name
    return real_client(region.clinical_client)[database][clinical.name]


def clinical_collections(settings: Settings, clinical: Any) -> list[tuple[str | None, Any]]:
    """Every real collection holding rows of the clinical collection ``clinical``.

    ``(None, clinical)`` first (the application's store), then ``(region, collection)`` for
    each region with a clinical store of its own, for the operator paths (rights, retention,
    transfer) that read the stored rows rather than the logical documents.
    """
    found: list[tuple[str | None, Any]] = [(None, clinical)]
    for name, region in (settings.regions or {}).items():
        if region.clinical_client is not None:
            found.append((name, clinical_collection(region, clinical)))
    return found


class RegionPorts:
    """The identity store and key vault of each region, for one split collection.

    Args:
        settings: where settings come from.
        keys: the connection's key rings and vaults.
        identity: the identity collection of the application's database (its name and its
            database's name are the region's, unless the region names another database).
        clinical: the clinical collection of the application's database (the same for a
            region with a clinical store of its own).
        redaction: keeps stored values out of the identity stores' errors.
        access: the access context source of the bindings.
        asynchronous: the stores and vaults are awaited.
        kms: the KMS transport of the connection (remote master keys of regions).
    """

    def __init__(
        self,
        settings: Callable[[], Settings],
        keys: KeyRings,
        identity: Any,
        clinical: Any,
        redaction: IdentityRedaction,
        access: Callable[[], Any],
        *,
        asynchronous: bool,
        kms: Any = None,
    ) -> None:
        self._settings = settings
        self._keys = keys
        self._identity = identity
        self._clinical = clinical
        self._redaction = redaction
        self._access = access
        self._asynchronous = asynchronous
        self._kms = kms
        self._bindings: dict[tuple[int, str], tuple[Any, Binding[Any, Any, Any, Any, Any]]] = {}

    def residency(self) -> Residency | None:
        """The regions configured now, naming the model of the collection."""
        made = residency_of(self._settings())
        if made is None:
            return None
        return replace(made, model=self._redaction.model, identity_collection=self._identity.name)

    def binding(self, name: str) -> Binding[Any, Any, Any, Any, Any]:
        """The ports of region ``name``.

        Raises:
            UnknownRegion: no region of that name is configured (any more).
        """
        regions = self._settings().regions or {}
        region = regions.get(name)
        if region is None:
            raise UnknownRegion(
                f"a stored subject names a region that is not configured; configured "
                f"regions: {', '.join(regions) or 'none'} (keep every region that holds "
                "subjects in the settings)"
            )
        key = (id(region), name)
        held = self._bindings.get(key)
        if held is None:
            collection = identity_collection(
                region, self._identity.database.name, self._identity.name
            )
            store: Any = (
                AsyncPymongoStore(collection, self._redaction)
                if self._asynchronous
                else PymongoStore(collection, self._redaction)
            )
            clinical: Any = None
            if region.clinical_client is not None:
                rows = clinical_collection(region, self._clinical)
                clinical = AsyncPymongoStore(rows) if self._asynchronous else PymongoStore(rows)
            cache: Any = (
                AsyncCurrentCache(self._settings, name)
                if self._asynchronous
                else CurrentCache(self._settings, name)
            )
            made: Binding[Any, Any, Any, Any, Any] = Binding(
                clinical,
                store,
                access=self._access,
                keys=self._keys.region_vault(region),
                kms=self._kms,
                cache=cache,  # the region's entries, in the region's cache only
            )
            held = self._bindings.setdefault(key, (region, made))
        return held[1]
