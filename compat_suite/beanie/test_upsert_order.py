"""The key order of documents an upsert inserts (the Beanie half; see the mongoengine one).

The update's fields and the query's equality fields are given sorted, so that mongomock and
FerretDB agree with MongoDB natively; Beanie's own ``save`` sends them unsorted, which
mongomock keeps (a declared gap, ``compat_suite/beanie/test_crud.py::test_upsert_key_order``).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument

from compat_suite.beanie.harness import scenario
from compat_suite.beanie.models import Clinic, clinic, dt
from compat_suite.beanie.observe import stored


@scenario(clinic)
async def test_upserted_documents_keep_the_servers_key_order(odm: ModuleType, m: Clinic) -> Any:
    patients = m.Patient.get_pymongo_collection()
    mary = ObjectId()
    await patients.update_one(
        {"_id": mary},
        {
            "$set": {
                "address": {"street": "Skinner St", "city": "London", "postcode": "N1"},
                "blood_type": "O+",
                "email": "mary@example.org",
                "first_name": "Mary",
                "last_name": "Shelley",
                "weight_kg": 60,
            }
        },
        upsert=True,
    )
    await patients.update_one(
        {"email": "percy@example.org", "last_name": "Shelley"},
        {"$set": {"aliases": ["Ariel"], "first_name": "Percy", "tags": ["poet"], "weight_kg": 70}},
        upsert=True,
    )
    returned = await patients.find_one_and_update(
        {"first_name": "Claire"},
        {"$set": {"blood_type": "A-", "email": "claire@example.org", "last_name": "Clairmont"}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    after_upsert = stored(await patients.find_one({"_id": mary}))
    await patients.update_one({"_id": mary}, {"$set": {"phone": "+44 9", "scores": [3, 4]}})
    await patients.update_one({"_id": mary}, {"$set": {"admitted_at": dt(2024, 1, 2)}})
    found = await m.Patient.find_all().sort("+first_name").to_list()
    return {
        "mary": after_upsert,
        "mary_updated": stored(await patients.find_one({"_id": mary})),
        "percy": stored(await patients.find_one({"first_name": "Percy"})),
        "claire_returned": stored(returned),
        "claire": stored(await patients.find_one({"first_name": "Claire"})),
        "projected": stored(
            await patients.find_one({"_id": mary}, {"weight_kg": 1, "first_name": 1, "email": 1})
        ),
        "models": [(p.first_name, p.last_name, p.email, p.weight_kg) for p in found],
    }
