"""An upsert touching identity fields reads back in MongoDB's key order, on every backend.

MongoDB (``produceDocumentForUpsert``): the query's equality fields sorted by path, then the
fields the update creates in lexicographic order, ``_id`` first. mongomock and FerretDB differ
natively when the fields are not given sorted (mongomock keeps the given order; FerretDB sorts
the update's fields but keeps the query's equality fields in filter order), which is why this
is checked against
the rule rather than against the backend; ``compat_suite/*/test_upsert_order.py`` compares
with the native ODMs where the backends agree with MongoDB.
"""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument

import privata_mongo.mongoengine as pm
from privata_mongo.core.schema import ORDER_FIELD


def _mongodb_order(filter: dict[str, Any], update: dict[str, Any]) -> list[str]:
    seeded = sorted(k for k in filter if not k.startswith("$"))
    created = sorted({k for fields in update.values() for k in fields} - set(seeded))
    return ["_id", *[k for k in seeded if k != "_id"], *[k for k in created if k != "_id"]]


def test_upserts_read_back_in_mongodbs_order(connected: Any) -> None:
    class Subscriber(pm.Document):
        first_name = pm.StringField()
        last_name = pm.StringField()
        email = pm.StringField()
        plan = pm.StringField()
        visits = pm.IntField()
        notes = pm.StringField()

    collection = Subscriber._get_collection()
    cases = [
        ({"plan": "gold", "email": "a@example.org"}, {"$set": {"visits": 1, "first_name": "A"}}),
        (
            {"last_name": "Bee"},
            {"$set": {"visits": 2, "email": "b@example.org"}, "$setOnInsert": {"notes": "x"}},
        ),
    ]
    for filter, update in cases:
        collection.update_one(filter, update, upsert=True)
        assert list(collection.find_one(filter)) == _mongodb_order(filter, update)
    filter = {"email": "c@example.org"}
    update = {"$set": {"visits": 3, "last_name": "Cee", "first_name": "C", "plan": "free"}}
    returned = collection.find_one_and_update(
        filter, update, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert list(returned) == list(collection.find_one(filter)) == _mongodb_order(filter, update)
    for row in connected["subscriber__identity"].find():
        assert ORDER_FIELD not in row  # the recorded order is sealed with the values
