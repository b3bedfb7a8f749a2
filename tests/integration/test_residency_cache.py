"""Data residency and the cache: a region's rows and wrapped keys are cached in its cache only.

The regions are those of ``test_residency``; the caches are this process's memory and the
session's ``redis-server`` (``redis_uri``), standing for a Redis that runs in the US. Every
claim is checked by scanning the caches raw: the names they hold (which carry pseudonyms) and
what they hold under them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis

import privata_mongo
from privata_mongo.config import Region, current
from privata_mongo.context import access_context
from privata_mongo.core.cache import ERASED_HOLD, entry_subject, key_entry, row_entry
from privata_mongo.rights import Rights
from privata_mongo.runtime.cache import close_caches, sync_cache
from testkit.backends import Backend
from tests.integration.test_residency import (
    EMAILS,
    Stores,
    _connect,
    _raw,
    _regions,
    second_ferretdb,
    settings_restored,
    stores,
)

__all__ = ["second_ferretdb", "settings_restored", "stores"]  # fixtures shared with residency

CONTEXT = {"actor": "dpo", "purpose": "data-subject-request", "legal_basis": "art6_1c"}


@pytest.fixture(autouse=True)
def _caches_closed() -> Iterator[None]:
    """Each test starts with new caches (the memory ones empty) and closes its connections."""
    close_caches()
    yield
    close_caches()


def _subjects_in_redis(uri: str) -> set[str]:
    client = redis.Redis.from_url(uri)
    try:
        names = [k.decode() for k in client.keys("privata:*")]
        held = dict(zip(names, client.mget(names), strict=True)) if names else {}
    finally:
        client.close()
    return {s for n, v in held.items() if v and (s := entry_subject(n)) is not None}


def _subjects_in_memory(region: str | None) -> set[str]:
    cache = sync_cache(current(), region)
    if cache is None:
        return set()
    entries = dict(cache._entries.items())  # type: ignore[union-attr] # the memory cache's own
    return {s for n, v in entries.items() if v and (s := entry_subject(n)) is not None}


def _placed(connected: Any) -> dict[str, str]:
    return {d["_pseudonym"]: d["_region"] for d in _raw(connected["res_patient"])}


def _with_caches(stores: Stores, eu: str | None, us: str | None) -> dict[str, Region]:
    regions = _regions(stores)
    return {"eu": replace(regions["eu"], cache=eu), "us": replace(regions["us"], cache=us)}


def test_each_regions_rows_and_keys_are_cached_in_its_own_cache_only(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None, redis_uri: str
) -> None:
    # the EU caches in this process; the US in a Redis that runs in the US
    Patient = _connect(backend, _with_caches(stores, "memory://", redis_uri))
    for _ in range(2):
        assert sorted(p.email for p in Patient.objects) == sorted(EMAILS)
    placed = _placed(connected)
    eu = {p for p, r in placed.items() if r == "eu"}
    us = {p for p, r in placed.items() if r == "us"}
    in_redis = _subjects_in_redis(redis_uri) & set(placed)
    assert in_redis == us  # a raw scan of the US Redis finds no EU subject's entry
    assert _subjects_in_memory("eu") == eu
    assert _subjects_in_memory(None) == set()  # no deployment cache is configured
    # both kinds of entry, per region: the identity row and the wrapped key
    marie = next(p for p in eu if placed[p] == "eu")
    names = [row_entry(backend.db_name, "res_patient__identity", marie), key_entry(marie)]
    assert set(sync_cache(current(), "eu").get(names)) == set(names)  # type: ignore[union-attr]
    assert sync_cache(current(), "us").get(names) == {}  # type: ignore[union-attr]


def test_a_region_without_its_own_cache_uses_the_in_process_cache_never_a_shared_redis(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None, redis_uri: str
) -> None:
    privata_mongo.configure(cache=redis_uri)  # the deployment's shared Redis
    Patient = _connect(backend, _with_caches(stores, "memory://", None))
    for _ in range(2):
        assert sorted(p.email for p in Patient.objects) == sorted(EMAILS)
    placed = _placed(connected)
    # the US region has no cache of its own: nothing of it goes to the shared Redis either
    assert _subjects_in_redis(redis_uri) & set(placed) == set()
    assert _subjects_in_memory("eu") == {p for p, r in placed.items() if r == "eu"}
    # with the in-process cache as the deployment's, a region without its own uses it
    me_disconnect_and_drop(connected)
    privata_mongo.configure(cache="memory://")
    Patient = _connect(backend, _with_caches(stores, "memory://", None))
    for _ in range(2):
        assert len([p.email for p in Patient.objects]) == len(EMAILS)
    placed = _placed(connected)
    assert _subjects_in_memory(None) & set(placed) == {p for p, r in placed.items() if r == "us"}
    assert _subjects_in_memory("eu") & set(placed) == {p for p, r in placed.items() if r == "eu"}


def me_disconnect_and_drop(connected: Any) -> None:
    """A fresh start for a second layout in one test."""
    import mongoengine as me

    me.disconnect()
    connected.drop_collection("res_patient")


def test_writes_and_erasures_invalidate_in_the_subjects_regions_cache(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None, redis_uri: str
) -> None:
    Patient = _connect(backend, _with_caches(stores, "memory://", redis_uri))
    placed = _placed(connected)
    marie = next(p for p, r in placed.items() if r == "eu")
    row = connected["res_patient"].find_one({"_pseudonym": marie})
    names = [row_entry(backend.db_name, "res_patient__identity", marie), key_entry(marie)]
    eu_cache = sync_cache(current(), "eu")
    assert eu_cache is not None
    Patient.objects.get(id=row["_id"])
    assert set(eu_cache.get(names)) == set(names)
    Patient.objects(id=row["_id"]).update(set__first_name="Changed")
    assert eu_cache.get(names[:1]) == {}  # the row's entry is held after the write
    assert Patient.objects.get(id=row["_id"]).first_name == "Changed"
    with access_context(**CONTEXT):
        Rights([Patient]).erase(marie)
    assert eu_cache.get(names) == {}  # the key's entry is held: nobody caches it again
    assert Patient.objects.get(id=row["_id"]).email is None
    assert marie not in _subjects_in_redis(redis_uri)


def test_the_key_recheck_asks_the_cache_of_the_subjects_region(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None, redis_uri: str
) -> None:
    privata_mongo.configure(key_recheck_ms=50)
    Patient = _connect(backend, _with_caches(stores, "memory://", redis_uri))
    placed = _placed(connected)
    marie = next(p for p, r in placed.items() if r == "eu")
    row = connected["res_patient"].find_one({"_pseudonym": marie})
    email = Patient.objects.get(id=row["_id"]).email
    # another process shreds the key: gone from the EU vault, its entry held in a cache
    vault = stores.vault("eu")
    vault.database[f"{vault.name}.tombstones"].insert_one({"_id": marie})
    vault.delete_many({"keyAltNames": marie})
    us_cache, eu_cache = sync_cache(current(), "us"), sync_cache(current(), "eu")
    assert us_cache is not None
    assert eu_cache is not None
    us_cache.invalidate([key_entry(marie)], ERASED_HOLD)  # a hold in the wrong cache...
    time.sleep(0.1)
    # ...is not looked at: the EU cache still confirms the key held in memory
    assert Patient.objects.get(id=row["_id"]).email == email
    eu_cache.invalidate([key_entry(marie)], ERASED_HOLD)  # held where the EU region looks
    time.sleep(0.1)
    assert Patient.objects.get(id=row["_id"]).email is None  # within the recheck interval
