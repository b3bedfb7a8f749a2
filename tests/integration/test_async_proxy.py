"""The async proxy over the embedded async backend and pymongo's AsyncMongoClient.

The same flows as the sync proxy run here through the async driver; these tests check the
storage split, native-shaped results and errors, and that the two twins share every rule.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pymongo
import pytest
from mongomock.store import ServerStore
from pymongo.errors import DuplicateKeyError

from privata_mongo.core.classify import Policy, compile_schema
from privata_mongo.core.flows import write
from privata_mongo.core.schema import FieldSpec, ModelSchema, ModelSpec
from privata_mongo.embedded import AsyncMockClient
from privata_mongo.proxy._planner import Planner
from privata_mongo.proxy.aio_collection import AsyncPrivateCollection
from privata_mongo.proxy.aio_database import AsyncProxyClient
from privata_mongo.proxy.client import ProxyClient
from privata_mongo.proxy.collection import PrivateCollection
from testkit.backends import Backend

FIELDS = ("_id", "first_name", "email", "ward", "age", "tags")


def _schema() -> ModelSchema:
    fields = tuple(
        FieldSpec(
            name=n, attribute="id" if n == "_id" else n, primary_key=n == "_id", unique=n == "email"
        )
        for n in FIELDS
    )
    return compile_schema([ModelSpec("Patient", "patients", fields)], Policy())


SCHEMA = _schema()


def _resolve(database: str, collection: str) -> ModelSchema | None:
    return SCHEMA if collection == "patients" else None


@pytest.fixture
async def clients(backend: Backend) -> AsyncIterator[tuple[AsyncProxyClient, Any]]:
    """A proxy client and a raw async client on the same data."""
    if backend.uri is None:
        store = ServerStore()
        proxy = AsyncProxyClient(AsyncMockClient(store), _resolve)
        raw: Any = AsyncMockClient(store)
    else:
        proxy = AsyncProxyClient(pymongo.AsyncMongoClient(backend.uri), _resolve)
        raw = pymongo.AsyncMongoClient(backend.uri)
    try:
        yield proxy, raw
    finally:
        await proxy.close()
        await raw.close()


async def test_async_writes_are_split_and_reads_are_native(
    clients: tuple[AsyncProxyClient, Any], backend: Backend
) -> None:
    proxy, raw = clients
    patients = proxy[backend.db_name]["patients"]
    assert isinstance(patients, AsyncPrivateCollection)
    await patients.create_index("email", unique=True)
    await patients.insert_many(
        [
            {
                "_id": i,
                "first_name": name,
                "email": f"{name.lower()}@x.org",
                "ward": ward,
                "age": age,
            }
            for i, (name, ward, age) in enumerate(
                [("Ada", "A", 36), ("Alan", "B", 41), ("Grace", "A", 85)]
            )
        ]
    )
    clinical = await raw[backend.db_name]["patients"].find_one({"_id": 0})
    identity = await raw[backend.db_name]["patients__identity"].find_one(
        {"_id": clinical["_pseudonym"]}
    )
    assert set(clinical) == {"_id", "ward", "age", "_pseudonym"}
    assert identity["first_name"] == "Ada"

    assert await patients.find_one({"email": "ada@x.org"}) == {
        "_id": 0,
        "first_name": "Ada",
        "email": "ada@x.org",
        "ward": "A",
        "age": 36,
    }
    names = [d["first_name"] async for d in patients.find({"ward": "A"}).sort("first_name", -1)]
    assert names == ["Grace", "Ada"]
    assert await patients.count_documents({"first_name": {"$regex": "^A"}}) == 2
    assert sorted(await patients.distinct("first_name", {"age": {"$gt": 40}})) == ["Alan", "Grace"]
    rows = await (
        await patients.aggregate([{"$match": {"ward": "A"}}, {"$project": {"_id": 0, "age": 1}}])
    ).to_list()
    assert sorted(r["age"] for r in rows) == [36, 85]

    result = await patients.update_one(
        {"first_name": "Alan"}, {"$set": {"email": "turing@x.org"}, "$inc": {"age": 1}}
    )
    assert (result.matched_count, result.modified_count) == (1, 1)
    assert (await patients.find_one({"_id": 1}))["email"] == "turing@x.org"
    with pytest.raises(DuplicateKeyError) as caught:
        await patients.insert_one({"first_name": "Eve", "email": "ada@x.org"})
    assert "ada@x.org" not in str(caught.value)
    assert (await patients.delete_many({"ward": "A"})).deleted_count == 2
    assert await raw[backend.db_name]["patients__identity"].count_documents({}) == 1
    assert await proxy[backend.db_name].list_collection_names() == ["patients"]


async def test_async_cursor_chains_like_pymongo(
    clients: tuple[AsyncProxyClient, Any], backend: Backend
) -> None:
    proxy, _ = clients
    patients = proxy[backend.db_name]["patients"]
    await patients.insert_many([{"_id": i, "first_name": f"N{i}", "age": i} for i in range(7)])
    cursor = patients.find({}, {"first_name": 1}).sort("age", -1).skip(1).limit(3)
    assert [d["first_name"] for d in await cursor.to_list()] == ["N5", "N4", "N3"]
    again = cursor.clone()
    assert await again.next() == {"_id": 5, "first_name": "N5"}
    with pytest.raises(pymongo.errors.InvalidOperation):
        again.limit(1)
    await again.close()
    assert await again.to_list() == []


async def test_sync_and_async_collections_run_the_same_flows(
    clients: tuple[AsyncProxyClient, Any], backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No rule is written twice: both twins plan with Planner and run core.flows.write."""
    calls: list[str] = []
    original = write.insert

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append("insert")
        return original(*args, **kwargs)

    monkeypatch.setattr(write, "insert", spy)
    proxy, _ = clients
    patients = proxy[backend.db_name]["patients"]
    await patients.insert_one({"first_name": "Async"})
    settings = backend.mongoengine_settings()
    sync_client = ProxyClient(
        settings.get("mongo_client_class", pymongo.MongoClient)(backend.uri), _resolve
    )
    try:
        sync_patients = sync_client[backend.db_name + "_sync"]["patients"]
        assert isinstance(sync_patients, PrivateCollection)
        sync_patients.insert_one({"first_name": "Sync"})
        assert isinstance(sync_patients._plans, Planner)
        assert type(patients._plans) is type(sync_patients._plans)
    finally:
        sync_client.drop_database(backend.db_name + "_sync")
        sync_client.close()
    assert calls == ["insert", "insert"]


async def test_bulk_write_runs_each_request_through_its_flow(
    clients: tuple[AsyncProxyClient, Any], backend: Backend
) -> None:
    from pymongo import DeleteOne, InsertOne, ReplaceOne, UpdateMany, UpdateOne
    from pymongo.errors import BulkWriteError

    proxy, raw = clients
    patients = proxy[backend.db_name]["patients"]
    await patients.create_index("email", unique=True)
    result = await patients.bulk_write(
        [
            InsertOne({"_id": 1, "first_name": "Ada", "email": "ada@x.org", "age": 36}),
            InsertOne({"_id": 2, "first_name": "Alan", "email": "alan@x.org", "age": 41}),
            UpdateOne({"email": "ada@x.org"}, {"$set": {"ward": "B"}}),
            UpdateMany({"age": {"$gt": 30}}, {"$inc": {"age": 1}}),
            ReplaceOne({"_id": 2}, {"first_name": "Turing", "email": "t@x.org"}),
            UpdateOne({"email": "new@x.org"}, {"$set": {"age": 1}}, upsert=True),
            DeleteOne({"first_name": "Turing"}),
        ]
    )
    assert (result.inserted_count, result.matched_count, result.modified_count) == (2, 4, 4)
    assert (result.deleted_count, result.upserted_count) == (1, 1)
    assert list(result.upserted_ids) == [5]
    assert await patients.count_documents({}) == 2
    assert await raw[backend.db_name]["patients__identity"].count_documents({}) == 2
    with pytest.raises(BulkWriteError) as caught:
        await patients.bulk_write(
            [
                InsertOne({"first_name": "Eve", "email": "ada@x.org"}),
                InsertOne({"first_name": "Bob"}),
            ]
        )
    details = caught.value.details
    assert [e["index"] for e in details["writeErrors"]] == [0]
    assert details["nInserted"] == 0
    assert "ada@x.org" not in str(details)
