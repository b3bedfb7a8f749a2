"""Restriction and objection along the subject's data map: native documents referencing the
subject (a visit, its labs, a team listing the patient) are the subject's data too, so
``Rights.restrict``/``object`` mark them and every read path leaves them out, on both facades.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import pymongo
import pytest
from mongomock.store import ServerStore

import privata_mongo.beanie as pb
import privata_mongo.mongoengine as pm
from compat_suite.requirements import requires
from privata_mongo import AsyncRights, Rights, access_context
from privata_mongo.embedded import AsyncMockClient
from privata_mongo.errors import ProcessingRestricted, UnsupportedQuery
from privata_mongo.proxy.marked import MarkedCollection
from privata_mongo.proxy.plain import PlainCollection
from privata_mongo.rights import Subject
from testkit.backends import Backend

DPO = {"actor": "dpo", "purpose": "compliance", "legal_basis": "GDPR Art. 18"}
TREATMENT = {"actor": "dr.lee", "purpose": "treatment", "legal_basis": "art9_2h"}
RESEARCH = {"actor": "lab", "purpose": "research", "legal_basis": "art9_2j"}
CLAIMS = {"actor": "counsel", "purpose": "legal_claims", "legal_basis": "art9_2f"}


def _models() -> dict[str, Any]:
    class MPatient(pm.Document):
        first_name = pm.StringField()
        email = pm.EmailField(pii=True, searchable=True)
        meta = {"collection": "m_patient"}

    class MVisit(pm.Document):
        patient = pm.ReferenceField(MPatient)
        diagnosis = pm.StringField()
        meta = {"collection": "m_visit"}

    class MLab(pm.Document):
        visit = pm.ReferenceField(MVisit)
        value = pm.IntField()
        meta = {"collection": "m_lab"}

    class MTeam(pm.Document):
        members = pm.ListField(pm.ReferenceField(MPatient))
        meta = {"collection": "m_team"}

    class MWard(pm.Document):
        name = pm.StringField()
        meta = {"collection": "m_ward"}

    return {c.__name__: c for c in (MPatient, MVisit, MLab, MTeam, MWard)}


@pytest.fixture
def world(connected: Any) -> dict[str, Any]:
    m = _models()
    with access_context(**TREATMENT):
        ann = m["MPatient"](first_name="Ann", email="ann@example.org").save()
        bob = m["MPatient"](first_name="Bob", email="bob@example.org").save()
        visits = [m["MVisit"](patient=ann, diagnosis=d).save() for d in ("J45", "E11")]
        other = m["MVisit"](patient=bob, diagnosis="flu").save()
        m["MLab"](visit=visits[0], value=1).save()
        m["MLab"](visit=other, value=9).save()
        team = m["MTeam"](members=[ann, bob]).save()
        m["MWard"](name="north").save()
    return {"m": m, "db": connected, "ann": ann, "bob": bob, "team": team, "other": other}


def _ann(world: dict[str, Any]) -> Subject:
    return Subject(model="MPatient", id=world["ann"].id)


def _bob(world: dict[str, Any]) -> Subject:
    return Subject(model="MPatient", id=world["bob"].id)


def _seen(m: dict[str, Any]) -> dict[str, Any]:
    """What each read path shows of the native models."""
    raw = pm.get_db()["m_visit"]
    iterated = m["MVisit"].objects.order_by("diagnosis")
    list(iterated)
    return {
        "cloned": iterated.clone().count(),  # counted on the clone of an evaluated cursor
        "visits": sorted(v.diagnosis for v in m["MVisit"].objects.order_by("diagnosis")),
        "count": m["MVisit"].objects.count(),
        "page": [v.diagnosis for v in m["MVisit"].objects.order_by("diagnosis").skip(1).limit(5)],
        "distinct": sorted(m["MVisit"].objects.distinct("diagnosis")),
        "estimated": raw.estimated_document_count(),
        "grouped": sorted(d["_id"] for d in raw.aggregate([{"$group": {"_id": "$diagnosis"}}])),
        "labs": sorted(lab.value for lab in m["MLab"].objects),
        "teams": m["MTeam"].objects.count(),
    }


def test_only_collections_that_can_hold_a_marker_pay_for_the_clauses(
    world: dict[str, Any],
) -> None:
    db = pm.get_db()
    assert {n: type(db[n]) for n in ("m_visit", "m_lab", "m_team", "m_ward")} == {
        "m_visit": MarkedCollection,
        "m_lab": MarkedCollection,
        "m_team": MarkedCollection,
        "m_ward": PlainCollection,
    }


def test_a_restriction_reaches_every_native_document_of_the_map(world: dict[str, Any]) -> None:
    m, rights = world["m"], Rights(world["m"].values())
    with access_context(**TREATMENT):
        before = _seen(m)
    assert before["count"] == 3
    with access_context(**DPO):
        assert rights.restrict(_ann(world), allowed_purposes=["legal_claims"]) == 1
    stored = world["db"]["m_visit"].find_one({"patient": world["ann"].id})
    pseudonym = rights.pseudonym(_ann(world))
    assert stored["_rst"] == {"s": [pseudonym], "r": True, "a": ["legal_claims"]}
    with access_context(**TREATMENT):
        assert _seen(m) == {
            "cloned": 1,
            "visits": ["flu"],
            "count": 1,
            "page": [],
            "distinct": ["flu"],
            "estimated": 1,
            "grouped": ["flu"],
            "labs": [9],
            "teams": 0,  # the team lists Ann: her data too
        }
        with pytest.raises(pm.DoesNotExist):
            m["MLab"].objects.get(value=1).reload()
    with access_context(**CLAIMS):
        assert _seen(m) == before
    records = list(world["db"]["privata_audit"].find({"operation": "restrict"}))
    assert {r["model"]: r["count"] for r in records} == {
        "MPatient": 1,
        "MVisit": 2,
        "MLab": 1,
        "MTeam": 1,
    }
    assert all(r["subjects"] == [pseudonym] for r in records)


def test_writes_to_a_restricted_native_document_are_refused_before_writing(
    world: dict[str, Any],
) -> None:
    m, rights = world["m"], Rights(world["m"].values())
    with access_context(**DPO):
        rights.restrict(_ann(world))
    raw = pm.get_db()["m_visit"]
    pseudonym = rights.pseudonym(_ann(world))
    with access_context(**TREATMENT):
        with pytest.raises(ProcessingRestricted) as refused:
            raw.update_many({}, {"$set": {"diagnosis": "x"}})
        assert refused.value.pseudonyms == (pseudonym,)
        with pytest.raises(ProcessingRestricted):
            raw.delete_many({})
        with pytest.raises(ProcessingRestricted):
            raw.find_one_and_update({"diagnosis": "J45"}, {"$set": {"diagnosis": "y"}})
        with pytest.raises(ProcessingRestricted):
            raw.bulk_write([pymongo.DeleteOne({"diagnosis": "E11"})])
        assert m["MVisit"].objects(diagnosis="flu").update(set__diagnosis="cold") == 1
    assert sorted(d["diagnosis"] for d in world["db"]["m_visit"].find()) == ["E11", "J45", "cold"]


def test_the_marker_is_never_read_nor_written_by_the_application(world: dict[str, Any]) -> None:
    rights = Rights(world["m"].values())
    with access_context(**DPO):
        rights.restrict(_ann(world), allowed_purposes=["legal_claims"])
    raw = pm.get_db()["m_visit"]
    with access_context(**CLAIMS):
        shown = [
            *raw.find(),
            *raw.find({}, {"diagnosis": 1}),
            *raw.find({}, {"patient": 0}),
            *raw.aggregate([{"$match": {}}]),
            raw.find_one({"diagnosis": "J45"}),
            raw.find_one_and_update({"diagnosis": "J45"}, {"$set": {"diagnosis": "J45"}}),
        ]
        assert shown
        assert all("_rst" not in d for d in shown)
        assert all(not hasattr(v, "_rst") for v in world["m"]["MVisit"].objects)
        for update in ({"$unset": {"_rst": ""}}, {"$set": {"_rst.r": False}}):
            with pytest.raises(UnsupportedQuery):
                raw.update_many({}, update)
        with pytest.raises(UnsupportedQuery):
            raw.insert_one({"diagnosis": "z", "_rst": {"r": False}})
    assert world["db"]["m_visit"].count_documents({"_rst.r": True}) == 2


def test_a_shared_document_stays_restricted_while_any_of_its_subjects_is(
    world: dict[str, Any],
) -> None:
    m, rights = world["m"], Rights(world["m"].values())
    with access_context(**DPO):
        rights.restrict(_ann(world), allowed_purposes=["legal_claims", "audit"])
        rights.restrict(_bob(world), allowed_purposes=["audit"])
        rights.lift_restriction(_ann(world))
    team = world["db"]["m_team"].find_one()
    # Ann stays listed beside Bob, whose restriction holds (a listed subject without consent
    # also limits what the document may be processed for under a consent basis)
    both = {rights.pseudonym(_bob(world)), rights.pseudonym(_ann(world))}
    assert set(team["_rst"].pop("s")) == both
    assert team["_rst"] == {"r": True, "a": ["audit"]}
    with access_context(**TREATMENT):
        assert m["MTeam"].objects.count() == 0
        assert sorted(v.diagnosis for v in m["MVisit"].objects) == ["E11", "J45"]
    with access_context(**DPO):
        rights.lift_restriction(_bob(world))
        rights.object(_ann(world), "research")
    with access_context(**RESEARCH):
        assert sorted(v.diagnosis for v in m["MVisit"].objects) == ["flu"]
        assert m["MTeam"].objects.count() == 0
    with access_context(**TREATMENT):
        assert m["MTeam"].objects.count() == 1
    with access_context(**DPO):
        rights.withdraw_objection(_ann(world), "research")
    with access_context(**RESEARCH):
        assert m["MVisit"].objects.count() == 3
    assert "s" not in world["db"]["m_team"].find_one()["_rst"]


async def _beanie_database(backend: Backend) -> AsyncIterator[Any]:
    client: Any = (
        AsyncMockClient(ServerStore())
        if backend.uri is None
        else pymongo.AsyncMongoClient(backend.uri)
    )
    try:
        yield client[backend.db_name]
    finally:
        await client.close()


async def test_beanie_restriction_reaches_native_documents(backend: Backend) -> None:
    class NPatient(pb.Document):
        first_name: str
        email: Annotated[str, pb.PII(searchable=True)]

        class Settings:
            name = "mb_patient"

    class NVisit(pb.Document):
        patient_id: pb.PydanticObjectId
        diagnosis: str

        class Settings:
            name = "mb_visit"
            references = {"patient_id": "NPatient"}

    async for raw in _beanie_database(backend):
        await pb.init_beanie(database=raw, document_models=[NPatient, NVisit])
        rights = AsyncRights([NPatient, NVisit])
        with access_context(**TREATMENT):
            ann = await NPatient(first_name="Ann", email="ann@example.org").insert()
            bob = await NPatient(first_name="Bob", email="bob@example.org").insert()
            await NVisit(patient_id=ann.id, diagnosis="J45").insert()
            await NVisit(patient_id=bob.id, diagnosis="flu").insert()
        with access_context(**DPO):
            assert await rights.restrict(Subject(model="NPatient", id=ann.id)) == 1
        with access_context(**TREATMENT):
            assert [v.diagnosis for v in await NVisit.find_all().to_list()] == ["flu"]
            assert await NVisit.count() == 1
            assert await NVisit.distinct("diagnosis") == ["flu"]
            with pytest.raises(ProcessingRestricted):
                await NVisit.find_all().update({"$set": {"diagnosis": "x"}})
        with access_context(**DPO):
            await rights.lift_restriction(Subject(model="NPatient", id=ann.id))
        with access_context(**TREATMENT):
            visits = await NVisit.get_pymongo_collection().find().to_list(None)
            assert sorted(v["diagnosis"] for v in visits) == ["J45", "flu"]
            assert all("_rst" not in v for v in visits)


@pytest.mark.parametrize(
    ("projection", "sent"),
    [
        (None, {"_rst": 0}),
        ({}, {"_rst": 0}),
        ({"diagnosis": 1}, {"diagnosis": 1}),
        ({"diagnosis": 1, "_rst": 1}, {"diagnosis": 1}),
        ({"_id": 1}, {"_id": 1}),
        ({"_id": 0, "diagnosis": True}, {"_id": 0, "diagnosis": True}),
        ({"patient": 0}, {"patient": 0, "_rst": 0}),
        ({"tags": {"$slice": 2}}, {"tags": {"$slice": 2}, "_rst": 0}),
        (["diagnosis", "_rst.r"], ["diagnosis"]),
    ],
)
def test_the_projection_sent_keeps_the_marker_out(projection: Any, sent: Any) -> None:
    from privata_mongo.proxy.marked import _hidden

    assert _hidden(projection) == sent


@requires("raw_batches")
def test_raw_batches_leave_restricted_documents_and_the_marker_out(world: dict[str, Any]) -> None:
    import bson

    rights = Rights(world["m"].values())
    with access_context(**DPO):
        rights.restrict(_ann(world))
    raw = pm.get_db()["m_visit"]
    with access_context(**TREATMENT):
        found = [d for batch in raw.find_raw_batches({}) for d in bson.decode_all(batch)]
    assert [d["diagnosis"] for d in found] == ["flu"]
    assert all("_rst" not in d for d in found)
