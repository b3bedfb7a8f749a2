"""The sync and async proxy twins answer as pymongo does, call for call.

Both twins are run against the same split collection and compared with pymongo's own
behaviour: ``to_list(0)`` raises ``ValueError`` on every cursor, and ``list_indexes()`` returns
a command cursor (awaited on the async side, as ``AsyncCollection.list_indexes`` is).
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import pymongo
import pytest
from mongomock.store import ServerStore

from privata_mongo.core.classify import Policy, compile_schema
from privata_mongo.core.schema import FieldSpec, ModelSchema, ModelSpec
from privata_mongo.embedded import AsyncMockClient
from privata_mongo.proxy.aio_database import AsyncProxyClient
from privata_mongo.proxy.client import ProxyClient
from testkit.backends import Backend


def _schema() -> ModelSchema:
    fields = (
        FieldSpec("_id", "id", primary_key=True),
        FieldSpec("first_name", "first_name"),
        FieldSpec("email", "email", unique=True),
        FieldSpec("ward", "ward"),
    )
    return compile_schema([ModelSpec("Twin", "twins", fields)], Policy())


SCHEMA = _schema()


def _resolve(database: str, collection: str) -> ModelSchema | None:
    return SCHEMA if collection == "twins" else None


PEOPLE = [{"_id": i, "first_name": f"N{i}", "email": f"n{i}@x.org", "ward": "A"} for i in range(3)]


@pytest.fixture
def sync_twins(backend: Backend) -> Any:
    """The split collection through the sync proxy, and the same backend's raw collection."""
    settings = backend.mongoengine_settings()
    inner = settings.get("mongo_client_class", pymongo.MongoClient)(backend.uri)
    proxy = ProxyClient(inner, _resolve)
    raw = backend.client()
    collection = proxy[backend.db_name]["twins"]
    collection.create_index("email", unique=True)
    collection.insert_many([dict(p) for p in PEOPLE])
    raw[backend.db_name]["plain"].insert_many([dict(p) for p in PEOPLE])
    try:
        yield collection, raw[backend.db_name]["plain"]
    finally:
        proxy.drop_database(backend.db_name)
        proxy.close()
        raw.close()


@pytest.fixture
async def async_twins(backend: Backend) -> AsyncIterator[Any]:
    """The split collection through the async proxy."""
    if backend.uri is None:
        proxy = AsyncProxyClient(AsyncMockClient(ServerStore()), _resolve)
    else:
        proxy = AsyncProxyClient(pymongo.AsyncMongoClient(backend.uri), _resolve)
    collection = proxy[backend.db_name]["twins"]
    await collection.create_index("email", unique=True)
    await collection.insert_many([dict(p) for p in PEOPLE])
    try:
        yield collection
    finally:
        await proxy.drop_database(backend.db_name)
        await proxy.close()


def test_sync_to_list_refuses_a_length_below_one(sync_twins: Any, backend: Backend) -> None:
    collection, plain = sync_twins
    for cursor in (collection.find(), collection.aggregate([{"$match": {}}])):
        with pytest.raises(ValueError, match=r"to_list\(\) length must be greater than 0"):
            cursor.to_list(0)
        with pytest.raises(ValueError, match=r"to_list\(\) length must be greater than 0"):
            cursor.to_list(-1)
    assert [d["_id"] for d in collection.find().sort("_id").to_list(2)] == [0, 1]
    if backend.uri is not None:  # pymongo itself (mongomock's cursors have no to_list)
        with pytest.raises(ValueError, match=r"to_list\(\) length must be greater than 0"):
            plain.find().to_list(0)


async def test_async_to_list_refuses_a_length_below_one(async_twins: Any) -> None:
    collection = async_twins
    for cursor in (collection.find(), await collection.aggregate([{"$match": {}}])):
        with pytest.raises(ValueError, match=r"to_list\(\) length must be greater than 0"):
            await cursor.to_list(0)
    assert [d["_id"] for d in await collection.find().sort("_id").to_list(2)] == [0, 1]


def test_sync_list_indexes_is_a_command_cursor(sync_twins: Any, backend: Backend) -> None:
    collection, plain = sync_twins
    listed = collection.list_indexes()
    assert not isinstance(listed, list)
    assert listed.alive
    names = [index["name"] for index in listed]
    assert names == ["_id_", "email_1"]
    assert not listed.alive
    again = collection.list_indexes()
    assert [i["name"] for i in again.to_list()] == names
    again.close()
    if backend.uri is not None:  # what pymongo itself returns, and the proxy's answers alike
        native = plain.list_indexes()
        assert isinstance(native, pymongo.command_cursor.CommandCursor)
        assert [i["name"] for i in native] == ["_id_"]


async def test_async_list_indexes_is_awaited_and_a_command_cursor(async_twins: Any) -> None:
    collection = async_twins
    listed = await collection.list_indexes()
    assert [index["name"] async for index in listed] == ["_id_", "email_1"]
    again = await collection.list_indexes()
    assert [i["name"] for i in await again.to_list()] == ["_id_", "email_1"]
    with pytest.raises(ValueError, match=r"to_list\(\) length must be greater than 0"):
        await (await collection.list_indexes()).to_list(0)


def test_sync_cursors_pass_as_native_yet_run_only_the_proxys_code(sync_twins: Any) -> None:
    collection, plain = sync_twins
    native_find, native_command = type(plain.find()), type(plain.aggregate([]))
    cursor = collection.find().sort("_id")
    command = collection.aggregate([{"$sort": {"_id": 1}}])
    assert isinstance(cursor, native_find)
    assert cursor.__class__ is native_find
    assert isinstance(command, native_command)
    # special methods are looked up on the type: copies, indexing and reading stay the proxy's,
    # so every document is still joined with its identity fields
    assert type(cursor) is not native_find
    for copied in (copy.copy(cursor), copy.deepcopy(cursor), cursor.clone()):
        assert isinstance(copied, native_find)
        assert [d["email"] for d in copied] == [p["email"] for p in PEOPLE]
    assert cursor.clone()[1]["first_name"] == "N1"
    with cursor:
        assert [d["first_name"] for d in cursor] == ["N0", "N1", "N2"]
    assert [d["email"] for d in command] == [p["email"] for p in PEOPLE]


async def test_async_cursors_pass_as_native_yet_run_only_the_proxys_code(async_twins: Any) -> None:
    collection = async_twins
    native = collection.database.inner[collection.name]
    native_find, native_command = type(native.find()), type(await native.aggregate([]))
    cursor = collection.find().sort("_id")
    command = await collection.aggregate([{"$sort": {"_id": 1}}])
    assert isinstance(cursor, native_find)
    assert cursor.__class__ is native_find
    assert isinstance(command, native_command)
    assert type(cursor) is not native_find
    for copied in (copy.copy(cursor), copy.deepcopy(cursor), cursor.clone()):
        assert isinstance(copied, native_find)
        assert [d["email"] for d in await copied.to_list()] == [p["email"] for p in PEOPLE]
    async with cursor:
        assert [d["first_name"] async for d in cursor] == ["N0", "N1", "N2"]
    assert [d["email"] async for d in command] == [p["email"] for p in PEOPLE]
