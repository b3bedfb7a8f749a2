"""Restriction (Art. 18), objection (Art. 21) and break-glass through every read path.

Three subjects: ``ada`` (no request), ``bob`` (restricted, ``legal_claims`` allowed) and
``cy`` (objects to ``research``). Each read path is tried under each purpose and must return
exactly the subjects visible under it, with counts, pages and ``distinct`` agreeing; writes
to ``bob`` are refused unless allowed; the stored markers and audit records are asserted raw.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

import privata_mongo
import privata_mongo.mongoengine as pm
from privata_mongo import audit, restriction
from privata_mongo.config import current
from privata_mongo.errors import BreakGlassRefused, ProcessingRestricted, UnsupportedQuery
from privata_mongo.testing.audit import ListAuditSink

VISIBLE = {
    None: {"ada", "cy"},
    "treatment": {"ada", "cy"},
    "research": {"ada"},
    "legal_claims": {"ada", "bob", "cy"},
}
"""Who each purpose sees: bob is restricted (legal_claims allowed), cy objects to research."""


class RestrictedPatient(pm.Document):
    first_name = pm.StringField()
    email = pm.StringField()
    ward = pm.StringField()
    meta = {"collection": "restricted_patients"}


@pytest.fixture
def sink() -> Iterator[ListAuditSink]:
    saved = current()
    made = ListAuditSink()
    privata_mongo.configure(audit_sink=made)
    yield made
    privata_mongo.config._current = saved


@pytest.fixture
def people(connected: Any, sink: ListAuditSink) -> dict[str, str]:
    """The three subjects by first name, with their requests recorded; their pseudonyms."""
    for name, ward in (("ada", "north"), ("bob", "south"), ("cy", "east")):
        RestrictedPatient(first_name=name, email=f"{name}@example.org", ward=ward).save()
    db = pm.get_db()
    subjects = {
        p.first_name: audit.subject_of(db, "restricted_patients", p.id)
        for p in RestrictedPatient.objects
    }
    return {k: v for k, v in subjects.items() if v is not None}


def _record(db: Any, people: dict[str, str]) -> None:
    with privata_mongo.access_context(actor="dpo", purpose="compliance", legal_basis="art6_1c"):
        assert restriction.restrict(db, people["bob"], allowed_purposes=["legal_claims"]) == 1
        assert restriction.object(db, people["cy"], "research") == 1


def _names(documents: Any) -> set[str]:
    return {d["first_name"] if isinstance(d, dict) else d.first_name for d in documents}


def _read_paths(purpose: str | None) -> dict[str, Any]:
    """What each read path returns under ``purpose``, as sets of names or figures."""
    db = pm.get_db()
    raw = db["restricted_patients"]
    with privata_mongo.access_context(actor="dr.lee", purpose=purpose, legal_basis="art9_2h"):
        everyone = RestrictedPatient.objects.order_by("ward")
        pages = [
            _names(RestrictedPatient.objects.order_by("ward").skip(i).limit(1)) for i in range(3)
        ]
        return {
            "queryset": _names(everyone),
            "count": RestrictedPatient.objects.count(),
            "pages": set().union(*pages),
            "page_sizes": [len(p) for p in pages],
            "by_identity": _names(
                RestrictedPatient.objects(
                    email__in=[f"{n}@example.org" for n in VISIBLE["legal_claims"]]
                )
            ),
            "identity_regex": _names(RestrictedPatient.objects(email__endswith="example.org")),
            "identity_sort": [p.first_name for p in RestrictedPatient.objects.order_by("email")],
            "by_id": _names(RestrictedPatient.objects(id__in=[p.id for p in everyone])),
            "distinct_clinical": len(RestrictedPatient.objects.distinct("ward")),
            "distinct_identity": {
                e.split("@")[0] for e in RestrictedPatient.objects.distinct("email")
            },
            "aggregate_count": next(
                iter(RestrictedPatient.objects.aggregate([{"$count": "n"}])), {"n": 0}
            )["n"],
            "aggregate_names": _names(
                RestrictedPatient.objects.aggregate([{"$project": {"first_name": 1}}])
            ),
            "raw_find": _names(raw.find({})),
            "raw_count": raw.count_documents({}),
            "raw_estimated": raw.estimated_document_count(),
            "raw_find_one": raw.find_one({"first_name": "bob"}) is not None,
        }


@pytest.mark.parametrize("purpose", list(VISIBLE))
def test_each_read_path_returns_exactly_the_visible_subjects(
    people: dict[str, str], purpose: str | None
) -> None:
    _record(pm.get_db(), people)
    seen = _read_paths(purpose)
    visible = VISIBLE[purpose]
    for path in ("queryset", "pages", "by_identity", "identity_regex", "by_id", "raw_find"):
        assert seen[path] == visible, path
    assert set(seen["identity_sort"]) == visible
    assert seen["distinct_identity"] == visible
    for figure in ("count", "distinct_clinical", "aggregate_count", "raw_count", "raw_estimated"):
        assert seen[figure] == len(visible), figure
    assert seen["aggregate_names"] == visible
    assert sorted(seen["page_sizes"], reverse=True) == [1] * len(visible) + [0] * (3 - len(visible))
    assert seen["raw_find_one"] is ("bob" in visible)


def test_nothing_is_hidden_before_a_request_or_after_it_is_withdrawn(
    people: dict[str, str],
) -> None:
    db = pm.get_db()
    assert _read_paths("research")["queryset"] == {"ada", "bob", "cy"}
    _record(db, people)
    with privata_mongo.access_context(actor="dpo", purpose="compliance"):
        restriction.lift_restriction(db, people["bob"])
        restriction.withdraw_objection(db, people["cy"], "research")
    assert _read_paths("research")["queryset"] == {"ada", "bob", "cy"}
    raw = db.inner
    for half, key in (
        ("restricted_patients", "_pseudonym"),
        ("restricted_patients__identity", "_id"),
    ):
        assert raw[half].find_one({key: people["bob"]})["_rst"] == {}
        assert raw[half].find_one({key: people["cy"]})["_rst"] == {"o": []}


def test_restriction_is_stored_on_both_halves_and_audited_by_name(
    connected: Any, people: dict[str, str], sink: ListAuditSink
) -> None:
    _record(pm.get_db(), people)
    bob, cy = people["bob"], people["cy"]
    clinical = {r["_pseudonym"]: r for r in connected["restricted_patients"].find()}
    identity = {r["_id"]: r for r in connected["restricted_patients__identity"].find()}
    assert clinical[bob]["_rst"] == {"r": True, "a": ["legal_claims"]}
    assert identity[bob]["_rst"] == {"r": True, "a": ["legal_claims"]}
    assert clinical[cy]["_rst"] == {"o": ["research"]} == identity[cy]["_rst"]
    assert "_rst" not in clinical[people["ada"]]
    records = [r for r in sink.records if r["operation"] in ("restrict", "object")]
    assert [
        (r["operation"], r["subjects"], r["actor"], r["purpose"], r["legal_basis"]) for r in records
    ] == [
        ("restrict", [bob], "dpo", "compliance", "art6_1c"),
        ("object", [cy], "dpo", "compliance", "art6_1c"),
    ]
    with privata_mongo.access_context(actor="dpo", purpose="legal_claims"):
        restriction.lift_restriction(pm.get_db(), bob)
    assert "r" not in connected["restricted_patients"].find_one({"_pseudonym": bob})["_rst"]
    assert sink.records[-1]["operation"] == "lift_restriction"
    assert audit.verify(sink, key=audit.chain_key(pm.get_db().client)).ok


def test_writes_to_a_restricted_subject_are_refused_unless_allowed(
    connected: Any, people: dict[str, str]
) -> None:
    _record(pm.get_db(), people)
    raw = pm.get_db()["restricted_patients"]
    with privata_mongo.access_context(actor="dr.lee", purpose="treatment"):
        with pytest.raises(ProcessingRestricted) as refused:
            raw.update_many({}, {"$set": {"ward": "west"}})
        assert refused.value.pseudonyms == (people["bob"],)
        with pytest.raises(ProcessingRestricted):
            raw.delete_one({"first_name": "bob"})
        with pytest.raises(ProcessingRestricted):
            raw.replace_one({"email": "bob@example.org"}, {"first_name": "bob", "ward": "x"})
        assert RestrictedPatient.objects(ward="north").update(set__ward="n2") == 1  # ada only
    assert {r["ward"] for r in connected["restricted_patients"].find()} == {"n2", "south", "east"}
    with privata_mongo.access_context(actor="counsel", purpose="legal_claims"):
        assert (
            raw.update_one({"first_name": "bob"}, {"$set": {"ward": "court"}}).modified_count == 1
        )
        raw.replace_one({"first_name": "bob"}, {"first_name": "bob", "ward": "court2"})
    stored = connected["restricted_patients"].find_one({"_pseudonym": people["bob"]})
    assert stored["ward"] == "court2"
    assert stored["_rst"] == {"r": True, "a": ["legal_claims"]}  # a replacement keeps it


def test_the_marker_cannot_be_written_or_seen_through_the_proxy(
    connected: Any, people: dict[str, str]
) -> None:
    _record(pm.get_db(), people)
    raw = pm.get_db()["restricted_patients"]
    with privata_mongo.access_context(actor="app", purpose="legal_claims"):
        for update in ({"$unset": {"_rst": ""}}, {"$set": {"_rst.r": False}}, [{"$unset": "_rst"}]):
            with pytest.raises(UnsupportedQuery):
                raw.update_many({}, update)
        with pytest.raises(UnsupportedQuery):
            raw.replace_one({"first_name": "bob"}, {"first_name": "bob", "_rst": {}})
        assert all("_rst" not in d for d in raw.find({}))
        assert all("_rst" not in d for d in raw.aggregate([{"$match": {}}]))
    assert connected["restricted_patients"].count_documents({"_rst.r": True}) == 1


def test_break_glass_lifts_restriction_and_every_access_is_listed(
    people: dict[str, str], sink: ListAuditSink
) -> None:
    _record(pm.get_db(), people)
    with pytest.raises(BreakGlassRefused), restriction.break_glass(actor="dr.er", reason=" "):
        pass
    with privata_mongo.access_context(actor="dr.er", purpose="treatment", legal_basis="art9_2c"):
        with restriction.break_glass(actor="dr.er", reason="unconscious arrival, ER bay 3"):
            assert _names(RestrictedPatient.objects) == {"ada", "bob", "cy"}
            RestrictedPatient.objects(first_name="bob").update(set__ward="er")
        assert _names(RestrictedPatient.objects) == {"ada", "cy"}
    with (
        privata_mongo.access_context(actor="dr.er", purpose="research"),
        restriction.break_glass(actor="dr.er", reason="emergency"),
    ):
        assert _names(RestrictedPatient.objects) == {"ada", "bob"}  # objection holds
    listed = audit.break_glass_accesses(sink)
    assert listed, "break-glass accesses are listed"
    assert {a.operation for a in listed} >= {"read", "update"}
    assert {a.reason for a in listed} == {"unconscious arrival, ER bay 3", "emergency"}
    assert all(a.actor == "dr.er" for a in listed)
    assert people["bob"] in {s for a in listed for s in a.subjects}
    normal = [r for r in sink.records if "severity" not in r]
    assert len(normal) + len(listed) == len(sink.records)
    assert audit.verify(sink, key=audit.chain_key(pm.get_db().client)).ok


def test_a_subject_is_named_by_pseudonym(people: dict[str, str]) -> None:
    from privata_mongo.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        restriction.restrict(pm.get_db(), "bob@example.org")
    with pytest.raises(ConfigurationError):
        restriction.object(pm.get_db(), people["bob"], "")


class RestrictedVisit(pm.Document):
    reason = pm.StringField()
    patient = pm.ReferenceField(RestrictedPatient)
    meta = {"collection": "restricted_visits"}


@pytest.mark.parametrize("purpose", list(VISIBLE))
def test_references_reach_only_visible_subjects(people: dict[str, str], purpose: str) -> None:
    for patient in RestrictedPatient.objects:
        RestrictedVisit(reason="check-up", patient=patient).save()
    _record(pm.get_db(), people)
    visible = VISIBLE[purpose]
    lookup = {
        "$lookup": {
            "from": "restricted_patients",
            "localField": "patient",
            "foreignField": "_id",
            "as": "patients",
        }
    }
    with privata_mongo.access_context(actor="dr.lee", purpose=purpose):
        reached = set()
        for visit in RestrictedVisit.objects:
            with contextlib.suppress(pm.DoesNotExist):
                reached.add(visit.patient.first_name)
        assert reached == visible
        joined = list(pm.get_db()["restricted_visits"].aggregate([lookup]))
        assert _names(p for v in joined for p in v["patients"]) == visible
        assert len(joined) == 3  # the visits themselves hold no personal data


def test_a_write_under_an_objected_purpose_leaves_the_objecting_subject_alone(
    connected: Any, people: dict[str, str]
) -> None:
    _record(pm.get_db(), people)
    raw = pm.get_db()["restricted_patients"]
    with privata_mongo.access_context(actor="analyst", purpose="research"):
        assert raw.update_many({"first_name": "cy"}, {"$set": {"ward": "lab"}}).matched_count == 0
    stored = connected["restricted_patients"].find_one({"_pseudonym": people["cy"]})
    assert stored["ward"] == "east"


def test_a_reference_to_a_restricted_subject_does_not_exist_under_treatment(
    people: dict[str, str],
) -> None:
    bob = RestrictedPatient.objects.get(first_name="bob")
    RestrictedVisit(reason="x", patient=bob).save()
    _record(pm.get_db(), people)
    with privata_mongo.access_context(actor="dr.lee", purpose="treatment"):
        visit = RestrictedVisit.objects.get()
        with pytest.raises(pm.DoesNotExist):
            _ = visit.patient.first_name


def test_an_allowed_identity_write_keeps_the_marker_on_both_halves(
    connected: Any, people: dict[str, str]
) -> None:
    _record(pm.get_db(), people)
    with privata_mongo.access_context(actor="counsel", purpose="legal_claims"):
        RestrictedPatient.objects(first_name="bob").update(set__email="robert@example.org")
        patient = RestrictedPatient.objects.get(first_name="bob")
        patient.first_name = "robert"
        patient.save()
    identity = connected["restricted_patients__identity"].find_one({"_id": people["bob"]})
    clinical = connected["restricted_patients"].find_one({"_pseudonym": people["bob"]})
    assert identity["_rst"] == clinical["_rst"] == {"r": True, "a": ["legal_claims"]}
    with privata_mongo.access_context(actor="dr.lee", purpose="treatment"):
        assert _names(RestrictedPatient.objects) == {"ada", "cy"}


def test_bulk_and_find_and_modify_writes_are_refused_too(
    connected: Any, people: dict[str, str]
) -> None:
    from pymongo import UpdateOne

    _record(pm.get_db(), people)
    raw = pm.get_db()["restricted_patients"]
    with privata_mongo.access_context(actor="dr.lee", purpose="treatment"):
        with pytest.raises(ProcessingRestricted):
            raw.bulk_write([UpdateOne({"first_name": "bob"}, {"$set": {"ward": "w"}})])
        with pytest.raises(ProcessingRestricted):
            raw.find_one_and_update({"ward": "south"}, {"$set": {"ward": "w"}})
        with pytest.raises(ProcessingRestricted):
            raw.find_one_and_delete({"email": "bob@example.org"})
        with pytest.raises(UnsupportedQuery):
            raw.bulk_write([UpdateOne({}, {"$unset": {"_rst": ""}})])
        assert raw.find_one_and_update({"ward": "north"}, {"$set": {"ward": "n"}}) is not None
    assert (
        connected["restricted_patients"].find_one({"_pseudonym": people["bob"]})["ward"] == "south"
    )
    assert connected["restricted_patients"].count_documents({}) == 3


def test_a_write_past_the_first_batch_is_refused_before_anything_is_written(
    connected: Any, sink: ListAuditSink
) -> None:
    """1,001 matching documents, the restricted one last: the refusal comes before the first
    batch of 1,000 is written, for a delete read by cursor and an update read by ids."""
    raw = pm.get_db()["restricted_patients"]
    with privata_mongo.access_context(actor="app", purpose="treatment"):
        raw.insert_many(
            [
                {"first_name": f"p{i}", "email": f"p{i}@example.org", "ward": "a"}
                for i in range(1000)
            ]
        )
        last = raw.insert_one({"first_name": "zed", "email": "zed@example.org", "ward": "a"})
    zed = audit.subject_of(pm.get_db(), "restricted_patients", last.inserted_id)
    assert zed is not None
    with privata_mongo.access_context(actor="dpo", purpose="compliance"):
        assert restriction.restrict(pm.get_db(), zed) == 1
    with privata_mongo.access_context(actor="dr.lee", purpose="treatment"):
        with pytest.raises(ProcessingRestricted) as refused:
            raw.delete_many({"ward": "a"})
        assert refused.value.pseudonyms == (zed,)
        with pytest.raises(ProcessingRestricted):
            raw.update_many({"ward": "a"}, {"$set": {"email": "same@example.org"}})
        with pytest.raises(ProcessingRestricted):
            raw.update_many({"ward": "a"}, {"$set": {"ward": "b"}})
    stored = connected["restricted_patients"]
    assert stored.count_documents({"ward": "a"}) == 1001
    assert connected["restricted_patients__identity"].count_documents({}) == 1001
