"""``privata-mongo report``: the compliance report of a database, on every backend.

A database is seeded through the facade with reads under several purposes, a break-glass
read, an objection, a restriction and an erasure; the report is rendered as HTML and Markdown
and checked against what is stored, and for what it must never hold (an identity value, an
external URL, a script).
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mongoengine
import pytest

import privata_mongo.mongoengine as pm
from privata_mongo import access_context
from privata_mongo.cli._common import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE
from privata_mongo.context import break_glass
from privata_mongo.core.report.markdown import SECTIONS
from privata_mongo.rights import Rights
from testkit.backends import Backend
from testkit.cli import run_cli

MODELS = """
import privata_mongo.mongoengine as me


class RepPatient(me.Document):
    full_name = me.StringField()
    email = me.EmailField(searchable=True)
    blood_type = me.StringField()
    meta = {"collection": "rep_patient", "privacy": {"erasure": "delete"}}


class RepNote(me.Document):
    patient = me.ReferenceField(RepPatient)
    text = me.StringField()
    meta = {"collection": "rep_note"}
"""

MODULE = "cli_report_models"
PEOPLE = [
    ("Ann Smith", "ann@example.org"),
    ("Bob Jones", "bob@example.org"),
    ("Cy Young", "cy@example.org"),
]
VALUES = tuple(v for person in PEOPLE for v in person)
REASON = "cardiac arrest in ward 3"


@dataclass
class Seeded:
    db: Any
    backend: Backend
    erased: str
    restricted: str
    objecting: str

    def report(self, *args: str) -> Any:
        return run_cli(
            "report",
            "--models",
            MODULE,
            "--db",
            self.backend.db_name,
            *args,
            client=self.backend.client,
        )


@pytest.fixture
def seeded(backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Seeded]:
    (tmp_path / f"{MODULE}.py").write_text(MODELS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    models = importlib.import_module(MODULE)
    pm.connect(db=backend.db_name, **backend.mongoengine_settings())
    try:
        with access_context(actor="frontdesk", purpose="registration", legal_basis="art6_1b"):
            patients = [
                models.RepPatient(full_name=n, email=e, blood_type="A+").save() for n, e in PEOPLE
            ]
            for p in patients:
                models.RepNote(patient=p, text="seen").save()
        with access_context(actor="dr.lee", purpose="treatment", legal_basis="art9_2h"):
            list(models.RepPatient.objects)
            list(models.RepNote.objects)
        with access_context(actor="billing", purpose="billing", legal_basis="art6_1b"):
            models.RepPatient.objects.count()
        with (
            access_context(purpose="treatment", legal_basis="art9_2c"),
            break_glass(actor="dr.night", reason=REASON),
        ):
            list(models.RepPatient.objects(blood_type="A+"))
        rights = Rights([models.RepPatient, models.RepNote])
        with access_context(actor="dpo", purpose="data-subject-request", legal_basis="art6_1c"):
            erased, restricted, objecting = (rights.pseudonym(_subject(p)) for p in patients)
            rights.erase(erased)
            rights.restrict(restricted)
            rights.object(objecting, "research")
    finally:
        mongoengine.disconnect()
    raw = backend.client()
    try:
        yield Seeded(raw[backend.db_name], backend, erased, restricted, objecting)
    finally:
        raw.close()


def _subject(patient: Any) -> Any:
    from privata_mongo.rights import Subject

    return Subject(model="RepPatient", id=patient.id)


def _no_values(text: str) -> None:
    for value in VALUES:
        assert value not in text
        assert value.split("@")[0] + "@" not in text


def test_the_html_report_is_self_contained_complete_and_holds_no_identity_value(
    seeded: Seeded, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    done = seeded.report("--format", "html", "--out", str(out), "--json")
    assert done.exit_code == EXIT_OK, done.output
    assert json.loads(done.stdout) == {"audit_ok": True, "format": "html", "out": str(out)}
    page = out.read_text()
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert not re.search(r"url\(", page)  # no stylesheet reference either
    for anchor, title in SECTIONS:
        assert f'<section id="{anchor}"><h2>{title}</h2>' in page
    _no_values(page)
    assert "<svg" in page
    for purpose in ("registration", "treatment", "billing", "data-subject-request"):
        assert purpose in page
    assert REASON in page
    assert seeded.erased in page
    assert "RepPatient" in page
    assert "email" in page  # field names, not their values


def test_the_report_counts_what_is_stored(seeded: Seeded) -> None:
    done = seeded.report("--json")
    assert done.exit_code == EXIT_OK, done.output
    found = json.loads(done.stdout)
    operations = seeded.db["privata_audit"].count_documents({"operation": {"$exists": True}})
    assert found["audit"]["ok"] is True
    assert found["audit"]["records"] == operations
    assert sum(sum(c) for c in found["timeline"]["series"].values()) == operations
    keys = found["keys"]
    assert (keys["subject_keys"], keys["shredded"], keys["restored"]) == (2, 1, 0)
    assert (found["erasures_done"], found["erasures_pending"]) == (1, 0)
    (erasure,) = found["erasures"]
    assert (erasure["pseudonym"], erasure["state"], erasure["actor"]) == (
        seeded.erased,
        "done",
        "dpo",
    )
    assert (erasure["deleted"], erasure["kept"]) == (2, 1)  # identity row and patient; the note
    restrictions = {r["model"]: r for r in found["restrictions"]}
    assert restrictions["RepPatient"]["restricted"] == seeded.db["rep_patient"].count_documents(
        {"_rst.r": True}
    )
    assert restrictions["RepPatient"]["restricted"] == 1
    assert restrictions["RepPatient"]["objections"] == {"research": 1}
    (glass,) = [b for b in found["break_glass"] if b["model"] == "RepPatient"]
    assert (glass["actor"], glass["reason"], glass["purpose"]) == ("dr.night", REASON, "treatment")
    storage = {m["model"]: m for m in found["models"]}
    sides = {f["field"]: f["side"] for f in storage["RepPatient"]["fields"]}
    assert sides["email"] == "identity"
    assert sides["blood_type"] == "clinical"
    assert found["processing"]["databases"] == [seeded.backend.db_name]
    _no_values(done.stdout)


def test_the_markdown_report_has_every_section(seeded: Seeded) -> None:
    done = seeded.report()
    assert done.exit_code == EXIT_OK, done.output
    for _, title in SECTIONS:
        assert f"\n## {title}\n" in done.stdout
    assert "**intact**" in done.stdout
    _no_values(done.stdout)


def test_a_tampered_trail_is_reported_with_exit_code_1(seeded: Seeded, tmp_path: Path) -> None:
    first = seeded.db["privata_audit"].find_one({"operation": "read"})
    seeded.db["privata_audit"].update_one({"_id": first["_id"]}, {"$set": {"purpose": "other"}})
    out = tmp_path / "report.html"
    done = seeded.report("--format", "html", "--out", str(out))
    assert done.exit_code == EXIT_CHECK_FAILED
    assert "problems" in out.read_text()


def test_report_usage_errors(seeded: Seeded) -> None:
    assert seeded.report("--format", "pdf").exit_code == EXIT_USAGE
    no_models = run_cli("report", "--db", seeded.backend.db_name, client=seeded.backend.client)
    assert no_models.exit_code == EXIT_USAGE
