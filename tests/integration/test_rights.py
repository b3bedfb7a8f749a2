"""The data-subject rights end to end, on both facades and every backend: the data map, access,
export and rectification, asserted on the stored rows and the audit trail."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
import zipfile
from typing import Annotated, Any

import mongoengine
import pydantic
import pytest

import privata_mongo.beanie as pb
import privata_mongo.mongoengine as pm
from compat_suite.requirements import requires
from privata_mongo import AsyncRights, Rights, UnknownSubject, access_context
from privata_mongo.audit import subject_of
from privata_mongo.encryption import unseal_row
from privata_mongo.rights import Subject
from testkit.backends import Backend, beanie_database

CONTEXT = {"actor": "dr.lee", "purpose": "subject request", "legal_basis": "GDPR Art. 15"}


def _models() -> dict[str, Any]:
    class RPatient(pm.Document):
        first_name = pm.StringField()
        email = pm.EmailField(pii=True, searchable=True)
        ward = pm.StringField()
        meta = {"collection": "r_patient"}

    class RVisit(pm.Document):
        patient = pm.ReferenceField(RPatient)
        reason = pm.StringField()
        meta = {"collection": "r_visit"}

    class RLab(pm.Document):
        visit = pm.LazyReferenceField(RVisit)
        value = pm.IntField()
        meta = {"collection": "r_lab"}

    class RTeam(pm.Document):
        members = pm.ListField(pm.ReferenceField(RPatient))
        meta = {"collection": "r_team"}

    return {c.__name__: c for c in (RPatient, RVisit, RLab, RTeam)}


@pytest.fixture
def world(connected: Any) -> dict[str, Any]:
    """Two patients; Ann holds a visit with two labs, and shares a team with Bob."""
    m = _models()
    with access_context(**CONTEXT):
        ann = m["RPatient"](first_name="Ann", email="ann@example.org", ward="A").save()
        bob = m["RPatient"](first_name="Bob", email="bob@example.org", ward="B").save()
        visit = m["RVisit"](patient=ann, reason="check-up").save()
        other = m["RVisit"](patient=bob, reason="flu").save()
        labs = [m["RLab"](visit=visit, value=v).save() for v in (1, 2)]
        m["RLab"](visit=other, value=9).save()
        team = m["RTeam"](members=[bob, ann]).save()
    return {
        "models": m,
        "db": connected,
        "ann": ann,
        "bob": bob,
        "expected": {
            "RPatient": {ann.id},
            "RVisit": {visit.id},
            "RLab": {lab.id for lab in labs},
            "RTeam": {team.id},
        },
    }


def _rights(world: dict[str, Any]) -> Rights:
    return Rights(world["models"].values())


def _audit(db: Any, operation: str) -> list[dict[str, Any]]:
    return list(db["privata_audit"].find({"operation": operation}))


def test_the_data_map_describes_models_fields_and_references(world: dict[str, Any]) -> None:
    described = _rights(world).data_map()
    patient = described.model("RPatient")
    assert set(patient.identity_fields) == {"first_name", "email"}
    assert patient.searchable == ("email",)
    assert {str(e) for e in described.edges} == {
        "RVisit.patient -> RPatient (id)",
        "RLab.visit -> RVisit (id)",
        "RTeam.members[] -> RPatient (id)",
    }


@pytest.mark.parametrize("how", ["pseudonym", "id", "email"])
def test_the_subject_map_finds_every_document_transitively(world: dict[str, Any], how: str) -> None:
    pseudonym = subject_of(world["db"], "r_patient", world["ann"].id)
    subject: str | Subject = {
        "pseudonym": pseudonym,
        "id": Subject(model="RPatient", id=world["ann"].id),
        "email": Subject(model="RPatient", field="email", value="ann@example.org"),
    }[how]
    with access_context(**CONTEXT):
        found = _rights(world).map(subject)
    assert found.pseudonym == pseudonym
    assert {k: set(v) for k, v in found.documents.items()} == world["expected"]
    assert found.depth == 3  # patient -> visit, team -> labs
    assert found.lookups < 20  # per edge and level, not per document


def test_access_returns_everything_decrypted_and_records_it(world: dict[str, Any]) -> None:
    db = world["db"]
    with access_context(**CONTEXT):
        held = _rights(world).access(
            Subject(model="RPatient", field="email", value="ann@example.org")
        )
    assert held.documents["RPatient"] == [
        {"_id": world["ann"].id, "first_name": "Ann", "email": "ann@example.org", "ward": "A"}
    ]
    assert {d["_id"] for d in held.documents["RLab"]} == world["expected"]["RLab"]
    assert sorted(d["value"] for d in held.documents["RLab"]) == [1, 2]
    assert {r["operation"] for r in held.processing} >= {"create"}
    assert all(r["actor"] == "dr.lee" for r in held.processing)
    records = _audit(db, "access")
    assert {r["model"] for r in records} == set(world["expected"])
    patient = next(r for r in records if r["model"] == "RPatient")
    assert patient["subjects"] == [held.pseudonym]
    assert patient["fields"] == ["email", "first_name"]
    assert patient["legal_basis"] == "GDPR Art. 15"
    assert "ann@example.org" not in repr(list(db["privata_audit"].find()))


@pytest.mark.parametrize("fmt", ["json", "csv", "xml"])
def test_export_writes_every_model_and_the_processing_record(
    world: dict[str, Any], fmt: str
) -> None:
    out = io.BytesIO()
    with access_context(**CONTEXT):
        counts = _rights(world).export(
            Subject(model="RPatient", id=world["ann"].id), out, format=fmt
        )
    assert counts == {k: len(v) for k, v in world["expected"].items()}
    data = out.getvalue()
    if fmt == "json":
        parsed = json.loads(data)
        assert parsed["models"]["RPatient"][0]["email"] == "ann@example.org"
        assert len(parsed["models"]["RLab"]) == 2
        assert parsed["processing"]
    elif fmt == "csv":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            assert names == {f"{m}.csv" for m in world["expected"]} | {
                "_processing.csv",
                "_subject.txt",
            }
            patient = archive.read("RPatient.csv").decode()
            assert "ann@example.org" in patient
            assert "bob@example.org" not in patient
    else:
        root = ET.fromstring(data)  # noqa: S314 - the export this test just wrote
        models = {m.get("name"): len(m.findall("document")) for m in root.findall("model")}
        assert models == counts
        assert root.find("processing") is not None
    records = _audit(world["db"], "export")
    assert {r["model"] for r in records} == set(world["expected"])
    assert "ann@example.org" not in repr(list(world["db"]["privata_audit"].find()))


def test_rectify_changes_the_stored_row_through_validation_and_records_names(
    world: dict[str, Any],
) -> None:
    db = world["db"]
    m = world["models"]
    pseudonym = subject_of(db, "r_patient", world["ann"].id)
    before = db["r_patient__identity"].find_one({"_id": pseudonym})
    rights = _rights(world)
    with access_context(**CONTEXT):
        with pytest.raises(mongoengine.ValidationError):
            rights.rectify(pseudonym, m["RPatient"], {"email": "not an address"})
        assert db["r_patient__identity"].find_one({"_id": pseudonym}) == before
        rights.rectify(pseudonym, m["RPatient"], {"email": "ann@new.example.org"})
        after = db["r_patient__identity"].find_one({"_id": pseudonym})
        assert after["_rev"] != before["_rev"]
        assert unseal_row(db, after)["email"] == "ann@new.example.org"
        found = rights.map(Subject(model="RPatient", field="email", value="ann@new.example.org"))
        assert found.pseudonym == pseudonym
    records = _audit(db, "rectify")
    assert [(r["model"], r["subjects"], r["fields"]) for r in records] == [
        ("RPatient", [pseudonym], ["email"])
    ]
    assert "ann@new.example.org" not in repr(list(db["privata_audit"].find()))


def test_an_unknown_subject_is_a_typed_error_without_the_value(world: dict[str, Any]) -> None:
    rights = _rights(world)
    with access_context(**CONTEXT):
        with pytest.raises(UnknownSubject) as raised:
            rights.access(Subject(model="RPatient", field="email", value="nobody@example.org"))
        assert "nobody" not in str(raised.value)
        with pytest.raises(UnknownSubject, match="not a searchable identity field"):
            rights.access(Subject(model="RPatient", field="ward", value="A"))
        with pytest.raises(UnknownSubject):
            rights.access("pseu_" + "0" * 32)
    assert _audit(world["db"], "access") == []


@requires("dbref_in_documents")
def test_generic_references_are_followed_to_any_model(connected: Any) -> None:
    class GPatient(pm.Document):
        email = pm.StringField(pii=True, searchable=True)
        meta = {"collection": "g_patient"}

    class GVisit(pm.Document):
        patient = pm.ReferenceField(GPatient, dbref=True)
        meta = {"collection": "g_visit"}

    class GNote(pm.Document):
        about = pm.GenericReferenceField()
        meta = {"collection": "g_note"}

    with access_context(**CONTEXT):
        ann = GPatient(email="ann@example.org").save()
        bob = GPatient(email="bob@example.org").save()
        visit = GVisit(patient=ann).save()
        GVisit(patient=bob).save()
        on_visit = GNote(about=visit).save()
        GNote(about=bob).save()
        rights = Rights([GPatient, GVisit, GNote])
        assert {str(e) for e in rights.data_map().edges} == {
            "GVisit.patient -> GPatient (dbref)",
            "GNote.about -> * (generic)",
        }
        found = rights.map(Subject(model="GPatient", id=ann.id))
    assert {k: set(v) for k, v in found.documents.items()} == {
        "GPatient": {ann.id},
        "GVisit": {visit.id},
        "GNote": {on_visit.id},
    }


# -- Beanie ---------------------------------------------------------------------------------


def _beanie_models() -> list[Any]:
    class BPatient(pb.Document):
        first_name: str
        email: Annotated[str, pb.PII(searchable=True)]
        ward: str = "A"

        class Settings:
            name = "rb_patient"

    class BVisit(pb.Document):
        reason: str
        patient: pb.Link[BPatient]

        class Settings:
            name = "rb_visit"

    class BLab(pb.Document):
        value: int
        visits: list[pb.Link[BVisit]]

        class Settings:
            name = "rb_lab"

    return [BPatient, BVisit, BLab]


async def test_beanie_rights_on_the_subject_documents(backend: Backend) -> None:
    async with beanie_database(backend) as raw:
        patient_cls = _beanie_models()[0]
        await pb.init_beanie(database=raw, document_models=[patient_cls])
        rights = AsyncRights([patient_cls])
        with access_context(**CONTEXT):
            ann = await patient_cls(first_name="Ann", email="ann@example.org").insert()
            await patient_cls(first_name="Ann", email="bob@example.org").insert()
            subject = Subject(model="BPatient", id=ann.id)
            held = await rights.access(subject)
            assert held.documents == {
                "BPatient": [
                    {"_id": ann.id, "first_name": "Ann", "email": "ann@example.org", "ward": "A"}
                ]
            }
            out = io.BytesIO()
            assert await rights.export(held.pseudonym, out, format="xml") == {"BPatient": 1}
            written = ET.fromstring(out.getvalue())  # noqa: S314 - the export just written
            assert written.find("model/document") is not None
            await rights.rectify(subject, patient_cls, {"email": "ann@new.example.org"})
            row = await raw["rb_patient__identity"].find_one({"_id": held.pseudonym})
            assert row["_enc"] is not None
            again = await rights.access(
                Subject(model="BPatient", field="email", value="ann@new.example.org")
            )
            assert again.pseudonym == held.pseudonym
        trail = await raw["privata_audit"].find({"subjects": held.pseudonym}).to_list(None)
        assert [
            r["operation"] for r in trail if r["operation"] in {"access", "export", "rectify"}
        ] == [
            "access",
            "export",
            "rectify",
            "access",
        ]
        assert "ann@" not in repr(trail)


@requires("dbref_in_documents")
async def test_beanie_rights_map_access_export_and_rectify(backend: Backend) -> None:
    async with beanie_database(backend) as raw:
        models = _beanie_models()
        patient_cls, visit_cls, lab_cls = models
        await pb.init_beanie(database=raw, document_models=models)
        rights = AsyncRights(models)
        with access_context(**CONTEXT):
            ann = await patient_cls(first_name="Ann", email="ann@example.org").insert()
            bob = await patient_cls(first_name="Bob", email="bob@example.org").insert()
            visit = await visit_cls(reason="check-up", patient=ann).insert()
            other = await visit_cls(reason="flu", patient=bob).insert()
            lab = await lab_cls(value=1, visits=[visit]).insert()
            await lab_cls(value=2, visits=[other]).insert()

            described = rights.data_map()
            assert {str(e) for e in described.edges} == {
                "BVisit.patient -> BPatient (dbref)",
                "BLab.visits[] -> BVisit (dbref)",
            }
            subject = Subject(model="BPatient", field="email", value="ann@example.org")
            found = await rights.map(subject)
            assert {k: set(v) for k, v in found.documents.items()} == {
                "BPatient": {ann.id},
                "BVisit": {visit.id},
                "BLab": {lab.id},
            }
            held = await rights.access(subject)
            assert held.documents["BPatient"][0]["email"] == "ann@example.org"
            out = io.BytesIO()
            counts = await rights.export(found.pseudonym, out, format="json")
            assert counts == {"BPatient": 1, "BVisit": 1, "BLab": 1}
            assert json.loads(out.getvalue())["models"]["BLab"][0]["value"] == 1

            before = await raw["rb_patient__identity"].find_one({"_id": found.pseudonym})
            with pytest.raises(pydantic.ValidationError):
                await rights.rectify(found.pseudonym, patient_cls, {"first_name": ["no"]})
            await rights.rectify(found.pseudonym, patient_cls, {"first_name": "Anne"})
            after = await raw["rb_patient__identity"].find_one({"_id": found.pseudonym})
            assert after["_rev"] != before["_rev"]
            assert (await patient_cls.get(ann.id)).first_name == "Anne"

        trail = await raw["privata_audit"].find({}).to_list(None)
        operations = {(r["operation"], r["model"]) for r in trail}
        assert {("access", "BPatient"), ("export", "BLab"), ("rectify", "BPatient")} <= operations
        rectified = [r for r in trail if r["operation"] == "rectify"]
        assert [r["fields"] for r in rectified] == [["first_name"]]
        assert "ann@example.org" not in repr(trail)
        assert "Anne" not in repr(trail)


def test_a_declared_reference_on_a_plain_id_field_is_followed(world: dict[str, Any]) -> None:
    class RBill(pm.Document):
        patient_id = pm.ObjectIdField()
        amount = pm.IntField()
        meta = {"collection": "r_bill", "references": {"patient_id": "RPatient"}}

    with access_context(**CONTEXT):
        bill = RBill(patient_id=world["ann"].id, amount=10).save()
        RBill(patient_id=world["bob"].id, amount=20).save()
        rights = Rights([*world["models"].values(), RBill])
        assert "RBill.patient_id -> RPatient (id)" in {str(e) for e in rights.data_map().edges}
        found = rights.map(Subject(model="RPatient", id=world["ann"].id))
    assert set(found.documents["RBill"]) == {bill.id}


def test_restriction_and_objection_are_rights_of_the_subject(world: dict[str, Any]) -> None:
    """Rights.restrict / object mark every document of the subject; reads then leave it out."""
    m, rights = world["models"], _rights(world)
    subject = Subject(model="RPatient", field="email", value="ann@example.org")
    with access_context(**CONTEXT):
        assert rights.restrict(subject, allowed_purposes=["legal_claims"]) == 1  # her patient
    with access_context(actor="dr.lee", purpose="treatment", legal_basis="art9_2h"):
        assert [p.first_name for p in m["RPatient"].objects] == ["Bob"]
    with access_context(actor="dpo", purpose="legal_claims", legal_basis="art9_2f"):
        assert m["RPatient"].objects.count() == 2
    with access_context(**CONTEXT):
        rights.lift_restriction(subject)
        rights.object(subject, "research")
    with access_context(actor="dr.lee", purpose="research", legal_basis="art9_2j"):
        assert [p.first_name for p in m["RPatient"].objects] == ["Bob"]
    with access_context(actor="dr.lee", purpose="treatment", legal_basis="art9_2h"):
        assert m["RPatient"].objects.count() == 2
    with access_context(**CONTEXT):
        rights.withdraw_objection(subject, "research")
    with access_context(actor="dr.lee", purpose="research", legal_basis="art9_2j"):
        assert m["RPatient"].objects.count() == 2
    operations = [r["operation"] for r in world["db"]["privata_audit"].find({}, sort=[("at", 1)])]
    for name in ("restrict", "lift_restriction", "object", "withdraw_objection"):
        assert name in operations
    # the subject is found although restricted: a subject request sees through its own marker
    lifted = world["db"]["privata_audit"].find_one({"operation": "lift_restriction"})
    assert lifted["subject_request"] == "lift_restriction"
    assert lifted["actor"] == CONTEXT["actor"]


async def test_beanie_restriction_is_a_right_of_the_subject(backend: Backend) -> None:
    async with beanie_database(backend) as raw:
        patient_cls = _beanie_models()[0]
        await pb.init_beanie(database=raw, document_models=[patient_cls])
        rights = AsyncRights([patient_cls])
        with access_context(**CONTEXT):
            ann = await patient_cls(first_name="Ann", email="ann@example.org").insert()
            await patient_cls(first_name="Bob", email="bob@example.org").insert()
            assert await rights.restrict(Subject(model="BPatient", id=ann.id)) == 1
        with access_context(actor="dr.lee", purpose="treatment", legal_basis="art9_2h"):
            assert [p.first_name for p in await patient_cls.find_all().to_list()] == ["Bob"]
        with access_context(**CONTEXT):
            await rights.lift_restriction(Subject(model="BPatient", id=ann.id))
            await rights.object(Subject(model="BPatient", id=ann.id), "marketing")
        with access_context(actor="crm", purpose="marketing", legal_basis="art6_1f"):
            assert await patient_cls.count() == 1
        with access_context(**CONTEXT):
            await rights.withdraw_objection(Subject(model="BPatient", id=ann.id), "marketing")
        with access_context(actor="crm", purpose="marketing", legal_basis="art6_1f"):
            assert await patient_cls.count() == 2
