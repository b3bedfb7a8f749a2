"""Beanie migrations through the facade keep a split model split.

Beanie's ``MigrationNode`` initialises each migration's models with Beanie's own
``init_beanie``; run that way, an iterative migration of a split model reads clinical rows
without their identity fields (and fails validation) or writes personal data in the clear. The
facade's node (``privata_mongo.beanie.migrations.runner.MigrationNode``) initialises them split.
"""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from beanie.migrations.database import DBHandler
from beanie.migrations.models import RunningDirections, RunningMode
from beanie.migrations.runner import MigrationNode as NativeMigrationNode
from privata_mongo.beanie.migrations.runner import MigrationNode
from pymongo import AsyncMongoClient

import privata_mongo.beanie as pb
from compat_suite.requirements import requires
from testkit.backends import Backend

pytestmark = pytest.mark.asyncio(loop_scope="function")

MIGRATION = """
from beanie import Document, iterative_migration


class Patient(Document):
    first_name: str
    email: str
    ward: str

    class Settings:
        name = "migrated_patient"


class Forward:
    @iterative_migration()
    async def move_ward(self, input_document: Patient, output_document: Patient):
        output_document.ward = input_document.ward + "-north"
"""


class Patient(pb.Document):
    first_name: str
    email: str
    ward: str

    class Settings:
        name = "migrated_patient"


async def _seed(backend: Backend, name: str) -> AsyncMongoClient[Any]:
    assert backend.uri is not None
    client: AsyncMongoClient[Any] = AsyncMongoClient(backend.uri, uuidRepresentation="standard")
    await pb.init_beanie(database=client[name], document_models=[Patient])
    await Patient(first_name="Ada", email="ada@example.org", ward="A").insert()
    await Patient(first_name="Alan", email="alan@example.org", ward="B").insert()
    return client


async def _migrate(node: type[Any], folder: Path, backend: Backend, name: str) -> None:
    DBHandler.set_db(backend.uri, name)
    try:
        root = await node.build(folder)
        mode = RunningMode(direction=RunningDirections.FORWARD, distance=0)
        await root.run(mode=mode, allow_index_dropping=False, use_transaction=False)
    finally:
        await DBHandler.get_cli().close()


@requires("migration_runner")
async def test_a_migration_run_through_the_facade_keeps_the_model_split(
    backend: Backend, tmp_path: Path
) -> None:
    (tmp_path / "20240101_ward.py").write_text(textwrap.dedent(MIGRATION), encoding="utf-8")
    name = f"migrations_{uuid.uuid4().hex[:8]}"
    client = await _seed(backend, name)
    try:
        with pytest.raises(Exception):  # noqa: B017, PT011 - whichever way native Beanie fails
            await _migrate(NativeMigrationNode, tmp_path, backend, name)
        assert {r["ward"] for r in await client[name]["migrated_patient"].find().to_list()} == {
            "A",
            "B",
        }

        await client[name]["migrations_log"].drop()
        await _migrate(MigrationNode, tmp_path, backend, name)

        clinical = await client[name]["migrated_patient"].find().to_list()
        assert sorted(row["ward"] for row in clinical) == ["A-north", "B-north"]
        assert all({"first_name", "email"}.isdisjoint(row) for row in clinical)
        await pb.init_beanie(database=client[name], document_models=[Patient])
        found = await Patient.find_all().sort("+first_name").to_list()
        assert [(p.first_name, p.email, p.ward) for p in found] == [
            ("Ada", "ada@example.org", "A-north"),
            ("Alan", "alan@example.org", "B-north"),
        ]
    finally:
        await client.drop_database(name)
        await client.close()
