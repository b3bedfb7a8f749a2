"""``privata-mongo rights …`` and ``retention enforce``: each right end to end, on every backend.

Each test seeds a database through the facade, runs the command through click's runner with
the backend's client, and asserts what is stored afterwards (raw collections, the erasure log,
the key vault, the audit trail), not only what the command printed.
"""

from __future__ import annotations

import datetime
import importlib
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mongoengine
import pytest

import privata_mongo.mongoengine as pm
from compat_suite.requirements import requires
from privata_mongo import access_context
from privata_mongo.cli._common import EXIT_OK, EXIT_REFUSED, EXIT_USAGE
from privata_mongo.config import current
from privata_mongo.core.rights.restriction import RESTRICTION_FIELD
from privata_mongo.encryption import unseal_row
from testkit.backends import Backend
from testkit.cli import run_cli

MODELS = """
import privata_mongo.mongoengine as me


class CliRPatient(me.Document):
    full_name = me.StringField()
    email = me.EmailField(searchable=True, unique=True)
    ward = me.StringField()
    visits = me.IntField(default=0)
    last_seen = me.DateTimeField()
    meta = {
        "collection": "cli_r_patient",
        "privacy": {
            "not_pii": ["last_seen"],
            "erasure": "delete",
            "retention": {"days": 365, "field": "last_seen", "then": "erase"},
        },
    }


class CliRVisit(me.Document):
    patient = me.ReferenceField(CliRPatient)
    reason = me.StringField()
    meta = {"collection": "cli_r_visit", "privacy": {"erasure": "delete"}}
"""

MODULE = "cli_rights_models"
SEED = {"actor": "frontdesk", "purpose": "treatment", "legal_basis": "art9_2h"}
NOW = datetime.datetime(2026, 6, 1)
ANN = {"full_name": "Ann Smith", "email": "ann@example.org", "ward": "A"}
BOB = {"full_name": "Bob Jones", "email": "bob@example.org", "ward": "B"}
VALUES = ("Ann Smith", "ann@example.org", "Bob Jones", "bob@example.org")


@dataclass
class World:
    """The seeded database, read raw, and the CLI arguments that reach it."""

    db: Any
    backend: Backend
    ann_id: Any
    ann: str
    bob: str

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

    def audit(self, operation: str) -> list[dict[str, Any]]:
        return list(self.db["privata_audit"].find({"operation": operation}, sort=[("seq", 1)]))


@pytest.fixture
def world(backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    (tmp_path / f"{MODULE}.py").write_text(MODELS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    models = importlib.import_module(MODULE)
    pm.connect(db=backend.db_name, **backend.mongoengine_settings())
    try:
        with access_context(**SEED):
            ann = models.CliRPatient(**ANN, last_seen=NOW - datetime.timedelta(days=400)).save()
            bob = models.CliRPatient(**BOB, last_seen=NOW - datetime.timedelta(days=3)).save()
            models.CliRVisit(patient=ann, reason="check-up").save()
            models.CliRVisit(patient=bob, reason="x-ray").save()
    finally:
        mongoengine.disconnect()
    raw = backend.client()
    db = raw[backend.db_name]
    pseudonyms = {d["_id"]: d["_pseudonym"] for d in db["cli_r_patient"].find()}
    try:
        yield World(db, backend, ann.id, pseudonyms[ann.id], pseudonyms[bob.id])
    finally:
        raw.close()


def _identity(world: World, pseudonym: str) -> dict[str, Any]:
    row = world.db["cli_r_patient__identity"].find_one({"_id": pseudonym})
    assert row is not None
    return unseal_row(world.db, row)


def _no_values(text: str) -> None:
    for value in VALUES:
        assert value not in text


def test_access_prints_the_subjects_data_and_is_audited(world: World) -> None:
    done = world.cli("rights", "access", str(world.ann_id), "--model", "CliRPatient", "--json")
    assert done.exit_code == EXIT_OK, done.output
    found = json.loads(done.output)
    assert found["pseudonym"] == world.ann
    (patient,) = found["documents"]["CliRPatient"]
    assert (patient["full_name"], patient["email"]) == (ANN["full_name"], ANN["email"])
    assert [v["reason"] for v in found["documents"]["CliRVisit"]] == ["check-up"]
    assert "Bob" not in done.output
    records = world.audit("access")
    assert {(r["actor"], r["purpose"], r["legal_basis"]) for r in records} == {
        ("dpo.jane", "data-subject-request", "art6_1c")
    }
    assert {r["model"] for r in records} == {"CliRPatient", "CliRVisit"}
    assert all(r["subjects"] == [world.ann] for r in records)


def test_access_finds_the_subject_by_a_searchable_field_read_from_stdin(
    world: World, tmp_path: Path
) -> None:
    out = tmp_path / "ann.json"
    done = run_cli(
        "rights",
        "access",
        "-",
        "--model",
        "CliRPatient",
        "--field",
        "email",
        "--out",
        str(out),
        "--models",
        MODULE,
        "--db",
        world.backend.db_name,
        "--actor",
        "dpo.jane",
        "--json",
        client=world.backend.client,
        input="bob@example.org\n",
    )
    assert done.exit_code == EXIT_OK, done.output
    status = json.loads(done.stdout)
    assert status == {
        "documents": {"CliRPatient": 1, "CliRVisit": 1},
        "out": str(out),
        "pseudonym": world.bob,
    }
    _no_values(done.stdout)
    assert json.loads(out.read_text())["documents"]["CliRPatient"][0]["email"] == BOB["email"]
    assert not out.with_name("ann.json.partial").exists()


def test_export_streams_each_format_to_a_file(world: World, tmp_path: Path) -> None:
    for fmt in ("json", "csv", "xml"):
        out = tmp_path / f"ann.{fmt}"
        done = world.cli(
            "rights", "export", world.ann, "--format", fmt, "--out", str(out), "--json"
        )
        assert done.exit_code == EXIT_OK, done.output
        status = json.loads(done.stdout)
        assert status["documents"] == {"CliRPatient": 1, "CliRVisit": 1}
        _no_values(done.stdout)
        data = out.read_bytes()
        if fmt == "csv":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                data = b"".join(archive.read(n) for n in archive.namelist())
        assert ANN["email"].encode() in data
        assert BOB["email"].encode() not in data
    exports = world.audit("export")
    assert sorted(r["model"] for r in exports) == ["CliRPatient"] * 3 + ["CliRVisit"] * 3
    assert {r["actor"] for r in exports} == {"dpo.jane"}
    to_stdout = world.cli("rights", "export", world.ann)
    assert to_stdout.exit_code == EXIT_OK
    assert json.loads(to_stdout.stdout)  # the export itself
    bad = world.cli("rights", "export", world.ann, "--format", "yaml")
    assert bad.exit_code == EXIT_USAGE


def test_rectify_changes_the_stored_identity_through_the_models_validation(world: World) -> None:
    done = world.cli(
        "rights",
        "rectify",
        world.ann,
        "--model",
        "CliRPatient",
        "--set",
        "full_name=Ann Smyth",
        "--set",
        "visits=3",
        "--json",
    )
    assert done.exit_code == EXIT_OK, done.output
    assert json.loads(done.stdout) == {
        "fields": ["full_name", "visits"],
        "id": str(world.ann_id),
        "model": "CliRPatient",
        "pseudonym": world.ann,
    }
    assert _identity(world, world.ann)["full_name"] == "Ann Smyth"
    assert world.db["cli_r_patient"].find_one({"_id": world.ann_id})["visits"] == 3
    (record,) = world.audit("rectify")
    assert record["fields"] == ["full_name", "visits"]
    invalid = world.cli(
        "rights", "rectify", world.ann, "--model", "CliRPatient", "--set", "email=not-an-email"
    )
    assert invalid.exit_code == EXIT_USAGE
    assert "email" in invalid.output
    assert "not-an-email" not in invalid.output
    assert _identity(world, world.ann)["email"] == ANN["email"]
    unknown = world.cli("rights", "rectify", world.ann, "--model", "CliRPatient", "--set", "x=1")
    assert unknown.exit_code == EXIT_REFUSED


@requires("duplicate_key_on_update")
def test_rectify_to_a_value_a_unique_field_holds_is_a_usage_error(world: World) -> None:
    taken = world.cli(
        "rights", "rectify", world.ann, "--model", "CliRPatient", "--set", f"email={BOB['email']}"
    )
    assert taken.exit_code == EXIT_USAGE
    assert "unique" in taken.output
    _no_values(taken.output)
    assert _identity(world, world.ann)["email"] == ANN["email"]


def test_a_refused_rectification_shows_no_value_on_any_server(world: World) -> None:
    taken = world.cli(
        "rights", "rectify", world.ann, "--model", "CliRPatient", "--set", f"email={BOB['email']}"
    )
    # 2 where the server reports the duplicate as such (11000), 3 where it does not
    assert taken.exit_code in (EXIT_USAGE, EXIT_REFUSED)
    assert "Traceback" not in taken.output
    _no_values(taken.output)
    assert _identity(world, world.ann)["email"] == ANN["email"]


def test_erase_needs_yes_without_a_terminal_then_shreds_and_prints_the_receipt(
    world: World,
) -> None:
    refused = world.cli("rights", "erase", world.ann)
    assert refused.exit_code == EXIT_USAGE
    assert "--yes" in refused.output
    assert world.db["cli_r_patient__identity"].count_documents({"_id": world.ann}) == 1
    done = world.cli("rights", "erase", world.ann, "--yes", "--json")
    assert done.exit_code == EXIT_OK, done.output
    receipt = json.loads(done.stdout)
    assert receipt["pseudonym"] == world.ann
    assert receipt["actor"] == "dpo.jane"
    assert receipt["key_shredded"] is True
    assert {m["model"]: m["clinical_deleted"] for m in receipt["models"]} == {
        "CliRPatient": 1,
        "CliRVisit": 1,
    }
    _no_values(done.stdout)
    assert world.db["cli_r_patient__identity"].count_documents({"_id": world.ann}) == 0
    assert world.db["cli_r_patient"].count_documents({"_pseudonym": world.ann}) == 0
    assert world.db["cli_r_visit"].count_documents({}) == 1
    assert world.db["privata_erasures"].find_one({"_id": world.ann})["state"] == "done"
    database, _, name = current().key_vault_namespace.partition(".")
    vault = world.db.client[database][name]
    assert vault.count_documents({"keyAltNames": world.ann}) == 0
    assert [r["outcome"] for r in world.audit("erase")] == ["ok", "ok"]
    text = world.cli("rights", "erase", world.ann, "--yes")  # again: the first receipt
    assert text.exit_code == EXIT_OK
    assert receipt["digest"] in text.output


def test_restrict_lift_object_and_withdraw_mark_the_stored_rows(world: World) -> None:
    def marks(collection: str = "cli_r_patient", **query: Any) -> dict[str, Any]:
        found = world.db[collection].find_one(query or {"_id": world.ann_id})
        return dict(found.get(RESTRICTION_FIELD) or {})

    done = world.cli("rights", "restrict", world.ann, "--allow", "legal-claims", "--json")
    assert done.exit_code == EXIT_OK, done.output
    status = json.loads(done.stdout)
    assert status == {
        "allowed_purposes": ["legal-claims"],
        "documents": status["documents"],
        "pseudonym": world.ann,
        "right": "restrict",
    }
    assert status["documents"] >= 1
    assert marks() == {"r": True, "a": ["legal-claims"]}
    assert marks("cli_r_visit", patient=world.ann_id)["r"] is True  # spread along the map
    assert (
        world.db["cli_r_patient"].find_one({"_pseudonym": world.bob}).get(RESTRICTION_FIELD) is None
    )
    assert world.cli("rights", "lift-restriction", world.ann).exit_code == EXIT_OK
    assert marks() == {}
    assert world.cli("rights", "object", world.ann).exit_code == EXIT_USAGE  # no --purpose
    objected = world.cli("rights", "object", world.ann, "--purpose", "marketing", "--json")
    assert objected.exit_code == EXIT_OK, objected.output
    assert json.loads(objected.stdout)["purpose"] == "marketing"
    assert marks() == {"o": ["marketing"]}
    withdrawn = world.cli("rights", "withdraw-objection", world.ann, "--purpose", "marketing")
    assert withdrawn.exit_code == EXIT_OK
    assert marks() == {"o": []}
    operations = {r["operation"] for r in world.db["privata_audit"].find({"actor": "dpo.jane"})}
    assert {"restrict", "lift_restriction", "object", "withdraw_objection"} <= operations


def test_consent_and_withdrawal_are_stored_in_the_consent_history(world: World) -> None:
    missing = world.cli("rights", "consent", world.bob, "--purpose", "research")
    assert missing.exit_code == EXIT_USAGE
    assert "--source" in missing.output
    given = world.cli(
        "rights",
        "consent",
        world.bob,
        "--purpose",
        "research",
        "--source",
        "web-form",
        "--notice-version",
        "v3",
        "--json",
    )
    assert given.exit_code == EXIT_OK, given.output
    assert json.loads(given.stdout)["right"] == "consent"
    withdrawn = world.cli("rights", "withdraw-consent", world.bob, "--purpose", "research")
    assert withdrawn.exit_code == EXIT_OK, withdrawn.output
    history = world.db[current().consent_collection].find({"subject": world.bob}, sort=[("at", 1)])
    assert [
        (e["event"], e["purpose"], e["source"], e["notice_version"], e["actor"]) for e in history
    ] == [
        ("given", "research", "web-form", "v3", "dpo.jane"),
        ("withdrawn", "research", None, None, "dpo.jane"),
    ]


def test_replay_erasures_removes_restored_rows_again(world: World) -> None:
    identity = world.db["cli_r_patient__identity"].find_one({"_id": world.ann})
    clinical = world.db["cli_r_patient"].find_one({"_id": world.ann_id})
    assert world.cli("rights", "erase", world.ann, "--yes").exit_code == EXIT_OK
    world.db["cli_r_patient__identity"].insert_one(identity)  # a backup restored
    world.db["cli_r_patient"].insert_one(clinical)
    done = world.cli("rights", "replay-erasures", "--json")
    assert done.exit_code == EXIT_OK, done.output
    (replayed,) = json.loads(done.stdout)["replayed"]
    assert replayed["pseudonym"] == world.ann
    assert replayed["removed"] == 2
    assert world.db["cli_r_patient__identity"].count_documents({"_id": world.ann}) == 0
    assert world.db["cli_r_patient"].count_documents({"_id": world.ann_id}) == 0
    replays = [r for r in world.audit("erase") if r["outcome"] == "replay"]
    assert {r["model"] for r in replays} == {"CliRPatient", "CliRVisit"}
    assert all(r["subjects"] == [world.ann] for r in replays)
    assert "replay erasures" in done.stderr  # the progress bar


def test_retention_enforce_erases_subjects_past_it(world: World) -> None:
    done = world.cli("retention", "enforce", "--now", NOW.isoformat(), "--json")
    assert done.exit_code == EXIT_OK, done.output
    (receipt,) = json.loads(done.stdout)["erased"]
    assert receipt["pseudonym"] == world.ann
    assert receipt["purpose"] == "retention"
    assert {r["_id"] for r in world.db["cli_r_patient__identity"].find()} == {world.bob}
    again = world.cli("retention", "enforce", "--now", NOW.isoformat(), "--json")
    assert json.loads(again.stdout)["erased"] == []
    assert world.audit("retention")[0]["subjects"] == [world.ann]


def test_usage_errors_and_refusals_have_their_exit_codes(world: World) -> None:
    no_actor = run_cli(
        "rights",
        "access",
        world.ann,
        "--models",
        MODULE,
        "--db",
        world.backend.db_name,
        client=world.backend.client,
    )
    assert no_actor.exit_code == EXIT_USAGE
    assert "--actor" in no_actor.output
    no_models = run_cli("rights", "access", world.ann, "--actor", "x", client=world.backend.client)
    assert no_models.exit_code == EXIT_USAGE
    assert world.cli("rights", "access", "ann@example.org").exit_code == EXIT_USAGE
    wrong_model = world.cli("rights", "access", "x", "--model", "Nope")
    assert wrong_model.exit_code == EXIT_USAGE
    unknown = world.cli("rights", "access", "pseu_" + "0" * 32)
    assert unknown.exit_code == EXIT_REFUSED
    nobody = world.cli("rights", "access", "eve@example.org", "--model", "CliRPatient",
                       "--field", "email")  # fmt: skip
    assert nobody.exit_code == EXIT_REFUSED
    assert "eve@example.org" not in nobody.output
    not_searchable = world.cli(
        "rights", "access", "Ann Smith", "--model", "CliRPatient", "--field", "full_name"
    )
    assert not_searchable.exit_code == EXIT_REFUSED
    assert "Ann Smith" not in not_searchable.output


def test_keys_list_shows_live_shredded_and_restored_keys_without_material(world: World) -> None:
    database, _, name = current().key_vault_namespace.partition(".")
    vault = world.db.client[database][name]
    ann_key = vault.find_one({"keyAltNames": world.ann})
    assert world.cli("rights", "erase", world.ann, "--yes").exit_code == EXIT_OK
    listed = run_cli("keys", "list", "--json", client=world.backend.client)
    assert listed.exit_code == EXIT_OK, listed.output
    keys = {k["name"]: k for k in json.loads(listed.stdout)["keys"]}
    assert keys[world.bob]["status"] == "live"
    assert keys[world.bob]["provider"] == "local"
    assert keys[world.bob]["created"]
    assert keys[world.ann]["status"] == "shredded"
    assert keys[world.ann]["shredded_at"]
    assert {k["status"] for n, k in keys.items() if not n.startswith("pseu_")} == {"live"}
    material = vault.find_one({"keyAltNames": world.bob})["keyMaterial"]
    assert bytes(material).hex() not in listed.stdout
    assert "keyMaterial" not in listed.stdout
    vault.insert_one(ann_key)  # a backup of the key vault restored
    restored = run_cli(
        "keys", "list", "--status", "restored", "--json", client=world.backend.client
    )
    assert [k["name"] for k in json.loads(restored.stdout)["keys"]] == [world.ann]
    table = run_cli("keys", "list", client=world.backend.client)
    assert world.bob in table.output
    bad = run_cli("keys", "list", "--status", "gone", client=world.backend.client)
    assert bad.exit_code == EXIT_USAGE
