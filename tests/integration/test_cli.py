"""The ``privata-mongo`` command line: output, ``--json`` and the documented exit codes.

Commands that read a database run in-process through click's runner on every backend (the
runner hands the command the backend's client, the seam ``cli._common.Target.client`` offers);
one end-to-end run in a subprocess checks the installed entry point and its exit codes on a
server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import privata_mongo.mongoengine as pm
from compat_suite.requirements import requires
from privata_mongo import access_context
from privata_mongo.cli._common import (
    EXIT_CHECK_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from privata_mongo.config import current
from testkit.backends import Backend
from testkit.cli import run_cli

MODELS = """
import privata_mongo.mongoengine as me


class CliPatient(me.Document):
    full_name = me.StringField()
    email = me.EmailField(searchable=True)
    blood_type = me.StringField()
    meta = {"collection": "cli_patient"}


class CliNote(me.Document):
    text = me.StringField()
    meta = {"collection": "cli_note"}
"""

APP = """\
import mongoengine  # the app's own comment stays
from mongoengine import Document, StringField
from beanie import Document as BeanieDocument, init_beanie


class Visit(Document):
    reason = StringField()
"""


def test_classify_names_each_field_side_and_rule(tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "cli_models.py").write_text(MODELS)
    monkeypatch.chdir(tmp_path)
    result = run_cli("classify", "cli_models", "--json")
    assert result.exit_code == EXIT_OK, result.output
    models = {m["model"]: m for m in json.loads(result.output)["models"]}
    assert set(models) == {"CliPatient", "CliNote"}
    sides = {f["field"]: f["side"] for f in models["CliPatient"]["fields"]}
    assert sides == {
        "_id": "clinical",
        "full_name": "identity",
        "email": "identity",
        "blood_type": "clinical",
    }
    assert models["CliPatient"]["searchable"] == ["email"]
    assert models["CliNote"]["identity_collection"] is None
    text = run_cli("classify", "cli_models:CliPatient")
    assert text.exit_code == EXIT_OK
    assert "full_name: identity" in text.output
    assert "CliNote" not in text.output


def test_classify_of_nothing_is_a_usage_error(tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "empty_mod.py").write_text("x = 1\n")
    monkeypatch.chdir(tmp_path)
    assert run_cli("classify", "empty_mod").exit_code == EXIT_USAGE
    assert run_cli("classify", "no_such_module_here").exit_code == EXIT_USAGE
    assert run_cli("classify", "empty_mod:Nope").exit_code == EXIT_USAGE


def test_codemod_checks_rewrites_and_is_idempotent(tmp_path: Path) -> None:
    source = tmp_path / "app"
    source.mkdir()
    (source / "models.py").write_text(APP)
    (source / "other.py").write_text("import os\n")
    check = run_cli("codemod", str(source), "--check", "--json")
    assert check.exit_code == EXIT_CHECK_FAILED
    report = json.loads(check.output)
    assert report["files_scanned"] == 2
    assert report["files_changed"] == 1
    assert report["lines_changed"] == 3
    assert report["lines_scanned"] == len(APP.splitlines()) + 1
    assert (source / "models.py").read_text() == APP  # --check writes nothing
    diff = run_cli("codemod", str(source), "--diff")
    assert "+from privata_mongo.mongoengine import Document, StringField" in diff.output
    assert (source / "models.py").read_text() == APP
    assert run_cli("codemod", str(source)).exit_code == EXIT_OK
    rewritten = (source / "models.py").read_text()
    assert (
        "import privata_mongo.mongoengine as mongoengine  # the app's own comment stays"
        in rewritten
    )
    again = run_cli("codemod", str(source), "--check", "--json")
    assert again.exit_code == EXIT_OK
    assert json.loads(again.output)["files_changed"] == 0


def _audited_patients(connected: Any) -> None:
    class CliAudited(pm.Document):
        full_name = pm.StringField()
        ward = pm.StringField()
        meta = {"collection": "cli_audited"}

    with access_context(actor="dr.lee", purpose="treatment", legal_basis="art9_2h"):
        ann = CliAudited(full_name="Ann Smith", ward="A").save()
        CliAudited.objects.get(id=ann.id)
    with access_context(actor="billing", purpose="billing", legal_basis="art6_1b"):
        list(CliAudited.objects)


def test_audit_verify_passes_then_catches_a_tampered_record(
    connected: Any, backend: Backend
) -> None:
    _audited_patients(connected)
    client = backend.client
    ok = run_cli("audit", "verify", "--db", backend.db_name, "--json", client=client)
    assert ok.exit_code == EXIT_OK, ok.output
    verified = json.loads(ok.output)
    assert verified["ok"] is True
    assert verified["records"] >= 3
    first = connected["privata_audit"].find_one({"operation": "read"})
    connected["privata_audit"].update_one(
        {"_id": first["_id"]}, {"$set": {"actor": "someone else"}}
    )
    bad = run_cli("audit", "verify", "--db", backend.db_name, client=client)
    assert bad.exit_code == EXIT_CHECK_FAILED
    assert "problems" in bad.output
    assert "Ann" not in bad.output


def test_audit_query_filters_by_actor_purpose_and_time(connected: Any, backend: Backend) -> None:
    _audited_patients(connected)
    found = run_cli(
        "audit",
        "query",
        "--db",
        backend.db_name,
        "--actor",
        "billing",
        "--json",
        client=backend.client,
    )
    assert found.exit_code == EXIT_OK, found.output
    accesses = json.loads(found.output)["accesses"]
    assert accesses
    assert {a["actor"] for a in accesses} == {"billing"}
    by_purpose = run_cli(
        "audit",
        "query",
        "--db",
        backend.db_name,
        "--purpose",
        "treatment",
        "--json",
        client=backend.client,
    )
    assert {a["purpose"] for a in json.loads(by_purpose.output)["accesses"]} == {"treatment"}
    later = run_cli(
        "audit",
        "query",
        "--db",
        backend.db_name,
        "--since",
        "2999-01-01",
        "--json",
        client=backend.client,
    )
    assert json.loads(later.output)["accesses"] == []
    assert (
        run_cli(
            "audit", "query", "--db", backend.db_name, "--since", "yesterday", client=backend.client
        ).exit_code
        == EXIT_USAGE
    )
    table = run_cli("audit", "query", "--db", backend.db_name, client=backend.client)
    assert "dr.lee" in table.output
    assert "Ann" not in table.output


def test_keys_status_counts_subject_and_library_keys(connected: Any, backend: Backend) -> None:
    _audited_patients(connected)
    status = run_cli("keys", "status", "--json", client=backend.client)
    assert status.exit_code == EXIT_OK, status.output
    counts = json.loads(status.output)
    assert counts["vault"] == current().key_vault_namespace
    assert counts["subject_keys"] == 1
    assert counts["library_keys"] >= 1  # the key check and the audit chain key at least
    assert counts["keys"] == counts["subject_keys"] + counts["library_keys"]


def test_keys_create_master_prints_a_key_the_library_accepts() -> None:
    from privata_mongo.runtime.keys import decode_master_key

    result = run_cli("keys", "create-master", "--json")
    assert result.exit_code == EXIT_OK
    assert len(decode_master_key(json.loads(result.output)["master_key"], "test")) == 96


def test_rotate_without_the_new_key_in_the_environment_is_refused(monkeypatch: Any) -> None:
    monkeypatch.delenv("PRIVATA_NEW_MASTER_KEY", raising=False)
    result = run_cli("keys", "rotate", "--uri", "mongodb://127.0.0.1:1/")
    assert result.exit_code == EXIT_REFUSED


def test_the_entry_point_exits_4_when_the_server_is_unreachable(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("privata-mongo")
    done = subprocess.run(  # noqa: S603 - the project's own entry point
        [
            str(script),
            "audit",
            "verify",
            "--uri",
            "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200",
            "--db",
            "x",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == EXIT_UNREACHABLE, done.stderr
    assert "cannot be reached" in done.stderr


@requires("uri_from_another_process")
def test_the_entry_point_verifies_a_server_trail(connected: Any, backend: Backend) -> None:
    assert backend.uri is not None, "a backend reached from another process has a URI"
    _audited_patients(connected)
    script = Path(sys.executable).with_name("privata-mongo")
    args = [
        str(script),
        "audit",
        "verify",
        "--uri",
        backend.uri,
        "--db",
        backend.db_name,
        "--key-vault",
        current().key_vault_namespace,
    ]
    done = subprocess.run(  # noqa: S603 - the project's own entry point
        args, capture_output=True, text=True, timeout=120, check=False, env=dict(os.environ)
    )
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    assert "verify" in done.stdout


@requires("uri_from_another_process")
def test_the_entry_point_exits_1_on_a_tampered_server_trail(
    connected: Any, backend: Backend
) -> None:
    assert backend.uri is not None, "a backend reached from another process has a URI"
    _audited_patients(connected)
    first = connected["privata_audit"].find_one({"operation": "read"})
    connected["privata_audit"].update_one({"_id": first["_id"]}, {"$set": {"purpose": "other"}})
    script = Path(sys.executable).with_name("privata-mongo")
    done = subprocess.run(  # noqa: S603 - the project's own entry point
        [
            str(script),
            "audit",
            "verify",
            "--uri",
            backend.uri,
            "--db",
            backend.db_name,
            "--key-vault",
            current().key_vault_namespace,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(os.environ),
    )
    assert done.returncode == EXIT_CHECK_FAILED, done.stdout + done.stderr
    verified = json.loads(done.stdout)
    assert verified["ok"] is False
    assert verified["problems"]
    assert "Ann" not in done.stdout
