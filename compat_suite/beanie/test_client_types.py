"""The classes of what Beanie holds: applications and test fixtures check them.

``isinstance(Model.get_pymongo_collection(), AsyncCollection)``, ``collection.database.name``,
``collection.full_name``: each must answer as natively, for the split collection of a model
with identity fields and the plain one of a model without, on pymongo's async client (a
server) and on the embedded backend.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.command_cursor import AsyncCommandCursor
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.asynchronous.database import AsyncDatabase

from compat_suite.beanie.harness import scenario
from compat_suite.beanie.models import Clinic, clinic, seed_clinic
from compat_suite.client_facts import collection_facts as _collection_facts
from compat_suite.client_facts import kinds
from privata_mongo.embedded import (
    AsyncMockClient,
    AsyncMockCollection,
    AsyncMockCommandCursor,
    AsyncMockCursor,
    AsyncMockDatabase,
)

CLIENTS = (AsyncMongoClient, AsyncMockClient)
DATABASES = (AsyncDatabase, AsyncMockDatabase)
COLLECTIONS = (AsyncCollection, AsyncMockCollection)


def collection_facts(collection: Any) -> dict[str, Any]:
    """The attributes applications read off a collection, with this driver's classes."""
    return _collection_facts(
        collection, collections=COLLECTIONS, databases=DATABASES, clients=CLIENTS
    )


@scenario(clinic)
async def test_database_and_collection_classes(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    split = m.Patient.get_pymongo_collection()
    database = split.database
    return {
        "split": collection_facts(split),
        "plain": collection_facts(m.Visit.get_pymongo_collection()),
        "by_name": kinds(database[m.Patient.get_collection_name()], COLLECTIONS),
        "same_database": database.name == m.Visit.get_pymongo_collection().database.name,
        "patients": await split.count_documents({}),
    }


CURSORS = (AsyncCursor, AsyncMockCursor)
COMMAND_CURSORS = (AsyncCommandCursor, AsyncMockCommandCursor)


@scenario(clinic)
async def test_cursors_are_of_the_native_class(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    split = m.Patient.get_pymongo_collection()
    plain = m.Visit.get_pymongo_collection()
    cursor = split.find()
    chained = split.find().sort("_id").skip(1).limit(5)
    return {
        "find": kinds(cursor, CURSORS),
        "chained": kinds(chained, CURSORS),
        "clone": kinds(cursor.clone(), CURSORS),
        "plain_find": kinds(plain.find(), CURSORS),
        "aggregate": kinds(await split.aggregate([{"$match": {}}]), COMMAND_CURSORS),
        "plain_aggregate": kinds(await plain.aggregate([{"$match": {}}]), COMMAND_CURSORS),
        # the cursor still reads through the split once it passes as the native class
        "read": sorted(len(document) for document in await cursor.to_list()),
    }
