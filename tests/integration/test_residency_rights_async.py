"""Data residency on the async facade: where each part is, records with regions, caches.

The regions are ``test_residency_async``'s: one embedded backend each, scanned raw.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from typing import Any

import bson
import mongomock
import pymongo
import pytest
from mongomock.store import ServerStore

import privata_mongo
import privata_mongo.beanie as pb
from privata_mongo.config import Region, current
from privata_mongo.context import access_context
from privata_mongo.core.cache import entry_subject
from privata_mongo.core.rights.storage import StoredAt
from privata_mongo.embedded import AsyncMockClient
from privata_mongo.encryption import forget_keys
from privata_mongo.rights import AsyncRights
from privata_mongo.runtime.cache import async_cache, close_async_caches
from testkit.backends import Backend
from tests.integration.test_residency import Stores, second_ferretdb, settings_restored, stores
from tests.integration.test_residency_async import NAMESPACE, PEOPLE, _model, _Region, regions

__all__ = ["regions", "second_ferretdb", "settings_restored", "stores"]  # shared fixtures

CONTEXT = {"actor": "dpo", "purpose": "data-subject-request", "legal_basis": "art6_1c"}


async def test_beanie_access_and_export_say_where_each_part_is_and_records_name_the_region(
    regions: dict[str, _Region],
) -> None:
    Person = _model()
    database = pb.embedded_database("res_async")
    await pb.init_beanie(database=database, document_models=[Person])
    for first, email, country in PEOPLE:
        await Person(first_name=first, email=email, country=country).insert()
    marie = (await database["res_async_person"].find_one({"country": "FR"}))["_pseudonym"]
    rights = AsyncRights([Person])
    with access_context(**CONTEXT):
        held = await rights.access(marie)
        out = io.BytesIO()
        await rights.export(marie, out)
        await rights.restrict(marie)
        await rights.erase(marie)
    expected = {
        "region": "eu",
        "key": {"region": "eu", "key_vault": NAMESPACE, "master_key": "local:eu"},
        "models": [
            {
                "model": "ResAsyncPerson",
                "clinical": {
                    "region": None,
                    "database": "res_async",
                    "collection": "res_async_person",
                },
                "identity": {
                    "region": "eu",
                    "database": "res_async",
                    "collection": "res_async_person__identity",
                },
            }
        ],
    }
    assert held.storage is not None
    assert held.storage.document() == expected
    assert json.loads(out.getvalue())["storage"] == expected
    trail = await database[current().audit_collection].find({"subjects": marie}).to_list()
    assert {r["operation"] for r in trail} >= {"access", "export", "restrict", "erase"}
    assert {tuple(r.get("regions", ())) for r in trail} == {("eu",)}
    assert marie not in {row["_id"] for row in regions["eu"].identity()}
    assert not [r for r in regions["us"].identity() if r["_id"] == marie]


async def test_beanie_caches_each_regions_entries_in_its_own_cache_only(
    regions: dict[str, _Region],
) -> None:
    privata_mongo.configure(
        regions={
            name: replace(region, cache="memory://") for name, region in current().regions.items()
        }
    )
    Person = _model()
    database = pb.embedded_database("res_async")
    await pb.init_beanie(database=database, document_models=[Person])
    for first, email, country in PEOPLE:
        await Person(first_name=first, email=email, country=country).insert()
    for _ in range(2):
        assert len(await Person.find_all().to_list()) == len(PEOPLE)
    placed = {
        r["_pseudonym"]: r["_region"] for r in await database["res_async_person"].find({}).to_list()
    }
    for name in ("eu", "us"):
        cache = async_cache(current(), name)
        assert cache is not None
        held = {entry_subject(n) for n in cache.backend._cache}
        assert held - {None} == {p for p, r in placed.items() if r == name}
    assert async_cache(current()) is None  # no deployment cache
    await close_async_caches()


async def test_beanie_rights_on_each_backend_say_where_each_part_is_and_erase_in_the_eu(
    backend: Backend, stores: Stores, settings_restored: None, request: pytest.FixtureRequest
) -> None:
    """Beanie over the backend itself: with ``ferretdb``, the EU region a second server."""
    if backend.uri is None:  # mongomock: each store embedded, scanned raw on the same store
        app: Any = AsyncMockClient(ServerStore())
        eu_store, us_store = ServerStore(), ServerStore()
        eu, us = AsyncMockClient(eu_store), AsyncMockClient(us_store)
        raw_eu = mongomock.MongoClient(_store=eu_store)
        raw_us = mongomock.MongoClient(_store=us_store)
    else:
        second = request.getfixturevalue("second_ferretdb")
        app = pymongo.AsyncMongoClient(backend.uri)
        eu, us = pymongo.AsyncMongoClient(second.uri), pymongo.AsyncMongoClient(backend.uri)
        raw_eu, raw_us = stores.eu, stores.us
    namespace = f"regionkeys_{stores.database}.__keyVault"
    privata_mongo.configure(
        regions={
            "eu": Region(eu, stores.database, key_vault_namespace=namespace),
            "us": Region(us, stores.database, key_vault_namespace=namespace),
        },
        default_region="us",
        region_resolver=lambda d: "us" if d.get("country") == "US" else "eu",
    )
    forget_keys()
    try:
        Person = _model()
        database = app[backend.db_name]
        await pb.init_beanie(database=database, document_models=[Person])
        for first, email, country in PEOPLE:
            await Person(first_name=first, email=email, country=country).insert()
        marie = (await database["res_async_person"].find_one({"country": "FR"}))["_pseudonym"]
        us_identity = raw_us[stores.database]["res_async_person__identity"]
        us_rows = sorted(bson.encode(d) for d in us_identity.find())
        with access_context(**CONTEXT):
            held = await AsyncRights([Person]).access(marie)
            await AsyncRights([Person]).erase(marie)
        assert held.storage is not None
        assert held.storage.document()["key"] == {
            "region": "eu",
            "key_vault": namespace,
            "master_key": "local:eu",
        }
        assert held.storage.models[0].identity == StoredAt(
            "eu", stores.database, "res_async_person__identity"
        )
        clinical = StoredAt(None, backend.db_name, "res_async_person")
        assert held.storage.models[0].clinical == clinical
        identity = raw_eu[stores.database]["res_async_person__identity"]
        assert identity.count_documents({"_id": marie}) == 0
        assert sorted(bson.encode(d) for d in us_identity.find()) == us_rows
        trail = await database[current().audit_collection].find({"subjects": marie}).to_list()
        assert {tuple(r.get("regions", ())) for r in trail} == {("eu",)}
    finally:
        await app.drop_database(backend.db_name)
        for client in (app, eu, us):
            await client.close()
