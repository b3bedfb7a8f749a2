"""The migration into new collections from the command line: migrate, verify, swap, leave."""

from __future__ import annotations

import json
from typing import Any

import bson
from bson import ObjectId

from privata_mongo.cli._common import EXIT_CHECK_FAILED, EXIT_OK, EXIT_REFUSED, EXIT_USAGE
from testkit.backends import Backend
from testkit.cli import run_cli

from .test_cli_migrate import NAME, _stored, models, source  # noqa: F401 - fixtures

INTO = NAME + "__split"


def _by_name(db: Any, name: str) -> list[bytes]:
    return sorted(bson.encode(d) for d in db[name].find({}))


def test_migrate_into_verify_swap_and_leave(
    connected: Any,
    backend: Backend,
    models: str,  # noqa: F811
    source: list[bytes],  # noqa: F811
) -> None:
    args = ("--models", f"{models}:CliMigPatient", "--db", backend.db_name)
    into = ("--into", INTO)
    done = run_cli("migrate", *args, *into, "--batch-size", "2", "--json", client=backend.client)
    assert done.exit_code == EXIT_OK, done.output
    (model,) = json.loads(done.stdout)["models"]
    assert (model["migrated"], model["batches"], model["collection"]) == (5, 3, INTO)
    assert model["identity_collection"] == INTO + "__identity"
    assert "docs/s" in done.stderr
    assert _stored(connected) == source  # only read
    connected[NAME].insert_one({"_id": ObjectId(), "full_name": "Late", "ward": "C"})
    bad = run_cli("migrate", "verify", *args, *into, client=backend.client)
    assert bad.exit_code == EXIT_CHECK_FAILED
    refused = run_cli("migrate", "swap", *args, *into, client=backend.client)
    assert refused.exit_code == EXIT_REFUSED
    assert "nothing was renamed" in refused.output
    assert "Late" not in refused.output
    again = run_cli("migrate", *args, *into, "--json", client=backend.client)
    assert json.loads(again.stdout)["models"][0]["migrated"] == 1
    checked = run_cli("migrate", "verify", *args, *into, "--json", client=backend.client)
    assert checked.exit_code == EXIT_OK, checked.output
    assert json.loads(checked.stdout)["models"][0]["sampled"] == 6
    swapped = run_cli("migrate", "swap", *args, *into, "--json", client=backend.client)
    assert swapped.exit_code == EXIT_OK, swapped.output
    (report,) = json.loads(swapped.stdout)["models"]
    assert (report["collection"], report["backup"]) == (NAME, NAME + "__plaintext")
    backup = _by_name(connected, NAME + "__plaintext")
    assert connected[NAME].count_documents({"_pseudonym": {"$exists": True}}) == 6
    assert run_cli("migrate", "verify", *args, client=backend.client).exit_code == EXIT_OK
    left = run_cli("unmigrate", *args, "--into", NAME + "__left", "--json", client=backend.client)
    assert left.exit_code == EXIT_OK, left.output
    assert json.loads(left.stdout)["models"][0]["restored"] == 6
    assert _by_name(connected, NAME + "__left") == backup


def test_into_names_one_model(backend: Backend, models: str) -> None:  # noqa: F811
    usage = run_cli(
        "migrate", "--models", models, "--into", "x", "--db", "d", client=backend.client
    )
    assert usage.exit_code == EXIT_USAGE
    assert "one model" in usage.output
    assert run_cli("migrate", "swap", "--models", f"{models}:CliMigPatient").exit_code == (
        EXIT_USAGE
    )


def test_a_resumed_run_rates_only_the_rows_it_did() -> None:
    from rich.progress import Task, TaskID

    from privata_mongo.cli._migrate import _Left, _Rate

    def task(**fields: Any) -> Task:
        made = Task(TaskID(0), "migrate", 100, 60, _get_time=lambda: 10.0, fields=fields)
        made.start_time = 0.0
        return made

    assert _Rate().render(task(start=50)).plain == "1 docs/s"
    assert _Left().render(task(start=50)).plain == "eta 0:00:40"
    assert _Rate().render(task()).plain == "6 docs/s"
    assert _Left().render(task(start=60)).plain == "eta -:--:--"
