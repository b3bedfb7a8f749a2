"""Data residency on the async facade: Beanie's upserts place new subjects by the resolver.

The fixtures are those of ``test_residency_async.py`` (each region an embedded backend of its
own, scanned raw); the resolver places every country but ``US`` in the EU, the default region
being the US, so a subject in the EU was placed by the resolver.
"""

from __future__ import annotations

from typing import Any

from beanie.odm.operators.update.general import Set
from bson import ObjectId

import privata_mongo.beanie as pb
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
