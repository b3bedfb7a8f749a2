"""``python -m privata_mongo.beanie.migrate``: Beanie's ``beanie migrate``, run split.

Beanie's command builds its own client and its own ``MigrationNode``, whose ``init_beanie`` is
Beanie's: a migration of a split model run with it reads clinical rows without their identity
fields and writes personal data in the clear. The facade's command takes the same options and
runs the facade's node. Here it runs, as an operator runs it, in a process of its own, a
migration renaming and changing an identity field; the new values end up encrypted, the old
field is gone, and the migration's reads and writes are audited under the access context given
on the command line.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Annotated, Any

import pymongo
import pytest
from pymongo import AsyncMongoClient

import privata_mongo.beanie as pb
from compat_suite.requirements import requires
from privata_mongo.audit import audit_collection
from privata_mongo.beanie import PII
from privata_mongo.config import current
from testkit.backends import Backend
from testkit.storage_scan import classified_values, plaintext_leaks

MIGRATION = """
from typing import Annotated

from privata_mongo.beanie import PII, Document, iterative_migration


class OldPatient(Document):
    first_name: str
    mail: Annotated[str, PII()]
    ward: str

    class Settings:
        name = "renamed_patient"


class NewPatient(Document):
    first_name: str
    email: str
    ward: str

    class Settings:
        name = "renamed_patient"


class Forward:
    @iterative_migration()
    async def mail_to_email(self, input_document: OldPatient, output_document: NewPatient):
        output_document.email = input_document.mail.lower()
"""


class OldPatient(pb.Document):
    first_name: str
    mail: Annotated[str, PII()]
    ward: str

    class Settings:
        name = "renamed_patient"


class NewPatient(pb.Document):
    first_name: str
    email: str
    ward: str

    class Settings:
        name = "renamed_patient"


def _command(backend: Backend, name: str, folder: Path, *extra: str) -> list[str]:
    assert backend.uri is not None
    return [
        sys.executable,
        "-m",
        "privata_mongo.beanie.migrate",
        "-uri",
        backend.uri,
        "-db",
        name,
        "-p",
        str(folder),
        "--no-use-transaction",
        *extra,
    ]


@requires("migration_runner")
@pytest.mark.asyncio(loop_scope="function")
async def test_the_migrate_command_renames_an_identity_field_encrypted_and_audited(
    backend: Backend, tmp_path: Path
) -> None:
    assert backend.uri is not None
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "20240101_mail_to_email.py").write_text(textwrap.dedent(MIGRATION), "utf-8")
    # what the application runs at start-up: the same key vault as this process
    (tmp_path / "clinic_settings.py").write_text(
        "import privata_mongo\n"
        f"privata_mongo.configure(key_vault_namespace={current().key_vault_namespace!r})\n",
        "utf-8",
    )
    name = f"migrate_{uuid.uuid4().hex[:8]}"
    client: AsyncMongoClient[Any] = AsyncMongoClient(backend.uri, uuidRepresentation="standard")
    raw = pymongo.MongoClient(backend.uri, uuidRepresentation="standard")
    try:
        await pb.init_beanie(database=client[name], document_models=[OldPatient])
        await OldPatient(first_name="Ada", mail="Ada@Example.org", ward="A").insert()
        await OldPatient(first_name="Alan", mail="Alan@Example.org", ward="B").insert()

        done = await asyncio.to_thread(
            subprocess.run,
            _command(
                backend,
                name,
                folder,
                "--settings-module",
                "clinic_settings",
                "--actor",
                "dba",
                "--purpose",
                "schema-migration",
            ),
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "Ada@Example.org" not in done.stderr + done.stdout

        database = raw[name]
        clinical = list(database["renamed_patient"].find())
        assert sorted(row["ward"] for row in clinical) == ["A", "B"]
        assert all({"first_name", "mail", "email"}.isdisjoint(row) for row in clinical)
        values, malformed, _ = classified_values(raw, database)
        assert malformed == []
        assert {"ada@example.org", "alan@example.org"} <= values
        assert not {"Ada@Example.org", "Alan@Example.org"} & values  # the old values are gone
        assert plaintext_leaks(raw, database) == []

        await pb.init_beanie(database=client[name], document_models=[NewPatient])
        found = await NewPatient.find_all().sort("+first_name").to_list()
        assert [(p.first_name, p.email) for p in found] == [
            ("Ada", "ada@example.org"),
            ("Alan", "alan@example.org"),
        ]
        records = list(audit_collection(database).find())
        migration = [r for r in records if r["actor"] == "dba"]
        assert {r["purpose"] for r in migration} == {"schema-migration"}
        assert {r["operation"] for r in migration} >= {"read", "bulk_write"}
        written = [r for r in migration if r["operation"] == "bulk_write"]
        assert {"email", "mail"} <= {f for r in written for f in r["fields"]}  # set, and unset
        assert sum(len(r["subjects"]) for r in written) == 2
        assert not [r for r in records if "example.org" in repr(r).lower()]
    finally:
        await client.drop_database(name)
        await client.close()
        raw.close()


def test_the_migrate_command_takes_beanies_options(tmp_path: Path) -> None:
    from beanie.executors.migrate import migrate as native

    from privata_mongo.beanie.migrate import migrate

    ours = {option.name: option.opts for option in migrate.params}
    assert {o.name: o.opts for o in native.params}.items() <= ours.items()
    done = subprocess.run(
        [sys.executable, "-m", "privata_mongo.beanie.migrate", "--help"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for flag in ("--forward", "--backward", "--distance", "--connection-uri", "--path"):
        assert flag in done.stdout
