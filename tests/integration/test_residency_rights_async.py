"""Data residency on the async facade: where each part is, records with regions, caches.

The regions are ``test_residency_async``'s: one embedded backend each, scanned raw.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace

import privata_mongo
import privata_mongo.beanie as pb
from privata_mongo.config import current
from privata_mongo.context import access_context
from privata_mongo.core.cache import entry_subject
from privata_mongo.rights import AsyncRights
from privata_mongo.runtime.cache import async_cache, close_async_caches
from tests.integration.test_residency_async import NAMESPACE, PEOPLE, _model, _Region, regions

__all__ = ["regions"]  # the fixture shared with test_residency_async

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
