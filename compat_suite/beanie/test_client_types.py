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
from compat_suite.client_facts import collection_facts as _collection_facts
from compat_suite.client_facts import kinds
from privata_mongo.embedded import AsyncMockClient, AsyncMockCollection, AsyncMockDatabase

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
