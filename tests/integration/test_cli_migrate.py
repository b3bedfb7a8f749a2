"""``privata-mongo migrate``, ``migrate verify`` and ``unmigrate``: reports and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import ObjectId

from privata_mongo.cli._common import (
    EXIT_CHECK_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from testkit.backends import Backend
from testkit.cli import run_cli

MODELS = """
import privata_mongo.mongoengine as me


class CliMigPatient(me.Document):
    full_name = me.StringField()
    email = me.EmailField(searchable=True)
    ward = me.StringField()
    meta = {"collection": "cli_mig_patient"}


class CliMigNote(me.Document):
    text = me.StringField()
    meta = {"collection": "cli_mig_note"}
"""

NAME = "cli_mig_patient"


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "cli_mig_models.py").write_text(MODELS)
    monkeypatch.chdir(tmp_path)
    return "cli_mig_models"


@pytest.fixture
def source(connected: Any) -> list[bytes]:
    docs = [
        {"_id": ObjectId(), "full_name": f"Name {i}", "email": f"n{i}@example.org", "ward": "A"}
        for i in range(5)
    ]
    connected[NAME].insert_many(docs)
    return _stored(connected)


def _stored(db: Any) -> list[bytes]:
    return sorted(bson.encode(d) for d in db[NAME].find({}))


def test_dry_run_reports_fields_and_writes_nothing(
    connected: Any, backend: Backend, models: str, source: list[bytes]
) -> None:
    result = run_cli(
        "migrate",
        "--models",
        models,
        "--db",
        backend.db_name,
        "--dry-run",
        "--json",
        client=backend.client,
    )
    assert result.exit_code == EXIT_OK, result.output
    report = json.loads(result.stdout)
    assert report["dry_run"] is True
    (model,) = report["models"]  # the model without identity fields is not migrated
    assert model["model"] == "CliMigPatient"
    assert model["plaintext"] == 5
    assert model["fields"]["full_name"] == {"side": "identity", "documents": 5}
    assert model["fields"]["ward"]["side"] == "clinical"
    assert _stored(connected) == source
    text = run_cli(
        "migrate", "--models", models, "--db", backend.db_name, "--dry-run", client=backend.client
    )
    assert "cli_mig_patient__identity" in text.stdout
    assert "Name 1" not in text.output


def test_migrate_verify_and_unmigrate(
    connected: Any, backend: Backend, models: str, source: list[bytes]
) -> None:
    args = ("--models", f"{models}:CliMigPatient", "--db", backend.db_name)
    done = run_cli("migrate", *args, "--batch-size", "2", "--json", client=backend.client)
    assert done.exit_code == EXIT_OK, done.output
    (model,) = json.loads(done.stdout)["models"]
    assert (model["migrated"], model["batches"]) == (5, 3)
    assert "migrate CliMigPatient" in done.stderr  # the progress bar
    assert "docs/s" in done.stderr
    assert connected[NAME].count_documents({"_pseudonym": {"$exists": True}}) == 5
    audit = list(connected["privata_audit"].find({"operation": "migrate"}))
    assert {r["actor"] for r in audit} == {"privata-mongo"}
    assert {r["purpose"] for r in audit} == {"migration"}
    checked = run_cli("migrate", "verify", *args, "--json", client=backend.client)
    assert checked.exit_code == EXIT_OK, checked.output
    assert json.loads(checked.stdout)["ok"] is True
    again = run_cli("migrate", *args, "--json", client=backend.client)
    assert json.loads(again.stdout)["models"][0]["migrated"] == 0
    row = connected[NAME].find_one({})
    connected[NAME].update_one({"_id": row["_id"]}, {"$set": {"ward": "B"}})
    bad = run_cli("migrate", "verify", *args, client=backend.client)
    assert bad.exit_code == EXIT_CHECK_FAILED
    assert "Name" not in bad.output
    connected[NAME].update_one({"_id": row["_id"]}, {"$set": {"ward": "A"}})
    back = run_cli("unmigrate", *args, "--json", client=backend.client)
    assert back.exit_code == EXIT_OK, back.output
    assert json.loads(back.stdout)["models"][0]["restored"] == 5
    assert _stored(connected) == source


def test_usage_errors_exit_2(backend: Backend, models: str, tmp_path: Path) -> None:
    (tmp_path / "no_models_here.py").write_text("x = 1\n")
    assert run_cli("migrate", "--db", "x", client=backend.client).exit_code == EXIT_USAGE
    assert (
        run_cli("migrate", "--models", "no_models_here", client=backend.client).exit_code
        == EXIT_USAGE
    )
    assert run_cli("migrate", "--models", models, "--batch-size", "0").exit_code == EXIT_USAGE
    assert run_cli("unmigrate", "--models", f"{models}:Nope").exit_code == EXIT_USAGE


def test_refusals_exit_3(connected: Any, backend: Backend, models: str) -> None:
    plain = run_cli(
        "migrate",
        "--models",
        f"{models}:CliMigNote",
        "--db",
        backend.db_name,
        client=backend.client,
    )
    assert plain.exit_code == EXIT_REFUSED
    assert "nothing to migrate" in plain.output
    never = run_cli(
        "migrate", "verify", "--models", models, "--db", backend.db_name, client=backend.client
    )
    assert never.exit_code == EXIT_REFUSED
    assert "never migrated" in never.output


def test_an_unreachable_server_exits_4(models: str) -> None:
    result = run_cli(
        "migrate",
        "--models",
        models,
        "--uri",
        "mongodb://127.0.0.1:1/",
        "--db",
        "x",
        "--dry-run",
    )
    assert result.exit_code == EXIT_UNREACHABLE
    assert "cannot be reached" in result.output
