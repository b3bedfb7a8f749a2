"""Consent (GDPR Art. 6(1)(a), 7) end to end, on both facades and every backend.

Four subjects: ``ada`` consents to ``research``, ``bob`` consented to ``research`` and
withdrew, ``cy`` consents to ``marketing``, ``dee`` gave no consent. Under a consent-based
legal basis every read path returns exactly the subjects consenting to the purpose, with
counts, pages, ``distinct`` and aggregations agreeing; other legal bases see everyone. The
consent history, the markers on both halves, the key vault and the audit records are asserted
on the real collections.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pymongo
import pytest
from mongomock.store import ServerStore

import privata_mongo.beanie as pb
import privata_mongo.mongoengine as pm
from privata_mongo import AsyncRights, Rights, access_context, consent, restriction
from privata_mongo.audit import subject_of
from privata_mongo.config import current
from privata_mongo.embedded import AsyncMockClient
from privata_mongo.errors import (
    ConfigurationError,
    MissingPurpose,
    ProtectedCollection,
    UnsupportedQuery,
)
from testkit.backends import Backend
from tests.integration._paths import beanie_paths, check, mongoengine_paths, names

DPO = {"actor": "dpo", "purpose": "consent management", "legal_basis": "art6_1c"}
PEOPLE = (("ada", "north"), ("bob", "south"), ("cy", "east"), ("dee", "west"))
EVERYONE = {name for name, _ in PEOPLE}
VISIBLE = [
    ("art6_1a", "research", {"ada"}),
    ("consent", "marketing", {"cy"}),
    ("art9_2a", "billing", set()),
    ("art9_2h", "research", EVERYONE),  # not a consent basis: consents are not asked
    ("art6_1f", "marketing", EVERYONE),
]
"""Who each legal basis and purpose sees once the consents of ``_record`` are recorded."""
VALUES = ("example.org", "north", "south", "east", "west", "ada@", "bob@", "cy@", "dee@")


class ConsentPatient(pm.Document):
    first_name = pm.StringField()
    email = pm.StringField()
    ward = pm.StringField()
    meta = {"collection": "consent_patients"}


class ConsentVisit(pm.Document):
    patient = pm.ReferenceField(ConsentPatient)
    meta = {"collection": "consent_visits"}


@pytest.fixture
def people(connected: Any) -> dict[str, str]:
    """The subjects' pseudonyms by first name."""
    with access_context(**DPO):
        for name, ward in PEOPLE:
            ConsentPatient(first_name=name, email=f"{name}@example.org", ward=ward).save()
        found = {p.first_name: p.id for p in ConsentPatient.objects}
    db = pm.get_db()
    return {name: str(subject_of(db, "consent_patients", id)) for name, id in found.items()}


def _record(rights: Any, people: dict[str, str]) -> None:
    with access_context(**DPO):
        assert rights.consent(people["ada"], "research", source="web form", notice_version="v1")
        rights.consent(people["bob"], "research", source="paper form", notice_version="v1")
        rights.consent(people["cy"], "marketing", source="web form", notice_version="v2")
        assert rights.withdraw_consent(people["bob"], "research", source="phone call") == 1


AUDITED = {"operation": {"$in": ["consent", "withdraw_consent"]}}
HISTORY_ORDER = [("at", 1), ("_id", 1)]
AUDIT_ORDER = [("at", 1), ("seq", 1)]


def _read(raw: Any) -> dict[str, list[Any]]:
    """The real rows the consent state lives in: both halves, the history, the audit."""
    return {
        "clinical": list(raw["consent_patients"].find()),
        "identity": list(raw["consent_patients__identity"].find()),
        "history": list(raw["privata_consents"].find({}, sort=HISTORY_ORDER)),
        "audit": list(raw["privata_audit"].find(AUDITED, sort=AUDIT_ORDER)),
    }


async def _read_async(raw: Any) -> dict[str, list[Any]]:
    """``_read`` on an async real database."""
    return {
        "clinical": await raw["consent_patients"].find().to_list(None),
        "identity": await raw["consent_patients__identity"].find().to_list(None),
        "history": await raw["privata_consents"].find({}, sort=HISTORY_ORDER).to_list(None),
        "audit": await raw["privata_audit"].find(AUDITED, sort=AUDIT_ORDER).to_list(None),
    }


EXPECTED_HISTORY = [
    ("ada", "research", "given", "web form", "v1"),
    ("bob", "research", "given", "paper form", "v1"),
    ("cy", "marketing", "given", "web form", "v2"),
    ("bob", "research", "withdrawn", "phone call", None),
]
EXPECTED_MARKERS = {"ada": {"c": ["research"]}, "bob": {"c": []}, "cy": {"c": ["marketing"]}}


def _assert_stored(stored: dict[str, list[Any]], people: dict[str, str]) -> None:
    by_name = {v: k for k, v in people.items()}
    for half, key in (("clinical", "_pseudonym"), ("identity", "_id")):
        markers = {by_name[r[key]]: r.get("_rst") for r in stored[half]}
        assert markers == {**EXPECTED_MARKERS, "dee": None}, half
    assert [
        (by_name[h["subject"]], h["purpose"], h["event"], h["source"], h["notice_version"])
        for h in stored["history"]
    ] == EXPECTED_HISTORY
    assert {(h["actor"], h["legal_basis"]) for h in stored["history"]} == {("dpo", "art6_1c")}
    assert [
        (
            r["operation"],
            by_name[r["subjects"][0]],
            r["actor"],
            r["purpose"],
            r["legal_basis"],
            r["subject_request"],
            r["count"],
        )
        for r in stored["audit"]
    ] == [
        ("consent", "ada", "dpo", "consent management", "art6_1c", "consent", 1),
        ("consent", "bob", "dpo", "consent management", "art6_1c", "consent", 1),
        ("consent", "cy", "dpo", "consent management", "art6_1c", "consent", 1),
        (
            "withdraw_consent",
            "bob",
            "dpo",
            "consent management",
            "art6_1c",
            "withdraw_consent",
            1,
        ),
    ]
    written = repr(stored["history"]) + repr(stored["audit"])
    for value in VALUES:
        assert value not in written, value


@pytest.mark.parametrize(("basis", "purpose", "visible"), VISIBLE)
def test_each_read_path_returns_exactly_the_consenting_subjects(
    people: dict[str, str], basis: str, purpose: str, visible: set[str]
) -> None:
    _record(Rights([ConsentPatient]), people)
    with access_context(actor="analyst", purpose=purpose, legal_basis=basis):
        check(mongoengine_paths(ConsentPatient, pm.get_db()["consent_patients"]), visible)


def test_consent_is_stored_as_history_and_markers_and_audited_by_name(
    connected: Any, people: dict[str, str]
) -> None:
    vault_db, _, vault = current().key_vault_namespace.partition(".")
    keys = connected.client[vault_db][vault].count_documents({})
    rights = Rights([ConsentPatient])
    _record(rights, people)
    _assert_stored(_read(connected), people)
    assert connected.client[vault_db][vault].count_documents({}) == keys  # no key made or shred
    assert connected.client[vault_db][f"{vault}.tombstones"].count_documents({}) == 0
    indexes = connected["privata_consents"].index_information()
    assert indexes["privata_consent_subject"]["key"] == [("subject", 1), ("purpose", 1), ("at", 1)]
    assert all(r["_enc"] for r in connected["consent_patients__identity"].find())
    with access_context(**DPO):
        events = rights.consents(people["bob"])
    assert [(e.event, e.source, e.actor) for e in events] == [
        ("given", "paper form", "dpo"),
        ("withdrawn", "phone call", "dpo"),
    ]
    with access_context(**DPO):
        assert consent.state(rights.consents(people["ada"])) == {"research": True}
    assert consent.state(events) == {"research": False}  # the latest event wins


def test_a_consent_basis_needs_a_purpose_and_break_glass_does_not_replace_consent(
    people: dict[str, str],
) -> None:
    rights = Rights([ConsentPatient])
    _record(rights, people)
    with access_context(actor="analyst", legal_basis="art6_1a"):
        with pytest.raises(MissingPurpose, match="purpose"):
            list(ConsentPatient.objects)
        with pytest.raises(MissingPurpose):
            pm.get_db()["consent_patients"].count_documents({})
    with access_context(actor="dr.er", purpose="research", legal_basis="art9_2a"):
        with restriction.break_glass(actor="dr.er", reason="unconscious arrival"):
            assert names(ConsentPatient.objects) == {"ada"}
        # a subject's own request sees the subject, consent or not
        assert rights.access(people["dee"]).documents["ConsentPatient"][0]["first_name"] == "dee"


def test_writes_under_a_consent_basis_reach_only_consenting_subjects(
    connected: Any, people: dict[str, str]
) -> None:
    _record(Rights([ConsentPatient]), people)
    raw = pm.get_db()["consent_patients"]
    with access_context(actor="analyst", purpose="research", legal_basis="art6_1a"):
        assert raw.update_many({}, {"$set": {"ward": "lab"}}).matched_count == 1
        assert ConsentPatient.objects(first_name="cy").update(set__ward="x") == 0
    wards = {r["_pseudonym"]: r["ward"] for r in connected["consent_patients"].find()}
    assert wards == {
        people["ada"]: "lab",
        people["bob"]: "south",
        people["cy"]: "east",
        people["dee"]: "west",
    }


def test_references_and_lookups_reach_only_consenting_subjects(people: dict[str, str]) -> None:
    with access_context(**DPO):
        for patient in ConsentPatient.objects:
            ConsentVisit(patient=patient).save()
    _record(Rights([ConsentPatient]), people)
    with access_context(actor="analyst", purpose="marketing", legal_basis="consent"):
        # served without the visits' model, the consents were not carried onto the visits:
        # a visit is the data of its patient, and nobody proved consent for it
        assert ConsentVisit.objects.count() == 0
    _record(Rights([ConsentPatient, ConsentVisit]), people)
    lookup = {
        "$lookup": {
            "from": "consent_patients",
            "localField": "patient",
            "foreignField": "_id",
            "as": "patients",
        }
    }
    with access_context(actor="analyst", purpose="marketing", legal_basis="consent"):
        reached = set()
        for visit in ConsentVisit.objects:
            with contextlib.suppress(pm.DoesNotExist):
                reached.add(visit.patient.first_name)
        assert reached == {"cy"}
        joined = list(pm.get_db()["consent_visits"].aggregate([lookup]))
        assert names(p for v in joined for p in v["patients"]) == {"cy"}
        assert len(joined) == 1  # cy's visit: the consent reaches the patient's native data


def test_the_consent_history_is_protected_from_the_application(
    connected: Any, people: dict[str, str]
) -> None:
    _record(Rights([ConsentPatient]), people)
    history = pm.get_db()["privata_consents"]
    for call in (
        lambda: history.insert_one({"subject": people["dee"], "purpose": "research"}),
        lambda: history.delete_many({}),
        lambda: history.update_many({}, {"$set": {"event": "given"}}),
        lambda: history.drop(),
        lambda: pm.get_db().command("drop", "privata_consents"),
    ):
        with pytest.raises(ProtectedCollection, match="consent history") as refused:
            call()
        assert "withdraw_consent" in refused.value.operator_handle
    assert history.count_documents({}) == len(EXPECTED_HISTORY)  # auditors read it
    with (
        access_context(actor="app", purpose="research", legal_basis="art6_1a"),
        pytest.raises(UnsupportedQuery, match="restriction marker"),
    ):
        pm.get_db()["consent_patients"].update_many({}, {"$addToSet": {"_rst.c": "research"}})
    assert connected["consent_patients"].count_documents({"_rst.c": "research"}) == 1


def test_bad_input_is_refused_before_anything_is_written(
    connected: Any, people: dict[str, str]
) -> None:
    rights = Rights([ConsentPatient])
    with access_context(**DPO):
        for purpose, source, notice in (("", "web", "v1"), ("x", "", "v1"), ("x", "web", "")):
            with pytest.raises(ConfigurationError, match="non-empty string"):
                rights.consent(people["ada"], purpose, source=source, notice_version=notice)
        with pytest.raises(ConfigurationError, match="non-empty string"):
            rights.withdraw_consent(people["ada"], " ")
        with pytest.raises(ConfigurationError, match="pseudonym") as named:
            consent.give(pm.get_db(), "ada@example.org", "x", source="web", notice_version="v1")
        assert "ada@" not in str(named.value)
    assert connected["privata_consents"].count_documents({}) == 0
    assert connected["consent_patients"].count_documents({"_rst": {"$exists": True}}) == 0


def test_withdrawing_a_consent_never_given_is_recorded_and_changes_nothing(
    connected: Any, people: dict[str, str]
) -> None:
    rights = Rights([ConsentPatient])
    with access_context(**DPO):
        assert rights.withdraw_consent(people["dee"], "research") == 1
        rights.consent(people["ada"], "research", source="web form", notice_version="v1")
        rights.restrict(people["ada"])
        rights.lift_restriction(people["ada"])  # lifting a restriction keeps the consents
    assert [h["event"] for h in connected["privata_consents"].find({"subject": people["dee"]})] == [
        "withdrawn"
    ]
    dee = connected["consent_patients"].find_one({"_pseudonym": people["dee"]})
    assert dee.get("_rst", {}).get("c", []) == []
    ada = connected["consent_patients"].find_one({"_pseudonym": people["ada"]})
    assert ada["_rst"] == {"c": ["research"]}
    with access_context(actor="analyst", purpose="research", legal_basis="art6_1a"):
        assert names(ConsentPatient.objects) == {"ada"}


# -- Beanie ------------------------------------------------------------------------------------


def _member() -> Any:
    class ConsentMember(pb.Document):
        first_name: str
        email: str
        ward: str

        class Settings:
            name = "consent_patients"

    return ConsentMember


@contextlib.asynccontextmanager
async def _beanie(backend: Backend) -> AsyncIterator[tuple[Any, Any, dict[str, str]]]:
    """The model, the real database and the subjects' pseudonyms, consents recorded."""
    client: Any = (
        AsyncMockClient(ServerStore())
        if backend.uri is None
        else pymongo.AsyncMongoClient(backend.uri)
    )
    try:
        member = _member()
        raw = client[backend.db_name]
        await pb.init_beanie(database=raw, document_models=[member])
        with access_context(**DPO):
            for name, ward in PEOPLE:
                await member(first_name=name, email=f"{name}@example.org", ward=ward).insert()
            ids = {m.first_name: m.id for m in await member.find_all().to_list()}
        rows = await raw["consent_patients"].find({}).to_list(None)
        pseudonyms = {r["_id"]: r["_pseudonym"] for r in rows}
        people = {name: pseudonyms[id] for name, id in ids.items()}
        rights = AsyncRights([member])
        with access_context(**DPO):
            assert await rights.consent(
                people["ada"], "research", source="web form", notice_version="v1"
            )
            await rights.consent(
                people["bob"], "research", source="paper form", notice_version="v1"
            )
            await rights.consent(people["cy"], "marketing", source="web form", notice_version="v2")
            assert await rights.withdraw_consent(people["bob"], "research", source="phone call")
        yield member, raw, people
    finally:
        await client.close()


@pytest.mark.parametrize(("basis", "purpose", "visible"), VISIBLE)
async def test_beanie_read_paths_return_exactly_the_consenting_subjects(
    backend: Backend, basis: str, purpose: str, visible: set[str]
) -> None:
    async with _beanie(backend) as (member, _, _people):
        raw = member.get_pymongo_collection()
        with access_context(actor="analyst", purpose=purpose, legal_basis=basis):
            check(await beanie_paths(member, raw), visible)


async def test_beanie_consent_is_stored_and_audited(backend: Backend) -> None:
    async with _beanie(backend) as (member, raw, people):
        _assert_stored(await _read_async(raw), people)
        vault_db, _, vault = current().key_vault_namespace.partition(".")
        keys = raw.client[vault_db][vault]
        before = await keys.count_documents({})
        with access_context(**DPO):
            rights = AsyncRights([member])
            await rights.consent(people["dee"], "care", source="kiosk", notice_version="v9")
        assert await keys.count_documents({}) == before  # no key made or shred
        assert await raw.client[vault_db][f"{vault}.tombstones"].count_documents({}) == 0
        assert "privata_consent_subject" in await raw["privata_consents"].index_information()
        marked = await raw["consent_patients__identity"].find_one({"_id": people["dee"]})
        assert marked["_rst"] == {"c": ["care"]}
        with access_context(**DPO):
            events = await rights.consents(people["cy"])
        assert [(e.purpose, e.event, e.notice_version) for e in events] == [
            ("marketing", "given", "v2")
        ]
        with (
            access_context(actor="analyst", legal_basis="consent"),
            pytest.raises(MissingPurpose),
        ):
            await member.find_all().to_list()
        with pytest.raises(ProtectedCollection):
            await member.get_pymongo_collection().database["privata_consents"].delete_many({})


def test_a_write_under_consent_keeps_the_consent_on_both_halves(
    connected: Any, people: dict[str, str]
) -> None:
    _record(Rights([ConsentPatient]), people)
    with access_context(actor="analyst", purpose="research", legal_basis="art6_1a"):
        ConsentPatient.objects(first_name="ada").update(set__email="ada@new.example.org")
        patient = ConsentPatient.objects.get(first_name="ada")
        patient.ward = "lab"
        patient.save()
        assert [p.email for p in ConsentPatient.objects] == ["ada@new.example.org"]
    identity = connected["consent_patients__identity"].find_one({"_id": people["ada"]})
    clinical = connected["consent_patients"].find_one({"_pseudonym": people["ada"]})
    assert identity["_rst"] == clinical["_rst"] == {"c": ["research"]}
