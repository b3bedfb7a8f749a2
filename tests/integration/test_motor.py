"""Motor databases through ``privata_mongo.beanie.init_beanie``: adapted to pymongo's async API.

Beanie 2 refuses a Motor database (it calls ``client.append_metadata``, which Motor answers with
a database of that name); privata's ``init_beanie`` wraps it in ``privata_mongo.adapters.motor``
first, so a Beanie app on Motor keeps working and its documents are stored split. Motor needs a
server: these tests run with ``--backend ferretdb`` (or mongodb) and are a declared gap
(``motor_server``, a strict xfail) on mongomock.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

import beanie
import pytest
from bson import ObjectId
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo.driver_info import DriverInfo
from pymongo.errors import DuplicateKeyError, OperationFailure

import privata_mongo.beanie as pb
from compat_suite.requirements import requires
from privata_mongo.adapters.motor import (
    MotorCommandCursorAdapter,
    MotorCursorAdapter,
    adapt_motor_database,
    is_motor_database,
)
from privata_mongo.core.schema import VERSION_FIELD
from privata_mongo.encryption import unseal_row
from testkit.backends import Backend

pytestmark = requires("motor_server")

PSEUDONYM = re.compile(r"^pseu_[0-9a-f]{32}$")


@pytest.fixture
async def motor_db(backend: Backend) -> AsyncIterator[Any]:
    """A Motor database on this test's database of the backend's server."""
    if backend.uri is None:
        pytest.fail(f"the {backend.name} backend has no server URI for Motor to connect to")
    client: Any = AsyncIOMotorClient(backend.uri)
    try:
        yield client[backend.db_name]
    finally:
        client.close()


def _models() -> tuple[Any, Any]:
    class Patient(pb.Document):
        first_name: str
        last_name: str
        email: Annotated[str, pb.Indexed(unique=True)]
        blood_type: str
        visits: int = 0

        class Settings:
            name = "motor_patients"

    class Ward(pb.Document):
        code: str
        beds: int

        class Settings:
            name = "motor_wards"

    return Patient, Ward


async def test_plain_beanie_refuses_a_motor_database_that_privata_accepts(motor_db: Any) -> None:
    Patient, _ = _models()
    # Beanie 2 calls client.append_metadata(...); Motor's client answers with a database.
    with pytest.raises(TypeError, match="MotorDatabase object is not callable"):
        await beanie.init_beanie(database=motor_db, document_models=[Patient])
    await pb.init_beanie(database=motor_db, document_models=[Patient])
    ada = await Patient(
        first_name="Ada", last_name="Lovelace", email="ada@example.org", blood_type="A+"
    ).insert()
    assert await Patient.find_one(Patient.last_name == "Lovelace") == ada


async def test_privata_init_beanie_runs_beanie_on_motor_and_splits(
    motor_db: Any, backend: Backend
) -> None:
    assert is_motor_database(motor_db)
    Patient, Ward = _models()
    await pb.init_beanie(database=motor_db, document_models=[Patient, Ward])

    ada = await Patient(
        first_name="Ada", last_name="Lovelace", email="ada@example.org", blood_type="A+"
    ).insert()
    await Patient.insert_many(
        [
            Patient(
                first_name="Grace", last_name="Hopper", email="grace@example.org", blood_type="O-"
            ),
            Patient(
                first_name="Alan",
                last_name="Turing",
                email="alan@example.org",
                blood_type="O-",
                visits=3,
            ),
        ]
    )
    await Ward(code="W1", beds=12).insert()

    # Reads: equality on the identity side, a regex and a sort evaluated in the process.
    found = await Patient.find_one(Patient.email == "ada@example.org")
    assert found is not None
    assert (found.id, found.first_name, found.blood_type) == (ada.id, "Ada", "A+")
    by_name = Patient.find({"last_name": {"$regex": "^(Hop|Tur)"}}).sort("+last_name")
    assert [p.first_name for p in await by_name.to_list()] == ["Grace", "Alan"]
    assert await Patient.find(Patient.blood_type == "O-").count() == 2

    # Updates on both sides, one document and many.
    await found.set({Patient.last_name: "King", Patient.visits: 1})
    await Patient.find(Patient.blood_type == "O-").inc({Patient.visits: 1})
    reread = await Patient.get(ada.id)
    assert reread is not None
    assert (reread.last_name, reread.visits) == ("King", 1)
    visits = {p.first_name: p.visits for p in await Patient.find_all().to_list()}
    assert visits == {"Ada": 1, "Grace": 1, "Alan": 4}

    # Aggregations, awaited as pymongo's: a split collection and a native one.
    groups = await Patient.aggregate(
        [{"$group": {"_id": "$blood_type", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}]
    ).to_list()
    assert groups == [{"_id": "A+", "n": 1}, {"_id": "O-", "n": 2}]
    kings = await Patient.aggregate([{"$match": {"last_name": "King"}}]).to_list()
    assert [row["email"] for row in kings] == ["ada@example.org"]
    assert await Ward.aggregate(
        [{"$group": {"_id": None, "beds": {"$sum": "$beds"}}}]
    ).to_list() == [{"_id": None, "beds": 12}]

    # A unique identity field stays unique; the error is pymongo's, as natively.
    with pytest.raises(DuplicateKeyError):
        await Patient(
            first_name="Eve", last_name="X", email="ada@example.org", blood_type="B+"
        ).insert()

    # Deletes take both halves.
    grace = await Patient.find_one(Patient.first_name == "Grace")
    assert grace is not None
    await grace.delete()
    assert await Patient.count() == 2

    # What Motor itself sees in the database: clinical rows without identity data, identity
    # rows keyed by pseudonyms, the model without identity fields stored natively.
    clinical = await motor_db["motor_patients"].find({}).to_list(None)
    identity = await motor_db["motor_patients__identity"].find({}).to_list(None)
    assert len(clinical) == len(identity) == 2
    for row in clinical:
        # ``_ver``: the write version both halves carry after an update (docs/reliability.md)
        assert set(row) - {VERSION_FIELD} == {"_id", "blood_type", "visits", "_pseudonym"}
        assert isinstance(row["_id"], ObjectId)
    raw_clinical = json.dumps([{"visits": r["visits"], "blood": r["blood_type"]} for r in clinical])
    for value in ("Ada", "King", "Lovelace", "Alan", "Turing", "example.org", "Grace"):
        assert value not in raw_clinical
    assert all(PSEUDONYM.match(row["_id"]) for row in identity)
    assert {row["_pseudonym"] for row in clinical} == {row["_id"] for row in identity}
    raw = backend.client()
    try:
        plain = [unseal_row(raw[backend.db_name], row) for row in identity]
    finally:
        raw.close()
    assert {row["email"] for row in plain} == {"ada@example.org", "alan@example.org"}
    (ward,) = await motor_db["motor_wards"].find({}, {"_id": 0}).to_list(None)
    assert ward == {"code": "W1", "beds": 12}
    names = await motor_db.list_collection_names()
    assert "motor_wards__identity" not in names
    assert "motor_patients__identity" in names


async def test_the_adapter_gives_motor_pymongos_async_shape(motor_db: Any) -> None:
    database = adapt_motor_database(motor_db)
    assert database.name == motor_db.name
    collection = database["shape"]
    assert collection.database is database
    await collection.insert_many([{"_id": i, "even": i % 2 == 0} for i in range(5)])

    cursor = collection.find({}).sort("_id", -1).skip(1).limit(3)
    assert isinstance(cursor, MotorCursorAdapter)
    assert cursor.collection is collection
    assert [d["_id"] for d in await cursor.to_list()] == [3, 2, 1]
    await cursor.rewind()
    assert [d["_id"] async for d in cursor] == [3, 2, 1]
    assert [d["_id"] for d in await cursor.clone().to_list(2)] == [3, 2]
    with pytest.raises(ValueError, match="greater than 0"):
        await collection.find({}).to_list(0)

    # aggregate and list_indexes are awaited and send their command then, as in pymongo.
    evens = await collection.aggregate([{"$match": {"even": True}}, {"$sort": {"_id": 1}}])
    assert isinstance(evens, MotorCommandCursorAdapter)
    assert [d["_id"] for d in await evens.to_list()] == [0, 2, 4]
    with pytest.raises(OperationFailure):
        await collection.aggregate([{"$noSuchStage": {}}])
    indexes = await collection.list_indexes()
    assert [index["name"] async for index in indexes] == ["_id_"]

    # The client: append_metadata as pymongo 4.14+ has it, close awaited.
    database.client.append_metadata(DriverInfo("privata-test", "0"))
    await database.drop_collection(collection)
    assert "shape" not in await database.list_collection_names()
    assert database == adapt_motor_database(motor_db)
