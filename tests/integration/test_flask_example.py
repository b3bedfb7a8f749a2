"""The Flask + mongoengine example (``examples/flask_app``): a whole service, on each backend.

Through Flask's test client, as its own tests would be written, and once as a real server in a
subprocess (``flask --app examples.flask_app.app run``), the way its README starts it.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mongoengine
import pytest

from examples.flask_app.app import create_app
from testkit.backends import Backend
from testkit.storage_scan import mentions

GATEWAY = {"X-Actor": "dr.lee", "X-Purpose": "treatment", "X-Legal-Basis": "art9_2h"}
DPO = {"X-Actor": "dpo", "X-Purpose": "subject request", "X-Legal-Basis": "art6_1c"}
ADA = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.org",
    "phone": "+44 20 7946 0000",
    "date_of_birth": "1990-12-10",
    "blood_type": "O+",
    "allergies": ["penicillin"],
}


@pytest.fixture
def service(backend: Backend) -> Iterator[tuple[Any, Any]]:
    """The example's test client on this backend's database, and the raw database."""
    app = create_app({**backend.mongoengine_settings(), "db": backend.db_name})
    raw_client = backend.client()
    try:
        yield app.test_client(), raw_client[backend.db_name]
    finally:
        mongoengine.disconnect()
        raw_client.close()


def _create(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/patients", json=body, headers=GATEWAY)
    assert response.status_code == 201, response.json
    return dict(response.json)


def test_patients_are_stored_split_and_read_back_whole(service: tuple[Any, Any]) -> None:
    client, raw = service
    ada = _create(client, ADA)
    assert client.get(f"/patients/{ada['id']}", headers=GATEWAY).json == ada
    assert client.get(
        "/patients", query_string={"email": "ADA@example.org"}, headers=GATEWAY
    ).json == [ada]
    (row,) = raw["patients"].find({})
    assert set(row) == {"_id", "blood_type", "allergies", "_pseudonym"}
    identity = raw["patients__identity"].find_one({"_id": row["_pseudonym"]})
    stored = repr(identity)
    assert "Ada" not in stored
    assert "ada@example.org" not in stored
    actors = {r.get("actor") for r in raw["privata_audit"].find({"operation": {"$exists": True}})}
    assert "dr.lee" in actors


def test_visits_reference_the_patient_and_belong_to_its_data(service: tuple[Any, Any]) -> None:
    client, raw = service
    ada = _create(client, ADA)
    visit = client.post(
        f"/patients/{ada['id']}/visits",
        json={"at": "2026-11-30T09:00:00", "reason": "check-up", "duration_min": 20},
        headers=GATEWAY,
    )
    assert visit.status_code == 201
    assert [
        v["reason"] for v in client.get(f"/patients/{ada['id']}/visits", headers=GATEWAY).json
    ] == ["check-up"]
    held = client.get(f"/patients/{ada['id']}/access", headers=DPO).json
    assert held["documents"]["Patient"][0]["email"] == "ada@example.org"
    assert [v["reason"] for v in held["documents"]["Visit"]] == ["check-up"]
    assert {"dr.lee"} <= {r["actor"] for r in held["processing"]}
    assert raw["privata_audit"].count_documents({"operation": "access", "actor": "dpo"}) >= 1


def test_export_downloads_each_format(service: tuple[Any, Any]) -> None:
    client, _ = service
    ada = _create(client, ADA)
    as_json = client.get(f"/patients/{ada['id']}/export", headers=DPO)
    assert as_json.headers["Content-Disposition"].endswith(f'patient-{ada["id"]}.json"')
    assert "ada@example.org" in as_json.get_data(as_text=True)
    as_csv = client.get(
        f"/patients/{ada['id']}/export", query_string={"format": "csv"}, headers=DPO
    )
    with zipfile.ZipFile(io.BytesIO(as_csv.data)) as archive:
        assert any(name.startswith("Patient") for name in archive.namelist())
    assert (
        client.get(
            f"/patients/{ada['id']}/export", query_string={"format": "pdf"}, headers=DPO
        ).status_code
        == 422
    )


def test_rectify_restrict_and_object_are_one_call_each(service: tuple[Any, Any]) -> None:
    client, raw = service
    ada = _create(client, ADA)
    fixed = client.patch(
        f"/patients/{ada['id']}/rectify", json={"email": "ada@new.example.org"}, headers=DPO
    )
    assert fixed.json["email"] == "ada@new.example.org"
    assert client.post(f"/patients/{ada['id']}/restrict", headers=DPO).json == {"marked": 1}
    assert client.get(f"/patients/{ada['id']}", headers=GATEWAY).status_code == 404
    assert client.get("/patients", headers=GATEWAY).json == []
    assert client.delete(f"/patients/{ada['id']}/restrict", headers=DPO).json == {"marked": 1}
    assert client.get(f"/patients/{ada['id']}", headers=GATEWAY).status_code == 200
    client.post(f"/patients/{ada['id']}/object/research", headers=DPO)
    research = {**GATEWAY, "X-Purpose": "research", "X-Legal-Basis": "art9_2j"}
    assert client.get("/patients", headers=research).json == []
    assert len(client.get("/patients", headers=GATEWAY).json) == 1
    operations = {r["operation"] for r in raw["privata_audit"].find({"actor": "dpo"})}
    assert {"rectify", "restrict", "lift_restriction", "object"} <= operations


def test_erasure_answers_a_receipt_and_leaves_the_visits(service: tuple[Any, Any]) -> None:
    client, raw = service
    ada = _create(client, ADA)
    client.post(
        f"/patients/{ada['id']}/visits",
        json={"at": "2026-11-30T09:00:00", "reason": "check-up"},
        headers=GATEWAY,
    )
    erased = client.post(f"/patients/{ada['id']}/erase", headers=DPO)
    assert erased.status_code == 200, erased.json
    receipt = erased.json
    assert receipt["models"]["Patient"]["identity_deleted"] == 1
    assert receipt["models"]["Visit"]["clinical_kept"] == 1
    assert receipt["key_shredded"] is True
    assert client.get(f"/patients/{ada['id']}", headers=GATEWAY).status_code == 404
    assert raw["patients__identity"].count_documents({}) == 0
    assert raw["visits"].count_documents({"reason": "check-up"}) == 1
    assert raw["privata_erasures"].find_one({"_id": receipt["pseudonym"]})["state"] == "done"
    assert client.post(f"/patients/{ada['id']}/erase", headers=DPO).status_code == 404


def test_errors_never_echo_personal_data(service: tuple[Any, Any]) -> None:
    client, _ = service
    _create(client, ADA)
    duplicate = client.post("/patients", json={**ADA, "first_name": "Eve"}, headers=GATEWAY)
    assert duplicate.status_code == 409
    invalid = client.post("/patients", json={**ADA, "email": "ada-at-example"}, headers=GATEWAY)
    assert invalid.status_code == 422
    assert invalid.json["fields"] == ["email"]
    for response in (duplicate, invalid):
        text = response.get_data(as_text=True)
        assert not mentions(text, "ada")
        assert "Eve" not in text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_example_runs_as_its_readme_starts_it(tmp_path: Path) -> None:
    """``flask --app examples.flask_app.app run`` on the embedded backend, over HTTP."""
    port = _free_port()
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("MONGODB_URI", None)
    flask = Path(sys.executable).with_name("flask")
    server = subprocess.Popen(  # noqa: S603 - the project's own example
        [str(flask), "--app", "examples.flask_app.app", "run", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/patients", timeout=2)  # noqa: S310 - loopback
                break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "the example did not start"
                time.sleep(0.2)
        body = json.dumps(ADA).encode()
        post = urllib.request.Request(  # noqa: S310 - loopback
            f"{base}/patients", data=body, headers={"Content-Type": "application/json", **GATEWAY}
        )
        with urllib.request.urlopen(post, timeout=10) as response:  # noqa: S310 - loopback
            created = json.load(response)
        assert response.status == 201
        read = urllib.request.Request(f"{base}/patients/{created['id']}", headers=GATEWAY)  # noqa: S310 - loopback
        with urllib.request.urlopen(read, timeout=10) as response:  # noqa: S310 - loopback
            assert json.load(response) == created
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stderr is not None:
            server.stderr.close()
