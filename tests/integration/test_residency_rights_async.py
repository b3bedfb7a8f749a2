"""Data residency and the rights on the async facade: where each part is, records with regions.

The regions are ``test_residency_async``'s: one embedded backend each, scanned raw.
"""

from __future__ import annotations

import io
import json

import privata_mongo.beanie as pb
from privata_mongo.config import current
from privata_mongo.context import access_context
from privata_mongo.rights import AsyncRights
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
