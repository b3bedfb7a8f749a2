"""The embedded async backend: pymongo's async API over mongomock, for Beanie and privata.

Three clients exercise it: the API itself (shapes, results, errors, compared with what the same
calls on synchronous mongomock do), Beanie 2 running unmodified on it, and privata's
``AsyncPymongoStore`` compared call by call with ``PymongoStore`` over synchronous mongomock.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, cast
from uuid import uuid4

import mongomock
import pytest
from beanie import BulkWriter, Document, Indexed, UpdateResponse, init_beanie
from beanie.odm.operators.find.comparison import In
from beanie.odm.operators.update.general import Set
from bson import ObjectId
from mongomock.store import ServerStore
from pymongo import (
    ASCENDING,
    DESCENDING,
    DeleteMany,
    DeleteOne,
    IndexModel,
    InsertOne,
    ReplaceOne,
    ReturnDocument,
    UpdateMany,
    UpdateOne,
)
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.command_cursor import AsyncCommandCursor
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.asynchronous.mongo_client import AsyncMongoClient
from pymongo.driver_info import DriverInfo
from pymongo.errors import (
    BulkWriteError,
    CollectionInvalid,
    ConfigurationError,
    DuplicateKeyError,
    InvalidOperation,
    OperationFailure,
)
from pymongo.results import (
    BulkWriteResult,
    DeleteResult,
    InsertManyResult,
    InsertOneResult,
    UpdateResult,
)

from privata_mongo.adapters.pymongo_async_store import AsyncPymongoStore
from privata_mongo.adapters.pymongo_store import PymongoStore
from privata_mongo.core.ops import (
    Count,
    CreateIndex,
    Delete,
    Distinct,
    Drop,
    DropIndex,
    EstimatedCount,
    Explain,
    Find,
    FindAndModify,
    IndexInformation,
    Insert,
    Op,
    Query,
    Replace,
    ReplaceMany,
    Update,
)
from privata_mongo.core.schema import Side
from privata_mongo.embedded import (
    AsyncMockClient,
    AsyncMockCollection,
    AsyncMockCommandCursor,
    AsyncMockCursor,
    AsyncMockDatabase,
    embedded_database,
)
from privata_mongo.ports.storage import AsyncBatchCursor, BatchCursor

PEOPLE = [
    {"_id": 1, "email": "a@x", "n": 1, "tags": ["red"]},
    {"_id": 2, "email": "b@x", "n": 2, "tags": ["red", "blue"]},
    {"_id": 3, "email": "c@x", "n": 3, "tags": []},
    {"_id": 4, "email": "d@x", "n": 4, "tags": ["blue"]},
]


@pytest.fixture
def store() -> ServerStore:
    return ServerStore()


@pytest.fixture
def db(store: ServerStore) -> AsyncMockDatabase:
    return embedded_database("app", store)


@pytest.fixture
async def people(db: AsyncMockDatabase) -> AsyncMockCollection:
    collection = db["people"]
    await collection.insert_many([dict(p) for p in PEOPLE])
    return collection


# --- client and database ---------------------------------------------------------------------


async def test_client_hands_out_databases_and_collections_over_one_store(
    store: ServerStore,
) -> None:
    client = AsyncMockClient(store)
    db = client["app"]
    assert isinstance(db, AsyncMockDatabase)
    assert (db.name, db.client) == ("app", client)
    assert client.get_database("app") == db
    assert db.people == db["people"] == db.get_collection("people")
    assert db["people"].full_name == "app.people"
    assert db["people"].database == db
    with pytest.raises(AttributeError):
        _ = db._private
    assert client.address == ("localhost", 27017)
    assert client.inner.__class__ is mongomock.MongoClient
    assert db.inner is client.inner["app"]

    await db["people"].insert_one({"x": 1})
    # Another client over the same store sees the data: the store is the server.
    assert await AsyncMockClient(store)["app"]["people"].count_documents({}) == 1
    assert mongomock.MongoClient(_store=store)["app"]["people"].count_documents({}) == 1
    assert await client.list_database_names() == ["app"]
    await client.drop_database("app")
    assert await client.list_database_names() == []
    await client.close()


async def test_default_database_comes_from_the_uri() -> None:
    client = AsyncMockClient(host="mongodb://localhost/clinic")
    assert client.get_default_database().name == "clinic"
    assert client.get_database().name == "clinic"
    with pytest.raises(ConfigurationError):
        AsyncMockClient().get_default_database()
    assert AsyncMockClient().get_default_database("fallback").name == "fallback"


async def test_client_accepts_driver_metadata_and_refuses_sessions() -> None:
    client = AsyncMockClient()
    client.append_metadata(DriverInfo(name="Beanie", version="2.2.0"))
    with pytest.raises(TypeError):
        client.append_metadata({"name": "x"})  # type: ignore[arg-type]
    with pytest.raises(NotImplementedError, match="session"):
        client.start_session()
    collection = client["app"]["c"]
    with pytest.raises(NotImplementedError, match="session"):
        await collection.insert_one({"a": 1}, session=object())
    assert await collection.count_documents({}) == 0


async def test_options_are_pymongo_types(db: AsyncMockDatabase) -> None:
    from bson.codec_options import CodecOptions
    from pymongo.read_concern import ReadConcern
    from pymongo.read_preferences import ReadPreference
    from pymongo.write_concern import WriteConcern

    collection = db["c"]
    for holder in (db.client, db, collection):
        assert isinstance(holder.codec_options, CodecOptions)
        assert isinstance(holder.write_concern, WriteConcern)
        assert isinstance(holder.read_concern, ReadConcern)
        assert holder.read_preference == ReadPreference.PRIMARY
    tuned = collection.with_options(write_concern=WriteConcern(w=1))
    assert isinstance(tuned, AsyncMockCollection)
    assert tuned.name == "c"
    assert tuned.write_concern.document == {"w": 1}
    assert isinstance(db.with_options(read_preference=ReadPreference.PRIMARY), AsyncMockDatabase)


async def test_commands_beanie_and_drivers_send(db: AsyncMockDatabase) -> None:
    build_info = await db.command({"buildInfo": 1})
    assert build_info["version"] == mongomock.MongoClient().server_info()["version"]
    assert int(build_info["version"].split(".")[0]) >= 5  # Beanie's checks need 5+
    assert build_info["ok"] == 1.0
    assert (await db.command("buildinfo"))["version"] == build_info["version"]
    assert await db.command("ping") == {"ok": 1.0}
    assert (await db.command("hello"))["isWritablePrimary"] is True
    assert (await db.command({"isMaster": 1}))["ismaster"] is True

    await db.command({"create": "made"})
    assert "made" in await db.list_collection_names()
    with pytest.raises(OperationFailure) as exists:
        await db.command("create", "made")
    assert exists.value.code == 48
    with pytest.raises(NotImplementedError, match="view"):
        await db.command({"create": "v", "viewOn": "made", "pipeline": []})

    with pytest.raises(OperationFailure) as unknown:
        await db.command({"frobnicate": 1})
    assert (unknown.value.code, unknown.value.details["codeName"]) == (59, "CommandNotFound")
    reply = await db.command({"frobnicate": 1}, check=False)
    assert (reply["ok"], reply["code"]) == (0.0, 59)
    assert (await db.command({"frobnicate": 1}, allowable_errors=[59]))["ok"] == 0.0


async def test_collections_are_listed_created_and_dropped(db: AsyncMockDatabase) -> None:
    assert await db.list_collection_names() == []
    created = await db.create_collection("a")
    assert isinstance(created, AsyncMockCollection)
    await db["b"].insert_one({"x": 1})
    assert sorted(await db.list_collection_names(authorizedCollections=True, nameOnly=True)) == [
        "a",
        "b",
    ]
    assert await db.list_collection_names(filter={"name": "b"}) == ["b"]
    with pytest.raises(CollectionInvalid):
        await db.create_collection("a")
    with pytest.raises(OperationFailure):
        await db.list_collection_names(bogus=True)
    await db.drop_collection("a")
    await db.drop_collection(db["b"])
    assert await db.list_collection_names() == []


# --- CRUD ------------------------------------------------------------------------------------


async def test_writes_return_pymongo_results(db: AsyncMockDatabase) -> None:
    c = db["c"]
    doc: dict[str, Any] = {"name": "Ann", "n": 1}
    inserted = await c.insert_one(doc)
    assert isinstance(inserted, InsertOneResult)
    assert isinstance(inserted.inserted_id, ObjectId)
    assert doc["_id"] == inserted.inserted_id  # filled in place, as pymongo does
    many = await c.insert_many([{"_id": 10, "n": 2}, {"_id": 11, "n": 3}])
    assert isinstance(many, InsertManyResult)
    assert many.inserted_ids == [10, 11]

    updated = await c.update_one({"n": {"$gte": 2}}, {"$inc": {"n": 10}})
    assert isinstance(updated, UpdateResult)
    assert (updated.matched_count, updated.modified_count, updated.upserted_id) == (1, 1, None)
    updated = await c.update_many({"n": {"$gte": 2}}, {"$set": {"big": True}})
    assert (updated.matched_count, updated.modified_count) == (2, 2)
    upserted = await c.update_one({"_id": 12}, {"$set": {"n": 5}}, upsert=True)
    assert (upserted.matched_count, upserted.upserted_id) == (0, 12)
    replaced = await c.replace_one({"_id": 11}, {"n": 30})
    assert (replaced.matched_count, replaced.modified_count) == (1, 1)
    assert await c.find_one(11) == {"_id": 11, "n": 30}

    deleted = await c.delete_one({"n": {"$gt": 0}})
    assert isinstance(deleted, DeleteResult)
    assert deleted.deleted_count == 1
    assert (await c.delete_many({})).deleted_count == 3
    assert await c.find_one({}) is None


async def test_reads_count_and_distinct(people: AsyncMockCollection) -> None:
    assert await people.find_one({"email": "c@x"}, {"_id": 0, "n": 1}) == {"n": 3}
    assert await people.find_one({"n": {"$gt": 1}}, sort=[("n", DESCENDING)]) == PEOPLE[3]
    assert await people.count_documents({"tags": "red"}) == 2
    assert await people.count_documents({}, skip=1, limit=2) == 2
    assert await people.estimated_document_count() == 4
    assert sorted(await people.distinct("tags")) == ["blue", "red"]
    assert await people.distinct("n", {"n": {"$lt": 3}}) in ([1, 2], [2, 1])


async def test_update_one_with_sort_picks_the_first_in_that_order(
    people: AsyncMockCollection,
) -> None:
    await people.update_one({"tags": "red"}, {"$set": {"hit": True}}, sort={"n": DESCENDING})
    await people.replace_one({"tags": "blue"}, {"email": "z@x"}, sort=[("n", DESCENDING)])
    assert [d["_id"] for d in await people.find({"hit": True}).to_list()] == [2]
    assert await people.find_one({"email": "z@x"}) == {"_id": 4, "email": "z@x"}


async def test_find_one_and_modify_family(people: AsyncMockCollection) -> None:
    before = await people.find_one_and_update(
        {"tags": "blue"}, {"$inc": {"n": 100}}, sort=[("n", DESCENDING)]
    )
    assert before == PEOPLE[3]
    after = await people.find_one_and_update(
        {"_id": 1},
        {"$inc": {"n": 100}},
        projection={"n": 1},
        return_document=ReturnDocument.AFTER,
    )
    assert after == {"_id": 1, "n": 101}
    upserted = await people.find_one_and_update(
        {"_id": 9}, {"$set": {"n": 9}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert upserted == {"_id": 9, "n": 9}
    assert await people.find_one_and_update({"_id": 99}, {"$set": {"n": 0}}) is None

    old = await people.find_one_and_replace({"_id": 2}, {"email": "new@x"}, projection=["email"])
    assert old == {"_id": 2, "email": "b@x"}
    new = await people.find_one_and_replace(
        {"_id": 3}, {"email": "c2@x"}, return_document=ReturnDocument.AFTER
    )
    assert new == {"_id": 3, "email": "c2@x"}
    gone = await people.find_one_and_delete({"n": {"$gt": 100}}, sort=[("n", ASCENDING)])
    assert gone is not None
    assert gone["_id"] == 1
    assert await people.count_documents({"_id": 1}) == 0


# --- cursors ---------------------------------------------------------------------------------


async def test_find_returns_a_chainable_async_cursor(people: AsyncMockCollection) -> None:
    cursor = people.find({"n": {"$gte": 1}})
    assert isinstance(cursor, AsyncMockCursor)  # synchronously, as pymongo's find
    assert cursor.collection == people
    chained = cursor.sort("n", DESCENDING).skip(1).limit(2).batch_size(1)
    chained = chained.hint([("n", 1)]).collation(None).comment("c").max_time_ms(100)
    assert chained is cursor
    assert cursor.allow_disk_use(True) is cursor
    assert [d["_id"] for d in await cursor.to_list()] == [3, 2]

    cursor = people.find(sort=[("n", ASCENDING)], projection=["email"])
    assert cursor.alive
    first = await cursor.to_list(1)
    assert first == [{"_id": 1, "email": "a@x"}]
    with pytest.raises(InvalidOperation):
        cursor.sort("n")
    assert await cursor.next() == {"_id": 2, "email": "b@x"}
    assert [d["_id"] async for d in cursor] == [3, 4]
    assert not cursor.alive
    with pytest.raises(StopAsyncIteration):
        await cursor.next()
    assert await cursor.to_list() == []
    with pytest.raises(ValueError, match="greater than 0"):
        await cursor.to_list(0)

    assert await cursor.rewind() is cursor
    assert len(await cursor.to_list(10)) == 4
    clone = cursor.clone()
    assert clone is not cursor
    assert [d["_id"] for d in await clone.skip(2).to_list()] == [3, 4]


async def test_cursor_close_explain_distinct_and_context(people: AsyncMockCollection) -> None:
    cursor = people.find({"tags": "red"})
    assert sorted(await cursor.distinct("tags")) == ["blue", "red"]
    with pytest.raises(NotImplementedError, match="no query planner"):
        await cursor.explain()  # as sync mongomock, which has no explain() at all
    await cursor.close()
    assert not cursor.alive
    assert await cursor.to_list() == []
    async with people.find() as scoped:
        assert len(await scoped.to_list()) == 4
    assert not scoped.alive
    assert await anext(people.find({"_id": 4}), None) == PEOPLE[3]
    assert await anext(people.find({"_id": 40}), None) is None


async def test_cursor_validates_like_pymongo(people: AsyncMockCollection) -> None:
    with pytest.raises(TypeError):
        people.find("not a filter")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        people.find().skip("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="skip"):
        people.find().skip(-1)
    with pytest.raises(TypeError):
        people.find().limit(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must not be the empty list"):
        people.find().sort([])
    with pytest.raises(NotImplementedError, match="tailable"):
        people.find(cursor_type=2)
    # Errors of the query itself surface when the cursor is read, as with a server.
    cursor = people.find({"$bogus": 1})
    with pytest.raises(OperationFailure, match="unknown top level operator"):
        await cursor.to_list()


async def test_aggregate_is_a_coroutine_returning_a_command_cursor(
    people: AsyncMockCollection,
) -> None:
    assert inspect.iscoroutinefunction(AsyncMockCollection.aggregate)
    pipeline: list[dict[str, Any]] = [
        {"$unwind": "$tags"},
        {"$group": {"_id": "$tags", "total": {"$sum": "$n"}}},
        {"$sort": {"_id": 1}},
    ]
    cursor = await people.aggregate(pipeline, allowDiskUse=True)
    assert isinstance(cursor, AsyncMockCommandCursor)
    assert cursor.alive
    assert await cursor.to_list(1) == [{"_id": "blue", "total": 6}]
    assert [d async for d in cursor] == [{"_id": "red", "total": 3}]
    assert not cursor.alive
    assert await cursor.try_next() is None
    cursor = await people.aggregate([{"$match": {"n": 1}}])
    assert await cursor.next() == PEOPLE[0]
    await cursor.close()
    assert await cursor.to_list() == []
    with pytest.raises(TypeError):
        await people.aggregate({"$match": {}})  # type: ignore[arg-type]


# --- indexes, drop, rename -------------------------------------------------------------------


async def test_indexes_round_trip(db: AsyncMockDatabase) -> None:
    c = db["c"]
    assert await c.index_information() == {}
    assert await c.create_index("email", unique=True) == "email_1"
    names = await c.create_indexes(
        [
            IndexModel([("a", ASCENDING), ("b", DESCENDING)], name="ab"),
            IndexModel("c", partialFilterExpression={"c": {"$exists": True}}),
        ]
    )
    assert names == ["ab", "c_1"]
    info = await c.index_information()
    assert set(info) == {"_id_", "email_1", "ab", "c_1"}
    assert info["email_1"]["unique"] is True
    assert info["ab"]["key"] == [("a", 1), ("b", -1)]
    assert info["c_1"]["partialFilterExpression"] == {"c": {"$exists": True}}
    listed = await c.list_indexes()
    assert isinstance(listed, AsyncMockCommandCursor)
    assert [i["name"] for i in await listed.to_list()] == ["_id_", "email_1", "ab", "c_1"]

    await c.drop_index("ab")
    await c.drop_index([("c", ASCENDING)])
    assert set(await c.index_information()) == {"_id_", "email_1"}
    with pytest.raises(OperationFailure, match="index not found"):
        await c.drop_index("missing_1")
    await c.drop_indexes()
    assert set(await c.index_information()) == {"_id_"}


async def test_drop_and_rename(people: AsyncMockCollection, db: AsyncMockDatabase) -> None:
    reply = await people.rename("persons")
    assert reply["ok"] == 1
    assert await db["persons"].count_documents({}) == 4
    assert "people" not in await db.list_collection_names()
    await db["persons"].drop()
    assert await db.list_collection_names() == []


# --- bulk_write ------------------------------------------------------------------------------


async def test_bulk_write_counts_like_pymongo(people: AsyncMockCollection) -> None:
    result = await people.bulk_write(
        [
            InsertOne({"_id": 5, "n": 5}),
            UpdateOne({"_id": 1}, {"$set": {"n": 10}}),
            UpdateOne({"_id": 1}, {"$set": {"n": 10}}),  # matched, not modified
            UpdateOne({"_id": 50}, {"$set": {"n": 50}}, upsert=True),
            UpdateMany({"tags": "blue"}, {"$push": {"tags": "green"}}),
            ReplaceOne({"_id": 3}, {"email": "c2@x"}),
            ReplaceOne({"_id": 60}, {"n": 60}, upsert=True),
            DeleteOne({"_id": 5}),
            DeleteMany({"n": {"$gte": 50}}),
        ]
    )
    assert isinstance(result, BulkWriteResult)
    assert result.acknowledged
    assert result.inserted_count == 1
    assert result.matched_count == 5
    assert result.modified_count == 4
    assert result.upserted_count == 2
    assert result.upserted_ids == {3: 50, 6: 60}
    assert result.deleted_count == 3
    assert await people.find_one({"_id": 3}) == {"_id": 3, "email": "c2@x"}
    assert (await people.find_one({"_id": 4}) or {})["tags"] == ["blue", "green"]


async def test_bulk_write_replace_one_honours_sort(people: AsyncMockCollection) -> None:
    result = await people.bulk_write(
        [ReplaceOne({"tags": "red"}, {"picked": True}, sort={"n": DESCENDING})]
    )
    assert (result.matched_count, result.modified_count) == (1, 1)
    assert await people.find_one({"picked": True}) == {"_id": 2, "picked": True}


async def test_bulk_write_ordered_stops_at_the_first_error(people: AsyncMockCollection) -> None:
    await people.create_index("email", unique=True)
    with pytest.raises(BulkWriteError) as raised:
        await people.bulk_write(
            [
                InsertOne({"_id": 5, "email": "e@x"}),
                InsertOne({"_id": 6, "email": "a@x"}),
                InsertOne({"_id": 7, "email": "g@x"}),
            ]
        )
    error = raised.value
    assert (error.code, str(error).startswith("batch op errors occurred")) == (65, True)
    details = error.details
    assert details["nInserted"] == 1
    assert [(e["index"], e["code"]) for e in details["writeErrors"]] == [(1, 11000)]
    assert details["writeErrors"][0]["op"] == {"_id": 6, "email": "a@x"}
    assert details["writeConcernErrors"] == []
    assert await people.count_documents({"_id": {"$in": [5, 6, 7]}}) == 1


async def test_bulk_write_unordered_reports_every_error(people: AsyncMockCollection) -> None:
    await people.create_index("email", unique=True)
    with pytest.raises(BulkWriteError) as raised:
        await people.bulk_write(
            [
                UpdateOne({"_id": 2}, {"$set": {"email": "a@x"}}),
                InsertOne({"_id": 6, "email": "f@x"}),
                DeleteOne({"_id": 4}),
                InsertOne({"_id": 1}),
            ],
            ordered=False,
        )
    details = raised.value.details
    assert [(e["index"], e["code"]) for e in details["writeErrors"]] == [(0, 11000), (3, 11000)]
    assert details["writeErrors"][0]["op"] == {
        "q": {"_id": 2},
        "u": {"$set": {"email": "a@x"}},
        "multi": False,
        "upsert": False,
    }
    assert (details["nInserted"], details["nRemoved"], details["nMatched"]) == (1, 1, 0)
    assert await people.count_documents({}) == 4


async def test_bulk_write_error_entries_match_sync_mongomock_insert_many() -> None:
    documents = [{"_id": 1}, {"_id": 2}, {"_id": 1}, {"_id": 3}, {"_id": 2}]
    sync = mongomock.MongoClient()["d"]["c"]
    with pytest.raises(BulkWriteError) as sync_error:
        sync.insert_many([dict(d) for d in documents], ordered=False)
    collection = embedded_database("d")["c"]
    with pytest.raises(BulkWriteError) as async_error:
        await collection.bulk_write([InsertOne(dict(d)) for d in documents], ordered=False)
    expected = sync_error.value.details
    got = async_error.value.details
    assert got["writeErrors"] == expected["writeErrors"]
    assert got["nInserted"] == expected["nInserted"]


async def test_bulk_write_rejects_what_pymongo_rejects(db: AsyncMockDatabase) -> None:
    c = db["c"]
    with pytest.raises(InvalidOperation):
        await c.bulk_write([])
    with pytest.raises(TypeError, match="not a valid request"):
        await c.bulk_write([{"insertOne": {"document": {}}}])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"\$ operators"):
        await c.bulk_write([UpdateOne({}, {"n": 1})])
    assert await c.count_documents({}) == 0


# --- pymongo's signatures, and the options refused rather than ignored ----------------------

PYMONGO_TWINS: list[tuple[type[Any], type[Any]]] = [
    (AsyncMockClient, AsyncMongoClient),
    (AsyncMockDatabase, AsyncDatabase),
    (AsyncMockCollection, AsyncCollection),
    (AsyncMockCursor, AsyncCursor),
    (AsyncMockCommandCursor, AsyncCommandCursor),
]
# pymongo's find takes *args/**kwargs for its cursor's parameters; start_session refuses all.
NOT_COMPARED = {"find", "start_session"}


def _parameters(function: Any, skip: int = 0) -> list[tuple[str, Any, Any]]:
    parameters = list(inspect.signature(function).parameters.values())[skip:]
    return [(p.name, p.kind, p.default) for p in parameters]


@pytest.mark.parametrize(("ours", "theirs"), PYMONGO_TWINS, ids=lambda c: c.__name__)
def test_methods_take_pymongo_arguments(ours: type[Any], theirs: type[Any]) -> None:
    shared = [
        name
        for name in dir(ours)
        if not name.startswith("_")
        and name not in NOT_COMPARED
        and callable(getattr(theirs, name, None))
        and not isinstance(inspect.getattr_static(ours, name), property)
    ]
    assert len(shared) >= 3
    for name in shared:
        ours_method, theirs_method = getattr(ours, name), getattr(theirs, name)
        assert _parameters(ours_method) == _parameters(theirs_method), name
        assert inspect.iscoroutinefunction(ours_method) == inspect.iscoroutinefunction(
            theirs_method
        ), name


def test_find_takes_the_arguments_of_pymongos_cursor() -> None:
    assert _parameters(AsyncMockCollection.find, 1) == _parameters(AsyncCursor.__init__, 2)


REFUSED_OPTIONS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("delete_one", ({"_id": 1},), {"let": {"x": 1}}),
    ("delete_many", ({},), {"let": {"x": 1}}),
    ("replace_one", ({"_id": 1}, {"n": 0}), {"let": {"x": 1}}),
    ("replace_one", ({"_id": 1}, {"n": 0}), {"collation": {"locale": "en"}}),
    ("find_one_and_update", ({"_id": 1}, {"$set": {"n": 0}}), {"array_filters": [{"x": 1}]}),
    ("find_one_and_update", ({"_id": 1}, {"$set": {"n": 0}}), {"let": {"x": 1}}),
    ("find_one_and_update", ({"_id": 1}, {"$set": {"n": 0}}), {"collation": {"locale": "en"}}),
    ("find_one_and_replace", ({"_id": 1}, {"n": 0}), {"let": {"x": 1}}),
    ("find_one_and_delete", ({"_id": 1},), {"collation": {"locale": "en"}}),
    ("distinct", ("n",), {"collation": {"locale": "en"}}),
    ("drop", (), {"encrypted_fields": {"fields": []}}),
    ("insert_one", ({"_id": 9},), {"session": object()}),
    ("count_documents", ({},), {"session": object()}),
]


@pytest.mark.parametrize(
    ("method", "args", "kwargs"),
    REFUSED_OPTIONS,
    ids=[f"{m}-{next(iter(k))}" for m, _, k in REFUSED_OPTIONS],
)
async def test_options_mongomock_would_ignore_are_refused(
    people: AsyncMockCollection, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    option = next(iter(kwargs))
    with pytest.raises(NotImplementedError, match=option.split("_")[0]):
        await getattr(people, method)(*args, **kwargs)
    assert await people.find().to_list() == PEOPLE  # nothing was written


async def test_server_only_options_are_accepted_without_effect(
    people: AsyncMockCollection,
) -> None:
    updated = await people.update_one(
        {"_id": 1}, {"$set": {"n": 10}}, bypass_document_validation=True, comment="why"
    )
    assert updated.modified_count == 1
    assert await people.count_documents({}, comment="why") == 4
    found = await people.find_one_and_delete({"_id": 2}, hint="_id_", comment="why")
    assert found == PEOPLE[1]
    with pytest.raises(TypeError, match="bogus"):
        await people.insert_one({"_id": 9}, bogus=True)  # type: ignore[call-arg]
    assert await people.count_documents({"_id": 9}) == 0


# --- errors: the same types (and texts) as the same calls on synchronous mongomock -----------

FAILING_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("insert_one", ({"_id": 1},), {}),
    ("insert_one", ({"email": "b@x"},), {}),
    ("insert_one", ("not a document",), {}),
    ("insert_many", ([{"_id": 5}, {"_id": 1}, {"_id": 6}],), {}),
    ("insert_many", ([{"_id": 5}, {"_id": 1}, {"_id": 6}, {"_id": 2}],), {"ordered": False}),
    ("update_one", ({"_id": 2}, {"$set": {"email": "a@x"}}), {}),
    ("update_one", ({"_id": 2}, {"$set": {"_id": 9}}), {}),
    ("update_one", ({}, {"email": "x"}), {}),
    ("update_many", ({}, {"$set": {"email": "same@x"}}), {}),
    ("replace_one", ({}, {"$set": {"a": 1}}), {}),
    ("replace_one", ({"_id": 1}, {"email": "b@x"}), {}),
    ("find_one", ({"$bogus": 1},), {}),
    ("find_one", ({"n": {"$bogus": 1}},), {}),
    ("find_one_and_update", ({}, {"a": 1}), {}),
    ("find_one_and_update", ({"_id": 1}, {"$set": {"email": "b@x"}}), {}),
    ("count_documents", ({},), {"limit": -1}),
    ("count_documents", ({"$bogus": 1},), {}),
    ("drop_index", ("missing_1",), {}),
    ("aggregate", ([{"$bogus": 1}],), {}),
]


def _prepare(collection: Any) -> None:
    collection.insert_many([dict(p) for p in PEOPLE])
    collection.create_index("email", unique=True)


async def _outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        result = call()
        if inspect.isawaitable(result):
            await result
    except Exception as exc:
        return type(exc), str(exc), getattr(exc, "code", None), getattr(exc, "details", None)
    return ("no error",)


@pytest.mark.parametrize(
    ("method", "args", "kwargs"),
    FAILING_CALLS,
    ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(FAILING_CALLS)],
)
async def test_errors_are_those_of_sync_mongomock(
    method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    sync_store, async_store = ServerStore(), ServerStore()
    sync = mongomock.MongoClient(_store=sync_store)["d"]["c"]
    _prepare(sync)
    _prepare(mongomock.MongoClient(_store=async_store)["d"]["c"])
    collection = embedded_database("d", async_store)["c"]

    expected = await _outcome(lambda: getattr(sync, method)(*args, **kwargs))
    got = await _outcome(lambda: getattr(collection, method)(*args, **kwargs))
    assert expected != ("no error",)
    assert got == expected
    # ... and both leave the same data behind
    assert list(sync.find()) == await collection.find().to_list()


# --- Beanie 2, unmodified, on the embedded backend -------------------------------------------


@pytest.fixture
async def patient_model() -> type[Any]:
    class Patient(Document):
        email: Indexed(str, unique=True)  # type: ignore[valid-type]
        name: str
        age: int
        tags: list[str] = []

        class Settings:
            name = "patients"
            use_state_management = True

    await init_beanie(database=embedded_database(f"b_{uuid4().hex}"), document_models=[Patient])
    return Patient


async def _seed(patient: Any) -> list[Any]:
    """Ann, Bob, Cid, Dee (ages 30..60), read back: Beanie's insert_many does not set ids."""
    await patient(email="a@x", name="Ann", age=30).insert()
    await patient.insert_many(
        [
            patient(email="b@x", name="Bob", age=40, tags=["x"]),
            patient(email="c@x", name="Cid", age=50),
            patient(email="d@x", name="Dee", age=60),
        ]
    )
    return list(await patient.find_all().sort(+patient.age).to_list())


async def test_beanie_inserts_and_finds(patient_model: Any) -> None:
    P = patient_model
    ann, bob, *_ = await _seed(P)
    assert ann.id is not None
    assert await P.count() == 4
    page = await P.find(P.age > 35).sort(-P.age).skip(1).limit(2).to_list()
    assert [p.name for p in page] == ["Cid", "Bob"]
    assert await P.find(In(P.name, ["Ann", "Dee"])).count() == 2
    assert await P.find(P.age > 35, skip=1, limit=1).count() == 1
    found = await P.find_one(P.email == "b@x")
    assert found is not None
    assert (found.id, found.tags) == (bob.id, ["x"])
    assert await P.get(ann.id) == ann
    assert [p.name async for p in P.find(P.age < 45).sort(+P.age)] == ["Ann", "Bob"]
    assert await P.find(P.age > 100).first_or_none() is None
    assert await P.find(P.name == "Ann").exists()
    assert sorted(await P.distinct("age")) == [30, 40, 50, 60]
    assert await P.find_all().to_list(2) == [ann, bob]


async def test_beanie_updates(patient_model: Any) -> None:
    P = patient_model
    ann, bob, *_ = await _seed(P)
    await ann.set({P.age: 31})
    await ann.inc({P.age: 1})
    assert (await P.get(ann.id)).age == 32
    await P.find(P.age >= 50).update(Set({P.tags: ["senior"]}))
    assert await P.find(P.tags == "senior").count() == 2
    await P.find(P.age >= 50).inc({P.age: 1})
    assert sorted(p.age for p in await P.find(P.age > 50).to_list()) == [51, 61]

    ann.name = "Anne"
    await ann.save_changes()
    assert (await P.get(ann.id)).name == "Anne"
    bob.age = 41
    await bob.replace()
    assert (await P.get(bob.id)).age == 41
    bob.tags = ["saved"]
    await bob.save()
    assert (await P.get(bob.id)).tags == ["saved"]

    new = await P.find_one(P.email == "b@x").update(
        Set({P.age: 77}), response_type=UpdateResponse.NEW_DOCUMENT
    )
    assert new.age == 77
    await P.find_one(P.email == "z@x").upsert(
        Set({P.age: 1}), on_insert=P(email="z@x", name="Zed", age=0)
    )
    assert (await P.find_one(P.email == "z@x")).name == "Zed"


async def test_beanie_deletes_and_aggregates(patient_model: Any) -> None:
    P = patient_model
    _, bob, *_ = await _seed(P)
    total = (
        await P.find(P.age > 0)
        .aggregate([{"$group": {"_id": None, "total": {"$sum": "$age"}}}])
        .to_list()
    )
    assert total == [{"_id": None, "total": 180}]
    assert await P.find_all().sum(P.age) == 180
    assert await P.find(P.age >= 40).avg(P.age) == 50
    assert await P.find_all().max(P.age) == 60

    deleted = await P.find(P.age > 55).delete()
    assert deleted is not None
    assert deleted.deleted_count == 1
    await bob.delete()
    assert await P.count() == 2
    await P.delete_all()
    assert await P.count() == 0


async def test_beanie_bulk_writer(patient_model: Any) -> None:
    P = patient_model
    ann, bob, *_ = await _seed(P)
    async with BulkWriter(object_class=P) as bulk:
        await P.insert_one(P(email="e@x", name="Eve", age=20), bulk_writer=bulk)
        await P.find(P.email == "a@x").update(Set({P.age: 99}), bulk_writer=bulk)
        bob.name = "Robert"
        await bob.replace(bulk_writer=bulk)
        await P.find_one(P.email == "d@x").delete(bulk_writer=bulk)
    assert await P.count() == 4
    assert (await P.get(ann.id)).age == 99
    assert (await P.get(bob.id)).name == "Robert"


async def test_beanie_unique_index_raises_duplicate_key(patient_model: Any) -> None:
    P = patient_model
    await _seed(P)
    info = await P.get_pymongo_collection().index_information()
    assert info["email_1"]["unique"] is True
    with pytest.raises(DuplicateKeyError):
        await P(email="a@x", name="Again", age=1).insert()
    with pytest.raises(BulkWriteError):
        await P.insert_many([P(email="n@x", name="New", age=1), P(email="b@x", name="B", age=2)])
    assert await P.count() == 5


async def test_beanie_init_twice_on_the_same_store_keeps_the_indexes() -> None:
    store = ServerStore()

    class Visit(Document):
        code: Indexed(str, unique=True)  # type: ignore[valid-type]

    for _ in range(2):
        await init_beanie(
            database=embedded_database("visits", store),
            document_models=[Visit],
            allow_index_dropping=True,
        )
    await Visit(code="v1").insert()
    assert set(await Visit.get_pymongo_collection().index_information()) == {"_id_", "code_1"}


# --- privata's AsyncPymongoStore over the embedded collection --------------------------------


async def test_async_store_matches_the_sync_store_over_sync_mongomock() -> None:
    sync = PymongoStore(mongomock.MongoClient()["s"]["c"])
    aio = AsyncPymongoStore(embedded_database("s")["c"])
    c = Side.CLINICAL
    steps: list[Op[Any]] = [
        CreateIndex(c, (("email", 1),), {"unique": True}),
        Insert(c, tuple(dict(p) for p in PEOPLE), True),
        Insert(c, ({"_id": 7, "email": "a@x"},), True),
        Insert(c, ({"_id": 8, "email": "b@x"}, {"_id": 9}, {"_id": 1}), False),
        Count(c, {"n": {"$gt": 1}}, {}),
        Distinct(c, "tags", {}, {}),
        EstimatedCount(c, {}),
        Update(c, {"_id": 1}, {"$inc": {"n": 10}}, False, False, {}),
        Update(c, {"tags": "red"}, {"$set": {"hot": True}}, True, False, {}),
        Update(c, {"_id": 20}, {"$set": {"n": 20, "email": "u@x"}}, False, True, {}),
        Update(c, {"_id": 2}, {"$set": {"email": "a@x"}}, False, False, {}),
        Replace(c, {"_id": 3}, {"email": "c2@x"}, False, {}),
        ReplaceMany(c, (({"_id": 1}, {"email": "a2@x"}), ({"_id": 99}, {"n": 0}))),
        FindAndModify(c, "update", {"_id": 2}, {"$set": {"n": 0}}, (), False, True, None, {}),
        FindAndModify(
            c, "replace", {"_id": 4}, {"n": 4, "email": "d2@x"}, (), False, False, {"n": 1}, {}
        ),
        FindAndModify(c, "delete", {"n": {"$gt": 5}}, None, (("n", -1),), False, False, None, {}),
        Delete(c, {"n": 0}, True, {}),
        IndexInformation(c),
        DropIndex(c, "email_1"),
        IndexInformation(c),
    ]
    for op in steps:
        expected = _sync_result(sync, op)
        got = await _async_result(aio, op)
        assert got == expected, op

    query = Query({}, sort=(("_id", 1),), batch_size=2)
    sync_cursor = cast(BatchCursor, sync.execute(Find(c, query)))
    async_cursor = cast(AsyncBatchCursor, await aio.execute(Find(c, query)))
    for size in (2, 1, 10):
        assert await async_cursor.next_batch(size) == sync_cursor.next_batch(size)
    await async_cursor.close()
    with pytest.raises(NotImplementedError):
        await aio.execute(Explain(c, Query({"n": 1})))
    await aio.execute(Drop(c))
    assert await aio.execute(IndexInformation(c)) == {}


async def _async_result(store: AsyncPymongoStore, op: Op[Any]) -> Any:
    try:
        return await store.execute(op)
    except Exception as exc:
        return type(exc), str(exc)


def _sync_result(store: PymongoStore, op: Op[Any]) -> Any:
    try:
        return store.execute(op)
    except Exception as exc:
        return type(exc), str(exc)
