"""``privata-mongo rights …`` for a Beanie application: the same commands, over AsyncRights.

The models module defines Beanie documents; each command connects them with ``init_beanie``
on an async client of the backend for its duration and answers the right through
``AsyncRights``, as the mongoengine commands do through ``Rights``. Stored state is asserted.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import privata_mongo.beanie as pb
from privata_mongo import access_context
from privata_mongo.cli._common import EXIT_OK, EXIT_USAGE
from privata_mongo.cli._request import async_twin
from privata_mongo.core.rights.restriction import RESTRICTION_FIELD
from privata_mongo.encryption import unseal_row
from testkit.backends import Backend
from testkit.cli import run_cli

MODELS = """
from typing import Annotated

import privata_mongo.beanie as pb


class CliBPatient(pb.Document):
    full_name: str
    email: Annotated[str, pb.PII(searchable=True)]
    ward: str = "A"
    visits: int = 0

    class Settings:
        name = "cli_b_patient"
        privacy = {"erasure": "delete"}


class CliBVisit(pb.Document):
    patient_id: pb.PydanticObjectId
    reason: str

    class Settings:
        name = "cli_b_visit"
        references = {"patient_id": "CliBPatient"}
        privacy = {"erasure": "delete"}
"""

MODULE = "cli_rights_beanie_models"
SEED = {"actor": "frontdesk", "purpose": "treatment", "legal_basis": "art9_2h"}


class World:
    def __init__(self, backend: Backend, raw: Any, ids: dict[str, Any]) -> None:
        self.backend, self.raw, self.ids = backend, raw, ids
        self.db = raw[backend.db_name]

    def cli(self, *args: str) -> Any:
        return run_cli(
            *args,
            "--models",
            MODULE,
            "--db",
            self.backend.db_name,
            "--actor",
            "dpo.jane",
            client=self.backend.client,
        )

    def pseudonym(self, name: str) -> str:
        row = self.db["cli_b_patient"].find_one({"_id": self.ids[name]})
        assert row is not None
        return str(row["_pseudonym"])


async def _seed(client: Any, database: str, models: Any) -> dict[str, Any]:
    await pb.init_beanie(
        database=client[database], document_models=[models.CliBPatient, models.CliBVisit]
    )
    with access_context(**SEED):
        ann = await models.CliBPatient(full_name="Ann Smith", email="ann@example.org").insert()
        bob = await models.CliBPatient(full_name="Bob Jones", email="bob@example.org").insert()
        await models.CliBVisit(patient_id=ann.id, reason="check-up").insert()
        await models.CliBVisit(patient_id=bob.id, reason="x-ray").insert()
    await client.close()
    return {"ann": ann.id, "bob": bob.id}


@pytest.fixture
def world(backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    (tmp_path / f"{MODULE}.py").write_text(MODELS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    models = importlib.import_module(MODULE)
    raw = backend.client()
    try:
        ids = asyncio.run(_seed(async_twin(raw), backend.db_name, models))
        yield World(backend, raw, ids)
    finally:
        raw.close()


def test_access_of_a_beanie_subject_by_id_and_by_searchable_field(world: World) -> None:
    done = world.cli("rights", "access", str(world.ids["ann"]), "--model", "CliBPatient", "--json")
    assert done.exit_code == EXIT_OK, done.output
    found = json.loads(done.output)
    assert found["pseudonym"] == world.pseudonym("ann")
    (patient,) = found["documents"]["CliBPatient"]
    assert patient["email"] == "ann@example.org"
    assert [v["reason"] for v in found["documents"]["CliBVisit"]] == ["check-up"]
    records = list(world.db["privata_audit"].find({"operation": "access"}))
    assert {(r["actor"], r["purpose"]) for r in records} == {("dpo.jane", "data-subject-request")}
    by_email = world.cli(
        "rights",
        "access",
        "bob@example.org",
        "--model",
        "CliBPatient",
        "--field",
        "email",
        "--json",
    )
    assert by_email.exit_code == EXIT_OK, by_email.output
    assert json.loads(by_email.output)["pseudonym"] == world.pseudonym("bob")


def test_rectify_restrict_and_erase_a_beanie_subject(world: World) -> None:
    ann = world.pseudonym("ann")
    fixed = world.cli(
        "rights", "rectify", ann, "--model", "CliBPatient", "--set", "ward=C", "--json"
    )
    assert fixed.exit_code == EXIT_OK, fixed.output
    row = world.db["cli_b_patient__identity"].find_one({"_id": ann})
    stored = world.db["cli_b_patient"].find_one({"_id": world.ids["ann"]})
    assert stored is not None
    assert row is not None
    assert "C" in (stored.get("ward"), unseal_row(world.db, row).get("ward"))
    restricted = world.cli("rights", "restrict", ann, "--json")
    assert restricted.exit_code == EXIT_OK, restricted.output
    visit = world.db["cli_b_visit"].find_one({"patient_id": world.ids["ann"]})
    assert visit is not None
    assert visit[RESTRICTION_FIELD]["r"] is True
    erased = world.cli("rights", "erase", ann, "--yes", "--json")
    assert erased.exit_code == EXIT_OK, erased.output
    assert json.loads(erased.output)["pseudonym"] == ann
    assert world.db["cli_b_patient__identity"].count_documents({"_id": ann}) == 0
    assert world.db["cli_b_patient"].count_documents({"_id": world.ids["ann"]}) == 0
    assert world.db["cli_b_visit"].count_documents({"patient_id": world.ids["ann"]}) == 0
    assert world.db["cli_b_visit"].count_documents({}) == 1  # Bob's
    entry = world.db["privata_erasures"].find_one({"_id": ann})
    assert entry is not None
    assert entry["state"] == "done"


def test_a_refused_beanie_rectification_shows_no_value(world: World) -> None:
    done = world.cli(
        "rights",
        "rectify",
        world.pseudonym("ann"),
        "--model",
        "CliBPatient",
        "--set",
        "visits=secret-value",
    )
    assert done.exit_code == EXIT_USAGE
    assert "secret-value" not in done.output


def test_a_module_of_no_document_is_a_usage_error(world: World, tmp_path: Path) -> None:
    (tmp_path / "cli_no_models.py").write_text("X = 1\n")
    done = run_cli(
        "rights",
        "access",
        "pseu_" + "a" * 32,
        "--models",
        "cli_no_models",
        "--actor",
        "dpo.jane",
        client=world.backend.client,
    )
    assert done.exit_code == EXIT_USAGE
    assert "Beanie" in " ".join(done.output.split())
