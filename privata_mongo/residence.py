"""The region of a data subject, as the rights read it, and where each part of its data is.

The rights' flows (``core.rights``) know nothing of regions; what they ask is answered here
and in ``privata_mongo.erasure``. A subject's region is read once per right from the
``_region`` its clinical rows carry (the application's store: no personal data, one read), and
kept in the right's ``memo``, so the right's other requests go to that region's stores alone
and every audit record it appends names the region. ``where`` answers ``core.rights.storage``'s
``Where``: the identity collection and key vault of the subject's region (each checked to hold
the subject's row or key, the key read without its material), and the application's clinical
collections. As in ``privata_mongo.erasure``, every call is yielded, so ``Rights`` takes its
value and ``AsyncRights`` awaits it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, MutableMapping
from functools import partial
from typing import Any

from privata_mongo.context import partial_allowed
from privata_mongo.core.rights.storage import KeyStoredAt, ModelStorage, Storage, StoredAt, Where
from privata_mongo.core.schema import PSEUDONYM_FIELD, REGION_FIELD
from privata_mongo.errors import RegionUnavailable
from privata_mongo.proxy._collection_base import SplitCollectionBase
from privata_mongo.runtime.region_calls import region_call
from privata_mongo.runtime.regions import clinical_collections, identity_collection

__all__ = ["identity_collections", "key_vaults", "region_of", "subject_regions", "where"]

Answer = Generator[Any, Any, Any]

_REGIONS = "regions:"
"""The prefix of a subject's regions in a right's memo."""


def _split(collection: Any) -> bool:
    return isinstance(collection, SplitCollectionBase) and collection.schema.enabled


def _asked(region: str | None, call: Callable[[], Any]) -> Answer:
    """``call()`` on a store of ``region``; inside ``partial_results``, ``None`` if unreachable.

    Only access and export read where data is stored, and they may answer partially: an
    unreachable region is then named in the block (and so in their records), and the part it
    holds is reported as not found. Outside such a block it raises ``RegionUnavailable``.
    """
    try:
        return (yield region_call(region, call))
    except RegionUnavailable:
        partial = partial_allowed()
        if partial is None or region is None:
            raise
        partial.regions.add(region)
        return None


def subject_regions(
    facade: Any, classes: Mapping[str, Any], pseudonym: str, memo: MutableMapping[str, Any]
) -> Answer:
    """The regions of ``pseudonym`` (``()``: no regions configured, or none recorded).

    Read from the first clinical row of the subject that records one, in whichever store
    holds it (a region may keep its clinical rows on a server of its own): every row of a
    subject names the same region (only ``transfer_region`` changes it, on all of them at once).
    """
    held = memo.get(_REGIONS + pseudonym)
    if held is not None:
        return held
    found: tuple[str, ...] = ()
    selector = {PSEUDONYM_FIELD: pseudonym, REGION_FIELD: {"$exists": True}}
    for cls in classes.values():
        collection = facade.collection(cls)
        settings = collection.database.client.runtime.settings()
        if not settings.regions:
            break
        if not _split(collection):
            continue
        raw = collection.database.inner[collection.name]
        for store_region, stored in clinical_collections(settings, raw):
            row = yield from _asked(
                store_region, partial(stored.find_one, selector, {REGION_FIELD: 1})
            )
            if row is not None and isinstance(row.get(REGION_FIELD), str):
                found = (row[REGION_FIELD],)
                break
        if found:
            break
    memo[_REGIONS + pseudonym] = found
    return found


def region_of(runtime: Any, regions: tuple[str, ...]) -> list[tuple[str | None, Any]]:
    """The ``(name, config.Region)`` of ``regions``, or every configured region for ``()``.

    Without regions configured: ``[(None, None)]``, the deployment's own stores.
    """
    configured = runtime.settings().regions or {}
    if not configured:
        return [(None, None)]
    names = [r for r in regions if r in configured] or list(configured)
    return [(name, configured[name]) for name in names]


def identity_collections(collection: Any, regions: tuple[str, ...]) -> list[tuple[str | None, Any]]:
    """The real identity collections of ``collection`` in ``regions`` (every one for ``()``)."""
    real = collection.database.inner
    name = collection.schema.identity_collection
    runtime = collection.database.client.runtime
    found: list[tuple[str | None, Any]] = []
    for region_name, region in region_of(runtime, regions):
        if region is None:
            found.append((None, real[name]))
        else:
            found.append((region_name, identity_collection(region, real.name, name)))
    return found


def _vaults(runtime: Any, regions: tuple[str, ...]) -> list[tuple[str | None, str, Any]]:
    """``(region, namespace, vault)`` of the key vaults of ``regions`` (the base one without)."""
    settings = runtime.settings()
    if not settings.regions:
        return [(None, settings.key_vault_namespace, runtime.keys.vault(settings))]
    return [
        (name, region.key_vault_namespace, runtime.keys.region_vault(region))
        for name, region in region_of(runtime, regions)
    ]


def key_vaults(runtime: Any, regions: tuple[str, ...]) -> list[tuple[str | None, Any]]:
    """The key vaults (and shredders) of ``regions``: every region's for ``()``."""
    return [(name, vault) for name, _, vault in _vaults(runtime, regions)]


def where(
    facade: Any, classes: Mapping[str, Any], request: Where, memo: MutableMapping[str, Any]
) -> Answer:
    """Where the data of ``request.pseudonym`` is stored (``core.rights.storage.Storage``)."""
    pseudonym = request.pseudonym
    regions = yield from subject_regions(facade, classes, pseudonym, memo)
    first = facade.collection(classes[request.models[0]]) if request.models else None
    models: list[ModelStorage] = []
    for name in request.models:
        collection = facade.collection(classes[name])
        clinical = StoredAt(None, collection.database.inner.name, collection.name)
        identity: StoredAt | None = None
        if _split(collection):
            settings = collection.database.client.runtime.settings()
            raw = collection.database.inner[collection.name]
            for region, stored in clinical_collections(settings, raw)[1:]:  # regions' own stores
                asked = partial(stored.count_documents, {PSEUDONYM_FIELD: pseudonym}, limit=1)
                if (yield from _asked(region, asked)):
                    clinical = StoredAt(region, stored.database.name, stored.name)
                    break
            for region, target in identity_collections(collection, regions):
                asked = partial(target.count_documents, {"_id": pseudonym}, limit=1)
                if (yield from _asked(region, asked)):
                    identity = StoredAt(region, target.database.name, target.name)
                    break
        models.append(ModelStorage(name, clinical, identity))
    key: KeyStoredAt | None = None
    runtime = None if first is None else first.database.client.runtime
    if runtime is not None and runtime.settings().encryption:
        for region, namespace, vault in _vaults(runtime, regions):
            held = yield from _asked(
                region,
                partial(
                    vault.collection.find_one,
                    {"keyAltNames": pseudonym},
                    {"_id": 0, "masterKey.provider": 1},
                ),
            )
            if held is not None:
                provider = (held.get("masterKey") or {}).get("provider")
                key = KeyStoredAt(region, namespace, provider)
                break
    located = [m.identity.region for m in models if m.identity is not None]
    if key is not None:
        located.append(key.region)
    region = regions[0] if regions else next((r for r in located if r is not None), None)
    return Storage(region, key, tuple(models))
