"""``Database.command`` on a split collection runs through the split, or is refused.

The compat suite compares the replies with native ones on a server
(``compat_suite/mongoengine/test_commands.py``); here: the same translation on every backend
(mongomock's own ``command`` answers only ``ping``), the async twin, and the refusals.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import mongoengine as me
import pymongo
import pytest
from mongomock.store import ServerStore
from pymongo.errors import InvalidOperation, OperationFailure

from privata_mongo import UnsupportedQuery
from privata_mongo.core.classify import Policy, compile_schema
from privata_mongo.core.schema import FieldSpec, ModelSpec
from privata_mongo.embedded import AsyncMockClient
from privata_mongo.proxy.aio_database import AsyncProxyClient
from testkit.backends import Backend


def _patient() -> Any:
    class CommandPatient(me.Document):
        first_name = me.StringField()
        last_name = me.StringField()
        email = me.StringField(unique=True)
        ward = me.StringField()
        meta = {"collection": "command_patient"}

    return CommandPatient


def _seed(patient: Any) -> None:
    for first, last, ward in (("Marie", "Curie", "A"), ("Pierre", "Curie", "B"), ("Ada", "L", "A")):
        patient(first_name=first, last_name=last, email=f"{first}@x.org", ward=ward).save()


def test_read_commands_see_identity_fields(connected: Any) -> None:
    patient = _patient()
    _seed(patient)
    db = patient._get_db()
    assert db.command("count", "command_patient", query={"last_name": "Curie"}) == {
        "n": 2,
        "ok": 1.0,
    }
    assert db.command("distinct", "command_patient", key="first_name") == {
        "values": ["Ada", "Marie", "Pierre"],
        "ok": 1.0,
    }
    reply = db.command("find", "command_patient", filter={"ward": "A"}, sort={"first_name": 1})
    batch = reply["cursor"]["firstBatch"]
    assert [d["first_name"] for d in batch] == ["Ada", "Marie"]
    assert all("_pseudonym" not in d for d in batch)
    assert (reply["cursor"]["id"], reply["cursor"]["ns"]) == (0, f"{db.name}.command_patient")
    cursor = db.cursor_command("aggregate", "command_patient", pipeline=[], cursor={})
    assert sorted(d["email"] for d in cursor) == ["Ada@x.org", "Marie@x.org", "Pierre@x.org"]
    with pytest.raises(InvalidOperation, match="does not return a cursor"):
        db.cursor_command("count", "command_patient")


def test_write_commands_split_the_documents(connected: Any) -> None:
    patient = _patient()
    _seed(patient)
    db = patient._get_db()
    document = {"first_name": "Eve", "last_name": "Curie", "email": "eve@x.org", "ward": "C"}
    assert db.command("insert", "command_patient", documents=[document]) == {"n": 1, "ok": 1.0}
    assert "_id" not in document  # the server, not the driver, gives a raw command's ids
    stored = connected["command_patient"].find_one({"ward": "C"})
    assert "first_name" not in stored
    assert "_pseudonym" in stored
    duplicate = db.command("insert", "command_patient", documents=[document])
    assert duplicate["n"] == 0
    assert duplicate["writeErrors"][0]["code"] == 11000
    assert "eve@x.org" not in str(duplicate)
    assert db.command(
        "update",
        "command_patient",
        updates=[{"q": {"last_name": "Curie"}, "u": {"$set": {"ward": "D"}}, "multi": True}],
    ) == {"n": 3, "nModified": 3, "ok": 1.0}
    assert db.command(
        "delete", "command_patient", deletes=[{"q": {"first_name": "Eve"}, "limit": 1}]
    ) == {"n": 1, "ok": 1.0}
    assert sorted((p.first_name, p.ward) for p in patient.objects) == [
        ("Ada", "A"),
        ("Marie", "D"),
        ("Pierre", "D"),
    ]


def test_commands_that_cannot_run_exactly_are_refused_by_name(connected: Any) -> None:
    patient = _patient()
    _seed(patient)
    db = patient._get_db()
    with pytest.raises(UnsupportedQuery, match=r"mapReduce.*aggregate"):
        patient.objects.item_frequencies("first_name", map_reduce=True)
    with pytest.raises(UnsupportedQuery, match=r"eval.*JavaScript"):
        patient.objects.exec_js("function() { return db[collection].count(); }")
    with pytest.raises(UnsupportedQuery, match=r"listIndexes.*list_indexes"):
        db.command("listIndexes", "command_patient")
    with pytest.raises(UnsupportedQuery, match="upsert"):
        db.command("findAndModify", "command_patient", query={"ward": "Z"}, update={}, upsert=True)
    with pytest.raises(UnsupportedQuery, match="'command_patient'"):
        db.aggregate([{"$documents": [{}]}, {"$lookup": {"from": "command_patient", "as": "p"}}])
    with pytest.raises(UnsupportedQuery, match="view"):
        db.command({"create": "patient_view", "viewOn": "command_patient", "pipeline": []})
    assert "patient_view" not in db.list_collection_names()


def test_an_aggregate_command_on_a_plain_collection_joins_a_split_one(connected: Any) -> None:
    """The $lookup into the split collection runs in the process, so on every backend."""
    patient = _patient()
    _seed(patient)
    db = patient._get_db()
    db["plain_visits"].insert_one({"who": "Marie@x.org"})
    reply = db.command(
        "aggregate",
        "plain_visits",
        pipeline=[
            {"$set": {"ward": "A"}},
            {
                "$lookup": {
                    "from": "command_patient",
                    "localField": "ward",
                    "foreignField": "ward",
                    "as": "p",
                }
            },
            {"$project": {"_id": 0, "names": "$p.first_name"}},
        ],
        cursor={},
    )
    assert [sorted(d["names"]) for d in reply["cursor"]["firstBatch"]] == [["Ada", "Marie"]]


def test_a_failing_command_answers_as_pymongo_does(connected: Any) -> None:
    patient = _patient()
    _seed(patient)
    db = patient._get_db()
    bad = {"count": "command_patient", "query": {"ward": {"$bogus": 1}}}
    with pytest.raises(OperationFailure) as caught:
        db.command(bad)
    reply = db.command(bad, check=False)
    assert (reply["ok"], reply.get("code")) == (0.0, caught.value.code)
    assert db.command(bad, allowable_errors=[caught.value.code])["ok"] == 0.0


SCHEMA = compile_schema(
    [
        ModelSpec(
            "Patient",
            "patients",
            tuple(
                FieldSpec(name=n, attribute="id" if n == "_id" else n, primary_key=n == "_id")
                for n in ("_id", "first_name", "ward")
            ),
        )
    ],
    Policy(),
)


@pytest.fixture
async def proxy(backend: Backend) -> AsyncIterator[AsyncProxyClient]:
    """An async proxy client over the backend."""
    inner: Any = (
        AsyncMockClient(ServerStore())
        if backend.uri is None
        else pymongo.AsyncMongoClient(backend.uri)
    )
    client = AsyncProxyClient(
        inner, lambda db, name: SCHEMA if name in ("patients", "archive") else None
    )
    try:
        yield client
    finally:
        await client.drop_database(backend.db_name)
        await client.close()


async def test_the_async_database_translates_the_same_table_and_writes_out(
    proxy: AsyncProxyClient, backend: Backend
) -> None:
    db = proxy[backend.db_name]
    await db["patients"].insert_many(
        [{"first_name": "Ada", "ward": "A"}, {"first_name": "Bob", "ward": "B"}]
    )
    assert await db.command("count", "patients", query={"first_name": "Bob"}) == {
        "n": 1,
        "ok": 1.0,
    }
    reply = await db.command("find", "patients", filter={"first_name": "Ada"})
    assert [(d["first_name"], d["ward"]) for d in reply["cursor"]["firstBatch"]] == [("Ada", "A")]
    cursor = await db.cursor_command("find", "patients", projection={"_id": 0})
    assert await cursor.to_list() == [
        {"first_name": "Ada", "ward": "A"},
        {"first_name": "Bob", "ward": "B"},
    ]
    with pytest.raises(UnsupportedQuery, match="mapReduce"):
        await db.command({"mapReduce": "patients", "map": "", "reduce": "", "out": {"inline": 1}})
    assert (await db.command("ping"))["ok"] == 1.0
    cursor = await db["patients"].aggregate([{"$match": {"ward": "B"}}, {"$out": "archive"}])
    assert await cursor.to_list() == []
    assert [d["first_name"] for d in await db["archive"].find().to_list()] == ["Bob"]
    assert await proxy.inner[backend.db_name]["archive"].find_one({}, {"first_name": 1}) == {
        "_id": (await db["archive"].find_one())["_id"]
    }
