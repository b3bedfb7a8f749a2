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
from pymongo.asynchronous.database import AsyncDatabase

from compat_suite.beanie.harness import scenario
from compat_suite.beanie.models import Clinic, clinic, seed_clinic
from privata_mongo.embedded import AsyncMockClient, AsyncMockCollection, AsyncMockDatabase

CLIENTS = (AsyncMongoClient, AsyncMockClient)
DATABASES = (AsyncDatabase, AsyncMockDatabase)
COLLECTIONS = (AsyncCollection, AsyncMockCollection)


def kinds(value: Any, classes: tuple[type, ...]) -> dict[str, Any]:
    """Which of ``classes`` ``value`` is an instance of, and the class it reports."""
    observed: dict[str, Any] = {
        f"{c.__module__}.{c.__qualname__}": isinstance(value, c) for c in classes
    }
    observed["__class__"] = f"{value.__class__.__module__}.{value.__class__.__qualname__}"
    return observed


def collection_facts(collection: Any) -> dict[str, Any]:
    """The attributes applications read off a collection, and the classes around it."""
    return {
        "kinds": kinds(collection, COLLECTIONS),
        "name": collection.name,
        # each run has a database of its own name: observe how the names relate
        "full_name": collection.full_name == f"{collection.database.name}.{collection.name}",
        "database": kinds(collection.database, DATABASES),
        "client": kinds(collection.database.client, CLIENTS),
        "uuid_representation": collection.codec_options.uuid_representation,
        "tz_aware": collection.codec_options.tz_aware,
        "acknowledged": collection.write_concern.acknowledged,
        "read_preference": collection.read_preference.name,
    }


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
