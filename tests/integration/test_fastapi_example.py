"""The FastAPI example (examples/fastapi_app) through its ASGI interface, on every backend.

The app runs with its real lifespan (``asgi_lifespan.LifespanManager``) on the backend's
database: the embedded backend for mongomock, ``AsyncMongoClient`` for a server. Every test ends
by looking at what is really stored: identity data only on the identity side, keyed by pseudonyms.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import AsyncMongoClient

import privata_mongo.beanie as pb
from compat_suite.requirements import requires
from examples.fastapi_app.app import MONGODB_URI_ENV, create_app
from testkit.backends import Backend
from testkit.storage_scan import mentions

PSEUDONYM = re.compile(r"^pseu_[0-9a-f]{32}$")
IDENTITY_FIELDS = {"first_name", "last_name", "email", "date_of_birth", "phone", "address"}
PUBLIC_FIELDS = IDENTITY_FIELDS | {"id", "blood_type", "allergies", "visits"}

ADA: dict[str, Any] = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "Ada@Example.org",
    "date_of_birth": "1815-12-10",
    "phone": "+44 20 7946 0000",
    "address": {
        "street": "12 St James's Square",
        "city": "London",
        "postcode": "SW1Y 4JH",
        "country": "GB",
    },
    "blood_type": "A+",
    "allergies": ["penicillin"],
}
GRACE: dict[str, Any] = {
    "first_name": "Grace",
    "last_name": "Hopper",
    "email": "grace@example.org",
    "date_of_birth": "1906-12-09",
    "blood_type": "O-",
}
ALAN: dict[str, Any] = {
    "first_name": "Alan",
    "last_name": "Turing",
    "email": "alan@example.org",
    "date_of_birth": "1912-06-23",
    "blood_type": "O-",
    "allergies": ["pollen"],
}
VALUES = (
    "Ada",
    "Lovelace",
    "ada@example.org",
    "Grace",
    "Hopper",
    "Alan",
    "Turing",
    "example.org",
    "London",
    "7946",
    "James",
)


@pytest.fixture
async def database(backend: Backend) -> AsyncIterator[Any]:
    """The application's own (unproxied) database: what the tests read raw storage from."""
    if backend.uri is None:
        yield pb.embedded_database(backend.db_name)
        return
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(backend.uri)
    try:
        yield client[backend.db_name]
    finally:
        await client.close()


@pytest.fixture
async def api(database: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the example app, started (lifespan) on ``database``."""
    app = create_app(database)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def _create(api: httpx.AsyncClient, patient: dict[str, Any]) -> dict[str, Any]:
    response = await api.post("/patients", json=patient)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _stored_values(rows: list[dict[str, Any]]) -> str:
    """The rows as text, without their ids and links (random hex could spell "ada")."""
    links = {"_id", "_pseudonym", "patient_id"}
    return json.dumps(
        [{k: v for k, v in row.items() if k not in links} for row in rows], default=str
    )


async def _assert_stored_split(database: Any, patients: int) -> None:
    """Raw storage: clinical rows carry no identity field or value; identity rows are keyed by
    pseudonyms that the clinical rows point to; visits are stored natively."""
    clinical = await database["patients"].find({}).to_list()
    identity = await database["patients__identity"].find({}).to_list()
    assert len(clinical) == len(identity) == patients
    for row in clinical:
        assert not IDENTITY_FIELDS & set(row), row.keys()
        assert PSEUDONYM.match(row["_pseudonym"])
    raw = _stored_values(clinical) + _stored_values(await database["visits"].find({}).to_list())
    for value in VALUES:
        assert not mentions(raw, value), value
    assert all(PSEUDONYM.match(row["_id"]) for row in identity)
    assert {row["_pseudonym"] for row in clinical} == {row["_id"] for row in identity}


async def test_create_read_search_update_delete(api: httpx.AsyncClient, database: Any) -> None:
    ada = await _create(api, ADA)
    assert set(ada) == PUBLIC_FIELDS
    assert ada["email"] == "ada@example.org"  # normalised
    assert ada["address"]["city"] == "London"
    assert (ada["visits"], ada["allergies"]) == (0, ["penicillin"])
    grace = await _create(api, GRACE)
    await _create(api, ALAN)

    read = await api.get(f"/patients/{ada['id']}")
    assert read.status_code == 200
    assert read.json() == ada

    by_email = await api.get("/patients", params={"email": "ADA@example.org"})
    assert [p["id"] for p in by_email.json()] == [ada["id"]]
    assert (await api.get("/patients", params={"email": "nobody@example.org"})).json() == []

    by_prefix = await api.get("/patients", params={"last_name_prefix": "ho"})
    assert [p["first_name"] for p in by_prefix.json()] == ["Grace"]
    everyone = await api.get("/patients", params={"limit": 2})
    assert [p["last_name"] for p in everyone.json()] == ["Hopper", "Lovelace"]

    patched = await api.patch(
        f"/patients/{grace['id']}",
        json={"last_name": "Murray Hopper", "allergies": ["latex"], "phone": "+1 555 0100"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json() == {
        **grace,
        "last_name": "Murray Hopper",
        "allergies": ["latex"],
        "phone": "+1 555 0100",
    }
    assert (await api.get(f"/patients/{grace['id']}")).json() == patched.json()
    refused = await api.patch(f"/patients/{grace['id']}", json={"first_name": None})
    assert refused.status_code == 422

    visit = await api.post(
        f"/patients/{ada['id']}/visits", json={"at": "2024-03-01T09:30:00", "reason": "checkup"}
    )
    assert visit.status_code == 201, visit.text
    assert (await api.get(f"/patients/{ada['id']}")).json()["visits"] == 1
    visits = (await api.get(f"/patients/{ada['id']}/visits")).json()
    assert [v["reason"] for v in visits] == ["checkup"]

    await _assert_stored_split(database, patients=3)

    deleted = await api.delete(f"/patients/{ada['id']}")
    assert deleted.status_code == 204
    assert (await api.get(f"/patients/{ada['id']}")).status_code == 404
    assert (await api.delete(f"/patients/{ada['id']}")).status_code == 404
    assert await database["visits"].count_documents({}) == 0
    await _assert_stored_split(database, patients=2)


async def test_duplicate_email_is_a_conflict_without_personal_data(
    api: httpx.AsyncClient, database: Any
) -> None:
    await _create(api, ADA)
    twin = {**GRACE, "email": "ADA@example.org"}
    response = await api.post("/patients", json=twin)
    assert response.status_code == 409
    assert response.json()["detail"] == "another patient already has this value of a unique field"
    for value in (*VALUES, "1906", "O-"):
        assert not mentions(response.text, value), value
    assert (await api.get("/patients")).json()[0]["first_name"] == "Ada"
    await _assert_stored_split(database, patients=1)


@requires("duplicate_key_on_update")
async def test_duplicate_email_on_update_is_a_conflict(
    api: httpx.AsyncClient, database: Any
) -> None:
    await _create(api, ADA)
    grace = await _create(api, GRACE)
    response = await api.patch(f"/patients/{grace['id']}", json={"email": "ada@example.org"})
    assert response.status_code == 409
    assert not mentions(response.text, "ada")
    await _assert_stored_split(database, patients=2)


async def test_validation_errors_do_not_echo_the_input(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/patients", json={**ADA, "email": "ada-at-example", "_pseudonym": "x"}
    )
    assert response.status_code == 422
    assert {tuple(e["loc"]) for e in response.json()["detail"]} == {
        ("body", "email"),
        ("body", "_pseudonym"),
    }
    assert "ada-at-example" not in response.text
    assert "Lovelace" not in response.text
    assert (await api.get("/patients/not-an-id")).status_code == 422
    assert (await api.get("/patients/0123456789abcdef01234567")).status_code == 404


async def test_export_returns_the_joined_patient_and_visits(
    api: httpx.AsyncClient, database: Any
) -> None:
    ada = await _create(api, ADA)
    await api.post(
        f"/patients/{ada['id']}/visits", json={"at": "2024-03-01T09:30:00", "reason": "checkup"}
    )
    response = await api.get(f"/patients/{ada['id']}/export")
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment;")
    exported = response.json()
    assert exported["patient"] == {**ada, "visits": 1}
    assert [(v["reason"], v["patient_id"]) for v in exported["visits"]] == [("checkup", ada["id"])]
    assert "_pseudonym" not in response.text
    assert "pseu_" not in response.text
    await _assert_stored_split(database, patients=1)


DPO = {"X-Actor": "dpo", "X-Purpose": "subject request", "X-Legal-Basis": "art6_1c"}


async def _visit(api: httpx.AsyncClient, patient: dict[str, Any], reason: str) -> None:
    body = {"at": "2026-11-30T09:00:00", "reason": reason}
    assert (await api.post(f"/patients/{patient['id']}/visits", json=body)).status_code == 201


async def test_erasure_shreds_the_patient_and_keeps_its_visits_pseudonymised(
    api: httpx.AsyncClient, database: Any
) -> None:
    ada, grace = await _create(api, ADA), await _create(api, GRACE)
    await _visit(api, ada, "check-up")
    await _visit(api, grace, "flu")
    (row,) = await database["patients"].find({"blood_type": "A+"}).to_list()
    pseudonym = row["_pseudonym"]
    erased = await api.post(f"/patients/{ada['id']}/erase", headers=DPO)
    assert erased.status_code == 200, erased.text
    receipt = erased.json()
    assert receipt["pseudonym"] == pseudonym
    assert receipt["actor"] == "dpo"
    assert receipt["key_shredded"] is True
    assert receipt["models"]["Patient"]["identity_deleted"] == 1
    assert receipt["models"]["Patient"]["clinical_deleted"] == 1
    assert receipt["models"]["Visit"]["clinical_kept"] == 1
    assert len(receipt["digest"]) == 64
    assert (await api.get(f"/patients/{ada['id']}")).status_code == 404
    assert (await api.get(f"/patients/{grace['id']}")).json() == {**grace, "visits": 1}
    # stored state: the identity row and the key are gone, the visit stays, the log says so
    assert await database["patients__identity"].find_one({"_id": pseudonym}) is None
    assert await database["visits"].count_documents({"reason": "check-up"}) == 1
    assert (await database["privata_erasures"].find_one({"_id": pseudonym}))["state"] == "done"
    trail = await database["privata_audit"].find({"operation": "erase"}).to_list()
    assert {r["actor"] for r in trail} == {"dpo"}
    assert all(r["subjects"] == [pseudonym] for r in trail)
    assert "Ada" not in erased.text
    again = await api.post(f"/patients/{ada['id']}/erase", headers=DPO)
    assert again.status_code == 404  # the patient no longer exists for the service


async def test_rectify_restrict_and_object_are_one_call_each(
    api: httpx.AsyncClient, database: Any
) -> None:
    ada = await _create(api, ADA)
    fixed = await api.patch(
        f"/patients/{ada['id']}/rectify", json={"email": "ada@new.example.org"}, headers=DPO
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["email"] == "ada@new.example.org"
    invalid = await api.patch(f"/patients/{ada['id']}/rectify", json={"email": "nope"}, headers=DPO)
    assert invalid.status_code == 422
    restricted = await api.post(
        f"/patients/{ada['id']}/restrict", json={"allowed_purposes": ["legal_claims"]}, headers=DPO
    )
    assert restricted.json() == {"marked": 1}
    assert (await api.get(f"/patients/{ada['id']}")).status_code == 404
    claims = {**DPO, "X-Purpose": "legal_claims"}
    assert (await api.get(f"/patients/{ada['id']}", headers=claims)).status_code == 200
    assert (await api.delete(f"/patients/{ada['id']}/restrict", headers=DPO)).json() == {
        "marked": 1
    }
    assert (await api.get(f"/patients/{ada['id']}")).status_code == 200
    await api.post(f"/patients/{ada['id']}/object/research", headers=DPO)
    research = {"X-Actor": "lab", "X-Purpose": "research", "X-Legal-Basis": "art9_2j"}
    assert (await api.get("/patients", headers=research)).json() == []
    await api.delete(f"/patients/{ada['id']}/object/research", headers=DPO)
    assert len((await api.get("/patients", headers=research)).json()) == 1
    operations = {
        r["operation"] for r in await database["privata_audit"].find({"actor": "dpo"}).to_list()
    }
    assert {"rectify", "restrict", "lift_restriction", "object", "withdraw_objection"} <= operations


async def test_lifespan_opens_its_own_database(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a database: the embedded backend, or ``MONGODB_URI``'s default database."""
    if backend.uri is None:
        monkeypatch.delenv(MONGODB_URI_ENV, raising=False)
    else:
        monkeypatch.setenv(MONGODB_URI_ENV, backend.uri.rstrip("/") + "/" + backend.db_name)
    app = create_app()
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            ada = await _create(client, ADA)
            assert (await client.get(f"/patients/{ada['id']}")).json() == ada
    if backend.uri is not None:
        raw = backend.client()
        try:
            (row,) = raw[backend.db_name]["patients"].find({})
            assert set(row) == {"_id", "_pseudonym", "blood_type", "allergies", "visits"}
        finally:
            raw.close()


@requires("motor_server")
async def test_the_app_runs_on_a_motor_database(backend: Backend) -> None:
    if backend.uri is None:
        pytest.fail(f"the {backend.name} backend has no server URI for Motor to connect to")
    motor: Any = AsyncIOMotorClient(backend.uri)
    try:
        app = create_app(motor[backend.db_name])
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                ada = await _create(client, ADA)
                found = await client.get("/patients", params={"last_name_prefix": "love"})
                assert found.json() == [ada]
                assert (await client.post("/patients", json=ADA)).status_code == 409
        await _assert_stored_split(motor[backend.db_name], patients=1)
    finally:
        motor.close()


async def test_each_request_is_audited_under_the_gateways_access_context(
    api: httpx.AsyncClient, database: Any
) -> None:
    headers = {"X-Actor": "dr.lee", "X-Purpose": "treatment", "X-Request-Id": "req-42"}
    ada = (await api.post("/patients", json=ADA, headers=headers)).json()
    assert (await api.get(f"/patients/{ada['id']}", headers=headers)).status_code == 200
    records = await database["privata_audit"].find({"request_id": "req-42"}).to_list()
    assert [r["operation"] for r in records] == ["create", "read"]
    assert {(r["actor"], r["purpose"]) for r in records} == {("dr.lee", "treatment")}
    text = json.dumps(records, default=str)
    assert "Lovelace" not in text
    assert ada["id"] not in text
