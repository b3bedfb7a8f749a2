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
import mongomock.collection
import mongomock.command_cursor
import pymongo
import pymongo.command_cursor
import pymongo.cursor
from pymongo.collection import Collection
from pymongo.database import Database

from compat_suite.client_facts import collection_facts as _collection_facts
from compat_suite.client_facts import kinds
from compat_suite.harness import scenario
from compat_suite.mongoengine.models import Clinic, clinic, seed_clinic

CLIENTS = (pymongo.MongoClient, mongomock.MongoClient)
DATABASES = (Database, mongomock.Database)
COLLECTIONS = (Collection, mongomock.Collection)


def collection_facts(collection: Any) -> dict[str, Any]:
    """The attributes applications read off a collection, with this driver's classes."""
    return _collection_facts(
        collection, collections=COLLECTIONS, databases=DATABASES, clients=CLIENTS
    )


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


CURSORS = (pymongo.cursor.Cursor, mongomock.collection.Cursor)
COMMAND_CURSORS = (pymongo.command_cursor.CommandCursor, mongomock.command_cursor.CommandCursor)


@scenario(clinic)
def test_cursors_are_of_the_native_class(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    split, plain = m.Patient._get_collection(), m.Visit._get_collection()
    cursor = split.find()
    chained = split.find().sort("_id").skip(1).limit(5)
    return {
        "find": kinds(cursor, CURSORS),
        "chained": kinds(chained, CURSORS),
        "clone": kinds(cursor.clone(), CURSORS),
        "plain_find": kinds(plain.find(), CURSORS),
        "aggregate": kinds(split.aggregate([{"$match": {}}]), COMMAND_CURSORS),
        "plain_aggregate": kinds(plain.aggregate([{"$match": {}}]), COMMAND_CURSORS),
        "queryset": kinds(m.Patient.objects._cursor, CURSORS),
        # the cursor still reads through the split once it passes as the native class
        "read": sorted(len(document) for document in cursor),
    }
