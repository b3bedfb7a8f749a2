"""A native document written after its subject's decision carries that decision at once.

A visit created for a restricted patient, a lab result of that visit, a visit moved onto an
objecting patient, a visit of a consenting patient: each is the subject's data from its first
write on (GDPR Art. 4(1)), so it inherits the marker of what it references on the way in
(``core.rights.spread.inherited``), through every write path of a marked collection: insert,
bulk insert, replacement, an update re-referencing it, an upsert, and ``bulk_write``, whose
filters also leave out the documents the purpose may not change. Both facades, both backends.
"""

from __future__ import annotations

from typing import Annotated, Any

import pymongo
import pytest
from bson import ObjectId

import privata_mongo.beanie as pb
import privata_mongo.mongoengine as pm
from privata_mongo import AsyncRights, Rights, access_context
from privata_mongo.errors import ProcessingRestricted
from privata_mongo.rights import Subject
from testkit.backends import Backend
from tests.integration.test_restriction_map import (
    CLAIMS,
    DPO,
    RESEARCH,
    TREATMENT,
    _ann,
    _beanie_database,
    _bob,
    world,
)

__all__ = ["world"]  # the fixture, shared with the map's tests

CONSENTING = {"actor": "lab", "purpose": "research", "legal_basis": "consent"}


def _stored(world: dict[str, Any], collection: str, **filter: Any) -> dict[str, Any]:
    found = world["db"][collection].find_one(filter)
    assert found is not None
    return dict(found)


def _diagnoses(m: dict[str, Any]) -> list[str]:
    return sorted(v.diagnosis for v in m["MVisit"].objects)


def test_a_visit_created_after_the_restriction_is_restricted_from_its_first_write(
    world: dict[str, Any],
) -> None:
    m, rights = world["m"], Rights(world["m"].values())
    with access_context(**DPO):
        rights.restrict(_ann(world), allowed_purposes=["legal_claims"])
    pseudonym = rights.pseudonym(_ann(world))
    with access_context(**TREATMENT):
        visit = m["MVisit"](patient=world["ann"], diagnosis="I10").save()
        m["MLab"](visit=visit, value=5).save()  # through the visit, itself marked
        assert _diagnoses(m) == ["flu"]
        assert sorted(lab.value for lab in m["MLab"].objects) == [9]
        assert m["MVisit"].objects.count() == 1
    marker = {"s": [pseudonym], "r": True, "a": ["legal_claims"]}
    assert _stored(world, "m_visit", diagnosis="I10")["_rst"] == marker
    assert _stored(world, "m_lab", value=5)["_rst"] == marker
    with access_context(**CLAIMS):
        assert _diagnoses(m) == ["E11", "I10", "J45", "flu"]
        assert sorted(lab.value for lab in m["MLab"].objects) == [1, 5, 9]
    with access_context(**DPO):
        rights.lift_restriction(_ann(world))
    assert not _stored(world, "m_visit", diagnosis="I10").get("_rst")
    assert not _stored(world, "m_lab", value=5).get("_rst")


def test_a_visit_of_an_undecided_subject_carries_no_marker(world: dict[str, Any]) -> None:
    m = world["m"]
    with access_context(**TREATMENT):
        m["MVisit"](patient=world["bob"], diagnosis="I10").save()
        m["MVisit"](diagnosis="orphan").save()
        assert _diagnoses(m) == ["E11", "I10", "J45", "flu", "orphan"]
    assert "_rst" not in _stored(world, "m_visit", diagnosis="I10")
    assert "_rst" not in _stored(world, "m_visit", diagnosis="orphan")


def test_bulk_inserts_and_shared_documents_merge_every_subjects_decision(
    world: dict[str, Any],
) -> None:
    m, rights = world["m"], Rights(world["m"].values())
    with access_context(**DPO):
        rights.restrict(_ann(world))
        rights.object(_bob(world), purpose="research")
    ann, bob = rights.pseudonym(_ann(world)), rights.pseudonym(_bob(world))
    with access_context(**TREATMENT):
        m["MVisit"].objects.insert(
            [m["MVisit"](patient=world["bob"], diagnosis=d) for d in ("a", "b")]
        )
        m["MTeam"](members=[world["ann"], world["bob"]]).save()
        raw = pm.get_db()["m_team"]
        raw.insert_many([{"members": [world["bob"].id]}, {"members": []}])
    assert [v["_rst"] for v in world["db"]["m_visit"].find({"diagnosis": {"$in": ["a", "b"]}})] == [
        {"s": [bob], "o": ["research"]}
    ] * 2
    teams = [t.get("_rst") for t in world["db"]["m_team"].find()]
    both = {"s": [ann, bob], "r": True, "a": [], "o": ["research"]}
    assert teams[1:] == [both, {"s": [bob], "o": ["research"]}, None]
    with access_context(**RESEARCH):
        assert _diagnoses(m) == []  # Ann restricted, Bob objecting
    with access_context(**TREATMENT):
        assert _diagnoses(m) == ["a", "b", "flu"]


def test_a_write_that_re_references_a_document_moves_it_under_the_new_subject(
    world: dict[str, Any],
) -> None:
    m, rights = world["m"], Rights(world["m"].values())
    with access_context(**DPO):
        rights.object(_ann(world), purpose="research")
    ann = rights.pseudonym(_ann(world))
    raw = pm.get_db()["m_visit"]
    other = world["other"]
    with access_context(**TREATMENT):
        other.patient = world["ann"]
        other.save()  # mongoengine: $set of the reference
        assert _stored(world, "m_visit", _id=other.id)["_rst"] == {"s": [ann], "o": ["research"]}
        raw.update_one({"_id": other.id}, {"$set": {"patient": world["bob"].id}})
        assert not _stored(world, "m_visit", _id=other.id).get("_rst")
        raw.replace_one({"_id": other.id}, {"patient": world["ann"].id, "diagnosis": "flu"})
        assert _stored(world, "m_visit", _id=other.id)["_rst"] == {"s": [ann], "o": ["research"]}
        made = ObjectId()
        raw.update_one(
            {"_id": made}, {"$set": {"patient": world["ann"].id, "diagnosis": "new"}}, upsert=True
        )
        assert _stored(world, "m_visit", _id=made)["_rst"] == {"s": [ann], "o": ["research"]}
        raw.update_one({"_id": other.id}, {"$set": {"diagnosis": "cold"}})  # no reference
        assert _stored(world, "m_visit", _id=other.id)["_rst"] == {"s": [ann], "o": ["research"]}
    with access_context(**RESEARCH):
        assert _diagnoses(m) == []


def test_bulk_write_leaves_objecting_subjects_out_and_marks_what_it_inserts(
    world: dict[str, Any],
) -> None:
    m, rights = world["m"], Rights(world["m"].values())
    with access_context(**DPO):
        rights.object(_ann(world), purpose="research")
    ann = rights.pseudonym(_ann(world))
    raw = pm.get_db()["m_visit"]
    with access_context(**RESEARCH):
        result = raw.bulk_write(
            [
                pymongo.UpdateMany({}, {"$set": {"diagnosis": "coded"}}),
                pymongo.InsertOne({"patient": world["ann"].id, "diagnosis": "bulk"}),
                pymongo.DeleteMany({"diagnosis": "E11"}),
            ]
        )
        assert (result.modified_count, result.inserted_count, result.deleted_count) == (1, 1, 0)
        assert _diagnoses(m) == ["coded"]
    stored = {d["diagnosis"]: d for d in world["db"]["m_visit"].find()}
    assert sorted(stored) == ["E11", "J45", "bulk", "coded"]  # Ann's visits untouched
    assert stored["bulk"]["_rst"] == {"s": [ann], "o": ["research"]}


def test_a_restricted_subjects_documents_cannot_be_bulk_inserted_under_it(
    world: dict[str, Any],
) -> None:
    """An insert is not refused: the document is the subject's data, and absent from reads."""
    m, rights = world["m"], Rights(world["m"].values())
    with access_context(**DPO):
        rights.restrict(_ann(world))
    raw = pm.get_db()["m_visit"]
    with access_context(**TREATMENT):
        raw.bulk_write([pymongo.InsertOne({"patient": world["ann"].id, "diagnosis": "x"})])
        assert _diagnoses(m) == ["flu"]
        with pytest.raises(ProcessingRestricted):
            raw.bulk_write([pymongo.UpdateOne({"diagnosis": "x"}, {"$set": {"v": 1}})])


def test_a_visit_of_a_consenting_subject_is_seen_under_that_consent(
    world: dict[str, Any],
) -> None:
    m, rights = world["m"], Rights(world["m"].values())
    with access_context(**DPO):
        rights.consent(_ann(world), purpose="research", source="form", notice_version="1")
    with access_context(**TREATMENT):
        m["MVisit"](patient=world["ann"], diagnosis="I10").save()
        m["MVisit"](patient=world["bob"], diagnosis="I11").save()
    with access_context(**CONSENTING):
        assert _diagnoses(m) == ["E11", "I10", "J45"]


async def test_beanie_inserts_inherit_the_decision(backend: Backend) -> None:
    class IPatient(pb.Document):
        first_name: str
        email: Annotated[str, pb.PII(searchable=True)]

        class Settings:
            name = "ib_patient"

    class IVisit(pb.Document):
        patient_id: pb.PydanticObjectId
        diagnosis: str

        class Settings:
            name = "ib_visit"
            references = {"patient_id": "IPatient"}

    async for raw in _beanie_database(backend):
        await pb.init_beanie(database=raw, document_models=[IPatient, IVisit])
        rights = AsyncRights([IPatient, IVisit])
        with access_context(**TREATMENT):
            ann = await IPatient(first_name="Ann", email="ann@example.org").insert()
            bob = await IPatient(first_name="Bob", email="bob@example.org").insert()
        subject = Subject(model="IPatient", id=ann.id)
        with access_context(**DPO):
            await rights.restrict(subject)
        with access_context(**TREATMENT):
            await IVisit(patient_id=ann.id, diagnosis="J45").insert()
            await IVisit.insert_many(
                [
                    IVisit(patient_id=ann.id, diagnosis="E11"),
                    IVisit(patient_id=bob.id, diagnosis="flu"),
                ]
            )
            visit = IVisit(patient_id=bob.id, diagnosis="I10")
            await visit.save()
            visit.patient_id = ann.id
            await visit.save()
            assert [v.diagnosis for v in await IVisit.find_all().to_list()] == ["flu"]
            assert await IVisit.count() == 1
        pseudonym = await rights.pseudonym(subject)
        stored = await raw["ib_visit"].find().to_list(None)
        marked = sorted(
            v["diagnosis"]
            for v in stored
            if v.get("_rst") == {"s": [pseudonym], "r": True, "a": []}
        )
        assert marked == ["E11", "I10", "J45"]
        with access_context(**DPO):
            await rights.lift_restriction(subject)
        with access_context(**TREATMENT):
            assert await IVisit.count() == 4


def test_a_lookup_from_another_collection_sees_only_what_a_find_there_sees(
    world: dict[str, Any],
) -> None:
    """The ward is nobody's data; the visits it joins are Ann's and Bob's."""
    m, rights = world["m"], Rights(world["m"].values())
    pm.get_db()["m_ward"].insert_many([{"name": "J45"}, {"name": "flu"}])
    pipeline = [
        {"$match": {"name": {"$exists": True}}},
        {
            "$lookup": {
                "from": "m_visit",
                "localField": "name",
                "foreignField": "diagnosis",
                "as": "v",
            }
        },
        {"$project": {"_id": 0, "name": 1, "v": "$v.diagnosis"}},
        {"$sort": {"name": 1}},
    ]

    def joined() -> list[Any]:
        return [(d["name"], d["v"]) for d in m["MWard"].objects.aggregate(pipeline)]

    with access_context(**RESEARCH):
        assert joined() == [("J45", ["J45"]), ("flu", ["flu"]), ("north", [])]
    with access_context(**DPO):
        rights.restrict(_ann(world))
        rights.object(_bob(world), purpose="research")
    with access_context(**RESEARCH):
        assert joined() == [("J45", []), ("flu", []), ("north", [])]
        joined_raw = list(pm.get_db()["m_ward"].aggregate(pipeline))
        assert [d["v"] for d in joined_raw] == [[], [], []]
    with access_context(**TREATMENT):
        assert joined() == [("J45", []), ("flu", ["flu"]), ("north", [])]
    with access_context(**CLAIMS):  # Ann's restriction allows no purpose
        assert joined() == [("J45", []), ("flu", ["flu"]), ("north", [])]
