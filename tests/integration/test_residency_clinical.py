"""Per-region clinical stores: EU subjects' clinical rows on the EU server, reads merged.

Two layouts: the EU region with a clinical store of its own and the US subjects' rows on the
application's server (``eu``), and both regions with their own (``both``: the application's
server holds no clinical row). Each region is a separate backend (a mongomock store, or with
``--backend ferretdb`` a second FerretDB server for the EU and the session's server, in a
database of the test's own, for the US). Every placement claim is checked by scanning the raw
stores, and the query suite gives the observations of one region with the same data.
"""

from __future__ import annotations

import datetime
from dataclasses import replace
from typing import Any

import bson
import mongoengine as me
import pymongo
import pytest

import privata_mongo
import privata_mongo.mongoengine as pm
from privata_mongo.audit import subject_of
from privata_mongo.config import Region, current
from privata_mongo.context import access_context, partial_results, within_regions
from privata_mongo.encryption import forget_keys
from privata_mongo.errors import RegionUnavailable, UnsupportedQuery
from privata_mongo.rights import Rights, Subject
from testkit.backends import Backend
from tests.integration import test_residency as base

EU = base.EU
PEOPLE = base.PEOPLE
Stores = base.Stores

second_ferretdb = base.second_ferretdb
stores = base.stores
settings_restored = base.settings_restored

LAYOUTS = ["eu", "both"]


def _regions(stores: Stores, layout: str, eu_clinical: Any = None) -> dict[str, Region]:
    regions = base._regions(stores)
    eu = replace(
        regions["eu"],
        clinical_client=stores.eu if eu_clinical is None else eu_clinical,
        clinical_database=stores.database,
    )
    us = regions["us"]
    if layout == "both":
        us = replace(us, clinical_client=stores.us, clinical_database=stores.database)
    return {"eu": eu, "us": us}


def _clinical(stores: Stores, region: str) -> Any:
    client = stores.eu if region == "eu" else stores.us
    return client[stores.database]["res_patient"]


def _home(connected: Any, stores: Stores, layout: str) -> Any:
    """Where the US subjects' clinical rows live in ``layout``."""
    return connected["res_patient"] if layout == "eu" else _clinical(stores, "us")


def _bytes(collection: Any) -> list[bytes]:
    return sorted(bson.encode(d) for d in collection.find({}))


def _observe(Patient: Any) -> dict[str, Any]:
    """The query suite of ``test_residency`` and the clinical-side reads that merge."""
    observed = base._observe(Patient)
    collection = Patient._get_collection()

    def names(queryset: Any) -> list[tuple[Any, ...]]:
        return [(p.first_name, p.email, p.country, p.visits) for p in queryset]

    us = Patient.objects(country="US").order_by("visits").first()
    observed.update(
        {
            "us by id": names([Patient.objects.get(id=us.id)]),
            "unsorted": sorted(names(Patient.objects)),
            "page 2": names(Patient.objects.order_by("visits").skip(3).limit(3)),
            "page only": names(Patient.objects.only("first_name").order_by("-visits")[:4]),
            "clinical filter": names(
                Patient.objects(blood_type__in=["A+", "B+", "O-"]).order_by("-visits")
            ),
            "both sides": names(
                Patient.objects(email__in=list(base.EMAILS[:5]), visits__lt=6).order_by("visits")
            ),
            "count clinical": Patient.objects(blood_type__in=["A+", "A-", "O+"]).count(),
            "distinct visits": Patient.objects.distinct("visits"),
            "distinct blood": Patient.objects.distinct("blood_type"),
            "find_one sorted": collection.find_one({}, sort=[("visits", -1)])["email"],
            "estimated count": collection.estimated_document_count(),
            "aggregate page": [
                (d["first_name"], d["visits"])
                for d in collection.aggregate(
                    [
                        {"$match": {"visits": {"$gte": 2}}},
                        {"$project": {"first_name": 1, "visits": 1}},
                        {"$sort": {"visits": 1}},
                        {"$skip": 1},
                        {"$limit": 3},
                    ]
                )
            ],
        }
    )
    return observed


def _wipe(connected: Any, stores: Stores) -> None:
    me.disconnect()
    for collection in ("res_patient", "res_patient__identity"):
        connected.drop_collection(collection)
        for client in (stores.eu, stores.us):
            client[stores.database].drop_collection(collection)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_eu_clinical_rows_live_only_in_the_eu_clinical_store(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None, layout: str
) -> None:
    Patient = base._connect(backend, _regions(stores, layout))
    eu_rows = list(_clinical(stores, "eu").find({}))
    us_rows = list(_home(connected, stores, layout).find({}))
    assert sorted(r["country"] for r in eu_rows) == sorted(p[3] for p in PEOPLE if p[3] in EU)
    assert {r["_region"] for r in eu_rows} == {"eu"}
    assert sorted(r["country"] for r in us_rows) == ["US", "US", "US"]
    assert {r["_region"] for r in us_rows} == {"us"}
    if layout == "both":
        assert connected["res_patient"].count_documents({}) == 0
    # each subject's identity row sits with its clinical row, in its region
    for region, rows in (("eu", eu_rows), ("us", us_rows)):
        assert {r["_pseudonym"] for r in rows} == {
            r["_id"] for r in stores.identity(region).find({})
        }
    raw = b"".join(bson.encode(d) for d in eu_rows + us_rows)
    assert not any(e.encode() in raw for e in base.EMAILS)
    ada = Patient.objects(email="ada@example.org").first()
    assert (ada.first_name, ada.country, ada.blood_type) == ("Ada", "GB", "A+")
    assert "_region" not in ada.to_mongo()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_query_suite_over_clinical_stores_sees_what_one_region_sees(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None, layout: str
) -> None:
    one = _observe(base._connect(backend, None))
    _wipe(connected, stores)
    split = _observe(base._connect(backend, _regions(stores, layout)))
    distinct = ("distinct visits", "distinct blood")
    assert sorted(split["distinct visits"]) == sorted(p[4] for p in PEOPLE)
    if backend.name == "mongomock":  # its distinct keeps first-seen order, which a merge can't
        assert [sorted(split.pop(k)) for k in distinct] == [sorted(one.pop(k)) for k in distinct]
    else:  # the server's order (BSON order), kept by the merge
        assert [split[k] for k in distinct] == [sorted(one[k]) for k in distinct]
    assert split == one
    assert one["count"] == len(PEOPLE)
    assert one["page 2"] == [
        ("Barbara", "barbara@example.org", "US", 4),
        ("Marie", "marie@example.org", "FR", 5),
        ("Katherine", "katherine@example.org", "US", 6),
    ]
    assert one["aggregate page"] == [("Ada", 3), ("Barbara", 4), ("Marie", 5)]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_writes_reach_the_clinical_store_holding_the_rows(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None, layout: str
) -> None:
    Patient = base._connect(backend, _regions(stores, layout))
    home = _home(connected, stores, layout)
    us_before = _bytes(home)
    Patient.objects(email="emmy@example.org").update(set__blood_type="O+", inc__visits=10)
    assert _clinical(stores, "eu").find_one({"country": "DE"})["visits"] == 11
    assert _bytes(home) == us_before
    marie = Patient.objects.get(email="marie@example.org")
    marie.blood_type = "A-"
    marie.save()
    assert _clinical(stores, "eu").find_one({"_id": marie.id})["blood_type"] == "A-"
    assert _bytes(home) == us_before
    Patient._get_collection().replace_one(
        {"_id": marie.id},
        {"first_name": "Marie", "email": "marie@example.org", "country": "PL", "visits": 6},
    )
    stored = _clinical(stores, "eu").find_one({"_id": marie.id})
    assert (stored["_region"], stored["country"]) == ("eu", "PL")
    assert home.count_documents({"_id": marie.id}) == 0
    assert Patient.objects.update(inc__visits=100) == len(PEOPLE)
    assert sorted(p.visits for p in Patient.objects) == sorted(
        v + 100 for v in (3, 7, 6, 11, 9, 4, 2, 6)
    )
    eu_before = _bytes(_clinical(stores, "eu"))
    Patient.objects(email="grace@example.org").delete()
    assert _bytes(_clinical(stores, "eu")) == eu_before
    assert home.count_documents({}) == 2
    Patient.objects(country__in=["GB"]).delete()
    assert _clinical(stores, "eu").count_documents({}) == 3
    assert Patient.objects.count() == len(PEOPLE) - 3
    with within_regions("eu"):
        Patient(first_name="Rosalind", email="rosalind@example.org", country="GB").save()
    assert _clinical(stores, "eu").count_documents({"country": "GB"}) == 1


@pytest.mark.parametrize("layout", LAYOUTS)
def test_find_and_modify_and_upserts_act_on_the_row_one_store_would_pick(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None, layout: str
) -> None:
    Patient = base._connect(backend, _regions(stores, layout))
    collection = Patient._get_collection()
    home = _home(connected, stores, layout)
    # the fewest visits across both stores: Emmy (1, EU) before Lise (2, EU) and Barbara (4, US)
    before = collection.find_one_and_update(
        {"visits": {"$lt": 5}}, {"$inc": {"visits": 10}}, sort=[("visits", 1)]
    )
    assert (before["first_name"], before["visits"]) == ("Emmy", 1)
    assert _clinical(stores, "eu").find_one({"country": "DE"})["visits"] == 11
    after = collection.find_one_and_update(
        {"country": "US"},
        {"$set": {"blood_type": "AB+"}},
        sort=[("visits", -1)],
        return_document=pymongo.ReturnDocument.AFTER,
    )
    assert (after["first_name"], after["blood_type"]) == ("Grace", "AB+")
    assert home.find_one({"_id": after["_id"]})["blood_type"] == "AB+"
    removed = collection.find_one_and_delete({"country": "AT"})
    assert removed["first_name"] == "Lise"
    assert _clinical(stores, "eu").count_documents({"country": "AT"}) == 0
    outcome = collection.update_one({"visits": 42}, {"$set": {"blood_type": "X"}}, upsert=True)
    assert outcome.upserted_id is not None
    assert home.count_documents({"_id": outcome.upserted_id}) == 1  # the default region's
    assert _clinical(stores, "eu").count_documents({"_id": outcome.upserted_id}) == 0
    assert collection.count_documents({}) == len(PEOPLE)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_pinned_operation_touches_only_the_pinned_regions_stores(
    connected: Any,
    backend: Backend,
    stores: Stores,
    settings_restored: None,
    request: pytest.FixtureRequest,
    layout: str,
) -> None:
    eu, us, counts = base._counting_clients(backend, request)
    listings: dict[int, dict[str, int]] = {}
    try:
        counted = Stores(eu, us, stores.database)
        privata_mongo.configure(
            regions=_regions(counted, layout),
            default_region="us",
            region_resolver=base._by_country,
        )
        pm.connect(db=backend.db_name, **backend.mongoengine_settings())
        Patient = base._model()
        for subjects in (20, 200):
            Patient.objects.delete()
            Patient.objects.insert(
                [
                    Patient(first_name=f"p{i}", email=f"p{i}@example.org", country=EU[i % 4])
                    if i % 2
                    else Patient(first_name=f"p{i}", email=f"p{i}@example.org", country="US")
                    for i in range(subjects)
                ]
            )
            forget_keys()
            before = counts()
            assert len([p.email for p in Patient.objects.order_by("first_name")]) == subjects
            page = Patient.objects.order_by("-visits", "email").skip(5).limit(5)
            assert len(list(page)) == 5
            assert Patient.objects.count() == subjects
            after = counts()
            listings[subjects] = {r: after[r] - before[r] for r in after}
        before = counts()
        with within_regions("eu"):
            assert Patient.objects.count() == 100
            assert {p.country for p in Patient.objects.order_by("visits")} <= set(EU)
            assert Patient.objects(email="p3@example.org").count() == 1
            assert sorted(Patient.objects.distinct("country")) == ["AT", "FR"]
        after = counts()
        pinned = {r: after[r] - before[r] for r in after}
    finally:
        me.disconnect()
        for client in (eu, us):
            client.drop_database(stores.database)
            client.drop_database(f"{base.VAULT.partition('.')[0]}_{stores.database}")
            client.close()
    # the round trips of each region are those of its stores, for 20 subjects as for 200
    assert listings[20] == listings[200]
    assert listings[20]["eu"] > 0
    assert pinned["us"] == 0
    assert pinned["eu"] > 0


def test_transfer_region_moves_the_clinical_rows_too(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    Patient = base._connect(backend, _regions(stores, "both"))
    grace = _clinical(stores, "us").find_one({"visits": 7})
    moved = Rights([Patient]).transfer_region(
        Subject(model="ResPatient", field="email", value="grace@example.org"), "eu"
    )
    assert (moved.sources, moved.target, moved.rows) == (("us",), "eu", 1)
    assert _clinical(stores, "us").count_documents({"_id": grace["_id"]}) == 0
    stored = _clinical(stores, "eu").find_one({"_id": grace["_id"]})
    assert {k: v for k, v in stored.items() if k != "_region"} == {
        k: v for k, v in grace.items() if k != "_region"
    }
    assert stored["_region"] == "eu"
    assert stores.identity("eu").count_documents({"_id": grace["_pseudonym"]}) == 1
    forget_keys()
    found = Patient.objects.get(id=grace["_id"])
    assert (found.first_name, found.email, found.blood_type) == ("Grace", "grace@example.org", "O-")
    with within_regions("eu"):
        assert Patient.objects(email="grace@example.org").count() == 1
    back = Rights([Patient]).transfer_region(grace["_pseudonym"], "us")
    assert (back.sources, back.target) == (("eu",), "us")
    assert _clinical(stores, "eu").count_documents({"_id": grace["_id"]}) == 0
    assert _clinical(stores, "us").find_one({"_id": grace["_id"]})["_region"] == "us"
    assert Patient.objects.count() == len(PEOPLE)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_an_unreachable_clinical_store_is_named_and_partial_results_leave_it_out(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None, layout: str
) -> None:
    Patient = base._connect(backend, _regions(stores, layout))
    ids = {p.first_name: p.id for p in Patient.objects}
    down = pymongo.MongoClient("mongodb://127.0.0.1:9", serverSelectionTimeoutMS=200)
    try:
        privata_mongo.configure(regions=_regions(stores, layout, eu_clinical=down))
        with pytest.raises(RegionUnavailable) as caught:
            list(Patient.objects)
        assert caught.value.region == "eu"
        with pytest.raises(RegionUnavailable, match="'eu'"):
            Patient.objects.count()
        with partial_results() as partial:
            listed = sorted(p.first_name for p in Patient.objects.order_by("visits"))
            counted = Patient.objects.count()
        assert partial.regions == {"eu"}
        assert listed == ["Barbara", "Grace", "Katherine"]
        assert counted == 3
        with within_regions("us"):  # the US stores alone: nothing to leave out
            assert Patient.objects.get(id=ids["Grace"]).email == "grace@example.org"
            Patient(first_name="Dorothy", email="dorothy@example.org", country="US").save()
        with pytest.raises(RegionUnavailable):  # writes never go partial
            Patient(first_name="Rosalind", email="rosalind@example.org", country="DE").save()
    finally:
        down.close()
    assert _clinical(stores, "eu").count_documents({}) == 5
    assert _home(connected, stores, layout).count_documents({}) == 4


def test_a_pipeline_that_cannot_be_merged_is_refused_unless_pinned(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    Patient = base._connect(backend, _regions(stores, "eu"))
    collection = Patient._get_collection()
    grouped = [{"$group": {"_id": "$country", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}]
    with pytest.raises(UnsupportedQuery, match=r"ResPatient.*within_regions") as caught:
        list(collection.aggregate(grouped))
    assert caught.value.model == "ResPatient"
    with within_regions("eu"):
        eu = [(d["_id"], d["n"]) for d in collection.aggregate(grouped)]
    assert eu == [("AT", 1), ("DE", 1), ("FR", 1), ("GB", 2)]
    with within_regions("us"):
        assert [d["n"] for d in collection.aggregate(grouped)] == [3]


def test_the_settings_refuse_a_clinical_database_without_its_client(
    stores: Stores, settings_restored: None
) -> None:
    with pytest.raises(privata_mongo.ConfigurationError, match="clinical_client"):
        privata_mongo.configure(
            regions={"eu": Region(stores.eu, clinical_database="eu_rows")},
            default_region="eu",
        )
    assert current().regions is None or "eu" not in (current().regions or {})


def test_a_transfer_stopped_before_deleting_the_source_completes_when_run_again(
    connected: Any,
    backend: Backend,
    stores: Stores,
    settings_restored: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Patient = base._connect(backend, _regions(stores, "both"))
    grace = _clinical(stores, "us").find_one({"visits": 7})
    cls = type(_clinical(stores, "us"))
    original = cls.delete_many

    def crash(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("the operator's process stopped")

    monkeypatch.setattr(cls, "delete_many", crash)
    with pytest.raises(ConnectionError):
        Rights([Patient]).transfer_region(grace["_pseudonym"], "eu")
    monkeypatch.setattr(cls, "delete_many", original)
    # stopped after the copies: both regions hold the subject, nothing was lost
    assert _clinical(stores, "eu").count_documents({"_id": grace["_id"]}) == 1
    assert _clinical(stores, "us").count_documents({"_id": grace["_id"]}) == 1
    assert stores.identity("us").count_documents({"_id": grace["_pseudonym"]}) == 1
    moved = Rights([Patient]).transfer_region(grace["_pseudonym"], "eu")
    assert (moved.sources, moved.target) == (("us",), "eu")
    assert _clinical(stores, "us").count_documents({"_id": grace["_id"]}) == 0
    assert stores.identity("us").count_documents({"_id": grace["_pseudonym"]}) == 0
    assert _clinical(stores, "eu").find_one({"_id": grace["_id"]})["_region"] == "eu"
    forget_keys()
    assert Patient.objects.get(id=grace["_id"]).email == "grace@example.org"
    assert Patient.objects.count() == len(PEOPLE)


def test_rows_stored_before_their_region_had_a_clinical_store_stay_readable_and_move(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    base._connect(backend, base._regions(stores))  # every clinical row on the app's server
    me.disconnect()
    privata_mongo.configure(regions=_regions(stores, "both"))
    pm.connect(db=backend.db_name, **backend.mongoengine_settings())
    Patient = base._model()
    assert Patient.objects.count() == len(PEOPLE)
    assert Patient.objects.get(email="marie@example.org").blood_type == "B+"
    marie = connected["res_patient"].find_one({"country": "FR"})
    moved = Rights([Patient]).transfer_region(marie["_pseudonym"], "eu")
    assert moved.sources == ()  # its identity data was in the EU already
    assert connected["res_patient"].count_documents({"_id": marie["_id"]}) == 0
    assert _clinical(stores, "eu").find_one({"_id": marie["_id"]})["_region"] == "eu"
    assert Patient.objects.get(id=marie["_id"]).email == "marie@example.org"
    assert sorted(p.visits for p in Patient.objects.order_by("visits")) == sorted(
        p[4] for p in PEOPLE
    )


@pytest.mark.parametrize("layout", LAYOUTS)
def test_access_and_erasure_of_a_subject_reach_its_regions_clinical_store(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None, layout: str
) -> None:
    Patient = base._connect(backend, _regions(stores, layout))
    marie = _clinical(stores, "eu").find_one({"country": "FR"})
    subject = Subject(model="ResPatient", field="email", value="marie@example.org")
    held = Rights([Patient]).access(subject)
    (document,) = held.documents["ResPatient"]
    assert (document["email"], document["blood_type"]) == ("marie@example.org", "B+")
    # the access names the store holding her clinical rows: the EU's own, not the application's
    assert held.storage is not None
    (stored,) = held.storage.models
    eu_rows = _clinical(stores, "eu")
    assert (stored.clinical.region, stored.clinical.database, stored.clinical.collection) == (
        "eu",
        eu_rows.database.name,
        eu_rows.name,
    )
    home_before = _bytes(_home(connected, stores, layout))
    receipt = Rights([Patient]).erase(subject)
    assert receipt.pseudonym == marie["_pseudonym"]
    assert _bytes(_home(connected, stores, layout)) == home_before
    kept = _clinical(stores, "eu").find_one({"_id": marie["_id"]})  # de-identified, in the EU
    assert kept is not None
    assert kept["blood_type"] == "B+"
    assert Patient.objects(email="marie@example.org").count() == 0
    found = Patient.objects.get(id=marie["_id"])
    assert (found.first_name, found.email, found.country) == (None, None, "FR")


def test_erasure_by_deletion_and_retention_delete_rows_in_the_regions_clinical_store(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    base._connect(backend, _regions(stores, "both"))

    class RetainedPatient(pm.Document):
        first_name = pm.StringField()
        email = pm.EmailField(searchable=True)
        country = pm.StringField()
        last_seen = pm.DateTimeField()
        meta = {
            "collection": "res_retained",
            "privacy": {
                "not_pii": ["last_seen", "country"],
                "erasure": "delete",
                "retention": {"days": 365, "field": "last_seen", "then": "erase"},
            },
        }

    now = datetime.datetime(2026, 6, 1)
    old = now - datetime.timedelta(days=400)
    for first, country, seen in (("Ada", "GB", old), ("Emmy", "DE", now), ("Grace", "US", old)):
        RetainedPatient(
            first_name=first, email=f"{first.lower()}@example.org", country=country, last_seen=seen
        ).save()
    eu_rows = stores.eu[stores.database]["res_retained"]
    us_rows = stores.us[stores.database]["res_retained"]
    ada = eu_rows.find_one({"country": "GB"})
    assert subject_of(connected, "res_retained", ada["_id"]) == ada["_pseudonym"]
    rights = Rights([RetainedPatient])
    emmy = Subject(model="RetainedPatient", field="email", value="emmy@example.org")
    rights.erase(emmy)
    assert sorted(r["country"] for r in eu_rows.find()) == ["GB"]  # Emmy's row deleted
    with access_context(actor="retention-job", purpose="retention", legal_basis="HIPAA"):
        receipts = rights.enforce_retention(now=now)
    assert len(receipts) == 2  # Ada in the EU, Grace in the US
    assert eu_rows.count_documents({}) == 0
    assert us_rows.count_documents({}) == 0
    assert RetainedPatient.objects.count() == 0


@pytest.mark.parametrize("layout", ["identity only", *LAYOUTS])
def test_a_restriction_marks_the_subjects_rows_in_whichever_store_holds_them(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None, layout: str
) -> None:
    regions = base._regions(stores) if layout == "identity only" else _regions(stores, layout)
    Patient = base._connect(backend, regions)
    rights = Rights([Patient])
    marie = Subject(model="ResPatient", field="email", value="marie@example.org")
    assert rights.restrict(marie) == 1
    rows = connected["res_patient"] if layout == "identity only" else _clinical(stores, "eu")
    assert rows.find_one({"country": "FR"})["_rst"]["r"] is True
    assert Patient.objects.count() == len(PEOPLE) - 1
    assert Patient.objects(country="FR").count() == 0
    assert rights.lift_restriction(marie) == 1
    assert Patient.objects(country="FR").first().email == "marie@example.org"
    assert rights.object(marie, "research") == 1
    with access_context(actor="analyst", purpose="research", legal_basis="HIPAA"):
        assert Patient.objects.count() == len(PEOPLE) - 1
    assert Patient.objects.count() == len(PEOPLE)
