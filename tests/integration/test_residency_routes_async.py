"""Data residency on the async facade: Beanie's upserts place new subjects by the resolver.

The fixtures are those of ``test_residency_async.py`` (each region an embedded backend of its
own, scanned raw); the resolver places every country but ``US`` in the EU, the default region
being the US, so a subject in the EU was placed by the resolver.
"""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import pymongo
import pytest
from beanie.odm.operators.update.general import Set
from bson import ObjectId

import privata_mongo
import privata_mongo.beanie as pb
from privata_mongo.config import current
from privata_mongo.context import partial_results
from privata_mongo.encryption import forget_keys
from privata_mongo.errors import RegionUnavailable
from privata_mongo.rights import AsyncRights, Subject
from tests.integration.test_residency_async import _model, _Region, regions

__all__ = ["regions"]


async def test_beanie_upserts_and_saves_of_new_documents_place_by_the_resolver(
    regions: dict[str, _Region],
) -> None:
    Person = _model()
    database = pb.embedded_database("res_async")
    await pb.init_beanie(database=database, document_models=[Person])
    saved = Person(id=ObjectId(), first_name="Emmy", email="emmy@example.org", country="DE")
    await saved.save()
    await Person.find_one(Person.email == "marie@example.org").upsert(
        Set({Person.first_name: "Marie"}),
        on_insert=Person(first_name="Marie", email="marie@example.org", country="FR"),
    )
    await Person.find_one(Person.email == "lise@example.org").update(
        Set({Person.first_name: "Lise", Person.country: "AT"}), upsert=True
    )
    await Person.get_pymongo_collection().update_one(
        {"country": "GB"},  # the server upserts alone: no identity field
        {"$setOnInsert": {"visits": 1}},
        upsert=True,
    )
    clinical: list[dict[str, Any]] = await database["res_async_person"].find({}).to_list()
    assert len(clinical) == 4
    assert {row.get("_region") for row in clinical} == {"eu"}  # the raw clinical rows
    eu = {row["_id"] for row in regions["eu"].identity()}
    assert eu == {row["_pseudonym"] for row in clinical}
    assert regions["us"].identity() == []
    found = await Person.find(Person.email == "lise@example.org").to_list()
    assert [(p.first_name, p.country) for p in found] == [("Lise", "AT")]


async def test_async_access_under_partial_results_leaves_out_an_unreachable_region(
    regions: dict[str, _Region],
) -> None:
    Person = _model()
    database = pb.embedded_database("res_async")
    await pb.init_beanie(database=database, document_models=[Person])
    await Person(first_name="Marie", email="marie@example.org", country="FR").insert()
    await Person(first_name="Grace", email="grace@example.org", country="US").insert()
    rights = AsyncRights([Person])
    marie = await rights.pseudonym(
        Subject(model="ResAsyncPerson", field="email", value="marie@example.org")
    )
    settings = current()
    assert settings.regions is not None
    dead = pymongo.AsyncMongoClient(
        "mongodb://127.0.0.1:1/", serverSelectionTimeoutMS=50, connectTimeoutMS=50
    )
    privata_mongo.configure(
        regions={**settings.regions, "eu": replace(settings.regions["eu"], identity_client=dead)}
    )
    forget_keys()
    try:
        with pytest.raises(RegionUnavailable):
            await rights.access(marie)
        with partial_results() as partial:
            held = await rights.access(marie)
            out = io.BytesIO()
            counts = await rights.export(marie, out)
        with partial_results(), pytest.raises(RegionUnavailable):
            await rights.erase(marie)
    finally:
        await dead.close()
    assert partial.regions == {"eu"}
    assert held.missing_regions == ("eu",)
    assert [d.get("country") for d in held.documents["ResAsyncPerson"]] == ["FR"]
    assert held.documents["ResAsyncPerson"][0].get("email") is None
    assert counts == {"ResAsyncPerson": 1}
    assert b"marie@" not in out.getvalue()
