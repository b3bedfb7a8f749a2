"""The audit trail, the key vault and its tombstones are read-only through the app's handles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pymongo import DeleteOne, InsertOne

import privata_mongo.beanie as pb
import privata_mongo.mongoengine as pm
from privata_mongo import access_context
from privata_mongo.audit import audit_collection, verify
from privata_mongo.config import current
from privata_mongo.errors import ProtectedCollection
from testkit.backends import Backend


def _patient() -> Any:
    class GuardPatient(pm.Document):
        first_name = pm.StringField()
        email = pm.StringField()
        meta = {"collection": "guard_patient"}

    return GuardPatient


def _collection_writes(collection: Any) -> dict[str, Callable[[], Any]]:
    return {
        "insert_one": lambda: collection.insert_one({"forged": True}),
        "insert_many": lambda: collection.insert_many([{"forged": True}]),
        "update_one": lambda: collection.update_one({}, {"$set": {"actor": "mallory"}}),
        "update_many": lambda: collection.update_many({}, {"$set": {"actor": "mallory"}}),
        "replace_one": lambda: collection.replace_one({}, {"forged": True}),
        "delete_one": lambda: collection.delete_one({}),
        "delete_many": lambda: collection.delete_many({}),
        "find_one_and_delete": lambda: collection.find_one_and_delete({}),
        "find_one_and_update": lambda: collection.find_one_and_update({}, {"$set": {"a": 1}}),
        "bulk_write": lambda: collection.bulk_write([InsertOne({"a": 1}), DeleteOne({})]),
        "drop": lambda: collection.drop(),
        "drop_index": lambda: collection.drop_index("privata_subject"),
        "drop_indexes": lambda: collection.drop_indexes(),
        "create_index": lambda: collection.create_index("forged", unique=True),
        "rename": lambda: collection.rename("elsewhere"),
    }


def test_the_app_cannot_write_the_audit_trail_but_reads_it(connected: Any) -> None:
    Patient = _patient()
    with access_context(actor="dr.lee"):
        Patient(first_name="Ada", email="ada@x.org").save()
        assert Patient.objects.get(first_name="Ada").email == "ada@x.org"
    db = pm.get_db()
    base = current().audit_collection
    names = (base, base + ".checkpoints", base + ".pending")
    for name in names:
        for operation, call in _collection_writes(db[name]).items():
            with pytest.raises(ProtectedCollection, match="audit_collection") as caught:
                call()
            assert caught.value.namespace == f"{db.name}.{name}", operation
        with pytest.raises(ProtectedCollection):
            db.drop_collection(name)
        with pytest.raises(ProtectedCollection):
            db.command("drop", name)
        with pytest.raises(ProtectedCollection):
            db.command("delete", name, deletes=[{"q": {}, "limit": 0}])
        with pytest.raises(ProtectedCollection):
            db.command("dropIndexes", name, index="*")
        with pytest.raises(ProtectedCollection):
            db.with_options()[name].with_options().delete_many({})
    with pytest.raises(ProtectedCollection):
        db.command("renameCollection", f"{db.name}.privata_audit", to=f"{db.name}.gone")
    with pytest.raises(ProtectedCollection):
        db["scratch"].aggregate([{"$match": {}}, {"$out": "privata_audit"}])
    with pytest.raises(ProtectedCollection):
        db["scratch"].rename("privata_audit")
    with pytest.raises(ProtectedCollection):
        db.privata_audit.delete_many({})

    # auditors read it, through the same handles
    trail = db["privata_audit"]
    assert [r["operation"] for r in trail.find({}, sort=[("seq", 1)])] == ["create", "read"]
    assert trail.count_documents({"actor": "dr.lee"}) == 2
    assert "privata_subject" in trail.index_information()
    assert verify(audit_collection(db)).ok  # nothing above reached the server


def test_the_app_cannot_write_the_key_vault_or_its_tombstones(connected: Any) -> None:
    Patient = _patient()
    with access_context(actor="dr.lee"):
        Patient(first_name="Ada", email="ada@x.org").save()
    client = pm.get_connection()
    database, _, vault = current().key_vault_namespace.partition(".")
    keys_before = connected.client[database][vault].count_documents({})
    for name in (vault, vault + ".tombstones"):
        for operation, call in _collection_writes(client[database][name]).items():
            with pytest.raises(ProtectedCollection) as caught:
                call()
            assert "privata_mongo.encryption" in caught.value.operator_handle, operation
        with pytest.raises(ProtectedCollection):
            client[database].drop_collection(name)
        with pytest.raises(ProtectedCollection):
            client[database].command("drop", name)
    with pytest.raises(ProtectedCollection):
        client.drop_database(database)
    with pytest.raises(ProtectedCollection):
        client[database].command("dropDatabase")
    assert connected.client[database][vault].count_documents({}) == keys_before > 0
    with access_context(actor="dr.lee"):
        assert Patient.objects.get(first_name="Ada").email == "ada@x.org"


async def test_the_beanie_database_cannot_write_the_audit_trail(backend: Backend) -> None:
    import pymongo
    from mongomock.store import ServerStore

    from privata_mongo.embedded import AsyncMockClient

    class GuardMember(pb.Document):
        first_name: str
        email: str

        class Settings:
            name = "guard_members"

    client: Any = (
        AsyncMockClient(ServerStore())
        if backend.uri is None
        else pymongo.AsyncMongoClient(backend.uri)
    )
    try:
        await pb.init_beanie(database=client[backend.db_name], document_models=[GuardMember])
        with access_context(actor="dr.lee"):
            await GuardMember(first_name="Ada", email="ada@x.org").insert()
        proxy = GuardMember.get_pymongo_collection().database
        trail = proxy["privata_audit"]
        for call in _collection_writes(trail).values():
            with pytest.raises(ProtectedCollection):
                await call()
        with pytest.raises(ProtectedCollection):
            await proxy.drop_collection("privata_audit")
        with pytest.raises(ProtectedCollection):
            await proxy.command("drop", "privata_audit")
        database, _, vault = current().key_vault_namespace.partition(".")
        with pytest.raises(ProtectedCollection):
            await proxy.client[database][vault].delete_many({})
        with pytest.raises(ProtectedCollection):
            await proxy.client.drop_database(database)
        assert await trail.count_documents({}) == 1
        assert (await trail.find_one({}))["operation"] == "create"
    finally:
        await client.drop_database(backend.db_name)
        await client.close()
