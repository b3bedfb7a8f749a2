"""The key order of documents an upsert inserts, and of later writes to them.

MongoDB builds an upserted document from the query's equality fields (sorted by path: the
server keeps them in a ``std::map``), then appends the fields the update creates in
lexicographic order, then moves ``_id`` first. The wrapper builds the document in the process
with that rule when the upsert touches identity fields, and the document it reads back must
have that order, identity fields included: not the declared order. The scenarios give the
update's fields already sorted and the query's equality fields sorted, so that mongomock and
FerretDB, which keep the given order in places, agree with MongoDB natively (where they do
not, see ``tests/integration/test_upsert_order.py``).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument

from compat_suite.harness import scenario
from compat_suite.mongoengine.models import Clinic, clinic, dt
from compat_suite.mongoengine.observe import stored


@scenario(clinic)
def test_upserted_documents_keep_the_servers_key_order(me: ModuleType, m: Clinic) -> Any:
    patients = m.Patient._get_collection()
    mary = ObjectId()
    patients.update_one(
        {"_id": mary},
        {
            "$set": {
                "address": {"city": "London", "street": "Skinner St"},
                "blood_type": "O+",
                "email": "mary@example.org",
                "first_name": "Mary",
                "last_name": "Shelley",
                "weight_kg": 60,
            }
        },
        upsert=True,
    )
    patients.update_one(
        {"email": "percy@example.org", "last_name": "Shelley"},
        {"$set": {"aliases": ["Ariel"], "first_name": "Percy", "tags": ["poet"], "weight_kg": 70}},
        upsert=True,
    )
    returned = patients.find_one_and_update(
        {"first_name": "Claire"},
        {"$set": {"blood_type": "A-", "email": "claire@example.org", "phone": "+44 1"}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    after_upsert = stored(patients.find_one({"_id": mary}))
    # later writes: an identity field changed and new fields appended, as the server appends
    patients.update_one({"_id": mary}, {"$set": {"phone": "+44 9", "scores": [3, 4]}})
    patients.update_one({"_id": mary}, {"$set": {"admitted_at": dt(2024, 1, 2)}})
    return {
        "mary": after_upsert,
        "mary_updated": stored(patients.find_one({"_id": mary})),
        "percy": stored(patients.find_one({"first_name": "Percy"})),
        "claire_returned": stored(returned),
        "claire": stored(patients.find_one({"first_name": "Claire"})),
        "projected": stored(
            patients.find_one({"_id": mary}, {"weight_kg": 1, "first_name": 1, "email": 1})
        ),
        "as_pymongo": [stored(d) for d in m.Patient.objects.order_by("first_name").as_pymongo()],
        "model_values": sorted((p.first_name, p.last_name, p.email) for p in m.Patient.objects),
    }
