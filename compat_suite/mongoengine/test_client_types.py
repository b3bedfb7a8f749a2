"""The classes of what mongoengine hands out: applications and test fixtures check them.

``isinstance(get_connection(), mongomock.MongoClient)`` in a fixture, ``isinstance(db,
pymongo.database.Database)`` in a helper, ``Model._get_collection().full_name`` in a log line:
each must answer as natively, for the split collection of a model with identity fields and the
plain one of a model without, whichever client class the application passed.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import mongomock
import pymongo
from pymongo.collection import Collection
from pymongo.database import Database

from compat_suite.harness import scenario
from compat_suite.mongoengine.models import Clinic, clinic, seed_clinic

CLIENTS = (pymongo.MongoClient, mongomock.MongoClient)
DATABASES = (Database, mongomock.Database)
COLLECTIONS = (Collection, mongomock.Collection)


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
def test_connection_database_and_collection_classes(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    client = me.get_connection()
    db = me.get_db()
    return {
        "client": kinds(client, CLIENTS),
        "client_address": list(client.address),
        "db": kinds(db, DATABASES),
        "db_name_matches": db.name == m.Patient._get_db().name,
        "model_db": kinds(m.Patient._get_db(), DATABASES),
        "db_client": kinds(db.client, CLIENTS),
        "split": collection_facts(m.Patient._get_collection()),
        "plain": collection_facts(m.Visit._get_collection()),
        "by_name": kinds(db[m.Patient._get_collection_name()], COLLECTIONS),
        "by_attribute": kinds(db.get_collection("visit"), COLLECTIONS),
    }


@scenario(clinic)
def test_a_queryset_holds_a_collection_of_the_native_class(
    me: ModuleType, m: Clinic
) -> dict[str, Any]:
    seed_clinic(m)
    return {
        "split": kinds(m.Patient.objects._collection, COLLECTIONS),
        "plain": kinds(m.Visit.objects._collection, COLLECTIONS),
        "count": m.Patient.objects.count(),
    }
